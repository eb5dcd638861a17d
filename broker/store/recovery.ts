// Recovery at open: find the valid end of the CommitLog, cut everything after it, and bring the
// ConsumeQueues and the Index back in line with it.
//
// 1. The scan starts at the segment holding the lowest point the checkpoint (and the Index) vouch for:
//    the synced CommitLog end, the CommitLog offset below which all ConsumeQueue units are synced, and
//    the Index's durable offset. After a clean shutdown those are the end of the log, so only the last
//    segment is scanned (as upstream's "last files"); without a valid checkpoint, everything is.
// 2. Each record is verified (CRC trailer, PHYSICALOFFSET, every length field); the scan stops at the
//    first bad or torn record or at the first zero header.
// 3. Records at/after the ConsumeQueues' durable point are re-dispatched (a queue ignores units it
//    already has), and to the Index from its own durable point, through the same dispatchBatch the live
//    path uses (the requests are built from the bytes here, from the append's fields there).
// 4. The log is cut at the stop point: the rest of that segment is zeroed, later segments deleted. Then
//    ConsumeQueue units and Index entries for records at/after the cut are removed.
// Nothing in the files is trusted: garbage sizes, wrong magic and short files end the scan, never the
// process, and a record that fails verification is never dispatched.
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import type { CommitLog } from "./commitlog.ts";
import type { CommitLogDispatcher } from "./commitlog-dispatcher.ts";
import type { ConsumeQueueStore } from "./consume-queue-store.ts";
import type { DispatchRequest } from "./dispatch.ts";
import type { MappedFile } from "./mapped-file.ts";
import { parseRecord, viewToDispatchRequest } from "./message-codec.ts";
import type { CheckpointData, CheckpointState } from "./store-checkpoint.ts";
import { type FileIo, readFully } from "./store-io.ts";

/** Bytes read per pread while scanning. */
const RECOVERY_READ_CHUNK = 4 * 1024 * 1024;
/** Records handed to the dispatcher per call while re-dispatching. */
const RECOVERY_DISPATCH_BATCH = 1024;
/** Garbage after a cut is measured up to the first all-zero block of this size. */
const GARBAGE_PROBE_BLOCK = 64 * 1024;

export interface TruncationReport {
  /** CommitLog offset of the cut: the first byte no longer part of the log. */
  offset: number;
  /** Non-zero bytes discarded at and after the cut (in the cut segment and deleted later segments). */
  bytes: number;
  reason: string;
  deletedFiles: string[];
}

export interface RecoveryReport {
  /** The previous run ended with shutdown() (no abort file was found). */
  cleanShutdown: boolean;
  checkpoint: CheckpointState;
  /** Where the verifying scan started (a segment start). */
  scanFromOffset: number;
  /** Records from here were re-dispatched to the ConsumeQueues. */
  dispatchFromOffset: number;
  /** Records from here were re-dispatched to the Index (Infinity without an Index). */
  indexFromOffset: number;
  recordsScanned: number;
  recordsDispatched: number;
  minPhyOffset: number;
  /** End of the valid log after recovery. */
  maxPhyOffset: number;
  truncated: TruncationReport | undefined;
  consumeQueueUnitsRemoved: number;
  /** Names in the CommitLog directory that are not segment files (left alone). */
  ignoredFiles: string[];
  durationMs: number;
}

/** The Index as recovery sees it. */
export interface RecoverableIndex {
  readonly durableMaxPhyOffset: number;
  truncate(phyOffset: number): Promise<void>;
}

export interface RecoveryContext {
  commitLog: CommitLog;
  consumeQueues: ConsumeQueueStore;
  dispatcher: CommitLogDispatcher;
  index: RecoverableIndex | undefined;
  checkpoint: CheckpointData;
  checkpointState: CheckpointState;
  cleanShutdown: boolean;
  checkCRCOnRecover: boolean;
  ignoredFiles: string[];
  io: FileIo;
  logger: Logger;
  clock: () => number;
}

