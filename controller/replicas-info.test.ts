import { describe, expect, it } from "vitest";
import type { ControllerResult } from "./commands.ts";
import { compareCandidates } from "./elect-policy.ts";
import { type ControllerEvent, decodeControllerEvents, encodeControllerEvents } from "./events.ts";
import { BrokerHeartbeatManager } from "./heartbeat-manager.ts";
import { ReplicasInfoManager, type ReplicasInfoOptions } from "./replicas-info.ts";

const CLUSTER = "DefaultCluster";
const SET = "broker-a";
const TIMEOUT = 10_000;

function addr(id: number): string {
  return `127.0.0.1:${30910 + id}`;
}

/** A controller replica as the server will drive it: validate, then apply the entry bytes on commit. */
class Harness {
  readonly mgr: ReplicasInfoManager;
  readonly hb = new BrokerHeartbeatManager();
  now = 1_000_000;

  constructor(options: Partial<ReplicasInfoOptions> = {}) {
    this.mgr = new ReplicasInfoManager(options);
  }

  get live() {
    return this.hb.view(this.now);
  }

  beat(
    id: number,
    fields: { epoch?: number; maxOffset?: number; electionPriority?: number } = {},
    brokerName = SET,
  ) {
    this.hb.onBrokerHeartbeat(
      {
        clusterName: CLUSTER,
        brokerName,
        brokerId: id,
        brokerAddress: addr(id),
        heartbeatTimeoutMillis: TIMEOUT,
        ...fields,
      },
      this.now,
    );
  }

  /** Lets every broker's heartbeat expire except the given ones (which beat again now). */
  killAllBut(alive: number[], brokerName = SET) {
    this.now += TIMEOUT + 1;
    for (const id of alive) this.beat(id, {}, brokerName);
  }

  /** Commits the events of a result through the byte codec, as a Raft entry would. */
  commit<T>(result: ControllerResult<T>): ControllerResult<T> {
    if (result.events.length > 0) {
      const outcomes = this.mgr.applyEntryData(encodeControllerEvents(result.events));
      for (const o of outcomes) expect(o).toEqual({ applied: true });
    }
    return result;
  }

  register(id: number, brokerName = SET) {
    const r = this.commit(
      this.mgr.applyBrokerId({
        clusterName: CLUSTER,
        brokerName,
        appliedBrokerId: id,
        registerCheckCode: `${addr(id)};${id}`,
      }),
    );
    expect(r.ok).toBe(true);
    this.beat(id, {}, brokerName);
  }

  elect(brokerId: number, designateElect = false, brokerName = SET) {
    return this.commit(
      this.mgr.electMaster({ clusterName: CLUSTER, brokerName, brokerId, designateElect }, this.live),
    );
  }

  alter(
    masterBrokerId: number,
    members: number[],
    epochs?: { masterEpoch: number; syncStateSetEpoch: number },
  ) {
    const set = this.set();
    return this.commit(
      this.mgr.alterSyncStateSet(
        {
          brokerName: SET,
          masterBrokerId,
          masterEpoch: epochs?.masterEpoch ?? set.masterEpoch,
          syncStateSetEpoch: epochs?.syncStateSetEpoch ?? set.syncStateSetEpoch,
          newSyncStateSet: members,
        },
        this.live,
      ),
    );
  }

  set(brokerName = SET) {
    const s = this.mgr.view.brokerSets.get(brokerName);
    if (s === undefined) throw new Error(`no broker set ${brokerName}`);
    return s;
  }
}

function errorCode<T>(r: ControllerResult<T>): string {
  return r.ok ? "SUCCESS" : r.error.code;
}

/** Three registered, alive brokers; 1 elected first; SyncStateSet {1,2,3} at syncStateSetEpoch 2. */
function threeReplicas(options: Partial<ReplicasInfoOptions> = {}): Harness {
  const h = new Harness(options);
  for (const id of [1, 2, 3]) h.register(id);
  expect(errorCode(h.elect(1))).toBe("SUCCESS");
  expect(errorCode(h.alter(1, [1, 2, 3]))).toBe("SUCCESS");
  return h;
}

