// The CommitLog: append-only segments holding every record, and the one IO loop that writes them.
//
// Appends are synchronous (Node is single-threaded, so this is the "put lock"): the caller's record is
// given its physical offset and store timestamp and encoded straight into a shared encode arena, and
// the bytes join the pending batch. One IO loop takes the whole pending batch, writes it with one
// writev per segment it touches, and then
//   ASYNC_FLUSH: confirms it (dispatch to ConsumeQueue/Index) and completes the waiters; a background
//                flusher fdatasyncs every flushIntervalCommitLog ms (or when enough pages are dirty);
//   SYNC_FLUSH:  fdatasyncs, confirms, completes the waiters (group commit: appends that arrive while
//                a batch is being written or synced form the next batch and wait for the next sync).
// Offsets: allocOffset (next byte to assign) >= writtenOffset (in the file) >= flushedOffset (synced).
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { FlushDiskType } from "./config.ts";
import type { MappedFile } from "./mapped-file.ts";
import { MappedFileQueue } from "./mapped-file-queue.ts";
import {
  BLANK_MAGIC_CODE,
  END_FILE_MIN_BLANK_LENGTH,
  encodeBlank,
  encodeRecord,
  MESSAGE_MAGIC_CODE_V1,
  MESSAGE_MAGIC_CODE_V2,
  type ParseResult,
  parseRecord,
  type RecordFields,
  type RecordView,
  readLong,
} from "./message-codec.ts";
import { type FileIo, readFully, writeFully } from "./store-io.ts";

/** Encode arena size: records of one tick are encoded back to back into it (a new one when full). */
const ENCODE_ARENA_SIZE = 4 * 1024 * 1024;
/** Reads of records closer than this are merged into one pread. */
const READ_COALESCE_GAP = 64 * 1024;
/** Largest merged pread. */
const READ_MAX_SPAN = 4 * 1024 * 1024;
/** First read when a record's size is unknown (lookMessageByOffset). */
const READ_PROBE_SIZE = 8 * 1024;
const OS_PAGE_SIZE = 4096;

export const AppendOutcome = { OK: "ok", FLUSH_TIMEOUT: "flush-timeout" } as const;
export type AppendOutcome = (typeof AppendOutcome)[keyof typeof AppendOutcome];

/** Completion of one put (or one batch of puts): exactly one of complete/fail is called, once. */
export interface AppendWaiter {
  /** SYNC_FLUSH only: complete after the fdatasync covering the append, not after the write (upstream WAIT). */
  waitFlush: boolean;
  complete(outcome: AppendOutcome): void;
  fail(err: Error): void;
}

/** A run of bytes in one buffer, destined for consecutive CommitLog offsets starting at `offset`. */
export interface Span {
  buf: Buffer;
  start: number;
  end: number;
  offset: number;
}

/** The spans of a batch that go to one segment file. */
export interface Piece {
  file: MappedFile;
  position: number;
  length: number;
  spans: Span[];
}

class Batch {
  readonly start: number;
  end: number;
  readonly pieces: Piece[] = [];
  /** Completed once the batch is written (ASYNC: once confirmed). */
  writeWaiters: AppendWaiter[] = [];
  /** SYNC_FLUSH: completed once the batch is synced, or on timeout. */
  flushWaiters: AppendWaiter[] = [];
  timer: NodeJS.Timeout | undefined;
  lastStoreTimestamp = 0;

  constructor(start: number) {
    this.start = start;
    this.end = start;
  }
}

export interface CommitLogOptions {
  dir: string;
  fileSize: number;
  flushDiskType: FlushDiskType;
  syncFlushTimeout: number;
  flushIntervalCommitLog: number;
  flushCommitLogLeastPages: number;
  flushCommitLogThoroughInterval: number;
  io: FileIo;
  logger: Logger;
  clock: () => number;
  /** Called in CommitLog order with each confirmed batch, before its waiters complete. */
  onConfirmed: (pieces: readonly Piece[]) => void;
}

/** A record read back: its bytes and where its fields sit. */
export interface ReadRecord {
  buf: Buffer;
  view: RecordView;
}

/** Raw bytes for replication: whole records (and possibly a final blank marker) from `startOffset`. */
export interface RawChunk {
  startOffset: number;
  bytes: Buffer;
  /** Offset to read from next: after a blank marker, the start of the next segment. */
  nextOffset: number;
}

