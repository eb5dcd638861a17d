// The CommitLog: append-only segments holding every record, and the IO pipeline that writes them.
//
// Appends are synchronous (Node is single-threaded, so this is the "put lock"): the caller's record is
// given its physical offset and store timestamp and encoded straight into the pending batch's write
// buffer, all but its two checksums, which are filled in ("sealed", record-seal.ts) when the batch is
// written. The pending batch is sealed and written with one writev per segment it touches, either at
// the end of the tick or at once when it has grown to WRITE_EAGER_BYTES, so that a write overlaps the
// encoding of what follows; up to MAX_WRITES_IN_FLIGHT batch writes run at once. In ASYNC_FLUSH with the
// default IO both happen on the writer thread (commitlog-writer.ts) once it is started (writerThread)
// and up; otherwise (SYNC_FLUSH, a caller-given FileIo, before) the batch is sealed here and written
// through the FileIo. Whatever order they
// complete in, batches are processed in log order:
//   ASYNC_FLUSH: a written batch is confirmed (dispatched to ConsumeQueue/Index) and its waiters complete;
//                a background flusher fdatasyncs every flushIntervalCommitLog ms (or when enough pages
//                are dirty);
//   SYNC_FLUSH:  a written batch waits for an fdatasync that starts after its write completed; one sync
//                runs at a time and covers every batch written before it started (group commit: at most
//                one fdatasync per batch, fewer under load), while later batches are already being
//                written. Only then is the batch confirmed and are its waiters completed.
// Confirmed waiters are completed ACK_SLICE at a time with a turn of the event loop in between, so the
// appends they trigger are written (and synced) in step rather than all behind one long burst.
// Offsets: allocOffset (next byte to assign) >= writtenOffset (in the files, in log order) >= flushedOffset
// (synced).
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { CommitLogWriter, type WritePiece } from "./commitlog-writer.ts";
import { FlushDiskType, HelperThreads } from "./config.ts";
import type { DispatchRequest } from "./dispatch.ts";
import type { MappedFile } from "./mapped-file.ts";
import { MappedFileQueue } from "./mapped-file-queue.ts";
import {
  BLANK_MAGIC_CODE,
  END_FILE_MIN_BLANK_LENGTH,
  encodeBlank,
  encodeUnsealedRecord,
  MESSAGE_MAGIC_CODE_V1,
  MESSAGE_MAGIC_CODE_V2,
  type ParseResult,
  parseRecord,
  type RecordFields,
  type RecordView,
  readLong,
  viewToDispatchRequest,
} from "./message-codec.ts";
import { sealRecords } from "./record-seal.ts";
import { type FileIo, nodeFileIo, readFully, readFullySync, writeFully, writeFullySync } from "./store-io.ts";

/**
 * Write buffer size: a batch's records are encoded back to back into one (another when full; a record
 * larger than this gets one of its own). A buffer belongs to one batch; once the batch is written (on the
 * writer thread, commitlog-writer.ts, the buffer moves there and back) it is reused.
 */
const WRITE_BUFFER_SIZE = 512 * 1024;
/** Write buffers kept for reuse, at most (no allocation per batch). */
const MAX_SPARE_WRITE_BUFFERS = 8;
/** HelperThreads.AUTO: the writer thread starts with the first batch of at least this many bytes. */
const WRITER_START_BATCH_BYTES = 64 * 1024;
/** A pending batch this large is written at once instead of at the end of the tick. */
const WRITE_EAGER_BYTES = 256 * 1024;
/** Confirmed waiters completed per turn of the event loop. */
const ACK_SLICE = 128;
/** Batch writes issued and not yet completed, at most. */
const MAX_WRITES_IN_FLIGHT = 2;
/** Reads of records closer than this are merged into one pread. */
const READ_COALESCE_GAP = 64 * 1024;
/** Largest merged pread. */
const READ_MAX_SPAN = 4 * 1024 * 1024;
/** First read when a record's size is unknown (lookMessageByOffset). */
const READ_PROBE_SIZE = 8 * 1024;
/** The scratch buffer of synchronous reads grows in steps of this much (up to READ_MAX_SPAN). */
const READ_SCRATCH_STEP = 256 * 1024;
const OS_PAGE_SIZE = 4096;
/**
 * A synchronous ASYNC_FLUSH write this slow means the kernel is holding writers back (dirty page cache
 * beyond what the disk drains): writes then go through the thread pool for SYNC_WRITE_BACKOFF_MS so
 * the event loop keeps serving reads, acks and heartbeats meanwhile.
 */