describe("broker ids and registration", () => {
  it("hands out ids from 1, requires 1 first, and keeps an id bound to its register check code", () => {
    const h = new Harness();
    expect(h.mgr.getNextBrokerId({ clusterName: CLUSTER, brokerName: SET })).toMatchObject({
      ok: true,
      response: { nextBrokerId: 1 },
    });
    const wrongFirst = h.mgr.applyBrokerId({
      clusterName: CLUSTER,
      brokerName: SET,
      appliedBrokerId: 2,
      registerCheckCode: `${addr(2)};1`,
    });
    expect(errorCode(wrongFirst)).toBe("CONTROLLER_BROKER_ID_INVALID");
    expect(wrongFirst.ok ? 0 : wrongFirst.error.responseCode).toBe(2014);

    h.register(1);
    h.register(2);
    expect(h.mgr.getNextBrokerId({ clusterName: CLUSTER, brokerName: SET })).toMatchObject({
      response: { nextBrokerId: 3 },
    });
    // The same broker re-applying (it crashed between the temp file and the final one) succeeds, no write.
    const again = h.mgr.applyBrokerId({
      clusterName: CLUSTER,
      brokerName: SET,
      appliedBrokerId: 2,
      registerCheckCode: `${addr(2)};2`,
    });
    expect(again).toMatchObject({ ok: true, events: [] });
    // Another broker asking for the taken id is refused.
    const other = h.mgr.applyBrokerId({
      clusterName: CLUSTER,
      brokerName: SET,
      appliedBrokerId: 2,
      registerCheckCode: "10.0.0.9:10911;77",
    });
    expect(errorCode(other)).toBe("CONTROLLER_BROKER_ID_INVALID");
    // An id applied out of order moves nextBrokerId past it, so it is never handed out twice.
    h.register(7);
    expect(h.mgr.getNextBrokerId({ clusterName: CLUSTER, brokerName: SET }).response).toMatchObject({
      nextBrokerId: 8,
    });
    expect(h.set().brokers.get(7)).toEqual({ address: addr(7), registerCheckCode: `${addr(7)};7` });
  });

  it("rejects malformed requests with CONTROLLER_INVALID_REQUEST", () => {
    const h = new Harness();
    const r = h.mgr.applyBrokerId({
      clusterName: CLUSTER,
      brokerName: "",
      appliedBrokerId: 1,
      registerCheckCode: "x;1",
    });
    expect(errorCode(r)).toBe("CONTROLLER_INVALID_REQUEST");
    const r2 = h.mgr.applyBrokerId({
      clusterName: CLUSTER,
      brokerName: SET,
      appliedBrokerId: 1.5,
      registerCheckCode: "x;1",
    });
    expect(errorCode(r2)).toBe("CONTROLLER_INVALID_REQUEST");
    const r3 = h.mgr.electMaster(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 0, designateElect: false },
      h.live,
    );
    expect(errorCode(r3)).toBe("CONTROLLER_INVALID_REQUEST");
  });

  it("RegisterBroker needs a registered set and id, reports an alive master only, and records a new address", () => {
    const h = new Harness();
    const unknown = h.mgr.registerBroker(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 1, brokerAddress: addr(1) },
      h.live,
    );
    expect(errorCode(unknown)).toBe("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED");
    h.register(1);
    h.register(2);
    const unknownId = h.mgr.registerBroker(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 5, brokerAddress: addr(5) },
      h.live,
    );
    expect(errorCode(unknownId)).toBe("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED");

    const before = h.mgr.registerBroker(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 2, brokerAddress: addr(2) },
      h.live,
    );
    expect(before).toMatchObject({
      ok: true,
      events: [],
      response: { masterBrokerId: null, masterAddress: null },
    });

    h.elect(1);
    const withMaster = h.mgr.registerBroker(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 2, brokerAddress: addr(2) },
      h.live,
    );
    expect(withMaster.response).toMatchObject({
      masterBrokerId: 1,
      masterAddress: addr(1),
      masterEpoch: 1,
      syncStateSetEpoch: 1,
      syncStateSet: { syncStateSet: [1], syncStateSetEpoch: 1 },
    });

    h.killAllBut([2]);
    const deadMaster = h.mgr.registerBroker(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 2, brokerAddress: addr(2) },
      h.live,
    );
    expect(deadMaster.response).toMatchObject({ masterBrokerId: null, masterEpoch: null });

    const moved = h.commit(
      h.mgr.registerBroker(
        { clusterName: CLUSTER, brokerName: SET, brokerId: 2, brokerAddress: "10.1.1.1:10911" },
        h.live,
      ),
    );
    expect(moved.events).toEqual([
      {
        type: "UpdateBrokerAddress",
        clusterName: CLUSTER,
        brokerName: SET,
        brokerId: 2,
        brokerAddress: "10.1.1.1:10911",
      },
    ]);
    expect(h.set().brokers.get(2)?.address).toBe("10.1.1.1:10911");
  });
});

