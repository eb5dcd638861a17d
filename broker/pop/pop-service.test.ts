import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../../common/errors.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { PopProperty } from "./pop-properties.ts";
import type { PoppedMessage } from "./pop-service.ts";
import { deadLetterTopicOf, popRetryTopicOf, REVIVE_GROUP, reviveTopicOf } from "./pop-topics.ts";
import { ReceiptHandleCodec } from "./receipt-handle.ts";
import {
  bodyText,
  createTopic,
  openTestBroker,
  sendNumbered,
  TEST_CLUSTER,
  TEST_REVIVE_QUEUES,
  type TestBroker,
  TestClock,
} from "./test-broker.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TOPIC = "PopTopic";
const GROUP = "GID_pop";
/** Never "retry first", so a test's pops read the topic before its retry topic. */
const NO_RETRY_FIRST = () => 0.5;

async function setup(
  opts: { clock?: TestClock; queues?: number } = {},
): Promise<{ b: TestBroker; dir: string; clock: TestClock; reopen: () => Promise<TestBroker> }> {
  const t = tempDir("pop");
  cleanups.push(t.remove);
  const clock = opts.clock ?? new TestClock();
  let current = await openTestBroker(t.dir, { clock: clock.read, random: NO_RETRY_FIRST });
  let open = true;
  cleanups.push(async () => {
    if (open) await current.close();
  });
  await createTopic(current, TOPIC, opts.queues ?? 2);
  const reopen = async () => {
    await current.close();
    open = false;
    current = await openTestBroker(t.dir, { clock: clock.read, random: NO_RETRY_FIRST });
    open = true;
    return current;
  };
  return { b: current, dir: t.dir, clock, reopen };
}

async function popAll(
  b: TestBroker,
  group: string,
  topic: string,
  invisibleTimeMs = 30_000,
  extra: { filter?: { type: "TAG" | "SQL92"; expression: string } } = {},
): Promise<PoppedMessage[]> {
  const out: PoppedMessage[] = [];
  for (;;) {
    const got = await b.service.pop(group, topic, { maxMessages: 32, invisibleTimeMs, ...extra });
    if (got.length === 0) return out;
    out.push(...got);
  }
}

function bodies(ms: readonly PoppedMessage[]): string[] {
  return ms.map((m) => bodyText(m.message.body)).sort();
}

async function expectRejects(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => (e as RmqError).code === code);
}

