// Damage in the CommitLog files: recovery keeps everything before the damage, cuts the rest, says what
// it cut, and no damaged record is ever served.
import {
  closeSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createMessageStore, type MessageStore } from "../broker/store/message-store.ts";
import { GetMessageStatus, type PutMessageResult } from "../broker/store/message-store-types.ts";
import { bodyId, STORE_HOST, smallStoreConfig, tempDir, testMessage } from "./fixtures/store-fixtures.ts";

const SEGMENT = 64 * 1024;
const QUEUES = 3;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Put {
  id: number;
  queueId: number;
  key: string;
  r: PutMessageResult;
}

async function setup(): Promise<{ dir: string; puts: Put[]; reopen: () => Promise<MessageStore> }> {
  const t = tempDir("corruption");
  cleanups.push(t.remove);
  const cfg = smallStoreConfig(t.dir);
  const store = await createMessageStore(cfg, { storeHost: STORE_HOST });
  const puts: Put[] = [];
  for (let i = 0; i < 150; i++) {
    const queueId = i % QUEUES;
    const key = `key-${i}`;
    const r = await store.putMessage(
      testMessage({ id: i, queueId, size: 300 + ((i * 379) % 2500), keys: key }),
    );
    puts.push({ id: i, queueId, key, r });
  }
  await store.shutdown();
  const reopen = async () => {
    const s = await createMessageStore(cfg, { storeHost: STORE_HOST });
    cleanups.push(() => s.shutdown());
    return s;
  };
  return { dir: t.dir, puts, reopen };
}

function segmentFiles(dir: string): string[] {
  return readdirSync(join(dir, "commitlog"))
    .filter((n) => /^\d{20}$/.test(n))
    .sort();
}

function flipByte(dir: string, offset: number): void {
  const seg = Math.floor(offset / SEGMENT) * SEGMENT;
  const fd = openSync(join(dir, "commitlog", String(seg).padStart(20, "0")), "r+");
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset - seg);
  b[0] = (b[0] ?? 0) ^ 0x5a;
  writeSync(fd, b, 0, 1, offset - seg);
  closeSync(fd);
}

function writeAt(dir: string, offset: number, bytes: Buffer): void {
  const seg = Math.floor(offset / SEGMENT) * SEGMENT;
  const fd = openSync(join(dir, "commitlog", String(seg).padStart(20, "0")), "r+");
  writeSync(fd, bytes, 0, bytes.length, offset - seg);
  closeSync(fd);
}