export class CommitLog {
  readonly files: MappedFileQueue;
  private readonly opts: CommitLogOptions;
  private readonly sync: boolean;
  private allocOffset = 0;
  private writtenOffsetValue = 0;
  private flushedOffsetValue = 0;
  private lastStoreTimestamp = 0;
  private writtenStoreTimestamp = 0;
  private flushedStoreTimestampValue = 0;
  private arena: Buffer = Buffer.allocUnsafe(0);
  private arenaPos = 0;
  private pending: Batch | undefined;
  private inflight: Batch | undefined;
  private running = false;
  private scheduled = false;
  private failure: Error | undefined;
  private readonly dirty = new Set<MappedFile>();
  private syncTail: Promise<void> = Promise.resolve();
  private idleWaiters: Array<() => void> = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private lastThoroughFlush = 0;
  private flushing = false;

  private constructor(files: MappedFileQueue, opts: CommitLogOptions) {
    this.files = files;
    this.opts = opts;
    this.sync = opts.flushDiskType === FlushDiskType.SYNC_FLUSH;
  }

  /** Opens the segment files; the log is usable once recovery called setRecoveredEnd. */
  static async open(opts: CommitLogOptions): Promise<{ commitLog: CommitLog; ignored: string[] }> {
    const { queue, ignored } = await MappedFileQueue.load(opts.dir, opts.fileSize);
    return { commitLog: new CommitLog(queue, opts), ignored };
  }

  get fileSize(): number {
    return this.opts.fileSize;
  }

  /** Sets every position to the recovered end of the log (all of it is in the files and synced). */
  setRecoveredEnd(offset: number, lastStoreTimestamp: number): void {
    this.allocOffset = offset;
    this.writtenOffsetValue = offset;
    this.flushedOffsetValue = offset;
    this.lastStoreTimestamp = lastStoreTimestamp;
    this.writtenStoreTimestamp = lastStoreTimestamp;
    this.flushedStoreTimestampValue = lastStoreTimestamp;
  }

  /** End of the bytes written to the files (upstream getMaxOffset). */
  get writtenOffset(): number {
    return this.writtenOffsetValue;
  }

  get flushedOffset(): number {
    return this.flushedOffsetValue;
  }

  /** Store timestamp of the last synced record (checkpoint physicMsgTimestamp). */
  get flushedStoreTimestamp(): number {
    return this.flushedStoreTimestampValue;
  }

  /** Up to here records are confirmed and dispatched: SYNC_FLUSH the synced end, ASYNC_FLUSH the written end. */
  get confirmOffset(): number {
    return this.sync ? this.flushedOffsetValue : this.writtenOffsetValue;
  }

  /** The next record's offset (counts appends not yet written). */
  get nextOffset(): number {
    return this.allocOffset;
  }

  get minOffset(): number {
    return this.files.minOffset;
  }

  get failed(): Error | undefined {
    return this.failure;
  }

  // ---------------------------------------------------------------- append (synchronous section)

  private checkWritable(): void {
    if (this.failure !== undefined) {
      throw new RmqError(ErrorCode.StoreNotWritable, `CommitLog failed earlier: ${this.failure.message}`);
    }
  }

  /** Largest record a segment can take (room is always kept for a blank marker). */
  get maxRecordSize(): number {
    return this.opts.fileSize - END_FILE_MIN_BLANK_LENGTH;
  }

  /**
   * Appends one record of `totalSize` bytes: sets `f.physicalOffset` and `f.storeTimestamp` (monotonic in
   * log order) and encodes it into the pending batch. Completion is awaited through addWaiter.
   */
  appendRecord(f: RecordFields, totalSize: number): void {
    this.checkWritable();
    if (totalSize > this.maxRecordSize) {
      throw new RmqError(
        ErrorCode.MessageBodyTooLarge,
        `record of ${totalSize} bytes does not fit a ${this.opts.fileSize}-byte segment`,
      );
    }
    const file = this.fileWithRoom(totalSize);
    const now = this.opts.clock();
    const ts = Math.max(now, this.lastStoreTimestamp);
    this.lastStoreTimestamp = ts;
    f.physicalOffset = this.allocOffset;
    f.storeTimestamp = ts;
    const [buf, pos] = this.reserve(file, totalSize);
    encodeRecord(buf, pos, totalSize, f);
    const batch = this.pending as Batch;
    batch.lastStoreTimestamp = ts;
  }

