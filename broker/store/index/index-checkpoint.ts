// The checkpoint kept for each Index file: what of the file is durable. It lives in a sibling
// directory (`{storePathRootDir}/index-checkpoints/<name>.ckpt` for `{storePathRootDir}/index/<name>`)
// so the index directory holds nothing but upstream-format files.
//
// Upstream trusts the mmapped header and, after a crash, throws away index files newer than the
// store checkpoint. We record after every flush, in a small CRC-protected sidecar, the header as it
// was when the flushed pages reached the disk, plus how far the CommitLog had been dispatched into the
// index. Two copies live at offsets 0 and 512 and are written alternately, so a torn write leaves
// the previous one intact; the valid copy with the higher sequence number wins.

import { basename, dirname, join } from "node:path";
import { crc32 } from "node:zlib";

export const CHECKPOINT_SUFFIX = ".ckpt";
const CHECKPOINT_DIR_SUFFIX = "-checkpoints";

/** Where the checkpoints of the index files in `indexDir` live. */
export function checkpointDirFor(indexDir: string): string {
  return join(dirname(indexDir), basename(indexDir) + CHECKPOINT_DIR_SUFFIX);
}
export const CHECKPOINT_FILE_SIZE = 1024;
const COPY_STRIDE = 512;
const RECORD_SIZE = 80;
const CRC_OFFSET = 72;
const MAGIC = 0x52494458; // "RIDX"
const FORMAT_VERSION = 1;
const FLAG_SEALED = 1;

export interface IndexCheckpoint {
  /** Incremented on every write; the higher valid copy wins. */
  seq: number;
  hashSlotNum: number;
  indexNum: number;
  /** Header fields as durable on disk (indexCount starts at 1: no entries). */
  indexCount: number;
  hashSlotCount: number;
  beginTimestamp: number;
  endTimestamp: number;
  beginPhyOffset: number;
  endPhyOffset: number;
  /**
   * Every CommitLog record with commitLogOffset below this had all its keys durably indexed when
   * this was written (for a sealed file: records below the one that spilled into the next file).
   */
  dispatchedEnd: number;
  /** The file is full and a newer file holds later entries: it will not change again. */
  sealed: boolean;
}

function writeLong(buf: Buffer, off: number, v: number): void {
  buf.writeBigInt64BE(BigInt(v), off);
}

function readLong(buf: Buffer, off: number): number {
  return Number(buf.readBigInt64BE(off));
}

/** The record for `cp` and the byte offset in the checkpoint file where it goes. */
export function encodeCheckpoint(cp: IndexCheckpoint): { bytes: Buffer; position: number } {
  const b = Buffer.alloc(RECORD_SIZE);
  b.writeUInt32BE(MAGIC, 0);
  b.writeUInt16BE(FORMAT_VERSION, 4);
  b.writeUInt16BE(cp.sealed ? FLAG_SEALED : 0, 6);
  b.writeUInt32BE(cp.seq >>> 0, 8);
  b.writeUInt32BE(cp.hashSlotNum, 12);
  b.writeUInt32BE(cp.indexNum, 16);
  b.writeUInt32BE(cp.indexCount, 20);
  b.writeUInt32BE(cp.hashSlotCount, 24);
  writeLong(b, 32, cp.beginTimestamp);
  writeLong(b, 40, cp.endTimestamp);
  writeLong(b, 48, cp.beginPhyOffset);
  writeLong(b, 56, cp.endPhyOffset);
  writeLong(b, 64, cp.dispatchedEnd);
  b.writeUInt32BE(crc32(b.subarray(0, CRC_OFFSET)), CRC_OFFSET);
  return { bytes: b, position: (cp.seq % 2) * COPY_STRIDE };
}

function decodeOne(b: Buffer): IndexCheckpoint | undefined {
  if (b.length < RECORD_SIZE) return undefined;
  if (b.readUInt32BE(0) !== MAGIC || b.readUInt16BE(4) !== FORMAT_VERSION) return undefined;
  if (b.readUInt32BE(CRC_OFFSET) !== crc32(b.subarray(0, CRC_OFFSET))) return undefined;
  return {
    sealed: (b.readUInt16BE(6) & FLAG_SEALED) !== 0,
    seq: b.readUInt32BE(8),
    hashSlotNum: b.readUInt32BE(12),
    indexNum: b.readUInt32BE(16),
    indexCount: b.readUInt32BE(20),
    hashSlotCount: b.readUInt32BE(24),
    beginTimestamp: readLong(b, 32),
    endTimestamp: readLong(b, 40),
    beginPhyOffset: readLong(b, 48),
    endPhyOffset: readLong(b, 56),
    dispatchedEnd: readLong(b, 64),
  };
}

/** The newest intact copy in a checkpoint file's bytes, or undefined when neither copy is intact. */
export function decodeCheckpoint(file: Buffer): IndexCheckpoint | undefined {
  const a = decodeOne(file.subarray(0, RECORD_SIZE));
  const b = decodeOne(file.subarray(COPY_STRIDE, COPY_STRIDE + RECORD_SIZE));
  if (a === undefined) return b;
  if (b === undefined) return a;
  // seq is a u32 written alternately to the two slots: the newer one is one ahead (mod 2^32).
  return (b.seq - a.seq) >>> 0 < 0x80000000 ? b : a;
}
