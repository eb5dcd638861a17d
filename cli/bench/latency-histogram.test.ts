import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { percentile } from "../../bench/stats.ts";
import { createLatencyHistogram, latencySummary } from "./latency-histogram.ts";

describe("latency histogram", () => {
  it("is empty until something is recorded", () => {
    const h = createLatencyHistogram();
    expect(h.count).toBe(0);
    expect(h.percentile(0.5)).toBeNaN();
    expect(h.max).toBe(0);
  });

  it("reports percentiles within 1 % of the exact sample percentile", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.002, max: 600_000, noNaN: true }), { minLength: 1, maxLength: 500 }),
        fc.constantFrom(0.5, 0.9, 0.99, 0.999, 1),
        (samples, q) => {
          const h = createLatencyHistogram();
          for (const s of samples) h.record(s);
          const exact = percentile(
            [...samples].sort((a, b) => a - b),
            q,
          );
          const reported = h.percentile(q);
          expect(reported).toBeLessThanOrEqual(exact * 1.01 + 1e-9);
          expect(reported).toBeGreaterThanOrEqual(exact / 1.01 - 1e-9);
          expect(reported).toBeLessThanOrEqual(h.max);
        },
      ),
    );
  });

  it("adds another histogram and resets", () => {
    const a = createLatencyHistogram();
    const b = createLatencyHistogram();
    for (let i = 1; i <= 100; i++) a.record(i);
    for (let i = 101; i <= 1000; i++) b.record(i);
    a.addAll(b);
    expect(a.count).toBe(1000);
    expect(a.max).toBe(1000);
    const s = latencySummary(a);
    expect(s.p50Ms).toBeGreaterThan(495);
    expect(s.p50Ms).toBeLessThan(505);
    expect(s.p999Ms).toBeGreaterThan(990);
    b.reset();
    expect(b.count).toBe(0);
    expect(b.percentile(0.99)).toBeNaN();
  });

  it("keeps sub-microsecond and over-an-hour samples in the edge buckets", () => {
    const h = createLatencyHistogram();
    h.record(0);
    h.record(10 * 3_600_000);
    expect(h.count).toBe(2);
    expect(h.percentile(0.5)).toBeLessThanOrEqual(0.001);
    expect(h.percentile(1)).toBeLessThanOrEqual(h.max);
  });
});
