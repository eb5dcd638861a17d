// kill -9 at random points while a child process appends: every message the child saw acknowledged
// must survive, intact and readable by queue offset and by key, and no corrupt record may be served.
// Seeded: the seed is printed, and STORE_CRASH_SEED=<seed> replays the same kill points and messages.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { FlushDiskType } from "../broker/store/config.ts";
import type { StoredMessage } from "../broker/store/message-codec.ts";
import { createMessageStore, type MessageStore } from "../broker/store/message-store.ts";
import {
  CRASH_QUEUES,
  CRASH_TOPICS,
  crashStoreConfig,
  crashTopic,
  mulberry32,
} from "./fixtures/store-crash-plan.ts";
import { bodyId, STORE_HOST, tempDir } from "./fixtures/store-fixtures.ts";

const RUNS = Number(process.env.STORE_CRASH_RUNS ?? 50);
const SEED = Number(process.env.STORE_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CHILD = fileURLToPath(new URL("./fixtures/store-crash-child.ts", import.meta.url));
/** Ids of run r start at r * ID_STRIDE, so ids never repeat even for messages written but never acked. */
const ID_STRIDE = 1_000_000;

interface Ack {
  id: number;
  topic: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  size: number;
}

interface ChildRun {
  acks: Ack[];
  errors: string[];
  stderr: string;
  sawReady: boolean;
}

interface StartedChild {
  /** Resolves once the child has loaded its code and waits for GO. */
  booted: Promise<void>;
  /** Lets the child open the store; it is killed `afterReadyMs` after READY, or `afterGoMs` after GO. */
  go(afterReadyMs: number | undefined, afterGoMs: number | undefined): Promise<ChildRun>;
}

/** Spawns a child that boots and then waits for GO (so its start-up overlaps the parent's checks). */
function startChild(compileCacheDir: string, args: object): StartedChild {
  const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], {
    stdio: ["pipe", "pipe", "pipe"],
    // Children start 50+ times: reuse Node's compile cache (it keeps the type-stripped sources too).
    env: { ...process.env, NODE_COMPILE_CACHE: compileCacheDir },
  });
  const acks: Ack[] = [];
  const errors: string[] = [];
  let stderr = "";
  let pending = "";
  let sawReady = false;
  let killAfterReady: number | undefined;
  let onBooted: () => void = () => {};
  const booted = new Promise<void>((r) => {
    onBooted = r;
  });
  const kill = () => child.kill("SIGKILL");
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
      const f = line.split(" ");
      if (f[0] === "A") {
        acks.push({
          id: Number(f[1]),
          topic: f[2] as string,
          queueId: Number(f[3]),
          queueOffset: Number(f[4]),
          commitLogOffset: Number(f[5]),
          size: Number(f[6]),
        });
      } else if (f[0] === "BOOTED") {
        onBooted();
      } else if (f[0] === "READY") {
        sawReady = true;
        if (killAfterReady !== undefined) setTimeout(kill, killAfterReady);
      } else if (line.length > 0) {
        errors.push(line);
      }
    }
  });
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (c: string) => {
    stderr += c;
  });
  child.stdin.on("error", () => {}); // the child may already be gone
  // A half-written last line (killed mid-write) is not an acknowledgement: `pending` is dropped.
  const closed = new Promise<ChildRun>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      onBooted();
      resolve({ acks, errors, stderr, sawReady });
    });
  });
  return {
    booted,
    go(afterReadyMs, afterGoMs) {
      killAfterReady = afterReadyMs;
      child.stdin.write("GO\n");
      if (afterGoMs !== undefined) setTimeout(kill, afterGoMs);
      return closed;
    },
  };
}

async function readQueue(store: MessageStore, topic: string, queueId: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let next = store.getMinOffsetInQueue(topic, queueId);
  const max = store.getMaxOffsetInQueue(topic, queueId);
  while (next < max) {
    const r = await store.getMessage(topic, queueId, next, 256);
    out.push(...r.messages);
    if (r.nextBeginOffset <= next) break;
    next = r.nextBeginOffset;
  }
  return out;
}

