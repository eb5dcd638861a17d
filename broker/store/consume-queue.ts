// One ConsumeQueue: the 20-byte units (commitLogOffset int64, size int32, tagsCode int64) of one
// topic-queue, unit n at byte n*20 of `{root}/consumequeue/{topic}/{queueId}/{20-digit start byte offset}`.
//
// Units arrive from the dispatcher (synchronously, in CommitLog order) into an in-memory tail; the
// flush service writes the tail out and syncs it later. The tail keeps recent units after they are
// written, so reads near the end never touch the disk.
import * as fs from "node:fs";
import { dirname } from "node:path";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { MappedFile } from "./mapped-file.ts";
import { MappedFileQueue } from "./mapped-file-queue.ts";
import { readLong, writeInt, writeLong } from "./message-codec.ts";
import { type FileIo, readFully, readFullySync, writeFully } from "./store-io.ts";

export const CQ_STORE_UNIT_SIZE = 20;
/** Size field of a filler unit (upstream writes Integer.MAX_VALUE with offset 0 for slots with no message). */
export const CQ_BLANK_UNIT_SIZE = 0x7fffffff;
/** Units kept in memory once written (about 40 KiB per queue). */
const CQ_TAIL_KEEP_UNITS = 2048;
/** The tail is trimmed back to CQ_TAIL_KEEP_UNITS when it grows beyond this. */
const CQ_TAIL_MAX_UNITS = 8192;
/** Units read per pread while scanning files. */
const CQ_SCAN_CHUNK_UNITS = 16384;

export interface CqUnit {
  offset: number;
  size: number;
  tagsCode: number;
}

export function unitOffset(buf: Buffer, i: number): number {
  return readLong(buf, i * CQ_STORE_UNIT_SIZE);
}
export function unitSize(buf: Buffer, i: number): number {
  return buf.readInt32BE(i * CQ_STORE_UNIT_SIZE + 8);
}
export function unitTagsCode(buf: Buffer, i: number): number {
  return readLong(buf, i * CQ_STORE_UNIT_SIZE + 12);
}
export function isBlankUnit(buf: Buffer, i: number): boolean {
  return unitSize(buf, i) === CQ_BLANK_UNIT_SIZE && unitOffset(buf, i) === 0;
}

export class ConsumeQueue {
  readonly topic: string;
  readonly queueId: number;
  readonly files: MappedFileQueue;
  private readonly unitsPerFile: number;
  /** First readable logical offset. */
  minLogicOffset = 0;
  /** Next logical offset (one past the last unit). */
  maxLogicOffset = 0;
  /** End (offset + size) of the record of the last unit. */
  maxPhysicOffset = 0;
  /** Units below this are written to the files. */
  private writtenLogicOffset = 0;
  /** Units [tailBase, maxLogicOffset) are held in `tail`. */
  private tail: Buffer = Buffer.allocUnsafe(0);
  private tailBase = 0;
  /** The queue jumped to a later start with nothing readable before it: old files go at the next write. */
  private resetPending = false;
  /** Bytes written since the last sync. */
  dirtyBytes = 0;
  private readonly dirtyFiles = new Set<MappedFile>();

  constructor(topic: string, queueId: number, files: MappedFileQueue) {
    this.topic = topic;
    this.queueId = queueId;
    this.files = files;
    this.unitsPerFile = files.fileSize / CQ_STORE_UNIT_SIZE;
  }

  /**
   * Opens a queue's files and finds its range: the last file with a valid first unit is scanned up to
   * the first invalid unit (zero, negative, or an offset going backwards). Bytes after the end are
   * zeroed and later files deleted, so stale units can never reappear behind new ones.
   */
  static async load(
    dir: string,
    topic: string,
    queueId: number,
    fileSize: number,
    io: FileIo,
  ): Promise<ConsumeQueue> {
    const { queue } = await MappedFileQueue.load(dir, fileSize);
    const cq = new ConsumeQueue(topic, queueId, queue);
    await cq.recoverRange(io);
    return cq;
  }

