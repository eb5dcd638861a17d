// Property: a leader validates random requests (under random broker liveness) and two replicas apply
// the resulting Raft entry bytes; the replicas stay byte-identical (also across snapshot/restore), and
// the invariants hold after every step.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ControllerResult } from "./commands.ts";
import { encodeControllerEvents } from "./events.ts";
import { BrokerHeartbeatManager } from "./heartbeat-manager.ts";
import { ReplicasInfoManager } from "./replicas-info.ts";

const CLUSTER = "c";
const SETS = ["a", "b"] as const;
const IDS = [1, 2, 3, 4] as const;

type Op =
  | { k: "beat"; set: number; id: number; epoch: number; offset: number; prio: number }
  | { k: "tick"; ms: number }
  | { k: "apply"; set: number; id: number; code: number }
  | { k: "register"; set: number; id: number; port: number }
  /** master null = the current master (the common case); me/se = offsets from the current epochs. */
  | { k: "alter"; set: number; master: number | null; me: number; se: number; members: number[] }
  | { k: "elect"; set: number; id: number; designate: boolean }
  | { k: "clean"; set: number; ids: number[] | null; living: boolean }
  | { k: "getReplicaInfo"; set: number };

type Step = { k: "op"; op: Op } | { k: "pipeline"; a: Op; b: Op } | { k: "snapshotFollower" };

const setIdx = fc.integer({ min: 0, max: SETS.length - 1 });
const brokerId = fc.constantFrom(...IDS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("beat" as const),
      set: setIdx,
      id: brokerId,
      epoch: fc.integer({ min: 0, max: 4 }),
      offset: fc.integer({ min: 0, max: 3 }),
      prio: fc.integer({ min: 0, max: 2 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("tick" as const), ms: fc.constantFrom(100, 4_000, 11_000) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("apply" as const),
      set: setIdx,
      id: brokerId,
      code: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("register" as const),
      set: setIdx,
      id: brokerId,
      port: fc.integer({ min: 0, max: 1 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("alter" as const),
      set: setIdx,
      master: fc.option(brokerId, { nil: null, freq: 4 }),
      me: fc.constantFrom(0, 0, 0, 0, -1),
      se: fc.constantFrom(0, 0, 0, -1, 1),
      members: fc.uniqueArray(brokerId, { maxLength: 4 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("elect" as const),
      set: setIdx,
      id: fc.constantFrom(-1, ...IDS),
      designate: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("clean" as const),
      set: setIdx,
      ids: fc.option(fc.uniqueArray(brokerId, { minLength: 1, maxLength: 3 }), { nil: null }),
      living: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("getReplicaInfo" as const), set: setIdx }) },
);
/** Writes that race when validated against the same state. */
const racingOpArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constant("alter" as const),
    set: fc.constant(0),
    master: fc.constant(null),
    me: fc.constant(0),
    se: fc.constant(0),
    members: fc.uniqueArray(brokerId, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    k: fc.constant("elect" as const),
    set: fc.constant(0),
    id: fc.constantFrom(-1, ...IDS),
    designate: fc.boolean(),
  }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: opArb.map((op) => ({ k: "op" as const, op })) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("pipeline" as const), a: opArb, b: opArb }) },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant("pipeline" as const), a: racingOpArb, b: racingOpArb }),
  },
  { weight: 1, arbitrary: fc.constant({ k: "snapshotFollower" as const }) },
);

/** Apply outcomes across all runs, to check the generator reaches the interesting paths. */
const coverage = new Map<string, number>();
let elections = 0;

class World {
  leader: ReplicasInfoManager;
  follower: ReplicasInfoManager;
  readonly hb = new BrokerHeartbeatManager();
  now = 0;
  /** Highest epochs ever seen per broker name (across CleanBrokerData). */
  readonly seen = new Map<string, { masterEpoch: number; syncStateSetEpoch: number }>();

  constructor(unclean: boolean) {
    this.leader = new ReplicasInfoManager({ enableElectUncleanMaster: unclean });
    this.follower = new ReplicasInfoManager({ enableElectUncleanMaster: unclean });
  }

