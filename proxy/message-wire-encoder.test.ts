// The hand-written ReceiveMessageResponse encoder against protobuf-es: for generated popped messages
// (every optional field on and off, unicode, empty strings, reserved and user properties, large
// offsets and timestamps) the frame must be byte-for-byte the gRPC frame of toBinary() of the
// message v2MessageFromPopped builds, and decode back to it.

import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Code, DigestType } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type ReceiveMessageResponse,
  ReceiveMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { MessageProperty, type PoppedMessage } from "./backend.ts";
import { BodyDigestFormat } from "./body-digest.ts";
import { deliveredMessage, v2Message, v2MessageFromPopped } from "./message-converter.ts";
import {
  encodeDeliveryTimestampFrame,
  encodeReceivedMessageFrame,
  encodeReceiveStatusFrame,
} from "./message-wire-encoder.ts";

function protobufEsFrame(popped: PoppedMessage, namespace: string): Buffer {
  const response = create(ReceiveMessageResponseSchema, {
    content: { case: "message", value: v2MessageFromPopped(popped, { namespace }) },
  });
  const payload = toBinary(ReceiveMessageResponseSchema, response);
  const frame = Buffer.alloc(5 + payload.byteLength);
  frame.writeUInt32BE(payload.byteLength, 1);
  frame.set(payload, 5);
  return frame;
}

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constant(""),
);
const optionalProperty = (name: string, value: fc.Arbitrary<string>) =>
  fc.option(value, { nil: undefined }).map((v) => (v === undefined ? {} : { [name]: v }));

const popped: fc.Arbitrary<PoppedMessage> = fc
  .record({
    topic: fc.stringMatching(/^[A-Za-z0-9_%-]{1,30}$/),
    brokerName: fc.constant("broker-a"),
    queueId: fc.integer({ min: 0, max: 0x7fff_ffff }),
    queueOffset: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.maxSafeNat()),
    body: fc.uint8Array({ maxLength: 3000 }),
    userProperties: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), text, { maxKeys: 6 }),
    tag: optionalProperty(MessageProperty.TAGS, text),
    keys: optionalProperty(
      MessageProperty.KEYS,
      fc.array(text, { maxLength: 4 }).map((k) => k.join(" ")),
    ),
    uniq: optionalProperty(MessageProperty.UNIQ_KEY, text),
    group: optionalProperty(MessageProperty.SHARDING_KEY, text),
    trace: optionalProperty(MessageProperty.TRACE_CONTEXT, text),
    lite: optionalProperty(MessageProperty.LITE_TOPIC, text),
    priority: optionalProperty(
      MessageProperty.PRIORITY,
      fc.oneof(fc.integer({ min: 0, max: 0x7fff_ffff }), fc.constant(-1)).map(String),
    ),
    deliverAt: optionalProperty(
      MessageProperty.TIMER_DELIVER_MS,
      fc.integer({ min: 0, max: 4_102_444_800_000 }).map(String),
    ),
    dlq: fc.option(fc.tuple(text, text), { nil: undefined }),
    transient: fc.boolean(),
    bornTimestamp: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4_102_444_800_000 })),
    bornHost: text,
    storeTimestamp: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    storeHost: text,
    receiptHandle: text,
    deliveryAttempt: fc.integer({ min: 0, max: 100 }),
    invisibleTimeMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 43_200_000 })),
  })
  .map((r) => ({
    topic: r.topic,
    brokerName: r.brokerName,
    queueId: r.queueId,
    queueOffset: r.queueOffset,
    body: r.body,
    properties: {
      ...r.userProperties,
      ...r.tag,
      ...r.keys,
      ...r.uniq,
      ...r.group,
      ...r.trace,
      ...r.lite,
      ...r.priority,
      ...r.deliverAt,
      ...(r.dlq === undefined
        ? {}
        : {
            [MessageProperty.DLQ_ORIGIN_TOPIC]: r.dlq[0],
            [MessageProperty.DLQ_ORIGIN_MESSAGE_ID]: r.dlq[1],
          }),
      ...(r.transient ? { "__RMQ.TRANSIENT.X": "hidden" } : {}),
    },
    bornTimestamp: r.bornTimestamp,
    bornHost: r.bornHost,
    storeTimestamp: r.storeTimestamp,
    storeHost: r.storeHost,
    receiptHandle: r.receiptHandle,
    deliveryAttempt: r.deliveryAttempt,
    invisibleTimeMs: r.invisibleTimeMs,
  }));

