import { describe, expect, it } from "vitest";
import { RecentlyAcked } from "./recently-acked.ts";

describe("RecentlyAcked", () => {
  it("remembers exactly the acked indexes of a CK, beyond 32 too", () => {
    const r = new RecentlyAcked(100);
    r.add(3, 17, [0, 5, 31, 32, 70]);
    for (const i of [0, 5, 31, 32, 70]) expect(r.has(3, 17, i)).toBe(true);
    for (const i of [1, 30, 33, 64, 71]) expect(r.has(3, 17, i)).toBe(false);
    expect(r.has(2, 17, 0)).toBe(false);
    expect(r.has(3, 18, 0)).toBe(false);
    r.add(3, 17, [1]);
    expect(r.has(3, 17, 1)).toBe(true);
    expect(r.has(3, 17, 0)).toBe(true);
  });

  it("forgets the oldest CKs first and keeps at most the limit", () => {
    const r = new RecentlyAcked(4);
    for (let ck = 0; ck < 10; ck++) r.add(0, ck, [0]);
    const kept = Array.from({ length: 10 }, (_, ck) => r.has(0, ck, 0));
    expect(kept.filter(Boolean).length).toBeLessThanOrEqual(4);
    expect(kept[9]).toBe(true);
    expect(kept[0]).toBe(false);
    const none = new RecentlyAcked(0);
    none.add(0, 0, [0]);
    expect(none.has(0, 0, 0)).toBe(false);
  });
});