const SYNC_WRITE_STALL_MS = 20;
const SYNC_WRITE_BACKOFF_MS = 10_000;

export const AppendOutcome = { OK: "ok", FLUSH_TIMEOUT: "flush-timeout" } as const;
export type AppendOutcome = (typeof AppendOutcome)[keyof typeof AppendOutcome];

/** Completion of one put (or one batch of puts): exactly one of complete/fail is called, once. */
export interface AppendWaiter {
  /** SYNC_FLUSH only: complete after the fdatasync covering the append, not after the write (upstream WAIT). */
  waitFlush: boolean;
  complete(outcome: AppendOutcome): void;
  fail(err: Error): void;
}

/**
 * A record to append: the fields it is encoded from, which are also the DispatchRequest it is confirmed
 * with (`size` is its total length; the CommitLog sets physicalOffset, commitLogOffset, storeTimestamp).
 */
export interface AppendRecord extends RecordFields, DispatchRequest {}

/** A run of bytes in one buffer, destined for consecutive CommitLog offsets starting at `offset`. */
export interface Span {
  buf: Buffer;
  start: number;
  end: number;
  offset: number;
  /** Records encoded here, to be sealed before the write (replicated bytes arrive sealed). */
  encoded: boolean;
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
  /** The batch's records in log order, dispatched when it is confirmed. */
  readonly records: DispatchRequest[] = [];
  /** The write buffers its records were encoded into. */
  buffers: Buffer[] = [];
  /** Holds bytes in buffers it does not own (appendRaw): written on this thread. */
  foreign = false;
  /** ASYNC_FLUSH: completed once confirmed; SYNC_FLUSH: once written (WAIT=false). */
  writeWaiters: AppendWaiter[] = [];
  /** SYNC_FLUSH: completed once the batch is synced, or on timeout. */
  flushWaiters: AppendWaiter[] = [];
  /** whenIdle callers: released once the batch is confirmed or failed (never by a timeout). */
  barriers: Array<() => void> = [];
  timer: NodeJS.Timeout | undefined;
  lastStoreTimestamp = 0;
  /** Its write completed (possibly before an earlier batch's did). */
  written = false;

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
  /** Whether ASYNC_FLUSH batches are sealed and written on the writer thread (only with the default IO). */
  writerThread: HelperThreads;
  /**
   * Records within this many bytes of the written end are taken to be in the page cache and read on
   * the calling thread when the IO can (readSync): the store sets it from accessMessageInMemoryMaxRatio.
   */
  hotReadBytes: number;
  logger: Logger;
  clock: () => number;
  /**
   * Called in CommitLog order with each confirmed batch's records (blank markers have none), before its
   * waiters complete; `end` is the batch's end offset (past a blank marker: the next segment's start).
   */
  onConfirmed: (records: readonly DispatchRequest[], end: number) => void;
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

const EMPTY_BUFFER = Buffer.alloc(0);

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
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
  /** The pending batch's current write buffer (empty when there is none yet). */
  private writeBuffer: Buffer = EMPTY_BUFFER;
  /** Seals and writes batches on its own thread once started (see writerThread). */
  private writer: CommitLogWriter | undefined;
  /** The writer thread may still be started (HelperThreads.AUTO, ASYNC_FLUSH, default IO). */
  private writerStartable: boolean;
  private writeBufferPos = 0;
  private readonly spareBuffers: Buffer[] = [];
  /** Appends not yet handed to a write. */
  private pending: Batch | undefined;
  /** Batches whose write was issued, in log order, until processed in order. */
  private writing: Batch[] = [];
  private writesInFlight = 0;
  /** SYNC_FLUSH: batches written (in order) and waiting for the next fdatasync. */
  private unsynced: Batch[] = [];
  /** SYNC_FLUSH: the batches the running fdatasync covers. */
  private syncingBatches: Batch[] = [];
  private syncing = false;
  /** The batch holding the newest append until it is confirmed: where a waiter registered now belongs. */
  private newest: Batch | undefined;
  private scheduled = false;
  /** Confirmed waiters (and whenIdle barriers) not yet completed, from ackHead on. */
  private readonly acks: Array<AppendWaiter | (() => void) | undefined> = [];
  private ackHead = 0;
  private ackScheduled = false;
  private failure: Error | undefined;
  private readonly dirty = new Set<MappedFile>();
  private syncTail: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private lastThoroughFlush = 0;
  private flushing = false;
  /** Reused by synchronous reads (readGroupSync). */
  private readScratch: Buffer | undefined;
  /** performance.now() until which ASYNC_FLUSH batches are written through the thread pool. */
  private syncWritesPausedUntil = 0;

