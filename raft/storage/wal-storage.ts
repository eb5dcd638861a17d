// Durable RaftLogStorage: an in-memory index of the log (a MemoryStorage) in front of the segmented
// WAL (raft/wal). Reads are served from memory, synchronously; every write goes to the WAL first and
// reaches memory only once it is on disk, so what the core reads is always what survives a crash.
//
// The Ready loop calls `saveReady(rd)` (snapshot → entries → hardState, one write + one fdatasync)
// before it sends rd.messages — the contract in raft/storage.ts. A HardState that changed only in
// `commit` (rd.mustSync false) is not written on its own: it rides along with the next durable write
// (the core recomputes commit after a restart), which keeps one fdatasync per Ready that needs one.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { RaftInitialState, RaftLogStorage, RaftLogStorageWriter } from "../storage.ts";
import type { Entry, HardState, NodeId, Ready, Snapshot } from "../types.ts";
import { createRaftWal, type RaftWal, type RaftWalOptions, type TornTail } from "../wal/wal.ts";
import { MemoryStorage } from "./memory-storage.ts";

export type WalStorageOptions = RaftWalOptions;

export interface WalStorageRecovery {
  /** Set when the WAL's last segment ended in a torn record that was cut off on open. */
  tornTail: TornTail | undefined;
  /** Newer snapshot files that failed their check (an older one was used). */
  skippedSnapshots: Array<{ file: string; reason: string }>;
  /** Entries replayed from the WAL (after the snapshot). */
  entriesRecovered: number;
}

export class WalStorage implements RaftLogStorage, RaftLogStorageWriter {
  private readonly mem: MemoryStorage;
  private readonly wal: RaftWal;
  /** A commit-only hard state not yet written (see the header). */
  private lazyHardState: HardState | undefined;
  readonly recovery: WalStorageRecovery;

  constructor(mem: MemoryStorage, wal: RaftWal, recovery: WalStorageRecovery) {
    this.mem = mem;
    this.wal = wal;
    this.recovery = recovery;
  }

  // ---- RaftLogStorage (reads, from memory) ----

  initialState(): RaftInitialState {
    return this.mem.initialState();
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxBytes);
  }
  term(i: number): number {
    return this.mem.term(i);
  }
  firstIndex(): number {
    return this.mem.firstIndex();
  }
  lastIndex(): number {
    return this.mem.lastIndex();
  }
  snapshot(): Snapshot {
    return this.mem.snapshot();
  }
  hardState(): HardState {
    return this.mem.hardState();
  }

  // ---- the Ready loop's write ----

  /**
   * Persists a Ready's snapshot, entries and hard state in that order; fsynced when rd.mustSync.
   * Resolves once they are durable and visible to reads.
   */
  async saveReady(rd: Pick<Ready, "snapshot" | "entries" | "hardState" | "mustSync">): Promise<void> {
    if (rd.snapshot !== undefined) await this.applySnapshot(rd.snapshot);
    const snapIndex = this.mem.snapshot().metadata.index;
    let entries = rd.entries;
    const first = entries[0];
    if (first !== undefined && first.index <= snapIndex) entries = entries.filter((e) => e.index > snapIndex);
    const hs = rd.hardState ?? this.lazyHardState;
    if (entries.length > 0 || (rd.hardState !== undefined && rd.mustSync)) {
      await this.wal.append(entries, hs);
      this.lazyHardState = undefined;
    } else if (rd.hardState !== undefined) {
      this.lazyHardState = rd.hardState;
    }
    if (entries.length > 0) this.mem.append(entries);
    if (rd.hardState !== undefined) this.mem.setHardState(rd.hardState);
  }

  // ---- RaftLogStorageWriter (each call durable on its own) ----

  async append(entries: Entry[]): Promise<void> {
    const snapIndex = this.mem.snapshot().metadata.index;
    const kept = entries.filter((e) => e.index > snapIndex);
    if (kept.length === 0) return;
    await this.wal.append(kept, this.lazyHardState);
    this.lazyHardState = undefined;
    this.mem.append(kept);
  }

  async setHardState(hardState: HardState): Promise<void> {
    await this.wal.append([], hardState);
    this.lazyHardState = undefined;
    this.mem.setHardState(hardState);
  }

  /** A snapshot from the leader replaces the whole log (raft/storage.ts rule 4). */
  async applySnapshot(snapshot: Snapshot): Promise<void> {
    const current = this.mem.snapshot().metadata.index;
    if (snapshot.metadata.index <= current) {
      throw new RmqError(
        ErrorCode.RaftSnapshotOutOfDate,
        `snapshot ${snapshot.metadata.index} is not newer than ${current}`,
      );
    }
    await this.wal.saveSnapshot(snapshot);
    await this.wal.truncate(snapshot.metadata.index + 1);
    this.mem.applySnapshot(snapshot);
  }

  /** Records a snapshot of the applied state at `index`, durably (atomic file + fsync). */
  async createSnapshot(index: number, voters: NodeId[], data: Uint8Array): Promise<Snapshot> {
    const current = this.mem.snapshot().metadata.index;
    if (index <= current) {
      throw new RmqError(
        ErrorCode.RaftSnapshotOutOfDate,
        `snapshot at ${index} is not newer than ${current}`,
      );
    }
    const snap: Snapshot = { metadata: { index, term: this.mem.term(index), voters: [...voters] }, data };
    await this.wal.saveSnapshot(snap);
    return this.mem.createSnapshot(index, voters, data);
  }

  /**
   * Drops entries up to `index` from memory, and the WAL segments no longer needed once the
   * snapshot covers them. Needs a snapshot at index >= `index` first.
   */
  async compact(index: number): Promise<void> {
    const snapIndex = this.mem.snapshot().metadata.index;
    if (index > snapIndex) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `compact(${index}) is beyond the snapshot at ${snapIndex}`,
      );
    }
    this.mem.compact(index);
    await this.wal.compact(index);
  }

  /** WAL segment files currently on disk (for tests and metrics). */
  walSegments(): number {
    return this.wal.segments().length;
  }

  /** Writes a pending lazy hard state and closes the WAL. */
  async close(): Promise<void> {
    if (this.lazyHardState !== undefined) {
      const hs = this.lazyHardState;
      this.lazyHardState = undefined;
      await this.wal.append([], hs).catch(() => undefined);
    }
    await this.wal.close();
  }
}

/** Opens (creating if needed) the log in `dir` and rebuilds the in-memory index from it. */
export async function createWalStorage(dir: string, options: WalStorageOptions = {}): Promise<WalStorage> {
  const opened = await createRaftWal(dir, options);
  const mem = new MemoryStorage();
  if (opened.snapshot !== undefined && opened.snapshot.metadata.index > 0) mem.applySnapshot(opened.snapshot);
  if (opened.entries.length > 0) mem.append(opened.entries);
  if (opened.hardState !== undefined) mem.setHardState(opened.hardState);
  return new WalStorage(mem, opened.wal, {
    tornTail: opened.tornTail,
    skippedSnapshots: opened.skippedSnapshots,
    entriesRecovered: opened.entries.length,
  });
}
