// The contract between the pure Raft core (raft/core) and the log storage under it.
//
// The core only READS storage, synchronously, through RaftLogStorage. Writes are done by the code
// that drives the core (the "Ready loop"), through RaftLogStorageWriter, following the Ready
// contract in raft/types.ts. Two implementations: raft/storage/memory-storage.ts (tests, simulator)
// and a durable WAL (raft/storage/wal*).
//
// WHAT MUST BE DURABLE WHEN
//
// 1. Before any message of a Ready is sent, that Ready's `snapshot`, then `entries`, then `hardState`
//    must be written, and fsynced when `Ready.mustSync` is true. Votes (hardState.vote/term) and
//    append acknowledgements (MsgAppResp) are promises about the disk; sending them first breaks
//    election safety and can lose committed entries.
// 2. Write order is snapshot → entries → hardState, as one batch. A crash before the fsync may lose
//    any SUFFIX of that batch (a torn tail), never a middle part: after recovery a surviving
//    hardState implies its entries survived, so `hardState.commit <= lastIndex()` always holds.
//    Nothing from an unsynced batch may have been sent, so losing it is invisible to peers.
// 3. Appending entries that start at index i replaces every stored entry with index >= i (the core
//    only does this for uncommitted entries after a conflict). Entries below firstIndex() in an
//    append are ignored (already compacted).
// 4. Applying a snapshot (Ready.snapshot, sent by a leader) replaces the whole log: firstIndex()
//    becomes snapshot.index + 1 and lastIndex() snapshot.index. (The core only hands one out when
//    its log does not already hold the snapshot's last entry.)
// 5. Compaction (compact(i): drop entries up to and including i) may only drop entries the state
//    machine has applied, and only once a snapshot at index >= i exists (createSnapshot first), so
//    that snapshot() can still bring a lagging follower up to firstIndex(). It need not be fsynced.
// 6. Read-your-writes: once advance() is called for a Ready, every read below must reflect that
//    Ready's writes; the core drops its in-memory copy of those entries at advance().
//
// On restart the caller builds a state machine from snapshot() (if any) and passes its index as
// `applied` in the node config; the core then re-delivers committed entries after it.

import type { Entry, HardState, NodeId, Snapshot } from "./types.ts";

export interface RaftInitialState {
  hardState: HardState;
  /** Voters from the latest snapshot (or bootstrap). Empty: the core uses its configured peers. */
  voters: NodeId[];
}

/** Read-only view of the persisted log. Every call is synchronous and cheap. */
export interface RaftLogStorage {
  initialState(): RaftInitialState;
  /**
   * Entries in [lo, hi), stopping before the total size passes maxBytes (entryBytes in
   * raft/core/entry-size.ts) but always returning at least one entry when lo < hi.
   * Throws RmqError(RaftLogCompacted) if lo < firstIndex(), RmqError(RaftLogUnavailable) if
   * hi > lastIndex() + 1. The returned array may be kept by the caller; entries are immutable.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * Term of the entry at index i, for firstIndex() - 1 <= i <= lastIndex(). The term of the last
   * compacted entry (firstIndex() - 1) stays known: it is the snapshot's term right after a
   * snapshot is applied, and 0 for a fresh log. Throws RmqError(RaftLogCompacted) below that range,
   * RmqError(RaftLogUnavailable) above it.
   */
  term(i: number): number;
  /** Index of the first entry still stored: last compacted index + 1 (1 for a fresh log). */
  firstIndex(): number;
  /** Index of the last entry (firstIndex() - 1 when no entry is stored). */
  lastIndex(): number;
  /**
   * The most recent snapshot. May throw RmqError(RaftSnapshotTemporarilyUnavailable) while one is
   * being produced; the core then retries on a later heartbeat.
   */
  snapshot(): Snapshot;
}

/**
 * Write side, used by the Ready loop (never by the core). A durable implementation may return
 * promises; the Ready loop awaits them before sending the Ready's messages (rule 1 above).
 */
export interface RaftLogStorageWriter {
  /** Persist entries (rule 3). */
  append(entries: Entry[]): void | Promise<void>;
  setHardState(hardState: HardState): void | Promise<void>;
  /**
   * Replace the log with a snapshot received from the leader (rule 4). Throws
   * RmqError(RaftSnapshotOutOfDate) if it is older than the current snapshot.
   */
  applySnapshot(snapshot: Snapshot): void | Promise<void>;
  /**
   * Record a snapshot of the state machine taken at `index` (<= applied). Throws
   * RmqError(RaftSnapshotOutOfDate) if index is not newer than the current snapshot.
   */
  createSnapshot(index: number, voters: NodeId[], data: Uint8Array): Snapshot | Promise<Snapshot>;
  /**
   * Drop entries up to and including `index` (rule 5); firstIndex() becomes index + 1. Throws
   * RmqError(RaftLogCompacted) if already compacted that far.
   */
  compact(index: number): void | Promise<void>;
}