  /** Validates on the leader; returns the entry bytes to commit (or null: nothing to write). */
  validate(op: Op): Uint8Array | null {
    const live = this.hb.view(this.now);
    const brokerName = SETS[op.k === "tick" ? 0 : op.set] as string;
    const current = this.leader.view.brokerSets.get(brokerName);
    let r: ControllerResult<unknown> | null = null;
    switch (op.k) {
      case "beat":
        this.hb.onBrokerHeartbeat(
          {
            clusterName: CLUSTER,
            brokerName,
            brokerId: op.id,
            brokerAddress: `h${op.id}`,
            heartbeatTimeoutMillis: 10_000,
            epoch: op.epoch,
            maxOffset: op.offset,
            electionPriority: op.prio,
          },
          this.now,
        );
        return null;
      case "tick":
        this.now += op.ms;
        return null;
      case "apply":
        r = this.leader.applyBrokerId({
          clusterName: CLUSTER,
          brokerName,
          appliedBrokerId: op.id,
          registerCheckCode: `h${op.id};${op.code}`,
        });
        break;
      case "register":
        r = this.leader.registerBroker(
          { clusterName: CLUSTER, brokerName, brokerId: op.id, brokerAddress: `h${op.id}:${op.port}` },
          live,
        );
        break;
      case "alter":
        r = this.leader.alterSyncStateSet(
          {
            brokerName,
            masterBrokerId: op.master ?? current?.masterBrokerId ?? 1,
            masterEpoch: Math.max(0, (current?.masterEpoch ?? 0) + op.me),
            syncStateSetEpoch: Math.max(0, (current?.syncStateSetEpoch ?? 0) + op.se),
            newSyncStateSet: op.members,
          },
          live,
        );
        if (r.ok) expect(new Set(op.members)).toContain(current?.masterBrokerId);
        break;
      case "elect":
        r = this.leader.electMaster(
          { clusterName: CLUSTER, brokerName, brokerId: op.id, designateElect: op.designate },
          live,
        );
        if (r.ok) {
          elections++;
          const winner = (r.response as { masterBrokerId: number }).masterBrokerId;
          // Outside a first election, the winner is alive; without unclean election it was in the SyncStateSet.
          if (current !== undefined && current.syncStateSet.size > 0) {
            expect(live.isAlive(CLUSTER, brokerName, winner)).toBe(true);
            if (!this.leader.options.enableElectUncleanMaster)
              expect(current.syncStateSet.has(winner)).toBe(true);
          }
        }
        break;
      case "clean":
        r = this.leader.cleanBrokerData(
          {
            clusterName: CLUSTER,
            brokerName,
            brokerControllerIdsToClean: op.ids?.join(";"),
            cleanLivingBroker: op.living,
          },
          live,
        );
        break;
      case "getReplicaInfo":
        r = this.leader.getReplicaInfo({ brokerName });
        expect(r.events).toEqual([]);
        break;
    }
    return r.events.length === 0 ? null : encodeControllerEvents(r.events);
  }

  commit(entry: Uint8Array): void {
    const a = this.leader.applyEntryData(entry);
    const b = this.follower.applyEntryData(entry);
    expect(b).toEqual(a);
    for (const o of a) {
      const key = o.applied ? "applied" : o.error.code;
      coverage.set(key, (coverage.get(key) ?? 0) + 1);
    }
  }

  checkInvariants(): void {
    const snap = this.leader.snapshot();
    expect(this.follower.snapshot()).toEqual(snap);
    for (const set of this.leader.view.brokerSets.values()) {
      if (set.masterBrokerId !== null) {
        expect(set.syncStateSet.has(set.masterBrokerId)).toBe(true);
        expect(set.brokers.has(set.masterBrokerId)).toBe(true);
      }
      for (const id of set.syncStateSet) expect(set.brokers.has(id)).toBe(true);
      for (const id of set.brokers.keys()) expect(set.nextAssignBrokerId).toBeGreaterThan(id);
      const prev = this.seen.get(set.brokerName) ?? { masterEpoch: 0, syncStateSetEpoch: 0 };
      expect(set.masterEpoch).toBeGreaterThanOrEqual(prev.masterEpoch);
      expect(set.syncStateSetEpoch).toBeGreaterThanOrEqual(prev.syncStateSetEpoch);
      this.seen.set(set.brokerName, {
        masterEpoch: set.masterEpoch,
        syncStateSetEpoch: set.syncStateSetEpoch,
      });
    }
  }
}

