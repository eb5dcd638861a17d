// Controller operations driven by a scripted fake broker set: real RPC against three real controller
// processes, no broker code. Covers the first election, AlterSyncStateSet fencing, the election from
// the SyncStateSet when the master's heartbeat expires (with role-change pushes), designateElect and
// the other controller admin commands through the rmq CLI, and unclean election only when enabled.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeRpcConnections } from "../common/rpc-client.ts";
import type { ControllerClient } from "../controller/controller-client.ts";
import { ControllerCluster } from "./fixtures/controller-cluster.ts";
import { FakeBroker } from "./fixtures/controller-fake-broker.ts";

const CLUSTER = "DefaultCluster";
let dir: string;
let cluster: ControllerCluster;
let client: ControllerClient;
const brokers: FakeBroker[] = [];

function broker(brokerName: string, port: number): FakeBroker {
  const b = new FakeBroker(client, CLUSTER, brokerName, `127.0.0.1:${port}`);
  brokers.push(b);
  return b;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${cluster.logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let a1: FakeBroker;
let a2: FakeBroker;
let a3: FakeBroker;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rmq-controller-ops-"));
  cluster = await ControllerCluster.start({
    dir,
    conf: { scanNotActiveBrokerInterval: 200, scanInactiveMasterInterval: 200 },
  });
  client = cluster.client({ callDeadlineMs: 15_000 });
  await cluster.waitForLeader();
});

afterAll(async () => {
  for (const b of brokers) b.stop();
  await cluster?.close();
  closeRpcConnections();
  rmSync(dir, { recursive: true, force: true });
});

