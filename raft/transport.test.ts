// The Raft transport on real sockets: batching, a peer going away and coming back, MsgSnap outcomes,
// and frames of a foreign group being refused.

import { afterEach, describe, expect, it } from "vitest";
import { closeRpcConnections } from "../common/rpc-client.ts";
import { createRpcServer, type RpcServer } from "../common/rpc-server.ts";
import { createRaftTransport, type RaftTransport } from "./transport.ts";
import { type Message, MessageType } from "./types.ts";

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
  closeRpcConnections();
});

function msg(type: Message["type"], to = "b", extra: Partial<Message> = {}): Message {
  return {
    type,
    from: "a",
    to,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...extra,
  };
}

async function receiver(group: string, port = 0) {
  const got: Message[] = [];
  const t = createRaftTransport({
    group,
    selfId: "b",
    peers: new Map([["b", "127.0.0.1:1"]]),
    onMessages: (m) => got.push(...m),
    onUnreachable: () => {},
    onSnapshotStatus: () => {},
  });
  const server: RpcServer = await createRpcServer({
    host: "127.0.0.1",
    port,
    routes: (r) => t.routes(r),
    shutdownGraceMs: 50,
  });
  open.push(server, t);
  return { got, server, t };
}

function sender(port: number, group = "g") {
  const unreachable: string[] = [];
  const snaps: boolean[] = [];
  const t: RaftTransport = createRaftTransport({
    group,
    selfId: "a",
    peers: new Map([["b", `127.0.0.1:${port}`]]),
    onMessages: () => {},
    onUnreachable: (p) => unreachable.push(p),
    onSnapshotStatus: (_p, ok) => snaps.push(ok),
  });
  open.push(t);
  return { t, unreachable, snaps };
}

async function until(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("raft transport", () => {
  it("delivers in order, many messages per frame", async () => {
    const r = await receiver("g");
    const s = sender(r.server.port);
    const batch = Array.from({ length: 500 }, (_, i) => msg(MessageType.App, "b", { index: i }));
    s.t.send(batch);
    await until(() => r.got.length === 500);
    expect(r.got.map((m) => m.index)).toEqual(batch.map((m) => m.index));
    expect(s.t.stats.framesSent).toBeLessThan(500);
    expect(s.t.stats.messagesSent).toBe(500);
  });

  it("reports an unreachable peer, fails its snapshots, and reconnects when it is back", async () => {
    const r = await receiver("g");
    const port = r.server.port;
    const s = sender(port);
    s.t.send([msg(MessageType.Heartbeat)]);
    await until(() => r.got.length === 1);
    await r.server.close();
    await until(() => {
      s.t.send([msg(MessageType.Heartbeat)]);
      return s.unreachable.length > 0;
    });
    s.t.send([
      msg(MessageType.Snap, "b", {
        snapshot: { metadata: { index: 9, term: 1, voters: ["a", "b"] }, data: new Uint8Array(4) },
      }),
    ]);
    await until(() => s.snaps.includes(false));
    // The peer comes back on the same port: traffic flows again and a snapshot succeeds.
    const back = await receiver("g", port);
    await until(() => {
      s.t.send([msg(MessageType.Heartbeat)]);
      return back.got.length > 0;
    });
    s.t.send([
      msg(MessageType.Snap, "b", {
        snapshot: { metadata: { index: 10, term: 1, voters: ["a", "b"] }, data: new Uint8Array(4) },
      }),
    ]);
    await until(() => s.snaps.includes(true));
    expect(back.got.some((m) => m.type === MessageType.Snap && m.snapshot?.metadata.index === 10)).toBe(true);
  });

  it("refuses frames of another group (a misconfigured peer list)", async () => {
    const r = await receiver("g");
    const s = sender(r.server.port, "other-group");
    await until(() => {
      s.t.send([msg(MessageType.Heartbeat)]);
      return s.unreachable.length > 0;
    });
    expect(r.got).toEqual([]);
  });
});
