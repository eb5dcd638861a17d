// The wire bytes of the benchmark client's hot calls (SendMessage, ReceiveMessage, AckMessage),
// written and read by hand so that the load generator, which shares the box's cores with the proxy,
// spends its CPU on HTTP/2 rather than on protobuf-es reflection and garbage (protobuf-es encoding a
// 1 KiB SendMessageRequest and decoding its answer were about a third of the client's CPU per call).
//
// Requests are written exactly as toBinary writes them (grpc-client-wire.test.ts checks that), so
// the proxy sees the bytes an SDK would send. Responses are read leniently, like any protobuf reader:
// the few fields the benchmark counts are taken, every other field is skipped by its wire type;
// malformed bytes throw.
//
// Field numbers (proto/apache/rocketmq/v2): SendMessageRequest.messages 1; Message: topic 1
// (Resource: resource_namespace 1, name 2), system_properties 3, body 4; SystemProperties:
// message_id 3, body_encoding 5, message_type 6, born_timestamp 7 (Timestamp: seconds 1, nanos 2),
// born_host 8, receipt_handle 12; Status: code 1, message 2; SendMessageResponse: status 1, entries
// 2 (SendResultEntry: status 1); ReceiveMessageResponse: status 1, message 2, delivery_timestamp 3;
// AckMessageRequest: group 1, topic 2, entries 3 (AckMessageEntry: message_id 1, receipt_handle 2);
// AckMessageResponse: status 1, entries 2 (AckMessageResultEntry: status 3).

import { lenFieldSize, ProtoWriter, utf8Length, varintFieldSize } from "../proxy/protobuf-wire.ts";

/** Bytes of the gRPC message prefix: compressed flag + 4-byte big-endian length. */
export const GRPC_PREFIX_BYTES = 5;
const MS_PER_SECOND = 1000;
const NANOS_PER_MS = 1_000_000;
/** v2 Encoding.IDENTITY and MessageType.NORMAL. */
const ENCODING_IDENTITY = 1;
const MESSAGE_TYPE_NORMAL = 1;

/** A length-prefixed gRPC frame around `size` payload bytes, and a writer at its payload. */
function frameWriter(size: number): ProtoWriter {
  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  return new ProtoWriter(frame, GRPC_PREFIX_BYTES);
}

function finish(w: ProtoWriter): Buffer {
  if (w.pos !== w.buf.byteLength) throw new Error(`encoder wrote ${w.pos} of ${w.buf.byteLength} bytes`);
  return w.buf;
}

// ---------------------------------------------------------------- SendMessageRequest

/** What one benchmark producer sends: NORMAL messages of one topic, one shared body. */
export interface SendTemplate {
  topic: string;
  body: Uint8Array;
  bornHost: string;
  /** Messages per request. */
  count: number;
}

/**
 * The frame of SendMessageRequest{messages: count × Message{topic: {name}, system_properties:
 * {message_id, body_encoding: IDENTITY, message_type: NORMAL, born_timestamp, born_host}, body}},
 * each message with the next id of `nextId` and born at `nowMs` (a non-negative integer).
 */
export function encodeSendMessageRequest(t: SendTemplate, nowMs: number, nextId: () => string): Buffer {
  const seconds = Math.floor(nowMs / MS_PER_SECOND);
  const nanos = (nowMs - seconds * MS_PER_SECOND) * NANOS_PER_MS;
  const timestampSize =
    (seconds !== 0 ? varintFieldSize(1, seconds) : 0) + (nanos !== 0 ? varintFieldSize(2, nanos) : 0);
  const topicLen = utf8Length(t.topic);
  const resourceSize = topicLen > 0 ? lenFieldSize(2, topicLen) : 0;
  const bornHostLen = utf8Length(t.bornHost);
  const ids: string[] = new Array(t.count);
  const idLens: number[] = new Array(t.count);
  const systemSizes: number[] = new Array(t.count);
  const messageSizes: number[] = new Array(t.count);
  const bodyLen = t.body.byteLength;
  let size = 0;
  for (let i = 0; i < t.count; i++) {
    const id = nextId();
    const idLen = utf8Length(id);
    ids[i] = id;
    idLens[i] = idLen;
    const systemSize =
      (idLen > 0 ? lenFieldSize(3, idLen) : 0) +
      varintFieldSize(5, ENCODING_IDENTITY) +
      varintFieldSize(6, MESSAGE_TYPE_NORMAL) +
      lenFieldSize(7, timestampSize) +
      (bornHostLen > 0 ? lenFieldSize(8, bornHostLen) : 0);
    systemSizes[i] = systemSize;
    const messageSize =
      lenFieldSize(1, resourceSize) +
      lenFieldSize(3, systemSize) +
      (bodyLen > 0 ? lenFieldSize(4, bodyLen) : 0);
    messageSizes[i] = messageSize;
    size += lenFieldSize(1, messageSize);
  }
  const w = frameWriter(size);
  for (let i = 0; i < t.count; i++) {
    w.nested(1, messageSizes[i] as number);
    w.nested(1, resourceSize);
    if (topicLen > 0) w.string(2, t.topic, topicLen);
    w.nested(3, systemSizes[i] as number);
    const idLen = idLens[i] as number;
    if (idLen > 0) w.string(3, ids[i] as string, idLen);
    w.uint(5, ENCODING_IDENTITY);
    w.uint(6, MESSAGE_TYPE_NORMAL);
    w.nested(7, timestampSize);
    if (seconds !== 0) w.uint(1, seconds);
    if (nanos !== 0) w.uint(2, nanos);
    if (bornHostLen > 0) w.string(8, t.bornHost, bornHostLen);
    if (bodyLen > 0) w.bytes(4, t.body);
  }
  return finish(w);
}

