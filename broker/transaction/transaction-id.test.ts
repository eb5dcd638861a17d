import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { decodeTransactionId, encodeTransactionId, transactionIdMatches } from "./transaction-id.ts";

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isRmqError(e) ? e.code : "other";
  }
  return undefined;
}

describe("transaction id", () => {
  it("round-trips the offsets and broker name, and is bound to the message id", () => {
    const f = { brokerName: "broker.a-1", commitLogOffset: 2 ** 40 + 12345, queueOffset: 2 ** 33 + 7 };
    const id = encodeTransactionId(f, "01AABBCC");
    expect(id).toMatch(/^[0-9A-F]{40}\.broker\.a-1$/);
    const d = decodeTransactionId(id);
    expect(d).toMatchObject(f);
    expect(transactionIdMatches(d, "01AABBCC")).toBe(true);
    expect(transactionIdMatches(d, "01AABBCD")).toBe(false);
    // A changed digit anywhere in the hex part breaks the check.
    for (const at of [3, 20, 35]) {
      const changed = `${id.slice(0, at)}${id[at] === "0" ? "1" : "0"}${id.slice(at + 1)}`;
      expect(transactionIdMatches(decodeTransactionId(changed), "01AABBCC")).toBe(false);
    }
  });

  it("refuses anything it did not make", () => {
    const ok = encodeTransactionId({ brokerName: "b", commitLogOffset: 1, queueOffset: 2 }, "m");
    for (const bad of [
      "",
      "abc",
      ok.slice(0, 40),
      `${ok.slice(0, 40)}.`,
      `${ok.slice(0, 40)}-b`,
      `${"G".repeat(40)}.b`,
      `${"F".repeat(16)}${"0".repeat(24)}.b`, // offset beyond 2^53
      `${ok}${"x".repeat(600)}`,
    ]) {
      expect(
        code(() => decodeTransactionId(bad)),
        bad,
      ).toBe(ErrorCode.InvalidTransactionId);
    }
  });
});
