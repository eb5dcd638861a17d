import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  bodyFor,
  bodyId,
  STORE_HOST,
  smallStoreConfig,
  tempDir,
  testMessage,
} from "../../test/fixtures/store-fixtures.ts";
import { BrokerRole, HelperThreads, type MessageStoreConfig } from "./config.ts";
import type { StoredMessage } from "./message-codec.ts";
import { createMessageStore, type MessageStore } from "./message-store.ts";
import { GetMessageStatus } from "./message-store-types.ts";
import { MessageSysFlag } from "./message-sysflag.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(
  overrides: Partial<MessageStoreConfig> = {},
  dir?: string,
  helperThreads: HelperThreads = HelperThreads.AUTO,
): Promise<{ store: MessageStore; dir: string; cfg: MessageStoreConfig }> {
  let d = dir;
  if (d === undefined) {
    const t = tempDir("store");
    cleanups.push(t.remove);
    d = t.dir;
  }
  const cfg = smallStoreConfig(d, overrides);
  const store = await createMessageStore(cfg, { storeHost: STORE_HOST, helperThreads });
  cleanups.push(() => store.shutdown());
  return { store, dir: d, cfg };
}

async function queueContents(store: MessageStore, topic: string, queueId: number): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  let next = store.getMinOffsetInQueue(topic, queueId);
  while (next < store.getMaxOffsetInQueue(topic, queueId)) {
    const r = await store.getMessage(topic, queueId, next, 64);
    out.push(...r.messages);
    if (r.nextBeginOffset <= next) break;
    next = r.nextBeginOffset;
  }
  return out;
}