  /** The file to append `size` bytes to, rolling (blank marker + new file) when they do not fit. */
  private fileWithRoom(size: number): MappedFile {
    let file = this.fileForAppend();
    const remaining = file.fileEnd - this.allocOffset;
    if (size + END_FILE_MIN_BLANK_LENGTH > remaining) {
      const [buf, pos] = this.reserve(file, END_FILE_MIN_BLANK_LENGTH);
      encodeBlank(buf, pos, remaining);
      this.allocOffset = file.fileEnd;
      this.pendingBatch().end = this.allocOffset;
      file = this.fileForAppend();
    }
    return file;
  }

  private fileForAppend(): MappedFile {
    const last = this.files.last;
    if (last !== undefined && this.allocOffset >= last.fileFromOffset && this.allocOffset < last.fileEnd)
      return last;
    const f = this.files.createFileSync(this.allocOffset);
    this.opts.logger.info({ file: f.path }, "CommitLog segment created");
    return f;
  }

  private pendingBatch(): Batch {
    if (this.pending === undefined) this.pending = new Batch(this.allocOffset);
    return this.pending;
  }

  /** Reserves `size` bytes of the encode arena at allocOffset in `file`, and advances allocOffset. */
  private reserve(file: MappedFile, size: number): [Buffer, number] {
    if (this.arena.length - this.arenaPos < size) {
      this.arena = Buffer.allocUnsafe(Math.max(ENCODE_ARENA_SIZE, size));
      this.arenaPos = 0;
    }
    const pos = this.arenaPos;
    this.arenaPos += size;
    this.addSpan(file, this.arena, pos, pos + size);
    return [this.arena, pos];
  }

  private addSpan(file: MappedFile, buf: Buffer, start: number, end: number): void {
    const batch = this.pendingBatch();
    let piece = batch.pieces[batch.pieces.length - 1];
    if (piece === undefined || piece.file !== file) {
      piece = { file, position: this.allocOffset, length: 0, spans: [] };
      batch.pieces.push(piece);
    }
    const last = piece.spans[piece.spans.length - 1];
    if (last !== undefined && last.buf === buf && last.end === start) last.end = end;
    else piece.spans.push({ buf, start, end, offset: this.allocOffset });
    piece.length += end - start;
    this.allocOffset += end - start;
    batch.end = this.allocOffset;
  }

  /**
   * Appends already-encoded records (replication) that must start at nextOffset. Every record's CRC and
   * PHYSICALOFFSET are checked, and blank markers must match the segment end, before anything is queued;
   * then the bytes are written as they are (no copy). An empty store accepts any segment-aligned start.
   * Returns the records' views (into `data`) so the caller can advance its queue offsets.
   */
  appendRaw(phyOffset: number, data: Buffer): RecordView[] {
    this.checkWritable();
    const fileSize = this.opts.fileSize;
    if (phyOffset !== this.allocOffset) {
      const empty =
        this.files.files.length === 0 &&
        this.allocOffset === this.writtenOffsetValue &&
        this.pending === undefined;
      if (!(empty && phyOffset % fileSize === 0 && phyOffset >= 0)) {
        throw new RmqError(
          ErrorCode.CommitLogOffsetMismatch,
          `appendRaw at ${phyOffset}, but the CommitLog ends at ${this.allocOffset}`,
        );
      }
    }
    const views: RecordView[] = [];
    // Validate everything first: one bad record rejects the whole chunk.
    const runs: Array<{ start: number; end: number; offset: number; blank: number }> = [];
    let p = 0;
    let g = phyOffset;
    let runStart = 0;
    let runOffset = g;
    while (p < data.length) {
      const segEnd = (Math.floor(g / fileSize) + 1) * fileSize;
      const r: ParseResult = parseRecord(data, p, data.length, {
        verifyCrc: true,
        segmentRemaining: segEnd - g,
        expectedOffset: g,
      });
      if (r.kind === "record") {
        views.push(r.view);
        p += r.view.size;
        g += r.view.size;
      } else if (r.kind === "blank") {
        p += END_FILE_MIN_BLANK_LENGTH;
        runs.push({ start: runStart, end: p, offset: runOffset, blank: r.size });
        g = segEnd;
        runStart = p;
        runOffset = g;
      } else {
        const why =
          r.kind === "corrupt"
            ? r.reason
            : r.kind === "short"
              ? "partial record at the end of the chunk"
              : "zero bytes";
        throw new RmqError(ErrorCode.CorruptRecord, `appendRaw rejected at offset ${g}: ${why}`);
      }
    }
    if (runStart < data.length) runs.push({ start: runStart, end: data.length, offset: runOffset, blank: 0 });
    if (phyOffset !== this.allocOffset) {
      this.allocOffset = phyOffset;
      this.writtenOffsetValue = phyOffset;
      this.flushedOffsetValue = phyOffset;
    }
    for (const run of runs) {
      const file = this.fileForAppend();
      this.addSpan(file, data, run.start, run.end);
      if (run.blank > 0) {
        // The blank marker stands for the rest of the segment.
        this.allocOffset = file.fileEnd;
        this.pendingBatch().end = this.allocOffset;
      }
    }
    for (const v of views)
      if (v.storeTimestamp > this.lastStoreTimestamp) this.lastStoreTimestamp = v.storeTimestamp;
    if (this.pending !== undefined) this.pending.lastStoreTimestamp = this.lastStoreTimestamp;
    return views;
  }

