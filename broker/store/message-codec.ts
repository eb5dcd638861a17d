// One CommitLog record: upstream's field layout (big-endian) plus our 4-byte CRC32 trailer over every
// preceding byte of the record, so a torn or flipped header is caught, not only a bad body.
//
//   TOTALSIZE 4 | MAGICCODE 4 | BODYCRC 4 | QUEUEID 4 | FLAG 4 | QUEUEOFFSET 8 | PHYSICALOFFSET 8 |
//   SYSFLAG 4 | BORNTIMESTAMP 8 | BORNHOST 8/20 | STORETIMESTAMP 8 | STOREHOST 8/20 | RECONSUMETIMES 4 |
//   PREPARED TX OFFSET 8 | BODYLEN 4 + BODY | TOPICLEN 1 (V1) or 2 (V2) + TOPIC |
//   PROPERTIESLEN 2 + PROPERTIES | RECORDCRC 4
//
// A segment ends with a blank marker `[int remaining][int BLANK_MAGIC_CODE]` when the next record does
// not fit. Parsing never trusts a length field: every field is bounds-checked against the record and
// the segment, and anything off yields a typed "corrupt" result, never an exception.
import { crc32 } from "../../common/crc32.ts";
import type { DispatchRequest } from "./dispatch.ts";
import { bytesToIp, type HostAddress } from "./host-address.ts";
import { MessageConst } from "./message-const.ts";
import { offsetMsgIdFromRecord } from "./message-id.ts";
import { stringToProperties } from "./message-properties.ts";
import { MessageSysFlag } from "./message-sysflag.ts";
import {
  BLANK_MAGIC_CODE,
  END_FILE_MIN_BLANK_LENGTH,
  MESSAGE_MAGIC_CODE_V1,
  MESSAGE_MAGIC_CODE_V2,
  MIN_RECORD_LENGTH,
  POS_BODYCRC,
  POS_BORNHOST,
  POS_BORNTIMESTAMP,
  POS_FLAG,
  POS_MAGIC,
  POS_PHYSICALOFFSET,
  POS_QUEUEID,
  POS_QUEUEOFFSET,
  POS_SYSFLAG,
  RECORD_CRC_LENGTH,
} from "./record-layout.ts";
import { sealRecord } from "./record-seal.ts";
import { tagsString2tagsCode } from "./tags-code.ts";

export {
  BLANK_MAGIC_CODE,
  END_FILE_MIN_BLANK_LENGTH,
  MESSAGE_MAGIC_CODE_V1,
  MESSAGE_MAGIC_CODE_V2,
  MIN_RECORD_LENGTH,
  RECORD_CRC_LENGTH,
} from "./record-layout.ts";

/** PROPERTIES length is a Java short. */
export const MAX_PROPERTIES_LENGTH = 32767;
/** Longest topic (bytes) written with the V1 1-byte length; longer topics use V2. */
export const TOPIC_MAX_LENGTH_V1 = 127;
/** V2's 2-byte length. */
export const TOPIC_MAX_LENGTH_V2 = 32767;
const TWO_POW_32 = 4294967296;

export function readLong(buf: Buffer, pos: number): number {
  return buf.readInt32BE(pos) * TWO_POW_32 + buf.readUInt32BE(pos + 4);
}

/** Big-endian int64 of `v` (an integer within +-2^53) at `pos`; no bounds checks beyond the array's. */
export function writeLong(buf: Uint8Array, pos: number, v: number): void {
  const hi = Math.floor(v / TWO_POW_32);
  writeInt(buf, pos, hi);
  writeInt(buf, pos + 4, v - hi * TWO_POW_32);
}

/** Big-endian low 32 bits of `v` at `pos` (an int32 and a uint32 of the same bits are written alike). */
export function writeInt(buf: Uint8Array, pos: number, v: number): void {
  buf[pos] = v >>> 24;
  buf[pos + 1] = v >>> 16;
  buf[pos + 2] = v >>> 8;
  buf[pos + 3] = v;
}

/** Java-style body CRC: CRC32 masked to 31 bits (upstream UtilAll.crc32). */
export function bodyCrc(body: Uint8Array): number {
  return crc32(body) & 0x7fffffff;
}

