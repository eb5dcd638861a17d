// Records of the Raft write-ahead log and their framing.
//
// Record (big-endian):
//   0  u32  payload length
//   4  u8   record type
//   5  u32  CRC32 (zlib.crc32) over bytes 0..5 followed by the payload
//   9  ...  payload
// Payloads:
//   Entry      u64 index, u64 term, u8 entry type, data
//   HardState  u64 term, u64 commit, vote (UTF-8, may be empty)
//   Truncate   u64 fromIndex — entries with index ≥ fromIndex are gone
// u64 values are written as two u32 halves and must be safe integers.

import { crc32 } from "node:zlib";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type Entry, EntryType, type HardState } from "../types.ts";

export const RecordType = { Entry: 1, HardState: 2, Truncate: 3 } as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_HEADER_BYTES = 9;
/** Largest payload accepted; a bigger length field is treated as garbage (a torn or corrupt header). */
export const MAX_RECORD_PAYLOAD_BYTES = 64 * 1024 * 1024;

const ENTRY_FIXED_BYTES = 17;
const HARD_STATE_FIXED_BYTES = 16;
const TRUNCATE_BYTES = 8;
const TWO_32 = 0x1_0000_0000;

export type WalRecord =
  | { type: typeof RecordType.Entry; entry: Entry }
  | { type: typeof RecordType.HardState; hardState: HardState }
  | { type: typeof RecordType.Truncate; fromIndex: number };

function putU64(buf: Buffer, pos: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0)
    throw new RmqError(ErrorCode.IllegalArgument, `not a u64 safe integer: ${v}`);
  buf.writeUInt32BE(Math.floor(v / TWO_32), pos);
  buf.writeUInt32BE(v % TWO_32, pos + 4);
}
function getU64(buf: Buffer, pos: number): number {
  const v = buf.readUInt32BE(pos) * TWO_32 + buf.readUInt32BE(pos + 4);
  if (!Number.isSafeInteger(v)) throw new RmqError(ErrorCode.CorruptRecord, `u64 beyond 2^53 at ${pos}`);
  return v;
}

function payloadBytes(r: WalRecord): number {
  switch (r.type) {
    case RecordType.Entry:
      return ENTRY_FIXED_BYTES + r.entry.data.length;
    case RecordType.HardState:
      return HARD_STATE_FIXED_BYTES + Buffer.byteLength(r.hardState.vote, "utf8");
    case RecordType.Truncate:
      return TRUNCATE_BYTES;
  }
}

/** Bytes a record takes on disk, header included. */
export function recordBytes(r: WalRecord): number {
  return RECORD_HEADER_BYTES + payloadBytes(r);
}

/** Writes `r` at `pos` of `buf` (which must have room) and returns the position after it. */
export function writeRecord(buf: Buffer, pos: number, r: WalRecord): number {
  const len = payloadBytes(r);
  if (len > MAX_RECORD_PAYLOAD_BYTES) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `WAL record of ${len} bytes exceeds ${MAX_RECORD_PAYLOAD_BYTES}`,
    );
  }
  buf.writeUInt32BE(len, pos);
  buf.writeUInt8(r.type, pos + 4);
  const p = pos + RECORD_HEADER_BYTES;
  switch (r.type) {
    case RecordType.Entry:
      putU64(buf, p, r.entry.index);
      putU64(buf, p + 8, r.entry.term);
      buf.writeUInt8(r.entry.type, p + 16);
      buf.set(r.entry.data, p + ENTRY_FIXED_BYTES);
      break;
    case RecordType.HardState:
      putU64(buf, p, r.hardState.term);
      putU64(buf, p + 8, r.hardState.commit);
      buf.write(r.hardState.vote, p + HARD_STATE_FIXED_BYTES, "utf8");
      break;
    case RecordType.Truncate:
      putU64(buf, p, r.fromIndex);
      break;
  }
  const crc = crc32(buf.subarray(p, p + len), crc32(buf.subarray(pos, pos + 5)));
  buf.writeUInt32BE(crc, pos + 5);
  return p + len;
}

/** Encodes records into one contiguous buffer (one write). */
export function encodeRecords(records: readonly WalRecord[]): Buffer {
  let total = 0;
  for (const r of records) total += recordBytes(r);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const r of records) pos = writeRecord(buf, pos, r);
  return buf;
}

function decodePayload(type: number, p: Buffer, at: number): WalRecord {
  const bad = (why: string) => new RmqError(ErrorCode.CorruptRecord, `WAL record at ${at}: ${why}`);
  switch (type) {
    case RecordType.Entry: {
      if (p.length < ENTRY_FIXED_BYTES) throw bad("short entry");
      const entryType = p.readUInt8(16);
      if (entryType !== EntryType.Normal && entryType !== EntryType.Noop)
        throw bad(`entry type ${entryType}`);
      return {
        type,
        entry: {
          index: getU64(p, 0),
          term: getU64(p, 8),
          type: entryType as EntryType,
          data: p.subarray(ENTRY_FIXED_BYTES),
        },
      };
    }
    case RecordType.HardState:
      if (p.length < HARD_STATE_FIXED_BYTES) throw bad("short hard state");
      return {
        type,
        hardState: {
          term: getU64(p, 0),
          commit: getU64(p, 8),
          vote: p.toString("utf8", HARD_STATE_FIXED_BYTES),
        },
      };
    case RecordType.Truncate:
      if (p.length !== TRUNCATE_BYTES) throw bad("bad truncate record");
      return { type, fromIndex: getU64(p, 0) };
    default:
      throw bad(`unknown record type ${type}`);
  }
}

export type TailDamage = "partial-header" | "bad-length" | "partial-record" | "bad-crc";

export interface ScanResult {
  records: Array<{ offset: number; record: WalRecord }>;
  /** Bytes of whole, CRC-valid records from the start of the buffer. */
  validBytes: number;
  /** Why scanning stopped before the end of the buffer, if it did. */
  damage: TailDamage | undefined;
}

/**
 * Reads records from the start of `buf` until the end or the first damaged record (partial header,
 * absurd length, short payload or CRC mismatch). Entry data are views into `buf`. A record whose CRC
 * matches but whose payload does not parse is not damage but a format error: it throws.
 */
export function scanRecords(buf: Buffer): ScanResult {
  const records: ScanResult["records"] = [];
  let pos = 0;
  let damage: TailDamage | undefined;
  while (pos < buf.length) {
    if (buf.length - pos < RECORD_HEADER_BYTES) {
      damage = "partial-header";
      break;
    }
    const len = buf.readUInt32BE(pos);
    if (len > MAX_RECORD_PAYLOAD_BYTES) {
      damage = "bad-length";
      break;
    }
    const end = pos + RECORD_HEADER_BYTES + len;
    if (end > buf.length) {
      damage = "partial-record";
      break;
    }
    const payload = buf.subarray(pos + RECORD_HEADER_BYTES, end);
    if (crc32(payload, crc32(buf.subarray(pos, pos + 5))) !== buf.readUInt32BE(pos + 5)) {
      damage = "bad-crc";
      break;
    }
    records.push({ offset: pos, record: decodePayload(buf.readUInt8(pos + 4), payload, pos) });
    pos = end;
  }
  return { records, validBytes: pos, damage };
}