describe("ElectMaster", () => {
  it("first election: the requester becomes master at masterEpoch 1 with SyncStateSet {requester}", () => {
    const h = new Harness();
    h.register(1);
    h.register(2);
    const r = h.elect(2);
    expect(r).toMatchObject({
      ok: true,
      response: {
        masterBrokerId: 2,
        masterAddress: addr(2),
        masterEpoch: 1,
        syncStateSetEpoch: 1,
        syncStateSet: [2],
      },
    });
    expect(r.ok && r.response.brokerMemberGroup?.brokerAddrs).toEqual([
      { brokerId: 1, address: addr(1) },
      { brokerId: 2, address: addr(2) },
    ]);
    expect(h.set()).toMatchObject({ masterBrokerId: 2, masterEpoch: 1, syncStateSetEpoch: 1 });
    expect([...h.set().syncStateSet]).toEqual([2]);

    // Another broker asking while the master is alive: nothing changes, current master reported.
    const still = h.elect(1);
    expect(errorCode(still)).toBe("CONTROLLER_MASTER_STILL_EXIST");
    expect(still.response).toMatchObject({ masterBrokerId: 2, masterEpoch: 1, syncStateSetEpoch: 1 });
    expect(still.events).toEqual([]);
  });

  it("unknown broker set or unregistered requester cannot elect", () => {
    const h = new Harness();
    expect(errorCode(h.elect(1))).toBe("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED");
    h.register(1);
    expect(errorCode(h.elect(9))).toBe("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED");
  });

  it("elects only from the alive SyncStateSet; with nobody eligible the controller clears the master", () => {
    const h = new Harness();
    for (const id of [1, 2, 3]) h.register(id);
    h.elect(1);
    h.alter(1, [1, 2]);
    // 3 is alive and far ahead, but not in the SyncStateSet.
    h.killAllBut([2, 3]);
    h.beat(2, { epoch: 1, maxOffset: 100 });
    h.beat(3, { epoch: 5, maxOffset: 1_000_000 });
    const r = h.elect(-1);
    expect(r).toMatchObject({
      ok: true,
      response: { masterBrokerId: 2, masterEpoch: 2, syncStateSetEpoch: 3 },
    });
    expect(h.set().masterBrokerId).toBe(2);
    expect([...h.set().syncStateSet]).toEqual([2]);

    // Now only 3 (not in the SyncStateSet) is alive.
    h.killAllBut([3]);
    const byBroker = h.elect(3);
    expect(errorCode(byBroker)).toBe("CONTROLLER_ELECT_MASTER_FAILED");
    expect(byBroker.events).toEqual([]);
    expect(h.set().masterBrokerId).toBe(2);

    const byController = h.elect(-1);
    expect(errorCode(byController)).toBe("CONTROLLER_MASTER_NOT_AVAILABLE");
    expect(byController.ok ? 0 : byController.error.responseCode).toBe(2004);
    expect(h.set()).toMatchObject({ masterBrokerId: null, masterEpoch: 3, syncStateSetEpoch: 3 });
    expect([...h.set().syncStateSet]).toEqual([2]); // kept: 2 is the only safe candidate when it returns

    // Repeating it changes nothing more (no master to clear).
    const again = h.elect(-1);
    expect(again.events).toEqual([]);
    expect(h.set().masterEpoch).toBe(3);

    // 2 comes back: it is elected, not 3.
    h.beat(2);
    expect(h.elect(3)).toMatchObject({ ok: true, response: { masterBrokerId: 2, masterEpoch: 4 } });
  });

  it("unclean election picks from all alive replicas only when enableElectUncleanMaster is set", () => {
    for (const unclean of [false, true]) {
      const h = new Harness({ enableElectUncleanMaster: unclean });
      for (const id of [1, 2, 3]) h.register(id);
      h.elect(1);
      h.alter(1, [1, 2]);
      h.killAllBut([3]);
      const r = h.elect(-1);
      if (unclean) {
        expect(r).toMatchObject({ ok: true, response: { masterBrokerId: 3, syncStateSet: [3] } });
        expect(h.set().masterBrokerId).toBe(3);
      } else {
        expect(errorCode(r)).toBe("CONTROLLER_MASTER_NOT_AVAILABLE");
        expect(h.set().masterBrokerId).toBe(null);
      }
    }
  });

  it("the SyncStateSet is preferred over other replicas even with unclean election enabled", () => {
    const h = new Harness({ enableElectUncleanMaster: true });
    for (const id of [1, 2, 3]) h.register(id);
    h.elect(1);
    h.alter(1, [1, 2]);
    h.killAllBut([2, 3]);
    h.beat(3, { epoch: 9, maxOffset: 9_999 });
    expect(h.elect(-1).response).toMatchObject({ masterBrokerId: 2 });
  });

  it("designateElect picks the designated alive member, refuses a dead or ineligible one", () => {
    const h = threeReplicas();
    // Designating the current master: nothing to do.
    expect(errorCode(h.elect(1, true))).toBe("CONTROLLER_MASTER_STILL_EXIST");
    // Designating an alive SyncStateSet member moves mastership even though the master is alive.
    expect(h.elect(3, true)).toMatchObject({ ok: true, response: { masterBrokerId: 3, masterEpoch: 2 } });
    expect(h.set().masterBrokerId).toBe(3);
    // 2 was dropped from the SyncStateSet by the election ({3}); designating it fails without unclean.
    expect(errorCode(h.elect(2, true))).toBe("CONTROLLER_ELECT_MASTER_FAILED");
    // Back in the set, but dead: still refused.
    h.alter(3, [1, 2, 3]);
    h.killAllBut([1, 3]);
    expect(errorCode(h.elect(2, true))).toBe("CONTROLLER_ELECT_MASTER_FAILED");
    expect(h.set().masterBrokerId).toBe(3);
  });

  it("designateElect of a replica outside the SyncStateSet works only with unclean election", () => {
    const h = threeReplicas({ enableElectUncleanMaster: true });
    h.elect(1, false); // still master
    h.alter(1, [1, 2]);
    expect(h.elect(3, true)).toMatchObject({ ok: true, response: { masterBrokerId: 3 } });
  });

  it("orders candidates by epoch desc, then maxOffset desc, then electionPriority asc, then broker id", () => {
    const cases: Array<{
      beats: Record<number, { epoch: number; maxOffset: number; electionPriority?: number }>;
      winner: number;
    }> = [
      { beats: { 2: { epoch: 3, maxOffset: 10 }, 3: { epoch: 4, maxOffset: 1 } }, winner: 3 },
      { beats: { 2: { epoch: 4, maxOffset: 10 }, 3: { epoch: 4, maxOffset: 9 } }, winner: 2 },
      {
        beats: {
          2: { epoch: 4, maxOffset: 10, electionPriority: 5 },
          3: { epoch: 4, maxOffset: 10, electionPriority: 1 },
        },
        winner: 3,
      },
      {
        beats: { 2: { epoch: 4, maxOffset: 10, electionPriority: 5 }, 3: { epoch: 4, maxOffset: 10 } },
        winner: 2,
      },
      { beats: { 2: { epoch: 4, maxOffset: 10 }, 3: { epoch: 4, maxOffset: 10 } }, winner: 2 },
      // Offsets beyond 2^31 compare correctly (upstream's int cast of a long difference would not).
      {
        beats: { 2: { epoch: 4, maxOffset: 2 ** 40 }, 3: { epoch: 4, maxOffset: 2 ** 40 + 2 ** 32 } },
        winner: 3,
      },
    ];
    for (const { beats, winner } of cases) {
      const h = threeReplicas();
      h.killAllBut([2, 3]);
      for (const [id, fields] of Object.entries(beats)) {
        // A fresh table entry per case: priorities and offsets as given.
        h.hb.remove(CLUSTER, SET, Number(id));
        h.beat(Number(id), fields);
      }
      expect(h.elect(-1).response?.masterBrokerId).toBe(winner);
    }
    expect(
      compareCandidates(
        { brokerId: 1, epoch: 1, maxOffset: 5, electionPriority: 1 },
        { brokerId: 2, epoch: 1, maxOffset: 5, electionPriority: 1 },
      ),
    ).toBeLessThan(0);
  });

  it("an election validated against a stale state is refused when it commits", () => {
    const h = threeReplicas();
    h.killAllBut([2, 3]);
    const first = h.mgr.electMaster(
      { clusterName: CLUSTER, brokerName: SET, brokerId: -1, designateElect: false },
      h.live,
    );
    const second = h.mgr.electMaster(
      { clusterName: CLUSTER, brokerName: SET, brokerId: 3, designateElect: true },
      h.live,
    );
    expect(first.ok && second.ok).toBe(true);
    const outcomes = h.mgr.applyEntryData(encodeControllerEvents([...first.events, ...second.events]));
    expect(outcomes[0]).toEqual({ applied: true });
    expect(outcomes[1]).toMatchObject({ applied: false, error: { code: "CONTROLLER_FENCED_MASTER_EPOCH" } });
    expect(h.set()).toMatchObject({ masterBrokerId: 2, masterEpoch: 2 });
  });
});

