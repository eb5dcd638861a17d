// The benchmark client's hand-written requests are byte for byte what protobuf-es writes for the
// same messages, and its lenient response readers take the right fields out of what protobuf-es
// writes (whatever else the responses hold).

import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Code,
  DigestType,
  Encoding,
  MessageSchema,
  MessageType,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  AckMessageRequestSchema,
  AckMessageResponseSchema,
  ReceiveMessageResponseSchema,
  SendMessageRequestSchema,
  SendMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import {
  decodeBatchResponse,
  decodeReceiveMessageResponse,
  encodeAckMessageRequest,
  encodeSendMessageRequest,
} from "./grpc-client-wire.ts";

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: "grapheme", maxLength: 10 }),
  fc.constant(""),
);
const nowMs = fc.oneof(fc.constant(0), fc.constant(1000), fc.integer({ min: 0, max: 4_102_444_800_000 }));

function payloadOf(frame: Buffer): Buffer {
  expect(frame[0]).toBe(0);
  expect(frame.readUInt32BE(1)).toBe(frame.byteLength - 5);
  return frame.subarray(5);
}

describe("encodeSendMessageRequest", () => {
  it("writes what toBinary writes for the same messages", () => {
    fc.assert(
      fc.property(
        text,
        fc.uint8Array({ maxLength: 1500 }),
        text,
        fc.integer({ min: 1, max: 4 }),
        nowMs,
        (topic, body, bornHost, count, now) => {
          let seq = 0;
          const ids: string[] = [];
          const nextId = () => {
            const id = seq % 3 === 2 ? "" : `01AABB${seq}`;
            seq++;
            ids.push(id);
            return id;
          };
          const frame = encodeSendMessageRequest({ topic, body, bornHost, count }, now, nextId);
          const expected = create(SendMessageRequestSchema, {
            messages: ids.map((messageId) => ({
              topic: { name: topic },
              body,
              systemProperties: {
                messageId,
                messageType: MessageType.NORMAL,
                bodyEncoding: Encoding.IDENTITY,
                bornHost,
                bornTimestamp: timestampFromMs(now),
              },
            })),
          });
          expect(payloadOf(frame).equals(Buffer.from(toBinary(SendMessageRequestSchema, expected)))).toBe(
            true,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("encodeAckMessageRequest", () => {
  it("writes what toBinary writes for the same request", () => {
    fc.assert(
      fc.property(
        text,
        text,
        fc.array(fc.record({ messageId: text, receiptHandle: text }), { maxLength: 5 }),
        (g, t, e) => {
          const frame = encodeAckMessageRequest(g, t, e);
          const expected = create(AckMessageRequestSchema, {
            group: { name: g },
            topic: { name: t },
            entries: e,
          });
          expect(payloadOf(frame).equals(Buffer.from(toBinary(AckMessageRequestSchema, expected)))).toBe(
            true,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

const status = fc.record({
  code: fc.constantFrom(Code.OK, Code.BAD_REQUEST, Code.MULTIPLE_RESULTS),
  message: text,
});

describe("response readers", () => {
  it("read status and entry statuses of SendMessageResponse and AckMessageResponse", () => {
    fc.assert(
      fc.property(
        fc.option(status, { nil: undefined }),
        fc.array(fc.option(status, { nil: undefined }), { maxLength: 4 }),
        text,
        (top, entryStatuses, id) => {
          const send = create(SendMessageResponseSchema, {
            status: top,
            entries: entryStatuses.map((s) => ({
              status: s,
              messageId: id,
              offset: 123n,
              transactionId: id,
            })),
          });
          const ack = create(AckMessageResponseSchema, {
            status: top,
            entries: entryStatuses.map((s) => ({ status: s, messageId: id, receiptHandle: id })),
          });
          const normalize = (s: { code: number; message: string } | undefined) =>
            s === undefined ? undefined : { code: s.code, message: s.message };
          for (const [bytes, field] of [
            [toBinary(SendMessageResponseSchema, send), 1],
            [toBinary(AckMessageResponseSchema, ack), 3],
          ] as const) {
            const r = decodeBatchResponse(Buffer.from(bytes), field);
            expect(r.status).toEqual(normalize(top));
            expect(r.entries).toEqual(entryStatuses.map(normalize));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it("reads id, receipt handle, born time and body size of a delivered message", () => {
    const message = {
      topic: { name: "T", resourceNamespace: "ns" },
      userProperties: { a: "b" },
      body: Buffer.alloc(1024, 1),
      systemProperties: {
        tag: "x",
        keys: ["k"],
        messageId: "01ABC",
        bodyDigest: { type: DigestType.MD5, checksum: "D41D8CD98F00B204E9800998ECF8427E" },
        bornTimestamp: timestampFromMs(1_763_000_000_123),
        storeTimestamp: timestampFromMs(1_763_000_000_500),
        receiptHandle: "handle.mac",
        queueOffset: 2n ** 40n,
        deliveryAttempt: 1,
      },
    };
    const bytes = toBinary(
      ReceiveMessageResponseSchema,
      create(ReceiveMessageResponseSchema, {
        content: { case: "message", value: create(MessageSchema, message) },
      }),
    );
    expect(decodeReceiveMessageResponse(Buffer.from(bytes))).toEqual({
      kind: "message",
      message: {
        messageId: "01ABC",
        receiptHandle: "handle.mac",
        bornTimestampMs: 1_763_000_000_123,
        bodyBytes: 1024,
      },
    });
    const st = toBinary(
      ReceiveMessageResponseSchema,
      create(ReceiveMessageResponseSchema, {
        content: { case: "status", value: { code: Code.OK, message: "OK" } },
      }),
    );
    expect(decodeReceiveMessageResponse(Buffer.from(st))).toEqual({
      kind: "status",
      status: { code: Code.OK, message: "OK" },
    });
    const ts = toBinary(
      ReceiveMessageResponseSchema,
      create(ReceiveMessageResponseSchema, {
        content: { case: "deliveryTimestamp", value: timestampFromMs(5) },
      }),
    );
    expect(decodeReceiveMessageResponse(Buffer.from(ts))).toEqual({ kind: "other" });
    expect(() => decodeReceiveMessageResponse(Buffer.from([0x12, 0x05, 0x1a]))).toThrow(/malformed/);
  });
});
