// Raft's safety properties (Figure 3 of the paper), checked continuously while the simulation runs.
// Each check throws SimFailure at the first violation.
//
// - election safety: at most one leader per term (from role changes and from every
//   App/Heartbeat/Snap sent, which only a leader of that term sends);
// - log matching: two logs holding an entry with the same index and term hold the same payload and
//   the same previous term (by induction: identical prefixes);
// - leader completeness: a new leader of term T holds every entry known committed in a term < T;
// - state machine safety: every node applies, at each index, the same entry and reaches the same
//   state; indexes are applied in order; an installed snapshot equals the state applied there.

import type { Entry, NodeId } from "../types.ts";
import { hashBytes } from "./trace.ts";

export const Check = {
  ElectionSafety: "election-safety",
  LogMatching: "log-matching",
  LeaderCompleteness: "leader-completeness",
  StateMachineSafety: "state-machine-safety",
  SnapshotConsistency: "snapshot-consistency",
  ApplyOrder: "apply-order",
  Linearizability: "linearizability",
  Liveness: "liveness",
  CoreInvariant: "core-invariant",
} as const;
export type Check = (typeof Check)[keyof typeof Check];

export class SimFailure extends Error {
  readonly check: Check;
  constructor(check: Check, detail: string) {
    super(`${check}: ${detail}`);
    this.name = "SimFailure";
    this.check = check;
  }
}

interface AppliedRecord {
  term: number;
  dataHash: number;
  stateHash: number;
  node: NodeId;
}

export class SafetyChecker {
  private readonly leaders = new Map<number, NodeId>();
  /** `${index}:${term}` → payload hash and the term of the previous entry. */
  private readonly entries = new Map<string, { dataHash: number; prevTerm: number; node: NodeId }>();
  /** index → entry term and the (lowest known) term in which it was committed. */
  private readonly committed: Array<{ term: number; commitTerm: number } | undefined> = [];
  private maxCommitted = 0;
  private readonly lastCommitSeen = new Map<NodeId, number>();
  private readonly applied: Array<AppliedRecord | undefined> = [];
  leaderElections = 0;

  /** `id` acts as leader in `term`. */
  onLeader(id: NodeId, term: number): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) {
      this.leaders.set(term, id);
      this.leaderElections++;
    } else if (prev !== id) {
      throw new SimFailure(Check.ElectionSafety, `term ${term} has two leaders: ${prev} and ${id}`);
    }
  }

  /** `node` persisted `e`; `prevTerm` is the term of the entry before it in that node's log. */
  onPersistEntry(node: NodeId, e: Entry, prevTerm: number): void {
    const key = `${e.index}:${e.term}`;
    const dataHash = hashBytes(e.data) ^ e.type;
    const seen = this.entries.get(key);
    if (seen === undefined) {
      this.entries.set(key, { dataHash, prevTerm, node });
      return;
    }
    if (seen.dataHash !== dataHash) {
      throw new SimFailure(
        Check.LogMatching,
        `entry (index ${e.index}, term ${e.term}) differs between ${seen.node} and ${node}`,
      );
    }
    if (seen.prevTerm !== prevTerm) {
      throw new SimFailure(
        Check.LogMatching,
        `entry (index ${e.index}, term ${e.term}) follows term ${seen.prevTerm} on ${seen.node} but ${prevTerm} on ${node}`,
      );
    }
  }

  /**
   * `node`, at term `observerTerm`, knows entries up to `commit` are committed; termAt reads its
   * log. The observer's term bounds from above the term in which each entry was committed.
   */
  onCommit(
    node: NodeId,
    commit: number,
    observerTerm: number,
    termAt: (i: number) => number | undefined,
  ): void {
    const from = (this.lastCommitSeen.get(node) ?? 0) + 1;
    if (commit < from) return;
    this.lastCommitSeen.set(node, commit);
    for (let i = from; i <= commit; i++) {
      const t = termAt(i);
      if (t === undefined) continue; // below this node's snapshot: recorded by whoever committed it
      const rec = this.committed[i];
      if (rec === undefined) {
        this.committed[i] = { term: t, commitTerm: observerTerm };
      } else if (rec.term !== t) {
        throw new SimFailure(
          Check.StateMachineSafety,
          `index ${i} was committed with term ${rec.term}, but ${node} committed term ${t} there`,
        );
      } else if (observerTerm < rec.commitTerm) {
        rec.commitTerm = observerTerm;
      }
    }
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** `node` just became leader of `term`; its log must hold every entry committed before `term`. */
  onBecameLeader(
    node: NodeId,
    term: number,
    firstIndex: number,
    termAt: (i: number) => number | undefined,
  ): void {
    this.onLeader(node, term);
    for (let i = Math.max(1, firstIndex); i <= this.maxCommitted; i++) {
      const rec = this.committed[i];
      if (rec === undefined || rec.commitTerm >= term) continue;
      const t = termAt(i);
      if (t !== rec.term) {
        throw new SimFailure(
          Check.LeaderCompleteness,
          `leader ${node} of term ${term} has term ${t ?? "none"} at index ${i}, committed with term ${rec.term} in term ${rec.commitTerm}`,
        );
      }
    }
  }

  onApply(node: NodeId, e: Entry, stateHash: number): void {
    const dataHash = hashBytes(e.data) ^ e.type;
    const rec = this.applied[e.index];
    if (rec === undefined) {
      this.applied[e.index] = { term: e.term, dataHash, stateHash, node };
      return;
    }
    if (rec.term !== e.term || rec.dataHash !== dataHash) {
      throw new SimFailure(
        Check.StateMachineSafety,
        `index ${e.index}: ${rec.node} applied term ${rec.term}, ${node} applied term ${e.term}${rec.term === e.term ? " (different payload)" : ""}`,
      );
    }
    if (rec.stateHash !== stateHash) {
      throw new SimFailure(
        Check.StateMachineSafety,
        `index ${e.index}: state after apply differs on ${rec.node} and ${node}`,
      );
    }
  }

  onApplyOrder(node: NodeId, index: number, previous: number): void {
    if (index !== previous + 1) {
      throw new SimFailure(Check.ApplyOrder, `${node} applied index ${index} after ${previous}`);
    }
  }

  onSnapshotInstalled(node: NodeId, index: number, stateHash: number): void {
    const rec = this.applied[index];
    if (rec !== undefined && rec.stateHash !== stateHash) {
      throw new SimFailure(
        Check.SnapshotConsistency,
        `${node} installed a snapshot at ${index} that differs from the state ${rec.node} applied there`,
      );
    }
  }

  get maxCommitIndex(): number {
    return this.maxCommitted;
  }
}