/** Every message kept is served intact by queue offset and by key; every message cut is gone. */
async function expectCutAt(store: MessageStore, puts: Put[], cut: number): Promise<void> {
  const kept = puts.filter((p) => p.r.commitLogOffset < cut);
  const gone = puts.filter((p) => p.r.commitLogOffset >= cut);
  expect(kept.length).toBeGreaterThan(0);
  expect(gone.length).toBeGreaterThan(0);
  for (let q = 0; q < QUEUES; q++) {
    const mine = kept.filter((p) => p.queueId === q);
    expect(store.getMaxOffsetInQueue("TopicTest", q)).toBe(mine.length);
    const got = await store.getMessage("TopicTest", q, 0, 1000);
    expect(got.messages.map((m) => bodyId(m.body))).toEqual(mine.map((p) => p.id));
    expect(got.messages.map((m) => m.commitLogOffset)).toEqual(mine.map((p) => p.r.commitLogOffset));
  }
  for (const p of gone) {
    const r = await store.getMessage("TopicTest", p.queueId, p.r.queueOffset, 1);
    expect(r.messages).toEqual([]);
    expect([GetMessageStatus.OFFSET_OVERFLOW_ONE, GetMessageStatus.OFFSET_OVERFLOW_BADLY]).toContain(
      r.status,
    );
    expect(await store.lookMessageByOffset(p.r.commitLogOffset)).toBeUndefined();
    expect(await store.queryMessageByKey("TopicTest", p.key, 5, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
  }
  for (const p of kept.slice(-5)) {
    const byKey = await store.queryMessageByKey("TopicTest", p.key, 5, 0, Number.MAX_SAFE_INTEGER);
    expect(byKey.map((m) => bodyId(m.body))).toEqual([p.id]);
  }
  expect(store.getMaxPhyOffset()).toBe(cut);
}

describe.each([
  ["after a clean shutdown", false],
  ["after a crash (abort file left)", true],
])("CommitLog corruption %s", (_label, crashed) => {
  const markCrash = (dir: string) => {
    if (crashed) writeFileSync(join(dir, "abort"), "");
  };

  it("a byte flipped in the middle of the last segment: keeps what precedes, cuts from the damaged record, reports it", async () => {
    const { dir, puts, reopen } = await setup();
    const lastSeg = Number(segmentFiles(dir).at(-1));
    const inLast = puts.filter((p) => p.r.commitLogOffset >= lastSeg);
    expect(inLast.length).toBeGreaterThan(4);
    const dataEnd = (puts.at(-1) as Put).r.commitLogOffset + (puts.at(-1) as Put).r.size;
    const middle = Math.floor((lastSeg + dataEnd) / 2);
    const victim = puts.find(
      (p) => p.r.commitLogOffset <= middle && middle < p.r.commitLogOffset + p.r.size,
    ) as Put;
    expect(victim).toBeDefined();
    expect(victim).not.toBe(puts.at(-1));
    flipByte(dir, middle);
    markCrash(dir);
    const store = await reopen();
    const rep = store.recoveryReport;
    expect(rep.cleanShutdown).toBe(!crashed);
    expect(rep.truncated?.offset).toBe(victim.r.commitLogOffset);
    expect(rep.truncated?.reason).toMatch(/CRC|length|magic|offset/);
    expect(rep.truncated?.bytes).toBe(dataEnd - victim.r.commitLogOffset);
    expect(rep.consumeQueueUnitsRemoved).toBe(
      puts.filter((p) => p.r.commitLogOffset >= victim.r.commitLogOffset).length,
    );
    await expectCutAt(store, puts, victim.r.commitLogOffset);
    // The log continues from the cut: queue offsets resume where the kept messages end.
    const next = await store.putMessage(testMessage({ id: 9999, queueId: victim.queueId }));
    expect(next.commitLogOffset).toBe(victim.r.commitLogOffset);
    expect(next.queueOffset).toBe(victim.r.queueOffset);
  });

  it("a byte flipped in the tail (the last record's CRC): only the last record goes", async () => {
    const { dir, puts, reopen } = await setup();
    const last = puts.at(-1) as Put;
    flipByte(dir, last.r.commitLogOffset + last.r.size - 1);
    markCrash(dir);
    const store = await reopen();
    expect(store.recoveryReport.truncated).toMatchObject({
      offset: last.r.commitLogOffset,
      bytes: last.r.size,
    });
    await expectCutAt(store, puts, last.r.commitLogOffset);
  });
});

describe("bad bytes in the store files never crash recovery", () => {
  it("a garbage TOTALSIZE, a wrong magic, a short file, junk names and a torn checkpoint", async () => {
    const { dir, puts, reopen } = await setup();
    const last = puts.at(-1) as Put;
    const end = last.r.commitLogOffset + last.r.size;
    // Garbage size right after the last record.
    writeAt(dir, end, Buffer.from([0x7f, 0xff, 0xff, 0xff, 0xda, 0xa3, 0x20, 0xa7, 1, 2, 3]));
    writeFileSync(join(dir, "commitlog", "not-a-segment.tmp"), "x");
    writeFileSync(join(dir, "checkpoint"), Buffer.alloc(1024, 0xab));
    let store = await reopen();
    expect(store.recoveryReport.checkpoint).toBe("torn");
    expect(store.recoveryReport.scanFromOffset).toBe(0); // no checkpoint to trust: everything is verified
    expect(store.recoveryReport.truncated).toMatchObject({ offset: end, bytes: 11 });
    expect(store.recoveryReport.ignoredFiles).toEqual(["not-a-segment.tmp"]);
    await expectCutAt(
      store,
      [
        ...puts,
        { id: -1, queueId: 0, key: "none", r: { ...last.r, commitLogOffset: end, queueOffset: 1e9 } },
      ],
      end,
    );
    await store.shutdown();

    // Wrong magic on the last record.
    writeAt(dir, last.r.commitLogOffset + 4, Buffer.from([1, 2, 3, 4]));
    store = await reopen();
    expect(store.recoveryReport.truncated).toMatchObject({
      offset: last.r.commitLogOffset,
      reason: expect.stringMatching(/magic/),
    });
    await expectCutAt(store, puts, last.r.commitLogOffset);
    await store.shutdown();

    // A segment file cut short in the middle of a record (a torn preallocation or copy).
    const files = segmentFiles(dir);
    const lastSeg = Number(files.at(-1));
    const victim = puts.filter((p) => p.r.commitLogOffset >= lastSeg)[1] as Put;
    truncateSync(join(dir, "commitlog", files.at(-1) as string), victim.r.commitLogOffset - lastSeg + 10);
    writeFileSync(join(dir, "abort"), "");
    store = await reopen();
    expect(statSync(join(dir, "commitlog", files.at(-1) as string)).size).toBe(SEGMENT);
    expect(store.recoveryReport.truncated?.offset).toBe(victim.r.commitLogOffset);
    await expectCutAt(store, puts, victim.r.commitLogOffset);
  });

  it("a deleted consumequeue directory is rebuilt from the whole CommitLog", async () => {
    const { dir, puts, reopen } = await setup();
    rmSync(join(dir, "consumequeue"), { recursive: true });
    const store = await reopen();
    expect(store.recoveryReport.scanFromOffset).toBe(0);
    expect(store.recoveryReport.truncated).toBeUndefined();
    for (let q = 0; q < QUEUES; q++) {
      const got = await store.getMessage("TopicTest", q, 0, 1000);
      expect(got.messages.map((m) => bodyId(m.body))).toEqual(
        puts.filter((p) => p.queueId === q).map((p) => p.id),
      );
    }
  });

  it("random byte damage anywhere: recovery always opens and only intact messages are served (seeded)", async () => {
    const { dir, puts, reopen } = await setup();
    const byQueueOffset = new Map(puts.map((p) => [`${p.queueId}:${p.r.queueOffset}`, p.id]));
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const end = (puts.at(-1) as Put).r.commitLogOffset + (puts.at(-1) as Put).r.size;
    for (let round = 0; round < 6; round++) {
      for (let k = 0; k < 3; k++) flipByte(dir, rand(end));
      if (round % 2 === 1) writeFileSync(join(dir, "abort"), "");
      const store = await reopen();
      for (let q = 0; q < QUEUES; q++) {
        const got = await store.getMessage("TopicTest", q, 0, 1000);
        for (const m of got.messages) {
          // Each served message is the one put at that queue offset, byte for byte.
          expect(bodyId(m.body)).toBe(byQueueOffset.get(`${q}:${m.queueOffset}`));
        }
      }
      await store.shutdown();
    }
  });
});
