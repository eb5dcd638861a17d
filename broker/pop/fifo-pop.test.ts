import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../../common/errors.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import type { PoppedMessage } from "./pop-service.ts";
import { deadLetterTopicOf } from "./pop-topics.ts";
import { bodyText, createTopic, openTestBroker, type TestBroker, TestClock } from "./test-broker.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TOPIC = "FifoTopic";
const GROUP = "GID_fifo";

async function setup(
  retryMaxTimes = 16,
): Promise<{ b: TestBroker; clock: TestClock; reopen: () => Promise<TestBroker> }> {
  const t = tempDir("fifo");
  cleanups.push(t.remove);
  const clock = new TestClock();
  let current = await openTestBroker(t.dir, { clock: clock.read });
  let open = true;
  cleanups.push(async () => {
    if (open) await current.close();
  });
  await createTopic(current, TOPIC, 1);
  await current.groups.createOrUpdate({ groupName: GROUP, consumeMessageOrderly: true, retryMaxTimes });
  const reopen = async () => {
    await current.close();
    open = false;
    current = await openTestBroker(t.dir, { clock: clock.read });
    open = true;
    return current;
  };
  return { b: current, clock, reopen };
}

/** Sends `perGroup` messages of each of `groups` message groups, interleaved, to queue 0: body "g<k>-<i>". */
async function sendGroups(b: TestBroker, groups: number, perGroup: number): Promise<void> {
  for (let i = 0; i < perGroup; i++)
    for (let k = 0; k < groups; k++)
      await b.service.sendMessages({
        topic: TOPIC,
        queueId: 0,
        messages: [{ body: Buffer.from(`g${k}-${i}`), properties: { __SHARDINGKEY: `g${k}` } }],
      });
}

function pop(
  b: TestBroker,
  max: number,
  invisibleTimeMs = 10_000,
  attemptId?: string,
): Promise<PoppedMessage[]> {
  return b.service.pop(GROUP, TOPIC, { maxMessages: max, invisibleTimeMs, fifo: true, attemptId });
}

const texts = (ms: readonly PoppedMessage[]) => ms.map((m) => bodyText(m.message.body));

