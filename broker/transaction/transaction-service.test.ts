import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { SystemTopic } from "../../common/topic-validator.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { MessageSysFlag, transactionType } from "../store/message-sysflag.ts";
import { parseOpBody } from "./op-record.ts";
import { encodeTransactionId } from "./transaction-id.ts";
import { TRANSACTION_SYS_GROUP, TransactionProperty } from "./transaction-properties.ts";
import type { TransactionConfig } from "./transaction-service.ts";
import {
  bodyText,
  openTxBroker,
  readAll,
  type SentHalf,
  sendHalf,
  TestClock,
  TX_BROKER,
  TX_GROUP,
  TX_TOPIC,
  type TxBroker,
} from "./transaction-test.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TIMEOUT = 6000;

async function setup(config: Partial<TransactionConfig> = {}) {
  const t = tempDir("tx");
  cleanups.push(t.remove);
  const clock = new TestClock();
  let b = await openTxBroker(t.dir, { clock, config });
  let open = true;
  cleanups.push(async () => {
    if (open) await b.close();
  });
  return {
    dir: t.dir,
    clock,
    get b(): TxBroker {
      return b;
    },
    /** Clean restart: a new store, tables and service over the same directory. */
    async reopen(opts: { dropOffsets?: boolean } = {}): Promise<TxBroker> {
      if (opts.dropOffsets) {
        // As after kill -9 before consumer offsets were ever persisted.
        await b.service.shutdown();
        await b.store.shutdown();
        rmSync(join(t.dir, "config", "consumerOffset.json"), { force: true });
      } else {
        await b.close();
      }
      open = false;
      b = await openTxBroker(t.dir, { clock, config });
      open = true;
      return b;
    },
  };
}