/** Everything a record holds. Hosts are raw 4/16-byte addresses; lengths are UTF-8 byte counts. */
export interface RecordFields {
  queueId: number;
  flag: number;
  queueOffset: number;
  physicalOffset: number;
  /** Host-v6 bits are set by the encoder from the host lengths (see recordSysFlag). */
  sysFlag: number;
  bornTimestamp: number;
  bornHost: Uint8Array;
  bornPort: number;
  storeTimestamp: number;
  storeHost: Uint8Array;
  storePort: number;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
  body: Uint8Array;
  topic: string;
  topicLength: number;
  /**
   * PROPERTIES as [name, value, name, value, ...], written `name\u0001value\u0002` each (no separator
   * characters inside, well-formed UTF-16: put-message-prepare.ts checks).
   */
  propertyPairs: readonly string[];
  /** UTF-8 length of the PROPERTIES field. */
  propertiesLength: number;
}

/** The SYSFLAG a record is written with: the caller's flags with the host-v6 bits set from the hosts. */
export function recordSysFlag(sysFlag: number, bornHostLength: number, storeHostLength: number): number {
  let f = sysFlag & ~(MessageSysFlag.BORNHOST_V6_FLAG | MessageSysFlag.STOREHOSTADDRESS_V6_FLAG);
  if (bornHostLength === 16) f |= MessageSysFlag.BORNHOST_V6_FLAG;
  if (storeHostLength === 16) f |= MessageSysFlag.STOREHOSTADDRESS_V6_FLAG;
  return f;
}

/** Total record length for the given variable parts. */
export function calRecordLength(
  bornHostLength: number,
  storeHostLength: number,
  bodyLength: number,
  topicLength: number,
  propertiesLength: number,
): number {
  const topicLenSize = topicLength > TOPIC_MAX_LENGTH_V1 ? 2 : 1;
  return (
    POS_BORNHOST +
    bornHostLength +
    4 + // born port
    8 + // STORETIMESTAMP
    storeHostLength +
    4 + // store port
    4 + // RECONSUMETIMES
    8 + // PREPARED TX OFFSET
    4 +
    bodyLength +
    topicLenSize +
    topicLength +
    2 +
    propertiesLength +
    RECORD_CRC_LENGTH
  );
}

/** Writes an all-ASCII string at `p` (short strings: cheaper than a call into the native encoder). */
function putAscii(buf: Buffer, p: number, s: string): void {
  for (let i = 0; i < s.length; i++) buf[p + i] = s.charCodeAt(i);
}

/** Writes `s`, whose UTF-8 form is `byteLength` bytes, at `p`. */
function putString(buf: Buffer, p: number, s: string, byteLength: number): void {
  // Equal lengths mean every character is ASCII.
  if (byteLength === s.length) putAscii(buf, p, s);
  else buf.write(s, p, byteLength, "utf8");
}

/** Writes the PROPERTIES field (`length` bytes) at `p`. */
function putProperties(buf: Buffer, p: number, pairs: readonly string[], length: number): void {
  let chars = 0;
  for (let i = 0; i < pairs.length; i++) chars += (pairs[i] as string).length;
  // One separator byte follows every name and every value; equal counts mean every character is ASCII.
  const ascii = chars + pairs.length === length;
  let q = p;
  for (let i = 0; i < pairs.length; i++) {
    const s = pairs[i] as string;
    if (ascii) {
      putAscii(buf, q, s);
      q += s.length;
    } else {
      q += buf.write(s, q, "utf8");
    }
    buf[q++] = (i & 1) === 0 ? 1 : 2; // NAME_VALUE_SEPARATOR after a name, PROPERTY_SEPARATOR after a value
  }
}

/** Writes the `n` bytes of `src` at `p` (host addresses: shorter than a call into TypedArray.set). */
function putBytes(buf: Buffer, p: number, src: Uint8Array): void {
  for (let i = 0; i < src.length; i++) buf[p + i] = src[i] as number;
}

