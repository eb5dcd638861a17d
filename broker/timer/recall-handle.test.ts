import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { decodeRecallHandle, encodeRecallHandle } from "./recall-handle.ts";

function codeOf(f: () => unknown): string {
  try {
    f();
    return "OK";
  } catch (e) {
    if (!isRmqError(e)) throw e;
    return e.code;
  }
}

describe("recall handle (upstream RecallMessageHandle.HandleV1)", () => {
  it("is Base64url with padding of `v1 topic broker timestamp id`, as Java's Base64.getUrlEncoder", () => {
    const h = { topic: "TopicA", brokerName: "broker-a", timestampMs: 1700000000001, messageId: "ID1" };
    const s = encodeRecallHandle(h);
    // Java: Base64.getUrlEncoder().encodeToString("v1 TopicA broker-a 1700000000001 ID1".getBytes(UTF_8))
    expect(s).toBe("djEgVG9waWNBIGJyb2tlci1hIDE3MDAwMDAwMDAwMDEgSUQx");
    expect(decodeRecallHandle(s)).toEqual(h);
    const padded = encodeRecallHandle({ ...h, messageId: "ID12" });
    expect(padded.endsWith("=")).toBe(true);
    expect(decodeRecallHandle(padded).messageId).toBe("ID12");
    // Unpadded input decodes too (Java's decoder does not require the padding).
    expect(decodeRecallHandle(padded.replace(/=+$/, "")).messageId).toBe("ID12");
  });

  it("refuses anything else with IllegalArgument", () => {
    const b64 = (s: string) => Buffer.from(s).toString("base64url");
    for (const bad of [
      "",
      "%%%",
      "djEg+VG9w",
      "a",
      b64("v2 T b 1 id"),
      b64("v1 T b 1"),
      b64("v1 T b 1 id extra"),
      b64("v1 T  1 id"),
      b64("v1 T b 1.5 id"),
      b64("v1 T b 99999999999999999999 id"),
      "x".repeat(5000),
    ]) {
      expect(
        codeOf(() => decodeRecallHandle(bad)),
        bad,
      ).toBe(ErrorCode.IllegalArgument);
    }
  });
});
