// npm run sim -- --seed N            replay one run (same seed ⇒ same trace hash); --trace prints it
// npm run sim -- --seeds 10000        soak seeds 1..10000 (--from S to start elsewhere)
// Other flags: --nodes 3|5, --rounds R, --chaos-ms MS, --calm-ms MS, --no-faults,
//   --unsafe flag[,flag] (planted bugs: skipLogUpToDateCheck, commitPreviousTermEntries,
//   voteTwicePerTerm, readIndexWithoutQuorum, leaseReadsWhileLeader, sendBeforeSync),
//   --lease (force LeaseBased reads in every run).
// Exit status 1 if any run failed; every failure prints `seed=<n>` and the failing check.

import { parseArgs } from "node:util";
import type { UnsafeFlags } from "../core/config.ts";
import { ReadOnlyOption } from "../core/read-only.ts";
import { runSimulation, type SimOptions, type SimResult, type SimStats } from "./simulator.ts";

const UNSAFE_FLAGS = [
  "skipLogUpToDateCheck",
  "commitPreviousTermEntries",
  "voteTwicePerTerm",
  "readIndexWithoutQuorum",
  "leaseReadsWhileLeader",
  "sendBeforeSync",
] as const;

function fail(msg: string): never {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(2);
}

function intFlag(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

function main(): number {
  const { values } = parseArgs({
    options: {
      seed: { type: "string" },
      seeds: { type: "string" },
      from: { type: "string" },
      nodes: { type: "string" },
      rounds: { type: "string" },
      "chaos-ms": { type: "string" },
      "calm-ms": { type: "string" },
      "no-faults": { type: "boolean" },
      unsafe: { type: "string" },
      lease: { type: "boolean" },
      trace: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write(
      "usage: sim --seed N [--trace] | --seeds COUNT [--from S]\n" +
        "       [--nodes 3|5] [--rounds R] [--chaos-ms MS] [--calm-ms MS] [--no-faults] [--lease] [--unsafe a,b]\n",
    );
    return 0;
  }
  const nodes = intFlag(values.nodes, "nodes", 3);
  if (nodes !== undefined && nodes !== 3 && nodes !== 5) fail("--nodes must be 3 or 5");
  const unsafe: UnsafeFlags = {};
  let sendBeforeSync = false;
  for (const f of (values.unsafe ?? "").split(",").filter((x) => x !== "")) {
    if (!(UNSAFE_FLAGS as readonly string[]).includes(f))
      fail(`unknown --unsafe flag '${f}' (allowed: ${UNSAFE_FLAGS.join(", ")})`);
    if (f === "sendBeforeSync") sendBeforeSync = true;
    else unsafe[f as keyof UnsafeFlags] = true;
  }
  const base: Omit<SimOptions, "seed"> = {
    ...(nodes !== undefined ? { nodes: nodes as 3 | 5 } : {}),
    ...(values.rounds !== undefined ? { rounds: intFlag(values.rounds, "rounds", 1) as number } : {}),
    ...(values["chaos-ms"] !== undefined
      ? { chaosMs: intFlag(values["chaos-ms"], "chaos-ms", 1) as number }
      : {}),
    ...(values["calm-ms"] !== undefined
      ? { calmMs: intFlag(values["calm-ms"], "calm-ms", 1) as number }
      : {}),
    faults: values["no-faults"] !== true,
    ...(values.lease === true ? { readOnlyOption: ReadOnlyOption.LeaseBased } : {}),
    unsafe,
    unsafeSendBeforeSync: sendBeforeSync,
  };

  if (values.seed !== undefined) {
    const seed = intFlag(values.seed, "seed", 0) as number;
    const started = performance.now();
    const r = runSimulation({ ...base, seed, keepTrace: values.trace === true, diagnose: true });
    const ms = performance.now() - started;
    if (values.trace === true) for (const line of r.trace ?? []) process.stdout.write(`${line}\n`);
    const { unsafe, nodeIds, ...p } = r.params;
    process.stdout.write(
      `params: nodes=${nodeIds.length} ${Object.entries(p)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}\n`,
    );
    process.stdout.write(`${formatStats(r.stats)}\n`);
    if (r.failure !== undefined) {
      process.stdout.write(
        `FAIL seed=${seed} check=${r.failure.check} at=${r.failure.atMs}ms: ${r.failure.message}\n`,
      );
    }
    process.stdout.write(
      `sim: seed=${seed} ${r.ok ? "passed" : "FAILED"} trace=${r.traceHash} (${ms.toFixed(0)} ms)\n`,
    );
    return r.ok ? 0 : 1;
  }

  const count = intFlag(values.seeds ?? "100", "seeds", 1) as number;
  const from = intFlag(values.from ?? "1", "from", 0) as number;
  const started = performance.now();
  const failures: SimResult[] = [];
  const total: SimStats = emptyStats();
  for (let seed = from; seed < from + count; seed++) {
    const r = runSimulation({ ...base, seed });
    addStats(total, r.stats);
    if (!r.ok && r.failure !== undefined) {
      failures.push(r);
      process.stdout.write(
        `FAIL seed=${seed} check=${r.failure.check} at=${r.failure.atMs}ms: ${r.failure.message}\n`,
      );
    }
    const done = seed - from + 1;
    if (done % 1000 === 0 && done < count) {
      process.stdout.write(
        `... ${done}/${count} seeds, ${failures.length} failed, ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
      );
    }
  }
  const secs = (performance.now() - started) / 1000;
  process.stdout.write(`totals: ${formatTotals(total, count)}\n`);
  if (failures.length > 0) {
    const byCheck = new Map<string, number>();
    for (const f of failures)
      byCheck.set(f.failure?.check ?? "?", (byCheck.get(f.failure?.check ?? "?") ?? 0) + 1);
    process.stdout.write(`failures by check: ${[...byCheck].map(([c, n]) => `${c}=${n}`).join(" ")}\n`);
    process.stdout.write(`replay with: npm run sim -- --seed ${failures[0]?.seed} --trace${replayFlags()}\n`);
  }
  process.stdout.write(
    `sim: ${count} seeds (${from}..${from + count - 1}), ${failures.length} failed, ${secs.toFixed(1)} s, ${((secs * 1000) / count).toFixed(1)} ms/seed\n`,
  );
  return failures.length === 0 ? 0 : 1;
}

/** The flags of this invocation that shape a run (everything but the seed range). */
function replayFlags(): string {
  const out: string[] = [];
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--seeds" || a === "--from") {
      i++;
      continue;
    }
    if (a.startsWith("--seeds=") || a.startsWith("--from=")) continue;
    out.push(a);
  }
  return out.length > 0 ? ` ${out.join(" ")}` : "";
}

function emptyStats(): SimStats {
  return {
    nodes: 0,
    virtualMs: 0,
    events: 0,
    messages: 0,
    dropped: 0,
    duplicated: 0,
    crashes: 0,
    tornWrites: 0,
    partitions: 0,
    transfers: 0,
    leaderTerms: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    committed: 0,
    ops: 0,
    opsOk: 0,
    opsTimedOut: 0,
    opsFailed: 0,
    linearizabilitySteps: 0,
    linearizabilityInconclusive: 0,
  };
}

function addStats(into: SimStats, s: SimStats): void {
  for (const k of Object.keys(into) as Array<keyof SimStats>) into[k] += s[k];
}

function formatTotals(s: SimStats, runs: number): string {
  const { nodes, ...rest } = s;
  return `runs=${runs} avgNodes=${(nodes / runs).toFixed(2)} ${formatStats(rest as SimStats)}`;
}

function formatStats(s: Partial<SimStats>): string {
  return Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

// Piping into `head` must not crash the replay.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = main();