describe("FIFO pop", () => {
  it("long polls parked behind in-flight groups do not take turns waking each other (the event loop keeps running)", async () => {
    const { b } = await setup();
    await sendGroups(b, 2, 1);
    const inFlight = await pop(b, 32);
    expect(texts(inFlight)).toEqual(["g0-0", "g1-0"]);
    await b.service.sendMessages({
      topic: TOPIC,
      queueId: 0,
      messages: [{ body: Buffer.from("g0-1"), properties: { __SHARDINGKEY: "g0" } }],
    });
    // Two long polls of the group now find every group in flight; each takes the queue lock in turn.
    let reads = 0;
    const getMessage = b.store.getMessage.bind(b.store);
    b.store.getMessage = (...args) => {
      reads++;
      return getMessage(...args);
    };
    const polls = [0, 1].map(() =>
      b.service.pop(GROUP, TOPIC, {
        maxMessages: 32,
        invisibleTimeMs: 10_000,
        fifo: true,
        pollTimeoutMs: 400,
      }),
    );
    // Timers still fire while they are parked.
    const ticks = await new Promise<number>((resolve) => {
      let n = 0;
      const t = setInterval(() => {
        if (++n === 5) {
          clearInterval(t);
          resolve(n);
        }
      }, 10);
    });
    expect(ticks).toBe(5);
    // An ack wakes them: the next message of the group is served.
    expect((await b.service.ack(GROUP, TOPIC, [inFlight[0]?.receiptHandle as string]))[0]?.ok).toBe(true);
    const served = (await Promise.all(polls)).flat();
    expect(texts(served)).toEqual(["g0-1"]);
    // A handful of reads, not a spin: each poll reads on start, after the ack, and maybe once more.
    expect(reads).toBeLessThan(20);
  });

  it("hands out one message group at a time in order, while other groups of the same queue progress", async () => {
    const { b } = await setup();
    await sendGroups(b, 3, 3);
    expect(texts(await pop(b, 1))).toEqual(["g0-0"]);
    // g0 is in flight: the next pops skip its later messages and serve the other groups.
    expect(texts(await pop(b, 1))).toEqual(["g1-0"]);
    expect(texts(await pop(b, 1))).toEqual(["g2-0"]);
    expect(await pop(b, 32)).toEqual([]);
  });

  it("the next message of a group comes only after the previous one is acked", async () => {
    const { b } = await setup();
    await sendGroups(b, 2, 3);
    const first = await pop(b, 1);
    const second = await pop(b, 1);
    expect(texts([...first, ...second])).toEqual(["g0-0", "g1-0"]);
    expect((await b.service.ack(GROUP, TOPIC, [second[0]?.receiptHandle as string]))[0]?.ok).toBe(true);
    expect(texts(await pop(b, 32))).toEqual(["g1-1", "g1-2"]);
    expect(await pop(b, 32)).toEqual([]);
    expect((await b.service.ack(GROUP, TOPIC, [first[0]?.receiptHandle as string]))[0]?.ok).toBe(true);
    expect(texts(await pop(b, 32))).toEqual(["g0-1", "g0-2"]);
  });

  it("a message whose invisible time ran out comes back in its place with attempt + 1", async () => {
    const { b, clock } = await setup();
    await sendGroups(b, 1, 3);
    const [m0] = await pop(b, 1);
    expect(m0?.deliveryAttempt).toBe(1);
    clock.advance(10_001);
    const again = await pop(b, 1);
    expect(texts(again)).toEqual(["g0-0"]);
    expect(again[0]?.deliveryAttempt).toBe(2);
    expect(again[0]?.messageId).toBe(m0?.messageId);
    // The expired handle no longer acks.
    const stale = await b.service.ack(GROUP, TOPIC, [m0?.receiptHandle as string]);
    expect(stale[0]).toMatchObject({ ok: false, code: ErrorCode.InvalidReceiptHandle });
  });

  it("after the last attempt the message goes to the DLQ and its group moves on", async () => {
    const { b, clock } = await setup(1); // 2 deliveries
    await sendGroups(b, 1, 2);
    expect(texts(await pop(b, 1))).toEqual(["g0-0"]);
    clock.advance(10_001);
    expect((await pop(b, 1))[0]?.deliveryAttempt).toBe(2);
    clock.advance(10_001);
    const next = await pop(b, 1);
    expect(texts(next)).toEqual(["g0-1"]);
    const dlq = await b.store.getMessage(deadLetterTopicOf(GROUP), 0, 0, 10);
    expect(dlq.messages.map((m) => bodyText(m.body))).toEqual(["g0-0"]);
  });

  it("forwardToDeadLetterQueue and a zero invisible time (nack) act on FIFO handles", async () => {
    const { b } = await setup();
    await sendGroups(b, 1, 3);
    const [m0] = await pop(b, 1);
    const changed = await b.service.changeInvisibleTime(GROUP, TOPIC, m0?.receiptHandle as string, 0);
    const [again] = await pop(b, 1);
    expect(bodyText(again?.message.body ?? new Uint8Array())).toBe("g0-0");
    expect(again?.deliveryAttempt).toBe(2);
    await expect(b.service.ack(GROUP, TOPIC, [changed.receiptHandle]).then((r) => r[0]?.ok)).resolves.toBe(
      false,
    );
    await b.service.forwardToDeadLetterQueue(GROUP, TOPIC, again?.receiptHandle as string);
    expect(texts(await pop(b, 1))).toEqual(["g0-1"]);
    const dlq = await b.store.getMessage(deadLetterTopicOf(GROUP), 0, 0, 10);
    expect(dlq.messages.map((m) => bodyText(m.body))).toEqual(["g0-0"]);
  });

  it("a pop retried with the same attempt id gets the same messages", async () => {
    const { b } = await setup();
    await sendGroups(b, 2, 2);
    const first = await pop(b, 32, 10_000, "attempt-1");
    expect(texts(first)).toEqual(["g0-0", "g1-0", "g0-1", "g1-1"]);
    const retried = await pop(b, 32, 10_000, "attempt-1");
    expect(texts(retried)).toEqual(texts(first));
    expect(retried.every((m) => m.deliveryAttempt === 1)).toBe(true);
    expect(await pop(b, 32, 10_000, "attempt-2")).toEqual([]);
  });

  it("acks out of order settle the offset over contiguous messages and survive a restart", async () => {
    const { b, reopen } = await setup();
    await sendGroups(b, 2, 2); // offsets: g0-0 0, g1-0 1, g0-1 2, g1-1 3
    const got = await pop(b, 1);
    const got2 = await pop(b, 1);
    expect(texts([...got, ...got2])).toEqual(["g0-0", "g1-0"]);
    await b.service.ack(GROUP, TOPIC, [got2[0]?.receiptHandle as string]);
    expect(b.offsets.query(GROUP, TOPIC, 0)).toBe(0);
    const b2 = await reopen();
    // g0-0 is still in flight (its invisible time survived), g1-0 stays acked: g1-1 is next.
    expect(texts(await pop(b2, 32))).toEqual(["g1-1"]);
    const ack = await b2.service.ack(GROUP, TOPIC, [got[0]?.receiptHandle as string]);
    expect(ack[0]?.ok).toBe(true);
    expect(b2.offsets.query(GROUP, TOPIC, 0)).toBe(2);
    expect(texts(await pop(b2, 32))).toEqual(["g0-1"]);
  });

  it("messages the subscription does not match are skipped", async () => {
    const { b } = await setup();
    for (const tag of ["a", "b", "a"])
      await b.service.sendMessages({
        topic: TOPIC,
        queueId: 0,
        messages: [{ body: Buffer.from(tag), tag, properties: { __SHARDINGKEY: "g" } }],
      });
    const got = await b.service.pop(GROUP, TOPIC, {
      maxMessages: 32,
      invisibleTimeMs: 10_000,
      fifo: true,
      filter: { type: "TAG", expression: "a" },
    });
    expect(texts(got)).toEqual(["a", "a"]);
    await b.service.ack(
      GROUP,
      TOPIC,
      got.map((m) => m.receiptHandle),
    );
    expect(b.offsets.query(GROUP, TOPIC, 0)).toBe(3);
  });

  it("refuses a forged FIFO handle", async () => {
    const { b } = await setup();
    await sendGroups(b, 1, 1);
    const [m] = await pop(b, 1);
    const forged = `${m?.receiptHandle.slice(0, -2)}AA`;
    await expect(b.service.changeInvisibleTime(GROUP, TOPIC, forged, 1000)).rejects.toSatisfy(
      (e: unknown) => (e as RmqError).code === ErrorCode.InvalidReceiptHandle,
    );
  });

  it("four concurrent pollers over four queues with acks in random order: every message once, each group in order", async () => {
    const t = tempDir("fifo-concurrent");
    cleanups.push(t.remove);
    const b = await openTestBroker(t.dir);
    cleanups.push(() => b.close());
    await createTopic(b, "T4", 4);
    await b.groups.createOrUpdate({ groupName: GROUP, consumeMessageOrderly: true });
    const groups = 12;
    const per = 25;
    const sends = Array.from({ length: groups }, async (_, k) => {
      for (let i = 0; i < per; i++)
        await b.service.sendMessages({
          topic: "T4",
          queueId: k % 4,
          messages: [{ body: Buffer.from(`g${k}:${i}`), properties: { __SHARDINGKEY: `g${k}` } }],
        });
    });
    const seen: string[] = [];
    let stop = false;
    const acks: Promise<unknown>[] = [];
    const pollers = Array.from({ length: 4 }, async () => {
      while (!stop) {
        await new Promise((r) => setImmediate(r));
        const got = await b.service.pop(GROUP, "T4", {
          maxMessages: 8,
          invisibleTimeMs: 60_000,
          fifo: true,
          pollTimeoutMs: 100,
        });
        for (const m of got) {
          seen.push(bodyText(m.message.body));
          acks.push(
            new Promise((r) => setTimeout(r, Math.random() * 10)).then(() =>
              b.service.ack(GROUP, "T4", [m.receiptHandle]).then((res) => expect(res[0]?.ok).toBe(true)),
            ),
          );
        }
      }
    });
    await Promise.all(sends);
    const deadline = Date.now() + 20_000;
    while (seen.length < groups * per && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await Promise.all(pollers);
    await Promise.all(acks);
    expect(seen).toHaveLength(groups * per);
    for (let k = 0; k < groups; k++) {
      const order = seen.filter((x) => x.startsWith(`g${k}:`)).map((x) => Number(x.split(":")[1]));
      expect(order).toEqual(Array.from({ length: per }, (_, i) => i));
    }
  }, 30_000);
});

describe("lite topics (pop from lite topics of a LITE topic)", () => {
  it("stores each lite topic apart, pops only the named ones in order, and acks through the parent topic", async () => {
    const t = tempDir("lite-pop");
    cleanups.push(t.remove);
    const b = await openTestBroker(t.dir);
    cleanups.push(() => b.close());
    await b.topics.createOrUpdate({
      topicName: "LiteParent",
      readQueueNums: 2,
      writeQueueNums: 2,
      attributes: { "message.type": "LITE" },
    });
    for (let i = 0; i < 3; i++)
      for (const lite of ["a", "b", "c"])
        await b.service.sendMessages({
          topic: "LiteParent",
          messages: [{ body: Buffer.from(`${lite}${i}`), properties: { __LITE_TOPIC: lite } }],
        });
    // Nothing went to the parent's own queues.
    expect(b.store.getMaxOffsetInQueue("LiteParent", 0) + b.store.getMaxOffsetInQueue("LiteParent", 1)).toBe(
      0,
    );
    const pop = () =>
      b.service.pop(GROUP, "LiteParent", {
        maxMessages: 32,
        invisibleTimeMs: 10_000,
        fifo: true,
        liteTopics: ["a", "b"],
      });
    const got = await pop();
    expect(got.map((m) => bodyText(m.message.body)).sort()).toEqual(["a0", "a1", "a2", "b0", "b1", "b2"]);
    expect(got.every((m) => m.topic === "LiteParent")).toBe(true);
    expect(
      got
        .filter((m) => m.message.properties.get("__LITE_TOPIC") === "a")
        .map((m) => bodyText(m.message.body)),
    ).toEqual(["a0", "a1", "a2"]);
    // In flight: nothing more from a or b.
    expect(await pop()).toEqual([]);
    const acks = await b.service.ack(
      GROUP,
      "LiteParent",
      got.map((m) => m.receiptHandle),
    );
    expect(acks.every((r) => r.ok)).toBe(true);
    // A handle is not valid for another parent topic.
    await b.topics.createOrUpdate({ topicName: "Elsewhere", readQueueNums: 1, writeQueueNums: 1 });
    expect((await b.service.ack(GROUP, "Elsewhere", [got[0]?.receiptHandle as string]))[0]?.ok).toBe(false);
    // The offset of lite topic c moves with resetLiteOffset; MAX skips what is there.
    expect(await b.service.resetLiteOffset(GROUP, "LiteParent", "c", { kind: "TAIL_N", value: 1 })).toBe(2);
    const c = await b.service.pop(GROUP, "LiteParent", {
      maxMessages: 32,
      invisibleTimeMs: 10_000,
      fifo: true,
      liteTopics: ["c"],
    });
    expect(c.map((m) => bodyText(m.message.body))).toEqual(["c2"]);
    // A lite topic message to a non-LITE topic, and a bad lite topic name, are refused.
    await expect(
      b.service.sendMessages({
        topic: "Elsewhere",
        messages: [{ body: Buffer.from("x"), properties: { __LITE_TOPIC: "a" } }],
      }),
    ).rejects.toMatchObject({ code: ErrorCode.MessagePropertyConflictWithType });
    await expect(
      b.service.sendMessages({
        topic: "LiteParent",
        messages: [{ body: Buffer.from("x"), properties: { __LITE_TOPIC: "a b" } }],
      }),
    ).rejects.toMatchObject({ code: ErrorCode.IllegalLiteTopic });
  });
});

describe("consumerOrderInfo.json", () => {
  it("a damaged file stops the start with a clear error naming it", async () => {
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    for (const garbage of [
      "{not json",
      '{"version":2,"table":{}}',
      '{"version":1,"table":{"T@G":{"x":{"done":[-1]}}}}',
    ]) {
      const t = tempDir("fifo-corrupt");
      cleanups.push(t.remove);
      const { mkdirSync } = await import("node:fs");
      mkdirSync(join(t.dir, "config"), { recursive: true });
      writeFileSync(join(t.dir, "config", "consumerOrderInfo.json"), garbage);
      await expect(openTestBroker(t.dir)).rejects.toSatisfy(
        (e: unknown) =>
          (e as RmqError).code === ErrorCode.MetadataCorrupt &&
          (e as Error).message.includes("consumerOrderInfo.json"),
      );
    }
  });
});

describe("lite topic quota", () => {
  it("a new lite topic beyond maxLmqConsumeQueueNum is refused; existing ones keep working, also after a restart", async () => {
    const t = tempDir("lite-quota");
    cleanups.push(t.remove);
    const open = () => openTestBroker(t.dir, { config: { maxLmqConsumeQueueNum: 2 } });
    let b = await open();
    await b.topics.createOrUpdate({
      topicName: "LiteQ",
      readQueueNums: 1,
      writeQueueNums: 1,
      attributes: { "message.type": "LITE" },
    });
    const send = (lite: string) =>
      b.service.sendMessages({
        topic: "LiteQ",
        messages: [{ body: Buffer.from(lite), properties: { __LITE_TOPIC: lite } }],
      });
    await send("a");
    await send("b");
    await expect(send("c")).rejects.toMatchObject({ code: ErrorCode.LiteTopicQuotaExceeded });
    await send("a");
    await b.close();
    b = await open();
    cleanups.push(() => b.close());
    await expect(send("c")).rejects.toMatchObject({ code: ErrorCode.LiteTopicQuotaExceeded });
    await send("b");
    expect(b.store.getMaxOffsetInQueue("%LMQ%$LiteQ$a", 0)).toBe(2);
  });
});