// ---------------------------------------------------------------- AckMessageRequest

export interface AckEntry {
  messageId: string;
  receiptHandle: string;
}

function resourceSize(nameLen: number): number {
  return nameLen > 0 ? lenFieldSize(2, nameLen) : 0;
}

/** The frame of AckMessageRequest{group: {name}, topic: {name}, entries}. */
export function encodeAckMessageRequest(group: string, topic: string, entries: readonly AckEntry[]): Buffer {
  const groupLen = utf8Length(group);
  const topicLen = utf8Length(topic);
  const lens: number[] = new Array(entries.length * 3);
  let size = lenFieldSize(1, resourceSize(groupLen)) + lenFieldSize(2, resourceSize(topicLen));
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AckEntry;
    const idLen = utf8Length(e.messageId);
    const handleLen = utf8Length(e.receiptHandle);
    const entrySize =
      (idLen > 0 ? lenFieldSize(1, idLen) : 0) + (handleLen > 0 ? lenFieldSize(2, handleLen) : 0);
    lens[3 * i] = idLen;
    lens[3 * i + 1] = handleLen;
    lens[3 * i + 2] = entrySize;
    size += lenFieldSize(3, entrySize);
  }
  const w = frameWriter(size);
  w.nested(1, resourceSize(groupLen));
  if (groupLen > 0) w.string(2, group, groupLen);
  w.nested(2, resourceSize(topicLen));
  if (topicLen > 0) w.string(2, topic, topicLen);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AckEntry;
    w.nested(3, lens[3 * i + 2] as number);
    const idLen = lens[3 * i] as number;
    const handleLen = lens[3 * i + 1] as number;
    if (idLen > 0) w.string(1, e.messageId, idLen);
    if (handleLen > 0) w.string(2, e.receiptHandle, handleLen);
  }
  return finish(w);
}

// ---------------------------------------------------------------- responses

/** A v2 Status as the benchmark reads it. */
export interface WireStatus {
  code: number;
  message: string;
}

/** SendMessageResponse or AckMessageResponse: the call's status and each entry's. */
export interface BatchResponse {
  status: WireStatus | undefined;
  entries: Array<WireStatus | undefined>;
}

/** What the consumer benchmark needs of a delivered message. */
export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  /** Epoch ms; undefined when the message carries no born timestamp. */
  bornTimestampMs: number | undefined;
  bodyBytes: number;
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function malformed(what: string): Error {
  return new Error(`malformed ${what}`);
}

/** A lenient protobuf reader over one buffer: unknown fields are skipped, malformed input throws. */
class Reader {
  readonly buf: Buffer;
  pos: number;

  constructor(buf: Buffer, pos: number) {
    this.buf = buf;
    this.pos = pos;
  }

