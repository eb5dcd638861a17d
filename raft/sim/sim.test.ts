import { describe, expect, it } from "vitest";
import type { UnsafeFlags } from "../core/config.ts";
import { Check } from "./safety-checker.ts";
import { runSimulation, type SimOptions, type SimResult } from "./simulator.ts";

/** Seeds run with faults on; every one must pass every check. */
const SOAK_SEEDS = 1000;
/** Seeds a planted bug may take before the checkers must have caught it. */
const PLANTED_BUG_BUDGET = 1000;
const SLICE = 250;

function failureLine(r: SimResult): string {
  return `seed=${r.seed} check=${r.failure?.check} at=${r.failure?.atMs}ms: ${r.failure?.message} (replay: npm run sim -- --seed ${r.seed} --trace)`;
}

describe("deterministic simulator", () => {
  it("the same seed gives the same trace; another seed gives another", () => {
    const a = runSimulation({ seed: 4242, keepTrace: true });
    const b = runSimulation({ seed: 4242, keepTrace: true });
    const c = runSimulation({ seed: 4243 });
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.trace).toEqual(b.trace);
    expect(a.stats).toEqual(b.stats);
    expect(c.traceHash).not.toBe(a.traceHash);
    // The run did exercise the faults it claims to.
    expect(a.stats.events).toBeGreaterThan(1000);
  });

  for (let from = 1; from <= SOAK_SEEDS; from += SLICE) {
    const to = Math.min(from + SLICE - 1, SOAK_SEEDS);
    it(`seeds ${from}..${to} with faults: safety, linearizability and liveness hold`, () => {
      const started = performance.now();
      const failures: string[] = [];
      const totals = {
        crashes: 0,
        torn: 0,
        partitions: 0,
        dropped: 0,
        snapshotsInstalled: 0,
        opsOk: 0,
        leaderTerms: 0,
        linInconclusive: 0,
      };
      const sizes = new Set<number>();
      for (let seed = from; seed <= to; seed++) {
        const r = runSimulation({ seed });
        if (!r.ok) failures.push(failureLine(r));
        totals.crashes += r.stats.crashes;
        totals.torn += r.stats.tornWrites;
        totals.partitions += r.stats.partitions;
        totals.dropped += r.stats.dropped;
        totals.snapshotsInstalled += r.stats.snapshotsInstalled;
        totals.opsOk += r.stats.opsOk;
        totals.leaderTerms += r.stats.leaderTerms;
        totals.linInconclusive += r.stats.linearizabilityInconclusive;
        sizes.add(r.stats.nodes);
      }
      const secs = (performance.now() - started) / 1000;
      console.log(
        `sim seeds ${from}..${to}: ${failures.length} failed in ${secs.toFixed(1)} s; ${JSON.stringify(totals)}`,
      );
      expect(failures).toEqual([]);
      // The faults really happened (a silent fault injector would make this test vacuous).
      expect(sizes).toEqual(new Set([3, 5]));
      expect(totals.crashes).toBeGreaterThan(SLICE);
      expect(totals.torn).toBeGreaterThan(10);
      expect(totals.partitions).toBeGreaterThan(SLICE);
      expect(totals.dropped).toBeGreaterThan(SLICE);
      expect(totals.snapshotsInstalled).toBeGreaterThan(10);
      expect(totals.opsOk).toBeGreaterThan(SLICE * 100);
      // Histories the linearizability search gave up on (budget) must stay rare.
      expect(totals.linInconclusive).toBeLessThanOrEqual(SLICE / 100);
    }, 300_000);
  }
});

interface PlantedBug {
  name: string;
  options: Partial<SimOptions>;
  /** Checks that may legitimately report this bug. */
  caughtBy: Check[];
}

const SAFETY: Check[] = [
  Check.ElectionSafety,
  Check.LogMatching,
  Check.LeaderCompleteness,
  Check.StateMachineSafety,
  Check.SnapshotConsistency,
  Check.ApplyOrder,
  Check.CoreInvariant,
];

const PLANTED: PlantedBug[] = [
  {
    name: "vote granted without the log up-to-date check",
    options: { unsafe: { skipLogUpToDateCheck: true } satisfies UnsafeFlags },
    caughtBy: SAFETY,
  },
  {
    name: "two votes in one term",
    options: { unsafe: { voteTwicePerTerm: true } },
    caughtBy: [Check.ElectionSafety],
  },
  {
    name: "ReadIndex answered without a quorum round (stale reads)",
    options: { unsafe: { readIndexWithoutQuorum: true } },
    caughtBy: [Check.Linearizability],
  },
  {
    name: "messages sent before the Ready is durable (torn writes lose acked entries)",
    options: { unsafeSendBeforeSync: true },
    caughtBy: SAFETY,
  },
];

describe("planted bugs are caught by the checkers (proof the checkers bite)", () => {
  for (const bug of PLANTED) {
    it(`${bug.name}`, () => {
      let caught: SimResult | undefined;
      let seed = 1;
      for (; seed <= PLANTED_BUG_BUDGET && caught === undefined; seed++) {
        const r = runSimulation({ seed, ...bug.options });
        if (!r.ok) caught = r;
      }
      expect(caught, `not caught within ${PLANTED_BUG_BUDGET} seeds`).toBeDefined();
      const r = caught as SimResult;
      console.log(`planted bug "${bug.name}" caught at ${failureLine(r)}`);
      expect(bug.caughtBy).toContain(r.failure?.check);
      // The failure replays exactly from its seed.
      const again = runSimulation({ seed: r.seed, ...bug.options });
      expect(again.failure).toEqual(r.failure);
      expect(again.traceHash).toBe(r.traceHash);
    }, 300_000);
  }
});
