// AckMessage on the wire without protobuf-es, as send-message-codec.ts does for SendMessage (same
// exactness rules: the decoder returns what fromBinary returns or undefined, the encoder writes what
// toBinary writes or returns undefined; ack-message-codec.test.ts checks both). A consumer acks every
// message it receives, each entry carrying a ~150-character receipt handle the answer echoes back:
// protobuf-es decoding, building and encoding those entries cost about as much as the ack itself.
//
// Field numbers (proto/apache/rocketmq/v2): AckMessageRequest: group 1, topic 2 (Resource:
// resource_namespace 1, name 2), entries 3 (AckMessageEntry: message_id 1, receipt_handle 2,
// lite_topic 3); AckMessageResponse: status 1 (Status: code 1, message 2), entries 2
// (AckMessageResultEntry: message_id 1, receipt_handle 2, status 3).

import type { Resource } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type {
  AckMessageEntry,
  AckMessageRequest,
  AckMessageResponse,
  AckMessageResultEntry,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import {
  lenFieldSize,
  ProtoReader,
  ProtoWriter,
  readResource,
  statusSize,
  utf8Length,
  WIRE_LEN,
  writeStatus,
} from "./protobuf-wire.ts";

const GRPC_PREFIX_BYTES = 5;
const T_LEN_1 = (1 << 3) | WIRE_LEN;
const T_LEN_2 = (2 << 3) | WIRE_LEN;
const T_LEN_3 = (3 << 3) | WIRE_LEN;

/** AckMessageRequest from its encoded bytes; undefined when protobuf-es must decide. */
export function decodeAckMessageRequest(payload: Buffer): AckMessageRequest | undefined {
  const r = new ProtoReader(payload, 0);
  const end = payload.byteLength;
  let group: Resource | undefined;
  let topic: Resource | undefined;
  const entries: AckMessageEntry[] = [];
  while (r.pos < end) {
    const tag = r.uint(end);
    if (tag === T_LEN_1 || tag === T_LEN_2) {
      // a singular message field seen twice is merged by protobuf: leave that to protobuf-es
      if ((tag === T_LEN_1 ? group : topic) !== undefined) return undefined;
      const stop = r.lenEnd(end);
      if (stop < 0) return undefined;
      const resource = readResource(r, stop);
      if (resource === undefined) return undefined;
      if (tag === T_LEN_1) group = resource;
      else topic = resource;
    } else if (tag === T_LEN_3) {
      const stop = r.lenEnd(end);
      if (stop < 0) return undefined;
      const entry = readEntry(r, stop);
      if (entry === undefined) return undefined;
      entries.push(entry);
    } else {
      return undefined;
    }
  }
  const request: AckMessageRequest = { $typeName: "apache.rocketmq.v2.AckMessageRequest", entries };
  if (group !== undefined) request.group = group;
  if (topic !== undefined) request.topic = topic;
  return request;
}

function readEntry(r: ProtoReader, end: number): AckMessageEntry | undefined {
  const entry: AckMessageEntry = {
    $typeName: "apache.rocketmq.v2.AckMessageEntry",
    messageId: "",
    receiptHandle: "",
  };
  while (r.pos < end) {
    const tag = r.uint(end);
    const s = tag === T_LEN_1 || tag === T_LEN_2 || tag === T_LEN_3 ? r.string(end) : undefined;
    if (s === undefined) return undefined;
    if (tag === T_LEN_1) entry.messageId = s;
    else if (tag === T_LEN_2) entry.receiptHandle = s;
    else entry.liteTopic = s;
  }
  return entry;
}

interface EntrySizes {
  size: number;
  statusSize: number;
  statusMessageLen: number;
  messageIdLen: number;
  receiptHandleLen: number;
}

/** The gRPC frame (prefix included) of an AckMessageResponse; undefined when protobuf-es must encode it. */
export function encodeAckMessageResponseFrame(response: AckMessageResponse): Buffer | undefined {
  if (response.$unknown !== undefined) return undefined;
  const status = response.status;
  const statusMessageLen = status === undefined ? 0 : utf8Length(status.message);
  const topStatusSize = status === undefined ? 0 : statusSize(status, statusMessageLen);
  if (topStatusSize < 0) return undefined;
  let size = status === undefined ? 0 : lenFieldSize(1, topStatusSize);
  const entries = response.entries;
  const sizes: EntrySizes[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AckMessageResultEntry;
    if (e.$unknown !== undefined) return undefined;
    const es = e.status;
    const esMessageLen = es === undefined ? 0 : utf8Length(es.message);
    const esSize = es === undefined ? 0 : statusSize(es, esMessageLen);
    if (esSize < 0) return undefined;
    const messageIdLen = utf8Length(e.messageId);
    const receiptHandleLen = utf8Length(e.receiptHandle);
    const entrySize =
      (messageIdLen > 0 ? lenFieldSize(1, messageIdLen) : 0) +
      (receiptHandleLen > 0 ? lenFieldSize(2, receiptHandleLen) : 0) +
      (es === undefined ? 0 : lenFieldSize(3, esSize));
    sizes[i] = {
      size: entrySize,
      statusSize: esSize,
      statusMessageLen: esMessageLen,
      messageIdLen,
      receiptHandleLen,
    };
    size += lenFieldSize(2, entrySize);
  }

  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  const w = new ProtoWriter(frame, GRPC_PREFIX_BYTES);
  if (status !== undefined) writeStatus(w, 1, status, topStatusSize, statusMessageLen);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as AckMessageResultEntry;
    const z = sizes[i] as EntrySizes;
    w.nested(2, z.size);
    if (z.messageIdLen > 0) w.string(1, e.messageId, z.messageIdLen);
    if (z.receiptHandleLen > 0) w.string(2, e.receiptHandle, z.receiptHandleLen);
    if (e.status !== undefined) writeStatus(w, 3, e.status, z.statusSize, z.statusMessageLen);
  }
  // a sizing bug must never put a corrupt frame on the wire
  return w.pos === frame.byteLength ? frame : undefined;
}
