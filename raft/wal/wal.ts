// The durable Raft log: a segmented write-ahead log of entries and hard states, plus snapshot files.
//
// Layout under `dir`:
//   wal/{seq:16 hex}-{firstIndex:20}.wal   segments, replayed in seq order
//   snap/{index:20}-{term:20}.snap         snapshots (snapshot-file.ts)
//
// The log is a sequence of records (record.ts). Nothing is ever rewritten in place: replacing a
// conflicting suffix is a new record, an entry whose index is ≤ the last one (or a Truncate record),
// so a hard-state record written earlier can never be cut off by a truncation. Replay applies the
// records in order; the last hard-state record wins.
//
// Durability: `append(entries, hardState)` encodes everything into one buffer, does ONE write and ONE
// fdatasync. Rolling to a new segment (when the active one reached `segmentBytes`) also fsyncs the
// directory, so the new file's name is durable before the append is acknowledged. A new segment
// starts with the current hard state, so dropping older segments never loses it.
//
// Crash recovery (`createRaftWal`): a damaged record (partial or CRC mismatch) in the LAST segment is a
// torn tail — it and everything after it are cut off the file and reported; damage anywhere else is
// corruption and open fails. Entries at or below the snapshot index are not returned.
//
// Compaction drops whole segments from the front. Segment k may be the new first one only if replaying
// from k alone rebuilds every entry above the snapshot index: its first log-changing record (an entry
// or a truncate, or the next segment's if it has none) must be at index ≤ snapshotIndex + 1.

import { type FileHandle, mkdir, open, readdir, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Entry, HardState, Snapshot } from "../types.ts";
import { fsyncDir } from "./fsync-dir.ts";
import { encodeRecords, RecordType, scanRecords, type TailDamage, type WalRecord } from "./record.ts";
import { loadLatestSnapshot, pruneSnapshotFiles, writeSnapshotFile } from "./snapshot-file.ts";

/** Segment roll size (etcd's WAL uses 64 MiB too). Tests use a few KiB. */
export const DEFAULT_WAL_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Snapshot files kept on disk: the newest and one fallback. */
export const SNAPSHOTS_RETAINED = 2;

const SEGMENT_RE = /^([0-9a-f]{16})-(\d{20})\.wal$/;

