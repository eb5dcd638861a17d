// A latency histogram with logarithmic buckets (each 1 % wider than the one before), so a benchmark
// can record millions of samples in fixed memory and still report p50/p99/p999 within 1 %.

/** Smallest distinguishable value: 1 µs. */
const MIN_VALUE_MS = 0.001;
/** Bucket growth factor: reported percentiles are within 1 % of the true sample. */
const BUCKET_GROWTH = 1.01;
/** Largest distinguishable value: 1 h (larger samples land in the last bucket). */
const MAX_VALUE_MS = 3_600_000;
const LOG_GROWTH = Math.log(BUCKET_GROWTH);
const BUCKETS = Math.ceil(Math.log(MAX_VALUE_MS / MIN_VALUE_MS) / LOG_GROWTH) + 1;

export interface LatencyHistogram {
  record(ms: number): void;
  readonly count: number;
  /** The q-quantile (0 < q ≤ 1) in ms, NaN when empty. Never above the largest sample. */
  percentile(q: number): number;
  /** Largest sample in ms (0 when empty). */
  readonly max: number;
  /** Add every sample of `other`. */
  addAll(other: LatencyHistogram): void;
  reset(): void;
  /** Bucket counts, for addAll. */
  readonly buckets: Readonly<Uint32Array>;
}

export function createLatencyHistogram(): LatencyHistogram {
  const buckets = new Uint32Array(BUCKETS);
  let count = 0;
  let max = 0;
  return {
    record(ms) {
      const index =
        ms <= MIN_VALUE_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_VALUE_MS) / LOG_GROWTH));
      buckets[index] = (buckets[index] as number) + 1;
      count++;
      if (ms > max) max = ms;
    },
    get count() {
      return count;
    },
    get max() {
      return max;
    },
    get buckets() {
      return buckets;
    },
    percentile(q) {
      if (count === 0) return Number.NaN;
      const rank = Math.max(1, Math.ceil(q * count));
      let seen = 0;
      for (let i = 0; i < BUCKETS; i++) {
        seen += buckets[i] as number;
        if (seen >= rank) return Math.min(max, MIN_VALUE_MS * BUCKET_GROWTH ** i);
      }
      return max;
    },
    addAll(other) {
      const from = other.buckets;
      for (let i = 0; i < BUCKETS; i++) buckets[i] = (buckets[i] as number) + (from[i] as number);
      count += other.count;
      if (other.max > max) max = other.max;
    },
    reset() {
      buckets.fill(0);
      count = 0;
      max = 0;
    },
  };
}

export interface LatencySummary {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
}

export function latencySummary(h: LatencyHistogram): LatencySummary {
  return { p50Ms: h.percentile(0.5), p99Ms: h.percentile(0.99), p999Ms: h.percentile(0.999) };
}
