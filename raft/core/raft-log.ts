// The node's view of the whole log: the persisted part (storage) followed by the unstable tail,
// plus the commit and applied indexes.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { RaftLogStorage } from "../storage.ts";
import type { Entry, Snapshot } from "../types.ts";
import { entryBytes, prefixWithinBytes } from "./entry-size.ts";
import { UnstableLog } from "./unstable-log.ts";

export class RaftLog {
  readonly storage: RaftLogStorage;
  readonly unstable: UnstableLog;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the state machine has applied (reported through advance()). */
  applied: number;

  constructor(storage: RaftLogStorage) {
    this.storage = storage;
    const first = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term at index i, or undefined when i is compacted away or beyond the last index. */
  term(i: number): number | undefined {
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    // Not in the unstable tail and within range: i < unstable.offset, so storage has it.
    return this.storage.term(i);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    if (t === undefined) {
      throw new RmqError(ErrorCode.RaftInvariantViolated, `no term for last index ${this.lastIndex()}`);
    }
    return t;
  }

  matchTerm(i: number, term: number): boolean {
    return this.term(i) === term;
  }

  /** Raft §5.4.1: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Follower side of MsgApp: if our log matches at (index, logTerm), append `ents` (truncating a
   * conflicting suffix), advance commit and return the index of the last new entry.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const conflict = this.findConflict(ents);
    if (conflict !== 0) {
      if (conflict <= this.committed) {
        throw new RmqError(
          ErrorCode.RaftInvariantViolated,
          `entry ${conflict} conflicts with committed entry (committed ${this.committed})`,
        );
      }
      this.append(ents.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Append entries (the first may overlap the tail, never committed entries); returns last index. */
  append(ents: readonly Entry[]): number {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1 < this.committed) {
      throw new RmqError(
        ErrorCode.RaftInvariantViolated,
        `append at ${first.index} would overwrite committed ${this.committed}`,
      );
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * Index of the first entry in `ents` whose term differs from ours (a conflict, or a new entry past
   * our last index), 0 when all are already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`, with that term (0 if unknown because it
   * is compacted). Used for fast backtracking on rejected appends: every entry above the answer
   * has a term > `term`, so it cannot match a log whose entry at `index` has `term`.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  commitTo(toCommit: number): void {
    if (toCommit <= this.committed) return;
    if (toCommit > this.lastIndex()) {
      throw new RmqError(
        ErrorCode.RaftInvariantViolated,
        `commit ${toCommit} is out of range [last index ${this.lastIndex()}]`,
      );
    }
    this.committed = toCommit;
  }

  /**
   * Leader side: commit up to maxIndex if the entry there is from `term` (Raft §5.4.2: only entries
   * of the current term are committed by counting replicas). `anyTerm` disables that rule — a
   * planted bug for the simulator's tests, never set in production.
   */
  maybeCommit(maxIndex: number, term: number, anyTerm: boolean): boolean {
    if (maxIndex > this.committed && (anyTerm || this.term(maxIndex) === term)) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new RmqError(
        ErrorCode.RaftInvariantViolated,
        `applied ${i} is out of range [prev applied ${this.applied}, committed ${this.committed}]`,
      );
    }
    this.applied = i;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: number): void {
    this.unstable.stableSnapTo(index);
  }

  hasNextCommittedEntries(): boolean {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.committed >= lo;
  }

  /** Committed entries not yet applied, limited to about maxBytes (at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  /** Entries from i to the end, limited to about maxBytes; throws RaftLogCompacted below firstIndex. */
  entriesFrom(i: number, maxBytes: number): Entry[] {
    const last = this.lastIndex();
    if (i > last) return [];
    return this.slice(i, last + 1, maxBytes);
  }

  /** Entries [lo, hi) limited to about maxBytes (at least one); throws RaftLogCompacted below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) {
      throw new RmqError(ErrorCode.RaftLogCompacted, `index ${lo} is compacted (first index ${first})`);
    }
    const last = this.lastIndex();
    if (hi > last + 1) {
      throw new RmqError(ErrorCode.RaftLogUnavailable, `slice [${lo}, ${hi}) beyond last index ${last}`);
    }
    const uOff = this.unstable.offset;
    let out: Entry[];
    if (lo < uOff) {
      out = this.storage.entries(lo, Math.min(hi, uOff), maxBytes);
      // Storage stopped early because of the size limit: do not add unstable entries.
      if (out.length < Math.min(hi, uOff) - lo || hi <= uOff) return out;
      let size = 0;
      for (const e of out) size += entryBytes(e);
      const tail = this.unstable.slice(uOff, hi);
      for (const e of tail) {
        size += entryBytes(e);
        if (size > maxBytes) break;
        out.push(e);
      }
      return out;
    }
    out = this.unstable.slice(lo, hi);
    const n = prefixWithinBytes(out, maxBytes);
    if (n < out.length) out.length = n;
    return out;
  }

  /** Snapshot to send to a lagging follower: a pending one, else storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replace the whole log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }
}