  private async recoverRange(io: FileIo): Promise<void> {
    const files = this.files;
    // Drop trailing files that hold no valid unit at all.
    let endUnit = -1;
    while (files.last !== undefined) {
      const last = files.last;
      const end = await this.scanFileEnd(io, last);
      if (end > last.fileFromOffset / CQ_STORE_UNIT_SIZE || files.files.length === 1) {
        endUnit = end;
        break;
      }
      await files.removeFile(last);
    }
    const first = files.first;
    if (first === undefined || endUnit < 0) {
      this.setEmptyAt(0);
      return;
    }
    const last = files.last as MappedFile;
    await last.zeroFrom(endUnit * CQ_STORE_UNIT_SIZE - last.fileFromOffset);
    this.maxLogicOffset = endUnit;
    this.writtenLogicOffset = endUnit;
    this.tailBase = endUnit;
    this.tail = Buffer.allocUnsafe(0);
    // maxPhysicOffset from the last real unit.
    this.maxPhysicOffset = 0;
    const lastReal = await this.findLastRealUnit(io, endUnit);
    if (lastReal !== undefined) this.maxPhysicOffset = lastReal.offset + lastReal.size;
    // min: first real unit of the first file.
    this.minLogicOffset = await this.findFirstRealUnit(io, first.fileFromOffset / CQ_STORE_UNIT_SIZE, 0);
  }

  private setEmptyAt(offset: number): void {
    this.minLogicOffset = offset;
    this.maxLogicOffset = offset;
    this.writtenLogicOffset = offset;
    this.tailBase = offset;
    this.maxPhysicOffset = 0;
    this.tail = Buffer.allocUnsafe(0);
  }

  /** Logical offset one past the last valid unit of `file` (the file's first unit when none is valid). */
  private async scanFileEnd(io: FileIo, file: MappedFile): Promise<number> {
    const base = file.fileFromOffset / CQ_STORE_UNIT_SIZE;
    let prevEnd = -1;
    for (let i = 0; i < this.unitsPerFile; i += CQ_SCAN_CHUNK_UNITS) {
      const n = Math.min(CQ_SCAN_CHUNK_UNITS, this.unitsPerFile - i);
      const buf = await this.readFileUnits(io, file, base + i, n);
      if (buf === undefined) return base + i;
      const got = Math.floor(buf.length / CQ_STORE_UNIT_SIZE);
      for (let j = 0; j < got; j++) {
        if (isBlankUnit(buf, j)) continue;
        const off = unitOffset(buf, j);
        const size = unitSize(buf, j);
        if (size <= 0 || size === CQ_BLANK_UNIT_SIZE || off < 0 || off < prevEnd) return base + i + j;
        prevEnd = off + size;
      }
      if (got < n) return base + i + got;
    }
    return base + this.unitsPerFile;
  }

  private async findLastRealUnit(io: FileIo, endUnit: number): Promise<CqUnit | undefined> {
    let hi = endUnit;
    const lo = (this.files.first?.fileFromOffset ?? 0) / CQ_STORE_UNIT_SIZE;
    while (hi > lo) {
      const file = this.files.findFile((hi - 1) * CQ_STORE_UNIT_SIZE);
      if (file === undefined) return undefined;
      const from = Math.max(lo, hi - CQ_SCAN_CHUNK_UNITS, file.fileFromOffset / CQ_STORE_UNIT_SIZE);
      const buf = await this.readFileUnits(io, file, from, hi - from);
      if (buf === undefined) return undefined;
      for (let j = Math.floor(buf.length / CQ_STORE_UNIT_SIZE) - 1; j >= 0; j--) {
        if (!isBlankUnit(buf, j))
          return { offset: unitOffset(buf, j), size: unitSize(buf, j), tagsCode: unitTagsCode(buf, j) };
      }
      hi = from;
    }
    return undefined;
  }

  /** First unit at or after `from` that is real and whose record starts at or after `minPhy`. */
  private async findFirstRealUnit(io: FileIo, from: number, minPhy: number): Promise<number> {
    let i = from;
    while (i < this.maxLogicOffset) {
      const buf = await this.getUnits(i, CQ_SCAN_CHUNK_UNITS, io);
      if (buf === undefined || buf.length === 0) return this.maxLogicOffset;
      const got = buf.length / CQ_STORE_UNIT_SIZE;
      for (let j = 0; j < got; j++) {
        if (!isBlankUnit(buf, j) && unitOffset(buf, j) >= minPhy) return i + j;
      }
      i += got;
    }
    return this.maxLogicOffset;
  }

