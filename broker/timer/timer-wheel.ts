// `{storePathRootDir}/timerwheel` (upstream TimerWheel): one 32-byte slot per precision step, for two
// turns of SLOTS_TOTAL slots (38,707,200 bytes, created sparse). Slot layout, big-endian as upstream:
//
//   timeMs / precisionMs 8 | firstPos 8 | lastPos 8 | num 4 | magic 4
//
// firstPos/lastPos are timer log positions: lastPos heads the slot's backward chain of units, num is
// the slot's message count (a delete marker counts -1, as upstream). A slot whose stored time is not
// the one asked for is empty (it belongs to another turn).
//
// Node has no mmap, so the file is read and written in 4 KiB blocks (128 slots) through a small cache:
// load() brings the blocks of the slots about to be used, getSlot/putSlot work on them synchronously,
// flush() writes the dirty blocks, fdatasyncs and drops clean blocks beyond MAX_CACHED_BLOCKS. The
// cache never holds more than the blocks touched since the last flush plus that bound, so memory
// does not grow with the number of pending messages.

import * as fs from "node:fs";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { readLong, writeLong } from "../store/message-codec.ts";
import { type FileIo, nodeFileIo, readFully, writeFully } from "../store/store-io.ts";
import { SLOTS_TOTAL } from "./timer-config.ts";

export const SLOT_SIZE = 32;
const BLOCK_SIZE = 4096;
const SLOTS_PER_BLOCK = BLOCK_SIZE / SLOT_SIZE;
/** Slots in the file: two turns (upstream slotsTotal * 2). */
export const WHEEL_SLOTS = SLOTS_TOTAL * 2;
export const WHEEL_FILE_SIZE = WHEEL_SLOTS * SLOT_SIZE;
/** Clean blocks kept after a flush (1 MiB). */
const MAX_CACHED_BLOCKS = 256;
/** Read size when summing the whole wheel. */
const SCAN_CHUNK = 1024 * 1024;

export interface Slot {
  /** Slot start (epoch ms), -1 when the slot is empty. */
  timeMs: number;
  firstPos: number;
  lastPos: number;
  num: number;
  magic: number;
}

export const EMPTY_SLOT: Readonly<Slot> = Object.freeze({
  timeMs: -1,
  firstPos: -1,
  lastPos: -1,
  num: 0,
  magic: 0,
});

interface Block {
  buf: Buffer;
  dirty: boolean;
}

export class TimerWheel {
  readonly precisionMs: number;
  private readonly fh: fs.promises.FileHandle;
  private readonly fd: number;
  private readonly io: FileIo;
  private readonly blocks = new Map<number, Block>();
  private closed = false;

  private constructor(fh: fs.promises.FileHandle, precisionMs: number, io: FileIo) {
    this.fh = fh;
    this.fd = fh.fd;
    this.precisionMs = precisionMs;
    this.io = io;
  }

  static async open(file: string, precisionMs: number, io: FileIo = nodeFileIo): Promise<TimerWheel> {
    const fh = await fs.promises.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      const { size } = await fh.stat();
      if (size !== 0 && size !== WHEEL_FILE_SIZE) {
        throw new RmqError(
          ErrorCode.IllegalConfig,
          `timer wheel ${file} is ${size} bytes, expected ${WHEEL_FILE_SIZE}`,
        );
      }
      if (size === 0) await fh.truncate(WHEEL_FILE_SIZE);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new TimerWheel(fh, precisionMs, io);
  }

  slotIndex(timeMs: number): number {
    return Math.floor(timeMs / this.precisionMs) % WHEEL_SLOTS;
  }

  /** Brings the blocks holding these slots into the cache. */
  async load(timesMs: Iterable<number>): Promise<void> {
    const want = new Set<number>();
    for (const t of timesMs) want.add(Math.floor(this.slotIndex(t) / SLOTS_PER_BLOCK));
    for (const b of want) {
      const cached = this.blocks.get(b);
      if (cached !== undefined) {
        // Most recently used last.
        this.blocks.delete(b);
        this.blocks.set(b, cached);
        continue;
      }
      const buf = Buffer.alloc(BLOCK_SIZE);
      await readFully(this.io, this.fd, buf, 0, BLOCK_SIZE, b * BLOCK_SIZE);
      if (!this.blocks.has(b)) this.blocks.set(b, { buf, dirty: false });
    }
  }

