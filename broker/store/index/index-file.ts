// One Index file, in upstream's on-disk format, read and written through the bounded page cache.
//
// Layout (big-endian, as Java's ByteBuffer):
//   header, 40 bytes: beginTimestamp 8, endTimestamp 8, beginPhyOffset 8, endPhyOffset 8,
//                     hashSlotCount 4, indexCount 4 (starts at 1: entry 0 means "none")
//   hashSlotNum slots of 4 bytes: the number of the newest entry whose key hashes to the slot
//   indexNum entries of 20 bytes: keyHash 4 (abs of Java String.hashCode), phyOffset 8,
//                     timeDiff 4 (seconds since beginTimestamp), prevIndex 4 (older entry, same slot)
// File name: creation time as yyyyMMddHHmmssSSS (local time, as upstream).
//
// Writes happen in memory only (`put` costs no system call); `snapshot` + `write` persist them.
// Durability protocol, per flush: every dirty page (entries, slots, header) is written and fdatasync'd,
// then the checkpoint sidecar records the header (index-checkpoint.ts). After that, until the next
// checkpoint, new entries only get numbers >= the checkpointed indexCount N. So after a crash, the
// file's entries below N are intact, and a slot holding a number >= N (or garbage) is the only damage
// possible: `open` finds such slots and points them back at the newest entry below N with their hash.

import type { FileHandle } from "node:fs/promises";
import * as fsp from "node:fs/promises";
import { dirname, join } from "node:path";
import { fsyncDirectory } from "../../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../../common/errors.ts";
import {
  CHECKPOINT_FILE_SIZE,
  CHECKPOINT_SUFFIX,
  decodeCheckpoint,
  encodeCheckpoint,
  type IndexCheckpoint,
} from "./index-checkpoint.ts";
import { type CachedPage, INDEX_PAGE_SIZE, type PageCache } from "./page-cache.ts";

export const INDEX_HEADER_SIZE = 40;
export const HASH_SLOT_SIZE = 4;
export const INDEX_ENTRY_SIZE = 20;
/** Entry number 0 is never used: a slot or prevIndex of 0 means "none". */
const INVALID_INDEX = 0;
const INT_MAX = 2147483647;
const TWO_POW_32 = 2 ** 32;
/** Pages copied and written per step of a flush (1 MiB). */
const FLUSH_CHUNK_PAGES = 256;
/** Read size when scanning a file's slots or entries during repair (1 MiB). */
const SCAN_CHUNK_BYTES = 1 << 20;

