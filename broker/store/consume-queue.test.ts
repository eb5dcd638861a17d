import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  bodyId,
  STORE_HOST,
  smallStoreConfig,
  tempDir,
  testMessage,
} from "../../test/fixtures/store-fixtures.ts";
import {
  ConsumeQueue,
  CQ_BLANK_UNIT_SIZE,
  CQ_STORE_UNIT_SIZE,
  unitOffset,
  unitSize,
  unitTagsCode,
} from "./consume-queue.ts";
import { offset2FileName } from "./mapped-file.ts";
import { createMessageStore } from "./message-store.ts";
import { GetMessageStatus } from "./message-store-types.ts";
import { nodeFileIo } from "./store-io.ts";
import { javaStringHashCode } from "./tags-code.ts";

const UNITS_PER_FILE = 16;
const FILE_SIZE = UNITS_PER_FILE * CQ_STORE_UNIT_SIZE;
const io = nodeFileIo;
const noSync = async () => {};
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function queueDir(): string {
  const t = tempDir("cq");
  cleanups.push(t.remove);
  const dir = join(t.dir, "TopicA", "3");
  mkdirSync(dir, { recursive: true });
  return dir;
}

async function load(dir: string): Promise<ConsumeQueue> {
  const cq = await ConsumeQueue.load(dir, "TopicA", 3, FILE_SIZE, io);
  cleanups.push(() => cq.close());
  return cq;
}

/** Reads units [from, to) through getUnits, which may return fewer than asked at a file boundary. */
async function readAll(cq: ConsumeQueue, from: number, to: number): Promise<Array<[number, number, number]>> {
  const out: Array<[number, number, number]> = [];
  for (let i = from; i < to; ) {
    const buf = await cq.getUnits(i, to - i, io);
    if (buf === undefined || buf.length === 0) throw new Error(`no units at ${i}`);
    for (let j = 0; j < buf.length / CQ_STORE_UNIT_SIZE; j++)
      out.push([unitOffset(buf, j), unitSize(buf, j), unitTagsCode(buf, j)]);
    i += buf.length / CQ_STORE_UNIT_SIZE;
  }
  return out;
}

const unit = (i: number): [number, number, number] => [1000 + i * 100, 100, i % 2 === 0 ? -5 : 2 ** 40 + i];

