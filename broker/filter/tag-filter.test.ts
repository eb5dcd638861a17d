import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { MAX_FILTER_EXPRESSION_LENGTH } from "./filter-limits.ts";
import { javaStringHashCode } from "./java-hash.ts";
import { parseTagExpression } from "./tag-filter.ts";

describe("parseTagExpression", () => {
  it("treats '*', empty and blank as subscribe-all", () => {
    for (const e of ["*", "", "   ", " * ", "\t*\n"]) {
      const f = parseTagExpression(e);
      expect(f.matchesAll, JSON.stringify(e)).toBe(true);
      expect(f.tags.size).toBe(0);
      expect(f.matchTagsCode(12345)).toBe(true);
      expect(f.matchTag(undefined)).toBe(true);
      expect(f.matchTag("anything")).toBe(true);
    }
  });

  it("splits on || and trims each tag", () => {
    const f = parseTagExpression("TagA||TagB ||  TagC  ");
    expect(f.matchesAll).toBe(false);
    expect([...f.tags]).toEqual(["TagA", "TagB", "TagC"]);
    expect([...f.tagsCodes]).toEqual([2598919, 2598920, javaStringHashCode("TagC")]);
  });

  it("keeps a tag containing a single | or spaces inside as one tag", () => {
    const f = parseTagExpression("a | b||c d");
    expect([...f.tags]).toEqual(["a | b", "c d"]);
  });

  it("drops empty parts; no tag left means nothing matches (as upstream's broker)", () => {
    expect([...parseTagExpression("a || || b ||").tags]).toEqual(["a", "b"]);
    const none = parseTagExpression("||");
    expect(none.matchesAll).toBe(false);
    expect(none.matchTagsCode(0)).toBe(false);
    expect(none.matchTag("")).toBe(false);
  });

  it("takes '*' inside a list literally", () => {
    const f = parseTagExpression("a || *");
    expect(f.matchesAll).toBe(false);
    expect(f.matchTag("b")).toBe(false);
    expect(f.matchTag("*")).toBe(true);
  });

  it("matchTagsCode is a hash test, matchTag removes collisions", () => {
    const f = parseTagExpression("Aa");
    // "Aa" and "BB" share the Java hash code 2112.
    expect(f.matchTagsCode(javaStringHashCode("BB"))).toBe(true);
    expect(f.matchTag("BB")).toBe(false);
    expect(f.matchTag("Aa")).toBe(true);
    expect(f.matchTagsCode(javaStringHashCode("Ab"))).toBe(false);
  });

  it("never matches a message without a tag unless subscribed to all", () => {
    const f = parseTagExpression("TagA");
    expect(f.matchTagsCode(0)).toBe(false); // tagsCode of an untagged message
    expect(f.matchTag(undefined)).toBe(false);
    expect(f.matchTag("")).toBe(false);
  });

  it("compares the low 32 bits of a long tagsCode, like Java's intValue()", () => {
    const f = parseTagExpression("TagA");
    expect(f.matchTagsCode(2598919 + 2 ** 32)).toBe(true);
    // Java: "order-created".hashCode() == -392709271, "polygenelubricants".hashCode() == Integer.MIN_VALUE.
    const negative = parseTagExpression("order-created || polygenelubricants");
    expect([...negative.tagsCodes]).toEqual([-392709271, -2147483648]);
    expect(negative.matchTagsCode(-392709271)).toBe(true);
    expect(negative.matchTagsCode(2 ** 32 - 392709271)).toBe(true); // same low 32 bits
    expect(negative.matchTagsCode(-2147483648)).toBe(true);
  });

  it("is case-sensitive", () => {
    expect(parseTagExpression("TagA").matchTag("taga")).toBe(false);
  });

  it("rejects an expression longer than the limit", () => {
    const long = "a".repeat(MAX_FILTER_EXPRESSION_LENGTH + 1);
    expect(() => parseTagExpression(long)).toThrow(/at most/);
    try {
      parseTagExpression(long);
    } catch (e) {
      expect(isRmqError(e, ErrorCode.IllegalFilterExpression)).toBe(true);
    }
    expect(parseTagExpression("a".repeat(MAX_FILTER_EXPRESSION_LENGTH)).tags.size).toBe(1);
  });
});
