// common/rpc-server.ts + common/rpc-client.ts over real sockets on 127.0.0.1, with the NameServer
// service descriptor as the example service (handlers here are test doubles of its methods).

import * as http2 from "node:http2";
import * as net from "node:net";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ControllerService } from "../proto/gen/rmq/controller/v1/controller_pb.ts";
import { NamesrvService } from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { ErrorCode, isRmqError, RmqError } from "./errors.ts";
import { closeRpcConnections, createRpcClient } from "./rpc-client.ts";
import { createRpcServer, type RpcServer, type RpcServerOptions } from "./rpc-server.ts";

type Impl = Partial<ServiceImpl<typeof NamesrvService>>;

const servers: RpcServer[] = [];
async function serve(impl: Impl, opts: Partial<RpcServerOptions> = {}): Promise<RpcServer> {
  const s = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    routes: (r) => r.service(NamesrvService, impl),
    ...opts,
  });
  servers.push(s);
  return s;
}

async function failure(p: Promise<unknown>): Promise<RmqError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(RmqError);
    return e as RmqError;
  }
  throw new Error("expected the call to fail");
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

afterEach(async () => {
  closeRpcConnections();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("internal RPC", () => {
  it("round-trips a call", async () => {
    const s = await serve({ getAllTopicList: () => ({ topics: ["A", "B"] }) });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`);
    expect((await c.getAllTopicList({})).topics).toEqual(["A", "B"]);
  });

  it("a handler's RmqError reaches the caller with its code and message", async () => {
    const s = await serve({
      getRouteInfoByTopic: (req) => {
        throw new RmqError(ErrorCode.TopicNotFound, `no route for ${req.topic}`);
      },
      putKvConfig: () => {
        throw new RmqError(ErrorCode.IllegalArgument, "bad key");
      },
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`);
    const e = await failure(c.getRouteInfoByTopic({ topic: "T1" }));
    expect(e.code).toBe(ErrorCode.TopicNotFound);
    expect(e.message).toBe("no route for T1");
    expect((await failure(c.putKvConfig({}))).code).toBe(ErrorCode.IllegalArgument);
  });

  it("an unexpected exception is INTERNAL; an unimplemented method is NOT_IMPLEMENTED", async () => {
    const s = await serve({
      getKvConfig: () => {
        throw new TypeError("boom");
      },
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`);
    const e = await failure(c.getKvConfig({}));
    expect(e.code).toBe(ErrorCode.Internal);
    expect(e.message).toContain("boom");
    const u = await failure(c.deleteKvConfig({}));
    expect(u.code).toBe(ErrorCode.NotImplemented);
    expect(u.message).toContain("DeleteKvConfig");
  });

  it("every call has a deadline: client default or per call", async () => {
    const s = await serve({
      getAllTopicList: async (_req, ctx) => {
        await new Promise((r) => setTimeout(r, 10_000).unref());
        return { topics: [String(ctx.signal.aborted)] };
      },
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 150 });
    const e = await failure(c.getAllTopicList({}));
    expect(e.code).toBe(ErrorCode.RpcTimeout);
    expect(e.message).toContain(`rmq.namesrv.v1.NamesrvService/GetAllTopicList to 127.0.0.1:${s.port}`);
    const slow = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 60_000 });
    expect((await failure(slow.getAllTopicList({}, { timeoutMs: 100 }))).code).toBe(ErrorCode.RpcTimeout);
  });

  it("a server that accepts TCP but never speaks HTTP/2 still fails the call at its deadline", async () => {
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((sock) => sockets.push(sock));
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
    try {
      const c = createRpcClient(
        NamesrvService,
        `127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`,
        { timeoutMs: 200 },
      );
      expect((await failure(c.getAllTopicList({}))).code).toBe(ErrorCode.RpcTimeout);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => blackHole.close(() => r()));
    }
  });

  it("nobody listening is RPC_UNAVAILABLE; the same client reconnects once a server is back", async () => {
    const port = await freePort();
    const c = createRpcClient(NamesrvService, `127.0.0.1:${port}`);
    const e = await failure(c.getAllTopicList({}));
    expect(e.code).toBe(ErrorCode.RpcUnavailable);
    expect(e.message).toContain(`127.0.0.1:${port}`);

    const first = await serve({ getAllTopicList: () => ({ topics: ["first"] }) }, { port });
    expect((await c.getAllTopicList({})).topics).toEqual(["first"]);
    await first.close();
    expect((await failure(c.getAllTopicList({}))).code).toBe(ErrorCode.RpcUnavailable);
    await serve({ getAllTopicList: () => ({ topics: ["second"] }) }, { port });
    expect((await c.getAllTopicList({})).topics).toEqual(["second"]);
  });

  it("a connection closed for idleness is re-opened transparently", async () => {
    const s = await serve(
      { getAllTopicList: () => ({ topics: ["x"] }) },
      { idleTimeoutMs: 50, keepaliveIntervalMs: 20 },
    );
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`);
    expect((await c.getAllTopicList({})).topics).toEqual(["x"]);
    expect(s.connectionCount()).toBe(1);
    await vi.waitFor(() => expect(s.connectionCount()).toBe(0), { timeout: 5000, interval: 20 });
    expect((await c.getAllTopicList({})).topics).toEqual(["x"]);
    expect(s.connectionCount()).toBe(1);
  });

  it("a peer that stops answering PING is disconnected", async () => {
    const s = await serve({}, { idleTimeoutMs: 60_000, keepaliveIntervalMs: 30, keepaliveTimeoutMs: 100 });
    // A bare HTTP/2 peer: connection preface and an empty SETTINGS frame, then silence (no PING ACK).
    const sock = net.connect(s.port, "127.0.0.1");
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    sock.on("error", () => {});
    sock.resume(); // read (and drop) what the server sends, so its hang-up is seen
    sock.write(
      Buffer.concat([
        Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
      ]),
    );
    await vi.waitFor(() => expect(s.connectionCount()).toBe(1), { timeout: 5000, interval: 10 });
    await closed;
    expect(s.connectionCount()).toBe(0);
  });

  it("all clients of one address share one connection", async () => {
    const s = await serve({ getAllTopicList: () => ({ topics: [] }), getKvConfig: () => ({ value: "v" }) });
    const a = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 1000 });
    const b = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 5000 });
    await Promise.all([a.getAllTopicList({}), b.getKvConfig({}), a.getKvConfig({}), b.getAllTopicList({})]);
    expect(s.connectionCount()).toBe(1);
  });

  it("a unary call refused unprocessed (REFUSED_STREAM, e.g. crossing an idle GOAWAY) is retried; persistent refusal is RPC_UNAVAILABLE", async () => {
    let refuse = 0;
    let handled = 0;
    const handler = connectNodeAdapter({
      grpc: true,
      routes: (r) =>
        r.service(NamesrvService, {
          getAllTopicList: () => {
            handled++;
            return { topics: ["ok"] };
          },
        }),
    });
    const raw = http2.createServer((req, res) => {
      if (refuse > 0) {
        refuse--;
        req.stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      handler(req, res);
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    try {
      const c = createRpcClient(NamesrvService, `127.0.0.1:${(raw.address() as net.AddressInfo).port}`);
      refuse = 2;
      expect((await c.getAllTopicList({})).topics).toEqual(["ok"]);
      expect(handled).toBe(1);
      refuse = 3;
      expect((await failure(c.getAllTopicList({}))).code).toBe(ErrorCode.RpcUnavailable);
      expect(handled).toBe(1);
    } finally {
      closeRpcConnections();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });

  it("requests over readMaxBytes are refused with RPC_RESOURCE_EXHAUSTED", async () => {
    let called = false;
    const s = await serve(
      {
        putKvConfig: () => {
          called = true;
          return {};
        },
      },
      { readMaxBytes: 1024 },
    );
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`);
    await c.putKvConfig({ namespace: "n", key: "k", value: "small" });
    called = false;
    const e = await failure(c.putKvConfig({ namespace: "n", key: "k", value: "x".repeat(4096) }));
    expect(e.code).toBe(ErrorCode.RpcResourceExhausted);
    expect(called).toBe(false);
  });

  it("close() lets in-flight calls finish and aborts waiting handlers through their signal", async () => {
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    let unaryDone = false;
    const s = await serve({
      // A long poll: waits until the server shuts down.
      getAllTopicList: async (_req, ctx) => {
        entered();
        await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r(), { once: true }));
        return { topics: ["released by shutdown"] };
      },
      // An ordinary call still running when close() starts.
      getKvConfig: async () => {
        await new Promise((r) => setTimeout(r, 200));
        unaryDone = true;
        return { value: "finished" };
      },
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 30_000 });
    const poll = c.getAllTopicList({});
    const unary = c.getKvConfig({});
    await inHandler;
    await s.close();
    expect(unaryDone).toBe(true);
    expect((await poll).topics).toEqual(["released by shutdown"]);
    expect((await unary).value).toBe("finished");
    expect((await failure(c.getAllTopicList({}))).code).toBe(ErrorCode.RpcUnavailable);
  });

  it("closeRpcConnections() fails in-flight calls with RPC_CANCELED; the next call reconnects", async () => {
    let release!: () => void;
    const s = await serve({
      getAllTopicList: async () => {
        await new Promise<void>((r) => {
          release = r;
        });
        return { topics: ["late"] };
      },
      getKvConfig: () => ({ value: "v" }),
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 10_000 });
    const pending = c.getAllTopicList({});
    await vi.waitFor(() => expect(release).toBeDefined());
    closeRpcConnections(`127.0.0.1:${s.port}`);
    expect((await failure(pending)).code).toBe(ErrorCode.RpcCanceled);
    release();
    expect((await c.getKvConfig({})).value).toBe("v");
  });

  it("a caller's AbortSignal cancels the call (RPC_CANCELED) and aborts the handler's signal", async () => {
    let handlerSignal: AbortSignal | undefined;
    const s = await serve({
      getAllTopicList: async (_req, ctx) => {
        handlerSignal = ctx.signal;
        await new Promise<void>((r) => ctx.signal.addEventListener("abort", () => r()));
        return { topics: [] };
      },
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 10_000 });
    const abort = new AbortController();
    const pending = c.getAllTopicList({}, { signal: abort.signal });
    await vi.waitFor(() => expect(handlerSignal).toBeDefined());
    abort.abort();
    expect((await failure(pending)).code).toBe(ErrorCode.RpcCanceled);
    await vi.waitFor(() => expect(handlerSignal?.aborted).toBe(true));
  });

  it("handlers see the caller's metadata and remaining deadline", async () => {
    const s = await serve({
      getKvConfig: (req, ctx) => ({
        value: `${ctx.requestHeader.get("x-caller")}|${req.key}|${(ctx.timeoutMs() ?? 0) > 1000}|${ctx.method.name}`,
      }),
    });
    const c = createRpcClient(NamesrvService, `127.0.0.1:${s.port}`, { timeoutMs: 5000 });
    const r = await c.getKvConfig({ key: "k" }, { headers: { "x-caller": "broker-a" } });
    expect(r.value).toBe("broker-a|k|true|GetKvConfig");
  });

  it("streaming methods are served next to unary ones on the same server", async () => {
    const s = await createRpcServer({
      host: "127.0.0.1",
      port: 0,
      routes: (r) =>
        r.service(ControllerService, {
          getMetaData: () => ({ group: "g" }),
          async *watchRoleChange(req) {
            for (let epoch = 1; epoch <= 3; epoch++) yield { brokerName: req.brokerName, masterEpoch: epoch };
          },
        }),
    });
    servers.push(s);
    const c = createRpcClient(ControllerService, `127.0.0.1:${s.port}`);
    expect((await c.getMetaData({})).group).toBe("g");
    const epochs: number[] = [];
    for await (const change of c.watchRoleChange({ brokerName: "b" })) epochs.push(change.masterEpoch);
    expect(epochs).toEqual([1, 2, 3]);
    expect(s.connectionCount()).toBe(1);
  });

  it("a port in use is LISTEN_FAILED naming the address", async () => {
    const s = await serve({});
    let err: unknown;
    try {
      await createRpcServer({ host: "127.0.0.1", port: s.port, routes: () => {} });
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.ListenFailed)).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${s.port}`);
  });

  it("rejects a malformed address before any IO", () => {
    for (const bad of ["localhost", "host:", ":9876", "a:b", "1.2.3.4:99999", "h1:1;h2:2"]) {
      expect(() => createRpcClient(NamesrvService, bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.IllegalArgument }),
      );
    }
    expect(() => createRpcClient(NamesrvService, "[::1]:9876")).not.toThrow();
  });
});