describe("store crash safety", () => {
  it(`loses no acknowledged message across ${RUNS} SIGKILLs (seed ${SEED})`, async () => {
    console.log(`store-crash: seed=${SEED} runs=${RUNS} (replay with STORE_CRASH_SEED=${SEED})`);
    const t = tempDir("store-crash");
    const rand = mulberry32(SEED);
    const acked = new Map<string, Ack>();
    const all: Ack[] = [];
    let killsWithAcks = 0;
    try {
      const cacheDir = join(t.dir, "compile-cache");
      const storeDir = join(t.dir, "store");
      const plan = (run: number) => ({ sync: run % 2 === 1, childSeed: Math.floor(rand() * 2 ** 31) });
      let nextPlan = plan(0);
      let warm = startChild(cacheDir, {
        dir: storeDir,
        sync: nextPlan.sync,
        seed: nextPlan.childSeed,
        startId: 0,
      });
      for (let run = 0; run < RUNS; run++) {
        const { sync, childSeed } = nextPlan;
        const early = rand() < 0.12;
        const delay = early ? Math.floor(rand() * 400) : 5 + Math.floor(rand() * 150);
        const tChild = performance.now();
        const res = await warm.go(early ? undefined : delay, early ? delay : undefined);
        const ctx = `seed=${SEED} run=${run} ${sync ? "SYNC" : "ASYNC"} kill=${early ? "after GO" : "after READY"}+${delay}ms`;
        expect(res.errors, `${ctx}: child reported errors\n${res.stderr}`).toEqual([]);
        if (!early) expect(res.sawReady, `${ctx}: child never got ready\n${res.stderr}`).toBe(true);
        if (res.acks.length > 0) killsWithAcks++;
        const runAcks = [...res.acks];
        if (rand() < 0.15) {
          // Sometimes a second child recovers the crashed store itself and is killed early, often
          // in the middle of that recovery (scan, truncation, ConsumeQueue rebuild, checkpoint).
          const second = startChild(cacheDir, {
            dir: storeDir,
            sync: !sync,
            seed: childSeed + 1,
            startId: run * ID_STRIDE + ID_STRIDE / 2,
          });
          await second.booted;
          const again = await second.go(undefined, Math.floor(rand() * 80));
          expect(again.errors, `${ctx}: recovering child reported errors\n${again.stderr}`).toEqual([]);
          runAcks.push(...again.acks);
        }
        for (const a of runAcks) {
          acked.set(`${a.topic}:${a.queueId}:${a.queueOffset}`, a);
          all.push(a);
        }

        // Warm the next child up while this run is checked.
        if (run + 1 < RUNS) {
          nextPlan = plan(run + 1);
          warm = startChild(cacheDir, {
            dir: storeDir,
            sync: nextPlan.sync,
            seed: nextPlan.childSeed,
            startId: (run + 1) * ID_STRIDE,
          });
        }
        const tOpen = performance.now();
        // Reopen (this is the crash recovery) and check everything acknowledged so far.
        const store = await createMessageStore(crashStoreConfig(storeDir, FlushDiskType.ASYNC_FLUSH), {
          storeHost: STORE_HOST,
        });
        try {
          const rep = store.recoveryReport;
          const ackedEnd = all.reduce((m, a) => Math.max(m, a.commitLogOffset + a.size), 0);
          expect(
            store.getMaxPhyOffset(),
            `${ctx}: log shorter than what was acknowledged`,
          ).toBeGreaterThanOrEqual(ackedEnd);
          if (rep.truncated !== undefined)
            expect(rep.truncated.offset, `${ctx}: cut below acked data`).toBeGreaterThanOrEqual(ackedEnd);
          const served = new Map<string, StoredMessage>();
          const problems: string[] = [];
          for (const topic of CRASH_TOPICS) {
            for (let q = 0; q < CRASH_QUEUES; q++) {
              const msgs = await readQueue(store, topic, q);
              const min = store.getMinOffsetInQueue(topic, q);
              // Every unit of the queue is served (no hole), each record intact and in its place.
              expect(msgs.length, `${ctx}: ${topic}/${q} has holes`).toBe(
                store.getMaxOffsetInQueue(topic, q) - min,
              );
              // Plain checks per message (vitest's expect is too slow for tens of thousands of calls).
              msgs.forEach((m, i) => {
                const id = bodyId(m.body);
                const where = `${topic}/${q}/${m.queueOffset}`;
                if (id === undefined) problems.push(`damaged body served at ${where}`);
                else if (m.topic !== crashTopic(id) || m.properties.get("KEYS") !== `k-${id}`)
                  problems.push(`wrong message at ${where}`);
                if (m.queueOffset !== min + i)
                  problems.push(`queue offset ${m.queueOffset} where ${min + i} was due in ${topic}/${q}`);
                served.set(`${topic}:${q}:${m.queueOffset}`, m);
              });
            }
          }
          for (const [k, a] of acked) {
            const m = served.get(k);
            if (m === undefined || bodyId(m.body) !== a.id)
              problems.push(`acknowledged message ${a.id} (${k}) lost`);
            else if (m.commitLogOffset !== a.commitLogOffset || m.storeSize !== a.size)
              problems.push(`acknowledged message ${a.id} moved`);
          }
          expect(problems.slice(0, 20), ctx).toEqual([]);
          // By key: all of this run's acks and a few older ones.
          const sample = [
            ...runAcks,
            ...Array.from({ length: 10 }, () => all[Math.floor(rand() * all.length)]),
          ];
          for (const a of sample) {
            if (a === undefined) continue;
            const found = await store.queryMessageByKey(a.topic, `k-${a.id}`, 4, 0, Number.MAX_SAFE_INTEGER);
            if (found.length !== 1 || bodyId((found[0] as StoredMessage).body) !== a.id)
              problems.push(`key k-${a.id} not found`);
          }
          expect(problems.slice(0, 20), ctx).toEqual([]);
        } finally {
          await store.shutdown();
        }
        if (process.env.STORE_CRASH_VERBOSE)
          console.log(
            `${ctx} acks=${res.acks.length} childMs=${(tOpen - tChild).toFixed(0)} verifyMs=${(performance.now() - tOpen).toFixed(0)} scan=${store.recoveryReport.recordsScanned}`,
          );
      }
      // A final pass: every acknowledged message by key.
      const store = await createMessageStore(crashStoreConfig(storeDir, FlushDiskType.ASYNC_FLUSH), {
        storeHost: STORE_HOST,
      });
      try {
        const problems: string[] = [];
        for (const a of all) {
          const found = await store.queryMessageByKey(a.topic, `k-${a.id}`, 4, 0, Number.MAX_SAFE_INTEGER);
          if (found.length !== 1 || found[0]?.commitLogOffset !== a.commitLogOffset)
            problems.push(`key k-${a.id}`);
        }
        expect(problems.slice(0, 20), `seed=${SEED}: keys not found`).toEqual([]);
      } finally {
        await store.shutdown();
      }
      console.log(
        `store-crash: ${all.length} acknowledged messages over ${RUNS} kills (${killsWithAcks} with acks), none lost`,
      );
      // The kills must land while appends are acknowledged, not only around start-up.
      expect(killsWithAcks).toBeGreaterThanOrEqual(RUNS / 5);
    } finally {
      t.remove();
    }
  }, 180_000);
});