  private async readFileUnits(
    io: FileIo,
    file: MappedFile,
    fromUnit: number,
    count: number,
  ): Promise<Buffer | undefined> {
    if (!file.hold()) return undefined;
    try {
      const buf = Buffer.allocUnsafe(count * CQ_STORE_UNIT_SIZE);
      const position = fromUnit * CQ_STORE_UNIT_SIZE - file.fileFromOffset;
      // ConsumeQueue files are small and read over and over: a synchronous read (when the IO has one)
      // costs a few µs where a thread-pool read and its callback cost tens.
      const n =
        io.readSync !== undefined
          ? readFullySync(io.readSync, file.fd, buf, 0, buf.length, position)
          : await readFully(io, file.fd, buf, 0, buf.length, position);
      return n === buf.length ? buf : buf.subarray(0, n - (n % CQ_STORE_UNIT_SIZE));
    } finally {
      file.release();
    }
  }

  // ---------------------------------------------------------------- dispatch (synchronous)

  /**
   * Adds the unit for `queueOffset`. Units already present (a re-dispatch during recovery) are ignored;
   * returns whether the unit was added.
   */
  putUnit(offset: number, size: number, tagsCode: number, queueOffset: number): boolean {
    if (queueOffset < this.maxLogicOffset || offset + size <= this.maxPhysicOffset) return false;
    if (queueOffset > this.maxLogicOffset) {
      if (this.minLogicOffset === this.maxLogicOffset) {
        // Nothing readable yet: the queue simply starts later (a replica that began mid-log).
        this.resetPending = this.files.files.length > 0 || this.writtenLogicOffset !== this.maxLogicOffset;
        this.setEmptyAt(queueOffset);
      } else {
        // A hole in the queue offsets: fill it with blank units so later units sit at the right place.
        for (let q = this.maxLogicOffset; q < queueOffset; q++) this.appendUnit(0, CQ_BLANK_UNIT_SIZE, 0);
      }
    }
    this.appendUnit(offset, size, tagsCode);
    this.maxPhysicOffset = offset + size;
    return true;
  }

  private appendUnit(offset: number, size: number, tagsCode: number): void {
    const used = (this.maxLogicOffset - this.tailBase) * CQ_STORE_UNIT_SIZE;
    if (used + CQ_STORE_UNIT_SIZE > this.tail.length) {
      // Grow into a new buffer: views handed out earlier keep seeing the old, unchanged bytes.
      const next = Buffer.allocUnsafe(Math.max(64 * CQ_STORE_UNIT_SIZE, this.tail.length * 2));
      this.tail.copy(next, 0, 0, used);
      this.tail = next;
    }
    const tail = this.tail;
    writeLong(tail, used, offset);
    writeInt(tail, used + 8, size);
    writeLong(tail, used + 12, tagsCode);
    this.maxLogicOffset++;
  }

  // ---------------------------------------------------------------- reads

  /**
   * Units from logical offset `start`: up to `maxUnits`, possibly fewer (a read stops at a file
   * boundary or at the in-memory tail). Empty when `start` is at or past the end; undefined below the
   * min offset or when the file holding `start` is gone.
   */
  async getUnits(start: number, maxUnits: number, io: FileIo): Promise<Buffer | undefined> {
    if (start < this.minLogicOffset) return undefined;
    if (start >= this.maxLogicOffset || maxUnits <= 0) return Buffer.alloc(0);
    const end = Math.min(this.maxLogicOffset, start + maxUnits);
    if (start >= this.tailBase) {
      return this.tail.subarray(
        (start - this.tailBase) * CQ_STORE_UNIT_SIZE,
        (end - this.tailBase) * CQ_STORE_UNIT_SIZE,
      );
    }
    const file = this.files.findFile(start * CQ_STORE_UNIT_SIZE);
    if (file === undefined) return undefined;
    const fileEndUnit = file.fileEnd / CQ_STORE_UNIT_SIZE;
    const stop = Math.min(end, this.tailBase, fileEndUnit);
    return this.readFileUnits(io, file, start, stop - start);
  }

  // ---------------------------------------------------------------- flush