  /** Registers completion for everything appended so far in this tick. */
  addWaiter(w: AppendWaiter): void {
    if (this.failure !== undefined) {
      w.fail(new RmqError(ErrorCode.StoreNotWritable, `CommitLog failed: ${this.failure.message}`));
      return;
    }
    const batch = this.pending;
    if (batch === undefined) {
      // Nothing to write (an empty appendRaw): already durable as far as this caller is concerned.
      w.complete(AppendOutcome.OK);
      return;
    }
    if (this.sync && w.waitFlush) {
      batch.flushWaiters.push(w);
      if (batch.timer === undefined) {
        batch.timer = setTimeout(() => this.flushTimedOut(batch), this.opts.syncFlushTimeout);
        batch.timer.unref();
      }
    } else {
      batch.writeWaiters.push(w);
    }
    this.schedule();
  }

  private flushTimedOut(batch: Batch): void {
    const ws = batch.flushWaiters;
    batch.flushWaiters = [];
    if (ws.length > 0) {
      this.opts.logger.warn(
        { offset: batch.start, waiters: ws.length, timeoutMs: this.opts.syncFlushTimeout },
        "CommitLog flush timed out",
      );
    }
    for (const w of ws) w.complete(AppendOutcome.FLUSH_TIMEOUT);
  }

  // ---------------------------------------------------------------- the IO loop

  private schedule(): void {
    if (this.running || this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.runLoop());
  }

  private async runLoop(): Promise<void> {
    this.scheduled = false;
    if (this.running) return;
    this.running = true;
    try {
      while (this.pending !== undefined && this.failure === undefined) {
        const batch = this.pending;
        this.pending = undefined;
        this.inflight = batch;
        await this.writeBatch(batch);
        if (this.sync) {
          completeAll(batch.writeWaiters, AppendOutcome.OK);
          batch.writeWaiters = [];
          await this.syncDirty();
        }
        this.confirm(batch);
        this.inflight = undefined;
      }
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.running = false;
      if (this.pending !== undefined && this.failure === undefined) this.schedule();
      else this.notifyIdle();
    }
  }

  private async writeBatch(batch: Batch): Promise<void> {
    for (const piece of batch.pieces) {
      const file = piece.file;
      if (!file.hold()) throw new Error(`segment ${file.path} was closed under a write`);
      try {
        const bufs = piece.spans.map((s) => s.buf.subarray(s.start, s.end));
        await writeFully(this.opts.io, file.fd, bufs, piece.position - file.fileFromOffset);
      } finally {
        file.release();
      }
      this.dirty.add(file);
    }
    this.writtenOffsetValue = batch.end;
    this.writtenStoreTimestamp = batch.lastStoreTimestamp || this.writtenStoreTimestamp;
  }

