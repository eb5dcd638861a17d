import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../common/errors.ts";
import { tempDir } from "../test/fixtures/store-fixtures.ts";
import { popRetryTopicOf } from "./pop/pop-topics.ts";
import {
  bodyText,
  createTopic,
  openTestBroker,
  type TestBroker,
  TestClock,
} from "./pop/test-broker.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(o: Parameters<typeof openTestBroker>[1] = {}): Promise<TestBroker> {
  const t = tempDir("msgsvc");
  cleanups.push(t.remove);
  const b = await openTestBroker(t.dir, o);
  let closed = false;
  cleanups.push(async () => {
    if (!closed) await b.close();
  });
  const close = b.close;
  b.close = async () => {
    closed = true;
    await close();
  };
  return b;
}

async function expectRejects(p: Promise<unknown>, code: string): Promise<void> {
  await expect(p).rejects.toSatisfy((e: unknown) => (e as RmqError).code === code);
}

describe("send path", () => {
  it("auto-creates an unknown topic with defaultTopicQueueNums queues and spreads sends over them", async () => {
    const b = await open();
    const results = [];
    for (let i = 0; i < 8; i++)
      results.push(
        ...(await b.service.sendMessages({ topic: "AutoTopic", messages: [{ body: Buffer.from(`x${i}`) }] })),
      );
    const tc = b.topics.get("AutoTopic");
    expect(tc?.writeQueueNums).toBe(4);
    expect(tc?.readQueueNums).toBe(4);
    expect(results.map((r) => r.queueId)).toEqual([0, 1, 2, 3, 0, 1, 2, 3]);
    expect(results.map((r) => r.queueOffset)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it("refuses an unknown topic when autoCreateTopicEnable is off, and bad requests", async () => {
    const b = await open({ autoCreateTopicEnable: false });
    await expectRejects(
      b.service.sendMessages({ topic: "Nope", messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.TopicNotFound,
    );
    expect(b.topics.get("Nope")).toBeUndefined();
    await createTopic(b, "T", 2);
    await expectRejects(
      b.service.sendMessages({ topic: "T", queueId: 2, messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.IllegalArgument,
    );
    await expectRejects(
      b.service.sendMessages({ topic: "T", messages: [{ body: Buffer.alloc(0) }] }),
      ErrorCode.MessageBodyEmpty,
    );
    await expectRejects(
      b.service.sendMessages({ topic: "bad topic", messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.IllegalTopic,
    );
    await expectRejects(
      b.service.sendMessages({ topic: "SCHEDULE_TOPIC_XXXX", messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.IllegalTopic,
    );
    await b.topics.createOrUpdate({ topicName: "ReadOnly", perm: 4 });
    await expectRejects(
      b.service.sendMessages({ topic: "ReadOnly", messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.Forbidden,
    );
  });

  it("stores a batch on one queue with TAGS, KEYS, UNIQ_KEY and user properties", async () => {
    const b = await open();
    await createTopic(b, "T", 2);
    const res = await b.service.sendMessages({
      topic: "T",
      queueId: 1,
      messages: [
        {
          body: Buffer.from("a"),
          tag: "TagA",
          keys: ["k1", "k2"],
          properties: { color: "red" },
          bornHost: "10.0.0.9:4000",
          bornTimestamp: 42,
        },
        { body: Buffer.from("b"), properties: { UNIQ_KEY: "CLIENT-ID-1" } },
      ],
    });
    expect(res.map((r) => [r.queueId, r.queueOffset])).toEqual([
      [1, 0],
      [1, 1],
    ]);
    expect(res[1]?.messageId).toBe("CLIENT-ID-1");
    expect(res[0]?.messageId).toMatch(/^[0-9A-F]{20,}$/);
    const got = await b.store.getMessage("T", 1, 0, 2);
    const [a, c] = got.messages;
    expect(a?.properties.get("TAGS")).toBe("TagA");
    expect(a?.properties.get("KEYS")).toBe("k1 k2");
    expect(a?.properties.get("color")).toBe("red");
    expect(a?.properties.get("UNIQ_KEY")).toBe(res[0]?.messageId);
    expect(a?.bornHost).toEqual({ address: "10.0.0.9", port: 4000 });
    expect(a?.bornTimestamp).toBe(42);
    expect(a?.msgId).toBe(res[0]?.offsetMsgId);
    expect(c?.properties.get("UNIQ_KEY")).toBe("CLIENT-ID-1");
  });
});

describe("groups", () => {
  it("refuses an unknown group when autoCreateSubscriptionGroup is off, creates it when on", async () => {
    const off = await open({ config: { autoCreateSubscriptionGroup: false } });
    await createTopic(off, "T", 1);
    await expectRejects(
      off.service.pop("GID_new", "T", { maxMessages: 1, invisibleTimeMs: 1000 }),
      ErrorCode.ConsumerGroupNotFound,
    );
    expect(off.groups.get("GID_new")).toBeUndefined();
    const on = await open();
    await createTopic(on, "T", 1);
    expect(await on.service.pop("GID_new", "T", { maxMessages: 1, invisibleTimeMs: 1000 })).toEqual([]);
    expect(on.groups.get("GID_new")?.retryMaxTimes).toBe(16);
    await on.groups.createOrUpdate({ groupName: "GID_off", consumeEnable: false });
    await expectRejects(
      on.service.pop("GID_off", "T", { maxMessages: 1, invisibleTimeMs: 1000 }),
      ErrorCode.Forbidden,
    );
  });
});

describe("consumer progress and shutdown", () => {
  it("reports broker offset, consumer offset, lag and in-flight per queue, retry topic included", async () => {
    const clock = new TestClock();
    const b = await open({ clock: clock.read, random: () => 0.5 });
    await createTopic(b, "T", 2);
    for (let i = 0; i < 6; i++)
      await b.service.sendMessages({ topic: "T", messages: [{ body: Buffer.from(`m${i}`) }] });
    const got = await b.service.pop("G", "T", { maxMessages: 4, invisibleTimeMs: 10_000, queueId: 0 });
    expect(got).toHaveLength(3);
    await b.service.ack("G", "T", [got[0]?.receiptHandle as string]);
    let p = b.service.consumerProgress("G");
    expect(p.queues).toEqual([
      { topic: "T", queueId: 0, brokerOffset: 3, consumerOffset: 3, lag: 0, inflight: 2 },
      { topic: "T", queueId: 1, brokerOffset: 3, consumerOffset: -1, lag: 3, inflight: 0 },
    ]);
    expect(p.totalLag).toBe(3);
    expect(p.totalInflight).toBe(2);
    clock.advance(10_000);
    expect(await b.service.reviveDue()).toBe(2);
    p = b.service.consumerProgress("G", "T");
    const retry = p.queues.filter((q) => q.topic === popRetryTopicOf("G", "T"));
    expect(retry).toEqual([
      {
        topic: popRetryTopicOf("G", "T"),
        queueId: 0,
        brokerOffset: 2,
        consumerOffset: -1,
        lag: 2,
        inflight: 0,
      },
    ]);
    expect(p.totalInflight).toBe(0);
    const back = await b.service.pop("G", "T", { maxMessages: 4, invisibleTimeMs: 10_000, queueId: 0 });
    expect(back.map((m) => bodyText(m.message.body)).sort()).toEqual(
      got
        .slice(1)
        .map((m) => bodyText(m.message.body))
        .sort(),
    );
    expect(b.service.consumerProgress("G", "T").queues.find((q) => q.topic !== "T")).toMatchObject({
      consumerOffset: 2,
      lag: 0,
      inflight: 2,
    });
  });

  it("shutdown ends held polls, persists consumer offsets, and refuses later calls", async () => {
    const b = await open();
    await createTopic(b, "T", 1);
    await b.service.sendMessages({ topic: "T", messages: [{ body: Buffer.from("x") }] });
    await b.service.pop("G", "T", { maxMessages: 1, invisibleTimeMs: 10_000 });
    const held = b.service.pop("G", "T", { maxMessages: 1, invisibleTimeMs: 10_000, pollTimeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 50));
    await b.service.shutdown();
    expect(await held).toEqual([]);
    const saved = JSON.parse(readFileSync(join(b.dir, "config", "consumerOffset.json"), "utf8")) as {
      offsetTable: Record<string, Record<string, number>>;
    };
    expect(saved.offsetTable["T@G"]).toEqual({ "0": 1 });
    await expectRejects(
      b.service.pop("G", "T", { maxMessages: 1, invisibleTimeMs: 10_000 }),
      ErrorCode.StoreShutdown,
    );
    await expectRejects(
      b.service.sendMessages({ topic: "T", messages: [{ body: Buffer.from("x") }] }),
      ErrorCode.StoreShutdown,
    );
  });
});
