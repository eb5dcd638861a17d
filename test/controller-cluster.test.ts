// Three controller PROCESSES on 127.0.0.1: leader election, kill -9 failover without losing committed
// state, a full restart from WAL + snapshot, and a minority (two nodes SIGSTOPped) refusing writes.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeRpcConnections } from "../common/rpc-client.ts";
import type { ControllerClient } from "../controller/controller-client.ts";
import { ControllerCluster } from "./fixtures/controller-cluster.ts";

const CLUSTER = "DefaultCluster";
let dir: string;
let cluster: ControllerCluster;
let client: ControllerClient;

/** One committed write: registers broker id 1 of a new broker set. */
async function applyBrokerId(brokerName: string) {
  return client.onLeader((rpc) =>
    rpc.applyBrokerId({
      clusterName: CLUSTER,
      brokerName,
      appliedBrokerId: 1n,
      registerCheckCode: `10.0.0.1:10911;${brokerName}`,
    }),
  );
}

async function nextBrokerId(brokerName: string): Promise<bigint> {
  const r = await client.onLeader((rpc) => rpc.getNextBrokerId({ clusterName: CLUSTER, brokerName }));
  expect(r.status?.code).toBe(0);
  return r.nextBrokerId;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rmq-controller-cluster-"));
  // Small snapshot interval so the restart below goes through a snapshot and a WAL tail.
  cluster = await ControllerCluster.start({ dir, conf: { controllerRaftSnapshotEntries: 20 } });
  client = cluster.client({ callDeadlineMs: 15_000 });
});

afterAll(async () => {
  await cluster?.close();
  closeRpcConnections();
  rmSync(dir, { recursive: true, force: true });
});

describe("controller processes", () => {
  it("elect one leader that every node names, and serve GetMetaData from any node", async () => {
    const leader = await cluster.waitForLeader();
    const views = await Promise.all(cluster.nodes.map((n) => client.metaData(n.address)));
    for (const v of views) {
      expect(v.group).toBe("group1");
      expect(v.leaderId).toBe(cluster.nodes[leader]?.id);
      expect(v.leaderAddress).toBe(cluster.nodes[leader]?.address);
      expect(v.peers.map((p) => p.id)).toEqual(["n0", "n1", "n2"]);
    }
    expect(views.filter((v) => v.isLeader).length).toBe(1);
    // A follower refuses a write and names the leader.
    const follower = cluster.nodes.find((_, i) => i !== leader);
    const r = await client.rpc(follower?.address as string).applyBrokerId({
      clusterName: CLUSTER,
      brokerName: "x",
      appliedBrokerId: 1n,
      registerCheckCode: "a;1",
    });
    expect(r.status?.name).toBe("CONTROLLER_NOT_LEADER");
    expect(r.status?.leaderAddress).toBe(cluster.nodes[leader]?.address);
  });

  it("kill -9 of the leader: a new leader serves soon and no committed write is lost", async () => {
    for (let i = 0; i < 30; i++) expect((await applyBrokerId(`set-${i}`)).status?.code).toBe(0);
    const old = await cluster.waitForLeader();
    const killedAt = Date.now();
    await cluster.signal(old, "SIGKILL");
    client.resetLeader();
    const r = await applyBrokerId("after-failover");
    const failoverMs = Date.now() - killedAt;
    expect(r.status?.code).toBe(0);
    console.log(`controller failover: first write through the new leader ${failoverMs} ms after kill -9`);
    // Election timeout is 0.5-1.0 s (10 ticks of 50 ms, randomized); `npm run bench:controller`
    // measures the distribution over 20 kills. A pre-vote that reaches the other follower inside its
    // leader lease costs one more timeout, and CI runs other test files beside this one: allow that.
    expect(failoverMs).toBeLessThan(3000);
    const newLeader = await cluster.waitForLeader();
    expect(newLeader).not.toBe(old);
    for (let i = 0; i < 30; i++) expect(await nextBrokerId(`set-${i}`)).toBe(2n); // id 1 taken in every set
    // The killed node comes back and catches up.
    cluster.startNode(old);
    const end = Date.now() + 15_000;
    for (;;) {
      const md = await client.metaData(cluster.nodes[old]?.address).catch(() => undefined);
      const leaderMd = await client.metaData(cluster.nodes[newLeader]?.address);
      if (md !== undefined && md.appliedIndex >= leaderMd.commitIndex && md.leaderId !== "") break;
      if (Date.now() > end) throw new Error(`restarted node did not catch up\n${cluster.logs()}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  });

  it("a full restart brings the state back from the WAL and the snapshot", async () => {
    // SIGTERM on the leader: it hands leadership over before it exits 0.
    const leader = await cluster.waitForLeader();
    expect(await cluster.signal(leader, "SIGTERM")).toBe(0);
    expect(readFileSync(cluster.nodes[leader]?.logFile as string, "utf8")).toMatch(
      /"handedOver":true,"msg":"leadership handed over before stopping"/,
    );
    await cluster.waitForLeader(15_000, [leader]);
    const others = [0, 1, 2].filter((i) => i !== leader);
    const codes = await Promise.all(others.map((i) => cluster.signal(i, "SIGTERM")));
    expect(codes).toEqual([0, 0]); // graceful stop exits 0
    for (const n of cluster.nodes)
      expect(readdirSync(join(n.storePath, "snap")).some((f) => f.endsWith(".snap"))).toBe(true);
    closeRpcConnections();
    for (let i = 0; i < cluster.nodes.length; i++) cluster.startNode(i);
    await cluster.waitForLeader();
    client.resetLeader();
    for (let i = 0; i < 30; i++) expect(await nextBrokerId(`set-${i}`)).toBe(2n);
    expect(await nextBrokerId("after-failover")).toBe(2n);
    expect(await nextBrokerId("never-registered")).toBe(1n);
  });

  it("a minority cannot change state: with two nodes SIGSTOPped the third refuses writes; SIGCONT heals", async () => {
    const leader = await cluster.waitForLeader();
    const lone = (leader + 1) % 3; // a follower stays up; stop the leader and the other follower
    const stopped = [0, 1, 2].filter((i) => i !== lone);
    for (const i of stopped) await cluster.signal(i, "SIGSTOP");
    try {
      const loneClient = cluster.client({ callDeadlineMs: 3000 });
      const loneRpc = loneClient.rpc(cluster.nodes[lone]?.address as string);
      // Whatever it believes, it cannot commit: NOT_LEADER, or a timeout while it campaigns in vain.
      const end = Date.now() + 4000;
      while (Date.now() < end) {
        const r = await loneRpc.applyBrokerId(
          {
            clusterName: CLUSTER,
            brokerName: "minority-write",
            appliedBrokerId: 1n,
            registerCheckCode: "m;1",
          },
          { timeoutMs: 7000 },
        );
        expect(r.status?.code).not.toBe(0);
        expect(["CONTROLLER_NOT_LEADER", "SYSTEM_ERROR"]).toContain(r.status?.name);
        await new Promise((res) => setTimeout(res, 300));
      }
      const md = await loneRpc.getMetaData({});
      expect(md.leaderServing).toBe(false);
    } finally {
      for (const i of stopped) await cluster.signal(i, "SIGCONT");
    }
    await cluster.waitForLeader();
    client.resetLeader();
    expect(await nextBrokerId("minority-write")).toBe(1n); // the refused write never happened
    expect((await applyBrokerId("after-heal")).status?.code).toBe(0);
  });
});