describe("ConsumeQueue", () => {
  it("stores 20-byte units across segment files and reads them back from memory and from disk", async () => {
    const dir = queueDir();
    const cq = await load(dir);
    for (let i = 0; i < 100; i++) expect(cq.putUnit(...unit(i), i)).toBe(true);
    expect(await readAll(cq, 0, 100)).toEqual(Array.from({ length: 100 }, (_, i) => unit(i)));
    await cq.writeOut(io, noSync);
    await cq.sync(io);
    const files = readdirSync(dir).sort();
    expect(files).toEqual(Array.from({ length: 7 }, (_, i) => offset2FileName(i * FILE_SIZE)));
    // Unit n sits at byte n*20 of the queue: check one in the third file directly.
    const f2 = readFileSync(join(dir, offset2FileName(2 * FILE_SIZE)));
    expect(Number(f2.readBigInt64BE((37 - 32) * 20))).toBe(unit(37)[0]);
    // A fresh load has no tail in memory: every read goes to the files, across their boundaries.
    await cq.close();
    const again = await load(dir);
    expect(again.minLogicOffset).toBe(0);
    expect(again.maxLogicOffset).toBe(100);
    expect(again.maxPhysicOffset).toBe(unit(99)[0] + 100);
    expect(await readAll(again, 10, 90)).toEqual(Array.from({ length: 80 }, (_, i) => unit(10 + i)));
    const partial = await again.getUnits(10, 50, io);
    expect(partial?.length).toBe((UNITS_PER_FILE - 10) * CQ_STORE_UNIT_SIZE); // stops at the file boundary
  });

  it("ignores units it already has (recovery re-dispatch) and starts an empty queue at a later offset", async () => {
    const dir = queueDir();
    const cq = await load(dir);
    // A replica that starts mid-log: the first unit it sees is queue offset 40.
    expect(cq.putUnit(5000, 100, 1, 40)).toBe(true);
    expect(cq.putUnit(5100, 100, 1, 41)).toBe(true);
    expect(cq.putUnit(5000, 100, 1, 40)).toBe(false);
    expect(cq.putUnit(5100, 100, 1, 41)).toBe(false);
    expect([cq.minLogicOffset, cq.maxLogicOffset]).toEqual([40, 42]);
    await cq.writeOut(io, noSync);
    await cq.close();
    const again = await load(dir);
    expect([again.minLogicOffset, again.maxLogicOffset]).toEqual([40, 42]);
    // The slots before 40 in its file are blank fillers, as upstream writes them.
    const f = readFileSync(join(dir, offset2FileName(2 * FILE_SIZE)));
    expect(f.readInt32BE((32 - 32) * 20 + 8)).toBe(CQ_BLANK_UNIT_SIZE);
    expect(await readAll(again, 40, 42)).toEqual([
      [5000, 100, 1],
      [5100, 100, 1],
    ]);
  });

  it("truncates units of records at/after a CommitLog offset, in files and in memory", async () => {
    const dir = queueDir();
    const cq = await load(dir);
    for (let i = 0; i < 50; i++) cq.putUnit(...unit(i), i);
    await cq.writeOut(io, noSync);
    for (let i = 50; i < 60; i++) cq.putUnit(...unit(i), i); // still only in memory
    expect(await cq.truncateByPhyOffset(unit(55)[0], io)).toBe(5);
    expect(cq.maxLogicOffset).toBe(55);
    expect(await cq.truncateByPhyOffset(unit(20)[0], io)).toBe(35);
    expect(cq.maxLogicOffset).toBe(20);
    expect(cq.maxPhysicOffset).toBe(unit(19)[0] + 100);
    // New units continue at the cut.
    expect(cq.putUnit(unit(19)[0] + 100, 50, 0, 20)).toBe(true);
    await cq.writeOut(io, noSync);
    await cq.close();
    const again = await load(dir);
    expect(again.maxLogicOffset).toBe(21);
    expect((await readAll(again, 18, 21)).map((u) => u[0])).toEqual([
      unit(18)[0],
      unit(19)[0],
      unit(19)[0] + 100,
    ]);
    expect(readdirSync(dir)).toHaveLength(2); // files after the cut are gone
  });

  it("deletes files whose records fell below the CommitLog min offset and moves the min offset", async () => {
    const dir = queueDir();
    const cq = await load(dir);
    for (let i = 0; i < 70; i++) cq.putUnit(...unit(i), i);
    await cq.writeOut(io, noSync);
    expect(await cq.deleteExpired(unit(40)[0], io)).toBe(2); // files [0,16) and [16,32)
    expect(cq.minLogicOffset).toBe(40);
    expect(readdirSync(dir).sort()[0]).toBe(offset2FileName(2 * FILE_SIZE));
    expect(await cq.getUnits(5, 1, io)).toBeUndefined();
  });

  it("stops at the first invalid unit on load and wipes whatever lies after it", async () => {
    const dir = queueDir();
    const cq = await load(dir);
    for (let i = 0; i < 10; i++) cq.putUnit(...unit(i), i);
    await cq.writeOut(io, noSync);
    await cq.close();
    // Unit 10 goes backwards (stale or torn), unit 11 looks fine.
    const path = join(dir, offset2FileName(0));
    const f = readFileSync(path);
    f.writeBigInt64BE(5n, 10 * 20);
    f.writeInt32BE(100, 10 * 20 + 8);
    f.writeBigInt64BE(BigInt(unit(11)[0]), 11 * 20);
    f.writeInt32BE(100, 11 * 20 + 8);
    writeFileSync(path, f);
    const again = await load(dir);
    expect(again.maxLogicOffset).toBe(10);
    expect(
      readFileSync(path)
        .subarray(10 * 20)
        .every((b) => b === 0),
    ).toBe(true);
  });
});

describe("ConsumeQueue through the store", () => {
  it("serves reads that span ConsumeQueue files, filters on tagsCode, and honours maxBytes", async () => {
    const t = tempDir("cq-store");
    cleanups.push(t.remove);
    const store = await createMessageStore(
      smallStoreConfig(t.dir, { messageIndexEnable: false, mappedFileSizeConsumeQueue: FILE_SIZE }),
      {
        storeHost: STORE_HOST,
      },
    );
    cleanups.push(() => store.shutdown());
    await store.putMessages(
      Array.from({ length: 50 }, (_, i) => testMessage({ id: i, size: 200, tags: i % 5 === 0 ? "A" : "B" })),
    );
    const all = await store.getMessage("TopicTest", 0, 10, 30);
    expect(all.status).toBe(GetMessageStatus.FOUND);
    expect(all.messages.map((m) => bodyId(m.body))).toEqual(Array.from({ length: 30 }, (_, i) => 10 + i));
    expect(all.nextBeginOffset).toBe(40);
    const tagA = javaStringHashCode("A");
    const onlyA = await store.getMessage("TopicTest", 0, 0, 100, undefined, {
      isMatchedByConsumeQueue: (c) => c === tagA,
    });
    expect(onlyA.messages.map((m) => bodyId(m.body))).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
    expect(onlyA.nextBeginOffset).toBe(50);
    const none = await store.getMessage("TopicTest", 0, 41, 10, undefined, {
      isMatchedByCommitLog: (p) => p.get("TAGS") === "C",
    });
    expect(none.status).toBe(GetMessageStatus.NO_MATCHED_MESSAGE);
    expect(none.nextBeginOffset).toBe(50);
    const size = all.messages[0]?.storeSize ?? 0;
    const limited = await store.getMessage("TopicTest", 0, 0, 30, size * 3 + 1);
    expect(limited.messages).toHaveLength(3);
    expect(limited.nextBeginOffset).toBe(3);
    const atLeastOne = await store.getMessage("TopicTest", 0, 0, 30, 1);
    expect(atLeastOne.messages).toHaveLength(1);
  });
});
