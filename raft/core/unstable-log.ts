// The tail of the log that the core holds in memory until the caller reports it persisted: entries
// not yet in storage, and a snapshot received from the leader that is not yet applied to storage.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Entry, Snapshot } from "../types.ts";

export class UnstableLog {
  /** A snapshot to persist; when set, `offset` is snapshot.index + 1. */
  snapshot: Snapshot | undefined = undefined;
  /** entries[i] has index offset + i. */
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index implied by a pending snapshot, if any. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index;
  }

  /** Term at index i if this part of the log knows it. */
  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      const s = this.snapshot;
      return s !== undefined && s.metadata.index === i ? s.metadata.term : undefined;
    }
    const e = this.entries[i - this.offset];
    return e === undefined ? undefined : e.term;
  }

  /** Entries up to (index, term) are now in storage. Ignored if the entry was since replaced. */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    const e = this.entries[index - this.offset];
    if (e === undefined || e.term !== term) return;
    const n = index + 1 - this.offset;
    this.entries = n === this.entries.length ? [] : this.entries.slice(n);
    this.offset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  /** Append entries whose first index may overlap the current tail (the overlap is replaced). */
  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const after = first.index;
    const end = this.offset + this.entries.length;
    if (after === end) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything unstable; storage still holds older entries >= after, which the
      // caller overwrites when it persists these (storage contract rule 3).
      this.offset = after;
      this.entries = ents.slice();
    } else if (after < end) {
      const kept = this.entries.slice(0, after - this.offset);
      for (const e of ents) kept.push(e);
      this.entries = kept;
    } else {
      throw new RmqError(ErrorCode.RaftInvariantViolated, `unstable append gap: ${after} > ${end}`);
    }
  }

  /** Entries [lo, hi); the caller guarantees offset <= lo <= hi <= lastIndex + 1. */
  slice(lo: number, hi: number): Entry[] {
    if (lo < this.offset || hi > this.offset + this.entries.length) {
      throw new RmqError(
        ErrorCode.RaftInvariantViolated,
        `unstable slice [${lo}, ${hi}) out of [${this.offset}, ${this.offset + this.entries.length})`,
      );
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
