// In-memory RaftLogStorage (+ writer): for tests and for the simulator, where it plays the role of
// the disk (whatever is in it survives a simulated crash). Every write is "durable" at once.
// Entries live in one array with a moving head, so compaction from the front is amortized O(1).

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { entryBytes } from "../core/entry-size.ts";
import type { RaftInitialState, RaftLogStorage, RaftLogStorageWriter } from "../storage.ts";
import type { Entry, HardState, NodeId, Snapshot } from "../types.ts";

const EMPTY = new Uint8Array(0);

export class MemoryStorage implements RaftLogStorage, RaftLogStorageWriter {
  private hard: HardState = { term: 0, vote: "", commit: 0 };
  private snap: Snapshot = { metadata: { index: 0, term: 0, voters: [] }, data: EMPTY };
  /** Stored entries are ents[head..]; ents[head] has index `first`. */
  private ents: Entry[] = [];
  private head = 0;
  private first = 1;
  /** Term of the entry at first - 1 (last compacted, or the snapshot's). */
  private prevTerm = 0;

  /** Optionally bootstrap with voters (a fresh cluster also works with RawNodeConfig.peers). */
  constructor(voters: NodeId[] = []) {
    this.snap.metadata.voters = [...voters];
  }

  initialState(): RaftInitialState {
    return { hardState: { ...this.hard }, voters: [...this.snap.metadata.voters] };
  }

  hardState(): HardState {
    return { ...this.hard };
  }

  firstIndex(): number {
    return this.first;
  }

  lastIndex(): number {
    return this.first + (this.ents.length - this.head) - 1;
  }

  term(i: number): number {
    if (i < this.first - 1) {
      throw new RmqError(ErrorCode.RaftLogCompacted, `term(${i}): compacted (first index ${this.first})`);
    }
    if (i > this.lastIndex()) {
      throw new RmqError(ErrorCode.RaftLogUnavailable, `term(${i}): beyond last index ${this.lastIndex()}`);
    }
    if (i === this.first - 1) return this.prevTerm;
    return (this.ents[this.head + i - this.first] as Entry).term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo < this.first) {
      throw new RmqError(ErrorCode.RaftLogCompacted, `entries(${lo}): compacted (first index ${this.first})`);
    }
    if (hi > this.lastIndex() + 1) {
      throw new RmqError(
        ErrorCode.RaftLogUnavailable,
        `entries(.., ${hi}): beyond last index ${this.lastIndex()}`,
      );
    }
    if (lo >= hi) return [];
    const base = this.head - this.first;
    const out: Entry[] = [this.ents[base + lo] as Entry];
    let size = entryBytes(out[0] as Entry);
    for (let i = lo + 1; i < hi; i++) {
      const e = this.ents[base + i] as Entry;
      size += entryBytes(e);
      if (size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** The stored entries with index >= lo (for inspection by tests and the simulator's checkers). */
  storedEntries(lo = this.first): Entry[] {
    return this.ents.slice(this.head + Math.max(lo, this.first) - this.first);
  }

  setHardState(hardState: HardState): void {
    this.hard = { ...hardState };
  }

  append(entries: Entry[]): void {
    const firstNew = entries[0];
    if (firstNew === undefined) return;
    let ents = entries;
    let start = firstNew.index;
    const lastNew = start + ents.length - 1;
    if (lastNew < this.first) return; // all compacted already
    if (start < this.first) {
      ents = ents.slice(this.first - start);
      start = this.first;
    }
    const last = this.lastIndex();
    if (start > last + 1) {
      throw new RmqError(ErrorCode.RaftLogUnavailable, `append at ${start} leaves a gap after ${last}`);
    }
    // Replace any stored suffix from `start` (conflict truncation), then append.
    this.ents.length = this.head + (start - this.first);
    for (const e of ents) this.ents.push(e);
  }

  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.metadata.index <= this.snap.metadata.index) {
      throw new RmqError(
        ErrorCode.RaftSnapshotOutOfDate,
        `snapshot ${snapshot.metadata.index} is not newer than ${this.snap.metadata.index}`,
      );
    }
    this.snap = snapshot;
    this.ents = [];
    this.head = 0;
    this.first = snapshot.metadata.index + 1;
    this.prevTerm = snapshot.metadata.term;
  }

  createSnapshot(index: number, voters: NodeId[], data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) {
      throw new RmqError(
        ErrorCode.RaftSnapshotOutOfDate,
        `snapshot at ${index} is not newer than ${this.snap.metadata.index}`,
      );
    }
    const term = this.term(index);
    this.snap = { metadata: { index, term, voters: [...voters] }, data };
    return this.snap;
  }

  compact(index: number): void {
    if (index < this.first) {
      throw new RmqError(
        ErrorCode.RaftLogCompacted,
        `compact(${index}): already compacted to ${this.first - 1}`,
      );
    }
    if (index > this.lastIndex()) {
      throw new RmqError(
        ErrorCode.RaftLogUnavailable,
        `compact(${index}): beyond last index ${this.lastIndex()}`,
      );
    }
    this.prevTerm = this.term(index);
    this.head += index + 1 - this.first;
    this.first = index + 1;
    // Reclaim the dead prefix once it dominates the array.
    if (this.head > 1024 && this.head * 2 > this.ents.length) {
      this.ents = this.ents.slice(this.head);
      this.head = 0;
    }
  }
}
