import { describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../common/errors.ts";
import { LiteSubscriptionAction as A, createLiteSubscriptionRegistry } from "./lite-subscriptions.ts";

describe("lite subscription registry", () => {
  it("applies the four actions per client, group and topic, and reports what was added", () => {
    const r = createLiteSubscriptionRegistry();
    expect(r.sync("c1", "g", "T", A.PARTIAL_ADD, ["a", "b"], 10)).toEqual(["a", "b"]);
    expect(r.sync("c1", "g", "T", A.PARTIAL_ADD, ["b", "c"], 10)).toEqual(["c"]);
    expect(r.liteTopicsOf("c1", "g", "T")).toEqual(["a", "b", "c"]);
    expect(r.liteTopicsOf("c1", "g", "Other")).toEqual([]);
    expect(r.liteTopicsOf("c2", "g", "T")).toEqual([]);
    r.sync("c1", "g", "T", A.PARTIAL_REMOVE, ["a"], 10);
    expect(r.liteTopicsOf("c1", "g", "T")).toEqual(["b", "c"]);
    expect(r.sync("c1", "g", "T", A.COMPLETE_ADD, ["x", "b"], 10)).toEqual(["x"]);
    expect(r.liteTopicsOf("c1", "g", "T").sort()).toEqual(["b", "x"]);
    expect(r.size()).toBe(2);
    r.sync("c1", "g", "T", A.COMPLETE_REMOVE, [], 10);
    expect(r.liteTopicsOf("c1", "g", "T")).toEqual([]);
    expect(r.size()).toBe(0);
  });

  it("refuses growth past the client's quota and changes nothing then", () => {
    const r = createLiteSubscriptionRegistry();
    r.sync("c1", "g", "T", A.PARTIAL_ADD, ["a", "b"], 3);
    let err: unknown;
    try {
      r.sync("c1", "g", "T", A.PARTIAL_ADD, ["c", "d"], 3);
    } catch (e) {
      err = e;
    }
    expect((err as RmqError).code).toBe(ErrorCode.LiteSubscriptionQuotaExceeded);
    expect(r.liteTopicsOf("c1", "g", "T")).toEqual(["a", "b"]);
    // Shrinking is always allowed, even under a lowered quota.
    r.sync("c1", "g", "T", A.COMPLETE_ADD, ["a"], 0);
    expect(r.liteTopicsOf("c1", "g", "T")).toEqual(["a"]);
  });

  it("wakes a held receive when the client's set changes or the client goes; times out otherwise", async () => {
    const r = createLiteSubscriptionRegistry();
    const never = new AbortController().signal;
    const t0 = performance.now();
    await r.waitForChange("c1", 50, never);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
    const woken = r.waitForChange("c1", 10_000, never);
    r.sync("c1", "g", "T", A.PARTIAL_ADD, ["a"], 10);
    await woken;
    const gone = r.waitForChange("c1", 10_000, never);
    r.removeClient("c1");
    await gone;
    expect(r.size()).toBe(0);
    const aborted = new AbortController();
    const waiting = r.waitForChange("c2", 10_000, aborted.signal);
    aborted.abort();
    await waiting;
  });
});