export async function recoverStore(ctx: RecoveryContext): Promise<RecoveryReport> {
  const started = ctx.clock();
  const log = ctx.commitLog;
  const files = log.files;
  const fileSize = log.fileSize;
  const deletedFiles: string[] = [];
  let garbageBytes = 0;
  let cutReason: string | undefined;

  for (const f of files.files) {
    if (f.fileFromOffset % fileSize !== 0) {
      throw new RmqError(
        ErrorCode.IllegalConfig,
        `CommitLog segment ${f.path} does not start at a multiple of mappedFileSizeCommitLog=${fileSize}; the segment size of an existing store cannot change`,
      );
    }
  }
  // Segments must follow one another; whatever lies after a gap is unreachable and goes.
  for (let i = 1; i < files.files.length; i++) {
    const prev = files.files[i - 1] as MappedFile;
    const cur = files.files[i] as MappedFile;
    if (cur.fileFromOffset !== prev.fileEnd) {
      cutReason = `segment missing after ${prev.path}`;
      while (files.files.length > i) {
        const last = files.last as MappedFile;
        garbageBytes += await dataExtent(ctx.io, last, 0);
        deletedFiles.push(last.path);
        await files.removeFile(last);
      }
      break;
    }
  }

  const ck = ctx.checkpointState === "valid" ? ctx.checkpoint : undefined;
  const indexFrom = ctx.index === undefined ? Number.POSITIVE_INFINITY : ctx.index.durableMaxPhyOffset;
  const first = files.first;
  const last = files.last;
  let scanFrom = first?.fileFromOffset ?? 0;
  let dispatchFrom = scanFrom;
  if (ck !== undefined && first !== undefined && last !== undefined) {
    dispatchFrom = ck.dispatchedPhyOffset;
    const vouched = Math.min(ck.commitLogFlushedOffset, ck.dispatchedPhyOffset, indexFrom);
    const clamped = Math.min(Math.max(vouched, first.fileFromOffset), last.fileFromOffset);
    scanFrom = (files.findFile(clamped) as MappedFile).fileFromOffset;
  }
  if (
    ck !== undefined &&
    first !== undefined &&
    ctx.consumeQueues.isEmpty &&
    ck.dispatchedPhyOffset > first.fileFromOffset
  ) {
    // The ConsumeQueue directory is gone although the checkpoint says units were written: rebuild all.
    scanFrom = first.fileFromOffset;
    dispatchFrom = scanFrom;
    ctx.logger.warn(
      { dispatchedPhyOffset: ck.dispatchedPhyOffset },
      "no ConsumeQueue found: rebuilding them from the whole CommitLog",
    );
  }
  if (dispatchFrom < scanFrom) dispatchFrom = scanFrom;

  let end = scanFrom;
  let scanned = 0;
  let dispatched = 0;
  let lastStoreTimestamp = ck?.physicMsgTimestamp ?? 0;
  const scannedFiles: MappedFile[] = [];
  let toDispatch: DispatchRequest[] = [];
  let toDispatchEnd = 0;
  const dispatchCollected = (): void => {
    if (toDispatch.length === 0) return;
    ctx.dispatcher.dispatchBatch(toDispatch, toDispatchEnd, indexFrom);
    toDispatch = [];
  };
  let fileIdx = files.files.findIndex((f) => f.fileFromOffset === scanFrom);
  scan: while (fileIdx >= 0 && fileIdx < files.files.length) {
    const file = files.files[fileIdx] as MappedFile;
    scannedFiles.push(file);
    let g = file.fileFromOffset;
    end = g;
    let bufStart = g;
    let buf = await readAt(ctx.io, file, g, Math.min(RECOVERY_READ_CHUNK, file.fileEnd - g));
    while (true) {
      const res = parseRecord(buf, g - bufStart, buf.length, {
        verifyCrc: ctx.checkCRCOnRecover,
        segmentRemaining: file.fileEnd - g,
        expectedOffset: g,
      });
      if (res.kind === "record") {
        scanned++;
        const toCq = g >= dispatchFrom;
        const toIndex = g >= indexFrom;
        if (toCq || toIndex) {
          // Records the ConsumeQueues already hold are ignored by them; the Index only sees new ones.
          toDispatch.push(viewToDispatchRequest(buf, res.view));
          toDispatchEnd = g + res.view.size;
          if (toDispatch.length >= RECOVERY_DISPATCH_BATCH) dispatchCollected();
          dispatched++;
        }
        lastStoreTimestamp = res.view.storeTimestamp;
        g += res.view.size;
        end = g;
        continue;
      }
      if (res.kind === "short") {
        const want = Math.min(Math.max(RECOVERY_READ_CHUNK, res.need), file.fileEnd - g);
        buf = await readAt(ctx.io, file, g, want);
        bufStart = g;
        if (buf.length < res.need) {
          cutReason = `file ends inside the record at ${g}`;
          break scan;
        }
        continue;
      }
      if (res.kind === "blank") {
        end = file.fileEnd;
        fileIdx++;
        continue scan;
      }
      if (res.kind === "corrupt") cutReason = res.reason;
      break scan;
    }
  }

  dispatchCollected();

  // Cut at `end`: measure what goes, zero the rest of its segment, delete later segments.
  const cutFile = files.findFile(end);
  if (cutFile !== undefined) garbageBytes += await dataExtent(ctx.io, cutFile, end - cutFile.fileFromOffset);
  for (const f of files.files) {
    if (f.fileFromOffset > end) {
      const n = await dataExtent(ctx.io, f, 0);
      garbageBytes += n;
      if (n > 0 && cutReason === undefined) cutReason = "data after the end of the log";
    }
  }
  deletedFiles.push(...(await files.truncateFrom(end)));
  if (deletedFiles.length > 0 && cutReason === undefined)
    cutReason = "empty segments after the end of the log";
  if (garbageBytes > 0 && cutReason === undefined) cutReason = "data after the end of the log";
  // Everything kept is now synced, so flushedOffset can start at the end.
  for (const f of scannedFiles) {
    if (!f.isAlive || !f.hold()) continue;
    try {
      await ctx.io.fdatasync(f.fd);
    } finally {
      f.release();
    }
  }
  await files.syncDir(ctx.io);
  log.setRecoveredEnd(end, lastStoreTimestamp);
  ctx.dispatcher.dispatchedOffset = end;

  const unitsRemoved = await ctx.consumeQueues.truncateDirty(end);
  if (ctx.index !== undefined) await ctx.index.truncate(end);

  const truncated: TruncationReport | undefined =
    cutReason === undefined
      ? undefined
      : { offset: end, bytes: garbageBytes, reason: cutReason, deletedFiles };
  const report: RecoveryReport = {
    cleanShutdown: ctx.cleanShutdown,
    checkpoint: ctx.checkpointState,
    scanFromOffset: scanFrom,
    dispatchFromOffset: dispatchFrom,
    indexFromOffset: indexFrom,
    recordsScanned: scanned,
    recordsDispatched: dispatched,
    minPhyOffset: log.minOffset,
    maxPhyOffset: end,
    truncated,
    consumeQueueUnitsRemoved: unitsRemoved,
    ignoredFiles: ctx.ignoredFiles,
    durationMs: ctx.clock() - started,
  };
  if (truncated !== undefined)
    ctx.logger.warn({ recovery: report }, `CommitLog truncated at ${end}: ${truncated.reason}`);
  else ctx.logger.info({ recovery: report }, "store recovered");
  return report;
}

async function readAt(io: FileIo, file: MappedFile, offset: number, length: number): Promise<Buffer> {
  if (!file.hold()) return Buffer.alloc(0);
  try {
    const buf = Buffer.allocUnsafe(length);
    const n = await readFully(io, file.fd, buf, 0, length, offset - file.fileFromOffset);
    return n === length ? buf : buf.subarray(0, n);
  } finally {
    file.release();
  }
}

/** Bytes from `from` (relative) up to the end of the last non-zero byte before an all-zero block. */
async function dataExtent(io: FileIo, file: MappedFile, from: number): Promise<number> {
  let lastNonZero = -1;
  for (let pos = from; pos < file.fileSize; pos += GARBAGE_PROBE_BLOCK) {
    const len = Math.min(GARBAGE_PROBE_BLOCK, file.fileSize - pos);
    const buf = await readAt(io, file, file.fileFromOffset + pos, len);
    let found = -1;
    for (let i = buf.length - 1; i >= 0; i--) {
      if (buf[i] !== 0) {
        found = i;
        break;
      }
    }
    if (found < 0) break;
    lastNonZero = pos + found;
  }
  return lastNonZero < 0 ? 0 : lastNonZero + 1 - from;
}
