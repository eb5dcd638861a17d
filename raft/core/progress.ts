// The leader's view of one follower's log (etcd-io/raft's tracker.Progress): how far it matches,
// what to send next, and how to send it.
//
// Probe: the leader does not know where the follower's log ends; it sends one append at a time and
//   waits for the answer (or a heartbeat response) before sending the next.
// Replicate: steady state; appends are pipelined optimistically up to the inflight window.
// Snapshot: the follower needs a snapshot; appends pause until it is reported sent (or rejected).

import { Inflights } from "./inflights.ts";

export const ProgressState = { Probe: "Probe", Replicate: "Replicate", Snapshot: "Snapshot" } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

export class Progress {
  /** Highest index known to be in the follower's log. */
  match = 0;
  /** Index of the next entry to send. */
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Snapshot state: index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout (CheckQuorum). */
  recentActive = false;
  /** LeaseBased: leader tick at which the newest heartbeat this follower acknowledged was sent. */
  leaseAckTick = -1;
  /** Highest commit index sent to the follower (in an append or heartbeat). */
  sentCommit = 0;
  /** Probe: an append is outstanding. Replicate: the inflight window is full. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflight: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // The snapshot, if delivered, brought the follower to pendingSnapshot.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append was acknowledged up to n. Returns true if match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** Bookkeeping after sending an append carrying `count` entries. */
  sentEntries(count: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next += count;
        this.inflights.add(this.next - 1);
      }
      this.msgAppFlowPaused = this.inflights.full();
    } else if (this.state === ProgressState.Probe) {
      this.msgAppFlowPaused = true;
    }
  }

  /**
   * Could sending commit index `committed` move the follower's commit? Only if it is newer than
   * what we sent, and what we sent did not already cover everything the follower may hold.
   */
  canBumpCommit(committed: number): boolean {
    return committed > this.sentCommit && this.sentCommit < this.next - 1;
  }

  /**
   * An append with previous index `rejected` was refused; `matchHint` is the leader's guess of the
   * last index that may match. Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale if it refers to an index we already know matches.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // Probe: only the answer to the latest probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    if (this.state === ProgressState.Snapshot) return true;
    return this.msgAppFlowPaused;
  }
}
