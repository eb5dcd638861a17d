// Compact binary encoding of Raft messages for the transport (raft/transport.ts). Many messages go
// in one frame; entry and snapshot payloads are decoded as views into the frame (no copies).
//
// Frame (big-endian):  u32 message count, then each message:
//   u8  type (index in MESSAGE_TYPES)
//   u8  flags: bit 0 reject, bit 1 has snapshot, bit 2 has context
//   str from, str to                       str = u16 byte length + UTF-8
//   u64 term, index, logTerm, commit, rejectHint   (u64 = two u32 halves, safe integers only)
//   u32 entry count, then per entry: u64 term, u64 index, u8 type, u32 length, data
//   [snapshot]  u64 index, u64 term, u16 voter count, str voters..., u32 length, data
//   [context]   u32 length, bytes

import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Entry, type EntryType, type Message, MessageType, type Snapshot } from "./types.ts";

/** Wire ids of the message types: the position in this list. Append only. */
const MESSAGE_TYPES: readonly MessageType[] = [
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Propose,
  MessageType.PreVote,
  MessageType.PreVoteResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.App,
  MessageType.AppResp,
  MessageType.Heartbeat,
  MessageType.HeartbeatResp,
  MessageType.Snap,
  MessageType.SnapStatus,
  MessageType.Unreachable,
  MessageType.ReadIndex,
  MessageType.ReadIndexResp,
  MessageType.TransferLeader,
  MessageType.TimeoutNow,
];
const TYPE_ID = new Map<MessageType, number>(MESSAGE_TYPES.map((t, i) => [t, i]));

const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const FLAG_CONTEXT = 4;
const TWO_32 = 0x1_0000_0000;
const MESSAGE_FIXED_BYTES = 1 + 1 + 2 + 2 + 5 * 8 + 4;
const ENTRY_FIXED_BYTES = 8 + 8 + 1 + 4;

const decoder = new TextDecoder("utf-8", { fatal: true });

function strBytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function messageBytes(m: Message): number {
  let n = MESSAGE_FIXED_BYTES + strBytes(m.from) + strBytes(m.to);
  for (const e of m.entries) n += ENTRY_FIXED_BYTES + e.data.byteLength;
  if (m.snapshot !== undefined) {
    n += 8 + 8 + 2 + 4 + m.snapshot.data.byteLength;
    for (const v of m.snapshot.metadata.voters) n += 2 + strBytes(v);
  }
  if (m.context !== undefined) n += 4 + m.context.byteLength;
  return n;
}

class Writer {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new RmqError(ErrorCode.IllegalArgument, `raft message field is not a u64 safe integer: ${v}`);
    }
    this.buf.writeUInt32BE(Math.floor(v / TWO_32), this.pos);
    this.buf.writeUInt32BE(v % TWO_32, this.pos + 4);
    this.pos += 8;
  }
  str(s: string): void {
    const n = this.buf.write(s, this.pos + 2, "utf8");
    if (n > 0xffff)
      throw new RmqError(ErrorCode.IllegalArgument, "raft message string longer than 65535 bytes");
    this.buf.writeUInt16BE(n, this.pos);
    this.pos += 2 + n;
  }
  bytes(b: Uint8Array): void {
    this.u32(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }
}

class Reader {
  private readonly buf: Uint8Array;
  private readonly dv: DataView;
  pos = 0;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) {
      throw new RmqError(
        ErrorCode.CorruptRecord,
        `raft frame truncated at byte ${this.pos} (need ${n} more)`,
      );
    }
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }
  u16(): number {
    this.need(2);
    const v = this.dv.getUint16(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8);
    const v = this.dv.getUint32(this.pos) * TWO_32 + this.dv.getUint32(this.pos + 4);
    if (!Number.isSafeInteger(v))
      throw new RmqError(ErrorCode.CorruptRecord, `raft frame: u64 beyond 2^53 at ${this.pos}`);
    this.pos += 8;
    return v;
  }
  str(): string {
    const n = this.u16();
    this.need(n);
    const s = decoder.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  get done(): boolean {
    return this.pos === this.buf.byteLength;
  }
}

