// The deterministic Raft simulator: N nodes in one process on a virtual clock, every choice drawn
// from one seeded PRNG. A run alternates chaos phases (message loss, duplication, delay and
// reordering, symmetric and asymmetric partitions, crashes with torn writes, leader transfers)
// with calm phases (everything healed and restarted) in which a leader must emerge and a proposal
// must commit on every node within the phase (liveness). Clients read and write all along; safety
// checkers run on every event and the client history is checked for linearizability at the end.
// Same seed ⇒ same trace (compare SimResult.traceHash).

import { RmqError } from "../../common/errors.ts";
import type { UnsafeFlags } from "../core/config.ts";
import { ReadOnlyOption } from "../core/read-only.ts";
import type { NodeId } from "../types.ts";
import { StateType } from "../types.ts";
import { OpStatus, SimClients } from "./clients.ts";
import { EventQueue } from "./event-queue.ts";
import { checkRegisterHistory, firstViolation } from "./linearizability.ts";
import { SimNetwork } from "./network.ts";
import { Prng } from "./prng.ts";
import { Check, SafetyChecker, SimFailure } from "./safety-checker.ts";
import { SimNode } from "./sim-node.ts";
import { Trace } from "./trace.ts";
import type { SimParams, SimWorld } from "./world.ts";

/** Virtual length of one chaos phase (ms; 10 ms per tick). */
export const DEFAULT_CHAOS_MS = 1500;
/** Virtual length of one calm phase, which is also the liveness bound (ms). */
export const DEFAULT_CALM_MS = 1500;
export const DEFAULT_ROUNDS = 2;
/** Upper bound on events in one run: catches livelocks that do not advance virtual time. */
export const MAX_EVENTS_PER_RUN = 5_000_000;
/** Search-step budget per key for the linearizability checker. */
export const LINEARIZABILITY_BUDGET = 1_000_000;

export interface SimOptions {
  seed: number;
  /** Cluster size; default: 3 or 5, drawn from the seed. */
  nodes?: 3 | 5;
  rounds?: number;
  chaosMs?: number;
  calmMs?: number;
  /** Faults on (default). Off: a fault-free run (for comparison and debugging). */
  faults?: boolean;
  /** Planted bugs in the core (tests only). */
  unsafe?: UnsafeFlags;
  /** Planted bug in the Ready loop: send messages before the batch is durable. */
  unsafeSendBeforeSync?: boolean;
  /** Force the read mode (default: ReadIndex, LeaseBased in some runs). */
  readOnlyOption?: ReadOnlyOption;
  /** On a linearizability failure, also search for the first offending operation (slow). */
  diagnose?: boolean;
  /** Keep readable trace lines in the result. */
  keepTrace?: boolean;
}

export interface SimStats {
  nodes: number;
  virtualMs: number;
  events: number;
  messages: number;
  dropped: number;
  duplicated: number;
  crashes: number;
  tornWrites: number;
  partitions: number;
  transfers: number;
  leaderTerms: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  committed: number;
  ops: number;
  opsOk: number;
  opsTimedOut: number;
  opsFailed: number;
  linearizabilitySteps: number;
  linearizabilityInconclusive: number;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failure: { check: Check; message: string; atMs: number } | undefined;
  traceHash: string;
  stats: SimStats;
  /** The run's parameters, as drawn from the seed. */
  params: SimParams;
  trace: string[] | undefined;
}