describe("AlterSyncStateSet", () => {
  it("expands and shrinks for the current master at the current epochs", () => {
    const h = threeReplicas();
    expect([...h.set().syncStateSet].sort()).toEqual([1, 2, 3]);
    expect(h.set().syncStateSetEpoch).toBe(2);
    const r = h.alter(1, [3, 1]);
    expect(r).toMatchObject({
      ok: true,
      response: { newSyncStateSetEpoch: 3, syncStateSet: { syncStateSet: [1, 3], syncStateSetEpoch: 3 } },
    });
    expect(h.set().syncStateSetEpoch).toBe(3);
    expect(h.set().masterEpoch).toBe(1);
  });

  it("fences a stale masterEpoch and a stale syncStateSetEpoch", () => {
    const h = threeReplicas();
    const staleMaster = h.alter(1, [1, 2], { masterEpoch: 0, syncStateSetEpoch: 2 });
    expect(errorCode(staleMaster)).toBe("CONTROLLER_FENCED_MASTER_EPOCH");
    expect(staleMaster.ok ? 0 : staleMaster.error.responseCode).toBe(2000);
    const staleSet = h.alter(1, [1, 2], { masterEpoch: 1, syncStateSetEpoch: 1 });
    expect(errorCode(staleSet)).toBe("CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH");
    expect(staleSet.ok ? 0 : staleSet.error.responseCode).toBe(2001);
    // A future epoch is as wrong as a past one.
    expect(errorCode(h.alter(1, [1, 2], { masterEpoch: 1, syncStateSetEpoch: 7 }))).toBe(
      "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
    );
    expect(h.set().syncStateSetEpoch).toBe(2);
  });

  it("refuses a non-master, a set without the master, unknown or dead members, and no-op changes", () => {
    const h = threeReplicas();
    expect(errorCode(h.alter(2, [1, 2]))).toBe("CONTROLLER_INVALID_MASTER");
    expect(errorCode(h.alter(1, [2, 3]))).toBe("CONTROLLER_ALTER_SYNC_STATE_SET_FAILED");
    expect(errorCode(h.alter(1, [1, 4]))).toBe("CONTROLLER_INVALID_REPLICAS");
    expect(errorCode(h.alter(1, [1, 2, 3]))).toBe("CONTROLLER_ALTER_SYNC_STATE_SET_FAILED");
    h.killAllBut([1, 2]);
    expect(errorCode(h.alter(1, [1, 3]))).toBe("CONTROLLER_BROKER_NOT_ALIVE");
    expect(errorCode(h.alter(1, [1]))).toBe("SUCCESS");
    // An old master, after a new one was elected, is fenced.
    const hh = threeReplicas();
    hh.elect(2, true);
    expect(errorCode(hh.alter(1, [1, 2], { masterEpoch: 1, syncStateSetEpoch: 2 }))).toBe(
      "CONTROLLER_INVALID_MASTER",
    );
  });

  it("an alter validated before a conflicting change is refused when it commits", () => {
    const h = threeReplicas();
    const a = h.mgr.alterSyncStateSet(
      { brokerName: SET, masterBrokerId: 1, masterEpoch: 1, syncStateSetEpoch: 2, newSyncStateSet: [1, 2] },
      h.live,
    );
    const b = h.mgr.alterSyncStateSet(
      { brokerName: SET, masterBrokerId: 1, masterEpoch: 1, syncStateSetEpoch: 2, newSyncStateSet: [1, 3] },
      h.live,
    );
    const outcomes = h.mgr.applyEntryData(encodeControllerEvents([...a.events, ...b.events]));
    expect(outcomes[1]).toMatchObject({
      applied: false,
      error: { code: "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH" },
    });
    expect([...h.set().syncStateSet].sort()).toEqual([1, 2]);
  });
});