describe("MessageStore puts and reads", () => {
  it("answers getMessage with upstream's statuses at the edges of a queue", async () => {
    const { store } = await open({ messageIndexEnable: false });
    expect((await store.getMessage("Nope", 0, 0, 1)).status).toBe(GetMessageStatus.NO_MATCHED_LOGIC_QUEUE);
    await store.putMessages([0, 1, 2].map((id) => testMessage({ id })));
    expect(await store.getMessage("TopicTest", 0, 3, 1)).toMatchObject({
      status: GetMessageStatus.OFFSET_OVERFLOW_ONE,
      nextBeginOffset: 3,
    });
    expect(await store.getMessage("TopicTest", 0, 9, 1)).toMatchObject({
      status: GetMessageStatus.OFFSET_OVERFLOW_BADLY,
      nextBeginOffset: 3,
    });
    const r = await store.getMessage("TopicTest", 0, 1, 5);
    expect(r).toMatchObject({
      status: GetMessageStatus.FOUND,
      nextBeginOffset: 3,
      minOffset: 0,
      maxOffset: 3,
    });
    expect(r.messages.map((m) => [m.queueOffset, bodyId(m.body)])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    const m = r.messages[0] as StoredMessage;
    expect(m.storeHost).toEqual(STORE_HOST);
    expect(m.msgId).toMatch(/^7F00000100002A9F[0-9A-F]{16}$/);
    expect(await store.lookMessageByOffset(m.commitLogOffset)).toMatchObject({
      queueOffset: 1,
      msgId: m.msgId,
    });
    expect(await store.lookMessageByOffset(m.commitLogOffset + 1)).toBeUndefined();
    expect(await store.lookMessageByOffset(store.getMaxPhyOffset())).toBeUndefined();
  });

  it("rejects bad input with stable error codes and appends nothing from a batch with one bad message", async () => {
    const { store } = await open({ messageIndexEnable: false, maxMessageSize: 1000 });
    const bad: Array<[Parameters<typeof testMessage>[0], string]> = [
      [{ size: 1001 }, "MESSAGE_BODY_TOO_LARGE"],
      [{ properties: { big: "x".repeat(40_000) } }, "MESSAGE_PROPERTIES_TOO_LARGE"],
      [{ properties: { "a\u0001b": "v" } }, "ILLEGAL_MESSAGE_PROPERTY"],
      [{ topic: "" }, "ILLEGAL_TOPIC"],
      [{ topic: "t".repeat(128) }, "ILLEGAL_TOPIC"],
      [{ topic: "../etc" }, "ILLEGAL_TOPIC"],
      [{ queueId: -1 }, "ILLEGAL_ARGUMENT"],
    ];
    for (const [opts, code] of bad)
      await expect(store.putMessage(testMessage(opts))).rejects.toMatchObject({ code });
    // Retry topics may be up to 255 bytes.
    await expect(
      store.putMessage(testMessage({ topic: `%RETRY%${"g".repeat(200)}` })),
    ).resolves.toMatchObject({ status: "PUT_OK" });
    const before = store.getMaxPhyOffset();
    await expect(
      store.putMessages([testMessage({ id: 1 }), testMessage({ size: 5000 })]),
    ).rejects.toMatchObject({ code: "MESSAGE_BODY_TOO_LARGE" });
    expect(store.getMaxPhyOffset()).toBe(before);
    expect(store.getMaxOffsetInQueue("TopicTest", 0)).toBe(0);
  });

  for (const threads of [HelperThreads.NEVER, HelperThreads.ALWAYS])
    it(`keeps a given UNIQ_KEY, generates one otherwise, and finds messages by key and by UNIQ_KEY (helper threads ${threads})`, async () => {
      const { store } = await open({}, undefined, threads);
      const given = await store.putMessage(
        testMessage({ id: 1, keys: "order-1 user-9", properties: { UNIQ_KEY: "MYKEY0001" } }),
      );
      expect(given.uniqKey).toBe("MYKEY0001");
      const made = await store.putMessage(testMessage({ id: 2, keys: "order-2" }));
      expect(made.uniqKey).toMatch(/^01[0-9A-F]{32}$/);
      await store.putMessage(testMessage({ id: 3, topic: "Other", keys: "order-1" }));
      const byKey = await store.queryMessageByKey("TopicTest", "user-9", 10, 0, Number.MAX_SAFE_INTEGER);
      expect(byKey.map((m) => bodyId(m.body))).toEqual([1]);
      const byKey2 = await store.queryMessageByKey("TopicTest", "order-1", 10, 0, Number.MAX_SAFE_INTEGER);
      expect(byKey2.map((m) => bodyId(m.body))).toEqual([1]); // not the one in topic Other
      expect(await store.queryMessageByKey("TopicTest", "order-", 10, 0, Number.MAX_SAFE_INTEGER)).toEqual(
        [],
      );
      expect(
        bodyId((await store.queryMessageByUniqKey("TopicTest", made.uniqKey))?.body ?? new Uint8Array()),
      ).toBe(2);
      expect(await store.queryMessageByUniqKey("TopicTest", "nope")).toBeUndefined();
    });

  it("gives transaction half (PREPARED) messages no ConsumeQueue slot; COMMIT records take one", async () => {
    const { store } = await open({ messageIndexEnable: false });
    const half = await store.putMessage(
      testMessage({ id: 1, sysFlag: MessageSysFlag.TRANSACTION_PREPARED_TYPE }),
    );
    expect(half.queueOffset).toBe(0);
    expect(store.getMaxOffsetInQueue("TopicTest", 0)).toBe(0);
    const commit = await store.putMessage(
      testMessage({ id: 2, sysFlag: MessageSysFlag.TRANSACTION_COMMIT_TYPE }),
    );
    expect(commit.queueOffset).toBe(0);
    const next = await store.putMessage(testMessage({ id: 3 }));
    expect(next.queueOffset).toBe(1);
    expect((await queueContents(store, "TopicTest", 0)).map((m) => bodyId(m.body))).toEqual([2, 3]);
    expect(bodyId((await store.lookMessageByOffset(half.commitLogOffset))?.body ?? new Uint8Array())).toBe(1);
  });

  for (const threads of [HelperThreads.NEVER, HelperThreads.ALWAYS])
    it(`keeps queue offsets and contents across a clean restart (helper threads ${threads})`, async () => {
      const { store, dir } = await open({}, undefined, threads);
      await store.putMessages(
        Array.from({ length: 30 }, (_, i) =>
          testMessage({ id: i, queueId: i % 3, size: 3000, keys: `k${i}` }),
        ),
      );
      await store.shutdown();
      const { store: again } = await open({}, dir, threads);
      expect(again.recoveryReport.cleanShutdown).toBe(true);
      expect(again.recoveryReport.truncated).toBeUndefined();
      expect(again.recoveryReport.checkpoint).toBe("valid");
      // After a clean shutdown only the last segment is scanned.
      expect(again.recoveryReport.scanFromOffset).toBe(
        Math.floor(again.getMaxPhyOffset() / (64 * 1024)) * 64 * 1024,
      );
      const r = await again.putMessage(testMessage({ id: 30, queueId: 0 }));
      expect(r.queueOffset).toBe(10);
      expect((await queueContents(again, "TopicTest", 0)).map((m) => bodyId(m.body))).toEqual([
        0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30,
      ]);
      expect(
        (await again.queryMessageByKey("TopicTest", "k7", 5, 0, Number.MAX_SAFE_INTEGER)).map((m) =>
          bodyId(m.body),
        ),
      ).toEqual([7]);
    });
});

describe("store lock", () => {
  it("refuses a second open of one store in the same process", async () => {
    const { store, cfg } = await open({ messageIndexEnable: false });
    await expect(createMessageStore(cfg, { storeHost: STORE_HOST })).rejects.toMatchObject({
      code: "STORE_LOCKED",
    });
    // The refused open left the first one untouched.
    await expect(store.putMessage(testMessage({ id: 1 }))).resolves.toMatchObject({ status: "PUT_OK" });
  });

  it("takes over a lock left by a process that is gone", async () => {
    const t = tempDir("store-lock");
    cleanups.push(t.remove);
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
      encoding: "utf8",
    });
    const deadPid = Number(dead.stdout);
    writeFileSync(join(t.dir, "lock"), JSON.stringify({ pid: deadPid, host: hostname(), token: "old" }));
    const { store } = await open({ messageIndexEnable: false }, t.dir);
    expect(store.isWritable()).toBe(true);
    // A lock of a live process (our parent, not this process) is respected.
    await store.shutdown();
    writeFileSync(
      join(t.dir, "lock"),
      JSON.stringify({ pid: process.ppid, host: hostname(), token: "live" }),
    );
    await expect(
      createMessageStore(smallStoreConfig(t.dir), { storeHost: STORE_HOST }),
    ).rejects.toMatchObject({ code: "STORE_LOCKED" });
  });
});

