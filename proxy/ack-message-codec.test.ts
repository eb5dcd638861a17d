// The hand-written AckMessage codec against protobuf-es: generated requests decode exactly as
// fromBinary decodes them (or are left to it), arbitrary bytes are never accepted where fromBinary
// would read something else or refuse them, generated responses encode byte for byte as toBinary.

import { create, equals, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  AckMessageRequestSchema,
  AckMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { decodeAckMessageRequest, encodeAckMessageResponseFrame } from "./ack-message-codec.ts";

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.string({ minLength: 100, maxLength: 220 }),
  fc.constant(""),
);
const opt = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const resource = opt(fc.record({ resourceNamespace: text, name: text }));

const request = fc
  .record(
    {
      group: resource,
      topic: resource,
      entries: fc.array(
        fc.record({ messageId: text, receiptHandle: text, liteTopic: opt(text) }, { requiredKeys: [] }),
        { maxLength: 6 },
      ),
    },
    { requiredKeys: [] },
  )
  .map((init) => create(AckMessageRequestSchema, init as MessageInitShape<typeof AckMessageRequestSchema>));

function decodeBoth(bytes: Uint8Array) {
  const buffer = Buffer.from(bytes);
  let expected: ReturnType<typeof fromBinary<typeof AckMessageRequestSchema>> | undefined;
  try {
    expected = fromBinary(AckMessageRequestSchema, buffer);
  } catch {
    expected = undefined;
  }
  return { expected, actual: decodeAckMessageRequest(buffer) };
}

describe("decodeAckMessageRequest", () => {
  it("decodes requests exactly as protobuf-es does", () => {
    fc.assert(
      fc.property(request, (req) => {
        const { expected, actual } = decodeBoth(toBinary(AckMessageRequestSchema, req));
        expect(actual).toBeDefined();
        expect(actual).toEqual(expected);
        expect(equals(AckMessageRequestSchema, actual as typeof req, expected as typeof req)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("never accepts bytes protobuf-es would read differently or refuse", () => {
    const mutated = fc
      .tuple(request, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
      .map(([req, edits]) => {
        const bytes = toBinary(AckMessageRequestSchema, req);
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
});

const status = fc.record({
  code: fc.oneof(
    fc.constantFrom(Code.OK, Code.INVALID_RECEIPT_HANDLE, Code.MULTIPLE_RESULTS),
    fc.integer({ min: -5, max: 0x7fff_ffff }),
  ),
  message: text,
});

describe("encodeAckMessageResponseFrame", () => {
  it("writes what toBinary writes", () => {
    const response = fc.record(
      {
        status: opt(status),
        entries: fc.array(
          fc.record({ status: opt(status), messageId: text, receiptHandle: text }, { requiredKeys: [] }),
          { maxLength: 6 },
        ),
      },
      { requiredKeys: [] },
    );
    let encoded = 0;
    fc.assert(
      fc.property(response, (init) => {
        const r = create(AckMessageResponseSchema, init as MessageInitShape<typeof AckMessageResponseSchema>);
        const frame = encodeAckMessageResponseFrame(r);
        if (frame === undefined) return;
        encoded++;
        const payload = toBinary(AckMessageResponseSchema, r);
        expect(frame[0]).toBe(0);
        expect(frame.readUInt32BE(1)).toBe(payload.byteLength);
        expect(Buffer.from(frame.subarray(5)).equals(Buffer.from(payload))).toBe(true);
      }),
      { numRuns: 500 },
    );
    expect(encoded).toBeGreaterThan(100);
  });
});
