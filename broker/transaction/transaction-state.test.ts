import { describe, expect, it } from "vitest";
import { TransactionState } from "./transaction-state.ts";

describe("transaction state", () => {
  it("a transaction is resolved once an op lists it or the walk passed its live record", () => {
    const s = new TransactionState(10);
    expect(s.isResolved(5)).toBe(true); // passed, never re-appended
    expect(s.isResolved(12)).toBe(false);
    s.setLatestCopy(5, 20); // 5 was re-appended at 20: pending again
    expect(s.isResolved(5)).toBe(false);
    s.addOp(3, [12]);
    expect(s.isResolved(12)).toBe(true);
    expect(s.claim(12)).toBe(false);
    expect(s.claim(5)).toBe(true);
    expect(s.claim(5)).toBe(false);
    s.release(5);
    expect(s.isResolved(5)).toBe(false);
  });

  it("forgets what the walk passed, and commits the op offset only past records fully forgotten", () => {
    const s = new TransactionState(0);
    s.addOp(0, [1, 2]);
    s.addOp(1, [3]);
    s.setLatestCopy(2, 8);
    s.advance(4);
    s.prune();
    // 1 and 3 passed; 2 lives on at 8, so op record 0 is still needed.
    expect(s.stats()).toMatchObject({ opEntries: 1, copies: 1 });
    expect(s.opCommitOffset(2)).toBe(0);
    expect(s.isResolved(1)).toBe(true);
    expect(s.isResolved(2)).toBe(true);
    s.advance(9);
    s.prune();
    expect(s.stats()).toMatchObject({ opEntries: 0, copies: 0 });
    expect(s.opCommitOffset(2)).toBe(2);
    expect(s.isResolved(2)).toBe(true);
    s.advance(3); // never backwards
    expect(s.halfOffset).toBe(9);
  });
});
