import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "./errors.ts";
import {
  isNotAllowedSendTopic,
  isSystemTopic,
  SystemTopic,
  validateClientTopic,
  validateSendTopic,
  validateTopicName,
} from "./topic-validator.ts";

function rejection(fn: () => void): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

describe("topic names", () => {
  it("accepts upstream's character set up to 127 chars, and retry/DLQ topics up to 255", () => {
    for (const t of [
      "TopicTest",
      "a-b_c|d%e",
      "0",
      "x".repeat(127),
      `%RETRY%${"g".repeat(248)}`,
      `%DLQ%${"g".repeat(250)}`,
    ]) {
      expect(() => validateTopicName(t)).not.toThrow();
    }
  });

  it("rejects blank, illegal characters and over-long names with the value and the rule", () => {
    const cases: [string, RegExp][] = [
      ["", /blank/],
      ["   ", /blank/],
      ["a.b", /"a\.b".*\^\[%\|a-zA-Z0-9_-\]\+\$/],
      ["topic with space", /may only contain/],
      ["tópico", /may only contain/],
      ["x".repeat(128), /at most 127 characters, this one has 128/],
      [`%RETRY%${"g".repeat(249)}`, /retry or DLQ topic name is at most 255/],
    ];
    for (const [t, re] of cases) {
      const e = rejection(() => validateTopicName(t));
      expect(isRmqError(e, ErrorCode.IllegalTopic)).toBe(true);
      expect(e.message).toMatch(re);
    }
  });
});

describe("system topics", () => {
  it("knows the fixed names, the rmq_sys_ prefix and per-broker names", () => {
    expect(isSystemTopic(SystemTopic.AUTO_CREATE_TOPIC_KEY)).toBe(true);
    expect(isSystemTopic("SCHEDULE_TOPIC_XXXX")).toBe(true);
    expect(isSystemTopic("RMQ_SYS_TRANS_HALF_TOPIC")).toBe(true);
    expect(isSystemTopic("rmq_sys_REVIVE_LOG_DefaultCluster")).toBe(true);
    expect(isSystemTopic("DefaultCluster")).toBe(false);
    expect(isSystemTopic("DefaultCluster", new Set(["DefaultCluster"]))).toBe(true);
    expect(isSystemTopic("TopicTest")).toBe(false);
  });

  it("clients cannot use system topics; nobody can send to the internal ones", () => {
    expect(rejection(() => validateClientTopic("TBW102")).message).toMatch(/"TBW102".*system topic/);
    expect(() => validateClientTopic("TopicTest")).not.toThrow();
    expect(isNotAllowedSendTopic("RMQ_SYS_TRANS_HALF_TOPIC")).toBe(true);
    expect(isNotAllowedSendTopic("TBW102")).toBe(false);
    expect(rejection(() => validateSendTopic("SCHEDULE_TOPIC_XXXX")).message).toMatch(
      /sending to this system topic/,
    );
    expect(() => validateSendTopic("TopicTest")).not.toThrow();
  });
});