function deriveParams(prng: Prng, opts: SimOptions): SimParams {
  const n = opts.nodes ?? (prng.chance(0.5) ? 3 : 5);
  const nodeIds = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const keyCount = prng.int(2, 4);
  // Mostly the production setting (PreVote + CheckQuorum, ReadIndex reads); some runs without.
  const checkQuorum = prng.chance(0.85) || opts.readOnlyOption === ReadOnlyOption.LeaseBased;
  const preVote = prng.chance(0.85);
  const readOnlyOption =
    opts.readOnlyOption ??
    (checkQuorum && prng.chance(0.15) ? ReadOnlyOption.LeaseBased : ReadOnlyOption.ReadIndex);
  return {
    nodeIds,
    tickMs: 10,
    electionTick: 10,
    heartbeatTick: 1,
    maxSizePerMsg: prng.pick([64, 256, 4096, 1 << 20]),
    maxInflightMsgs: prng.pick([1, 2, 4, 16, 256]),
    readOnlyOption,
    preVote,
    checkQuorum,
    dropRate: prng.pick([0, 0.01, 0.05, 0.15]),
    dupRate: prng.pick([0, 0.02, 0.1]),
    reorderRate: prng.pick([0, 0.05, 0.2]),
    minDelayMs: 1,
    maxDelayMs: prng.int(2, 8),
    longDelayMs: prng.int(10, 80),
    diskMinMs: 0,
    diskMaxMs: prng.int(1, 6),
    faultEveryMs: prng.int(60, 300),
    leaderChurn: prng.pick([0, 0.2, 0.5]),
    crashWeight: prng.int(1, 4),
    partitionWeight: prng.int(1, 4),
    snapshotEveryMs: prng.int(80, 400),
    snapshotKeep: prng.int(0, 8),
    clients: prng.int(3, 5),
    keys: ["w", "x", "y", "z"].slice(0, keyCount),
    clientTimeoutMs: 500,
    thinkMaxMs: prng.int(2, 25),
    unsafe: opts.unsafe ?? {},
    unsafeSendBeforeSync: opts.unsafeSendBeforeSync ?? false,
  };
}