describe("replication API", () => {
  async function copyAll(a: MessageStore, b: MessageStore, chunk: number): Promise<number> {
    let rounds = 0;
    while (b.getMaxPhyOffset() < a.getMaxPhyOffset()) {
      const raw = await a.readRaw(b.getMaxPhyOffset(), chunk);
      expect(raw.startOffset).toBe(b.getMaxPhyOffset());
      const { nextOffset } = await b.appendRaw(raw.startOffset, raw.bytes);
      expect(nextOffset).toBe(raw.nextOffset);
      rounds++;
    }
    return rounds;
  }

  async function expectSameQueues(a: MessageStore, b: MessageStore, queues: number): Promise<void> {
    for (let q = 0; q < queues; q++) {
      const ma = await queueContents(a, "TopicTest", q);
      const mb = await queueContents(b, "TopicTest", q);
      expect(mb.length).toBe(ma.length);
      expect(mb).toEqual(ma);
    }
  }

  it("readRaw from A into appendRaw of B: B serves identical messages; bad CRC, wrong offset and bad truncation are refused", async () => {
    const { store: a } = await open({ messageIndexEnable: false });
    const { store: b } = await open({ brokerRole: BrokerRole.SLAVE });
    await a.putMessages(
      Array.from({ length: 80 }, (_, i) =>
        testMessage({ id: i, queueId: i % 4, size: 500 + ((i * 997) % 6000), keys: `k${i}` }),
      ),
    );
    expect(a.getMaxPhyOffset()).toBeGreaterThan(3 * 64 * 1024); // several segments, so blank markers travel too
    const rounds = await copyAll(a, b, 16 * 1024);
    expect(rounds).toBeGreaterThan(5);
    expect(b.getMaxPhyOffset()).toBe(a.getMaxPhyOffset());
    await expectSameQueues(a, b, 4);
    expect(
      (await b.queryMessageByKey("TopicTest", "k42", 5, 0, Number.MAX_SAFE_INTEGER)).map((m) =>
        bodyId(m.body),
      ),
    ).toEqual([42]);
    // A replica takes no puts.
    await expect(b.putMessage(testMessage({ id: 1 }))).rejects.toMatchObject({ code: "STORE_NOT_WRITABLE" });

    await a.putMessages([testMessage({ id: 100, queueId: 1 }), testMessage({ id: 101, queueId: 2 })]);
    const raw = await a.readRaw(b.getMaxPhyOffset(), 1 << 20);
    expect(raw.bytes.length).toBeGreaterThan(120);
    // One flipped byte: the CRC catches it and nothing is appended.
    const damaged = Buffer.from(raw.bytes);
    damaged[120] = (damaged[120] ?? 0) ^ 0x40;
    const end = b.getMaxPhyOffset();
    await expect(b.appendRaw(end, damaged)).rejects.toMatchObject({ code: "CORRUPT_RECORD" });
    await expect(b.appendRaw(end + 1, raw.bytes)).rejects.toMatchObject({
      code: "COMMITLOG_OFFSET_MISMATCH",
    });
    await expect(b.appendRaw(end, raw.bytes.subarray(0, raw.bytes.length - 5))).rejects.toMatchObject({
      code: "CORRUPT_RECORD",
    });
    expect(b.getMaxPhyOffset()).toBe(end);
    await b.appendRaw(end, raw.bytes);
    await copyAll(a, b, 1 << 20); // a chunk ends at a blank marker; the rest follows
    await expectSameQueues(a, b, 4);

    // A chunk never splits a record: asking for fewer bytes than one record returns that whole record.
    const first = (await a.getMessage("TopicTest", 0, 0, 1)).messages[0] as StoredMessage;
    const one = await a.readRaw(first.commitLogOffset, 10);
    expect(one.bytes.length).toBe(first.storeSize);
    await expect(b.truncate(first.commitLogOffset + 7)).rejects.toMatchObject({
      code: "OFFSET_OUT_OF_RANGE",
    });
  });

  it("truncate cuts CommitLog, ConsumeQueues and Index back; re-appending restores the copy", async () => {
    const { store: a } = await open({ messageIndexEnable: false });
    const { store: b, dir: bDir, cfg: bCfg } = await open({ brokerRole: BrokerRole.SLAVE });
    await a.putMessages(
      Array.from({ length: 60 }, (_, i) => testMessage({ id: i, queueId: i % 3, size: 2500, keys: `k${i}` })),
    );
    await copyAll(a, b, 20 * 1024);
    const cutAt = (await a.getMessage("TopicTest", 1, 10, 1)).messages[0] as StoredMessage; // message id 31
    await b.truncate(cutAt.commitLogOffset);
    expect(b.getMaxPhyOffset()).toBe(cutAt.commitLogOffset);
    expect(b.getMaxOffsetInQueue("TopicTest", 1)).toBe(10);
    expect(b.getMaxOffsetInQueue("TopicTest", 0)).toBe(11); // ids 0..30 step 3
    expect(await b.queryMessageByKey("TopicTest", "k45", 5, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
    expect((await b.getMessage("TopicTest", 1, 10, 5)).status).toBe(GetMessageStatus.OFFSET_OVERFLOW_ONE);
    // A restart after the cut sees the cut state.
    await b.shutdown();
    const { store: b2 } = await open(bCfg, bDir);
    expect(b2.getMaxPhyOffset()).toBe(cutAt.commitLogOffset);
    expect(b2.recoveryReport.truncated).toBeUndefined();
    await copyAll(a, b2, 20 * 1024);
    await expectSameQueues(a, b2, 3);
    expect(
      (await b2.queryMessageByKey("TopicTest", "k45", 5, 0, Number.MAX_SAFE_INTEGER)).map((m) =>
        bodyId(m.body),
      ),
    ).toEqual([45]);
  });

  it("an empty replica can start at a segment boundary in the middle of the master's log", async () => {
    const { store: a } = await open({ messageIndexEnable: false });
    const { store: b } = await open({ messageIndexEnable: false, brokerRole: BrokerRole.SLAVE });
    await a.putMessages(
      Array.from({ length: 60 }, (_, i) => testMessage({ id: i, size: 2500, body: bodyFor(i, 2500) })),
    );
    const start = 2 * 64 * 1024;
    const raw = await a.readRaw(start, 1 << 20);
    await b.appendRaw(start, raw.bytes);
    expect(b.getMinPhyOffset()).toBe(start);
    const aMsgs = await queueContents(a, "TopicTest", 0);
    const bMsgs = await queueContents(b, "TopicTest", 0);
    expect(bMsgs.length).toBeGreaterThan(0);
    expect(bMsgs).toEqual(
      aMsgs.filter((m) => m.commitLogOffset >= start && m.commitLogOffset < raw.nextOffset),
    );
    expect(b.getMinOffsetInQueue("TopicTest", 0)).toBe(bMsgs[0]?.queueOffset);
  });
});