/** Registers brokers 1..4 in every set, all alive: most runs start from a populated state. */
const PRELUDE: Step[] = SETS.flatMap((_, set) =>
  IDS.flatMap((id): Step[] => [
    { k: "op", op: { k: "apply", set, id, code: 0 } },
    { k: "op", op: { k: "beat", set, id, epoch: 0, offset: 0, prio: 0 } },
  ]),
);

function run(steps: Step[], unclean: boolean, prelude: boolean): void {
  const w = new World(unclean);
  for (const step of prelude ? [...PRELUDE, ...steps] : steps) {
    const before = w.leader.snapshot();
    if (step.k === "snapshotFollower") {
      const restored = new ReplicasInfoManager(w.follower.options);
      restored.restore(w.follower.snapshot());
      w.follower = restored;
    } else if (step.k === "op") {
      const entry = w.validate(step.op);
      expect(w.leader.snapshot()).toEqual(before); // validation never mutates
      if (entry !== null) w.commit(entry);
    } else {
      // Two proposals validated against the same state, committed in order.
      const ea = w.validate(step.a);
      const eb = w.validate(step.b);
      expect(w.leader.snapshot()).toEqual(before);
      if (ea !== null) w.commit(ea);
      if (eb !== null) w.commit(eb);
    }
    w.checkInvariants();
  }
}

describe("ReplicasInfoManager properties", () => {
  it("replicas applying the same validated entries stay identical and keep the invariants", () => {
    fc.assert(
      fc.property(
        fc.array(stepArb, { minLength: 10, maxLength: 80, size: "max" }),
        fc.boolean(),
        fc.boolean(),
        (steps, unclean, prelude) => run(steps, unclean, prelude),
      ),
      { numRuns: 300 },
    );
    expect(elections).toBeGreaterThan(100);
    expect(coverage.get("applied")).toBeGreaterThan(1000);
    // Pipelined proposals do get refused at apply time (the compare-and-set path is exercised).
    expect(coverage.get("CONTROLLER_FENCED_MASTER_EPOCH") ?? 0).toBeGreaterThan(0);
    expect(coverage.get("CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH") ?? 0).toBeGreaterThan(0);
  });

  it("a scripted history reaches elections (the generator is not vacuous)", () => {
    // Register 1..3 in "a", elect 1, expand, kill 1, re-elect: exercises every write path at least once.
    const beat = (id: number): Step => ({
      k: "op",
      op: { k: "beat", set: 0, id, epoch: 1, offset: id, prio: 0 },
    });
    const steps: Step[] = [
      ...[1, 2, 3].map((id): Step => ({ k: "op", op: { k: "apply", set: 0, id, code: 0 } })),
      beat(1),
      beat(2),
      beat(3),
      { k: "op", op: { k: "elect", set: 0, id: 1, designate: false } },
      { k: "op", op: { k: "alter", set: 0, master: 1, me: 0, se: 0, members: [1, 2, 3] } },
      { k: "op", op: { k: "tick", ms: 11_000 } },
      beat(2),
      beat(3),
      { k: "op", op: { k: "elect", set: 0, id: -1, designate: false } },
      { k: "snapshotFollower" },
      { k: "op", op: { k: "register", set: 0, id: 2, port: 1 } },
    ];
    const w = new World(false);
    run(steps, false, false);
    for (const s of steps) {
      if (s.k === "op") {
        const e = w.validate(s.op);
        if (e !== null) w.commit(e);
      }
    }
    expect(w.leader.view.brokerSets.get("a")).toMatchObject({
      masterBrokerId: 3,
      masterEpoch: 2,
      syncStateSetEpoch: 3,
    });
  });
});
