import { crc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32Combine, crc32Range } from "./crc32.ts";

describe("CRC-32 helpers", () => {
  it("crc32Range equals zlib's crc32 of the range, continuing any initial CRC (property test)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), fc.nat(), fc.nat(), (bytes, a, b, init) => {
        const buf = Buffer.from(bytes);
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
        const seed = init >>> 0;
        expect(crc32Range(buf, start, end, seed)).toBe(crc32(buf.subarray(start, end), seed));
      }),
      { numRuns: 500 },
    );
  });

  it("crc32Combine(CRC(A), CRC(B), |B|) is CRC(A || B), for lengths inside and outside its operator cache", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
        const whole = crc32(Buffer.concat([a, b]));
        expect(crc32Combine(crc32(a), crc32(b), b.length)).toBe(whole);
      }),
      { numRuns: 300 },
    );
    const big = Buffer.alloc(70_000 + 13, 0x5a);
    big.writeUInt32BE(0xdeadbeef, 1000);
    const head = Buffer.from("header bytes");
    expect(crc32Combine(crc32(head), crc32(big), big.length)).toBe(crc32(Buffer.concat([head, big])));
    expect(crc32Combine(crc32(head), crc32(Buffer.alloc(0)), 0)).toBe(crc32(head));
  });
});