  private constructor(files: MappedFileQueue, opts: CommitLogOptions) {
    this.files = files;
    this.opts = opts;
    this.sync = opts.flushDiskType === FlushDiskType.SYNC_FLUSH;
    // SYNC_FLUSH waits for an fdatasync per group anyway: another thread on its path only adds a hop.
    const eligible = opts.io === nodeFileIo && !this.sync;
    this.writer =
      eligible && opts.writerThread === HelperThreads.ALWAYS ? new CommitLogWriter(opts.logger) : undefined;
    this.writerStartable = eligible && opts.writerThread === HelperThreads.AUTO;
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
   * Appends one record of `rec.size` bytes: sets its physicalOffset/commitLogOffset and storeTimestamp
   * (`now`, made monotonic in log order) and encodes it into the pending batch. Completion is awaited
   * through addWaiter.
   */
  appendRecord(rec: AppendRecord, now: number = this.opts.clock()): void {
    this.checkWritable();
    const totalSize = rec.size;
    if (totalSize > this.maxRecordSize) {
      throw new RmqError(
        ErrorCode.MessageBodyTooLarge,
        `record of ${totalSize} bytes does not fit a ${this.opts.fileSize}-byte segment`,
      );
    }
    const file = this.fileWithRoom(totalSize);
    const ts = Math.max(now, this.lastStoreTimestamp);
    this.lastStoreTimestamp = ts;
    rec.physicalOffset = this.allocOffset;
    rec.commitLogOffset = this.allocOffset;
    rec.storeTimestamp = ts;
    const pos = this.reserve(file, totalSize);
    encodeUnsealedRecord(this.writeBuffer, pos, totalSize, rec);
    const batch = this.pending as Batch;
    batch.records.push(rec);
    batch.lastStoreTimestamp = ts;
    if (batch.end - batch.start >= WRITE_EAGER_BYTES) this.issueWrites();
  }

  /** The file to append `size` bytes to, rolling (blank marker + new file) when they do not fit. */
  private fileWithRoom(size: number): MappedFile {
    let file = this.fileForAppend();
    const remaining = file.fileEnd - this.allocOffset;
    if (size + END_FILE_MIN_BLANK_LENGTH > remaining) {
      const pos = this.reserve(file, END_FILE_MIN_BLANK_LENGTH);
      encodeBlank(this.writeBuffer, pos, remaining);
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
    let b = this.pending;
    if (b === undefined) {
      b = new Batch(this.allocOffset);
      this.pending = b;
      this.newest = b;
      this.schedule();
    }
    return b;
  }

  /**
   * Reserves `size` bytes of the pending batch's write buffer for allocOffset in `file`, advances
   * allocOffset; returns the position in the buffer (`this.writeBuffer`).
   */
  private reserve(file: MappedFile, size: number): number {
    const batch = this.pendingBatch();
    if (this.writeBuffer.length - this.writeBufferPos < size) this.nextWriteBuffer(batch, size);
    const pos = this.writeBufferPos;
    this.writeBufferPos += size;
    this.addSpan(file, this.writeBuffer, pos, pos + size, true);
    return pos;
  }

  /** Gives the batch another write buffer, with room for `size`: a spare one or a new one. */
  private nextWriteBuffer(batch: Batch, size: number): void {
    this.writeBuffer =
      size <= WRITE_BUFFER_SIZE
        ? (this.spareBuffers.pop() ?? Buffer.allocUnsafeSlow(WRITE_BUFFER_SIZE))
        : Buffer.allocUnsafeSlow(size);
    this.writeBufferPos = 0;
    batch.buffers.push(this.writeBuffer);
  }

  /** The batch is written: its write buffers can take new records. */
  private recycle(buffers: readonly Buffer[]): void {
    for (const b of buffers)
      if (b.length === WRITE_BUFFER_SIZE && this.spareBuffers.length < MAX_SPARE_WRITE_BUFFERS)
        this.spareBuffers.push(b);
  }

  private addSpan(file: MappedFile, buf: Buffer, start: number, end: number, encoded: boolean): void {
    const batch = this.pendingBatch();
    let piece = batch.pieces[batch.pieces.length - 1];
    if (piece === undefined || piece.file !== file) {
      piece = { file, position: this.allocOffset, length: 0, spans: [] };
      batch.pieces.push(piece);
    }
    const last = piece.spans[piece.spans.length - 1];
    if (last !== undefined && last.buf === buf && last.end === start) last.end = end;
    else piece.spans.push({ buf, start, end, offset: this.allocOffset, encoded });
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
        this.pending === undefined &&
        this.newest === undefined;
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
    const requests = views.map((v) => viewToDispatchRequest(data, v));
    if (phyOffset !== this.allocOffset) {
      this.allocOffset = phyOffset;
      this.writtenOffsetValue = phyOffset;
      this.flushedOffsetValue = phyOffset;
    }
    for (const run of runs) {
      const file = this.fileForAppend();
      this.addSpan(file, data, run.start, run.end, false);
      this.pendingBatch().foreign = true;
      if (run.blank > 0) {
        // The blank marker stands for the rest of the segment.
        this.allocOffset = file.fileEnd;
        this.pendingBatch().end = this.allocOffset;
      }
    }
    for (const v of views)
      if (v.storeTimestamp > this.lastStoreTimestamp) this.lastStoreTimestamp = v.storeTimestamp;
    const batch = this.pending;
    if (batch !== undefined) {
      for (const r of requests) batch.records.push(r);
      batch.lastStoreTimestamp = this.lastStoreTimestamp;
      if (batch.end - batch.start >= WRITE_EAGER_BYTES) this.issueWrites();
    }
    return views;
  }

  /** Registers completion for everything appended so far. */
  addWaiter(w: AppendWaiter): void {
    if (this.failure !== undefined) {
      w.fail(new RmqError(ErrorCode.StoreNotWritable, `CommitLog failed: ${this.failure.message}`));
      return;
    }
    const batch = this.newest;
    if (batch === undefined) {
      // Everything appended so far is confirmed (or nothing was appended: an empty appendRaw).
      w.complete(AppendOutcome.OK);
      return;
    }
    if (this.sync && w.waitFlush) {
      batch.flushWaiters.push(w);
      if (batch.timer === undefined) {
        batch.timer = setTimeout(() => this.flushTimedOut(batch), this.opts.syncFlushTimeout);
        batch.timer.unref();
      }
    } else if (this.sync && this.writtenOffsetValue >= batch.end) {
      w.complete(AppendOutcome.OK); // written already, waiting for its sync: WAIT=false needs no more
    } else {
      batch.writeWaiters.push(w);
    }
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

  // ---------------------------------------------------------------- the IO pipeline

  /** Writes what is pending at the end of this tick (appends of the same tick join the batch). */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.issueWrites();
    });
  }

