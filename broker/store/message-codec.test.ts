import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ipToBytes } from "./host-address.ts";
import {
  BLANK_MAGIC_CODE,
  calRecordLength,
  encodeBlank,
  encodeRecord,
  encodeUnsealedRecord,
  MESSAGE_MAGIC_CODE_V1,
  MESSAGE_MAGIC_CODE_V2,
  MIN_RECORD_LENGTH,
  parseRecord,
  type RecordFields,
  viewToDispatchRequest,
  viewToMessage,
} from "./message-codec.ts";
import { decodeOffsetMsgId } from "./message-id.ts";
import { propertiesToString } from "./message-properties.ts";
import { sealRecords } from "./record-seal.ts";
import { javaStringHashCode } from "./tags-code.ts";

const SEGMENT = 1 << 30;

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."));
const ipv6 = fc
  .array(fc.nat(0xffff), { minLength: 8, maxLength: 8 })
  .map((w) => w.map((x) => x.toString(16)).join(":"));
const host = fc.record({ address: fc.oneof(ipv4, ipv6), port: fc.nat(65535) });
const propText = fc.string({ maxLength: 20 }).filter((s) => !s.includes("\u0001") && !s.includes("\u0002"));
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const long = fc.integer({ min: -(2 ** 52), max: 2 ** 52 });

const messageArb = fc.record({
  topic: fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ minLength: 128, maxLength: 200 })),
  queueId: fc.nat(1023),
  flag: int32,
  queueOffset: fc.nat(2 ** 50),
  physicalOffset: fc.nat(2 ** 50),
  sysFlag: fc.nat(0x3ff),
  bornTimestamp: fc.nat(2 ** 50),
  bornHost: host,
  storeTimestamp: fc.nat(2 ** 50),
  storeHost: host,
  reconsumeTimes: int32,
  preparedTransactionOffset: long,
  body: fc.uint8Array({ maxLength: 2048 }),
  properties: fc.dictionary(propText, propText, { maxKeys: 6 }),
});

type Msg = typeof messageArb extends fc.Arbitrary<infer T> ? T : never;

function fieldsOf(m: Msg): { fields: RecordFields; size: number } {
  const properties = propertiesToString(new Map(Object.entries(m.properties)));
  const propertyPairs = Object.entries(m.properties).flat();
  const bornHost = ipToBytes(m.bornHost.address);
  const storeHost = ipToBytes(m.storeHost.address);
  const fields: RecordFields = {
    ...m,
    bornHost,
    bornPort: m.bornHost.port,
    storeHost,
    storePort: m.storeHost.port,
    topicLength: Buffer.byteLength(m.topic),
    propertyPairs,
    propertiesLength: Buffer.byteLength(properties),
  };
  const size = calRecordLength(
    bornHost.length,
    storeHost.length,
    m.body.length,
    fields.topicLength,
    fields.propertiesLength,
  );
  return { fields, size };
}

function encode(m: Msg): { buf: Buffer; fields: RecordFields } {
  const { fields, size } = fieldsOf(m);
  const buf = Buffer.alloc(size + 16, 0xee);
  encodeRecord(buf, 8, size, fields);
  return { buf: buf.subarray(8, 8 + size), fields };
}