describe("controller operations with a scripted broker set", () => {
  it("registration hands out ids 1..3; the first election makes the requester master", async () => {
    a1 = broker("broker-a", 10911);
    a2 = broker("broker-a", 10921);
    a3 = broker("broker-a", 10931);
    for (const b of [a1, a2, a3]) {
      const reg = await b.register();
      expect(reg.masterBrokerId).toBeUndefined(); // no master yet
      b.startHeartbeats();
    }
    expect([a1.brokerId, a2.brokerId, a3.brokerId]).toEqual([1, 2, 3]);
    a2.watchRoleChanges();
    a3.watchRoleChanges();
    await sleep(300); // let the watch streams open

    const r = await a1.elect();
    expect(r.status?.code).toBe(0);
    expect(r.masterBrokerId).toBe(1n);
    expect(r.masterAddress).toBe(a1.address);
    expect(r.masterEpoch).toBe(1);
    expect(r.syncStateSet).toEqual([1n]);
    expect(r.brokerMemberGroup?.brokerAddrs).toEqual({ "1": a1.address, "2": a2.address, "3": a3.address });

    const again = await a2.elect();
    expect(again.status?.name).toBe("CONTROLLER_MASTER_STILL_EXIST");
    expect(again.masterBrokerId).toBe(1n);

    // The other members were told (NOTIFY_BROKER_ROLE_CHANGED as a stream).
    await waitFor("role-change push to broker 2", async () =>
      a2.notifications.some((n) => n.masterBrokerId === 1n && n.masterEpoch === 1) ? true : undefined,
    );
    // RegisterBroker (a broker restarting with its persisted id) now reports the alive master.
    const reg = await client.onLeader((rpc) =>
      rpc.registerBroker({
        clusterName: CLUSTER,
        brokerName: "broker-a",
        brokerId: 3n,
        brokerAddress: a3.address,
      }),
    );
    expect(reg.masterBrokerId).toBe(1n);
    expect(reg.masterAddress).toBe(a1.address);
    expect(reg.syncStateSet?.syncStateSet).toEqual([1n]);
  });

  it("AlterSyncStateSet is fenced by stale epochs and by a non-master sender", async () => {
    const grow = await a1.alterSyncStateSet(1, 1, [1, 2, 3]);
    expect(grow.status?.code).toBe(0);
    expect(grow.newSyncStateSetEpoch).toBe(2);
    expect((await a1.alterSyncStateSet(0, 2, [1, 2])).status?.name).toBe("CONTROLLER_FENCED_MASTER_EPOCH");
    expect((await a1.alterSyncStateSet(1, 1, [1, 2])).status?.name).toBe(
      "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
    );
    expect((await a2.alterSyncStateSet(1, 2, [1, 2])).status?.name).toBe("CONTROLLER_INVALID_MASTER");
    const shrink = await a1.alterSyncStateSet(1, 2, [1, 2]);
    expect(shrink.status?.code).toBe(0);
    const info = await a1.replicaInfo();
    expect(info.masterBrokerId).toBe(1n);
    expect(info.syncStateSet?.syncStateSet).toEqual([1n, 2n]);
    expect(info.syncStateSet?.syncStateSetEpoch).toBe(3);
  });

  it("when the master's heartbeat expires, the controller elects from the SyncStateSet only", async () => {
    // Broker 3 reports the best log but is not in the SyncStateSet {1, 2}: it must not win.
    a2.epoch = 1;
    a2.maxOffset = 100;
    a3.epoch = 1;
    a3.maxOffset = 5000;
    await Promise.all([a2.heartbeat(), a3.heartbeat()]);
    a1.stopHeartbeats();
    const info = await waitFor("a new master", async () => {
      const i = await a2.replicaInfo();
      return i.masterBrokerId === 2n ? i : undefined;
    });
    expect(info.masterAddress).toBe(a2.address);
    expect(info.masterEpoch).toBe(2);
    expect(info.syncStateSet?.syncStateSet).toEqual([2n]);
    await waitFor("role-change push to broker 3", async () =>
      a3.notifications.some((n) => n.masterBrokerId === 2n && n.masterEpoch === 2) ? true : undefined,
    );

    const sss = await cluster.admin(["getSyncStateSet", "-a", cluster.addresses, "-b", "broker-a"]);
    expect(sss.code).toBe(0);
    expect(sss.stdout).toContain("#brokerName\tbroker-a");
    expect(sss.stdout).toContain(`#MasterAddr\t${a2.address}`);
    expect(sss.stdout).toContain("#MasterEpoch\t2");
    expect(sss.stdout).toContain("#SyncStateSetNums\t1");
    expect(sss.stdout).toMatch(
      /InSyncReplica:\tReplicaIdentity\{brokerName='broker-a', brokerId=2, [^\n]*\tonline/,
    );
    expect(sss.stdout).toMatch(
      /NotInSyncReplica:\tReplicaIdentity\{brokerName='broker-a', brokerId=1, [^\n]*\toffline/,
    );

    const epochs = await cluster.admin(["getBrokerEpoch", "-a", cluster.addresses, "-b", "broker-a"]);
    expect(epochs.code).toBe(0);
    expect(epochs.stdout).toContain(
      `#brokerAddr\t${a2.address}\n#brokerId\t2\n#Epoch: EpochEntry{epoch=1, startOffset=0, endOffset=100}`,
    );
  });

  it("designateElect through `rmq admin electMaster`, refused for a dead broker", async () => {
    const info = await a2.replicaInfo();
    const grow = await a2.alterSyncStateSet(
      info.masterEpoch,
      info.syncStateSet?.syncStateSetEpoch ?? -1,
      [2, 3],
    );
    expect(grow.status?.code).toBe(0);

    const ok = await cluster.admin([
      "electMaster",
      "-a",
      cluster.addresses,
      "-b",
      "broker-a",
      "-i",
      "3",
      "-c",
      CLUSTER,
    ]);
    expect(ok.stderr).toBe("");
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`#BrokerMasterAddr\t${a3.address}`);
    expect(ok.stdout).toContain("#MasterEpoch\t3");
    expect(ok.stdout).toContain(`\t#Broker\t3\t${a3.address}`);
    expect((await a3.replicaInfo()).masterBrokerId).toBe(3n);

    const dead = await cluster.admin(["electMaster", "-a", cluster.addresses, "-b", "broker-a", "-i", "1"]);
    expect(dead.code).not.toBe(0);
    expect(dead.stderr).toContain("CONTROLLER_ELECT_MASTER_FAILED");

    const md = await cluster.admin(["getControllerMetaData", "-a", cluster.addresses]);
    expect(md.code).toBe(0);
    expect(md.stdout).toContain("#ControllerGroup\tgroup1");
    expect(md.stdout).toMatch(/#ControllerLeaderId\tn[012]/);
    expect(md.stdout).toContain(`#Peer:\tn0-${cluster.nodes[0]?.address}`);
  });

  it("an out-of-sync replica becomes master only when enableElectUncleanMaster is on", async () => {
    const b1 = broker("broker-b", 11911);
    const b2 = broker("broker-b", 11921);
    for (const b of [b1, b2]) {
      await b.register();
      b.startHeartbeats();
    }
    expect((await b1.elect()).masterBrokerId).toBe(1n); // SyncStateSet {1}
    b1.stopHeartbeats();
    // The controller sees the master expire, finds no in-sync replica alive, and records "no master".
    await waitFor("the master to be cleared", async () => {
      const i = await b2.replicaInfo();
      return i.masterBrokerId === undefined && i.masterEpoch === 2 ? true : undefined;
    });
    expect((await b2.elect()).status?.name).toBe("CONTROLLER_ELECT_MASTER_FAILED");

    // Same state, restarted with unclean election allowed.
    await Promise.all(cluster.nodes.map((_, i) => cluster.signal(i, "SIGTERM")));
    closeRpcConnections();
    cluster.reconfigure({ enableElectUncleanMaster: true });
    for (let i = 0; i < 3; i++) cluster.startNode(i);
    await cluster.waitForLeader();
    client.resetLeader();
    const elected = await waitFor("an unclean election", async () => {
      const r = await b2.elect();
      return r.status?.code === 0 ? r : undefined; // b2's heartbeat must reach the new leader first
    });
    expect(elected.masterBrokerId).toBe(2n);
    expect(elected.masterEpoch).toBe(3);
    expect(elected.syncStateSet).toEqual([2n]);

    // cleanBrokerMetadata refuses a set with a living broker unless told otherwise.
    const refused = await cluster.admin([
      "cleanBrokerMetadata",
      "-a",
      cluster.addresses,
      "-b",
      "broker-b",
      "-c",
      CLUSTER,
    ]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("CONTROLLER_INVALID_CLEAN_BROKER_METADATA");
    const cleaned = await cluster.admin([
      "cleanBrokerMetadata",
      "-a",
      cluster.addresses,
      "-b",
      "broker-b",
      "--cleanLivingBroker",
    ]);
    expect(cleaned.code).toBe(0);
    expect(cleaned.stdout).toContain("clear broker broker-b metadata from controller success!");
    const gone = await cluster.admin(["getSyncStateSet", "-a", cluster.addresses, "-b", "broker-b"]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain("broker-b");
  });
});
