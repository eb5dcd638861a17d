import { describe, expect, it } from "vitest";
import { type CheckPointState, InflightTable, inflightKey } from "./inflight-table.ts";

function ck(reviveQid: number, ckOffset: number, popTime = 1000, invisibleTime = 100): CheckPointState {
  return {
    reviveQid,
    ckOffset,
    group: "g",
    topic: "t",
    originTopic: "t",
    queueId: 0,
    popTime,
    invisibleTime,
    remaining: 0,
  };
}

function msgs(n: number, base = 0) {
  return Array.from({ length: n }, (_, index) => ({
    index,
    queueOffset: base + index,
    commitLogOffset: (base + index) * 100,
  }));
}

describe("InflightTable", () => {
  it("hands out due messages once, in deadline order, skipping removed and busy ones", () => {
    const t = new InflightTable();
    const [a0, a1] = t.add(ck(0, 0, 1000, 100), msgs(2));
    const [b0] = t.add(ck(1, 0, 1000, 50), msgs(1, 10));
    if (a0 === undefined || a1 === undefined || b0 === undefined) throw new Error("entries");
    expect(t.takeDue(1049, 10)).toEqual([]);
    expect(t.takeDue(1050, 10)).toEqual([b0]);
    t.remove(a0);
    a1.busy = Promise.resolve();
    expect(t.takeDue(5000, 10)).toEqual([]);
    t.release(a1); // its operation failed: due again at once
    expect(t.takeDue(5000, 10)).toEqual([a1]);
    expect(t.get(inflightKey(0, 0, 1))).toBe(a1);
    expect(t.inflightCount("g", "t", 0)).toBe(2);
  });

  it("commits a revive queue only below its first unresolved check point, and not past a CK write under way", () => {
    const t = new InflightTable();
    const [x] = t.add(ck(0, 3), msgs(1));
    const [y0, y1] = t.add(ck(0, 7), msgs(2));
    if (x === undefined || y0 === undefined || y1 === undefined) throw new Error("entries");
    expect(t.reviveCommitOffset(0, 20)).toBe(3);
    t.remove(x);
    expect(t.reviveCommitOffset(0, 20)).toBe(7);
    t.remove(y0);
    expect(t.reviveCommitOffset(0, 20)).toBe(7);
    t.remove(y1);
    expect(t.reviveCommitOffset(0, 20)).toBe(20);
    t.beginCkWrite(0);
    expect(t.reviveCommitOffset(0, 21)).toBeUndefined();
    t.endCkWrite(0);
    expect(t.reviveCommitOffset(0, 21)).toBe(21);
    expect(t.reviveCommitOffset(1, 5)).toBe(5);
  });

  it("stays compact when most entries are resolved", () => {
    const t = new InflightTable();
    const [old] = t.add(ck(0, 0, 0, 1_000_000), msgs(1));
    for (let i = 1; i <= 5000; i++) {
      const [e] = t.add(ck(0, i), msgs(1, i));
      if (e !== undefined) t.remove(e);
    }
    expect(t.size).toBe(1);
    expect(old?.removed).toBe(false);
    expect(t.reviveCommitOffset(0, 9999)).toBe(0);
    expect(t.nextDeadline()).toBe(1_000_000);
  });

  it("finds a live entry by the exact receipt handle issued for it, and forgets it once removed", () => {
    const t = new InflightTable();
    const [a, b] = t.add(ck(0, 0), msgs(2));
    if (a === undefined || b === undefined) throw new Error("entries");
    expect(t.byReceiptHandle("h-a")).toBeUndefined();
    t.setReceiptHandle(a, "h-a");
    t.setReceiptHandle(b, "h-b");
    expect(t.byReceiptHandle("h-a")).toBe(a);
    expect(t.byReceiptHandle("h-b")).toBe(b);
    expect(t.byReceiptHandle("h-a ")).toBeUndefined();
    t.remove(a);
    expect(t.byReceiptHandle("h-a")).toBeUndefined();
    // A removed entry is never registered again.
    t.setReceiptHandle(a, "h-a2");
    expect(t.byReceiptHandle("h-a2")).toBeUndefined();
    // A busy period that ends without removal keeps the handle.
    b.busy = Promise.resolve();
    t.release(b);
    expect(t.byReceiptHandle("h-b")).toBe(b);
  });
});
