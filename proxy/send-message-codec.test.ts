// The hand-written SendMessage codec against protobuf-es: for generated requests (every field a
// producer sends on and off, unicode, empty strings, large numbers, fields the decoder leaves to
// protobuf-es) the decoder returns exactly what fromBinary returns, or undefined; for arbitrary
// bytes it never returns something fromBinary would not; generated responses encode byte for byte
// as toBinary encodes them.

import { create, equals, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Code, type MessageSchema } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  SendMessageRequestSchema,
  SendMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { decodeSendMessageRequest, encodeSendMessageResponseFrame } from "./send-message-codec.ts";

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ minLength: 60, maxLength: 200 }),
  fc.constant(""),
);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const uint31 = fc.oneof(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 0x7fff_ffff }));
const int32 = fc.oneof(uint31, fc.integer({ min: -0x8000_0000, max: -1 }));
const seconds = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 40n }),
  fc.bigInt({ min: 2n ** 53n - 2n, max: 2n ** 53n + 2n }),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const time = fc.record({ seconds, nanos: int32 });

/** A producer's message; `rare` adds fields the decoder leaves to protobuf-es. */
const message = (rare: boolean): fc.Arbitrary<MessageInitShape<typeof MessageSchema>> =>
  fc.record(
    {
      topic: opt(fc.record({ resourceNamespace: text, name: text })),
      userProperties: fc.dictionary(text, text, { maxKeys: 5 }),
      body: fc.oneof(fc.uint8Array({ maxLength: 2000 }), fc.constant(new Uint8Array(0))),
      systemProperties: opt(
        fc.record(
          {
            tag: opt(text),
            keys: fc.array(text, { maxLength: 3 }),
            messageId: text,
            bodyEncoding: fc.oneof(fc.constantFrom(0, 1, 2), int32),
            messageType: fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 5, 6), int32),
            bornTimestamp: opt(time),
            bornHost: text,
            deliveryTimestamp: opt(time),
            messageGroup: opt(text),
            traceContext: opt(text),
            orphanedTransactionRecoveryDuration: opt(time),
            liteTopic: opt(text),
            priority: opt(int32),
            ...(rare
              ? {
                  storeHost: text,
                  queueId: int32,
                  receiptHandle: opt(text),
                  deliveryAttempt: opt(int32),
                  bodyDigest: opt(fc.record({ type: fc.constantFrom(0, 1, 2), checksum: text })),
                }
              : {}),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  ) as unknown as fc.Arbitrary<MessageInitShape<typeof MessageSchema>>;

const request = (rare: boolean) =>
  fc.array(message(rare), { maxLength: 4 }).map((messages) => create(SendMessageRequestSchema, { messages }));

function decodeBoth(bytes: Uint8Array) {
  const buffer = Buffer.from(bytes);
  let expected: ReturnType<typeof fromBinary<typeof SendMessageRequestSchema>> | undefined;
  try {
    expected = fromBinary(SendMessageRequestSchema, buffer);
  } catch {
    expected = undefined;
  }
  return { expected, actual: decodeSendMessageRequest(buffer) };
}

describe("decodeSendMessageRequest", () => {
  it("decodes what producers send exactly as protobuf-es does", () => {
    let decoded = 0;
    fc.assert(
      fc.property(request(false), (req) => {
        const { expected, actual } = decodeBoth(toBinary(SendMessageRequestSchema, req));
        if (actual === undefined) return;
        decoded++;
        expect(expected).toBeDefined();
        expect(actual).toEqual(expected);
        expect(equals(SendMessageRequestSchema, actual, expected as typeof actual)).toBe(true);
      }),
      { numRuns: 500 },
    );
    // negative numbers and 64-bit seconds are the only things left to protobuf-es here
    expect(decoded).toBeGreaterThan(100);
  });

  it("decodes a typical producer request (no fallback)", () => {
    const req = create(SendMessageRequestSchema, {
      messages: [
        {
          topic: { name: "TopicA", resourceNamespace: "ns" },
          userProperties: { a: "1", ключ: "значение" },
          body: Buffer.alloc(1024, 0x61),
          systemProperties: {
            tag: "TagA",
            keys: ["k1", "k2"],
            messageId: "01AABBCCDDEEFF000100000000000000A0",
            bodyEncoding: 1,
            messageType: 1,
            bornTimestamp: { seconds: 1_763_000_000n, nanos: 123_000_000 },
            bornHost: "host-1",
            messageGroup: "g",
            priority: 3,
          },
        },
      ],
    });
    const { expected, actual } = decodeBoth(toBinary(SendMessageRequestSchema, req));
    expect(actual).toBeDefined();
    expect(actual).toEqual(expected);
    expect(Object.getPrototypeOf(actual?.messages[0]?.userProperties)).toBe(null);
  });

  it("leaves rare fields to protobuf-es, and agrees whenever it decodes", () => {
    fc.assert(
      fc.property(request(true), (req) => {
        const { expected, actual } = decodeBoth(toBinary(SendMessageRequestSchema, req));
        if (actual !== undefined) expect(actual).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("never accepts bytes protobuf-es would read differently or refuse", () => {
    const mutated = fc
      .tuple(request(false), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
      .map(([req, edits]) => {
        const bytes = toBinary(SendMessageRequestSchema, req);
        for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes;
      });
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 200 })), (bytes) => {
        const { expected, actual } = decodeBoth(bytes);
        if (actual !== undefined) {
          expect(expected).toBeDefined();
          expect(actual).toEqual(expected);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it("refuses invalid UTF-8 (protobuf-es rejects it) and a repeated singular message", () => {
    // messages[0].topic.name = 0xff
    const badUtf8 = Buffer.from([0x0a, 0x05, 0x0a, 0x03, 0x12, 0x01, 0xff]);
    expect(decodeSendMessageRequest(badUtf8)).toBeUndefined();
    expect(() => fromBinary(SendMessageRequestSchema, badUtf8)).toThrow();
    // messages[0].topic twice: protobuf merges them
    const twice = Buffer.from([0x0a, 0x0a, 0x0a, 0x03, 0x12, 0x01, 0x41, 0x0a, 0x03, 0x0a, 0x01, 0x42]);
    expect(decodeSendMessageRequest(twice)).toBeUndefined();
    expect(fromBinary(SendMessageRequestSchema, twice).messages[0]?.topic).toMatchObject({
      name: "A",
      resourceNamespace: "B",
    });
  });
});

const status = fc.record({
  code: fc.oneof(fc.constantFrom(Code.OK, Code.MULTIPLE_RESULTS, Code.BAD_REQUEST), uint31, int32),
  message: text,
});

describe("encodeSendMessageResponseFrame", () => {
  it("writes what toBinary writes", () => {
    const response = fc.record(
      {
        status: opt(status),
        entries: fc.array(
          fc.record(
            {
              status: opt(status),
              messageId: text,
              transactionId: text,
              offset: fc.oneof(
                fc.bigInt({ min: 0n, max: 1000n }),
                fc.bigInt({ min: 0n, max: 2n ** 53n + 5n }),
                fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
              ),
              recallHandle: text,
            },
            { requiredKeys: [] },
          ),
          { maxLength: 5 },
        ),
      },
      { requiredKeys: [] },
    );
    let encoded = 0;
    fc.assert(
      fc.property(response, (init) => {
        const r = create(
          SendMessageResponseSchema,
          init as MessageInitShape<typeof SendMessageResponseSchema>,
        );
        const frame = encodeSendMessageResponseFrame(r);
        if (frame === undefined) return;
        encoded++;
        const payload = toBinary(SendMessageResponseSchema, r);
        expect(frame[0]).toBe(0);
        expect(frame.readUInt32BE(1)).toBe(payload.byteLength);
        expect(Buffer.from(frame.subarray(5)).equals(Buffer.from(payload))).toBe(true);
      }),
      { numRuns: 500 },
    );
    expect(encoded).toBeGreaterThan(100);
  });

  it("encodes a typical answer", () => {
    const r = create(SendMessageResponseSchema, {
      status: { code: Code.OK, message: "OK" },
      entries: [{ status: { code: Code.OK, message: "OK" }, messageId: "01AA", offset: 12_345n }],
    });
    const frame = encodeSendMessageResponseFrame(r);
    expect(frame).toBeDefined();
    expect(fromBinary(SendMessageResponseSchema, (frame as Buffer).subarray(5))).toEqual(r);
  });
});