  /** Writes the units not yet in the files; returns the bytes written. */
  async writeOut(io: FileIo, ensureDir: (dir: string) => Promise<void>): Promise<number> {
    if (this.resetPending) {
      this.resetPending = false;
      while (this.files.last !== undefined) await this.files.removeFile(this.files.last);
    }
    const end = this.maxLogicOffset;
    let pos = this.writtenLogicOffset;
    let written = 0;
    while (pos < end) {
      const fileStartUnit = Math.floor(pos / this.unitsPerFile) * this.unitsPerFile;
      let file = this.files.findFile(pos * CQ_STORE_UNIT_SIZE);
      if (file === undefined) {
        await ensureDir(this.files.dir);
        const fresh = this.files.files.length === 0;
        file = await this.files.createFile(fileStartUnit * CQ_STORE_UNIT_SIZE);
        if (fresh && pos > fileStartUnit) await this.writeBlankUnits(io, file, fileStartUnit, pos);
      }
      const stop = Math.min(end, fileStartUnit + this.unitsPerFile);
      const bytes = this.tail.subarray(
        (pos - this.tailBase) * CQ_STORE_UNIT_SIZE,
        (stop - this.tailBase) * CQ_STORE_UNIT_SIZE,
      );
      if (!file.hold())
        throw new RmqError(ErrorCode.Internal, `ConsumeQueue file ${file.path} closed under a write`);
      try {
        await writeFully(io, file.fd, [bytes], pos * CQ_STORE_UNIT_SIZE - file.fileFromOffset);
      } finally {
        file.release();
      }
      this.dirtyFiles.add(file);
      written += bytes.length;
      pos = stop;
    }
    this.writtenLogicOffset = end;
    this.dirtyBytes += written;
    this.trimTail();
    return written;
  }

  private async writeBlankUnits(io: FileIo, file: MappedFile, from: number, to: number): Promise<void> {
    const buf = Buffer.alloc((to - from) * CQ_STORE_UNIT_SIZE);
    for (let i = 0; i < to - from; i++) buf.writeInt32BE(CQ_BLANK_UNIT_SIZE, i * CQ_STORE_UNIT_SIZE + 8);
    if (!file.hold()) return;
    try {
      await writeFully(io, file.fd, [buf], from * CQ_STORE_UNIT_SIZE - file.fileFromOffset);
    } finally {
      file.release();
    }
  }

  private trimTail(): void {
    const held = this.maxLogicOffset - this.tailBase;
    if (held <= CQ_TAIL_MAX_UNITS) return;
    const newBase = Math.min(this.writtenLogicOffset, this.maxLogicOffset - CQ_TAIL_KEEP_UNITS);
    if (newBase <= this.tailBase) return;
    const keep = this.maxLogicOffset - newBase;
    const next = Buffer.allocUnsafe(Math.max(keep * 2, 64) * CQ_STORE_UNIT_SIZE);
    this.tail.copy(next, 0, (newBase - this.tailBase) * CQ_STORE_UNIT_SIZE, held * CQ_STORE_UNIT_SIZE);
    this.tail = next;
    this.tailBase = newBase;
  }

  /** fdatasync the files written since the last sync. */
  async sync(io: FileIo): Promise<void> {
    await this.files.syncDir(io);
    const files = [...this.dirtyFiles];
    this.dirtyFiles.clear();
    this.dirtyBytes = 0;
    for (const f of files) {
      if (!f.hold()) continue;
      try {
        await io.fdatasync(f.fd);
      } finally {
        f.release();
      }
    }
  }

  // ---------------------------------------------------------------- truncation and retention