  /** A varint as a number (exact below 2^53; larger values lose precision, which nothing here reads). */
  varint(end: number): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw malformed("varint");
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw malformed("varint");
  }

  /** End of the length-delimited value starting here. */
  lenEnd(end: number): number {
    const len = this.varint(end);
    if (len > end - this.pos) throw malformed("length");
    return this.pos + len;
  }

  string(end: number): string {
    const stop = this.lenEnd(end);
    const s = this.buf.toString("utf8", this.pos, stop);
    this.pos = stop;
    return s;
  }

  skip(wire: number, end: number): void {
    if (wire === WIRE_VARINT) this.varint(end);
    else if (wire === WIRE_LEN) this.pos = this.lenEnd(end);
    else if (wire === WIRE_I64) this.pos += 8;
    else if (wire === WIRE_I32) this.pos += 4;
    else throw malformed(`wire type ${wire}`);
    if (this.pos > end) throw malformed("field");
  }
}

function readStatus(r: Reader, end: number): WireStatus {
  const status: WireStatus = { code: 0, message: "" };
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === ((1 << 3) | WIRE_VARINT)) status.code = r.varint(end);
    else if (tag === ((2 << 3) | WIRE_LEN)) status.message = r.string(end);
    else r.skip(tag & 7, end);
  }
  return status;
}

/**
 * SendMessageResponse or AckMessageResponse (status = 1, entries = 2); `entryStatusField` is the
 * Status field of an entry (SendResultEntry 1, AckMessageResultEntry 3).
 */
export function decodeBatchResponse(payload: Buffer, entryStatusField: number): BatchResponse {
  const r = new Reader(payload, 0);
  const end = payload.byteLength;
  const out: BatchResponse = { status: undefined, entries: [] };
  const entryStatusTag = (entryStatusField << 3) | WIRE_LEN;
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === ((1 << 3) | WIRE_LEN)) {
      out.status = readStatus(r, r.lenEnd(end));
    } else if (tag === ((2 << 3) | WIRE_LEN)) {
      const stop = r.lenEnd(end);
      let status: WireStatus | undefined;
      while (r.pos < stop) {
        const t = r.varint(stop);
        if (t === entryStatusTag) status = readStatus(r, r.lenEnd(stop));
        else r.skip(t & 7, stop);
      }
      out.entries.push(status);
    } else {
      r.skip(tag & 7, end);
    }
  }
  return out;
}

function readTimestampMs(r: Reader, end: number): number {
  let seconds = 0;
  let nanos = 0;
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === ((1 << 3) | WIRE_VARINT)) seconds = r.varint(end);
    else if (tag === ((2 << 3) | WIRE_VARINT)) nanos = r.varint(end);
    else r.skip(tag & 7, end);
  }
  return seconds * MS_PER_SECOND + Math.floor(nanos / NANOS_PER_MS);
}

function readReceivedMessage(r: Reader, end: number): ReceivedMessage {
  const m: ReceivedMessage = { messageId: "", receiptHandle: "", bornTimestampMs: undefined, bodyBytes: 0 };
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === ((3 << 3) | WIRE_LEN)) {
      const stop = r.lenEnd(end);
      while (r.pos < stop) {
        const t = r.varint(stop);
        if (t === ((3 << 3) | WIRE_LEN)) m.messageId = r.string(stop);
        else if (t === ((7 << 3) | WIRE_LEN)) m.bornTimestampMs = readTimestampMs(r, r.lenEnd(stop));
        else if (t === ((12 << 3) | WIRE_LEN)) m.receiptHandle = r.string(stop);
        else r.skip(t & 7, stop);
      }
    } else if (tag === ((4 << 3) | WIRE_LEN)) {
      const stop = r.lenEnd(end);
      m.bodyBytes = stop - r.pos;
      r.pos = stop;
    } else {
      r.skip(tag & 7, end);
    }
  }
  return m;
}

/** One ReceiveMessageResponse: its status, its message, or neither (delivery_timestamp). */
export type ReceiveResponse =
  | { kind: "status"; status: WireStatus }
  | { kind: "message"; message: ReceivedMessage }
  | { kind: "other" };

export function decodeReceiveMessageResponse(payload: Buffer): ReceiveResponse {
  const r = new Reader(payload, 0);
  const end = payload.byteLength;
  let out: ReceiveResponse = { kind: "other" };
  while (r.pos < end) {
    const tag = r.varint(end);
    if (tag === ((1 << 3) | WIRE_LEN)) out = { kind: "status", status: readStatus(r, r.lenEnd(end)) };
    else if (tag === ((2 << 3) | WIRE_LEN))
      out = { kind: "message", message: readReceivedMessage(r, r.lenEnd(end)) };
    else r.skip(tag & 7, end);
  }
  return out;
}