/**
 * Writes one record of `totalSize` bytes at `pos` (the caller computed totalSize with calRecordLength)
 * except its two checksums, BODYCRC and the CRC trailer: sealRecord (record-seal.ts) fills those in
 * from the bytes, before they are written anywhere.
 */
export function encodeUnsealedRecord(buf: Buffer, pos: number, totalSize: number, f: RecordFields): void {
  const v2 = f.topicLength > TOPIC_MAX_LENGTH_V1;
  const body = f.body;
  writeInt(buf, pos, totalSize);
  writeInt(buf, pos + POS_MAGIC, v2 ? MESSAGE_MAGIC_CODE_V2 : MESSAGE_MAGIC_CODE_V1);
  writeInt(buf, pos + POS_QUEUEID, f.queueId);
  writeInt(buf, pos + POS_FLAG, f.flag);
  writeLong(buf, pos + POS_QUEUEOFFSET, f.queueOffset);
  writeLong(buf, pos + POS_PHYSICALOFFSET, f.physicalOffset);
  writeInt(buf, pos + POS_SYSFLAG, recordSysFlag(f.sysFlag, f.bornHost.length, f.storeHost.length));
  writeLong(buf, pos + POS_BORNTIMESTAMP, f.bornTimestamp);
  let p = pos + POS_BORNHOST;
  putBytes(buf, p, f.bornHost);
  p += f.bornHost.length;
  writeInt(buf, p, f.bornPort);
  p += 4;
  writeLong(buf, p, f.storeTimestamp);
  p += 8;
  putBytes(buf, p, f.storeHost);
  p += f.storeHost.length;
  writeInt(buf, p, f.storePort);
  p += 4;
  writeInt(buf, p, f.reconsumeTimes);
  p += 4;
  writeLong(buf, p, f.preparedTransactionOffset);
  p += 8;
  writeInt(buf, p, body.length);
  p += 4;
  buf.set(body, p);
  p += body.length;
  if (v2) {
    buf[p] = f.topicLength >>> 8;
    buf[p + 1] = f.topicLength;
    p += 2;
  } else {
    buf[p++] = f.topicLength;
  }
  putString(buf, p, f.topic, f.topicLength);
  p += f.topicLength;
  buf[p] = f.propertiesLength >>> 8;
  buf[p + 1] = f.propertiesLength;
  p += 2;
  putProperties(buf, p, f.propertyPairs, f.propertiesLength);
}

/** Writes one whole record of `totalSize` bytes at `pos`, checksums included. */
export function encodeRecord(buf: Buffer, pos: number, totalSize: number, f: RecordFields): void {
  encodeUnsealedRecord(buf, pos, totalSize, f);
  sealRecord(buf, pos);
}

/** Writes a blank end-of-segment marker covering `remaining` bytes. */
export function encodeBlank(buf: Buffer, pos: number, remaining: number): void {
  buf.writeInt32BE(remaining, pos);
  buf.writeInt32BE(BLANK_MAGIC_CODE, pos + 4);
}

/** Where each field of a parsed record sits in its buffer. */
export interface RecordView {
  pos: number;
  size: number;
  bodyCrc: number;
  queueId: number;
  flag: number;
  queueOffset: number;
  physicalOffset: number;
  sysFlag: number;
  bornTimestamp: number;
  bornHostPos: number;
  bornHostLen: number;
  storeTimestamp: number;
  storeHostPos: number;
  storeHostLen: number;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
  bodyPos: number;
  bodyLen: number;
  topicPos: number;
  topicLen: number;
  propsPos: number;
  propsLen: number;
}

export type ParseResult =
  | { kind: "record"; view: RecordView }
  /** End-of-segment marker; `size` is the rest of the segment. */
  | { kind: "blank"; size: number }
  /** Zero TOTALSIZE and MAGIC: nothing was written here (the end of the log in a preallocated file). */
  | { kind: "end" }
  /** The buffer ends before the record does; `need` is the bytes needed from `pos`. */
  | { kind: "short"; need: number }
  | { kind: "corrupt"; reason: string };