  private confirm(batch: Batch): void {
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    try {
      this.opts.onConfirmed(batch.pieces);
    } catch (e) {
      // A dispatcher bug must not lose the acknowledgement of durable data; recovery re-dispatches.
      this.opts.logger.error({ err: e, offset: batch.start }, "dispatch of confirmed records failed");
    }
    const ws = batch.writeWaiters;
    const fs = batch.flushWaiters;
    batch.writeWaiters = [];
    batch.flushWaiters = [];
    completeAll(ws, AppendOutcome.OK);
    completeAll(fs, AppendOutcome.OK);
  }

  private fail(err: Error): void {
    if (this.failure === undefined) {
      this.failure = err;
      this.opts.logger.error({ err }, "CommitLog IO failed; the store no longer accepts writes");
    }
    const e = new RmqError(ErrorCode.StoreNotWritable, `CommitLog IO failed: ${err.message}`, { cause: err });
    for (const b of [this.inflight, this.pending]) {
      if (b === undefined) continue;
      if (b.timer !== undefined) clearTimeout(b.timer);
      for (const w of b.writeWaiters) w.fail(e);
      for (const w of b.flushWaiters) w.fail(e);
      b.writeWaiters = [];
      b.flushWaiters = [];
    }
    this.inflight = undefined;
    this.pending = undefined;
  }

  private notifyIdle(): void {
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  /** Resolves once every append made so far is written (and, in SYNC_FLUSH, synced) or failed. */
  whenIdle(): Promise<void> {
    if (!this.running && this.pending === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      if (!this.running) this.schedule();
    });
  }

  /** fdatasync every file written since the last sync; flushedOffset then covers what was written before. */
  syncDirty(): Promise<void> {
    const run = async (): Promise<void> => {
      const target = this.writtenOffsetValue;
      const ts = this.writtenStoreTimestamp;
      const files = [...this.dirty];
      this.dirty.clear();
      await this.files.syncDir(this.opts.io);
      for (const f of files) {
        if (!f.hold()) continue;
        try {
          await this.opts.io.fdatasync(f.fd);
        } finally {
          f.release();
        }
      }
      if (target > this.flushedOffsetValue) {
        this.flushedOffsetValue = target;
        this.flushedStoreTimestampValue = ts;
      }
    };
    const p = this.syncTail.then(run, run);
    this.syncTail = p.catch(() => {});
    return p;
  }

  /** Writes everything appended so far and syncs it. */
  async flush(): Promise<void> {
    await this.whenIdle();
    if (this.failure !== undefined) return;
    try {
      await this.syncDirty();
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
      throw e;
    }
  }

  /** ASYNC_FLUSH background flusher (upstream FlushRealTimeService). */
  startFlusher(): void {
    if (this.sync || this.flushTimer !== undefined) return;
    this.lastThoroughFlush = this.opts.clock();
    this.flushTimer = setInterval(() => void this.flushTick(), this.opts.flushIntervalCommitLog);
    this.flushTimer.unref();
  }

  private async flushTick(): Promise<void> {
    if (this.flushing || this.failure !== undefined) return;
    const dirtyBytes = this.writtenOffsetValue - this.flushedOffsetValue;
    if (dirtyBytes <= 0) return;
    const now = this.opts.clock();
    const thorough = now - this.lastThoroughFlush >= this.opts.flushCommitLogThoroughInterval;
    if (!thorough && dirtyBytes < this.opts.flushCommitLogLeastPages * OS_PAGE_SIZE) return;
    if (thorough) this.lastThoroughFlush = now;
    this.flushing = true;
    try {
      await this.syncDirty();
    } catch (e) {
      this.fail(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.flushing = false;
    }
  }

  stopFlusher(): void {
    if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
    this.flushTimer = undefined;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Reads records by (offset, size), merging nearby ones into one pread. Each result is the verified
   * record (CRC, offset and size match) or undefined: deleted, beyond the confirmed end, or damaged.
   */
  async readRecords(
    refs: ReadonlyArray<{ offset: number; size: number }>,
  ): Promise<Array<ReadRecord | undefined>> {
    const out: Array<ReadRecord | undefined> = new Array(refs.length).fill(undefined);
    const limit = this.confirmOffset;
    const groups: Array<{ file: MappedFile; start: number; end: number; idx: number[] }> = [];
    let cur: { file: MappedFile; start: number; end: number; idx: number[] } | undefined;
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i];
      if (r === undefined || r.size <= 0 || r.offset < 0 || r.offset + r.size > limit) continue;
      const file = this.files.findFile(r.offset);
      if (file === undefined || r.offset + r.size > file.fileEnd) continue;
      if (
        cur !== undefined &&
        cur.file === file &&
        r.offset >= cur.end &&
        r.offset - cur.end <= READ_COALESCE_GAP &&
        r.offset + r.size - cur.start <= READ_MAX_SPAN
      ) {
        cur.end = r.offset + r.size;
        cur.idx.push(i);
      } else {
        cur = { file, start: r.offset, end: r.offset + r.size, idx: [i] };
        groups.push(cur);
      }
    }
    await Promise.all(
      groups.map(async (g) => {
        const buf = await this.readRange(g.file, g.start, g.end - g.start);
        if (buf === undefined) return;
        for (const i of g.idx) {
          const r = refs[i] as { offset: number; size: number };
          const pos = r.offset - g.start;
          const res = parseRecord(buf, pos, pos + r.size, {
            verifyCrc: true,
            segmentRemaining: g.file.fileEnd - r.offset,
            expectedOffset: r.offset,
          });
          if (res.kind === "record" && res.view.size === r.size) out[i] = { buf, view: res.view };
          else this.logBadRead(r.offset, res);
        }
      }),
    );
    return out;
  }

