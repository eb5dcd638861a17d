import { createHmac, hash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import {
  loadReceiptHandleKey,
  RECEIPT_HANDLE_KEY_FILE,
  type ReceiptHandle,
  ReceiptHandleCodec,
  receiptHandleExpiry,
} from "./receipt-handle.ts";

const KEY = Buffer.alloc(32, 1);
const sample: ReceiptHandle = {
  ckOffset: 12,
  popTime: 1_700_000_000_123,
  invisibleTime: 30_000,
  reviveQid: 3,
  index: 5,
  brokerName: "broker-a",
  topic: "%RETRY%GID_x_TopicA",
  queueId: 2,
  queueOffset: 987_654_321,
  commitLogOffset: 2 ** 40 + 17,
};

function rejects(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    return isRmqError(e, ErrorCode.InvalidReceiptHandle);
  }
}

describe("ReceiptHandleCodec", () => {
  it("round-trips every field and expires at popTime + invisibleTime", () => {
    const c = new ReceiptHandleCodec(KEY);
    expect(c.decode(c.encode(sample))).toEqual(sample);
    expect(receiptHandleExpiry(sample)).toBe(sample.popTime + sample.invisibleTime);
  });

  it("round-trips arbitrary values", () => {
    const c = new ReceiptHandleCodec(KEY);
    const nat = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const name = fc.stringMatching(/^[%|a-zA-Z0-9_-]{1,60}$/);
    fc.assert(
      fc.property(
        fc.record({
          ckOffset: nat,
          popTime: nat,
          invisibleTime: nat,
          reviveQid: nat,
          index: nat,
          brokerName: name,
          topic: name,
          queueId: nat,
          queueOffset: nat,
          commitLogOffset: nat,
        }),
        (h) => {
          expect(c.decode(c.encode(h))).toEqual(h);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("refuses any single changed character, another key's MAC and junk", () => {
    const c = new ReceiptHandleCodec(KEY);
    const h = c.encode(sample);
    for (let pop = 0; pop < 12; pop++) {
      const other = c.encode({ ...sample, popTime: sample.popTime + pop, topic: `T${"x".repeat(pop)}` });
      for (let i = 0; i < other.length; i++) {
        for (const ch of ["A", "B", "_"]) {
          if (other[i] === ch) continue;
          expect(rejects(() => c.decode(other.slice(0, i) + ch + other.slice(i + 1)))).toBe(true);
        }
      }
    }
    expect(rejects(() => new ReceiptHandleCodec(Buffer.alloc(32, 2)).decode(h))).toBe(true);
    for (const junk of ["", ".", "abc", "a.b.c", `${"x".repeat(2000)}.y`, "!!!.???"])
      expect(rejects(() => c.decode(junk))).toBe(true);
  });
});

/** A version 2 handle as brokers issued them before version 3 (keyed SHA3-256 over the payload). */
function v2(key: Buffer, h: ReceiptHandle): string {
  const payload = `2 ${h.ckOffset} ${h.popTime} ${h.invisibleTime} ${h.reviveQid} ${h.index} ${h.brokerName} ${h.topic} ${h.queueId} ${h.queueOffset} ${h.commitLogOffset}`;
  const mac = hash("sha3-256", `${key.toString("hex")} ${payload}`, "base64url").slice(0, 22);
  return `${Buffer.from(payload).toString("base64url")}.${mac}`;
}

describe("ReceiptHandleCodec version 3 handles (per check point key, SipHash per message)", () => {
  it("is the plain payload and a 22-character MAC that differs per message of one check point", () => {
    const c = new ReceiptHandleCodec(KEY);
    const h = c.encode(sample);
    const fields = h.split(" ");
    expect(fields.slice(0, 11).join(" ")).toBe(
      `3 12 ${sample.popTime} 30000 3 5 broker-a %RETRY%GID_x_TopicA 2 987654321 ${2 ** 40 + 17}`,
    );
    expect(fields[11]).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const macs = new Set<string>();
    for (let index = 0; index < 32; index++)
      macs.add(c.encode({ ...sample, index }).split(" ")[11] as string);
    expect(macs.size).toBe(32);
    // the MAC of one message does not pass for another message of the same check point
    const other = c.encode({ ...sample, index: 6 }).split(" ");
    other[11] = fields[11] as string;
    expect(rejects(() => c.decode(other.join(" ")))).toBe(true);
    // decoding after other check points were encoded (the per check point key cache) still passes
    c.encode({ ...sample, ckOffset: 99 });
    expect(c.decode(h)).toEqual(sample);
    expect(rejects(() => new ReceiptHandleCodec(Buffer.alloc(32, 2)).decode(h))).toBe(true);
  });

  it("falls back to version 2 for names beyond printable ASCII, and those round-trip", () => {
    const c = new ReceiptHandleCodec(KEY);
    for (const brokerName of ["brökér", "broker\u0001"]) {
      const h = { ...sample, brokerName };
      const handle = c.encode(h);
      expect(handle.startsWith("3 ")).toBe(false);
      expect(c.decode(handle)).toEqual(h);
    }
    expect(c.encode(sample).startsWith("3 ")).toBe(true);
  });

  it("refuses non-canonical numbers and extra fields", () => {
    const c = new ReceiptHandleCodec(KEY);
    const f = c.encode(sample).split(" ");
    const withField = (i: number, v: string) => f.map((x, j) => (j === i ? v : x)).join(" ");
    expect(rejects(() => c.decode(withField(1, "012")))).toBe(true);
    expect(rejects(() => c.decode(withField(5, "-5")))).toBe(true);
    expect(rejects(() => c.decode(`${f.join(" ")} x`))).toBe(true);
    expect(rejects(() => c.decode(f.slice(0, 11).join(" ")))).toBe(true);
  });
});

describe("ReceiptHandleCodec version 2 handles (keyed SHA3-256, issued before version 3)", () => {
  it("still decodes a version 2 handle of the same key and refuses one of another key or changed", () => {
    const c = new ReceiptHandleCodec(KEY);
    expect(c.decode(v2(KEY, sample))).toEqual(sample);
    expect(rejects(() => c.decode(v2(Buffer.alloc(32, 2), sample)))).toBe(true);
    const h = v2(KEY, sample);
    for (let i = 0; i < h.length; i++) {
      const ch = h[i] === "A" ? "B" : "A";
      expect(rejects(() => c.decode(h.slice(0, i) + ch + h.slice(i + 1)))).toBe(true);
    }
  });
});

describe("ReceiptHandleCodec version 1 handles (HMAC-SHA256, issued before version 2)", () => {
  const v1 = (key: Buffer, h: ReceiptHandle): string => {
    const payload = [
      "1",
      h.ckOffset,
      h.popTime,
      h.invisibleTime,
      h.reviveQid,
      h.index,
      h.brokerName,
      h.topic,
      h.queueId,
      h.queueOffset,
      h.commitLogOffset,
    ].join(" ");
    const mac = createHmac("sha256", key).update(payload).digest().subarray(0, 16);
    return `${Buffer.from(payload).toString("base64url")}.${mac.toString("base64url")}`;
  };

  it("still decodes a version 1 handle of the same key", () => {
    const c = new ReceiptHandleCodec(KEY);
    expect(c.decode(v1(KEY, sample))).toEqual(sample);
    expect(c.encode(sample)).not.toBe(v1(KEY, sample));
  });

  it("refuses a version 1 handle of another key, with a changed character or a non-canonical MAC", () => {
    const c = new ReceiptHandleCodec(KEY);
    expect(rejects(() => c.decode(v1(Buffer.alloc(32, 2), sample)))).toBe(true);
    const h = v1(KEY, sample);
    for (let i = 0; i < h.length; i++) {
      const ch = h[i] === "A" ? "B" : "A";
      expect(rejects(() => c.decode(h.slice(0, i) + ch + h.slice(i + 1)))).toBe(true);
    }
    // A version 1 MAC under the version 2 rule (and the other way round) does not pass.
    const [payload2, mac2] = v2(KEY, sample).split(".");
    const [payload1, mac1] = h.split(".");
    expect(rejects(() => c.decode(`${payload2}.${mac1}`))).toBe(true);
    expect(rejects(() => c.decode(`${payload1}.${mac2}`))).toBe(true);
  });
});

describe("loadReceiptHandleKey", () => {
  it("creates a key once and reads the same key back; refuses a damaged key file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pop-key-"));
    try {
      const k1 = await loadReceiptHandleKey(dir);
      const k2 = await loadReceiptHandleKey(dir);
      expect(k1.length).toBe(32);
      expect(k2.equals(k1)).toBe(true);
      writeFileSync(join(dir, RECEIPT_HANDLE_KEY_FILE), "not hex\n");
      await expect(loadReceiptHandleKey(dir)).rejects.toSatisfy((e: unknown) =>
        isRmqError(e, ErrorCode.MetadataCorrupt),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