export interface ParseOptions {
  /** Check the CRC trailer. */
  verifyCrc: boolean;
  /** Bytes from `pos` to the end of the segment (a record never crosses a segment). */
  segmentRemaining: number;
  /** The record must carry this PHYSICALOFFSET. */
  expectedOffset?: number;
}

const END: ParseResult = { kind: "end" };

function corrupt(reason: string): ParseResult {
  return { kind: "corrupt", reason };
}

/** Parses the record at `pos`; bytes are known up to `end` (exclusive). */
export function parseRecord(buf: Buffer, pos: number, end: number, opts: ParseOptions): ParseResult {
  const segRemaining = opts.segmentRemaining;
  if (segRemaining < END_FILE_MIN_BLANK_LENGTH)
    return corrupt(`only ${segRemaining} bytes left in the segment`);
  const avail = end - pos;
  if (avail < 8) return { kind: "short", need: 8 };
  const size = buf.readInt32BE(pos);
  const magic = buf.readInt32BE(pos + POS_MAGIC);
  if (size === 0 && magic === 0) return END;
  if (magic === BLANK_MAGIC_CODE) {
    if (size !== segRemaining) return corrupt(`blank marker says ${size} bytes, segment has ${segRemaining}`);
    return { kind: "blank", size };
  }
  if (magic !== MESSAGE_MAGIC_CODE_V1 && magic !== MESSAGE_MAGIC_CODE_V2) {
    return corrupt(`bad magic code 0x${(magic >>> 0).toString(16)}`);
  }
  if (size < MIN_RECORD_LENGTH) return corrupt(`record size ${size} below the minimum`);
  if (size + END_FILE_MIN_BLANK_LENGTH > segRemaining)
    return corrupt(`record size ${size} overruns the segment`);
  if (size > avail) return { kind: "short", need: size };
  const recEnd = pos + size;
  const sysFlag = buf.readInt32BE(pos + POS_SYSFLAG);
  const bornHostLen = sysFlag & MessageSysFlag.BORNHOST_V6_FLAG ? 16 : 4;
  const storeHostLen = sysFlag & MessageSysFlag.STOREHOSTADDRESS_V6_FLAG ? 16 : 4;
  const bornHostPos = pos + POS_BORNHOST;
  let p = bornHostPos + bornHostLen + 4;
  const storeTimestampPos = p;
  p += 8;
  const storeHostPos = p;
  p += storeHostLen + 4;
  const reconsumePos = p;
  p += 4;
  const prepPos = p;
  p += 8;
  // Fixed part so far plus body length, topic length, properties length and the trailer must fit.
  const v2 = magic === MESSAGE_MAGIC_CODE_V2;
  const topicLenSize = v2 ? 2 : 1;
  if (p + 4 + topicLenSize + 2 + RECORD_CRC_LENGTH > recEnd)
    return corrupt("record too short for its host fields");
  const bodyLen = buf.readInt32BE(p);
  p += 4;
  if (bodyLen < 0 || p + bodyLen + topicLenSize + 2 + RECORD_CRC_LENGTH > recEnd)
    return corrupt(`bad body length ${bodyLen}`);
  const bodyPos = p;
  p += bodyLen;
  const topicLen = v2 ? buf.readUInt16BE(p) : (buf[p] ?? 0);
  p += topicLenSize;
  if (topicLen === 0 || p + topicLen + 2 + RECORD_CRC_LENGTH > recEnd)
    return corrupt(`bad topic length ${topicLen}`);
  const topicPos = p;
  p += topicLen;
  const propsLen = buf.readInt16BE(p);
  p += 2;
  if (propsLen < 0 || p + propsLen + RECORD_CRC_LENGTH !== recEnd)
    return corrupt(`bad properties length ${propsLen}`);
  const propsPos = p;
  if (opts.verifyCrc) {
    const stored = buf.readUInt32BE(recEnd - RECORD_CRC_LENGTH);
    if (crc32(buf.subarray(pos, recEnd - RECORD_CRC_LENGTH)) !== stored)
      return corrupt("record CRC mismatch");
  }
  const physicalOffset = readLong(buf, pos + POS_PHYSICALOFFSET);
  if (opts.expectedOffset !== undefined && physicalOffset !== opts.expectedOffset) {
    return corrupt(`record says offset ${physicalOffset}, found at ${opts.expectedOffset}`);
  }
  return {
    kind: "record",
    view: {
      pos,
      size,
      bodyCrc: buf.readInt32BE(pos + POS_BODYCRC),
      queueId: buf.readInt32BE(pos + POS_QUEUEID),
      flag: buf.readInt32BE(pos + POS_FLAG),
      queueOffset: readLong(buf, pos + POS_QUEUEOFFSET),
      physicalOffset,
      sysFlag,
      bornTimestamp: readLong(buf, pos + POS_BORNTIMESTAMP),
      bornHostPos,
      bornHostLen,
      storeTimestamp: readLong(buf, storeTimestampPos),
      storeHostPos,
      storeHostLen,
      reconsumeTimes: buf.readInt32BE(reconsumePos),
      preparedTransactionOffset: readLong(buf, prepPos),
      bodyPos,
      bodyLen,
      topicPos,
      topicLen,
      propsPos,
      propsLen,
    },
  };
}