describe("reads", () => {
  it("GetReplicaInfo and GetSyncStateData report master, epochs and in/out-of-sync replicas with liveness", () => {
    const h = threeReplicas();
    h.alter(1, [1, 3]);
    h.killAllBut([1, 2]);
    expect(h.mgr.getReplicaInfo({ brokerName: SET })).toMatchObject({
      ok: true,
      response: {
        masterBrokerId: 1,
        masterAddress: addr(1),
        masterEpoch: 1,
        syncStateSet: { syncStateSet: [1, 3], syncStateSetEpoch: 3 },
      },
    });
    expect(errorCode(h.mgr.getReplicaInfo({ brokerName: "nope" }))).toBe(
      "CONTROLLER_BROKER_METADATA_NOT_EXIST",
    );
    const data = h.mgr.getSyncStateData([SET, "nope"], h.live);
    expect(data.ok && [...data.response.replicasInfoTable.keys()]).toEqual([SET]);
    const info = data.response?.replicasInfoTable.get(SET);
    expect(info).toMatchObject({ masterBrokerId: 1, masterEpoch: 1, syncStateSetEpoch: 3 });
    expect(info?.inSyncReplicas.map((r) => [r.brokerId, r.alive])).toEqual([
      [1, true],
      [3, false],
    ]);
    expect(info?.notInSyncReplicas.map((r) => [r.brokerId, r.alive])).toEqual([[2, true]]);
  });

  it("scanNeedReelectBrokerSets lists sets whose master is dead while a replica lives", () => {
    const h = threeReplicas();
    expect(h.mgr.scanNeedReelectBrokerSets(h.live)).toEqual([]);
    h.killAllBut([2]);
    expect(h.mgr.scanNeedReelectBrokerSets(h.live)).toEqual([{ clusterName: CLUSTER, brokerName: SET }]);
    h.killAllBut([]);
    expect(h.mgr.scanNeedReelectBrokerSets(h.live)).toEqual([]);
  });
});