describe("ReceiveMessageResponse wire encoder", () => {
  it("writes the CRC32 digests byte-exact too (type CRC32, the SDK's checksum string)", () => {
    fc.assert(
      fc.property(
        popped,
        fc.constantFrom(BodyDigestFormat.CRC32_DECIMAL, BodyDigestFormat.CRC32_UPPER_HEX),
        (p, digestFormat) => {
          const delivered = deliveredMessage(p, { namespace: "", digestFormat });
          expect(delivered.bodyDigest.type).toBe(DigestType.CRC32);
          const frame = encodeReceivedMessageFrame(delivered);
          const expected = toBinary(
            ReceiveMessageResponseSchema,
            create(ReceiveMessageResponseSchema, {
              content: { case: "message", value: v2Message(delivered) },
            }),
          );
          expect(Buffer.compare((frame as Buffer).subarray(5), Buffer.from(expected))).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("writes exactly the bytes protobuf-es writes, which decode to the same message", () => {
    fc.assert(
      fc.property(popped, fc.constantFrom("", "ns1", "名前空間"), (p, namespace) => {
        const frame = encodeReceivedMessageFrame(deliveredMessage(p, { namespace }));
        expect(frame).toBeDefined();
        const expected = protobufEsFrame(p, namespace);
        expect(Buffer.compare(frame as Buffer, expected)).toBe(0);
        const decoded: ReceiveMessageResponse = fromBinary(
          ReceiveMessageResponseSchema,
          (frame as Buffer).subarray(5),
        );
        expect(decoded.content.case).toBe("message");
        expect(decoded).toEqual(fromBinary(ReceiveMessageResponseSchema, expected.subarray(5)));
      }),
      { numRuns: 300 },
    );
  });

  it("leaves numbers it does not handle (negative, fractional) to protobuf-es", () => {
    const base: PoppedMessage = {
      topic: "T",
      brokerName: "b",
      queueId: 1,
      queueOffset: 2,
      body: new Uint8Array([1, 2, 3]),
      properties: { UNIQ_KEY: "id" },
      bornTimestamp: 1,
      bornHost: "h",
      storeTimestamp: 2,
      storeHost: "s",
      receiptHandle: "r",
      deliveryAttempt: 1,
      invisibleTimeMs: 10_000,
    };
    expect(encodeReceivedMessageFrame(deliveredMessage(base, { namespace: "" }))).toBeDefined();
    expect(
      encodeReceivedMessageFrame(deliveredMessage({ ...base, bornTimestamp: -5 }, { namespace: "" })),
    ).toBeUndefined();
    expect(
      encodeReceivedMessageFrame(
        deliveredMessage({ ...base, properties: { TIMER_DELIVER_MS: "1.5" } }, { namespace: "" }),
      ),
    ).toBeUndefined();
  });
});

describe("ReceiveMessageResponse status and delivery_timestamp frames", () => {
  const frameOf = (response: ReceiveMessageResponse): Buffer => {
    const payload = toBinary(ReceiveMessageResponseSchema, response);
    const frame = Buffer.alloc(5 + payload.byteLength);
    frame.writeUInt32BE(payload.byteLength, 1);
    frame.set(payload, 5);
    return frame;
  };

  it("writes what toBinary writes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0x7fff_ffff }), text, (code, message) => {
        const expected = frameOf(
          create(ReceiveMessageResponseSchema, {
            content: { case: "status", value: { code: code as Code, message } },
          }),
        );
        expect(Buffer.compare(encodeReceiveStatusFrame(code, message) as Buffer, expected)).toBe(0);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4_102_444_800_000 })), (ms) => {
        const expected = frameOf(
          create(ReceiveMessageResponseSchema, {
            content: { case: "deliveryTimestamp", value: timestampFromMs(ms) },
          }),
        );
        expect(Buffer.compare(encodeDeliveryTimestampFrame(ms) as Buffer, expected)).toBe(0);
      }),
      { numRuns: 200 },
    );
    expect(encodeReceiveStatusFrame(-1, "x")).toBeUndefined();
    expect(encodeDeliveryTimestampFrame(-1)).toBeUndefined();
  });
});