/** A message as read back from the CommitLog. `body` is a view into the read buffer, not a copy. */
export interface StoredMessage {
  topic: string;
  queueId: number;
  flag: number;
  queueOffset: number;
  commitLogOffset: number;
  storeSize: number;
  sysFlag: number;
  bodyCRC: number;
  bornTimestamp: number;
  bornHost: HostAddress;
  storeTimestamp: number;
  storeHost: HostAddress;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
  body: Uint8Array;
  properties: Map<string, string>;
  /** Offset msgId: store host + CommitLog offset. */
  msgId: string;
}

export function viewTopic(buf: Buffer, v: RecordView): string {
  return buf.toString("utf8", v.topicPos, v.topicPos + v.topicLen);
}

export function viewProperties(buf: Buffer, v: RecordView): Map<string, string> {
  return v.propsLen === 0
    ? new Map()
    : stringToProperties(buf.toString("utf8", v.propsPos, v.propsPos + v.propsLen));
}

export function viewToMessage(buf: Buffer, v: RecordView): StoredMessage {
  return {
    topic: viewTopic(buf, v),
    queueId: v.queueId,
    flag: v.flag,
    queueOffset: v.queueOffset,
    commitLogOffset: v.physicalOffset,
    storeSize: v.size,
    sysFlag: v.sysFlag,
    bodyCRC: v.bodyCrc,
    bornTimestamp: v.bornTimestamp,
    bornHost: {
      address: bytesToIp(buf, v.bornHostPos, v.bornHostLen),
      port: buf.readInt32BE(v.bornHostPos + v.bornHostLen),
    },
    storeTimestamp: v.storeTimestamp,
    storeHost: {
      address: bytesToIp(buf, v.storeHostPos, v.storeHostLen),
      port: buf.readInt32BE(v.storeHostPos + v.storeHostLen),
    },
    reconsumeTimes: v.reconsumeTimes,
    preparedTransactionOffset: v.preparedTransactionOffset,
    body: buf.subarray(v.bodyPos, v.bodyPos + v.bodyLen),
    properties: viewProperties(buf, v),
    msgId: offsetMsgIdFromRecord(buf, v.storeHostPos, v.storeHostLen + 4, v.physicalOffset),
  };
}

/** The DispatchRequest of a record: the one path by which live appends and recovery feed every index. */
export function viewToDispatchRequest(buf: Buffer, v: RecordView): DispatchRequest {
  const properties = viewProperties(buf, v);
  return {
    topic: viewTopic(buf, v),
    queueId: v.queueId,
    queueOffset: v.queueOffset,
    commitLogOffset: v.physicalOffset,
    size: v.size,
    tagsCode: tagsString2tagsCode(properties.get(MessageConst.PROPERTY_TAGS)),
    storeTimestamp: v.storeTimestamp,
    bornTimestamp: v.bornTimestamp,
    sysFlag: v.sysFlag,
    keys: properties.get(MessageConst.PROPERTY_KEYS),
    uniqKey: properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX),
    preparedTransactionOffset: v.preparedTransactionOffset,
    properties,
  };
}