  /** Hands the pending batch to a write, unless MAX_WRITES_IN_FLIGHT writes are running. */
  private issueWrites(): void {
    while (
      this.pending !== undefined &&
      this.writesInFlight < MAX_WRITES_IN_FLIGHT &&
      this.failure === undefined
    ) {
      const batch = this.pending;
      this.pending = undefined;
      this.writeBuffer = EMPTY_BUFFER; // the next batch encodes into buffers of its own
      this.writeBufferPos = 0;
      this.writing.push(batch);
      this.writesInFlight++;
      // Completion is taken up in a macrotask (setImmediate), never straight in the microtask that a
      // synchronous write resolves: a caller that appends again as soon as its append completes (an
      // in-process producer, putMessages of WRITE_EAGER_BYTES and more) would otherwise chain append,
      // write, completion and append in microtasks for as long as it has data, and timers (flushes,
      // checkpoints, heartbeats) and IO would not run meanwhile.
      this.writeBatch(batch).then(
        () => setImmediate(() => this.onWritten(batch)),
        (e: unknown) => this.fail(toError(e)),
      );
    }
  }

  private async writeBatch(batch: Batch): Promise<void> {
    if (this.writerStartable && batch.end - batch.start >= WRITER_START_BATCH_BYTES) {
      this.writerStartable = false;
      this.writer = new CommitLogWriter(this.opts.logger); // used once it is up
    }
    if (this.writer?.ready === true && !batch.foreign) {
      await this.writeOffThread(this.writer, batch);
      return;
    }
    for (const piece of batch.pieces)
      for (const s of piece.spans) if (s.encoded) sealRecords(s.buf, s.start, s.end);
    // ASYNC_FLUSH batches only reach the page cache: written on this thread when the IO can (store-io.ts),
    // unless a recent one stalled (SYNC_WRITE_STALL_MS).
    const writevSync =
      this.sync || performance.now() < this.syncWritesPausedUntil
        ? undefined
        : this.opts.io.writevSync?.bind(this.opts.io);
    for (const piece of batch.pieces) {
      const file = piece.file;
      if (!file.hold()) throw new Error(`segment ${file.path} was closed under a write`);
      try {
        const bufs = piece.spans.map((s) => s.buf.subarray(s.start, s.end));
        const at = piece.position - file.fileFromOffset;
        if (writevSync !== undefined) {
          const t0 = performance.now();
          writeFullySync(writevSync, file.fd, bufs, at);
          const took = performance.now() - t0;
          if (took > SYNC_WRITE_STALL_MS) {
            this.syncWritesPausedUntil = t0 + took + SYNC_WRITE_BACKOFF_MS;
            this.opts.logger.warn(
              { tookMs: Math.round(took), backoffMs: SYNC_WRITE_BACKOFF_MS },
              "CommitLog write stalled (disk behind the page cache): writing through the thread pool for a while",
            );
          }
        } else await writeFully(this.opts.io, file.fd, bufs, at);
      } finally {
        file.release();
      }
      this.dirty.add(file);
    }
    this.recycle(batch.buffers);
  }

