import { createHash, randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { DigestType, Language } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { BodyDigestFormat, bodyDigest, bodyDigestFormatOf } from "./body-digest.ts";

// The Node SDK's own checker (rocketmq-client-nodejs dist/util crc32CheckSum / md5CheckSum).
const sdkUtil = createRequire(import.meta.url)("rocketmq-client-nodejs/dist/util/index.js") as {
  crc32CheckSum(bytes: Buffer): string;
  md5CheckSum(bytes: Buffer): string;
};

/** IEEE CRC-32 bit by bit (the polynomial the Java, Go and Node SDKs use), independent of zlib. */
function referenceCrc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

describe("bodyDigestFormatOf", () => {
  it("picks the SDK's CRC32 form from the Settings language, else from x-mq-language, else MD5", () => {
    expect(bodyDigestFormatOf(Language.NODE_JS, "HTTP")).toBe(BodyDigestFormat.CRC32_DECIMAL);
    expect(bodyDigestFormatOf(Language.JAVA, "JAVA")).toBe(BodyDigestFormat.CRC32_UPPER_HEX);
    // Go SDK versions disagree on CRC32's letter case: MD5, as the upstream proxy sends.
    expect(bodyDigestFormatOf(Language.GOLANG, "GO")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
    expect(bodyDigestFormatOf(undefined, "JAVA")).toBe(BodyDigestFormat.CRC32_UPPER_HEX);
    expect(bodyDigestFormatOf(Language.LANGUAGE_UNSPECIFIED, "GO")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
    // The Node SDK's header says HTTP: without its Settings it is not told apart.
    expect(bodyDigestFormatOf(undefined, "HTTP")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
    expect(bodyDigestFormatOf(undefined, "")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
    expect(bodyDigestFormatOf(Language.PYTHON, "JAVA")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
    expect(bodyDigestFormatOf(Language.CPP, "CPP")).toBe(BodyDigestFormat.MD5_UPPER_HEX);
  });
});

describe("bodyDigest", () => {
  const bodies = [
    Buffer.alloc(0),
    Buffer.from("hello"),
    Buffer.from([0x00, 0x00, 0x00, 0x01]),
    ...Array.from({ length: 50 }, (_, i) => randomBytes(i * 37)),
  ];

  it("is what the Node SDK's own checker computes (CRC32 decimal, MD5 upper hex)", () => {
    for (const body of bodies) {
      expect(bodyDigest(body, BodyDigestFormat.CRC32_DECIMAL)).toEqual({
        type: DigestType.CRC32,
        checksum: sdkUtil.crc32CheckSum(body),
      });
      expect(bodyDigest(body, BodyDigestFormat.MD5_UPPER_HEX)).toEqual({
        type: DigestType.MD5,
        checksum: sdkUtil.md5CheckSum(body),
      });
    }
  });

  it("writes CRC32 hex as Java does: upper case, unpadded", () => {
    let sawShort = false;
    for (const body of [...bodies, ...Array.from({ length: 400 }, () => randomBytes(8))]) {
      const crc = referenceCrc32(body);
      const upper = bodyDigest(body, BodyDigestFormat.CRC32_UPPER_HEX);
      expect(upper.type).toBe(DigestType.CRC32);
      expect(Number.parseInt(upper.checksum, 16)).toBe(crc);
      expect(upper.checksum).toMatch(/^(0|[1-9A-F][0-9A-F]{0,7})$/);
      if (crc < 0x10000000) sawShort = true;
    }
    expect(bodyDigest(Buffer.alloc(0), BodyDigestFormat.CRC32_UPPER_HEX).checksum).toBe("0");
    // "hello": CRC-32 0x3610A686
    expect(bodyDigest(Buffer.from("hello"), BodyDigestFormat.CRC32_UPPER_HEX).checksum).toBe("3610A686");
    expect(bodyDigest(Buffer.from("hello"), BodyDigestFormat.CRC32_DECIMAL).checksum).toBe("907060870");
    expect(sawShort).toBe(true);
    expect(bodyDigest(Buffer.from("hello"), BodyDigestFormat.MD5_UPPER_HEX).checksum).toBe(
      createHash("md5").update("hello").digest("hex").toUpperCase(),
    );
  });
});
