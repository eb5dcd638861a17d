import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isRmqError } from "../common/errors.ts";
import { decodeRaftMessages, encodeRaftMessages, raftMessageBytes } from "./message-codec.ts";
import { type Entry, type Message, MessageType } from "./types.ts";

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.integer({ min: 0, max: 1_000_000 });
const nodeId = fc.string({ minLength: 1, maxLength: 12 });
const bytes = fc.uint8Array({ maxLength: 64 });
const entry: fc.Arbitrary<Entry> = fc.record({
  term: small,
  index: u64,
  type: fc.constantFrom(0 as const, 1 as const),
  data: bytes,
});
const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...Object.values(MessageType)),
    from: nodeId,
    to: nodeId,
    term: u64,
    index: u64,
    logTerm: u64,
    entries: fc.array(entry, { maxLength: 5 }),
    commit: u64,
    reject: fc.boolean(),
    rejectHint: u64,
    snapshot: fc.option(
      fc.record({
        metadata: fc.record({ index: u64, term: u64, voters: fc.array(nodeId, { maxLength: 5 }) }),
        data: bytes,
      }),
      { nil: undefined },
    ),
    context: fc.option(bytes, { nil: undefined }),
  })
  .map((m) => {
    const out: Message = { ...m };
    if (m.snapshot === undefined) delete out.snapshot;
    if (m.context === undefined) delete out.context;
    return out;
  });

/** Uint8Array views (and Buffers) compare by content as plain arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

describe("raft message codec", () => {
  it("round-trips any batch of messages, and sizes are exact", () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 8 }), (ms) => {
        const frame = encodeRaftMessages(ms);
        expect(frame.byteLength).toBe(4 + ms.reduce((n, m) => n + raftMessageBytes(m), 0));
        expect(plain(decodeRaftMessages(frame))).toEqual(plain(ms));
      }),
      { numRuns: 300 },
    );
  });

  it("decodes entry data as views into the frame (no copy)", () => {
    const data = new Uint8Array([1, 2, 3, 4]);
    const m: Message = {
      type: MessageType.App,
      from: "n0",
      to: "n1",
      term: 3,
      index: 7,
      logTerm: 2,
      entries: [{ term: 3, index: 8, type: 0, data }],
      commit: 7,
      reject: false,
      rejectHint: 0,
    };
    const frame = encodeRaftMessages([m]);
    const [back] = decodeRaftMessages(frame);
    const d = back?.entries[0]?.data as Uint8Array;
    expect([...d]).toEqual([1, 2, 3, 4]);
    expect(d.buffer).toBe(frame.buffer);
  });

  it("refuses truncated frames, trailing bytes and unknown types with CORRUPT_RECORD", () => {
    const frame = encodeRaftMessages([
      {
        type: MessageType.Heartbeat,
        from: "a",
        to: "b",
        term: 1,
        index: 0,
        logTerm: 0,
        entries: [],
        commit: 0,
        reject: false,
        rejectHint: 0,
      },
    ]);
    for (const bad of [frame.subarray(0, frame.length - 1), Buffer.concat([frame, Buffer.from([0])])]) {
      let err: unknown;
      try {
        decodeRaftMessages(bad);
      } catch (e) {
        err = e;
      }
      expect(isRmqError(err, "CORRUPT_RECORD")).toBe(true);
    }
    const unknownType = Buffer.from(frame);
    unknownType[4] = 200;
    expect(() => decodeRaftMessages(unknownType)).toThrow(/unknown message type/);
  });
});