/** Big-endian int32 at `o` (plain byte stores: this runs per indexed key). */
function putInt(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** Java String.hashCode over UTF-16 code units. */
export function javaStringHashCode(s: string): number {
  return javaStringHashCodeFrom(0, s, 0, s.length);
}

/** Continues a Java String.hashCode `h` (of some prefix) over `s[from, to)`: the hash of prefix + that part. */
export function javaStringHashCodeFrom(h: number, s: string, from: number, to: number): number {
  let x = h;
  for (let i = from; i < to; i++) x = (Math.imul(x, 31) + s.charCodeAt(i)) | 0;
  return x;
}

/** Upstream IndexFile.indexKeyHashMethod: abs(hashCode), with Integer.MIN_VALUE mapped to 0. */
export function indexKeyHash(key: string): number {
  return indexKeyHashOf(0, key, 0, key.length);
}

/** indexKeyHash of (the string hashing to `prefixHash`) + s[from, to), without building that string. */
export function indexKeyHashOf(prefixHash: number, s: string, from: number, to: number): number {
  const h = javaStringHashCodeFrom(prefixHash, s, from, to);
  return h === -2147483648 ? 0 : Math.abs(h);
}

export function indexFileSize(hashSlotNum: number, indexNum: number): number {
  return INDEX_HEADER_SIZE + hashSlotNum * HASH_SLOT_SIZE + indexNum * INDEX_ENTRY_SIZE;
}

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/** yyyyMMddHHmmssSSS in local time (upstream UtilAll.timeMillisToHumanString). */
export function indexFileName(ms: number): string {
  const d = new Date(ms);
  return (
    pad(d.getFullYear(), 4) +
    pad(d.getMonth() + 1, 2) +
    pad(d.getDate(), 2) +
    pad(d.getHours(), 2) +
    pad(d.getMinutes(), 2) +
    pad(d.getSeconds(), 2) +
    pad(d.getMilliseconds(), 3)
  );
}

export const INDEX_FILE_NAME = /^\d{17}$/;

/** The time an index file name stands for, or undefined if it is not one. */
export function parseIndexFileName(name: string): number | undefined {
  if (!INDEX_FILE_NAME.test(name)) return undefined;
  const n = (from: number, len: number) => Number(name.slice(from, from + len));
  const ms = new Date(n(0, 4), n(4, 2) - 1, n(6, 2), n(8, 2), n(10, 2), n(12, 2), n(14, 3)).getTime();
  return Number.isNaN(ms) ? undefined : ms;
}

export interface IndexEntry {
  keyHash: number;
  phyOffset: number;
  timeDiff: number;
  prevIndex: number;
}

/** What one file contributes to a flush: the pages dirty at the snapshot and the checkpoint to record. */
export interface IndexFileFlushJob {
  file: IndexFile;
  /** In page order. */
  pages: CachedPage[];
  checkpoint: IndexCheckpoint;
}

interface IndexFileInit {
  seq: number;
  dir: string;
  /** Directory of the checkpoint files (index-checkpoint.ts checkpointDirFor). */
  checkpointDir: string;
  name: string;
  hashSlotNum: number;
  indexNum: number;
  cache: PageCache;
  /** Called with every asynchronous page load, so the owner can wait for them all. */
  trackLoad: (p: Promise<unknown>) => void;
}

export class IndexFile {
  readonly seq: number;
  readonly name: string;
  readonly path: string;
  readonly checkpointPath: string;
  readonly hashSlotNum: number;
  readonly indexNum: number;
  readonly fileSize: number;
  private readonly entriesStart: number;
  private readonly cache: PageCache;
  private readonly trackLoad: (p: Promise<unknown>) => void;

  // The header, authoritative in memory.
  beginTimestamp = 0;
  endTimestamp = 0;
  beginPhyOffset = 0;
  endPhyOffset = 0;
  hashSlotCount = 0;
  indexCount = 1;
  /** Set when a newer file took over: records below this were fully indexed by this file and older ones. */
  sealedDispatchedEnd: number | undefined;
  /** The last checkpoint written (undefined: never flushed). */
  durable: IndexCheckpoint | undefined;

  private headerDirty = true;
  private fh: FileHandle | undefined;
  private checkpointFh: FileHandle | undefined;
  /** For files created by this process: pages never written, hence known to be zero on disk. */
  private neverWritten: Uint8Array | undefined;
  /** Entries waiting for their slot's page to be read: page -> slot -> entry numbers, oldest first. */
  private readonly pending = new Map<number, Map<number, number[]>>();
  private readonly loading = new Map<number, Promise<CachedPage>>();
  private headerPage: CachedPage | undefined;
  /** The page the next entry starts in, once it exists; pinned. */
  private tailPage: CachedPage | undefined;
  private readonly scratch = Buffer.alloc(INDEX_ENTRY_SIZE);

  private constructor(init: IndexFileInit) {
    this.seq = init.seq;
    this.name = init.name;
    this.path = join(init.dir, init.name);
    this.checkpointPath = join(init.checkpointDir, init.name + CHECKPOINT_SUFFIX);
    this.hashSlotNum = init.hashSlotNum;
    this.indexNum = init.indexNum;
    this.fileSize = indexFileSize(init.hashSlotNum, init.indexNum);
    this.entriesStart = INDEX_HEADER_SIZE + init.hashSlotNum * HASH_SLOT_SIZE;
    this.cache = init.cache;
    this.trackLoad = init.trackLoad;
  }

  /** A new file that exists only in memory until its first flush. */
  static createNew(init: IndexFileInit, prevEndPhyOffset: number, prevEndTimestamp: number): IndexFile {
    const f = new IndexFile(init);
    f.neverWritten = new Uint8Array(Math.ceil(f.pageCount() / 8)).fill(0xff);
    if (prevEndPhyOffset > 0) {
      f.beginPhyOffset = prevEndPhyOffset;
      f.endPhyOffset = prevEndPhyOffset;
    }
    if (prevEndTimestamp > 0) {
      f.beginTimestamp = prevEndTimestamp;
      f.endTimestamp = prevEndTimestamp;
    }
    f.headerPage = f.zeroPage(0, true);
    f.cache.pin(f.headerPage);
    return f;
  }

  /**
   * Opens an existing file and its checkpoint. Returns a reason string when the pair cannot be
   * trusted (no intact checkpoint, wrong size, header contradicting a sealed checkpoint...): the
   * caller then discards the file. An unsealed file gets its slot table repaired (see the top).
   */
  static async open(init: IndexFileInit): Promise<IndexFile | string> {
    const f = new IndexFile(init);
    try {
      const reason = await f.load();
      if (reason !== undefined) {
        await f.close();
        return reason;
      }
      return f;
    } catch (e) {
      await f.close().catch(() => {});
      return `cannot read it: ${(e as Error).message}`;
    }
  }

  private async load(): Promise<string | undefined> {
    let ckptBytes: Buffer;
    try {
      ckptBytes = await fsp.readFile(this.checkpointPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return "its checkpoint file is missing";
      throw e;
    }
    const cp = decodeCheckpoint(ckptBytes);
    if (cp === undefined) return "its checkpoint has no intact copy";
    if (cp.hashSlotNum !== this.hashSlotNum || cp.indexNum !== this.indexNum) {
      return `it was written with maxHashSlotNum=${cp.hashSlotNum} maxIndexNum=${cp.indexNum}, now ${this.hashSlotNum}/${this.indexNum}`;
    }
    const st = await fsp.stat(this.path);
    if (st.size !== this.fileSize) return `its size ${st.size} is not the expected ${this.fileSize}`;
    const insane = checkpointInsanity(cp);
    if (insane !== undefined) return `its checkpoint is inconsistent (${insane})`;
    this.fh = await fsp.open(this.path, "r+");
    this.checkpointFh = await fsp.open(this.checkpointPath, "r+");
    const header = Buffer.alloc(INDEX_HEADER_SIZE);
    await this.readFully(header, 0);
    const onDisk = decodeHeader(header);
    if (cp.sealed && !sameHeader(onDisk, cp)) return "its header does not match its sealed checkpoint";
    this.applyHeader(cp);
    this.durable = cp;
    if (cp.sealed) this.sealedDispatchedEnd = cp.dispatchedEnd;
    this.headerDirty = !sameHeader(onDisk, cp);
    if (!cp.sealed) {
      await this.repairSlots();
      await this.pinHeader();
      if (!this.isFull()) await this.loadTail();
    }
    return undefined;
  }

  private applyHeader(h: HeaderFields): void {
    this.beginTimestamp = h.beginTimestamp;
    this.endTimestamp = h.endTimestamp;
    this.beginPhyOffset = h.beginPhyOffset;
    this.endPhyOffset = h.endPhyOffset;
    this.hashSlotCount = h.hashSlotCount;
    this.indexCount = h.indexCount;
  }

  isFull(): boolean {
    return this.indexCount >= this.indexNum;
  }

  /** Entries held (indexCount counts from 1). */
  get entryCount(): number {
    return this.indexCount - 1;
  }

  /** Upstream IndexFile.isTimeMatched: does [begin, end] overlap this file's time span? */
  isTimeMatched(begin: number, end: number): boolean {
    return (
      (begin < this.beginTimestamp && end > this.endTimestamp) ||
      (begin >= this.beginTimestamp && begin <= this.endTimestamp) ||
      (end >= this.beginTimestamp && end <= this.endTimestamp)
    );
  }

  /** True while a flush has something to persist for this file. */
  needsFlush(sealed: boolean, dispatchedEnd: number): boolean {
    if (this.headerDirty || this.cache.dirtyPagesOf(this.seq).length > 0) return true;
    const d = this.durable;
    return d === undefined || d.sealed !== sealed || d.dispatchedEnd !== dispatchedEnd;
  }

  // ---- writing (synchronous, in memory)

  /**
   * Adds an entry for a key with hash `keyHash`. False when the file is full. Costs no system call:
   * when the key's slot page is not in memory, the entry is linked to its chain once the page has
   * been read (asynchronously).
   */
  put(keyHash: number, phyOffset: number, storeTimestamp: number): boolean {
    const idx = this.indexCount;
    if (idx >= this.indexNum) return false;
    if (idx <= 1) {
      this.beginPhyOffset = phyOffset;
      this.beginTimestamp = storeTimestamp;
    }
    let timeDiff = this.beginTimestamp <= 0 ? 0 : Math.floor((storeTimestamp - this.beginTimestamp) / 1000);
    if (timeDiff < 0) timeDiff = 0;
    else if (timeDiff > INT_MAX) timeDiff = INT_MAX;

    const slot = keyHash % this.hashSlotNum;
    const slotPos = INDEX_HEADER_SIZE + slot * HASH_SLOT_SIZE;
    const slotPageNo = Math.floor(slotPos / INDEX_PAGE_SIZE);
    const slotPage =
      this.cache.get(this.seq, slotPageNo) ??
      (this.isNeverWritten(slotPageNo) ? this.zeroPage(slotPageNo, true) : undefined);
    let prev = INVALID_INDEX;
    if (slotPage !== undefined) {
      prev = slotPage.buf.readInt32BE(slotPos - slotPageNo * INDEX_PAGE_SIZE);
      if (prev <= INVALID_INDEX || prev >= idx) {
        prev = INVALID_INDEX;
        this.hashSlotCount++;
      }
    }
    this.writeEntry(idx, keyHash, phyOffset, timeDiff, prev);
    if (slotPage !== undefined) {
      putInt(slotPage.buf, slotPos - slotPageNo * INDEX_PAGE_SIZE, idx);
      this.cache.markDirty(slotPage);
    } else {
      this.addPending(slotPageNo, slot, idx);
    }
    this.indexCount = idx + 1;
    this.endPhyOffset = phyOffset;
    this.endTimestamp = storeTimestamp;
    this.headerDirty = true;
    return true;
  }

  private writeEntry(idx: number, keyHash: number, phyOffset: number, timeDiff: number, prev: number): void {
    const pos = this.entriesStart + idx * INDEX_ENTRY_SIZE;
    const pageNo = Math.floor(pos / INDEX_PAGE_SIZE);
    const at = pos - pageNo * INDEX_PAGE_SIZE;
    const p0 = this.entryPage(pageNo);
    const fits = at + INDEX_ENTRY_SIZE <= INDEX_PAGE_SIZE;
    const b = fits ? p0.buf : this.scratch;
    const o = fits ? at : 0;
    putInt(b, o, keyHash);
    putInt(b, o + 4, Math.floor(phyOffset / TWO_POW_32));
    putInt(b, o + 8, phyOffset % TWO_POW_32);
    putInt(b, o + 12, timeDiff);
    putInt(b, o + 16, prev);
    this.cache.markDirty(p0);
    if (!fits) {
      const first = INDEX_PAGE_SIZE - at;
      this.scratch.copy(p0.buf, at, 0, first);
      const p1 = this.entryPage(pageNo + 1);
      this.scratch.copy(p1.buf, 0, first, INDEX_ENTRY_SIZE);
      this.cache.markDirty(p1);
    }
    const nextPageNo = Math.floor((pos + INDEX_ENTRY_SIZE) / INDEX_PAGE_SIZE);
    if (this.tailPage !== undefined && this.tailPage.pageNo !== nextPageNo) this.setTail(undefined);
  }

  /**
   * The page an entry being appended goes to: the pinned tail, or a page wholly past the last entry,
   * whose old content does not matter, so it is never read from disk.
   */
  private entryPage(pageNo: number): CachedPage {
    if (this.tailPage?.pageNo === pageNo) return this.tailPage;
    const page = this.cache.get(this.seq, pageNo) ?? this.zeroPage(pageNo, true);
    this.setTail(page);
    return page;
  }

  private setTail(page: CachedPage | undefined): void {
    if (this.tailPage !== undefined) this.cache.unpin(this.tailPage);
    this.tailPage = page;
    if (page !== undefined) this.cache.pin(page);
  }

  /** Drops the pin on the tail page (the file is full, or being closed). */
  releaseTail(): void {
    this.setTail(undefined);
  }

  private zeroPage(pageNo: number, dirty: boolean): CachedPage {
    const page = this.cache.insert(this.seq, pageNo, Buffer.alloc(INDEX_PAGE_SIZE), { dirty });
    return page;
  }

  private pageCount(): number {
    return Math.ceil(this.fileSize / INDEX_PAGE_SIZE);
  }

  private isNeverWritten(pageNo: number): boolean {
    const bits = this.neverWritten;
    return bits !== undefined && ((bits[pageNo >>> 3] ?? 0) & (1 << (pageNo & 7))) !== 0;
  }

  private markWrittenBit(pageNo: number): void {
    const bits = this.neverWritten;
    if (bits !== undefined) bits[pageNo >>> 3] = (bits[pageNo >>> 3] ?? 0) & ~(1 << (pageNo & 7));
  }

  private addPending(pageNo: number, slot: number, idx: number): void {
    let slots = this.pending.get(pageNo);
    if (slots === undefined) {
      slots = new Map();
      this.pending.set(pageNo, slots);
    }
    const list = slots.get(slot);
    if (list === undefined) slots.set(slot, [idx]);
    else list.push(idx);
    if (!this.loading.has(pageNo)) void this.loadPage(pageNo).catch(() => {}); // failure surfaces via trackLoad
  }

  /** Links entries that waited for `page` (a slot page just read) into their slots' chains. */
  private applyPending(page: CachedPage): void {
    const slots = this.pending.get(page.pageNo);
    if (slots === undefined) return;
    this.pending.delete(page.pageNo);
    for (const [slot, entries] of slots) {
      const at = INDEX_HEADER_SIZE + slot * HASH_SLOT_SIZE - page.pageNo * INDEX_PAGE_SIZE;
      let prev = page.buf.readInt32BE(at);
      if (prev <= INVALID_INDEX || prev >= (entries[0] as number)) {
        prev = INVALID_INDEX;
        this.hashSlotCount++;
      }
      for (const e of entries) {
        this.writeInt32At(this.entriesStart + e * INDEX_ENTRY_SIZE + 16, prev);
        prev = e;
      }
      page.buf.writeInt32BE(prev, at);
    }
    this.cache.markDirty(page);
    this.headerDirty = true;
  }

  /** Writes an int into resident pages (which may split it); only for pages known to be dirty or pinned. */
  private writeInt32At(pos: number, v: number): void {
    const pageNo = Math.floor(pos / INDEX_PAGE_SIZE);
    const at = pos - pageNo * INDEX_PAGE_SIZE;
    const p0 = this.residentOrFail(pageNo);
    if (at + 4 <= INDEX_PAGE_SIZE) {
      p0.buf.writeInt32BE(v, at);
      this.cache.markDirty(p0);
      return;
    }
    const tmp = Buffer.alloc(4);
    tmp.writeInt32BE(v, 0);
    const first = INDEX_PAGE_SIZE - at;
    tmp.copy(p0.buf, at, 0, first);
    const p1 = this.residentOrFail(pageNo + 1);
    tmp.copy(p1.buf, 0, first, 4);
    this.cache.markDirty(p0);
    this.cache.markDirty(p1);
  }

  private residentOrFail(pageNo: number): CachedPage {
    const p = this.cache.get(this.seq, pageNo);
    if (p === undefined) {
      throw new RmqError(
        ErrorCode.Internal,
        `index file ${this.name}: page ${pageNo} with unflushed entries is not in memory`,
      );
    }
    return p;
  }

  // ---- reading

  /** The page, from memory or read from disk; entries waiting for it are linked in on arrival. */
  loadPage(pageNo: number): Promise<CachedPage> {
    const resident = this.cache.get(this.seq, pageNo);
    if (resident !== undefined) return Promise.resolve(resident);
    if (this.isNeverWritten(pageNo)) {
      const page = this.zeroPage(pageNo, this.pending.has(pageNo));
      this.applyPending(page);
      return Promise.resolve(page);
    }
    const inflight = this.loading.get(pageNo);
    if (inflight !== undefined) return inflight;
    const load = (async () => {
      const buf = Buffer.alloc(INDEX_PAGE_SIZE);
      await this.readFully(buf, pageNo * INDEX_PAGE_SIZE);
      const again = this.cache.get(this.seq, pageNo);
      if (again !== undefined) return again;
      const page = this.cache.insert(this.seq, pageNo, buf, { dirty: this.pending.has(pageNo) });
      this.applyPending(page);
      return page;
    })().finally(() => this.loading.delete(pageNo));
    this.loading.set(pageNo, load);
    this.trackLoad(load);
    return load;
  }

  private async readFully(buf: Buffer, position: number): Promise<void> {
    if (this.fh === undefined) return; // not created on disk yet: all zeros
    let done = 0;
    while (done < buf.length && position + done < this.fileSize) {
      const { bytesRead } = await this.fh.read(buf, done, buf.length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
  }

  private async readAt(pos: number, len: number): Promise<Buffer> {
    const firstPage = Math.floor(pos / INDEX_PAGE_SIZE);
    const lastPage = Math.floor((pos + len - 1) / INDEX_PAGE_SIZE);
    const out = Buffer.alloc(len);
    for (let p = firstPage; p <= lastPage; p++) {
      const page = await this.loadPage(p);
      const pageStart = p * INDEX_PAGE_SIZE;
      const from = Math.max(pos, pageStart);
      const to = Math.min(pos + len, pageStart + INDEX_PAGE_SIZE);
      page.buf.copy(out, from - pos, from - pageStart, to - pageStart);
    }
    return out;
  }

  async readEntry(idx: number): Promise<IndexEntry> {
    const b = await this.readAt(this.entriesStart + idx * INDEX_ENTRY_SIZE, INDEX_ENTRY_SIZE);
    return decodeEntry(b, 0);
  }

  async readSlot(slot: number): Promise<number> {
    const pos = INDEX_HEADER_SIZE + slot * HASH_SLOT_SIZE;
    const page = await this.loadPage(Math.floor(pos / INDEX_PAGE_SIZE));
    return page.buf.readInt32BE(pos % INDEX_PAGE_SIZE);
  }

  /**
   * Upstream IndexFile.selectPhyOffset: walks the chain of `keyHash`'s slot, newest first, adding
   * the phyOffset of entries with that hash stored within [begin, end] (second resolution).
   */
  async select(keyHash: number, maxNum: number, begin: number, end: number, out: number[]): Promise<void> {
    if (this.indexCount <= 1) return;
    let cur = await this.readSlot(keyHash % this.hashSlotNum);
    if (cur <= INVALID_INDEX || cur >= this.indexCount) return;
    while (out.length < maxNum) {
      const e = await this.readEntry(cur);
      if (e.timeDiff < 0) break;
      const timeRead = this.beginTimestamp + e.timeDiff * 1000;
      if (e.keyHash === keyHash && timeRead >= begin && timeRead <= end) out.push(e.phyOffset);
      if (e.prevIndex <= INVALID_INDEX || e.prevIndex >= cur || timeRead < begin) break;
      cur = e.prevIndex;
    }
  }

  // ---- truncation

  /**
   * Forgets entries whose phyOffset >= `phyOffset` (entries are in CommitLog order), unlinking them
   * from their chains newest first. Returns how many were removed.
   */
  async truncateFrom(phyOffset: number): Promise<number> {
    let keep = this.indexCount;
    while (keep > 1) {
      const e = await this.readEntry(keep - 1);
      if (e.phyOffset < phyOffset) break;
      keep--;
    }
    const removed = this.indexCount - keep;
    if (removed === 0) return 0;
    for (let i = this.indexCount - 1; i >= keep; i--) {
      const e = await this.readEntry(i);
      const slot = e.keyHash % this.hashSlotNum;
      const slotPos = INDEX_HEADER_SIZE + slot * HASH_SLOT_SIZE;
      const page = await this.loadPage(Math.floor(slotPos / INDEX_PAGE_SIZE));
      const at = slotPos % INDEX_PAGE_SIZE;
      if (page.buf.readInt32BE(at) !== i) continue; // not the head: garbage, leave the chain alone
      const prev = e.prevIndex > INVALID_INDEX && e.prevIndex < i ? e.prevIndex : INVALID_INDEX;
      page.buf.writeInt32BE(prev, at);
      this.cache.markDirty(page);
      if (prev === INVALID_INDEX) this.hashSlotCount = Math.max(0, this.hashSlotCount - 1);
    }
    this.setTail(undefined);
    this.indexCount = keep;
    if (keep > 1) {
      const last = await this.readEntry(keep - 1);
      this.endPhyOffset = last.phyOffset;
      // The entry only knows its second; keep an upper bound so time-range queries still find it.
      this.endTimestamp = Math.min(this.endTimestamp, this.beginTimestamp + (last.timeDiff + 1) * 1000 - 1);
    } else {
      this.endPhyOffset = this.beginPhyOffset;
      this.endTimestamp = this.beginTimestamp;
    }
    this.sealedDispatchedEnd = undefined;
    this.headerDirty = true;
    await this.loadTail();
    return removed;
  }

  /** Pins the page the next entry starts in, reading it if it holds earlier entries. */
  private async loadTail(): Promise<void> {
    const pos = this.entriesStart + this.indexCount * INDEX_ENTRY_SIZE;
    const pageNo = Math.floor(pos / INDEX_PAGE_SIZE);
    if (pos % INDEX_PAGE_SIZE === 0 && this.indexCount > 1) return; // starts a fresh page: created on demand
    this.setTail(await this.loadPage(pageNo));
  }

  // ---- repair after a crash

  /**
   * For an unsealed file after open: slots holding a number >= the checkpointed indexCount (written
   * after the checkpoint) or garbage are pointed back at the newest entry below it with their hash.
   */
  private async repairSlots(): Promise<void> {
    const n = this.indexCount;
    const broken = new Set<number>();
    let used = 0;
    const chunk = Buffer.alloc(Math.min(SCAN_CHUNK_BYTES, this.hashSlotNum * HASH_SLOT_SIZE));
    for (let first = 0; first < this.hashSlotNum; first += chunk.length / HASH_SLOT_SIZE) {
      const count = Math.min(chunk.length / HASH_SLOT_SIZE, this.hashSlotNum - first);
      const view = chunk.subarray(0, count * HASH_SLOT_SIZE);
      view.fill(0);
      await this.readFully(view, INDEX_HEADER_SIZE + first * HASH_SLOT_SIZE);
      for (let i = 0; i < count; i++) {
        const v = view.readInt32BE(i * HASH_SLOT_SIZE);
        if (v < INVALID_INDEX || v >= n) broken.add(first + i);
        else if (v > INVALID_INDEX) used++;
      }
    }
    if (broken.size > 0) {
      const fixed = new Map<number, number>();
      const per = Math.floor(SCAN_CHUNK_BYTES / INDEX_ENTRY_SIZE);
      const buf = Buffer.alloc(per * INDEX_ENTRY_SIZE);
      for (let hi = n - 1; hi >= 1 && fixed.size < broken.size; hi -= per) {
        const lo = Math.max(1, hi - per + 1);
        const view = buf.subarray(0, (hi - lo + 1) * INDEX_ENTRY_SIZE);
        view.fill(0);
        await this.readFully(view, this.entriesStart + lo * INDEX_ENTRY_SIZE);
        for (let i = hi; i >= lo; i--) {
          const keyHash = view.readInt32BE((i - lo) * INDEX_ENTRY_SIZE);
          if (keyHash < 0) continue;
          const slot = keyHash % this.hashSlotNum;
          if (broken.has(slot) && !fixed.has(slot)) fixed.set(slot, i);
        }
      }
      for (const slot of broken) {
        const v = fixed.get(slot) ?? INVALID_INDEX;
        const pos = INDEX_HEADER_SIZE + slot * HASH_SLOT_SIZE;
        const page = await this.loadPage(Math.floor(pos / INDEX_PAGE_SIZE));
        page.buf.writeInt32BE(v, pos % INDEX_PAGE_SIZE);
        this.cache.markDirty(page);
        if (v !== INVALID_INDEX) used++;
      }
    }
    if (used !== this.hashSlotCount) {
      this.hashSlotCount = used;
      this.headerDirty = true;
    }
    if (broken.size > 0) this.headerDirty = true;
  }

  // ---- persisting

  /**
   * Captures, synchronously, what a flush must write for this file: the header (encoded into its page
   * now), the pages dirty now, and the checkpoint to record once they are on disk. Undefined when
   * nothing changed. The pages' bytes are copied later, chunk by chunk, as `write` goes (see there).
   */
  snapshot(sealed: boolean, dispatchedEnd: number): IndexFileFlushJob | undefined {
    if (!this.needsFlush(sealed, dispatchedEnd)) return undefined;
    if (this.headerDirty) {
      const hp = this.headerPage;
      if (hp === undefined)
        throw new RmqError(ErrorCode.Internal, `index file ${this.name}: header page not pinned`);
      encodeHeader(this, hp.buf);
      this.cache.markDirty(hp);
      this.headerDirty = false;
    }
    return {
      file: this,
      pages: this.cache.dirtyPagesOf(this.seq),
      checkpoint: {
        seq: ((this.durable?.seq ?? 0) + 1) >>> 0,
        hashSlotNum: this.hashSlotNum,
        indexNum: this.indexNum,
        indexCount: this.indexCount,
        hashSlotCount: this.hashSlotCount,
        beginTimestamp: this.beginTimestamp,
        endTimestamp: this.endTimestamp,
        beginPhyOffset: this.beginPhyOffset,
        endPhyOffset: this.endPhyOffset,
        dispatchedEnd,
        sealed,
      },
    };
  }

  /**
   * Writes a snapshot: pages, fdatasync, then the checkpoint, fdatasync. Pages are copied and written
   * FLUSH_CHUNK_PAGES at a time, so dispatch keeps running between chunks instead of stalling while
   * tens of MiB are copied. A page copied after the snapshot may already hold later changes: those
   * only touch entries numbered >= the checkpoint's indexCount and slots pointing at them, which the
   * durability protocol (top of file) already tolerates; every entry below it is in a page that was
   * dirty at the snapshot and is never changed again. A page changed after its copy stays dirty.
   */
  async write(job: IndexFileFlushJob): Promise<void> {
    await this.materialize();
    const fh = this.fh as FileHandle;
    const pages = job.pages;
    const versions = new Array<number>(pages.length);
    const chunk = Buffer.allocUnsafe(Math.min(pages.length, FLUSH_CHUNK_PAGES) * INDEX_PAGE_SIZE);
    let i = 0;
    while (i < pages.length) {
      // A run of consecutive pages, at most FLUSH_CHUNK_PAGES long.
      let j = i + 1;
      while (
        j < pages.length &&
        j - i < FLUSH_CHUNK_PAGES &&
        (pages[j] as CachedPage).pageNo === (pages[j - 1] as CachedPage).pageNo + 1
      )
        j++;
      const position = (pages[i] as CachedPage).pageNo * INDEX_PAGE_SIZE;
      const length =
        Math.min(this.fileSize, ((pages[j - 1] as CachedPage).pageNo + 1) * INDEX_PAGE_SIZE) - position;
      for (let k = i; k < j; k++) {
        const p = pages[k] as CachedPage;
        const off = p.pageNo * INDEX_PAGE_SIZE - position;
        p.buf.copy(chunk, off, 0, Math.min(INDEX_PAGE_SIZE, length - off));
        versions[k] = p.version;
      }
      let done = 0;
      while (done < length) {
        const { bytesWritten } = await fh.write(chunk, done, length - done, position + done);
        done += bytesWritten;
      }
      i = j;
    }
    if (pages.length > 0) await fh.datasync();
    const { bytes, position } = encodeCheckpoint(job.checkpoint);
    const cfh = this.checkpointFh as FileHandle;
    await cfh.write(bytes, 0, bytes.length, position);
    await cfh.datasync();
    this.durable = job.checkpoint;
    pages.forEach((p, k) => {
      this.markWrittenBit(p.pageNo);
      this.cache.markWritten(p, versions[k] as number);
    });
    if (job.checkpoint.sealed && this.headerPage !== undefined && !this.headerDirty) {
      this.cache.unpin(this.headerPage);
      this.headerPage = undefined;
    }
  }

  /** Makes sure the header page is pinned (a sealed file reopened for truncation). */
  async pinHeader(): Promise<void> {
    if (this.headerPage !== undefined) return;
    this.headerPage = await this.loadPage(0);
    this.cache.pin(this.headerPage);
  }

  /** Creates the file (sparse, full size) and its checkpoint on first flush. */
  private async materialize(): Promise<void> {
    if (this.fh !== undefined) return;
    const fh = await fsp.open(this.path, "w+");
    try {
      await fh.truncate(this.fileSize);
      const cfh = await fsp.open(this.checkpointPath, "w+");
      try {
        await cfh.truncate(CHECKPOINT_FILE_SIZE);
        await cfh.sync();
      } catch (e) {
        await cfh.close();
        throw e;
      }
      this.checkpointFh = cfh;
    } catch (e) {
      await fh.close();
      throw e;
    }
    this.fh = fh;
    await fsyncDirectory(dirname(this.path));
    await fsyncDirectory(dirname(this.checkpointPath));
  }

  get onDisk(): boolean {
    return this.fh !== undefined;
  }

  async close(): Promise<void> {
    this.setTail(undefined);
    if (this.headerPage !== undefined) {
      this.cache.unpin(this.headerPage);
      this.headerPage = undefined;
    }
    const fh = this.fh;
    const cfh = this.checkpointFh;
    this.fh = undefined;
    this.checkpointFh = undefined;
    await fh?.close();
    await cfh?.close();
  }

  /** Closes and deletes the file and its checkpoint, and forgets its cached pages. */
  async destroy(): Promise<void> {
    await this.close();
    this.cache.dropFile(this.seq);
    await fsp.rm(this.path, { force: true });
    await fsp.rm(this.checkpointPath, { force: true });
  }
}

interface HeaderFields {
  beginTimestamp: number;
  endTimestamp: number;
  beginPhyOffset: number;
  endPhyOffset: number;
  hashSlotCount: number;
  indexCount: number;
}

function encodeHeader(h: HeaderFields, b: Buffer): void {
  b.writeBigInt64BE(BigInt(h.beginTimestamp), 0);
  b.writeBigInt64BE(BigInt(h.endTimestamp), 8);
  b.writeBigInt64BE(BigInt(h.beginPhyOffset), 16);
  b.writeBigInt64BE(BigInt(h.endPhyOffset), 24);
  b.writeInt32BE(h.hashSlotCount, 32);
  b.writeInt32BE(h.indexCount, 36);
}

function decodeHeader(b: Buffer): HeaderFields {
  return {
    beginTimestamp: Number(b.readBigInt64BE(0)),
    endTimestamp: Number(b.readBigInt64BE(8)),
    beginPhyOffset: Number(b.readBigInt64BE(16)),
    endPhyOffset: Number(b.readBigInt64BE(24)),
    hashSlotCount: b.readInt32BE(32),
    indexCount: b.readInt32BE(36),
  };
}

function sameHeader(a: HeaderFields, b: HeaderFields): boolean {
  return (
    a.beginTimestamp === b.beginTimestamp &&
    a.endTimestamp === b.endTimestamp &&
    a.beginPhyOffset === b.beginPhyOffset &&
    a.endPhyOffset === b.endPhyOffset &&
    a.hashSlotCount === b.hashSlotCount &&
    a.indexCount === b.indexCount
  );
}

function decodeEntry(b: Buffer, o: number): IndexEntry {
  return {
    keyHash: b.readInt32BE(o),
    phyOffset: b.readUInt32BE(o + 4) * TWO_POW_32 + b.readUInt32BE(o + 8),
    timeDiff: b.readInt32BE(o + 12),
    prevIndex: b.readInt32BE(o + 16),
  };
}

/** Why a checkpoint cannot describe a real file, or undefined if it is plausible. */
function checkpointInsanity(cp: IndexCheckpoint): string | undefined {
  if (cp.indexCount < 1 || cp.indexCount > cp.indexNum)
    return `indexCount ${cp.indexCount} outside 1..${cp.indexNum}`;
  if (cp.hashSlotCount < 0 || cp.hashSlotCount > Math.min(cp.hashSlotNum, cp.indexCount - 1)) {
    return `hashSlotCount ${cp.hashSlotCount} exceeds the slots used`;
  }
  if (cp.beginPhyOffset < 0 || cp.endPhyOffset < cp.beginPhyOffset) return "phy offsets out of order";
  if (cp.beginTimestamp < 0 || cp.endTimestamp < cp.beginTimestamp) return "timestamps out of order";
  if (cp.dispatchedEnd < 0 || (cp.indexCount > 1 && cp.dispatchedEnd < cp.endPhyOffset)) {
    return `dispatchedEnd ${cp.dispatchedEnd} below the last indexed record ${cp.endPhyOffset}`;
  }
  return undefined;
}