  /** Seals and writes the batch on the writer thread, holding its files meanwhile. */
  private async writeOffThread(writer: CommitLogWriter, batch: Batch): Promise<void> {
    const held: MappedFile[] = [];
    try {
      const work: WritePiece[] = [];
      for (const piece of batch.pieces) {
        const file = piece.file;
        if (!file.hold()) throw new Error(`segment ${file.path} was closed under a write`);
        held.push(file);
        work.push({ fd: file.fd, position: piece.position - file.fileFromOffset, spans: piece.spans });
      }
      this.recycle(await writer.write(batch.buffers, work));
    } finally {
      for (const f of held) f.release();
    }
    for (const f of held) this.dirty.add(f);
  }

  /** A batch's write completed: process every batch written so far, in log order. */
  private onWritten(b: Batch): void {
    if (this.failure !== undefined) return;
    b.written = true;
    this.writesInFlight--;
    while (this.writing.length > 0 && (this.writing[0] as Batch).written) {
      const w = this.writing.shift() as Batch;
      this.writtenOffsetValue = w.end;
      if (w.lastStoreTimestamp > 0) this.writtenStoreTimestamp = w.lastStoreTimestamp;
      if (this.sync) {
        const ws = w.writeWaiters;
        w.writeWaiters = [];
        completeAll(ws, AppendOutcome.OK);
        this.unsynced.push(w);
      } else {
        this.confirm(w);
      }
    }
    if (this.sync) this.startSync();
    this.issueWrites();
  }

