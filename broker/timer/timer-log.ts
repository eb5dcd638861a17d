// `{storePathRootDir}/timerlog/` (upstream TimerLog): append-only segments of fixed 52-byte units, one
// per message the timer holds. Units of the same slot form a backward chain through prevPos; the wheel
// slot points at the newest. Unit layout (big-endian), upstream's first 40 bytes, then ours:
//
//   0  size 4 (52) | 4 prevPos 8 (-1: first of its slot) | 12 magic 4 | 16 enqueueTimeMs 8 |
//   24 delayMs 4 (slot time - enqueueTimeMs) | 28 offsetPy 8 | 36 sizePy 4 |
//   40 queueOffset 8 (ours, instead of the real-topic hash + reserved: the timer-topic ConsumeQueue
//      offset the unit was made from, so recovery knows where enqueueing stopped) |
//   48 CRC32 of bytes 0..48 4 (ours: a torn unit is never taken for a good one)
//
// magic: MAGIC_DEFAULT 1 | MAGIC_ROLL 2 (re-enqueue when due) | MAGIC_DELETE 4 (a recall's marker).
// A segment holds floor(fileSize / 52) units; the rest of it stays zero (no blank marker: positions
// of units are computed, never searched). Appends go to an in-memory tail until flush() writes and
// fdatasyncs them; reads see the tail too.

import { crc32 } from "node:zlib";
import type { Logger } from "../../common/logger.ts";
import type { MappedFile } from "../store/mapped-file.ts";
import { MappedFileQueue } from "../store/mapped-file-queue.ts";
import { readLong, writeLong } from "../store/message-codec.ts";
import { type FileIo, nodeFileIo, readFully, writeFully } from "../store/store-io.ts";

export const UNIT_SIZE = 52;
const CRC_POS = 48;
export const MAGIC_DEFAULT = 1;
export const MAGIC_ROLL = 1 << 1;
export const MAGIC_DELETE = 1 << 2;
/** Units buffered per tail chunk (about 64 KiB). */
const TAIL_CHUNK_UNITS = 1260;
/** Read-cache block size and count for chain walks (chains run backwards through nearby units). */
const READ_BLOCK_SIZE = 64 * 1024;
const MAX_READ_BLOCKS = 8;
/** Recovery scan read size. */
const SCAN_CHUNK = 1024 * 1024;

export interface TimerUnit {
  pos: number;
  prevPos: number;
  magic: number;
  enqueueTimeMs: number;
  /** The slot the unit is in (enqueueTimeMs + delayMs). */
  delayedTimeMs: number;
  offsetPy: number;
  sizePy: number;
  queueOffset: number;
}

export function isRoll(magic: number): boolean {
  return (magic & MAGIC_ROLL) !== 0;
}

export function isDelete(magic: number): boolean {
  return (magic & MAGIC_DELETE) !== 0;
}

export function encodeUnit(buf: Buffer, at: number, u: Omit<TimerUnit, "pos">): void {
  buf.writeInt32BE(UNIT_SIZE, at);
  writeLong(buf, at + 4, u.prevPos);
  buf.writeInt32BE(u.magic, at + 12);
  writeLong(buf, at + 16, u.enqueueTimeMs);
  buf.writeInt32BE(u.delayedTimeMs - u.enqueueTimeMs, at + 24);
  writeLong(buf, at + 28, u.offsetPy);
  buf.writeInt32BE(u.sizePy, at + 36);
  writeLong(buf, at + 40, u.queueOffset);
  buf.writeUInt32BE(crc32(buf.subarray(at, at + CRC_POS)), at + CRC_POS);
}

/** The unit at `buf[at]` if it is a whole, intact one. */
export function decodeUnit(buf: Buffer, at: number, pos: number): TimerUnit | undefined {
  if (at + UNIT_SIZE > buf.length || buf.readInt32BE(at) !== UNIT_SIZE) return undefined;
  if (buf.readUInt32BE(at + CRC_POS) !== crc32(buf.subarray(at, at + CRC_POS))) return undefined;
  const magic = buf.readInt32BE(at + 12);
  if ((magic | 0xf) !== 0xf || (magic & MAGIC_DEFAULT) === 0) return undefined;
  const enqueueTimeMs = readLong(buf, at + 16);
  return {
    pos,
    prevPos: readLong(buf, at + 4),
    magic,
    enqueueTimeMs,
    delayedTimeMs: enqueueTimeMs + buf.readInt32BE(at + 24),
    offsetPy: readLong(buf, at + 28),
    sizePy: buf.readInt32BE(at + 36),
    queueOffset: readLong(buf, at + 40),
  };
}

interface TailChunk {
  start: number;
  buf: Buffer;
  units: number;
}

