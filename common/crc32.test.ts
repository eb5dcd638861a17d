import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32, crc32IsNative } from "./crc32.ts";

describe("crc32", () => {
  it("uses the SIMD implementation on this machine (its binary is a dependency)", () => {
    expect(crc32IsNative).toBe(true);
  });

  it("gives zlib's value for any bytes, view offset and continuation", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 5000 }),
        fc.nat(16),
        fc.integer({ min: 0, max: 0xffffffff }),
        (bytes, skip, init) => {
          const view = bytes.subarray(Math.min(skip, bytes.length));
          expect(crc32(view)).toBe(zlibCrc32(view));
          expect(crc32(view, init)).toBe(zlibCrc32(view, init));
        },
      ),
      { numRuns: 300 },
    );
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });
});
