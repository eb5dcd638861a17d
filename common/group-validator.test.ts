import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "./errors.ts";
import { validateClientGroup, validateGroupName } from "./group-validator.ts";

describe("group names", () => {
  it("accepts the topic character set up to 120 characters", () => {
    expect(() => validateGroupName("GID_order-consumer|1%")).not.toThrow();
    expect(() => validateGroupName("g".repeat(120))).not.toThrow();
  });

  it("rejects blank, illegal characters and names over 120 characters, naming value and rule", () => {
    const cases: [string, RegExp][] = [
      ["", /blank/],
      ["group.name", /"group\.name".*may only contain/],
      ["g".repeat(121), /at most 120 characters, this one has 121/],
    ];
    for (const [g, re] of cases) {
      let err: unknown;
      try {
        validateGroupName(g);
      } catch (e) {
        err = e;
      }
      expect(isRmqError(err, ErrorCode.IllegalConsumerGroup)).toBe(true);
      expect((err as Error).message).toMatch(re);
    }
  });

  it("keeps CID_RMQ_SYS_ groups away from clients", () => {
    expect(() => validateClientGroup("CID_RMQ_SYS_TRANS")).toThrow(/reserved for the broker/);
    expect(() => validateGroupName("CID_RMQ_SYS_TRANS")).not.toThrow();
  });
});
