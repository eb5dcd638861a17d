// SendMessage on the wire without protobuf-es: the request decoded straight into the message objects
// protobuf-es would build, the response encoded straight into its gRPC frame. SendMessage is the RPC
// producers call once per message; protobuf-es fromBinary + create + toBinary were ~10 % of the
// proxy's CPU per call (its reflection walks every field of the schema, the writer grows its buffer).
//
// Exactness: the decoder produces what fromBinary(SendMessageRequestSchema) produces (same
// $typeName, the same defaults for implicit fields, optional fields only when present, map values
// in a null-prototype object, int64 as bigint, bytes as views into the request), for the fields
// producers send. Anything else — an unknown or rarely sent field (store_host, receipt_handle, ...),
// a repeated singular message (protobuf merges those), a negative or 64-bit number, invalid UTF-8, a
// wire type that does not match — makes it return undefined, and the caller decodes with protobuf-es
// as before. The encoder writes what toBinary writes (fields in number order, implicit fields only
// when not zero/empty, present messages even when empty), or returns undefined for what it does not
// handle. send-message-codec.test.ts checks both against protobuf-es over generated messages.
//
// Field numbers (proto/apache/rocketmq/v2): SendMessageRequest.messages 1; Message: topic 1
// (Resource: resource_namespace 1, name 2), user_properties 2 (map entry: key 1, value 2),
// system_properties 3, body 4; SystemProperties: tag 1, keys 2, message_id 3, body_encoding 5,
// message_type 6, born_timestamp 7, born_host 8, delivery_timestamp 11, message_group 17,
// trace_context 18, orphaned_transaction_recovery_duration 19, lite_topic 21, priority 22;
// Timestamp / Duration: seconds 1, nanos 2. SendMessageResponse: status 1 (Status: code 1,
// message 2), entries 2 (SendResultEntry: status 1, message_id 2, transaction_id 3, offset 4,
// recall_handle 5).

