// The lean gRPC layer (grpc-handler.ts) on a real node:http2 server on 127.0.0.1, driven by grpc-js
// (what the official Node SDK is built on) and by a bare node:http2 client where the exact wire shape
// matters (trailers-only answers, the server's own deadline, protocol errors). The services are
// internal ones (NamesrvService unary methods, ControllerService.WatchRoleChange server stream) used
// as plain examples.

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  create,
  type DescMessage,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  ControllerService,
  WatchRoleChangeResponseSchema,
} from "../proto/gen/rmq/controller/v1/controller_pb.ts";
import {
  GetAllTopicListResponseSchema,
  NamesrvService,
  PutKvConfigRequestSchema,
} from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import {
  createGrpcStreamHandler,
  encodeGrpcMessage,
  type GrpcCall,
  type GrpcMethod,
  type GrpcStreamHandlerOptions,
  serverStreamMethod,
  unaryMethod,
} from "./grpc-handler.ts";

const READ_MAX_BYTES = 4096;

interface TestServer {
  port: number;
  address: string;
  sessions: Set<http2.ServerHttp2Session>;
  /** Server streams not closed yet. */
  openStreams(): number;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function serve(
  methods: [string, GrpcMethod][],
  options: Partial<GrpcStreamHandlerOptions> = {},
): Promise<TestServer> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  let open = 0;
  server.on("stream", (stream) => {
    open++;
    stream.once("close", () => open--);
  });
  server.on(
    "stream",
    createGrpcStreamHandler({ methods: new Map(methods), readMaxBytes: READ_MAX_BYTES, ...options }),
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const s: TestServer = {
    port,
    address: `127.0.0.1:${port}`,
    sessions,
    openStreams: () => open,
    close: () =>
      new Promise<void>((r) => {
        for (const session of sessions) session.destroy();
        server.close(() => r());
      }),
  };
  cleanups.push(() => s.close());
  return s;
}

// ---- a grpc-js client for any service ----

type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

function grpcClient(service: DescService, address: string): GenericClient {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of service.methods) {
    definition[m.localName] = {
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
      responseStream: m.methodKind === "server_streaming" || m.methodKind === "bidi_streaming",
      requestSerialize: (v: unknown) =>
        Buffer.from(toBinary(m.input, create(m.input, v as MessageInitShape<DescMessage>))),
      requestDeserialize: (b: Buffer) => fromBinary(m.input, b),
      responseSerialize: (v: unknown) => Buffer.from(toBinary(m.output, v as MessageShape<DescMessage>)),
      responseDeserialize: (b: Buffer) => fromBinary(m.output, b),
    };
  }
  const Client = grpc.makeGenericClientConstructor(definition as grpc.ServiceDefinition, service.name);
  const client = new Client(address, grpc.credentials.createInsecure()) as unknown as GenericClient;
  cleanups.push(() => client.close());
  return client;
}

interface UnaryOutcome {
  error?: grpc.ServiceError;
  response?: unknown;
  trailers?: grpc.Metadata;
}

function unary(
  client: GenericClient,
  method: string,
  request: unknown,
  deadlineMs?: number,
): Promise<UnaryOutcome> {
  return new Promise((resolve) => {
    const out: UnaryOutcome = {};
    const options = deadlineMs === undefined ? {} : { deadline: new Date(Date.now() + deadlineMs) };
    const call = client[method]?.(
      request,
      new grpc.Metadata(),
      options,
      (error: grpc.ServiceError | null, response: unknown) => {
        if (error) out.error = error;
        else out.response = response;
      },
    ) as grpc.ClientUnaryCall;
    call.on("status", (status: grpc.StatusObject) => {
      out.trailers = status.metadata;
      // the callback runs before "status"
      setImmediate(() => resolve(out));
    });
  });
}

// ---- a bare node:http2 client ----

interface RawOutcome {
  headers: http2.IncomingHttpHeaders;
  data: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number | undefined;
}

function frame(payload: Uint8Array, flag = 0): Buffer {
  const out = Buffer.alloc(5 + payload.byteLength);
  out[0] = flag;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, 5);
  return out;
}