  /**
   * SYNC_FLUSH: one fdatasync for every batch written so far, unless one is running (the batches then
   * wait for the next). A batch is confirmed only after a sync that started after its write completed.
   */
  private startSync(): void {
    if (this.syncing || this.unsynced.length === 0 || this.failure !== undefined) return;
    this.syncing = true;
    const batches = this.unsynced;
    this.unsynced = [];
    this.syncingBatches = batches;
    this.syncDirty().then(
      () => {
        this.syncing = false;
        this.syncingBatches = [];
        if (this.failure !== undefined) return;
        // The next sync (batches written meanwhile) is queued before the acknowledgements: the appends
        // they trigger must not hold up its fdatasync.
        this.startSync();
        for (const b of batches) this.confirm(b);
      },
      (e: unknown) => {
        this.syncing = false;
        this.fail(toError(e));
      },
    );
  }

  private confirm(batch: Batch): void {
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    try {
      this.opts.onConfirmed(batch.records, batch.end);
    } catch (e) {
      // A dispatcher bug must not lose the acknowledgement of durable data; recovery re-dispatches.
      this.opts.logger.error({ err: e, offset: batch.start }, "dispatch of confirmed records failed");
    }
    if (this.newest === batch) this.newest = undefined;
    // Indexed loops: this runs for every put, and for-of may allocate an iterator result per element.
    const acks = this.acks;
    const ws = batch.writeWaiters;
    for (let i = 0; i < ws.length; i++) acks.push(ws[i]);
    const fs = batch.flushWaiters;
    for (let i = 0; i < fs.length; i++) acks.push(fs[i]);
    const bs = batch.barriers;
    for (let i = 0; i < bs.length; i++) acks.push(bs[i]);
    batch.writeWaiters = [];
    batch.flushWaiters = [];
    batch.barriers = [];
    this.completeAcks();
  }

