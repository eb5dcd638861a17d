// The Index run on its own thread must behave exactly like the Index run in place: the same files,
// byte for byte, the same query answers and durable point, across flushes, file rolls, re-dispatch,
// ROLLBACK records, truncation and reopening.
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../../test/fixtures/store-fixtures.ts";
import type { DispatchRequest } from "../dispatch.ts";
import { checkpointDirFor } from "./index-checkpoint.ts";
import { type IndexService, openIndexService } from "./index-service.ts";
import { ThreadedIndexService } from "./threaded-index-service.ts";

const BASE_TS = Date.UTC(2024, 0, 1, 12, 0, 0);
const SIZE = 100;
const ALL: [number, number] = [0, Number.MAX_SAFE_INTEGER];

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function req(
  i: number,
  keys: string | undefined,
  opts: { uniq?: boolean; sysFlag?: number } = {},
): DispatchRequest {
  return {
    topic: i % 5 === 0 ? "OtherTopic" : "TopicTest",
    queueId: 0,
    queueOffset: i,
    commitLogOffset: i * SIZE,
    size: SIZE,
    tagsCode: 0,
    storeTimestamp: BASE_TS + i * 700,
    bornTimestamp: BASE_TS,
    sysFlag: opts.sysFlag ?? 0,
    keys,
    uniqKey: opts.uniq === false ? undefined : `UNIQ-${i}`,
    preparedTransactionOffset: 0,
    properties: new Map(),
  };
}

/** Every file under the index dir and its checkpoint dir, in name order (file names are creation times). */
function contents(dir: string): Buffer[] {
  const out: Buffer[] = [];
  for (const d of [dir, checkpointDirFor(dir)])
    for (const n of fs.readdirSync(d).sort()) out.push(fs.readFileSync(path.join(d, n)));
  return out;
}

async function pair(): Promise<{ local: IndexService; threaded: IndexService; dirs: [string, string] }> {
  const t = tempDir("threaded-index");
  cleanups.push(t.remove);
  const dirs: [string, string] = [path.join(t.dir, "a", "index"), path.join(t.dir, "b", "index")];
  const opts = { maxHashSlotNum: 7, maxIndexNum: 40 };
  const local = await openIndexService({ dir: dirs[0], ...opts });
  const threaded = await ThreadedIndexService.open({ dir: dirs[1], ...opts });
  cleanups.push(
    () => local.close(),
    () => threaded.close(),
  );
  return { local, threaded, dirs };
}

async function sameAnswers(a: IndexService, b: IndexService, upTo: number): Promise<void> {
  for (const [topic, key] of [
    ["TopicTest", "k1"],
    ["TopicTest", "shared"],
    ["OtherTopic", "shared"],
    ["TopicTest", `UNIQ-${upTo - 1}`],
    ["TopicTest", "rolled"],
  ] as const) {
    expect(await b.query(topic, key, 1000, ...ALL), `${topic}#${key}`).toEqual(
      await a.query(topic, key, 1000, ...ALL),
    );
  }
  expect(b.durableMaxPhyOffset).toBe(a.durableMaxPhyOffset);
}

describe("ThreadedIndexService", () => {
  it("builds the same files and answers as the Index run in place", async () => {
    const { local, threaded, dirs } = await pair();
    const feed = (from: number, to: number) => {
      const batch: DispatchRequest[] = [];
      for (let i = from; i < to; i++) {
        const sysFlag = i % 11 === 0 ? 0xc : i % 7 === 0 ? 0x4 : 0;
        batch.push(
          req(i, i % 3 === 0 ? undefined : `k${i % 4} shared  x${i}`, { uniq: i % 6 !== 0, sysFlag }),
        );
      }
      for (const s of [local, threaded]) {
        if (s.dispatchBatch !== undefined) s.dispatchBatch(batch);
        else for (const r of batch) s.dispatch(r);
      }
    };
    feed(0, 30);
    feed(20, 45); // partly again: skipped below what is indexed
    await sameAnswers(local, threaded, 45);
    await Promise.all([local.flush(), threaded.flush()]);
    await sameAnswers(local, threaded, 45);
    expect(contents(dirs[1])).toEqual(contents(dirs[0]));
    feed(45, 120); // rolls files (40 entries each)
    await Promise.all([local.flush(), threaded.flush()]);
    expect(contents(dirs[1])).toEqual(contents(dirs[0]));
    await Promise.all([local.truncate(70 * SIZE), threaded.truncate(70 * SIZE)]);
    feed(70, 90);
    await Promise.all([local.flush(), threaded.flush()]);
    await sameAnswers(local, threaded, 90);
    expect(contents(dirs[1])).toEqual(contents(dirs[0]));
    expect(await threaded.deleteExpired(60 * SIZE)).toBe(await local.deleteExpired(60 * SIZE));
    expect(contents(dirs[1])).toEqual(contents(dirs[0]));
  });

  it("takes large batches of many-key records as one (the packed form grows)", async () => {
    const { local, threaded, dirs } = await pair();
    const batch: DispatchRequest[] = [];
    for (let i = 0; i < 3000; i++) batch.push(req(i, `a${i % 3} b${i % 5} c${i % 7} d${i}`));
    local.dispatchBatch?.(batch);
    threaded.dispatchBatch?.(batch);
    await Promise.all([local.flush(), threaded.flush()]);
    expect(contents(dirs[1])).toEqual(contents(dirs[0]));
    expect(await threaded.query("TopicTest", "d2999", 10, ...ALL)).toEqual([2999 * SIZE]);
  });

  it("fails to open, and stops its thread, when the Index cannot be opened", async () => {
    const t = tempDir("threaded-index");
    cleanups.push(t.remove);
    const notADir = path.join(t.dir, "file");
    fs.writeFileSync(notADir, "x");
    await expect(
      ThreadedIndexService.open({ dir: path.join(notADir, "index"), maxHashSlotNum: 7, maxIndexNum: 40 }),
    ).rejects.toThrow(/could not be opened/);
  });

  it("reopens with the durable point it flushed, refuses dispatch once closed", async () => {
    const { threaded, dirs } = await pair();
    threaded.dispatchBatch?.([req(1, "a"), req(2, "b")]);
    await threaded.flush();
    expect(threaded.durableMaxPhyOffset).toBe(3 * SIZE);
    threaded.dispatch(req(3, "c")); // close flushes it
    await threaded.close();
    expect(() => threaded.dispatch(req(4, "d"))).toThrow(/closed/);
    const again = await ThreadedIndexService.open({ dir: dirs[1], maxHashSlotNum: 7, maxIndexNum: 40 });
    cleanups.push(() => again.close());
    expect(again.durableMaxPhyOffset).toBe(4 * SIZE);
    expect(await again.query("TopicTest", "c", 10, ...ALL)).toEqual([3 * SIZE]);
  });
});