  private block(timeMs: number): { block: Block; pos: number } {
    const i = this.slotIndex(timeMs);
    const block = this.blocks.get(Math.floor(i / SLOTS_PER_BLOCK));
    if (block === undefined)
      throw new RmqError(ErrorCode.Internal, `timer wheel slot ${i} used before load()`);
    return { block, pos: (i % SLOTS_PER_BLOCK) * SLOT_SIZE };
  }

  /** The slot of `timeMs` (loaded before), EMPTY_SLOT when it holds another turn's time. */
  getSlot(timeMs: number): Slot {
    const { block, pos } = this.block(timeMs);
    const b = block.buf;
    const stored = readLong(b, pos);
    if (stored !== Math.floor(timeMs / this.precisionMs)) return EMPTY_SLOT;
    return {
      timeMs: stored * this.precisionMs,
      firstPos: readLong(b, pos + 8),
      lastPos: readLong(b, pos + 16),
      num: b.readInt32BE(pos + 24),
      magic: b.readInt32BE(pos + 28),
    };
  }

  putSlot(timeMs: number, firstPos: number, lastPos: number, num: number, magic = 0): void {
    const { block, pos } = this.block(timeMs);
    const b = block.buf;
    writeLong(b, pos, Math.floor(timeMs / this.precisionMs));
    writeLong(b, pos + 8, firstPos);
    writeLong(b, pos + 16, lastPos);
    b.writeInt32BE(num | 0, pos + 24);
    b.writeInt32BE(magic | 0, pos + 28);
    block.dirty = true;
  }

  get dirtyBlocks(): number {
    let n = 0;
    for (const b of this.blocks.values()) if (b.dirty) n++;
    return n;
  }

  /** Writes the dirty blocks and syncs the file; then trims the cache of clean blocks. */
  async flush(): Promise<void> {
    const dirty = [...this.blocks].filter(([, b]) => b.dirty);
    if (dirty.length > 0) {
      // Snapshot first: the blocks may change again while the writes are under way.
      const writes = dirty.map(([i, b]) => {
        b.dirty = false;
        return { i, copy: Buffer.from(b.buf) };
      });
      try {
        for (const w of writes) await writeFully(this.io, this.fd, [w.copy], w.i * BLOCK_SIZE);
        await this.io.fdatasync(this.fd);
      } catch (e) {
        for (const [, b] of dirty) b.dirty = true;
        throw e;
      }
    }
    for (const [i, b] of this.blocks) {
      if (this.blocks.size <= MAX_CACHED_BLOCKS) break;
      if (!b.dirty) this.blocks.delete(i);
    }
  }

  /**
   * Sum of `num` over the slots of [fromMs, fromMs + one wheel span): the messages waiting. Reads the
   * whole file (sparse where never written); cached blocks take precedence.
   */
  async sumNum(fromMs: number): Promise<number> {
    const from = Math.floor(fromMs / this.precisionMs);
    const to = from + WHEEL_SLOTS;
    const chunk = Buffer.alloc(SCAN_CHUNK);
    let total = 0;
    for (let off = 0; off < WHEEL_FILE_SIZE; off += SCAN_CHUNK) {
      const len = Math.min(SCAN_CHUNK, WHEEL_FILE_SIZE - off);
      const n = await readFully(this.io, this.fd, chunk, 0, len, off);
      if (n < len) chunk.fill(0, n, len);
      for (let bpos = 0; bpos < len; bpos += BLOCK_SIZE) {
        const cached = this.blocks.get((off + bpos) / BLOCK_SIZE);
        const buf = cached?.buf ?? chunk;
        const base = cached === undefined ? bpos : 0;
        for (let s = 0; s < SLOTS_PER_BLOCK; s++) {
          const p = base + s * SLOT_SIZE;
          const stored = readLong(buf, p);
          if (stored < from || stored >= to) continue;
          if (stored % WHEEL_SLOTS !== (off + bpos) / SLOT_SIZE + s) continue;
          total += buf.readInt32BE(p + 24);
        }
      }
    }
    return total;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.blocks.clear();
    await this.fh.close();
  }
}