describe("CommitLog record codec", () => {
  it("decodes every field it encoded (property test)", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const { buf } = encode(m);
        const res = parseRecord(buf, 0, buf.length, {
          verifyCrc: true,
          segmentRemaining: SEGMENT,
          expectedOffset: m.physicalOffset,
        });
        expect(res.kind).toBe("record");
        if (res.kind !== "record") return;
        expect(res.view.size).toBe(buf.length);
        const d = viewToMessage(buf, res.view);
        expect(d.topic).toBe(m.topic);
        expect(d.queueId).toBe(m.queueId);
        expect(d.flag).toBe(m.flag);
        expect(d.queueOffset).toBe(m.queueOffset);
        expect(d.commitLogOffset).toBe(m.physicalOffset);
        expect(d.bornTimestamp).toBe(m.bornTimestamp);
        expect(d.storeTimestamp).toBe(m.storeTimestamp);
        expect(d.reconsumeTimes).toBe(m.reconsumeTimes);
        expect(d.preparedTransactionOffset).toBe(m.preparedTransactionOffset);
        expect(Buffer.from(d.body).equals(Buffer.from(m.body))).toBe(true);
        expect(Object.fromEntries(d.properties)).toEqual(m.properties);
        expect(ipToBytes(d.bornHost.address)).toEqual(ipToBytes(m.bornHost.address));
        expect(d.bornHost.port).toBe(m.bornHost.port);
        expect(ipToBytes(d.storeHost.address)).toEqual(ipToBytes(m.storeHost.address));
        // Host v6 bits follow the addresses; other sysFlag bits are kept.
        expect(d.sysFlag & ~0x30).toBe(m.sysFlag & ~0x30);
        expect((d.sysFlag & 0x10) !== 0).toBe(ipToBytes(m.bornHost.address).length === 16);
        const magic = buf.readInt32BE(4);
        expect(magic).toBe(Buffer.byteLength(m.topic) > 127 ? MESSAGE_MAGIC_CODE_V2 : MESSAGE_MAGIC_CODE_V1);
        const id = decodeOffsetMsgId(d.msgId);
        expect(id.commitLogOffset).toBe(m.physicalOffset);
        expect(id.storeHost.port).toBe(m.storeHost.port);
      }),
      { numRuns: 300 },
    );
  });

  it("records encoded unsealed and sealed later, in a run with blank markers, equal whole encodings; sealing twice changes nothing (property test)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(messageArb, fc.constant(undefined)), { minLength: 1, maxLength: 6 }),
        (items) => {
          const parts = items.map((m) => (m === undefined ? undefined : fieldsOf(m)));
          const total = parts.reduce((n, p) => n + (p === undefined ? 8 : p.size), 0);
          // Stale bytes where the checksums go: sealing must not depend on what was there.
          const late = Buffer.alloc(total, 0x5a);
          const whole = Buffer.alloc(total, 0x00);
          let at = 0;
          for (const p of parts) {
            if (p === undefined) {
              encodeBlank(late, at, 1000);
              encodeBlank(whole, at, 1000);
              at += 8;
            } else {
              encodeUnsealedRecord(late, at, p.size, p.fields);
              encodeRecord(whole, at, p.size, p.fields);
              at += p.size;
            }
          }
          sealRecords(late, 0, total);
          expect(late.equals(whole)).toBe(true);
          sealRecords(late, 0, total);
          expect(late.equals(whole)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("reports any single flipped bit as corrupt, never as a record (property test)", () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), fc.nat(7), (m, where, bit) => {
        const { buf } = encode(m);
        const i = where % buf.length;
        buf[i] = (buf[i] ?? 0) ^ (1 << bit);
        const res = parseRecord(buf, 0, buf.length, {
          verifyCrc: true,
          segmentRemaining: SEGMENT,
          expectedOffset: m.physicalOffset,
        });
        // A flipped size can also make the record look longer than the bytes at hand ("short").
        expect(["corrupt", "short"]).toContain(res.kind);
      }),
      { numRuns: 500 },
    );
  });

  it("never throws on garbage and never accepts it as a record (property test)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), fc.nat(SEGMENT), (bytes, remaining) => {
        const buf = Buffer.from(bytes);
        const res = parseRecord(buf, 0, buf.length, { verifyCrc: true, segmentRemaining: remaining });
        expect(res.kind).not.toBe("record");
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects a record at the wrong offset, a truncated buffer, and sizes that overrun the segment", () => {
    const m = fc.sample(messageArb, { numRuns: 1, seed: 7 })[0] as Msg;
    const { buf } = encode({ ...m, physicalOffset: 4096 });
    expect(
      parseRecord(buf, 0, buf.length, { verifyCrc: true, segmentRemaining: SEGMENT, expectedOffset: 4096 })
        .kind,
    ).toBe("record");
    const wrong = parseRecord(buf, 0, buf.length, {
      verifyCrc: true,
      segmentRemaining: SEGMENT,
      expectedOffset: 0,
    });
    expect(wrong.kind).toBe("corrupt");
    const short = parseRecord(buf, 0, buf.length - 1, { verifyCrc: true, segmentRemaining: SEGMENT });
    expect(short).toEqual({ kind: "short", need: buf.length });
    const overrun = parseRecord(buf, 0, buf.length, { verifyCrc: true, segmentRemaining: buf.length + 7 });
    expect(overrun.kind).toBe("corrupt");
    const tiny = Buffer.alloc(MIN_RECORD_LENGTH);
    tiny.writeInt32BE(20, 0);
    tiny.writeInt32BE(MESSAGE_MAGIC_CODE_V1, 4);
    expect(parseRecord(tiny, 0, tiny.length, { verifyCrc: true, segmentRemaining: SEGMENT }).kind).toBe(
      "corrupt",
    );
  });

  it("encodes the blank end-of-segment marker as upstream and checks it against the segment end", () => {
    const b = Buffer.alloc(8);
    encodeBlank(b, 0, 500);
    expect(b.readInt32BE(0)).toBe(500);
    expect(b.readUInt32BE(4)).toBe(0xcbd43194);
    expect(b.readInt32BE(4)).toBe(BLANK_MAGIC_CODE);
    expect(parseRecord(b, 0, 8, { verifyCrc: true, segmentRemaining: 500 })).toEqual({
      kind: "blank",
      size: 500,
    });
    expect(parseRecord(b, 0, 8, { verifyCrc: true, segmentRemaining: 400 }).kind).toBe("corrupt");
    expect(parseRecord(Buffer.alloc(8), 0, 8, { verifyCrc: true, segmentRemaining: 400 })).toEqual({
      kind: "end",
    });
  });

  it("builds the DispatchRequest from the record bytes (tagsCode = Java hashCode of TAGS)", () => {
    const m = fc.sample(messageArb, { numRuns: 1, seed: 3 })[0] as Msg;
    const { buf } = encode({ ...m, sysFlag: 0, properties: { TAGS: "TagA", KEYS: "k1 k2", UNIQ_KEY: "U1" } });
    const res = parseRecord(buf, 0, buf.length, { verifyCrc: true, segmentRemaining: SEGMENT });
    if (res.kind !== "record") throw new Error(res.kind);
    const req = viewToDispatchRequest(buf, res.view);
    expect(req.tagsCode).toBe(javaStringHashCode("TagA"));
    expect(req.keys).toBe("k1 k2");
    expect(req.uniqKey).toBe("U1");
    expect(req.size).toBe(buf.length);
    expect(req.topic).toBe(m.topic);
  });
});
