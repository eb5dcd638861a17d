import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError, type RmqError } from "./errors.ts";
import {
  MAX_USER_PROPERTY_COUNT,
  MAX_USER_PROPERTY_SIZE,
  validateBody,
  validateKey,
  validateMessageGroup,
  validateTag,
  validateUserProperties,
} from "./message-validator.ts";

function rejection(fn: () => void): RmqError {
  try {
    fn();
  } catch (e) {
    return e as RmqError;
  }
  throw new Error("expected a rejection");
}

describe("tags", () => {
  it("accepts an empty tag (no tag) and ordinary tags", () => {
    expect(() => validateTag("")).not.toThrow();
    expect(() => validateTag("TagA")).not.toThrow();
    expect(() => validateTag("标签")).not.toThrow();
  });
  it("rejects blank tags, '|' (including '||') and control characters", () => {
    for (const [tag, re] of [
      ["  ", /only whitespace/],
      ["a||b", /"a\|\|b".*cannot contain '\|'/],
      ["a|b", /cannot contain '\|'/],
      ["a\u0001b", /"a\\u0001b".*control characters/],
    ] as const) {
      const e = rejection(() => validateTag(tag));
      expect(e.code).toBe(ErrorCode.IllegalMessageTag);
      expect(e.message).toMatch(re);
    }
  });
});

describe("keys and message groups", () => {
  it("rejects blank keys and keys with control characters", () => {
    expect(() => validateKey("order-1")).not.toThrow();
    expect(rejection(() => validateKey(" \t")).code).toBe(ErrorCode.IllegalMessageKey);
    expect(rejection(() => validateKey("a\nb")).message).toMatch(/control characters/);
  });
  it("message groups must be shorter than 64 UTF-8 bytes, as upstream", () => {
    expect(() => validateMessageGroup("g".repeat(63))).not.toThrow();
    const e = rejection(() => validateMessageGroup("g".repeat(64)));
    expect(e.code).toBe(ErrorCode.IllegalMessageGroup);
    expect(e.message).toMatch(/shorter than 64 UTF-8 bytes, this one has 64/);
    expect(rejection(() => validateMessageGroup("组".repeat(22))).message).toMatch(/has 66/); // 3 bytes each
    expect(rejection(() => validateMessageGroup("   ")).message).toMatch(/only whitespace/);
  });
});

describe("user properties", () => {
  it("accepts up to 128 properties and 16 KiB counting tag and keys", () => {
    const props = Object.fromEntries(
      Array.from({ length: MAX_USER_PROPERTY_COUNT }, (_, i) => [`k${i}`, "v"]),
    );
    expect(() => validateUserProperties(props, { tag: "t", keys: ["a"] })).not.toThrow();
    expect(() =>
      validateUserProperties(new Map([["big", "x".repeat(MAX_USER_PROPERTY_SIZE - 3)]])),
    ).not.toThrow();
  });
  it("rejects too many, too large, reserved names and control characters", () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_USER_PROPERTY_COUNT + 1 }, (_, i) => [`k${i}`, "v"]),
    );
    const e1 = rejection(() => validateUserProperties(many));
    expect(e1.code).toBe(ErrorCode.MessagePropertiesTooLarge);
    expect(e1.message).toMatch(/129 user properties, more than the limit of 128/);
    const e2 = rejection(() =>
      validateUserProperties({ a: "x".repeat(MAX_USER_PROPERTY_SIZE) }, { tag: "tag" }),
    );
    expect(e2.code).toBe(ErrorCode.MessagePropertiesTooLarge);
    expect(e2.message).toMatch(/16388 bytes, more than the limit of 16384/);
    for (const reserved of ["UNIQ_KEY", "TAGS", "KEYS", "DELAY", "TIMER_DELIVER_MS"]) {
      const e = rejection(() => validateUserProperties({ [reserved]: "x" }));
      expect(e.code).toBe(ErrorCode.IllegalMessageProperty);
      expect(e.message).toContain(`"${reserved}"`);
      expect(e.message).toMatch(/reserved for system properties/);
    }
    expect(rejection(() => validateUserProperties({ "a\u0000": "x" })).code).toBe(
      ErrorCode.IllegalMessageProperty,
    );
    expect(rejection(() => validateUserProperties({ a: "x\u007f" })).message).toMatch(
      /value .* of user property "a"/,
    );
  });
});

describe("body", () => {
  it("rejects empty and oversized bodies", () => {
    expect(() => validateBody(new Uint8Array(1))).not.toThrow();
    expect(
      isRmqError(
        rejection(() => validateBody(new Uint8Array(0))),
        ErrorCode.MessageBodyEmpty,
      ),
    ).toBe(true);
    const e = rejection(() => validateBody(new Uint8Array(11), 10));
    expect(e.code).toBe(ErrorCode.MessageBodyTooLarge);
    expect(e.message).toMatch(/11 bytes is too large: the limit is 10 bytes/);
  });
});