  /**
   * Completes confirmed waiters in arrival order, ACK_SLICE at a time: after each slice the event loop
   * gets a turn, so the appends those producers make at once are written (and, in SYNC_FLUSH, their
   * sync started) while the next slice is still being acknowledged, instead of one long burst of
   * acknowledgements and appends in front of a single write.
   */
  private completeAcks(): void {
    const acks = this.acks;
    const stop = Math.min(acks.length, this.ackHead + ACK_SLICE);
    while (this.ackHead < stop) {
      const a = acks[this.ackHead] as AppendWaiter | (() => void);
      acks[this.ackHead] = undefined;
      this.ackHead++;
      if (typeof a === "function") a();
      else a.complete(AppendOutcome.OK);
    }
    if (this.ackHead >= acks.length) {
      acks.length = 0;
      this.ackHead = 0;
    } else if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => {
        this.ackScheduled = false;
        this.issueWrites(); // what the last slice appended goes out before the next slice is acknowledged
        this.completeAcks();
      });
    }
  }

  private fail(err: Error): void {
    if (this.failure === undefined) {
      this.failure = err;
      this.opts.logger.error({ err }, "CommitLog IO failed; the store no longer accepts writes");
    }
    const e = new RmqError(ErrorCode.StoreNotWritable, `CommitLog IO failed: ${err.message}`, { cause: err });
    const batches = [...this.writing, ...this.syncingBatches, ...this.unsynced];
    if (this.pending !== undefined) batches.push(this.pending);
    this.writing = [];
    this.syncingBatches = [];
    this.unsynced = [];
    this.pending = undefined;
    this.writeBuffer = EMPTY_BUFFER;
    this.writeBufferPos = 0;
    this.newest = undefined;
    for (const b of batches) {
      if (b.timer !== undefined) clearTimeout(b.timer);
      const ws = [...b.writeWaiters, ...b.flushWaiters];
      const bs = b.barriers;
      b.writeWaiters = [];
      b.flushWaiters = [];
      b.barriers = [];
      for (const w of ws) w.fail(e);
      for (const r of bs) r();
    }
  }

  /** Resolves once every append made so far is confirmed (written, and in SYNC_FLUSH synced) or failed. */
  whenIdle(): Promise<void> {
    const b = this.newest;
    if (b === undefined || this.failure !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      b.barriers.push(resolve);
    });
  }

  /** fdatasync every file written since the last sync; flushedOffset then covers what was written before. */
  syncDirty(): Promise<void> {
    const run = async (): Promise<void> => {
      const target = this.writtenOffsetValue;
      const ts = this.writtenStoreTimestamp;
      const files = [...this.dirty];
      this.dirty.clear();
      // No await unless needed: the fdatasync is issued at once, not behind whatever microtasks queue up.
      if (this.files.dirDirty) await this.files.syncDir(this.opts.io);
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
      this.fail(toError(e));
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
      this.fail(toError(e));
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
    const readSync = this.opts.io.readSync;
    const hotFrom = this.writtenOffsetValue - this.opts.hotReadBytes;
    await Promise.all(
      groups.map(async (g) => {
        if (readSync !== undefined && g.start >= hotFrom) {
          this.readGroupSync(readSync, g, refs, out);
          return;
        }
        const buf = await this.readRange(g.file, g.start, g.end - g.start);
        if (buf === undefined) return;
        for (const i of g.idx) {
          const r = refs[i] as { offset: number; size: number };
          out[i] = this.verifiedRecord(buf, r.offset - g.start, r, g.file);
        }
      }),
    );
    return out;
  }

  /**
   * readRecords for a group of records likely in the page cache: one synchronous read of the group's
   * span into a reused scratch buffer, then each wanted record is copied into a buffer of their own (so
   * what is returned never pins the span's unwanted bytes, and the scratch can be reused at once).
   */
  private readGroupSync(
    readSync: NonNullable<FileIo["readSync"]>,
    g: { file: MappedFile; start: number; end: number; idx: number[] },
    refs: ReadonlyArray<{ offset: number; size: number }>,
    out: Array<ReadRecord | undefined>,
  ): void {
    const span = g.end - g.start;
    if (!g.file.hold()) return;
    let n = 0;
    const scratch = this.readScratchOf(span);
    try {
      n = readFullySync(readSync, g.file.fd, scratch, 0, span, g.start - g.file.fileFromOffset);
    } finally {
      g.file.release();
    }
    let total = 0;
    for (const i of g.idx) total += (refs[i] as { size: number }).size;
    const buf = Buffer.allocUnsafe(total);
    let at = 0;
    for (const i of g.idx) {
      const r = refs[i] as { offset: number; size: number };
      const pos = r.offset - g.start;
      if (pos + r.size > n) continue; // the file ended first: not served
      scratch.copy(buf, at, pos, pos + r.size);
      out[i] = this.verifiedRecord(buf, at, r, g.file);
      at += r.size;
    }
  }

  /** The record `r` read into `buf` at `pos`, if it checks out (CRC, offset, size); else logged, undefined. */
  private verifiedRecord(
    buf: Buffer,
    pos: number,
    r: { offset: number; size: number },
    file: MappedFile,
  ): ReadRecord | undefined {
    const res = parseRecord(buf, pos, pos + r.size, {
      verifyCrc: true,
      segmentRemaining: file.fileEnd - r.offset,
      expectedOffset: r.offset,
    });
    if (res.kind === "record" && res.view.size === r.size) return { buf, view: res.view };
    this.logBadRead(r.offset, res);
    return undefined;
  }

  /** The scratch buffer of synchronous reads, at least `size` bytes. */
  private readScratchOf(size: number): Buffer {
    const cur = this.readScratch;
    if (cur !== undefined && cur.length >= size) return cur;
    const next = Buffer.allocUnsafeSlow(Math.ceil(size / READ_SCRATCH_STEP) * READ_SCRATCH_STEP);
    this.readScratch = next;
    return next;
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

  /** Stops the writer thread without flushing (a store that failed to open). */
  async abandon(): Promise<void> {
    this.writerStartable = false;
    await this.writer?.close();
    await this.files.closeAll();
  }

  /** Flushes and closes every segment. */
  async close(): Promise<void> {
    this.stopFlusher();
    await this.flush().catch(() => {});
    this.writerStartable = false;
    await this.writer?.close();
    await this.files.closeAll();
  }
}

function completeAll(ws: AppendWaiter[], outcome: AppendOutcome): void {
  for (const w of ws) w.complete(outcome);
}