export class TimerLog {
  readonly fileSize: number;
  private readonly unitsPerFile: number;
  private readonly files: MappedFileQueue;
  private readonly io: FileIo;
  private readonly logger: Logger;
  /** Everything before this is in the files. */
  private writtenPos: number;
  private nextPos: number;
  private tail: TailChunk[] = [];
  /** Chunks being written by flush(); still read from memory until written. */
  private flushing: TailChunk[] = [];
  private readonly readBlocks = new Map<number, { buf: Buffer; validEnd: number }>();

  private constructor(files: MappedFileQueue, io: FileIo, logger: Logger) {
    this.files = files;
    this.fileSize = files.fileSize;
    this.unitsPerFile = Math.floor(files.fileSize / UNIT_SIZE);
    this.io = io;
    this.logger = logger;
    this.writtenPos = 0;
    this.nextPos = 0;
  }

  static async open(
    dir: string,
    fileSize: number,
    logger: Logger,
    io: FileIo = nodeFileIo,
  ): Promise<TimerLog> {
    const { queue, ignored } = await MappedFileQueue.load(dir, fileSize);
    if (ignored.length > 0)
      logger.warn({ dir, ignored }, "timer log directory holds files that are not segments");
    return new TimerLog(queue, io, logger);
  }

  /** Position the next unit gets. */
  get appendPos(): number {
    return this.nextPos;
  }

  /** Start of the first segment (units before it were removed). */
  get minPos(): number {
    return this.files.minOffset;
  }

  private fileStartOf(pos: number): number {
    return Math.floor(pos / this.fileSize) * this.fileSize;
  }

  /** The position after the unit at `pos`: the next slot in its segment, or the next segment's start. */
  private after(pos: number): number {
    const start = this.fileStartOf(pos);
    const k = (pos - start) / UNIT_SIZE + 1;
    return k < this.unitsPerFile ? pos + UNIT_SIZE : start + this.fileSize;
  }

  /**
   * Walks the units from `fromPos` while they are intact, handing them to `visit` a read chunk at a
   * time; cuts the log after the last intact one (a torn or never-written unit ends it) and makes
   * appends continue there. Returns the new end.
   */
  async recover(fromPos: number, visit: (units: TimerUnit[]) => Promise<void>): Promise<number> {
    // Segments before the position may have been removed since it was recorded (retention).
    let pos = this.files.first === undefined ? fromPos : Math.max(fromPos, this.files.minOffset);
    const chunk = Buffer.alloc(SCAN_CHUNK - (SCAN_CHUNK % UNIT_SIZE));
    scan: for (;;) {
      const file = this.files.findFile(pos);
      if (file === undefined) break;
      const fileUnitsEnd = file.fileFromOffset + this.unitsPerFile * UNIT_SIZE;
      while (pos < fileUnitsEnd) {
        const len = Math.min(chunk.length, fileUnitsEnd - pos);
        const n = await this.readFile(file, chunk, len, pos);
        const units: TimerUnit[] = [];
        let torn = n < len;
        for (let at = 0; at + UNIT_SIZE <= n; at += UNIT_SIZE) {
          const u = decodeUnit(chunk, at, pos);
          if (u === undefined) {
            torn = true;
            break;
          }
          units.push(u);
          pos += UNIT_SIZE;
        }
        if (units.length > 0) await visit(units);
        if (torn) break scan;
      }
      pos = file.fileEnd;
    }
    const deleted = await this.files.truncateFrom(pos);
    if (deleted.length > 0)
      this.logger.warn({ deleted }, "timer log segments after the last intact unit removed");
    this.readBlocks.clear();
    this.writtenPos = pos;
    this.nextPos = pos;
    return pos;
  }

  private async readFile(file: MappedFile, buf: Buffer, length: number, pos: number): Promise<number> {
    if (!file.hold()) return 0;
    try {
      return await readFully(this.io, file.fd, buf, 0, length, pos - file.fileFromOffset);
    } finally {
      file.release();
    }
  }

  /** Appends a unit to the tail; returns its position. */
  append(u: Omit<TimerUnit, "pos">): number {
    const pos = this.nextPos;
    let last = this.tail[this.tail.length - 1];
    if (
      last === undefined ||
      last.units === TAIL_CHUNK_UNITS ||
      last.start + last.units * UNIT_SIZE !== pos // crossed into the next segment
    ) {
      last = { start: pos, buf: Buffer.alloc(TAIL_CHUNK_UNITS * UNIT_SIZE), units: 0 };
      this.tail.push(last);
    }
    encodeUnit(last.buf, last.units * UNIT_SIZE, u);
    last.units++;
    this.nextPos = this.after(pos);
    return pos;
  }

