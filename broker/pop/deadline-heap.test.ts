import fc from "fast-check";
import { expect, it } from "vitest";
import { DeadlineHeap } from "./deadline-heap.ts";

it("pops in deadline order, also after a rebuild that drops items", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 1000 }), { maxLength: 200 }),
      fc.integer({ min: 2, max: 5 }),
      (deadlines, drop) => {
        const heap = new DeadlineHeap<{ d: number; id: number }>((x) => x.d);
        for (const [id, d] of deadlines.entries()) heap.push({ d, id });
        heap.rebuild((x) => x.id % drop !== 0);
        const kept = deadlines.filter((_, id) => id % drop !== 0).sort((a, b) => a - b);
        expect(heap.size).toBe(kept.length);
        const out: number[] = [];
        for (let x = heap.pop(); x !== undefined; x = heap.pop()) out.push(x.d);
        expect(out).toEqual(kept);
      },
    ),
    { numRuns: 300 },
  );
});