async function rawCall(
  port: number,
  path: string,
  body: Buffer | undefined,
  extraHeaders: http2.OutgoingHttpHeaders = {},
): Promise<RawOutcome> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  cleanups.push(() => {
    session.destroy();
  });
  const stream = session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
    ...extraHeaders,
  });
  stream.on("error", () => {});
  return new Promise<RawOutcome>((resolve) => {
    const out: RawOutcome = { headers: {}, data: Buffer.alloc(0), trailers: undefined, rstCode: undefined };
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      out.headers = h;
    });
    stream.on("trailers", (h) => {
      out.trailers = h;
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("close", () => {
      out.data = Buffer.concat(chunks);
      out.rstCode = stream.rstCode;
      resolve(out);
    });
    if (body === undefined) stream.end();
    else stream.end(body);
  });
}

const getAllTopicListPath = `/${NamesrvService.typeName}/GetAllTopicList`;

describe("lean gRPC handler", () => {
  it("answers a unary call with the message, response headers and trailers, grpc-status 0", async () => {
    const s = await serve([
      unaryMethod(NamesrvService.method.getAllTopicList, (_req, call) => {
        call.responseHeaders = { "x-served-by": "lean" };
        call.responseTrailers = { "x-extra": "yes" };
        return create(GetAllTopicListResponseSchema, { topics: ["A", "B"] });
      }),
    ]);
    const c = grpcClient(NamesrvService, s.address);
    const out = await unary(c, "getAllTopicList", {});
    expect(out.error).toBeUndefined();
    expect((out.response as { topics: string[] }).topics).toEqual(["A", "B"]);
    expect(out.trailers?.get("x-extra")).toEqual(["yes"]);

    const raw = await rawCall(s.port, getAllTopicListPath, frame(new Uint8Array(0)));
    expect(raw.headers[":status"]).toBe(200);
    expect(raw.headers["content-type"]).toBe("application/grpc");
    expect(raw.headers["x-served-by"]).toBe("lean");
    expect(raw.trailers?.["grpc-status"]).toBe("0");
    expect(raw.data[0]).toBe(0);
    expect(raw.data.readUInt32BE(1)).toBe(raw.data.byteLength - 5);
    expect(fromBinary(GetAllTopicListResponseSchema, raw.data.subarray(5)).topics).toEqual(["A", "B"]);
  });

  it("answers a failing handler trailers-only with its code, percent-encoded message and metadata", async () => {
    const message = "no route for Topic%1 – ünïcode\nnext line";
    const s = await serve([
      unaryMethod(NamesrvService.method.getAllTopicList, () => {
        throw new ConnectError(message, Code.NotFound, { "rmq-error-code": "TOPIC_NOT_FOUND" });
      }),
      unaryMethod(NamesrvService.method.putKvConfig, async () => {
        throw new TypeError("boom");
      }),
    ]);
    const c = grpcClient(NamesrvService, s.address);
    const out = await unary(c, "getAllTopicList", {});
    expect(out.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(out.error?.details).toBe(message);
    expect(out.trailers?.get("rmq-error-code")).toEqual(["TOPIC_NOT_FOUND"]);
    expect((await unary(c, "putKvConfig", {})).error?.code).toBe(grpc.status.INTERNAL);

    const raw = await rawCall(s.port, getAllTopicListPath, frame(new Uint8Array(0)));
    // trailers-only: the status is in the (only) HEADERS frame, no DATA, no trailers
    expect(raw.headers[":status"]).toBe(200);
    expect(raw.headers["grpc-status"]).toBe(String(Code.NotFound));
    expect(raw.headers["grpc-message"]).toBe(encodeGrpcMessage(message));
    expect(decodeURIComponent(String(raw.headers["grpc-message"]))).toBe(message);
    expect(raw.data.byteLength).toBe(0);
    expect(raw.trailers).toBeUndefined();
  });

  it("still answers when a handler's metadata cannot go into HTTP/2 headers (dropping that metadata)", async () => {
    const s = await serve([
      unaryMethod(NamesrvService.method.getAllTopicList, (_req, call) => {
        call.responseHeaders = { "bad header": "x" };
        call.responseTrailers = { "x-trailer": "line\nbreak" };
        return create(GetAllTopicListResponseSchema, { topics: ["ok"] });
      }),
      unaryMethod(NamesrvService.method.putKvConfig, () => {
        // a connection-specific header: node:http2 refuses to send it
        throw new ConnectError("refused", Code.FailedPrecondition, { connection: "close" });
      }),
    ]);
    const c = grpcClient(NamesrvService, s.address);
    const ok = await unary(c, "getAllTopicList", {});
    expect((ok.response as { topics: string[] }).topics).toEqual(["ok"]);
    const failed = await unary(c, "putKvConfig", {});
    expect(failed.error?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(failed.error?.details).toBe("refused");
  });

  it("answers an unknown method UNIMPLEMENTED and hands fallback paths to the fallback", async () => {
    const fallbackPath = `/${NamesrvService.typeName}/GetKvConfig`;
    const seen: string[] = [];
    const s = await serve([], {
      fallback: {
        paths: new Set([fallbackPath]),
        handle: (stream, headers) => {
          seen.push(String(headers[":path"]));
          stream.respond(
            { ":status": 200, "content-type": "application/grpc", "grpc-status": "0" },
            { endStream: true },
          );
        },
      },
    });
    const c = grpcClient(NamesrvService, s.address);
    const unknown = await unary(c, "getAllTopicList", {});
    expect(unknown.error?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(unknown.error?.details).toContain("GetAllTopicList");
    const other = await rawCall(s.port, "/no.Such/Method", frame(new Uint8Array(0)));
    expect(other.headers["grpc-status"]).toBe(String(Code.Unimplemented));
    await rawCall(s.port, fallbackPath, frame(new Uint8Array(0)));
    expect(seen).toEqual([fallbackPath]);
  });

  it("refuses a request message over readMaxBytes with RESOURCE_EXHAUSTED without running the handler", async () => {
    let called = 0;
    const s = await serve([
      unaryMethod(NamesrvService.method.putKvConfig, () => {
        called++;
        return {} as never;
      }),
    ]);
    const c = grpcClient(NamesrvService, s.address);
    const big = await unary(c, "putKvConfig", { key: "k", value: "x".repeat(READ_MAX_BYTES * 4) });
    expect(big.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(called).toBe(0);
    // the rejected stream is reset instead of lingering half-read; the connection stays usable
    await vi.waitFor(() => expect(s.openStreams()).toBe(0));
    const small = await unary(c, "putKvConfig", { key: "k", value: "small" });
    expect(small.error).toBeUndefined();
    expect(called).toBe(1);

    // a prefix announcing too much is refused as soon as the prefix is in
    const announced = Buffer.alloc(5);
    announced.writeUInt32BE(READ_MAX_BYTES + 1, 1);
    const raw = await rawCall(s.port, `/${NamesrvService.typeName}/PutKvConfig`, announced);
    expect(raw.headers["grpc-status"]).toBe(String(Code.ResourceExhausted));
    expect(called).toBe(1);
  });

  it("rejects protocol errors: compressed flag, missing or truncated message, two messages, bad grpc-timeout", async () => {
    let called = 0;
    const s = await serve([
      unaryMethod(NamesrvService.method.putKvConfig, () => {
        called++;
        return {} as never;
      }),
    ]);
    const path = `/${NamesrvService.typeName}/PutKvConfig`;
    const payload = toBinary(PutKvConfigRequestSchema, create(PutKvConfigRequestSchema, { key: "k" }));
    const statusOf = async (body: Buffer | undefined, headers: http2.OutgoingHttpHeaders = {}) => {
      const out = await rawCall(s.port, path, body, headers);
      return out.headers["grpc-status"] ?? out.trailers?.["grpc-status"];
    };
    expect(await statusOf(frame(payload, 1))).toBe(String(Code.Internal));
    expect(await statusOf(undefined)).toBe(String(Code.Internal));
    expect(await statusOf(frame(payload).subarray(0, 6))).toBe(String(Code.Internal));
    expect(await statusOf(Buffer.concat([frame(payload), frame(payload)]))).toBe(String(Code.Internal));
    expect(await statusOf(frame(payload), { "grpc-timeout": "soon" })).toBe(String(Code.InvalidArgument));
    expect(await statusOf(frame(Buffer.from([0xff, 0xff])))).toBe(String(Code.InvalidArgument));
    expect(called).toBe(0);
    expect(await statusOf(frame(payload), { "grpc-timeout": "5S" })).toBe("0");
    expect(called).toBe(1);
  });

  it("sends requests with a grpc-encoding to the fallback, or answers UNIMPLEMENTED without one", async () => {
    const path = `/${NamesrvService.typeName}/PutKvConfig`;
    const method = unaryMethod(NamesrvService.method.putKvConfig, () => ({}) as never);
    const bare = await serve([method]);
    const raw = await rawCall(bare.port, path, frame(new Uint8Array(0)), { "grpc-encoding": "gzip" });
    expect(raw.headers["grpc-status"]).toBe(String(Code.Unimplemented));
    expect(raw.headers["grpc-accept-encoding"]).toBe("identity");

    let fellBack = 0;
    const withFallback = await serve([method], {
      fallback: {
        paths: new Set(),
        handle: (stream) => {
          fellBack++;
          stream.respond(
            { ":status": 200, "content-type": "application/grpc", "grpc-status": "0" },
            { endStream: true },
          );
        },
      },
    });
    await rawCall(withFallback.port, path, frame(new Uint8Array(0)), { "grpc-encoding": "gzip" });
    expect(fellBack).toBe(1);
  });

  it("ends a call at its deadline with DEADLINE_EXCEEDED and aborts the handler's signal", async () => {
    const reasons: unknown[] = [];
    const s = await serve([
      unaryMethod(NamesrvService.method.getAllTopicList, async (_req, call) => {
        await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve()));
        reasons.push(call.signal.reason);
        return create(GetAllTopicListResponseSchema, { topics: ["too late"] });
      }),
    ]);
    // grpc-js enforces its deadline itself
    const c = grpcClient(NamesrvService, s.address);
    const out = await unary(c, "getAllTopicList", {}, 150);
    expect(out.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    await vi.waitFor(() => expect(reasons).toHaveLength(1));

    // a client that does not: the server answers at the deadline on its own
    const started = performance.now();
    const raw = await rawCall(s.port, getAllTopicListPath, frame(new Uint8Array(0)), {
      "grpc-timeout": "100m",
    });
    expect(raw.headers["grpc-status"]).toBe(String(Code.DeadlineExceeded));
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    await vi.waitFor(() => expect(reasons).toHaveLength(2));
    expect((reasons[1] as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("reports the remaining deadline to handlers; Infinity without one", async () => {
    const seen: [number | undefined, number][] = [];
    const s = await serve([
      unaryMethod(NamesrvService.method.getAllTopicList, (_req, call: GrpcCall) => {
        seen.push([call.timeoutMs, call.remainingMs()]);
        return create(GetAllTopicListResponseSchema);
      }),
    ]);
    await rawCall(s.port, getAllTopicListPath, frame(new Uint8Array(0)), { "grpc-timeout": "2S" });
    await rawCall(s.port, getAllTopicListPath, frame(new Uint8Array(0)));
    expect(seen[0]?.[0]).toBe(2000);
    expect(seen[0]?.[1]).toBeGreaterThan(1000);
    expect(seen[0]?.[1]).toBeLessThanOrEqual(2000);
    expect(seen[1]).toEqual([undefined, Number.POSITIVE_INFINITY]);
  });

  it("streams server messages, then OK; a failure after some messages ends with its status in the trailers", async () => {
    const s = await serve([
      serverStreamMethod(ControllerService.method.watchRoleChange, async function* (req) {
        for (let epoch = 1; epoch <= 3; epoch++) {
          yield create(WatchRoleChangeResponseSchema, { brokerName: req.brokerName, masterEpoch: epoch });
        }
        if (req.brokerName === "fail") throw new ConnectError("lost the leader", Code.Unavailable);
      }),
    ]);
    const c = grpcClient(ControllerService, s.address);
    const read = (brokerName: string) =>
      new Promise<{ epochs: number[]; error?: grpc.ServiceError }>((resolve) => {
        const epochs: number[] = [];
        const call = c.watchRoleChange?.({ brokerName }) as grpc.ClientReadableStream<{
          masterEpoch: number;
        }>;
        call.on("data", (d) => epochs.push(d.masterEpoch));
        call.on("error", (error: grpc.ServiceError) => resolve({ epochs, error }));
        call.on("end", () => resolve({ epochs }));
      });
    expect(await read("ok")).toEqual({ epochs: [1, 2, 3] });
    const failed = await read("fail");
    expect(failed.epochs).toEqual([1, 2, 3]);
    expect(failed.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(failed.error?.details).toBe("lost the leader");
  });

  it("writes a long server stream under flow control, every message in order", async () => {
    const count = 300;
    const s = await serve([
      serverStreamMethod(ControllerService.method.watchRoleChange, async function* () {
        // 16 KiB each: well past the 64 KiB default stream window, so writes have to wait
        const address = "x".repeat(16 * 1024);
        for (let epoch = 0; epoch < count; epoch++) {
          yield create(WatchRoleChangeResponseSchema, { masterEpoch: epoch, masterAddress: address });
        }
      }),
    ]);
    const c = grpcClient(ControllerService, s.address);
    const epochs = await new Promise<number[]>((resolve, reject) => {
      const got: number[] = [];
      const call = c.watchRoleChange?.({}) as grpc.ClientReadableStream<{ masterEpoch: number }>;
      call.on("data", (d) => got.push(d.masterEpoch));
      call.on("error", reject);
      call.on("end", () => resolve(got));
    });
    expect(epochs).toEqual(Array.from({ length: count }, (_, i) => i));
  });

  it("stops a server stream the client cancels: its signal aborts and its finally block runs", async () => {
    let signal: AbortSignal | undefined;
    let cleanedUp = false;
    const s = await serve([
      serverStreamMethod(ControllerService.method.watchRoleChange, async function* (_req, call) {
        signal = call.signal;
        try {
          yield create(WatchRoleChangeResponseSchema, { masterEpoch: 1 });
          // a watch waiting for the next change
          await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve()));
          yield create(WatchRoleChangeResponseSchema, { masterEpoch: 2 });
        } finally {
          cleanedUp = true;
        }
      }),
    ]);
    const c = grpcClient(ControllerService, s.address);
    const call = c.watchRoleChange?.({}) as grpc.ClientReadableStream<{ masterEpoch: number }>;
    const first = await new Promise<number>((resolve) => call.once("data", (d) => resolve(d.masterEpoch)));
    expect(first).toBe(1);
    const cancelled = new Promise<grpc.ServiceError>((resolve) => call.on("error", resolve));
    call.cancel();
    expect((await cancelled).code).toBe(grpc.status.CANCELLED);
    await vi.waitFor(() => expect(cleanedUp).toBe(true));
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(ConnectError);
    expect((signal?.reason as ConnectError | undefined)?.code).toBe(Code.Canceled);
  });

  it("aborts in-flight signals on shutdown; the calls still answer", async () => {
    const shutdown = new AbortController();
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => {
      entered = r;
    });
    const s = await serve(
      [
        unaryMethod(NamesrvService.method.getAllTopicList, async (_req, call) => {
          entered();
          await new Promise<void>((resolve) => call.signal.addEventListener("abort", () => resolve()));
          return create(GetAllTopicListResponseSchema, {
            topics: [String((call.signal.reason as ConnectError).code)],
          });
        }),
      ],
      { shutdownSignal: shutdown.signal },
    );
    const c = grpcClient(NamesrvService, s.address);
    const pending = unary(c, "getAllTopicList", {});
    await inHandler;
    shutdown.abort();
    const out = await pending;
    expect(out.error).toBeUndefined();
    expect((out.response as { topics: string[] }).topics).toEqual([String(Code.Unavailable)]);
  });

  it("percent-encodes only what grpc-message must not carry", () => {
    expect(encodeGrpcMessage("plain text: ok (1/2)")).toBe("plain text: ok (1/2)");
    expect(encodeGrpcMessage("100%")).toBe("100%25");
    expect(encodeGrpcMessage("a\nb")).toBe("a%0Ab");
    expect(encodeGrpcMessage("é")).toBe("%C3%A9");
  });
});