/** Encodes messages into one frame. */
export function encodeRaftMessages(messages: readonly Message[]): Uint8Array {
  let size = 4;
  for (const m of messages) size += messageBytes(m);
  const w = new Writer(size);
  w.u32(messages.length);
  for (const m of messages) {
    const type = TYPE_ID.get(m.type);
    if (type === undefined)
      throw new RmqError(ErrorCode.IllegalArgument, `unknown raft message type ${m.type}`);
    w.u8(type);
    w.u8(
      (m.reject ? FLAG_REJECT : 0) |
        (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0) |
        (m.context !== undefined ? FLAG_CONTEXT : 0),
    );
    w.str(m.from);
    w.str(m.to);
    w.u64(m.term);
    w.u64(m.index);
    w.u64(m.logTerm);
    w.u64(m.commit);
    w.u64(m.rejectHint);
    w.u32(m.entries.length);
    for (const e of m.entries) {
      w.u64(e.term);
      w.u64(e.index);
      w.u8(e.type);
      w.bytes(e.data);
    }
    if (m.snapshot !== undefined) {
      const { metadata, data } = m.snapshot;
      w.u64(metadata.index);
      w.u64(metadata.term);
      w.u16(metadata.voters.length);
      for (const v of metadata.voters) w.str(v);
      w.bytes(data);
    }
    if (m.context !== undefined) w.bytes(m.context);
  }
  if (w.pos !== size) throw new RmqError(ErrorCode.Internal, `raft frame size ${w.pos} != computed ${size}`);
  return w.buf;
}

/** Decodes a frame. Entry, snapshot and context bytes are views into `frame`. */
export function decodeRaftMessages(frame: Uint8Array): Message[] {
  const r = new Reader(frame);
  const count = r.u32();
  const out: Message[] = [];
  for (let i = 0; i < count; i++) {
    const typeId = r.u8();
    const type = MESSAGE_TYPES[typeId];
    if (type === undefined)
      throw new RmqError(ErrorCode.CorruptRecord, `raft frame: unknown message type id ${typeId}`);
    const flags = r.u8();
    const from = r.str();
    const to = r.str();
    const term = r.u64();
    const index = r.u64();
    const logTerm = r.u64();
    const commit = r.u64();
    const rejectHint = r.u64();
    const n = r.u32();
    const entries: Entry[] = new Array(n);
    for (let k = 0; k < n; k++) {
      const eTerm = r.u64();
      const eIndex = r.u64();
      const eType = r.u8();
      if (eType !== 0 && eType !== 1)
        throw new RmqError(ErrorCode.CorruptRecord, `raft frame: unknown entry type ${eType}`);
      entries[k] = { term: eTerm, index: eIndex, type: eType as EntryType, data: r.bytes() };
    }
    const m: Message = {
      type,
      from,
      to,
      term,
      index,
      logTerm,
      entries,
      commit,
      reject: (flags & FLAG_REJECT) !== 0,
      rejectHint,
    };
    if ((flags & FLAG_SNAPSHOT) !== 0) {
      const sIndex = r.u64();
      const sTerm = r.u64();
      const nv = r.u16();
      const voters: string[] = [];
      for (let k = 0; k < nv; k++) voters.push(r.str());
      const snapshot: Snapshot = { metadata: { index: sIndex, term: sTerm, voters }, data: r.bytes() };
      m.snapshot = snapshot;
    }
    if ((flags & FLAG_CONTEXT) !== 0) m.context = r.bytes();
    out.push(m);
  }
  if (!r.done)
    throw new RmqError(ErrorCode.CorruptRecord, `raft frame: ${frame.byteLength - r.pos} trailing bytes`);
  return out;
}

/** Encoded size of one message (for batching limits). */
export function raftMessageBytes(m: Message): number {
  return messageBytes(m);
}