describe("pop, ack", () => {
  it("delivers each message once; acked messages never come back, not after the invisible time and not after a restart", async () => {
    const { b, clock, reopen } = await setup();
    const ids = await sendNumbered(b, TOPIC, 10);
    const got = await popAll(b, GROUP, TOPIC);
    expect(bodies(got)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`).sort());
    expect(new Set(got.map((m) => m.messageId))).toEqual(new Set(ids));
    for (const m of got) {
      expect(m.deliveryAttempt).toBe(1);
      expect(m.topic).toBe(TOPIC);
      expect(m.message.topic).toBe(TOPIC);
    }
    const results = await b.service.ack(
      GROUP,
      TOPIC,
      got.map((m) => m.receiptHandle),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    // Acking again is not an error.
    expect((await b.service.ack(GROUP, TOPIC, [got[0]?.receiptHandle as string]))[0]?.ok).toBe(true);

    clock.advance(60_000);
    expect(await b.service.reviveDue()).toBe(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);

    const b2 = await reopen();
    // Everything was resolved, so the revive queues were committed to their ends: a restart rescans nothing.
    const reviveTopic = reviveTopicOf(TEST_CLUSTER);
    for (let q = 0; q < TEST_REVIVE_QUEUES; q++) {
      expect(b2.offsets.query(REVIVE_GROUP, reviveTopic, q)).toBe(
        b2.store.getMaxOffsetInQueue(reviveTopic, q),
      );
    }
    expect(b2.store.getMaxOffsetInQueue(reviveTopic, 0)).toBeGreaterThan(0);
    clock.advance(60_000);
    expect(await b2.service.reviveDue()).toBe(0);
    expect(await popAll(b2, GROUP, TOPIC)).toEqual([]);
    const progress = b2.service.consumerProgress(GROUP, TOPIC);
    expect(progress.totalLag).toBe(0);
    expect(progress.totalInflight).toBe(0);
  });

  it("a popped message not acked comes back after its invisible time with deliveryAttempt 2 and its identity kept", async () => {
    const { b, clock } = await setup();
    await sendNumbered(b, TOPIC, 3, { tag: () => "TagA", properties: (i) => ({ color: `c${i}` }) });
    const first = await popAll(b, GROUP, TOPIC, 30_000);
    expect(first).toHaveLength(3);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);

    clock.advance(29_999);
    expect(await b.service.reviveDue()).toBe(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);

    clock.advance(1);
    expect(await b.service.reviveDue()).toBe(3);
    const again = await popAll(b, GROUP, TOPIC);
    expect(bodies(again)).toEqual(bodies(first));
    const byId = new Map(first.map((m) => [m.messageId, m]));
    for (const m of again) {
      const orig = byId.get(m.messageId);
      expect(orig).toBeDefined();
      expect(m.deliveryAttempt).toBe(2);
      expect(m.topic).toBe(TOPIC);
      expect(m.message.topic).toBe(popRetryTopicOf(GROUP, TOPIC));
      expect(m.message.properties.get(PopProperty.RETRY_TOPIC)).toBe(TOPIC);
      expect(m.message.properties.get(PopProperty.TAGS)).toBe("TagA");
      expect(m.message.properties.get(PopProperty.KEYS)).toBe(orig?.message.properties.get(PopProperty.KEYS));
      expect(m.message.properties.get("color")).toBe(orig?.message.properties.get("color"));
      expect(m.message.properties.get(PopProperty.ORIGIN_MESSAGE_ID)).toBe(orig?.message.msgId);
      expect(m.message.properties.get(PopProperty.FIRST_POP_TIME)).toBe(String(orig?.popTime));
    }
    // The old handles died with the revive.
    const stale = await b.service.ack(GROUP, TOPIC, [first[0]?.receiptHandle as string]);
    expect(stale[0]).toMatchObject({ ok: false, code: ErrorCode.InvalidReceiptHandle });
    expect(
      (
        await b.service.ack(
          GROUP,
          TOPIC,
          again.map((m) => m.receiptHandle),
        )
      ).every((r) => r.ok),
    ).toBe(true);
    clock.advance(3_600_000);
    expect(await b.service.reviveDue()).toBe(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);
  });

  it("changeInvisibleTime issues a new handle, refuses the old one and moves the deadline", async () => {
    const { b, clock } = await setup();
    await sendNumbered(b, TOPIC, 2);
    const [m1, m2] = await popAll(b, GROUP, TOPIC, 10_000);
    if (m1 === undefined || m2 === undefined) throw new Error("expected two messages");
    clock.advance(5_000);
    const c1 = await b.service.changeInvisibleTime(GROUP, TOPIC, m1.receiptHandle, 60_000);
    const c2 = await b.service.changeInvisibleTime(GROUP, TOPIC, m2.receiptHandle, 60_000);
    expect(c1.receiptHandle).not.toBe(m1.receiptHandle);
    expect(c2.receiptHandle).not.toBe(m2.receiptHandle);
    expect(c1.popTime).toBe(clock.now);
    expect(c1.invisibleTimeMs).toBe(60_000);
    // The old handle stops working for ack, for another change and for the DLQ.
    expect((await b.service.ack(GROUP, TOPIC, [m1.receiptHandle]))[0]).toMatchObject({
      ok: false,
      code: ErrorCode.InvalidReceiptHandle,
    });
    await expectRejects(
      b.service.changeInvisibleTime(GROUP, TOPIC, m1.receiptHandle, 1000),
      ErrorCode.InvalidReceiptHandle,
    );
    await expectRejects(
      b.service.forwardToDeadLetterQueue(GROUP, TOPIC, m2.receiptHandle),
      ErrorCode.InvalidReceiptHandle,
    );
    // Past the first deadline (popTime + 10 s) nothing comes back.
    clock.advance(20_000);
    expect(await b.service.reviveDue()).toBe(0);
    expect((await b.service.ack(GROUP, TOPIC, [c1.receiptHandle]))[0]?.ok).toBe(true);
    clock.advance(39_999); // just before change time + 60 s
    expect(await b.service.reviveDue()).toBe(0);
    clock.advance(1);
    expect(await b.service.reviveDue()).toBe(1);
    const back = await popAll(b, GROUP, TOPIC);
    expect(bodies(back)).toEqual([bodyText(m2.message.body)]);
    expect(back[0]?.deliveryAttempt).toBe(2);
  });

  it("concurrent operations on one handle: the first wins, the others see its outcome", async () => {
    const { b, clock } = await setup();
    await sendNumbered(b, TOPIC, 2);
    const [m1, m2] = await popAll(b, GROUP, TOPIC, 10_000);
    if (m1 === undefined || m2 === undefined) throw new Error("expected two messages");
    // ack first: a concurrent change and a second ack see an acked message.
    const [ackA, change, ackB] = await Promise.allSettled([
      b.service.ack(GROUP, TOPIC, [m1.receiptHandle]),
      b.service.changeInvisibleTime(GROUP, TOPIC, m1.receiptHandle, 60_000),
      b.service.ack(GROUP, TOPIC, [m1.receiptHandle, m1.receiptHandle]),
    ]);
    expect(ackA).toMatchObject({ status: "fulfilled", value: [{ ok: true }] });
    expect(change).toMatchObject({ status: "rejected", reason: { code: ErrorCode.InvalidReceiptHandle } });
    expect(ackB).toMatchObject({ status: "fulfilled", value: [{ ok: true }, { ok: true }] });
    // change first: a concurrent ack of the old handle is refused, the new handle works.
    const [changed, lateAck] = await Promise.allSettled([
      b.service.changeInvisibleTime(GROUP, TOPIC, m2.receiptHandle, 60_000),
      b.service.ack(GROUP, TOPIC, [m2.receiptHandle]),
    ]);
    expect(lateAck).toMatchObject({
      status: "fulfilled",
      value: [{ ok: false, code: ErrorCode.InvalidReceiptHandle }],
    });
    if (changed.status !== "fulfilled") throw new Error("change failed");
    expect((await b.service.ack(GROUP, TOPIC, [changed.value.receiptHandle]))[0]?.ok).toBe(true);
    clock.advance(3_600_000);
    expect(await b.service.reviveDue()).toBe(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);
  });

  it("changeInvisibleTime 0 (a nack) makes the message visible again at the next revive", async () => {
    const { b } = await setup();
    await sendNumbered(b, TOPIC, 1);
    const [m] = await popAll(b, GROUP, TOPIC);
    const c = await b.service.changeInvisibleTime(GROUP, TOPIC, (m as PoppedMessage).receiptHandle, 0);
    expect(c.invisibleTimeMs).toBe(0);
    expect(await b.service.reviveDue()).toBe(1);
    const back = await popAll(b, GROUP, TOPIC);
    expect(back.map((x) => x.deliveryAttempt)).toEqual([2]);
  });

  it("refuses expired, garbled, forged and foreign handles with INVALID_RECEIPT_HANDLE", async () => {
    const { b, clock } = await setup();
    await sendNumbered(b, TOPIC, 2);
    const [m1, m2] = await popAll(b, GROUP, TOPIC, 10_000);
    if (m1 === undefined || m2 === undefined) throw new Error("expected two messages");
    const h = m1.receiptHandle;
    const garbled = h.slice(0, 5) + (h[5] === "A" ? "B" : "A") + h.slice(6);
    const [payload] = h.split(".");
    const forged = `${payload}.${new ReceiptHandleCodec(Buffer.alloc(32, 7)).encode({ ckOffset: 0, popTime: 0, invisibleTime: 1, reviveQid: 0, index: 0, brokerName: "x", topic: "t", queueId: 0, queueOffset: 0, commitLogOffset: 0 }).split(".")[1]}`;
    const results = await b.service.ack(GROUP, TOPIC, [garbled, forged, "", "not-a-handle", h]);
    expect(results.slice(0, 4).map((r) => (r.ok ? "ok" : r.code))).toEqual(
      Array(4).fill(ErrorCode.InvalidReceiptHandle),
    );
    expect(results[4]?.ok).toBe(true);
    // Another group or another topic may not use the handle.
    expect((await b.service.ack("GID_other", TOPIC, [m2.receiptHandle]))[0]).toMatchObject({
      ok: false,
      code: ErrorCode.InvalidReceiptHandle,
    });
    expect((await b.service.ack(GROUP, "OtherTopic", [m2.receiptHandle]))[0]).toMatchObject({
      ok: false,
      code: ErrorCode.InvalidReceiptHandle,
    });
    // Expired (the invisible time is over) even before revive ran.
    clock.advance(10_000);
    expect((await b.service.ack(GROUP, TOPIC, [m2.receiptHandle]))[0]).toMatchObject({
      ok: false,
      code: ErrorCode.InvalidReceiptHandle,
    });
    await expectRejects(
      b.service.changeInvisibleTime(GROUP, TOPIC, m2.receiptHandle, 5000),
      ErrorCode.InvalidReceiptHandle,
    );
    // The expired message is revived, not lost.
    expect(await b.service.reviveDue()).toBe(1);
    expect(bodies(await popAll(b, GROUP, TOPIC))).toEqual([bodyText(m2.message.body)]);
  });

  it("validates pop arguments", async () => {
    const { b } = await setup();
    await expectRejects(
      b.service.pop(GROUP, TOPIC, { maxMessages: 33, invisibleTimeMs: 1000 }),
      ErrorCode.IllegalArgument,
    );
    await expectRejects(
      b.service.pop(GROUP, TOPIC, { maxMessages: 0, invisibleTimeMs: 1000 }),
      ErrorCode.IllegalArgument,
    );
    await expectRejects(
      b.service.pop(GROUP, TOPIC, { maxMessages: 1, invisibleTimeMs: -1 }),
      ErrorCode.IllegalArgument,
    );
    await expectRejects(
      b.service.pop(GROUP, TOPIC, { maxMessages: 1, invisibleTimeMs: 1000, queueId: 2 }),
      ErrorCode.IllegalArgument,
    );
    await expectRejects(
      b.service.pop(GROUP, "NoSuchTopic", { maxMessages: 1, invisibleTimeMs: 1000 }),
      ErrorCode.TopicNotFound,
    );
    await expectRejects(
      b.service.pop(GROUP, TOPIC, {
        maxMessages: 1,
        invisibleTimeMs: 1000,
        filter: { type: "SQL92", expression: "a >" },
      }),
      ErrorCode.IllegalFilterExpression,
    );
  });
});

describe("retries and DLQ", () => {
  it("an always-failing consumer gets retryMaxTimes + 1 deliveries, then the message is in %DLQ%<group> with its origin", async () => {
    const { b, clock } = await setup();
    await b.groups.createOrUpdate({ groupName: GROUP, retryMaxTimes: 2 });
    const [id] = await sendNumbered(b, TOPIC, 1, { tag: () => "TagX" });
    const attempts: number[] = [];
    for (let round = 0; round < 6; round++) {
      const got = await popAll(b, GROUP, TOPIC, 10_000);
      attempts.push(...got.map((m) => m.deliveryAttempt));
      clock.advance(10_000);
      await b.service.reviveDue();
    }
    expect(attempts).toEqual([1, 2, 3]);
    const dlqTopic = deadLetterTopicOf(GROUP);
    const tc = b.topics.get(dlqTopic);
    expect(tc?.readQueueNums).toBe(1);
    const dead = await popAll(b, "GID_dlq_reader", dlqTopic);
    expect(dead).toHaveLength(1);
    const d = dead[0] as PoppedMessage;
    expect(bodyText(d.message.body)).toBe("m0");
    expect(d.messageId).toBe(id);
    expect(d.message.properties.get(PopProperty.DLQ_ORIGIN_TOPIC)).toBe(TOPIC);
    expect(d.message.properties.get(PopProperty.DLQ_ORIGIN_MESSAGE_ID)).toBe(id);
    expect(d.message.properties.get(PopProperty.TAGS)).toBe("TagX");
    expect(d.message.reconsumeTimes).toBe(3);
    // Nothing is left for the group.
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);
  });

  it("forwardToDeadLetterQueue moves a message to the DLQ and acks it", async () => {
    const { b, clock } = await setup();
    const [id] = await sendNumbered(b, TOPIC, 1);
    const [m] = await popAll(b, GROUP, TOPIC);
    await b.service.forwardToDeadLetterQueue(GROUP, TOPIC, (m as PoppedMessage).receiptHandle);
    expect((await b.service.ack(GROUP, TOPIC, [(m as PoppedMessage).receiptHandle]))[0]).toMatchObject({
      ok: false,
    });
    clock.advance(3_600_000);
    expect(await b.service.reviveDue()).toBe(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);
    const dead = await popAll(b, GROUP, deadLetterTopicOf(GROUP));
    expect(dead.map((x) => x.message.properties.get(PopProperty.DLQ_ORIGIN_MESSAGE_ID))).toEqual([id]);
  });
});

describe("sharing", () => {
  it("two groups each get every message", async () => {
    const { b } = await setup({ queues: 4 });
    await sendNumbered(b, TOPIC, 40);
    const a = await popAll(b, "GID_a", TOPIC);
    const c = await popAll(b, "GID_b", TOPIC);
    const all = Array.from({ length: 40 }, (_, i) => `m${i}`).sort();
    expect(bodies(a)).toEqual(all);
    expect(bodies(c)).toEqual(all);
  });

  it("two consumers of one group share the messages with no loss and no duplicate while acking", async () => {
    const { b } = await setup({ queues: 4 });
    const N = 300;
    const sending = sendNumbered(b, TOPIC, N);
    const seen: string[][] = [[], []];
    let total = 0;
    const consumer = async (k: number) => {
      while (total < N) {
        const got = await b.service.pop(GROUP, TOPIC, {
          maxMessages: 7,
          invisibleTimeMs: 60_000,
          pollTimeoutMs: 200,
        });
        for (const m of got) seen[k]?.push(bodyText(m.message.body));
        total += got.length;
        const acks = await b.service.ack(
          GROUP,
          TOPIC,
          got.map((m) => m.receiptHandle),
        );
        expect(acks.every((r) => r.ok)).toBe(true);
      }
    };
    await Promise.all([sending, consumer(0), consumer(1)]);
    const merged = [...(seen[0] ?? []), ...(seen[1] ?? [])];
    expect(merged).toHaveLength(N);
    expect(new Set(merged).size).toBe(N);
    expect((seen[0] ?? []).length).toBeGreaterThan(0);
    expect((seen[1] ?? []).length).toBeGreaterThan(0);
    expect(await popAll(b, GROUP, TOPIC)).toEqual([]);
  });
});

describe("long polling", () => {
  it("a held pop is woken by a send and returns the new message", async () => {
    const { b } = await setup({ clock: new TestClock() });
    const pending = b.service.pop(GROUP, TOPIC, {
      maxMessages: 4,
      invisibleTimeMs: 30_000,
      pollTimeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 100));
    await sendNumbered(b, TOPIC, 1, { prefix: "late" });
    const got = await pending;
    expect(bodies(got)).toEqual(["late0"]);
  });

  it("a held pop is woken by a revive into the retry topic", async () => {
    const { b, clock } = await setup();
    await sendNumbered(b, TOPIC, 1);
    await popAll(b, GROUP, TOPIC, 5_000);
    const pending = b.service.pop(GROUP, TOPIC, {
      maxMessages: 4,
      invisibleTimeMs: 30_000,
      pollTimeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 50));
    clock.advance(5_000);
    await b.service.reviveDue();
    const got = await pending;
    expect(got.map((m) => m.deliveryAttempt)).toEqual([2]);
  });

  it("a held pop is not woken by a message its tag filter rejects, and is ended by its signal", async () => {
    const { b } = await setup();
    const ac = new AbortController();
    const pending = b.service.pop(GROUP, TOPIC, {
      maxMessages: 4,
      invisibleTimeMs: 30_000,
      pollTimeoutMs: 20_000,
      signal: ac.signal,
      filter: { type: "TAG", expression: "Wanted" },
    });
    await sendNumbered(b, TOPIC, 3, { tag: () => "Other" });
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    expect(await pending).toEqual([]);
    // The non-matching messages were skipped for this group (they count as consumed).
    expect(b.service.consumerProgress(GROUP, TOPIC).totalLag).toBe(0);
  });

  it("shutdown ends held polls", async () => {
    const t = tempDir("pop-shutdown");
    cleanups.push(t.remove);
    const b = await openTestBroker(t.dir);
    await createTopic(b, TOPIC, 1);
    const pending = b.service.pop(GROUP, TOPIC, {
      maxMessages: 1,
      invisibleTimeMs: 30_000,
      pollTimeoutMs: 60_000,
    });
    await new Promise((r) => setTimeout(r, 50));
    await b.close();
    expect(await pending).toEqual([]);
  });
});

describe("filters", () => {
  it("TAG and SQL92 filters deliver exactly the matching messages", async () => {
    const { b, clock } = await setup({ queues: 3 });
    const tags = ["A", "B", "C", undefined];
    await sendNumbered(b, TOPIC, 24, { tag: (i) => tags[i % 4], properties: (i) => ({ n: String(i) }) });
    const expectBodies = (pred: (i: number) => boolean) =>
      Array.from({ length: 24 }, (_, i) => i)
        .filter(pred)
        .map((i) => `m${i}`)
        .sort();
    const tagged = await popAll(b, "GID_tag", TOPIC, 30_000, {
      filter: { type: "TAG", expression: "A || C" },
    });
    expect(bodies(tagged)).toEqual(expectBodies((i) => i % 4 === 0 || i % 4 === 2));
    const sql = await popAll(b, "GID_sql", TOPIC, 30_000, {
      filter: { type: "SQL92", expression: "n > 10 AND TAGS IN ('A', 'B')" },
    });
    expect(bodies(sql)).toEqual(expectBodies((i) => i > 10 && (i % 4 === 0 || i % 4 === 1)));
    const all = await popAll(b, "GID_all", TOPIC, 30_000, { filter: { type: "TAG", expression: "*" } });
    expect(all).toHaveLength(24);
    // Non-matching messages count as consumed.
    expect(b.service.consumerProgress("GID_tag", TOPIC).totalLag).toBe(0);
    // Revived messages pass the filter again on their way back (here a narrower one).
    clock.advance(30_000);
    expect(await b.service.reviveDue()).toBe(tagged.length + sql.length + all.length);
    const again = await popAll(b, "GID_tag", TOPIC, 30_000, { filter: { type: "TAG", expression: "A" } });
    expect(bodies(again)).toEqual(expectBodies((i) => i % 4 === 0));
    expect(again.every((m) => m.deliveryAttempt === 2)).toBe(true);
  });

  it("SQL92 is refused while enablePropertyFilter is off", async () => {
    const t = tempDir("pop-sql-off");
    cleanups.push(t.remove);
    const b = await openTestBroker(t.dir, { config: { enablePropertyFilter: false } });
    cleanups.push(() => b.close());
    await createTopic(b, TOPIC, 1);
    await expectRejects(
      b.service.pop(GROUP, TOPIC, {
        maxMessages: 1,
        invisibleTimeMs: 1000,
        filter: { type: "SQL92", expression: "a > 1" },
      }),
      ErrorCode.IllegalFilterExpression,
    );
  });
});

describe("restart", () => {
  it("after a clean restart acked messages stay consumed and un-acked ones come back after their invisible time", async () => {
    const { b, clock, reopen } = await setup({ queues: 2 });
    await sendNumbered(b, TOPIC, 10);
    const got = await popAll(b, GROUP, TOPIC, 20_000);
    expect(got).toHaveLength(10);
    const acked = got.filter((_, i) => i % 2 === 0);
    const kept = got.filter((_, i) => i % 2 === 1);
    expect(
      (
        await b.service.ack(
          GROUP,
          TOPIC,
          acked.map((m) => m.receiptHandle),
        )
      ).every((r) => r.ok),
    ).toBe(true);
    // One of the kept ones had its invisible time changed before the restart.
    const changed = await b.service.changeInvisibleTime(
      GROUP,
      TOPIC,
      (kept[0] as PoppedMessage).receiptHandle,
      100_000,
    );

    const b2 = await reopen();
    // Handles survive the restart: a still-valid handle can be acked.
    expect((await b2.service.ack(GROUP, TOPIC, [(kept[1] as PoppedMessage).receiptHandle]))[0]?.ok).toBe(
      true,
    );
    expect(await popAll(b2, GROUP, TOPIC)).toEqual([]);
    clock.advance(20_000);
    expect(await b2.service.reviveDue()).toBe(3);
    const back = await popAll(b2, GROUP, TOPIC);
    expect(bodies(back)).toEqual(bodies(kept.slice(2)));
    expect(back.every((m) => m.deliveryAttempt === 2)).toBe(true);
    expect((await b2.service.ack(GROUP, TOPIC, [changed.receiptHandle]))[0]?.ok).toBe(true);
    clock.advance(200_000);
    expect(await b2.service.reviveDue()).toBe(back.length); // the un-acked second deliveries
  });
});

describe("pop on a PRIORITY topic", () => {
  it("serves the highest queue first and the retry topic last", async () => {
    const { b } = await setup();
    await b.topics.createOrUpdate({
      topicName: "PrioTopic",
      readQueueNums: 4,
      writeQueueNums: 4,
      attributes: { "message.type": "PRIORITY" },
    });
    for (const q of [0, 2, 1, 3, 3])
      await b.service.sendMessages({
        topic: "PrioTopic",
        queueId: q,
        messages: [{ body: Buffer.from(`q${q}`) }],
      });
    const order: string[] = [];
    for (;;) {
      const got = await b.service.pop(GROUP, "PrioTopic", { maxMessages: 1, invisibleTimeMs: 30_000 });
      if (got.length === 0) break;
      order.push(bodyText((got[0] as PoppedMessage).message.body));
    }
    expect(order).toEqual(["q3", "q3", "q2", "q1", "q0"]);
  });
});
