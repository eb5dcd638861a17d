import { describe, expect, it } from "vitest";
import { checkRegisterHistory, type RegisterOp } from "./linearizability.ts";

const INF = Number.POSITIVE_INFINITY;

function set(value: string, call: number, ret: number): RegisterOp {
  return { kind: "set", value, expected: null, ok: true, call, ret };
}
function get(value: string | null, call: number, ret: number): RegisterOp {
  return { kind: "get", value, expected: null, ok: true, call, ret };
}
function cas(
  expected: string | null,
  value: string,
  ok: boolean | undefined,
  call: number,
  ret: number,
): RegisterOp {
  return { kind: "cas", value, expected, ok, call, ret };
}

describe("register linearizability checker (Wing–Gong with memoization)", () => {
  it("accepts a sequential history", () => {
    expect(checkRegisterHistory([set("a", 1, 2), get("a", 3, 4), set("b", 5, 6), get("b", 7, 8)]).ok).toBe(
      true,
    );
  });

  it("rejects a stale read after a completed write", () => {
    expect(checkRegisterHistory([set("a", 1, 2), set("b", 3, 4), get("a", 5, 6)]).ok).toBe(false);
  });

  it("accepts either order for overlapping operations", () => {
    // set(b) overlaps the read: the read may see a or b.
    expect(checkRegisterHistory([set("a", 1, 2), set("b", 3, 6), get("a", 4, 5)]).ok).toBe(true);
    expect(checkRegisterHistory([set("a", 1, 2), set("b", 3, 6), get("b", 4, 5)]).ok).toBe(true);
  });

  it("rejects a read that goes back in time between two reads", () => {
    // Both reads overlap set(b), but once one read saw b, a later read cannot see a.
    expect(checkRegisterHistory([set("a", 1, 2), set("b", 3, 10), get("b", 4, 5), get("a", 6, 7)]).ok).toBe(
      false,
    );
  });

  it("a write that never completed may have happened, or not", () => {
    expect(checkRegisterHistory([set("a", 1, 2), set("x", 3, INF), get("x", 4, 5)]).ok).toBe(true);
    expect(checkRegisterHistory([set("a", 1, 2), set("x", 3, INF), get("a", 4, 5)]).ok).toBe(true);
    // ...but not before it was invoked
    expect(checkRegisterHistory([set("a", 1, 2), get("x", 3, 4), set("x", 5, INF)]).ok).toBe(false);
  });

  it("checks compare-and-set outcomes", () => {
    expect(checkRegisterHistory([set("a", 1, 2), cas("a", "b", true, 3, 4), get("b", 5, 6)]).ok).toBe(true);
    expect(checkRegisterHistory([set("a", 1, 2), cas("z", "b", true, 3, 4)]).ok).toBe(false);
    expect(checkRegisterHistory([set("a", 1, 2), cas("a", "b", false, 3, 4)]).ok).toBe(false);
    expect(checkRegisterHistory([cas(null, "b", true, 1, 2), get("b", 3, 4)]).ok).toBe(true);
    // two successful cas from the same expected value cannot both win
    expect(
      checkRegisterHistory([set("a", 1, 2), cas("a", "b", true, 3, 6), cas("a", "c", true, 4, 5)]).ok,
    ).toBe(false);
    // an indeterminate cas applies only if its comparison holds
    expect(checkRegisterHistory([set("a", 1, 2), cas("z", "b", undefined, 3, INF), get("b", 4, 5)]).ok).toBe(
      false,
    );
  });

  it("handles a larger concurrent history quickly", () => {
    const ops: RegisterOp[] = [];
    let t = 0;
    // 3 clients, 60 rounds; each round all three overlap; values unique.
    for (let r = 0; r < 60; r++) {
      const base = t;
      ops.push(set(`v${r}`, base + 1, base + 6));
      ops.push(get(r === 0 ? null : `v${r - 1}`, base + 2, base + 4));
      ops.push(get(`v${r}`, base + 5, base + 8));
      t += 10;
    }
    const res = checkRegisterHistory(ops);
    expect(res.ok).toBe(true);
    expect(res.steps).toBeLessThan(100_000);
  });

  it("reports an exhausted budget distinctly from a violation", () => {
    const ops: RegisterOp[] = [];
    for (let i = 0; i < 30; i++) ops.push(set(`v${i}`, i, INF));
    ops.push(get("nope", 100, 101));
    const res = checkRegisterHistory(ops, null, 1000);
    expect(res).toMatchObject({ ok: false, reason: "budget-exceeded" });
  });
});