  /** Reads the record at `offset` without knowing its size (lookMessageByOffset). */
  async readRecordAt(offset: number): Promise<ReadRecord | undefined> {
    const limit = this.confirmOffset;
    const file = this.files.findFile(offset);
    if (file === undefined || offset < 0 || offset >= limit) return undefined;
    const max = Math.min(limit, file.fileEnd) - offset;
    let want = Math.min(READ_PROBE_SIZE, max);
    for (let attempt = 0; attempt < 2; attempt++) {
      const buf = await this.readRange(file, offset, want);
      if (buf === undefined) return undefined;
      const res = parseRecord(buf, 0, buf.length, {
        verifyCrc: true,
        segmentRemaining: file.fileEnd - offset,
        expectedOffset: offset,
      });
      if (res.kind === "record") return { buf, view: res.view };
      if (res.kind !== "short" || res.need > max) {
        this.logBadRead(offset, res);
        return undefined;
      }
      want = res.need;
    }
    return undefined;
  }

  private logBadRead(offset: number, res: ParseResult): void {
    if (res.kind === "corrupt")
      this.opts.logger.error({ offset, reason: res.reason }, "damaged CommitLog record not served");
  }

  private async readRange(file: MappedFile, offset: number, length: number): Promise<Buffer | undefined> {
    if (!file.hold()) return undefined;
    try {
      const buf = Buffer.allocUnsafe(length);
      const n = await readFully(this.opts.io, file.fd, buf, 0, length, offset - file.fileFromOffset);
      return n === length ? buf : buf.subarray(0, n);
    } finally {
      file.release();
    }
  }