import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import type {
  Encoding,
  Message,
  MessageType,
  Resource,
  SystemProperties,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type {
  SendMessageRequest,
  SendMessageResponse,
  SendResultEntry,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import {
  isPlainUint,
  lenFieldSize,
  ProtoReader,
  ProtoWriter,
  readResource,
  statusSize,
  utf8Length,
  varintFieldSize,
  WIRE_LEN,
  WIRE_VARINT,
  writeStatus,
} from "./protobuf-wire.ts";

const GRPC_PREFIX_BYTES = 5;
const EMPTY_BYTES = new Uint8Array(0);

/** Tag values (field number × 8 + wire type) of the fields read here. */
const T_LEN_1 = (1 << 3) | WIRE_LEN;
const T_LEN_2 = (2 << 3) | WIRE_LEN;
const T_LEN_3 = (3 << 3) | WIRE_LEN;
const T_LEN_4 = (4 << 3) | WIRE_LEN;
const T_VARINT_1 = (1 << 3) | WIRE_VARINT;
const T_VARINT_2 = (2 << 3) | WIRE_VARINT;

// ---------------------------------------------------------------- request

/** SendMessageRequest from its encoded bytes; undefined when protobuf-es must decide (see above). */
export function decodeSendMessageRequest(payload: Buffer): SendMessageRequest | undefined {
  const r = new ProtoReader(payload, 0);
  const end = payload.byteLength;
  const messages: Message[] = [];
  while (r.pos < end) {
    if (r.uint(end) !== T_LEN_1) return undefined;
    const stop = r.lenEnd(end);
    if (stop < 0) return undefined;
    const m = readMessage(r, stop);
    if (m === undefined) return undefined;
    messages.push(m);
  }
  return { $typeName: "apache.rocketmq.v2.SendMessageRequest", messages };
}

function readMessage(r: ProtoReader, end: number): Message | undefined {
  let topic: Resource | undefined;
  let systemProperties: SystemProperties | undefined;
  let body: Uint8Array = EMPTY_BYTES;
  const userProperties: { [key: string]: string } = Object.create(null);
  while (r.pos < end) {
    const tag = r.uint(end);
    if (tag === T_LEN_1) {
      if (topic !== undefined) return undefined;
      const stop = r.lenEnd(end);
      if (stop < 0) return undefined;
      topic = readResource(r, stop);
      if (topic === undefined) return undefined;
    } else if (tag === T_LEN_2) {
      const stop = r.lenEnd(end);
      if (stop < 0 || !readMapEntry(r, stop, userProperties)) return undefined;
    } else if (tag === T_LEN_3) {
      if (systemProperties !== undefined) return undefined;
      const stop = r.lenEnd(end);
      if (stop < 0) return undefined;
      systemProperties = readSystemProperties(r, stop);
      if (systemProperties === undefined) return undefined;
    } else if (tag === T_LEN_4) {
      const bytes = r.bytes(end);
      if (bytes === undefined) return undefined;
      body = bytes;
    } else {
      return undefined;
    }
  }
  const m: Message = { $typeName: "apache.rocketmq.v2.Message", userProperties, body };
  if (topic !== undefined) m.topic = topic;
  if (systemProperties !== undefined) m.systemProperties = systemProperties;
  return m;
}

function readMapEntry(r: ProtoReader, end: number, into: { [key: string]: string }): boolean {
  let key = "";
  let value = "";
  while (r.pos < end) {
    const tag = r.uint(end);
    let s: string | undefined;
    if (tag === T_LEN_1) {
      s = r.string(end);
      if (s === undefined) return false;
      key = s;
    } else if (tag === T_LEN_2) {
      s = r.string(end);
      if (s === undefined) return false;
      value = s;
    } else {
      return false;
    }
  }
  into[key] = value;
  return true;
}

/** Timestamp or Duration (same fields); undefined for negative or 64-bit seconds, or other fields. */
function readSeconds(r: ProtoReader, end: number): { seconds: bigint; nanos: number } | undefined {
  let seconds = 0;
  let nanos = 0;
  while (r.pos < end) {
    const tag = r.uint(end);
    if (tag === T_VARINT_1) {
      seconds = r.uint(end);
      if (seconds < 0) return undefined;
    } else if (tag === T_VARINT_2) {
      nanos = r.int32(end);
      if (nanos < 0) return undefined;
    } else {
      return undefined;
    }
  }
  return { seconds: BigInt(seconds), nanos };
}

function readTimestamp(r: ProtoReader, end: number): Timestamp | undefined {
  const stop = r.lenEnd(end);
  if (stop < 0) return undefined;
  const t = readSeconds(r, stop);
  return t === undefined
    ? undefined
    : { $typeName: "google.protobuf.Timestamp", seconds: t.seconds, nanos: t.nanos };
}

function readDuration(r: ProtoReader, end: number): Duration | undefined {
  const stop = r.lenEnd(end);
  if (stop < 0) return undefined;
  const t = readSeconds(r, stop);
  return t === undefined
    ? undefined
    : { $typeName: "google.protobuf.Duration", seconds: t.seconds, nanos: t.nanos };
}

function readSystemProperties(r: ProtoReader, end: number): SystemProperties | undefined {
  const sp: SystemProperties = {
    $typeName: "apache.rocketmq.v2.SystemProperties",
    keys: [],
    messageId: "",
    bodyEncoding: 0,
    messageType: 0,
    bornHost: "",
    storeHost: "",
    queueId: 0,
  };
  let s: string | undefined;
  let n: number;
  while (r.pos < end) {
    const tag = r.uint(end);
    switch (tag) {
      case (1 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.tag = s;
        break;
      case (2 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.keys.push(s);
        break;
      case (3 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.messageId = s;
        break;
      case (5 << 3) | WIRE_VARINT:
        n = r.int32(end);
        if (n < 0) return undefined;
        sp.bodyEncoding = n as Encoding;
        break;
      case (6 << 3) | WIRE_VARINT:
        n = r.int32(end);
        if (n < 0) return undefined;
        sp.messageType = n as MessageType;
        break;
      case (7 << 3) | WIRE_LEN: {
        if (sp.bornTimestamp !== undefined) return undefined;
        const t = readTimestamp(r, end);
        if (t === undefined) return undefined;
        sp.bornTimestamp = t;
        break;
      }
      case (8 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.bornHost = s;
        break;
      case (11 << 3) | WIRE_LEN: {
        if (sp.deliveryTimestamp !== undefined) return undefined;
        const t = readTimestamp(r, end);
        if (t === undefined) return undefined;
        sp.deliveryTimestamp = t;
        break;
      }
      case (17 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.messageGroup = s;
        break;
      case (18 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.traceContext = s;
        break;
      case (19 << 3) | WIRE_LEN: {
        if (sp.orphanedTransactionRecoveryDuration !== undefined) return undefined;
        const d = readDuration(r, end);
        if (d === undefined) return undefined;
        sp.orphanedTransactionRecoveryDuration = d;
        break;
      }
      case (21 << 3) | WIRE_LEN:
        s = r.string(end);
        if (s === undefined) return undefined;
        sp.liteTopic = s;
        break;
      case (22 << 3) | WIRE_VARINT:
        n = r.int32(end);
        if (n < 0) return undefined;
        sp.priority = n;
        break;
      default:
        return undefined;
    }
  }
  return sp;
}

// ---------------------------------------------------------------- response

interface EntrySizes {
  size: number;
  statusSize: number;
  statusMessageLen: number;
  messageIdLen: number;
  transactionIdLen: number;
  recallHandleLen: number;
  offset: number;
}

/** The gRPC frame (prefix included) of a SendMessageResponse; undefined when protobuf-es must encode it. */
export function encodeSendMessageResponseFrame(response: SendMessageResponse): Buffer | undefined {
  if (response.$unknown !== undefined) return undefined;
  const status = response.status;
  const statusMessageLen = status === undefined ? 0 : utf8Length(status.message);
  const topStatusSize = status === undefined ? 0 : statusSize(status, statusMessageLen);
  if (topStatusSize < 0) return undefined;
  let size = status === undefined ? 0 : lenFieldSize(1, topStatusSize);
  const entries = response.entries;
  const sizes: EntrySizes[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as SendResultEntry;
    if (e.$unknown !== undefined) return undefined;
    const offset = Number(e.offset);
    if (!isPlainUint(offset) || BigInt(offset) !== e.offset) return undefined;
    const es = e.status;
    const esMessageLen = es === undefined ? 0 : utf8Length(es.message);
    const esSize = es === undefined ? 0 : statusSize(es, esMessageLen);
    if (esSize < 0) return undefined;
    const messageIdLen = utf8Length(e.messageId);
    const transactionIdLen = utf8Length(e.transactionId);
    const recallHandleLen = utf8Length(e.recallHandle);
    const entrySize =
      (es === undefined ? 0 : lenFieldSize(1, esSize)) +
      (messageIdLen > 0 ? lenFieldSize(2, messageIdLen) : 0) +
      (transactionIdLen > 0 ? lenFieldSize(3, transactionIdLen) : 0) +
      (offset !== 0 ? varintFieldSize(4, offset) : 0) +
      (recallHandleLen > 0 ? lenFieldSize(5, recallHandleLen) : 0);
    sizes[i] = {
      size: entrySize,
      statusSize: esSize,
      statusMessageLen: esMessageLen,
      messageIdLen,
      transactionIdLen,
      recallHandleLen,
      offset,
    };
    size += lenFieldSize(2, entrySize);
  }

  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  const w = new ProtoWriter(frame, GRPC_PREFIX_BYTES);
  if (status !== undefined) writeStatus(w, 1, status, topStatusSize, statusMessageLen);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as SendResultEntry;
    const z = sizes[i] as EntrySizes;
    w.nested(2, z.size);
    if (e.status !== undefined) writeStatus(w, 1, e.status, z.statusSize, z.statusMessageLen);
    if (z.messageIdLen > 0) w.string(2, e.messageId, z.messageIdLen);
    if (z.transactionIdLen > 0) w.string(3, e.transactionId, z.transactionIdLen);
    if (z.offset !== 0) w.uint(4, z.offset);
    if (z.recallHandleLen > 0) w.string(5, e.recallHandle, z.recallHandleLen);
  }
  // a sizing bug must never put a corrupt frame on the wire
  return w.pos === frame.byteLength ? frame : undefined;
}