describe("CleanBrokerData", () => {
  it("refuses alive brokers unless cleanLivingBroker, and malformed id lists", () => {
    const h = threeReplicas();
    const req = { clusterName: CLUSTER, brokerName: SET, cleanLivingBroker: false };
    expect(errorCode(h.mgr.cleanBrokerData({ ...req, brokerControllerIdsToClean: "2" }, h.live))).toBe(
      "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
    );
    expect(errorCode(h.mgr.cleanBrokerData(req, h.live))).toBe("CONTROLLER_INVALID_CLEAN_BROKER_METADATA");
    expect(errorCode(h.mgr.cleanBrokerData({ ...req, brokerControllerIdsToClean: "2;x" }, h.live))).toBe(
      "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
    );
    expect(errorCode(h.mgr.cleanBrokerData({ ...req, brokerName: "nope" }, h.live))).toBe(
      "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
    );
    h.commit(
      h.mgr.cleanBrokerData({ ...req, brokerControllerIdsToClean: "2", cleanLivingBroker: true }, h.live),
    );
    expect([...h.set().brokers.keys()].sort()).toEqual([1, 3]);
    expect([...h.set().syncStateSet].sort()).toEqual([1, 3]);
  });

  it("cleaning dead brokers, including the master, keeps master ∈ SyncStateSet and epochs monotonic", () => {
    const h = threeReplicas();
    h.killAllBut([3]);
    h.commit(
      h.mgr.cleanBrokerData(
        {
          clusterName: CLUSTER,
          brokerName: SET,
          brokerControllerIdsToClean: "1;2",
          cleanLivingBroker: false,
        },
        h.live,
      ),
    );
    expect(h.set()).toMatchObject({ masterBrokerId: null, masterEpoch: 1, syncStateSetEpoch: 2 });
    expect([...h.set().syncStateSet]).toEqual([3]);
    expect(h.elect(3).response).toMatchObject({ masterBrokerId: 3, masterEpoch: 2, syncStateSetEpoch: 3 });
  });

  it("cleaning the whole set removes it; re-creating it continues from the old epochs", () => {
    const h = threeReplicas();
    h.killAllBut([]);
    h.commit(
      h.mgr.cleanBrokerData({ clusterName: CLUSTER, brokerName: SET, cleanLivingBroker: false }, h.live),
    );
    expect(h.mgr.view.brokerSets.has(SET)).toBe(false);
    expect(h.mgr.getNextBrokerId({ clusterName: CLUSTER, brokerName: SET }).response?.nextBrokerId).toBe(1);
    h.register(1);
    expect(h.elect(1).response).toMatchObject({ masterBrokerId: 1, masterEpoch: 2, syncStateSetEpoch: 3 });
  });
});

