// Random sequences of dispatch / flush / crash-and-recover / truncate against a plain model of what
// was dispatched. After every step, each key's query must return exactly the model's records whose
// keys share the key's hash (the index cannot do better; the caller re-checks), newest first.
// A crash copies the directory as it is on disk (unflushed pages lost), reopens it, and re-dispatches
// from durableMaxPhyOffset as CommitLog recovery would: a durable point set too high loses records.
// A crash during a flush keeps, page by page at random, the content from before or after the flush,
// and every checkpoint from before it (a checkpoint is written last, after an fdatasync).

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import type { DispatchRequest } from "../dispatch.ts";
import { checkpointDirFor } from "./index-checkpoint.ts";
import { indexKeyHash } from "./index-file.ts";
import { type DefaultIndexService, openIndexService } from "./index-service.ts";

const TOPIC = "T";
const SIZE = 10;
const KEYS = ["a", "b", "c", "d", "Aa", "BB", "e f"];

type Step =
  | { op: "dispatch"; keys: number[][] }
  | { op: "flush" }
  | { op: "crash" }
  | { op: "crashDuringFlush"; pick: number }
  | { op: "truncate"; back: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("dispatch" as const),
      keys: fc.array(fc.array(fc.nat(KEYS.length - 1), { maxLength: 3 }), { minLength: 1, maxLength: 12 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 2, arbitrary: fc.constant({ op: "crash" as const }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("crashDuringFlush" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("truncate" as const), back: fc.nat(15) }) },
);

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function request(i: number, keyIdx: number[]): DispatchRequest {
  return {
    topic: TOPIC,
    queueId: 0,
    queueOffset: i,
    commitLogOffset: i * SIZE,
    size: SIZE,
    tagsCode: 0,
    storeTimestamp: 1_700_000_000_000 + i * 700,
    bornTimestamp: 0,
    sysFlag: 0,
    keys: keyIdx.map((k) => KEYS[k]).join(" "),
    uniqKey: `U${i % 5}`,
    preparedTransactionOffset: 0,
    properties: new Map(),
  };
}

function tokens(r: DispatchRequest): string[] {
  return [r.uniqKey as string, ...(r.keys ?? "").split(" ").filter((k) => k.length > 0)];
}

describe("IndexService against a model", () => {
  it("answers every query like the model through crashes, truncations and file rolls", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 2, max: 12 }),
        fc.array(stepArb, { minLength: 1, maxLength: 25 }),
        async (slots, entries, steps) => {
          const root = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-index-model-"));
          dirs.push(root);
          let dir = path.join(root, "index-0");
          const open = (d: string) =>
            openIndexService({ dir: d, maxHashSlotNum: slots, maxIndexNum: entries, maxCachedPages: 4 });
          let idx: DefaultIndexService = await open(dir);
          const log: DispatchRequest[] = []; // the CommitLog: record i at log[i]
          try {
            for (const step of steps) {
              if (step.op === "dispatch") {
                for (const k of step.keys) {
                  const r = request(log.length, k);
                  log.push(r);
                  idx.dispatch(r);
                }
              } else if (step.op === "flush") {
                await idx.flush();
              } else if (step.op === "crash" || step.op === "crashDuringFlush") {
                const copy = path.join(root, `index-${fs.readdirSync(root).length}`);
                const [src, srcCkpt, dst, dstCkpt] = [
                  dir,
                  checkpointDirFor(dir),
                  copy,
                  checkpointDirFor(copy),
                ];
                fs.mkdirSync(dst);
                fs.mkdirSync(dstCkpt);
                if (step.op === "crash") {
                  fs.cpSync(src, dst, { recursive: true });
                  fs.cpSync(srcCkpt, dstCkpt, { recursive: true });
                } else {
                  const before = new Map(
                    fs.readdirSync(src).map((f) => [f, fs.readFileSync(path.join(src, f))]),
                  );
                  const ckptsBefore = fs
                    .readdirSync(srcCkpt)
                    .map((f) => [f, fs.readFileSync(path.join(srcCkpt, f))] as const);
                  await idx.flush();
                  for (const [f, bytes] of ckptsBefore) fs.writeFileSync(path.join(dstCkpt, f), bytes); // checkpoints are written last
                  let bits = step.pick;
                  for (const f of fs.readdirSync(src)) {
                    const after = fs.readFileSync(path.join(src, f));
                    const old = before.get(f);
                    const mixed = Buffer.from(after);
                    for (
                      let page = 0;
                      page * 4096 < mixed.length;
                      page++, bits = (bits * 1103515245 + 12345) >>> 0
                    ) {
                      if ((bits & 4) === 0) continue; // this page's write reached the disk
                      const from = page * 4096;
                      const to = Math.min(mixed.length, from + 4096);
                      if (old === undefined) mixed.fill(0, from, to);
                      else old.copy(mixed, from, from, to);
                    }
                    fs.writeFileSync(path.join(dst, f), mixed);
                  }
                }
                await idx.close().catch(() => {});
                dir = copy;
                idx = await open(dir);
                const from = idx.durableMaxPhyOffset / SIZE;
                expect(Number.isInteger(from) && from <= log.length).toBe(true);
                for (let i = from; i < log.length; i++) idx.dispatch(log[i] as DispatchRequest);
              } else {
                const keep = Math.max(0, log.length - step.back);
                log.length = keep;
                await idx.truncate(keep * SIZE);
              }
              for (const key of [...KEYS.flatMap((k) => k.split(" ")), "U0", "U3"]) {
                const h = indexKeyHash(`${TOPIC}#${key}`);
                const want = log
                  .filter((r) => tokens(r).some((t) => indexKeyHash(`${TOPIC}#${t}`) === h))
                  .map((r) => r.commitLogOffset)
                  .reverse();
                expect(await idx.query(TOPIC, key, 10_000, 0, Number.MAX_SAFE_INTEGER)).toEqual(want);
              }
            }
          } finally {
            await idx.close().catch(() => {});
          }
        },
      ),
      { numRuns: Number(process.env.INDEX_MODEL_RUNS ?? 30) },
    );
  });
});