  /** Bytes appended and not written yet. */
  get unflushedBytes(): number {
    let n = 0;
    for (const c of this.tail) n += c.units * UNIT_SIZE;
    return n;
  }

  /** The unit at `pos`, undefined when it is gone (retention) or not intact. */
  async read(pos: number): Promise<TimerUnit | undefined> {
    if (pos < 0) return undefined;
    if (pos >= this.writtenPos) {
      for (const chunks of [this.flushing, this.tail]) {
        for (const c of chunks) {
          if (pos >= c.start && pos < c.start + c.units * UNIT_SIZE)
            return decodeUnit(c.buf, pos - c.start, pos);
        }
      }
      if (pos >= this.writtenPos) return undefined;
    }
    const file = this.files.findFile(pos);
    if (file === undefined) return undefined;
    const blockStart = Math.max(file.fileFromOffset, pos + UNIT_SIZE - READ_BLOCK_SIZE);
    let block = this.readBlocks.get(file.fileFromOffset);
    // One cached block per segment, re-read when the unit is outside it.
    if (block === undefined || pos < block.validEnd - block.buf.length || pos + UNIT_SIZE > block.validEnd) {
      const len = Math.min(READ_BLOCK_SIZE, pos + UNIT_SIZE - blockStart);
      const buf = Buffer.alloc(len);
      const n = await this.readFile(file, buf, len, blockStart);
      if (n < len) return undefined;
      block = { buf, validEnd: blockStart + len };
      this.readBlocks.delete(file.fileFromOffset);
      this.readBlocks.set(file.fileFromOffset, block);
      while (this.readBlocks.size > MAX_READ_BLOCKS) {
        const oldest = this.readBlocks.keys().next().value as number;
        this.readBlocks.delete(oldest);
      }
    }
    return decodeUnit(block.buf, pos - (block.validEnd - block.buf.length), pos);
  }

  /** Writes the tail to the segments (creating them as needed) and fdatasyncs; returns the durable end. */
  async flush(): Promise<number> {
    if (this.tail.length === 0) return this.writtenPos;
    this.flushing = this.tail;
    this.tail = [];
    const end = this.nextPos;
    const touched = new Set<MappedFile>();
    try {
      for (const c of this.flushing) {
        const file = await this.ensureFile(c.start);
        if (!file.hold()) throw new Error(`timer log segment ${file.path} closed during flush`);
        try {
          await writeFully(
            this.io,
            file.fd,
            [c.buf.subarray(0, c.units * UNIT_SIZE)],
            c.start - file.fileFromOffset,
          );
        } finally {
          file.release();
        }
        touched.add(file);
      }
      for (const f of touched) {
        if (!f.hold()) continue;
        try {
          await this.io.fdatasync(f.fd);
        } finally {
          f.release();
        }
      }
      await this.files.syncDir(this.io);
    } catch (e) {
      // Keep the chunks for the next attempt.
      this.tail = [...this.flushing, ...this.tail];
      this.flushing = [];
      throw e;
    }
    this.flushing = [];
    this.writtenPos = end;
    return end;
  }

  private async ensureFile(pos: number): Promise<MappedFile> {
    const want = this.fileStartOf(pos);
    for (;;) {
      const f = this.files.findFile(pos);
      if (f !== undefined) return f;
      const last = this.files.last;
      await this.files.createFile(last === undefined || last.fileEnd > want ? want : last.fileEnd);
    }
  }

  /**
   * Removes whole segments from the front whose last unit refers to a CommitLog offset below
   * `minPhyOffset` (upstream deleteExpiredFileByOffsetForTimerLog): their messages are gone. The
   * segment being appended to is always kept. Returns the removed paths.
   */
  async deleteExpired(minPhyOffset: number): Promise<string[]> {
    const removed: string[] = [];
    for (;;) {
      const first = this.files.first;
      if (first === undefined || first === this.files.last || first.fileEnd > this.writtenPos) break;
      const lastUnitPos = first.fileFromOffset + (this.unitsPerFile - 1) * UNIT_SIZE;
      const buf = Buffer.alloc(UNIT_SIZE);
      const n = await this.readFile(first, buf, UNIT_SIZE, lastUnitPos);
      const u = n === UNIT_SIZE ? decodeUnit(buf, 0, lastUnitPos) : undefined;
      if (u === undefined || u.offsetPy >= minPhyOffset) break;
      this.readBlocks.delete(first.fileFromOffset);
      removed.push(first.path);
      await this.files.removeFile(first);
    }
    if (removed.length > 0) await this.files.syncDir(this.io);
    return removed;
  }

  async close(): Promise<void> {
    await this.files.closeAll();
  }
}