function end(
  b: TxBroker,
  tx: SentHalf,
  resolution: "COMMIT" | "ROLLBACK",
  over: { topic?: string; producerGroup?: string; transactionId?: string; messageId?: string } = {},
): Promise<void> {
  return b.service.endTransaction({
    topic: over.topic ?? TX_TOPIC,
    producerGroup: over.producerGroup ?? TX_GROUP,
    transactionId: over.transactionId ?? tx.transactionId,
    messageId: over.messageId ?? tx.messageId,
    resolution,
    fromTransactionCheck: false,
  });
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isRmqError(e)) return e.code;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("half messages and end transaction", () => {
  it("keeps a half message out of its topic until commit; commit stores it once, with its id and properties", async () => {
    const s = await setup();
    const tx = await sendHalf(s.b, s.clock, { body: "order-1", queueId: 2 });
    expect(await readAll(s.b, TX_TOPIC)).toEqual([]);
    const [half] = await readAll(s.b, SystemTopic.TRANS_HALF, 1);
    expect(half?.properties.get(TransactionProperty.REAL_TOPIC)).toBe(TX_TOPIC);
    expect(half?.properties.get(TransactionProperty.REAL_QUEUE_ID)).toBe("2");
    expect(transactionType(half?.sysFlag ?? -1)).toBe(MessageSysFlag.TRANSACTION_NOT_TYPE);

    await end(s.b, tx, "COMMIT");
    const real = await readAll(s.b, TX_TOPIC);
    expect(real).toHaveLength(1);
    const m = real[0];
    if (m === undefined) throw new Error("unreachable");
    expect(m.queueId).toBe(2);
    expect(bodyText(m.body)).toBe("order-1");
    expect(m.flag).toBe(3);
    expect(m.properties.get("UNIQ_KEY")).toBe(tx.messageId);
    expect(m.properties.get("TAGS")).toBe("tagA");
    expect(m.properties.get("KEYS")).toBe("key-order-1");
    expect(m.properties.get("userProp")).toBe("v-order-1");
    expect(m.properties.get(TransactionProperty.PRODUCER_GROUP)).toBe(TX_GROUP);
    for (const p of ["TRAN_MSG", "REAL_TOPIC", "REAL_QID", "TRANSACTION_CHECK_TIMES"])
      expect(m.properties.has(p)).toBe(false);
    expect(transactionType(m.sysFlag)).toBe(MessageSysFlag.TRANSACTION_COMMIT_TYPE);
    expect(m.preparedTransactionOffset).toBe(tx.commitLogOffset);

    const ops = await readAll(s.b, SystemTopic.TRANS_OP_HALF, 1);
    expect(ops).toHaveLength(1);
    expect(ops[0]?.properties.get("TAGS")).toBe("d");
    expect(bodyText(ops[0]?.body ?? new Uint8Array())).toBe(`${tx.queueOffset},`);
    // A committed transaction is not checked.
    s.clock.advance(60_000);
    expect(await s.b.service.checkNow()).toBe(0);
  });

  it("rollback stores nothing in the topic; a later commit is refused", async () => {
    const s = await setup();
    const tx = await sendHalf(s.b, s.clock, { body: "r1" });
    await end(s.b, tx, "ROLLBACK");
    expect(await readAll(s.b, TX_TOPIC)).toEqual([]);
    expect(
      parseOpBody((await readAll(s.b, SystemTopic.TRANS_OP_HALF, 1))[0]?.body ?? new Uint8Array()),
    ).toEqual([tx.queueOffset]);
    expect(await rejection(end(s.b, tx, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    expect(await readAll(s.b, TX_TOPIC)).toEqual([]);
  });

  it("ends a transaction at most once: sequential and concurrent second ends are refused", async () => {
    const s = await setup();
    const a = await sendHalf(s.b, s.clock, { body: "a" });
    await end(s.b, a, "COMMIT");
    expect(await rejection(end(s.b, a, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    expect(await rejection(end(s.b, a, "ROLLBACK"))).toBe(ErrorCode.TransactionNotFound);

    const b = await sendHalf(s.b, s.clock, { body: "b" });
    const results = await Promise.allSettled([
      end(s.b, b, "COMMIT"),
      end(s.b, b, "COMMIT"),
      end(s.b, b, "ROLLBACK"),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect((await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body)).sort()).toEqual(["a", "b"]);
  });

  it("groups concurrent ends into shared writes and delivers each commit once", async () => {
    const s = await setup();
    const txs: SentHalf[] = [];
    for (let i = 0; i < 60; i++) txs.push(await sendHalf(s.b, s.clock, { body: `m${i}`, queueId: i % 4 }));
    await Promise.all(txs.map((tx, i) => end(s.b, tx, i % 3 === 0 ? "ROLLBACK" : "COMMIT")));
    const delivered = (await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body)).sort();
    expect(delivered).toEqual(
      txs
        .filter((_, i) => i % 3 !== 0)
        .map((t) => t.body)
        .sort(),
    );
    const ops = await readAll(s.b, SystemTopic.TRANS_OP_HALF, 1);
    expect(ops.length).toBeLessThan(txs.length); // grouped
    expect(ops.flatMap((o) => parseOpBody(o.body)).sort((x, y) => x - y)).toEqual(
      txs.map((t) => t.queueOffset),
    );
  });

  it("refuses ids that are malformed, another message's, another broker's, or of another group or topic", async () => {
    const s = await setup();
    const tx = await sendHalf(s.b, s.clock, { body: "x" });
    const other = await sendHalf(s.b, s.clock, { body: "y" });
    const invalid = ErrorCode.InvalidTransactionId;
    expect(await rejection(end(s.b, tx, "COMMIT", { transactionId: "garbage" }))).toBe(invalid);
    expect(await rejection(end(s.b, tx, "COMMIT", { transactionId: `${"0".repeat(40)}.${TX_BROKER}` }))).toBe(
      invalid,
    );
    expect(await rejection(end(s.b, tx, "COMMIT", { messageId: other.messageId }))).toBe(invalid);
    expect(await rejection(end(s.b, tx, "COMMIT", { producerGroup: "PID_other" }))).toBe(invalid);
    expect(await rejection(end(s.b, tx, "COMMIT", { topic: "OtherTopic" }))).toBe(invalid);
    const foreign = encodeTransactionId(
      { brokerName: "broker-b", commitLogOffset: tx.commitLogOffset, queueOffset: tx.queueOffset },
      tx.messageId,
    );
    expect(await rejection(end(s.b, tx, "COMMIT", { transactionId: foreign }))).toBe(invalid);
    // Well-formed, but naming the op record of another transaction rather than a half message.
    await end(s.b, other, "ROLLBACK");
    const [op] = await readAll(s.b, SystemTopic.TRANS_OP_HALF, 1);
    const notHalf = encodeTransactionId(
      { brokerName: TX_BROKER, commitLogOffset: op?.commitLogOffset ?? 0, queueOffset: tx.queueOffset },
      tx.messageId,
    );
    expect(await rejection(end(s.b, tx, "COMMIT", { transactionId: notHalf }))).toBe(invalid);
    // None of that touched the transaction.
    expect(await readAll(s.b, TX_TOPIC)).toEqual([]);
    await end(s.b, tx, "COMMIT");
    expect((await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body))).toEqual(["x"]);
  });
});

describe("check loop", () => {
  it("checks an unresolved half message after transactionTimeOut, once per pass, counting the checks", async () => {
    const s = await setup();
    const tx = await sendHalf(s.b, s.clock, { body: "slow" });
    s.clock.advance(TIMEOUT - 1000);
    expect(await s.b.service.checkNow()).toBe(0);
    s.clock.advance(2000);
    expect(await s.b.service.checkNow()).toBe(1);
    const c1 = s.b.checks[0];
    expect(c1?.transactionId).toBe(tx.transactionId);
    expect(c1?.messageId).toBe(tx.messageId);
    expect(c1?.producerGroup).toBe(TX_GROUP);
    expect(c1?.topic).toBe(TX_TOPIC);
    expect(c1?.message.topic).toBe(TX_TOPIC);
    expect(c1?.message.queueId).toBe(1);
    expect(bodyText(c1?.message.body ?? new Uint8Array())).toBe("slow");
    expect(c1?.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)).toBe("1");

    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(1);
    expect(s.b.checks[1]?.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)).toBe("2");
    expect(s.b.checks[1]?.transactionId).toBe(tx.transactionId);

    // The producer answers the check: the id it quotes is the one the send returned.
    await s.b.service.endTransaction({
      topic: TX_TOPIC,
      producerGroup: TX_GROUP,
      transactionId: s.b.checks[1]?.transactionId ?? "",
      messageId: tx.messageId,
      resolution: "COMMIT",
      fromTransactionCheck: true,
    });
    expect(await rejection(end(s.b, tx, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(0);
    expect((await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body))).toEqual(["slow"]);
    // Everything walked and forgotten; the committed offsets moved to the queue ends.
    const halfMax = s.b.store.getMaxOffsetInQueue(SystemTopic.TRANS_HALF, 0);
    expect(s.b.service.stats()).toMatchObject({ halfOffset: halfMax, opEntries: 0, copies: 0 });
    expect(s.b.offsets.query(TRANSACTION_SYS_GROUP, SystemTopic.TRANS_HALF, 0)).toBe(halfMax);
    expect(s.b.offsets.query(TRANSACTION_SYS_GROUP, SystemTopic.TRANS_OP_HALF, 0)).toBe(
      s.b.store.getMaxOffsetInQueue(SystemTopic.TRANS_OP_HALF, 0),
    );
  });

  it("stops at a half message younger than transactionTimeOut and checks it on a later pass", async () => {
    const s = await setup();
    await sendHalf(s.b, s.clock, { body: "old" });
    s.clock.advance(5000);
    await sendHalf(s.b, s.clock, { body: "young" });
    s.clock.advance(2000);
    expect(await s.b.service.checkNow()).toBe(1);
    expect(s.b.checks.map((c) => bodyText(c.message.body))).toEqual(["old"]);
    s.clock.advance(5000);
    expect(await s.b.service.checkNow()).toBe(2);
    expect(
      s.b.checks
        .slice(1)
        .map((c) => bodyText(c.message.body))
        .sort(),
    ).toEqual(["old", "young"]);
  });

  it("discards a half message checked transactionCheckMax times to TRANS_CHECK_MAX_TIME_TOPIC", async () => {
    const s = await setup({ transactionCheckMax: 2 });
    const tx = await sendHalf(s.b, s.clock, { body: "orphan" });
    const kept = await sendHalf(s.b, s.clock, { body: "answered" });
    expect(s.b.topics.has(SystemTopic.TRANS_CHECK_MAX_TIME)).toBe(true);
    for (let pass = 1; pass <= 2; pass++) {
      s.clock.advance(30_000);
      expect(await s.b.service.checkNow()).toBe(pass === 1 ? 2 : 1);
      if (pass === 1) await end(s.b, kept, "COMMIT");
    }
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(0);
    const discarded = await readAll(s.b, SystemTopic.TRANS_CHECK_MAX_TIME, 1);
    expect(discarded.map((m) => bodyText(m.body))).toEqual(["orphan"]);
    expect(discarded[0]?.properties.get("UNIQ_KEY")).toBe(tx.messageId);
    expect(await rejection(end(s.b, tx, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(0);
    expect((await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body))).toEqual(["answered"]);
    expect(s.b.service.stats()).toMatchObject({ opEntries: 0, copies: 0 });
  });

  it("respects CHECK_IMMUNITY_TIME_IN_SECONDS without holding up the messages behind it", async () => {
    const s = await setup();
    const immune = await sendHalf(s.b, s.clock, {
      body: "immune",
      properties: { [TransactionProperty.CHECK_IMMUNITY_TIME_IN_SECONDS]: "60" },
    });
    await sendHalf(s.b, s.clock, { body: "plain" });
    s.clock.advance(TIMEOUT + 1000);
    expect(await s.b.service.checkNow()).toBe(1);
    expect(s.b.checks.map((c) => bodyText(c.message.body))).toEqual(["plain"]);
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(1); // plain again; immune still within 60 s
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(2);
    const immuneChecks = s.b.checks.filter((c) => c.messageId === immune.messageId);
    expect(immuneChecks).toHaveLength(1);
    // Carried forward unchecked twice, its first check is still number 1.
    expect(immuneChecks[0]?.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)).toBe("1");
    await end(s.b, immune, "COMMIT");
    expect((await readAll(s.b, TX_TOPIC)).map((m) => bodyText(m.body))).toEqual(["immune"]);
  });

  it("commits racing a check pass are delivered once, whichever side gets there first", async () => {
    const s = await setup();
    let delivered = 0;
    const checked = new Set<string>();
    // Ends start 0..5 event-loop turns after the pass, so they land before, during and after its writes.
    for (let turns = 0; turns <= 5; turns++) {
      const txs: SentHalf[] = [];
      for (let i = 0; i < 20; i++) txs.push(await sendHalf(s.b, s.clock, { body: `t${turns}-${i}` }));
      s.clock.advance(30_000);
      const pass = s.b.service.checkNow();
      for (let k = 0; k < turns; k++) await new Promise((r) => setImmediate(r));
      const ends = await Promise.allSettled(txs.map((tx) => end(s.b, tx, "COMMIT")));
      await pass;
      expect(ends.every((r) => r.status === "fulfilled")).toBe(true);
      delivered += txs.length;
      for (const c of s.b.checks) checked.add(c.messageId);
    }
    // Some checks went out before the commits landed; answering them now is refused.
    expect(checked.size).toBeGreaterThan(0);
    for (const c of s.b.checks) {
      expect(
        await rejection(
          s.b.service.endTransaction({
            topic: TX_TOPIC,
            producerGroup: TX_GROUP,
            transactionId: c.transactionId,
            messageId: c.messageId,
            resolution: "COMMIT",
            fromTransactionCheck: true,
          }),
        ),
      ).toBe(ErrorCode.TransactionNotFound);
    }
    s.clock.advance(30_000);
    expect(await s.b.service.checkNow()).toBe(0);
    expect((await readAll(s.b, TX_TOPIC)).length).toBe(delivered);
    expect(s.b.service.stats()).toMatchObject({ opEntries: 0, copies: 0 });
  });

  it("runs passes on its own every transactionCheckInterval", async () => {
    const s = await setup({ transactionCheckInterval: 50 });
    await sendHalf(s.b, s.clock, { body: "timed" });
    s.clock.advance(TIMEOUT + 1000);
    const deadline = Date.now() + 20_000;
    while (s.b.checks.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(s.b.checks.length).toBeGreaterThanOrEqual(3);
    expect(s.b.checks.slice(0, 3).map((c) => c.message.properties.get("TRANSACTION_CHECK_TIMES"))).toEqual([
      "1",
      "2",
      "3",
    ]);
  });
});

describe("restart", () => {
  it("after a clean restart, pending transactions are still checked and old ids still commit", async () => {
    const s = await setup();
    const a = await sendHalf(s.b, s.clock, { body: "a" });
    const b = await sendHalf(s.b, s.clock, { body: "b" });
    const c = await sendHalf(s.b, s.clock, { body: "c" });
    await end(s.b, c, "ROLLBACK");
    s.clock.advance(TIMEOUT + 1000);
    expect(await s.b.service.checkNow()).toBe(2);
    const r = await s.reopen();
    await end(r, a, "COMMIT");
    expect(await rejection(end(r, c, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    s.clock.advance(30_000);
    expect(await r.service.checkNow()).toBe(1);
    expect(r.checks[0]?.messageId).toBe(b.messageId);
    expect(r.checks[0]?.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)).toBe("2");
    expect(await rejection(end(r, a, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    await end(r, b, "ROLLBACK");
    expect((await readAll(r, TX_TOPIC)).map((m) => bodyText(m.body))).toEqual(["a"]);
  });

  it("without any committed offset (lost before a crash) rebuilds from the queues: no re-check of passed copies, no second delivery", async () => {
    const s = await setup();
    const a = await sendHalf(s.b, s.clock, { body: "a" });
    const b = await sendHalf(s.b, s.clock, { body: "b" });
    for (let i = 0; i < 3; i++) {
      s.clock.advance(30_000);
      expect(await s.b.service.checkNow()).toBe(2);
    }
    await end(s.b, a, "COMMIT");
    const r = await s.reopen({ dropOffsets: true });
    expect(r.offsets.query(TRANSACTION_SYS_GROUP, SystemTopic.TRANS_HALF, 0)).toBe(-1);
    expect(await rejection(end(r, a, "COMMIT"))).toBe(ErrorCode.TransactionNotFound);
    s.clock.advance(30_000);
    // Only b's live copy is checked, once, with its count carried on.
    expect(await r.service.checkNow()).toBe(1);
    expect(r.checks[0]?.messageId).toBe(b.messageId);
    expect(r.checks[0]?.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)).toBe("4");
    await end(r, b, "COMMIT");
    expect((await readAll(r, TX_TOPIC)).map((m) => bodyText(m.body)).sort()).toEqual(["a", "b"]);
  });
});