  /** Removes the units of records at or after CommitLog offset `phyCut`; returns how many went. */
  async truncateByPhyOffset(phyCut: number, io: FileIo): Promise<number> {
    if (this.maxPhysicOffset <= phyCut) return 0;
    // Walk back from the end to the last real unit whose record lies before the cut.
    let newMax = this.minLogicOffset;
    let lastKept: CqUnit | undefined;
    const floor = Math.min(
      (this.files.first?.fileFromOffset ?? Number.MAX_SAFE_INTEGER) / CQ_STORE_UNIT_SIZE,
      this.tailBase,
    );
    let hi = this.maxLogicOffset;
    search: while (hi > floor) {
      const chunk = await this.unitsBefore(hi, floor, io);
      if (chunk === undefined) break;
      const { start, buf } = chunk;
      for (let j = buf.length / CQ_STORE_UNIT_SIZE - 1; j >= 0; j--) {
        if (isBlankUnit(buf, j)) continue;
        if (unitOffset(buf, j) < phyCut) {
          newMax = start + j + 1;
          lastKept = { offset: unitOffset(buf, j), size: unitSize(buf, j), tagsCode: unitTagsCode(buf, j) };
          break search;
        }
      }
      hi = start;
    }
    const removed = this.maxLogicOffset - newMax;
    if (newMax < this.writtenLogicOffset) {
      await this.files.truncateFrom(newMax * CQ_STORE_UNIT_SIZE);
      for (const f of [...this.dirtyFiles]) if (!f.isAlive) this.dirtyFiles.delete(f);
      const f = this.files.findFile(newMax * CQ_STORE_UNIT_SIZE);
      if (f !== undefined) this.dirtyFiles.add(f);
      this.writtenLogicOffset = newMax;
    }
    if (newMax < this.tailBase) {
      this.tailBase = newMax;
      this.tail = Buffer.allocUnsafe(0);
    }
    this.maxLogicOffset = newMax;
    if (this.minLogicOffset > newMax) this.minLogicOffset = newMax;
    this.maxPhysicOffset = lastKept === undefined ? 0 : lastKept.offset + lastKept.size;
    return removed;
  }

  /** The units [start, hi) for the largest start that keeps the range inside one file or the tail. */
  private async unitsBefore(
    hi: number,
    floor: number,
    io: FileIo,
  ): Promise<{ start: number; buf: Buffer } | undefined> {
    let start: number;
    if (hi > this.tailBase) {
      start = Math.max(this.tailBase, hi - CQ_SCAN_CHUNK_UNITS, floor);
    } else {
      const file = this.files.findFile((hi - 1) * CQ_STORE_UNIT_SIZE);
      if (file === undefined) return undefined;
      start = Math.max(file.fileFromOffset / CQ_STORE_UNIT_SIZE, hi - CQ_SCAN_CHUNK_UNITS, floor);
    }
    const buf = await this.getUnits(start, hi - start, io);
    if (buf === undefined || buf.length !== (hi - start) * CQ_STORE_UNIT_SIZE) return undefined;
    return { start, buf };
  }

  /**
   * Deletes files whose units all point below the CommitLog's min offset (never the last file), then
   * moves the min logical offset to the first unit whose record still exists. Returns files deleted.
   */
  async deleteExpired(minPhy: number, io: FileIo): Promise<number> {
    let deleted = 0;
    while (this.files.files.length > 1) {
      const f = this.files.first as MappedFile;
      const lastUnit = f.fileEnd / CQ_STORE_UNIT_SIZE - 1;
      if (lastUnit >= this.writtenLogicOffset) break;
      const buf = await this.readFileUnits(io, f, lastUnit, 1);
      if (buf === undefined || buf.length < CQ_STORE_UNIT_SIZE) break;
      if (!isBlankUnit(buf, 0) && unitOffset(buf, 0) + unitSize(buf, 0) > minPhy) break;
      await this.files.removeFile(f);
      deleted++;
    }
    const first = this.files.first;
    const from =
      first === undefined
        ? this.minLogicOffset
        : Math.max(this.minLogicOffset, first.fileFromOffset / CQ_STORE_UNIT_SIZE);
    this.minLogicOffset = await this.findFirstRealUnit(io, from, minPhy);
    return deleted;
  }

  async close(): Promise<void> {
    await this.files.closeAll();
  }
}

/** Creates a directory and, when it was new, fsyncs the directories that gained an entry. */
export async function ensureDurableDir(dir: string, syncDir: (d: string) => Promise<void>): Promise<void> {
  const created = await fs.promises.mkdir(dir, { recursive: true });
  if (created === undefined) return;
  // Every directory from the first one created down to `dir` is new; each parent gained one entry.
  const chain: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    chain.push(dirname(d));
    if (d === created || d === dirname(d)) break;
  }
  for (const d of chain) await syncDir(d);
}