class Simulation implements SimWorld {
  readonly queue = new EventQueue();
  readonly prng: Prng;
  readonly trace: Trace;
  readonly checker = new SafetyChecker();
  readonly params: SimParams;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly network: SimNetwork;
  readonly clients: SimClients;
  private readonly indexOf = new Map<NodeId, number>();
  private readonly opts: SimOptions;
  private chaos = false;
  private partitionGen = 0;
  private probeSeq = 0;
  partitions = 0;
  transfers = 0;

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.prng = new Prng(opts.seed);
    this.trace = new Trace(opts.keepTrace === true);
    this.params = deriveParams(this.prng, opts);
    for (const [i, id] of this.params.nodeIds.entries()) this.indexOf.set(id, i);
    this.network = new SimNetwork(this);
    this.clients = new SimClients(this);
    for (const id of this.params.nodeIds) this.nodes.set(id, new SimNode(this, id));
  }

  nodeIndex(id: NodeId): number {
    return this.indexOf.get(id) ?? -1;
  }

  run(): SimResult {
    const { queue } = this;
    const rounds = this.opts.rounds ?? DEFAULT_ROUNDS;
    const chaosMs = this.opts.chaosMs ?? DEFAULT_CHAOS_MS;
    const calmMs = this.opts.calmMs ?? DEFAULT_CALM_MS;
    const faults = this.opts.faults !== false;
    let failure: SimResult["failure"];
    let events = 0;
    let linSteps = 0;
    let linInconclusive = 0;
    const drain = (until: number): void => {
      while (queue.runNext(until)) {
        if (++events > MAX_EVENTS_PER_RUN) {
          throw new SimFailure(Check.Liveness, `more than ${MAX_EVENTS_PER_RUN} events: livelock`);
        }
      }
      queue.now = Math.max(queue.now, until);
    };
    try {
      for (const node of this.nodes.values()) {
        node.start();
        this.snapshotLoop(node);
      }
      this.clients.start();
      let t = 0;
      for (let r = 0; r < rounds; r++) {
        if (faults) this.startChaos(t, t + chaosMs);
        drain(t + chaosMs);
        t += chaosMs;
        this.startCalm(t, t + calmMs);
        drain(t + calmMs);
        t += calmMs;
      }
      // Let the last operations finish or time out, then check the history.
      this.clients.stop();
      drain(t + this.params.clientTimeoutMs + 50);
      for (const [key, ops] of this.clients.histories()) {
        const res = checkRegisterHistory(ops, null, LINEARIZABILITY_BUDGET);
        linSteps += res.steps;
        if (!res.ok && res.reason === "budget-exceeded") linInconclusive++;
        else if (!res.ok) {
          const culprit =
            this.opts.diagnose === true ? firstViolation(ops, LINEARIZABILITY_BUDGET) : undefined;
          throw new SimFailure(
            Check.Linearizability,
            `history of key ${key} (${ops.length} operations) is not linearizable` +
              (culprit !== undefined ? `; first violation by ${culprit.label}` : ""),
          );
        }
      }
    } catch (e) {
      if (e instanceof SimFailure) failure = { check: e.check, message: e.message, atMs: queue.now };
      else if (e instanceof RmqError)
        failure = { check: Check.CoreInvariant, message: `${e.code}: ${e.message}`, atMs: queue.now };
      else throw e;
    }
    let crashes = 0;
    let torn = 0;
    let snaps = 0;
    let installs = 0;
    for (const n of this.nodes.values()) {
      crashes += n.crashes;
      torn += n.tornWrites;
      snaps += n.snapshotsTaken;
      installs += n.snapshotsInstalled;
    }
    const ops = this.clients.ops;
    return {
      seed: this.opts.seed,
      ok: failure === undefined,
      failure,
      traceHash: this.trace.digest(),
      params: this.params,
      trace: this.trace.lines,
      stats: {
        nodes: this.params.nodeIds.length,
        virtualMs: queue.now,
        events,
        messages: this.network.sent,
        dropped: this.network.dropped,
        duplicated: this.network.duplicated,
        crashes,
        tornWrites: torn,
        partitions: this.partitions,
        transfers: this.transfers,
        leaderTerms: this.checker.leaderElections,
        snapshotsTaken: snaps,
        snapshotsInstalled: installs,
        committed: this.checker.maxCommitIndex,
        ops: ops.length,
        opsOk: ops.filter((o) => o.status === OpStatus.Ok).length,
        opsTimedOut: ops.filter((o) => o.status === OpStatus.TimedOut).length,
        opsFailed: ops.filter((o) => o.status === OpStatus.Failed).length,
        linearizabilitySteps: linSteps,
        linearizabilityInconclusive: linInconclusive,
      },
    };
  }

  onLeaderElected(node: SimNode): void {
    if (!this.chaos || !this.prng.chance(this.params.leaderChurn)) return;
    const { queue, prng, network, trace } = this;
    const crash = prng.chance(0.5);
    queue.after(prng.int(0, 30), () => {
      if (!this.chaos || !node.up) return;
      if (crash) {
        node.crash();
        queue.after(prng.int(20, 400), () => {
          if (!node.up) node.start();
        });
        return;
      }
      network.healAll();
      const gen = ++this.partitionGen;
      this.partitions++;
      for (const o of this.params.nodeIds) if (o !== node.id) network.blockBoth(node.id, o);
      trace.add([15, queue.now, this.nodeIndex(node.id)], () => `${queue.now} new leader ${node.id} cut off`);
      queue.after(prng.int(50, 500), () => {
        if (this.partitionGen !== gen) return;
        network.healAll();
        trace.add([12, queue.now], () => `${queue.now} partition healed`);
      });
    });
  }

  private snapshotLoop(node: SimNode): void {
    this.queue.after(this.params.snapshotEveryMs, () => {
      node.maybeSnapshot();
      this.snapshotLoop(node);
    });
  }

  private startChaos(from: number, until: number): void {
    const { queue, trace } = this;
    this.chaos = true;
    this.network.faulty = true;
    trace.add([10, from], () => `${from} === chaos until ${until} ===`);
    const next = (): void => {
      if (!this.chaos || queue.now >= until) return;
      this.injectFault(until);
      const mean = this.params.faultEveryMs;
      queue.after(this.prng.int(Math.ceil(mean / 2), Math.ceil((mean * 3) / 2)), next);
    };
    queue.after(this.prng.int(0, this.params.faultEveryMs), next);
  }

  private currentLeader(): SimNode | undefined {
    let best: SimNode | undefined;
    let bestTerm = -1;
    for (const n of this.nodes.values()) {
      const st = n.raw?.status();
      if (st !== undefined && st.state === StateType.Leader && st.term > bestTerm) {
        best = n;
        bestTerm = st.term;
      }
    }
    return best;
  }

  private injectFault(until: number): void {
    const { prng, queue, trace, params, network } = this;
    const ids = params.nodeIds;
    const up = [...this.nodes.values()].filter((n) => n.up);
    const leader = this.currentLeader();
    // Aim at the leader half of the time: that is where the interesting paths are.
    const target = (): SimNode =>
      leader !== undefined && prng.chance(0.5) ? leader : (this.nodes.get(prng.pick(ids)) as SimNode);
    const roll = prng.int(1, params.crashWeight + params.partitionWeight + 1);
    if (roll <= params.crashWeight) {
      const victim = up.length > 0 ? target() : undefined;
      if (victim === undefined || !victim.up) return;
      const downFor = prng.int(20, 600);
      const restartLater = (): void =>
        queue.after(downFor, () => {
          if (!victim.up) victim.start();
        });
      if (prng.chance(0.5)) {
        victim.crash();
        restartLater();
      } else {
        victim.crashDuringWrite(restartLater);
      }
      return;
    }
    if (roll <= params.crashWeight + params.partitionWeight) {
      network.healAll();
      const gen = ++this.partitionGen;
      this.partitions++;
      const kind = prng.int(0, 3);
      const victim = target().id;
      if (kind === 0) {
        for (const o of ids) if (o !== victim) network.blockBoth(victim, o);
      } else if (kind === 1) {
        const side = ids.filter(() => prng.chance(0.5));
        for (const a of side) for (const b of ids) if (!side.includes(b)) network.blockBoth(a, b);
      } else if (kind === 2) {
        // asymmetric: the victim can send but not receive, or the opposite
        const inbound = prng.chance(0.5);
        for (const o of ids) if (o !== victim) inbound ? network.block(o, victim) : network.block(victim, o);
      } else {
        const cuts = prng.int(1, ids.length * 2);
        for (let i = 0; i < cuts; i++) {
          const a = prng.pick(ids);
          const b = prng.pick(ids);
          if (a !== b) network.block(a, b);
        }
      }
      trace.add(
        [11, queue.now, kind, this.nodeIndex(victim)],
        () => `${queue.now} partition: ${network.describePartition()}`,
      );
      const healAt = Math.min(until, queue.now + prng.int(50, 800));
      queue.at(healAt, () => {
        if (this.partitionGen !== gen) return;
        network.healAll();
        trace.add([12, queue.now], () => `${queue.now} partition healed`);
      });
      return;
    }
    // Leader transfer to a random node.
    if (leader !== undefined && leader.raw !== undefined) {
      const to = prng.pick(ids.filter((id) => id !== leader.id));
      this.transfers++;
      trace.add(
        [13, queue.now, this.nodeIndex(leader.id), this.nodeIndex(to)],
        () => `${queue.now} transfer leadership ${leader.id} -> ${to}`,
      );
      leader.raw.transferLeader(to);
      leader.pump();
    }
  }

  private startCalm(from: number, deadline: number): void {
    const { queue, trace, network } = this;
    this.chaos = false;
    network.faulty = false;
    network.healAll();
    this.partitionGen++;
    for (const n of this.nodes.values()) {
      n.disarmCrash();
      if (!n.up) n.start();
    }
    trace.add([14, from], () => `${from} === calm until ${deadline} (liveness bound) ===`);
    const firstProbe = this.probeSeq + 1;
    const done = (): boolean => {
      for (const n of this.nodes.values()) if (n.probeApplied < firstProbe) return false;
      return true;
    };
    const attempt = (): void => {
      if (done()) return;
      if (queue.now >= deadline) {
        const st = [...this.nodes.values()].map((n) => {
          const s = n.raw?.status();
          return s === undefined
            ? `${n.id}:down`
            : `${n.id}:${s.state}/t${s.term}/lead=${s.lead}/commit=${s.commit}/probe=${n.probeApplied}`;
        });
        throw new SimFailure(
          Check.Liveness,
          `no proposal committed on every node within ${deadline - from} ms after faults healed [${st.join(" ")}]`,
        );
      }
      // Propose through any node that knows a leader.
      for (const n of this.nodes.values()) {
        const lead = n.raw?.status().lead;
        if (lead !== undefined && lead !== "") {
          n.proposeProbe(++this.probeSeq);
          break;
        }
      }
      queue.after(50, attempt);
    };
    queue.after(0, attempt);
    // The deadline check itself (attempt() may have stopped early on success).
    queue.at(deadline, () => {
      if (!done()) attempt();
    });
  }
}

export function runSimulation(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}