  /**
   * Replication read: whole records from `phyOffset` (a record boundary), up to `maxBytes` unless the
   * first record alone is bigger, never past the written end or the segment end. A blank marker ends
   * the chunk and `nextOffset` is then the next segment's start.
   */
  async readRaw(phyOffset: number, maxBytes: number): Promise<RawChunk> {
    const end = this.writtenOffsetValue;
    if (phyOffset === end) return { startOffset: phyOffset, bytes: Buffer.alloc(0), nextOffset: phyOffset };
    if (phyOffset < this.minOffset || phyOffset > end) {
      throw new RmqError(
        ErrorCode.OffsetOutOfRange,
        `readRaw at ${phyOffset}, CommitLog holds [${this.minOffset}, ${end})`,
      );
    }
    const file = this.files.findFile(phyOffset);
    if (file === undefined)
      throw new RmqError(ErrorCode.OffsetOutOfRange, `no segment holds offset ${phyOffset}`);
    const avail = Math.min(end, file.fileEnd) - phyOffset;
    let want = Math.min(Math.max(maxBytes, END_FILE_MIN_BLANK_LENGTH), avail);
    let buf = await this.readRange(file, phyOffset, want);
    if (buf === undefined)
      throw new RmqError(ErrorCode.OffsetOutOfRange, `segment of offset ${phyOffset} was deleted`);
    let p = 0;
    let next = phyOffset;
    let reread = false;
    while (p < buf.length) {
      const g = phyOffset + p;
      const res = parseRecord(buf, p, buf.length, {
        verifyCrc: true,
        segmentRemaining: file.fileEnd - g,
        expectedOffset: g,
      });
      if (res.kind === "record") {
        p += res.view.size;
        next = g + res.view.size;
        continue;
      }
      if (res.kind === "blank") {
        p += END_FILE_MIN_BLANK_LENGTH;
        next = file.fileEnd;
        break;
      }
      if (res.kind === "short" && p === 0 && res.need <= avail && !reread) {
        reread = true;
        // The first record is bigger than maxBytes: send it whole.
        want = res.need;
        buf = await this.readRange(file, phyOffset, want);
        if (buf === undefined)
          throw new RmqError(ErrorCode.OffsetOutOfRange, `segment of offset ${phyOffset} was deleted`);
        continue;
      }
      // Past the first record, stop at the chunk's end; at the first one, anything else is damage.
      if (p > 0 && (res.kind === "short" || res.kind === "end")) break;
      throw new RmqError(
        ErrorCode.CorruptRecord,
        `readRaw at ${g}: ${res.kind === "corrupt" ? res.reason : "no record"}`,
      );
    }
    return { startOffset: phyOffset, bytes: buf.subarray(0, p), nextOffset: next };
  }

  // ---------------------------------------------------------------- truncation and shutdown

  /**
   * Cuts the log back to `offset`, which must be a record boundary in [minOffset, writtenOffset]:
   * later segments are deleted and the rest of the cut segment is zeroed and synced.
   */
  async truncate(offset: number): Promise<string[]> {
    await this.whenIdle();
    this.checkWritable();
    if (offset < this.minOffset || offset > this.writtenOffsetValue) {
      throw new RmqError(
        ErrorCode.OffsetOutOfRange,
        `truncate to ${offset}, CommitLog holds [${this.minOffset}, ${this.writtenOffsetValue}]`,
      );
    }
    if (!(await this.isRecordBoundary(offset))) {
      throw new RmqError(ErrorCode.OffsetOutOfRange, `truncate to ${offset}: not a record boundary`);
    }
    const deleted = await this.files.truncateFrom(offset);
    for (const f of [...this.dirty]) if (!f.isAlive) this.dirty.delete(f);
    const f = this.files.findFile(offset);
    if (f?.hold()) {
      try {
        await this.opts.io.fdatasync(f.fd);
      } finally {
        f.release();
      }
    }
    await this.files.syncDir(this.opts.io);
    this.allocOffset = offset;
    this.writtenOffsetValue = offset;
    if (this.flushedOffsetValue > offset) this.flushedOffsetValue = offset;
    return deleted;
  }

  private async isRecordBoundary(offset: number): Promise<boolean> {
    if (offset === this.writtenOffsetValue || offset % this.opts.fileSize === 0) return true;
    const file = this.files.findFile(offset);
    if (file === undefined) return false;
    const buf = await this.readRange(file, offset, Math.min(64, file.fileEnd - offset));
    if (buf === undefined || buf.length < 36) return false;
    const magic = buf.readInt32BE(4);
    if (magic === BLANK_MAGIC_CODE) return buf.readInt32BE(0) === file.fileEnd - offset;
    if (magic !== MESSAGE_MAGIC_CODE_V1 && magic !== MESSAGE_MAGIC_CODE_V2) return false;
    return readLong(buf, 28) === offset;
  }

  /** Deletes one whole segment (retention); never the file being appended to. */
  async deleteFile(f: MappedFile): Promise<void> {
    if (f === this.files.last)
      throw new RmqError(ErrorCode.Internal, "refusing to delete the newest CommitLog segment");
    this.dirty.delete(f);
    await this.files.removeFile(f);
    await this.files.syncDir(this.opts.io);
  }

  /** Flushes and closes every segment. */
  async close(): Promise<void> {
    this.stopFlusher();
    await this.flush().catch(() => {});
    await this.files.closeAll();
  }
}

function completeAll(ws: AppendWaiter[], outcome: AppendOutcome): void {
  for (const w of ws) w.complete(outcome);
}
