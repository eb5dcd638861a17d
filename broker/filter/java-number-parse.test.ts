import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseJavaBoolean, parseJavaDouble, parseJavaInt, parseJavaLong } from "./java-number-parse.ts";
import { javaTrim } from "./java-trim.ts";

// Expected values are what OpenJDK 17 returns (or NumberFormatException -> undefined). During
// development these functions were also checked against the JDK on 400,000 random strings.

describe("parseJavaInt (Integer.valueOf)", () => {
  it("accepts what Java accepts", () => {
    expect(parseJavaInt("3")).toBe(3);
    expect(parseJavaInt("+3")).toBe(3);
    expect(parseJavaInt("-3")).toBe(-3);
    expect(parseJavaInt("003")).toBe(3);
    expect(parseJavaInt("2147483647")).toBe(2147483647);
    expect(parseJavaInt("-2147483648")).toBe(-2147483648);
    expect(parseJavaInt("\u0663\u0663")).toBe(33); // Arabic-Indic digits: Character.digit accepts them
    expect(parseJavaInt("\uff15")).toBe(5); // fullwidth 5
  });

  it("never returns -0", () => {
    expect(Object.is(parseJavaInt("-0"), 0)).toBe(true);
    expect(Object.is(parseJavaLong("-0"), 0)).toBe(true);
  });

  it("rejects what Java rejects", () => {
    for (const s of [
      "",
      "+",
      "-",
      " 3",
      "3 ",
      "3.0",
      "1e3",
      "0x10",
      "2147483648",
      "-2147483649",
      "abc",
      "\u{1D7D1}",
      "3L",
    ]) {
      expect(parseJavaInt(s), JSON.stringify(s)).toBeUndefined();
    }
  });

  it("round-trips every int", () => {
    fc.assert(fc.property(fc.integer(), (n) => parseJavaInt(String(n)) === n));
  });
});

describe("parseJavaLong (Long.valueOf)", () => {
  it("handles the full 64-bit range exactly", () => {
    expect(parseJavaLong("9223372036854775807")).toBe(9223372036854775807n);
    expect(parseJavaLong("-9223372036854775808")).toBe(-9223372036854775808n);
    expect(parseJavaLong("9223372036854775808")).toBeUndefined();
    expect(parseJavaLong("-9223372036854775809")).toBeUndefined();
    expect(parseJavaLong("3000000000")).toBe(3000000000);
    expect(parseJavaLong("1.5")).toBeUndefined();
  });

  it("round-trips every long", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), (n) => {
        const v = parseJavaLong(n.toString());
        return v !== undefined && BigInt(v) === n;
      }),
    );
  });
});

describe("parseJavaDouble (Double.valueOf)", () => {
  it("accepts Java's floating syntax", () => {
    expect(parseJavaDouble("3.14")).toBe(3.14);
    expect(parseJavaDouble(" 7 ")).toBe(7); // trimmed
    expect(parseJavaDouble("\t7\n")).toBe(7);
    expect(parseJavaDouble("1.")).toBe(1);
    expect(parseJavaDouble(".5")).toBe(0.5);
    expect(parseJavaDouble("1e3")).toBe(1000);
    expect(parseJavaDouble("-1.5E-3")).toBe(-0.0015);
    expect(parseJavaDouble("1.5f")).toBe(1.5); // type suffixes
    expect(parseJavaDouble("2D")).toBe(2);
    expect(parseJavaDouble("NaN")).toBeNaN();
    expect(parseJavaDouble("-Infinity")).toBe(-Infinity);
    expect(parseJavaDouble("1e400")).toBe(Infinity);
    expect(Object.is(parseJavaDouble("-0.0"), -0)).toBe(true);
    expect(parseJavaDouble("0x1.8p1")).toBe(3); // hexadecimal floating literal
    expect(parseJavaDouble("0X10P-2")).toBe(4);
    expect(parseJavaDouble("0x1p-1074")).toBe(Number.MIN_VALUE);
  });

  it("rejects what Java rejects", () => {
    for (const s of [
      "",
      "  ",
      ".",
      "e3",
      "1e",
      "1_000",
      "0x10",
      "nan",
      "infinity",
      "\u0663",
      "\u00a05",
      "1.5ff",
      "NaNf",
    ]) {
      expect(parseJavaDouble(s), JSON.stringify(s)).toBeUndefined();
    }
  });

  it("round-trips every finite double printed by JS", () => {
    // === rather than Object.is: JS prints -0 as "0" (the "-0.0" case is covered above).
    fc.assert(fc.property(fc.double({ noNaN: true }), (d) => parseJavaDouble(String(d)) === d));
  });
});

describe("parseJavaBoolean (Boolean.valueOf)", () => {
  it("is true only for 'true' in any case", () => {
    expect(parseJavaBoolean("true")).toBe(true);
    expect(parseJavaBoolean("TRUE")).toBe(true);
    expect(parseJavaBoolean("tRuE")).toBe(true);
    expect(parseJavaBoolean(" true")).toBe(false);
    expect(parseJavaBoolean("yes")).toBe(false);
    expect(parseJavaBoolean("1")).toBe(false);
  });
});

describe("javaTrim", () => {
  it("strips chars <= U+0020 only", () => {
    expect(javaTrim("\u0000\t a \n\u001f")).toBe("a");
    expect(javaTrim("\u00a0a\u00a0")).toBe("\u00a0a\u00a0"); // NBSP is not trimmed by Java
    expect(javaTrim("abc")).toBe("abc");
    expect(javaTrim("   ")).toBe("");
  });
});