describe("event codec", () => {
  it("round-trips every event type and rejects garbage", () => {
    const events: ControllerEvent[] = [
      {
        type: "AlterSyncStateSet",
        brokerName: "b",
        masterBrokerId: 1,
        masterEpoch: 3,
        syncStateSetEpoch: 4,
        newSyncStateSet: [1, 2],
      },
      {
        type: "ApplyBrokerId",
        clusterName: "c",
        brokerName: "b",
        brokerId: 2,
        brokerAddress: "h:1",
        registerCheckCode: "h:1;5",
      },
      { type: "ElectMaster", brokerName: "b", newMasterBrokerId: null, masterEpoch: 3, syncStateSetEpoch: 4 },
      { type: "ElectMaster", brokerName: "b", newMasterBrokerId: 2, masterEpoch: 3, syncStateSetEpoch: 4 },
      { type: "CleanBrokerData", brokerName: "b", brokerIds: null },
      { type: "CleanBrokerData", brokerName: "b", brokerIds: [1, 3] },
      { type: "UpdateBrokerAddress", clusterName: "c", brokerName: "b", brokerId: 2, brokerAddress: "h:2" },
    ];
    const bytes = encodeControllerEvents(events);
    expect(decodeControllerEvents(bytes)).toEqual(events);
    expect(encodeControllerEvents(decodeControllerEvents(bytes))).toEqual(bytes);
    expect(decodeControllerEvents(encodeControllerEvents([]))).toEqual([]);
    expect(() => decodeControllerEvents(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated|JSON/);
    const badVersion = bytes.slice();
    badVersion[0] = 9;
    expect(() => decodeControllerEvents(badVersion)).toThrow(/version/);
    const badType = bytes.slice();
    badType[4] = 4; // ReadEvent: never replicated
    expect(() => decodeControllerEvents(badType)).toThrow(/type id 4/);
  });
});

describe("snapshot", () => {
  it("restores an equal state, and equal states give byte-identical snapshots", () => {
    const h = threeReplicas();
    h.register(1, "broker-b");
    h.elect(1, false, "broker-b");
    h.alter(1, [1, 3]);
    const snap = h.mgr.snapshot();
    const copy = new ReplicasInfoManager();
    copy.restore(snap);
    expect(copy.snapshot()).toEqual(snap);
    expect(copy.view).toEqual(h.mgr.view);

    // Same state reached in a different order → same bytes.
    const a = new Harness();
    a.register(1, "x");
    a.register(1, "y");
    a.register(2, "y");
    const b = new Harness();
    b.register(1, "y");
    b.register(2, "y");
    b.register(1, "x");
    expect(Buffer.from(a.mgr.snapshot()).toString()).toBe(Buffer.from(b.mgr.snapshot()).toString());
    expect(() => copy.restore(new TextEncoder().encode('{"version":2}'))).toThrow(/version/);
    expect(() => copy.restore(new TextEncoder().encode("{"))).toThrow(/JSON/);
  });
});
