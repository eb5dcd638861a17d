// Three RaftNodeDriver instances in one process, each with its own WAL directory, RPC server and
// transport on 127.0.0.1 — the real IO stack, only the process boundary is missing (the controller
// tests under test/ add it).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import { createLogger } from "../common/logger.ts";
import { closeRpcConnections } from "../common/rpc-client.ts";
import { createRpcServer, type RpcServer } from "../common/rpc-server.ts";
import { RaftNodeDriver, type RaftStateMachine } from "./node-driver.ts";
import { createWalStorage } from "./storage/wal-storage.ts";
import { createRaftTransport, type RaftTransport } from "./transport.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Appends every command to a list; the result of an apply is the list's length. */
class ListMachine implements RaftStateMachine {
  items: string[] = [];
  apply(data: Uint8Array): unknown {
    this.items.push(dec.decode(data));
    return this.items.length;
  }
  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.items));
  }
  restore(data: Uint8Array): void {
    this.items = JSON.parse(dec.decode(data)) as string[];
  }
}

interface TestNode {
  id: string;
  dir: string;
  driver: RaftNodeDriver;
  sm: ListMachine;
  transport: RaftTransport;
  server: RpcServer;
}

let root: string;
const ids = ["n0", "n1", "n2"];
let ports: Map<string, number>;
let nodes: Map<string, TestNode>;

async function reservePorts(): Promise<Map<string, number>> {
  // Bind each server on port 0 once to learn free ports, then reuse them for restarts.
  const out = new Map<string, number>();
  for (const id of ids) {
    const s = await createRpcServer({ host: "127.0.0.1", port: 0, routes: () => {} });
    out.set(id, s.port);
    await s.close();
  }
  return out;
}

async function startNode(id: string, snapshotEntries = 10_000): Promise<TestNode> {
  const dir = join(root, id);
  const storage = await createWalStorage(dir, { segmentBytes: 4096 });
  const sm = new ListMachine();
  const peers = new Map(ids.map((p) => [p, `127.0.0.1:${ports.get(p)}`]));
  let driver: RaftNodeDriver | undefined;
  const transport = createRaftTransport({
    group: "test",
    selfId: id,
    peers,
    onMessages: (m) => driver?.step(m),
    onUnreachable: (p) => driver?.reportUnreachable(p),
    onSnapshotStatus: (p, ok) => driver?.reportSnapshot(p, ok),
  });
  driver = new RaftNodeDriver({
    id,
    peers: ids,
    storage,
    stateMachine: sm,
    send: (m) => transport.send(m),
    tickMs: 20,
    logger: process.env.DBG ? createLogger({ role: "t", bindings: { node: id } }) : undefined,
    snapshotEntries,
    keepEntriesAfterSnapshot: 5,
  });
  const server = await createRpcServer({
    host: "127.0.0.1",
    port: ports.get(id) as number,
    routes: (r) => transport.routes(r),
    shutdownGraceMs: 100,
  });
  driver.start();
  const node = { id, dir, driver, sm, transport, server };
  nodes.set(id, node);
  return node;
}

async function stopNode(id: string): Promise<void> {
  const n = nodes.get(id);
  if (n === undefined) return;
  nodes.delete(id);
  await n.driver.stop();
  await n.transport.close();
  await n.server.close();
}

async function waitFor<T>(what: string, f: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const servingLeader = () => [...nodes.values()].find((n) => n.driver.isServingLeader);

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), "rmq-raft-driver-"));
  ports = await reservePorts();
  nodes = new Map();
});

afterEach(async () => {
  for (const id of [...nodes.keys()]) await stopNode(id);
  closeRpcConnections();
  rmSync(root, { recursive: true, force: true });
});

describe("RaftNodeDriver over WAL storage and the RPC transport", () => {
  it("elects a leader, replicates proposals in order, survives a leader stop and a full restart", async () => {
    for (const id of ids) await startNode(id);
    const leader = await waitFor("a serving leader", servingLeader);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => leader.driver.propose(enc.encode(`a${i}`))),
    );
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1)); // applied in proposal order
    await waitFor("all replicas applied", () =>
      [...nodes.values()].every((n) => n.sm.items.length === 50) ? true : undefined,
    );

    // A follower refuses proposals and names the leader.
    const follower = [...nodes.values()].find((n) => n !== leader) as TestNode;
    const err = await follower.driver.propose(enc.encode("x")).catch((e: unknown) => e);
    expect(isRmqError(err, ErrorCode.RaftNotLeader)).toBe(true);

    // Stop the leader: the other two elect a new one that has every committed entry.
    await stopNode(leader.id);
    const next = await waitFor("a new serving leader", servingLeader);
    expect(next.id).not.toBe(leader.id);
    await next.driver.propose(enc.encode("after-failover"));
    expect(next.sm.items.slice(0, 50)).toEqual(Array.from({ length: 50 }, (_, i) => `a${i}`));

    // Restart everyone from disk: state comes back from the WAL.
    for (const id of [...nodes.keys()]) await stopNode(id);
    for (const id of ids) await startNode(id);
    const again = await waitFor("a serving leader after restart", servingLeader);
    await again.driver.readIndex();
    expect(again.sm.items).toEqual([...Array.from({ length: 50 }, (_, i) => `a${i}`), "after-failover"]);
  });

  it("snapshots and compacts; a follower that fell behind the compaction catches up by snapshot; restarts restore from the snapshot", async () => {
    for (const id of ids) await startNode(id, 20);
    const leader = await waitFor("a serving leader", servingLeader);
    const victim = [...nodes.values()].find((n) => n !== leader) as TestNode;
    await stopNode(victim.id);
    for (let b = 0; b < 10; b++) {
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => leader.driver.propose(enc.encode(`s${b * 10 + i}`))),
      );
    }
    expect(leader.driver.stats.snapshotsTaken).toBeGreaterThan(0);
    expect(leader.driver.status().firstIndex).toBeGreaterThan(1);
    const expected = Array.from({ length: 100 }, (_, i) => `s${i}`);

    // The leader no longer has the entries the stopped follower misses: it must send a snapshot.
    const back = await startNode(victim.id, 20);
    await waitFor("lagging follower caught up", () => (back.sm.items.length === 100 ? true : undefined));
    expect(back.sm.items).toEqual(expected);
    expect(back.driver.stats.snapshotsInstalled).toBe(1);

    // Restart the leader from its own snapshot + WAL tail.
    const leaderId = leader.id;
    await stopNode(leaderId);
    const restarted = await startNode(leaderId, 20);
    await waitFor("restarted node caught up", () => (restarted.sm.items.length === 100 ? true : undefined));
    expect(restarted.sm.items).toEqual(expected);
    expect(restarted.driver.applied).toBeGreaterThanOrEqual(101);
  });

  it("a lone node never becomes leader and refuses proposals with RaftNotLeader", async () => {
    await startNode("n0");
    // Without peers it never becomes leader (pre-vote needs a quorum).
    await new Promise((r) => setTimeout(r, 600));
    expect(nodes.get("n0")?.driver.isLeader).toBe(false);
    const err = await (nodes.get("n0") as TestNode).driver.propose(enc.encode("x")).catch((e: unknown) => e);
    expect(isRmqError(err, ErrorCode.RaftNotLeader)).toBe(true);
  });
});
