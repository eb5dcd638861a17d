import { describe, expect, it } from "vitest";
import { bytesToIp, ipToBytes } from "./host-address.ts";
import { createUniqKey, decodeOffsetMsgId, hostHex, offsetHex } from "./message-id.ts";
import { javaStringHashCode, tagsString2tagsCode } from "./tags-code.ts";

describe("message ids", () => {
  it("offset msgId is store ip + port + offset as 32 upper-case hex digits and decodes back", () => {
    const id = hostHex({ address: "192.168.0.10", port: 10911 }) + offsetHex(0x1_2345_6789);
    expect(id).toBe("C0A8000A00002A9F0000000123456789");
    expect(decodeOffsetMsgId(id)).toEqual({
      storeHost: { address: "192.168.0.10", port: 10911 },
      commitLogOffset: 0x1_2345_6789,
    });
    const v6 = hostHex({ address: "fe80::1", port: 8 }) + offsetHex(5);
    expect(v6).toHaveLength(56);
    expect(decodeOffsetMsgId(v6)).toEqual({ storeHost: { address: "fe80::1", port: 8 }, commitLogOffset: 5 });
    expect(() => decodeOffsetMsgId("XYZ")).toThrow();
  });

  it("UNIQ_KEY follows the 5.x client layout: 01 + MAC + pid + seconds since 2021 + sequence", () => {
    const now = Date.UTC(2024, 0, 1);
    const a = createUniqKey(now);
    const b = createUniqKey(now);
    expect(a).toMatch(/^01[0-9A-F]{32}$/);
    expect(a).not.toBe(b);
    expect(a.slice(14, 18)).toBe((process.pid & 0xffff).toString(16).toUpperCase().padStart(4, "0"));
    const secs = Number.parseInt(a.slice(18, 26), 16);
    expect(secs).toBe((now - Date.UTC(2021, 0, 1)) / 1000);
    expect(Number.parseInt(b.slice(26), 16)).toBe(Number.parseInt(a.slice(26), 16) + 1);
  });

  it("tagsCode is Java's String.hashCode()", () => {
    expect(javaStringHashCode("hello")).toBe(99162322);
    expect(javaStringHashCode("TagA")).toBe(2598919);
    // overflow wraps like a Java int
    expect(javaStringHashCode("polygenelubricants")).toBe(-2147483648);
    expect(tagsString2tagsCode(undefined)).toBe(0);
    expect(tagsString2tagsCode("")).toBe(0);
  });

  it("IPv4-mapped IPv6 addresses are stored as IPv4; IPv6 text round-trips", () => {
    expect(ipToBytes("::ffff:10.0.0.1")).toEqual(new Uint8Array([10, 0, 0, 1]));
    const b = ipToBytes("2001:db8::8:800:200c:417a");
    expect(b).toHaveLength(16);
    expect(bytesToIp(b, 0, 16)).toBe("2001:db8::8:800:200c:417a");
    expect(bytesToIp(ipToBytes("::1"), 0, 16)).toBe("::1");
    expect(() => ipToBytes("localhost")).toThrow();
  });
});