export function segmentFileName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, "0")}-${String(firstIndex).padStart(20, "0")}.wal`;
}

export interface RaftWalOptions {
  segmentBytes?: number;
}

export interface WalSegmentInfo {
  file: string;
  seq: number;
  /** Index in the file name: the first entry index the segment was opened for. */
  firstIndex: number;
  bytes: number;
}

export interface TornTail {
  segment: string;
  /** Offset of the first damaged record: the file now ends here. */
  offset: number;
  bytesCut: number;
  damage: TailDamage;
}

export interface OpenedRaftWal {
  wal: RaftWal;
  hardState: HardState | undefined;
  snapshot: Snapshot | undefined;
  /** Entries after the snapshot, contiguous, ascending. */
  entries: Entry[];
  /** Set when the last segment ended in a partial or corrupt record that was cut off. */
  tornTail: TornTail | undefined;
  /** Newer snapshot files that failed their check (the next older one was used). */
  skippedSnapshots: Array<{ file: string; reason: string }>;
}

interface Segment extends WalSegmentInfo {
  /** Index of the first entry or truncate record in the segment, if any. */
  firstLogIndex: number | undefined;
  hasHardState: boolean;
}

interface RaftWalInit {
  dir: string;
  segmentBytes: number;
  segments: Segment[];
  activeFh: FileHandle | undefined;
  lastIndex: number;
  snapshotIndex: number;
  hardState: HardState | undefined;
}

function corrupt(message: string): RmqError {
  return new RmqError(ErrorCode.CorruptRecord, message);
}

function illegal(message: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, message);
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error("write made no progress");
    done += bytesWritten;
  }
}

/** Opens (creating if needed) the WAL in `dir`, recovers it and returns what it holds. */
export async function createRaftWal(dir: string, options: RaftWalOptions = {}): Promise<OpenedRaftWal> {
  const segmentBytes = options.segmentBytes ?? DEFAULT_WAL_SEGMENT_BYTES;
  if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= 0)
    throw illegal(`bad segmentBytes ${segmentBytes}`);
  const walDir = join(dir, "wal");
  const snapDir = join(dir, "snap");
  await mkdir(walDir, { recursive: true });
  await mkdir(snapDir, { recursive: true });
  await pruneSnapshotFiles(snapDir, Number.MAX_SAFE_INTEGER); // leftover temp files only

  const loaded = await loadLatestSnapshot(snapDir);
  const snapshotIndex = loaded?.snapshot.metadata.index ?? 0;

  const segments: Segment[] = [];
  for (const file of await readdir(walDir)) {
    const m = SEGMENT_RE.exec(file);
    if (m === null) continue;
    segments.push({
      file,
      seq: Number.parseInt(m[1] as string, 16),
      firstIndex: Number(m[2]),
      bytes: 0,
      firstLogIndex: undefined,
      hasHardState: false,
    });
  }
  segments.sort((a, b) => a.seq - b.seq);

  // Replay. `entries[i].index === snapshotIndex + 1 + i`; `last` is the last index (≥ snapshotIndex).
  let entries: Entry[] = [];
  let last = snapshotIndex;
  let hardState: HardState | undefined;
  let tornTail: TornTail | undefined;
  const truncateTo = (index: number) => {
    // Keep entries ≤ index.
    if (index <= snapshotIndex) {
      entries = [];
      last = snapshotIndex;
    } else if (index < last) {
      entries.length = index - snapshotIndex;
      last = index;
    }
  };
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i] as Segment;
    const buf = await readFile(join(walDir, seg.file));
    const scan = scanRecords(buf);
    if (scan.damage !== undefined) {
      if (i !== segments.length - 1) {
        throw corrupt(`WAL segment ${seg.file} is damaged (${scan.damage}) at offset ${scan.validBytes}`);
      }
      tornTail = {
        segment: seg.file,
        offset: scan.validBytes,
        bytesCut: buf.length - scan.validBytes,
        damage: scan.damage,
      };
    }
    seg.bytes = scan.validBytes;
    for (const { offset, record } of scan.records) {
      if (record.type === RecordType.HardState) {
        hardState = record.hardState;
        seg.hasHardState = true;
        continue;
      }
      const at = record.type === RecordType.Entry ? record.entry.index : record.fromIndex;
      seg.firstLogIndex ??= at;
      if (record.type === RecordType.Truncate) {
        truncateTo(record.fromIndex - 1);
        continue;
      }
      const e = record.entry;
      if (e.index > last + 1) {
        throw corrupt(
          `WAL segment ${seg.file} offset ${offset}: entry ${e.index} after ${last} leaves a gap`,
        );
      }
      truncateTo(e.index - 1);
      if (e.index > snapshotIndex) {
        entries.push(e);
        last = e.index;
      }
    }
  }

  let activeFh: FileHandle | undefined;
  const active = segments.at(-1);
  if (active !== undefined) {
    activeFh = await open(join(walDir, active.file), "r+");
    if (tornTail !== undefined) {
      await activeFh.truncate(active.bytes);
      await activeFh.datasync();
    }
  }
  const wal = new RaftWal({
    dir,
    segmentBytes,
    segments,
    activeFh,
    lastIndex: last,
    snapshotIndex,
    hardState,
  });
  return {
    wal,
    hardState,
    snapshot: loaded?.snapshot,
    entries,
    tornTail,
    skippedSnapshots: loaded?.skipped ?? [],
  };
}

/** An open WAL. Create with `createRaftWal`. Operations run one at a time, in call order. */
export class RaftWal {
  readonly dir: string;
  private readonly walDir: string;
  private readonly snapDir: string;
  private readonly segmentBytes: number;
  private readonly segs: Segment[];
  private activeFh: FileHandle | undefined;
  private last: number;
  private snapIndex: number;
  private hs: HardState | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  private closed = false;

  constructor(init: RaftWalInit) {
    this.dir = init.dir;
    this.walDir = join(init.dir, "wal");
    this.snapDir = join(init.dir, "snap");
    this.segmentBytes = init.segmentBytes;
    this.segs = init.segments;
    this.activeFh = init.activeFh;
    this.last = init.lastIndex;
    this.snapIndex = init.snapshotIndex;
    this.hs = init.hardState;
  }

  /** Index of the last entry (or of the snapshot, if the log is empty after it). */
  get lastIndex(): number {
    return this.last;
  }
  /** Index of the newest saved snapshot (0: none); entries at or below it are gone from the log. */
  get snapshotIndex(): number {
    return this.snapIndex;
  }
  get hardState(): HardState | undefined {
    return this.hs === undefined ? undefined : { ...this.hs };
  }
  segments(): WalSegmentInfo[] {
    return this.segs.map(({ file, seq, firstIndex, bytes }) => ({ file, seq, firstIndex, bytes }));
  }

  private run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.queue.then(() => {
      if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "WAL is closed");
      if (this.failure !== undefined) {
        throw new RmqError(ErrorCode.StoreNotWritable, "WAL failed earlier; reopen it", {
          cause: this.failure,
        });
      }
      return op();
    });
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Runs file-system work; any failure poisons the WAL (an fsync error cannot be retried safely). */
  private async io<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      this.failure = e;
      throw new RmqError(ErrorCode.StoreNotWritable, `WAL write failed: ${String(e)}`, { cause: e });
    }
  }

  /**
   * Appends entries (replacing any at or after entries[0].index) and/or a hard state, durably: one
   * write, one fdatasync (plus a directory fsync when a new segment is started).
   */
  append(entries: readonly Entry[], hardState?: HardState): Promise<void> {
    return this.run(async () => {
      if (entries.length === 0 && hardState === undefined) return;
      const first = entries[0]?.index;
      if (first !== undefined) {
        if (first <= this.snapIndex)
          throw illegal(`entry ${first} is at or below snapshot ${this.snapIndex}`);
        if (first > this.last + 1) throw illegal(`entry ${first} would leave a gap after ${this.last}`);
        for (let i = 1; i < entries.length; i++) {
          if ((entries[i] as Entry).index !== first + i) throw illegal("entries are not contiguous");
        }
      }
      const records: WalRecord[] = [];
      for (const entry of entries) records.push({ type: RecordType.Entry, entry });
      if (hardState !== undefined) records.push({ type: RecordType.HardState, hardState });
      await this.write(records, first !== undefined, first ?? this.last + 1);
      if (first !== undefined) this.last = first + entries.length - 1;
      if (hardState !== undefined) this.hs = { ...hardState };
    });
  }

  /** Drops entries with index ≥ fromIndex (one durable record). */
  truncate(fromIndex: number): Promise<void> {
    return this.run(async () => {
      if (fromIndex > this.last) return;
      if (fromIndex <= this.snapIndex)
        throw illegal(`cannot truncate at ${fromIndex}: snapshot is at ${this.snapIndex}`);
      await this.write([{ type: RecordType.Truncate, fromIndex }], false, fromIndex);
      this.last = fromIndex - 1;
    });
  }

  /**
   * Writes `records` to the active segment, or to a new one if `mayRoll` and the active one is full.
   * Prepends the current hard state when the target segment does not hold one yet.
   */
  private async write(records: WalRecord[], mayRoll: boolean, rollIndex: number): Promise<void> {
    let active = this.segs.at(-1);
    const roll =
      active === undefined || this.activeFh === undefined || (mayRoll && active.bytes >= this.segmentBytes);
    const targetHasHardState = !roll && (active as Segment).hasHardState;
    const all: WalRecord[] =
      !targetHasHardState && this.hs !== undefined
        ? [{ type: RecordType.HardState, hardState: this.hs }, ...records]
        : records;
    const buf = encodeRecords(all);
    await this.io(async () => {
      if (roll) {
        const seq = active === undefined ? 0 : active.seq + 1;
        const file = segmentFileName(seq, rollIndex);
        const fh = await open(join(this.walDir, file), "wx");
        try {
          await writeFully(fh, buf, 0);
          await fh.datasync();
          await fsyncDir(this.walDir);
        } catch (e) {
          await fh.close().catch(() => undefined);
          throw e;
        }
        await this.activeFh?.close();
        this.activeFh = fh;
        active = {
          file,
          seq,
          firstIndex: rollIndex,
          bytes: 0,
          firstLogIndex: undefined,
          hasHardState: false,
        };
        this.segs.push(active);
      } else {
        const fh = this.activeFh as FileHandle;
        await writeFully(fh, buf, (active as Segment).bytes);
        await fh.datasync();
      }
    });
    const seg = active as Segment;
    seg.bytes += buf.length;
    for (const r of all) {
      if (r.type === RecordType.HardState) seg.hasHardState = true;
      else seg.firstLogIndex ??= r.type === RecordType.Entry ? r.entry.index : r.fromIndex;
    }
  }

  /**
   * Saves a snapshot file atomically. Entries at or below its index are no longer returned on open.
   * If the local log conflicts with the snapshot (a follower receiving the leader's snapshot whose
   * term at `index` differs from its own entry), call truncate(index + 1) as well.
   */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.run(async () => {
      await this.io(async () => {
        await writeSnapshotFile(this.snapDir, snapshot);
        await pruneSnapshotFiles(this.snapDir, SNAPSHOTS_RETAINED);
      });
      const index = snapshot.metadata.index;
      if (index > this.snapIndex) this.snapIndex = index;
      if (index > this.last) this.last = index;
    });
  }

  /**
   * Deletes the whole segments no longer needed once a snapshot covers `index` (≤ snapshotIndex).
   * Returns how many segments were deleted. The active segment is never deleted.
   */
  compact(index: number): Promise<number> {
    return this.run(async () => {
      if (index > this.snapIndex)
        throw illegal(`cannot compact to ${index}: snapshot is at ${this.snapIndex}`);
      // coverFrom[k]: replaying segments k.. alone rebuilds every entry at or above this index.
      let cover = this.last + 1;
      let keepFrom = 0;
      for (let k = this.segs.length - 1; k >= 0; k--) {
        const seg = this.segs[k] as Segment;
        if (seg.firstLogIndex !== undefined) cover = seg.firstLogIndex;
        if (cover <= index + 1) {
          keepFrom = k;
          break;
        }
      }
      // Never drop the segment that holds the newest hard state.
      for (let k = this.segs.length - 1; k >= 0; k--) {
        if ((this.segs[k] as Segment).hasHardState) {
          keepFrom = Math.min(keepFrom, k);
          break;
        }
      }
      if (keepFrom === 0) return 0;
      const doomed = this.segs.slice(0, keepFrom);
      await this.io(async () => {
        for (const seg of doomed) await unlink(join(this.walDir, seg.file)); // oldest first: a crash leaves a suffix
        await fsyncDir(this.walDir);
      });
      this.segs.splice(0, keepFrom);
      return doomed.length;
    });
  }

  /** Waits for pending operations and closes the files. */
  close(): Promise<void> {
    const p = this.queue.then(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.activeFh?.close();
      this.activeFh = undefined;
    });
    this.queue = p.catch(() => undefined);
    return p;
  }
}
