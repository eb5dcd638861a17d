// End to end with the official Node SDK against a real `rmq local` child process: the message types
// beyond NORMAL — FIFO (per message group order, a poison message blocking only its group and
// ending in the DLQ) and the topic message-type check.
//
// Topics and groups are created before start through `{store}/config/topics.json` and
// `subscriptionGroup.json` (upstream's files).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConsumeResult,
  ConsumeResultSuspend,
  LitePushConsumerBuilder,
  type MessageView,
  OffsetOption,
  Producer,
  PushConsumer,
  SimpleConsumer,
} from "rocketmq-client-nodejs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, MessageType } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { createRawClient, DEFAULT_TEST_METADATA } from "../proxy/test-support/grpc-client.ts";
import {
  bodyText,
  E2E_BROKER_CONF,
  type LocalProcess,
  quietSdkLogger,
  receiveUntil,
  SdkClients,
  startRmqLocal,
  stopLocalAndClients,
  waitFor,
  writeProperties,
  writeStoreConfig,
  writeTypedTopics,
} from "./fixtures/e2e-local.ts";

const FIFO_TOPIC = "fifo-topic";
const NORMAL_TOPIC = "normal-topic";
const PRIORITY_TOPIC = "priority-topic";
const LITE_TOPIC = "lite-parent";
const FIFO_GROUP = "g-fifo";
const FIFO_DLQ_GROUP = "g-fifo-dlq";

const sdkErrors: unknown[][] = [];
const logger = quietSdkLogger(sdkErrors);
let dir: string;
let rmq: LocalProcess;
const clients = new SdkClients();

function fifoGroup(name: string, retryMaxTimes: number, backoffMs: number) {
  return {
    groupName: name,
    consumeMessageOrderly: true,
    retryMaxTimes,
    groupRetryPolicy: {
      type: "EXPONENTIAL",
      exponentialRetryPolicy: { initial: backoffMs, max: backoffMs, multiplier: 1 },
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "e2e-types-"));
  const storeDir = join(dir, "store");
  const dataVersion = { stateVersion: 0, timestamp: Date.now(), counter: 1 };
  writeTypedTopics(storeDir, [
    { name: FIFO_TOPIC, queues: 4, type: "FIFO" },
    { name: NORMAL_TOPIC, queues: 2, type: "NORMAL" },
    { name: PRIORITY_TOPIC, queues: 8, type: "PRIORITY" },
    { name: LITE_TOPIC, queues: 4, type: "LITE" },
  ]);
  writeStoreConfig(storeDir, "subscriptionGroup.json", {
    subscriptionGroupTable: {
      [FIFO_GROUP]: fifoGroup(FIFO_GROUP, 16, 100),
      [FIFO_DLQ_GROUP]: fifoGroup(FIFO_DLQ_GROUP, 2, 100),
      // Lite consumers of an orderly group consume each lite topic one message at a time (LiteFifoConsumeService).
      "g-lite": fifoGroup("g-lite", 16, 1000),
    },
    forbiddenTable: {},
    dataVersion,
  });
  const confFile = join(dir, "broker.conf");
  writeProperties(confFile, E2E_BROKER_CONF);
  rmq = await startRmqLocal({ storeDir, confFile });
});

afterEach(async () => {
  await clients.stopAll();
});

afterAll(async () => {
  const code = await stopLocalAndClients(clients, rmq, dir);
  if (code !== undefined) expect(code).toBe(0);
});

function producer(topics: string[]): Promise<Producer> {
  return clients.start(new Producer({ endpoints: rmq.endpoints, namespace: "", topics, logger }));
}

function fifoPushConsumer(
  group: string,
  consume: (m: MessageView) => ConsumeResult | Promise<ConsumeResult>,
): Promise<PushConsumer> {
  return clients.start(
    new PushConsumer({
      endpoints: rmq.endpoints,
      namespace: "",
      consumerGroup: group,
      subscriptions: new Map([[FIFO_TOPIC, "*"]]),
      messageListener: { consume },
      // Messages of different groups in one batch are consumed in parallel (the SDK's switch).
      enableFifoConsumeAccelerator: true,
      logger,
    }),
  );
}

/** Sends `perGroup` messages for each group, each group's messages one after another (groups in parallel). */
async function sendFifo(
  p: Producer,
  groups: readonly string[],
  perGroup: number,
  tag: string,
): Promise<void> {
  await Promise.all(
    groups.map(async (g) => {
      for (let i = 0; i < perGroup; i++)
        await p.send({ topic: FIFO_TOPIC, tag, messageGroup: g, body: Buffer.from(`${g}:${i}`) });
    }),
  );
}

describe("FIFO messages", () => {
  it("20 message groups x 50 messages through a PushConsumer: every group in send order, all arrive once", async () => {
    const groups = Array.from({ length: 20 }, (_, k) => `order-${k}`);
    const seen = new Map<string, number[]>();
    let total = 0;
    await fifoPushConsumer(FIFO_GROUP, (m) => {
      const [g, i] = bodyText(m).split(":");
      if (m.tag === "t1") {
        const list = seen.get(g as string) ?? [];
        list.push(Number(i));
        seen.set(g as string, list);
        total++;
      }
      return ConsumeResult.SUCCESS;
    });
    const p = await producer([FIFO_TOPIC]);
    await sendFifo(p, groups, 50, "t1");
    await waitFor(() => total >= 1000, 60_000, "1000 FIFO messages");
    await new Promise((r) => setTimeout(r, 500));
    expect(total).toBe(1000);
    for (const g of groups) expect(seen.get(g)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  }, 90_000);

  it("a message that always fails blocks only its own group, then reaches the DLQ and its group moves on", async () => {
    const events: Array<{ body: string; attempt: number; at: number }> = [];
    await fifoPushConsumer(FIFO_DLQ_GROUP, async (m) => {
      if (m.tag !== "t2") return ConsumeResult.SUCCESS;
      events.push({ body: bodyText(m), attempt: m.deliveryAttempt ?? 0, at: Date.now() });
      if (bodyText(m) !== "poison:0") return ConsumeResult.SUCCESS;
      // Each failing attempt takes a while (the SDK reads the backoff in whole seconds, so it
      // would retry a sub-second backoff at once), so the other groups have time to go past it.
      await new Promise((r) => setTimeout(r, 600));
      return ConsumeResult.FAILURE;
    });
    const p = await producer([FIFO_TOPIC]);
    await sendFifo(p, ["poison"], 3, "t2");
    await sendFifo(p, ["healthy-a", "healthy-b"], 5, "t2");
    await waitFor(
      () => events.filter((e) => e.body !== "poison:0").length >= 12,
      30_000,
      "all other messages",
    );
    const poisonAttempts = events.filter((e) => e.body === "poison:0");
    expect(poisonAttempts.map((e) => e.attempt)).toEqual([1, 2, 3]);
    const lastPoison = (poisonAttempts[2] as { at: number }).at;
    // Its own group waited for it ...
    const poison1 = events.find((e) => e.body === "poison:1") as { at: number };
    expect(poison1.at).toBeGreaterThanOrEqual(lastPoison);
    expect(events.filter((e) => e.body.startsWith("poison:")).map((e) => e.body)).toEqual([
      "poison:0",
      "poison:0",
      "poison:0",
      "poison:1",
      "poison:2",
    ]);
    // ... the other groups did not: all of them were consumed before the poison message's last attempt.
    const healthy = events.filter((e) => e.body.startsWith("healthy-"));
    expect(healthy).toHaveLength(10);
    expect(healthy.every((e) => e.at < lastPoison)).toBe(true);
    // The poison message is readable from the group's DLQ.
    const dlqReader = await clients.start(
      new SimpleConsumer({
        endpoints: rmq.endpoints,
        namespace: "",
        consumerGroup: "g-fifo-dlq-reader",
        subscriptions: new Map([[`%DLQ%${FIFO_DLQ_GROUP}`, "*"]]),
        awaitDuration: 1000,
        logger,
      }),
    );
    const dead = await receiveUntil(dlqReader, (r) => r.length >= 1, {
      timeoutMs: 20_000,
      invisibleMs: 10_000,
    });
    expect(dead.map(bodyText)).toEqual(["poison:0"]);
  }, 60_000);
});

describe("priority messages", () => {
  it("higher priorities are received first; priorities above the queue count share the top queue", async () => {
    const p = await producer([PRIORITY_TOPIC]);
    // Sent lowest first, so that arrival order alone would give the opposite answer.
    for (const priority of [0, 1, 2, 3, 4, 5, 6, 7, 9])
      await p.send({ topic: PRIORITY_TOPIC, priority, body: Buffer.from(`prio-${priority}`) });
    // A plain message on a PRIORITY topic is accepted too (upstream) and has no priority.
    await p.send({ topic: PRIORITY_TOPIC, body: Buffer.from("plain") });
    const c = await clients.start(
      new SimpleConsumer({
        endpoints: rmq.endpoints,
        namespace: "",
        consumerGroup: "g-priority",
        subscriptions: new Map([[PRIORITY_TOPIC, "*"]]),
        awaitDuration: 1000,
        logger,
      }),
    );
    const order: string[] = [];
    const deadline = Date.now() + 20_000;
    while (order.length < 10 && Date.now() < deadline) {
      for (const m of await c.receive(1, 30_000)) {
        order.push(bodyText(m));
        if (bodyText(m).startsWith("prio-")) expect(m.priority).toBe(Number(bodyText(m).slice(5)));
        await c.ack(m);
      }
    }
    const priorities = order.filter((b) => b !== "plain");
    // 7 and 9 share queue 7 (in send order); then queue by queue downwards.
    expect(priorities).toEqual([
      "prio-7",
      "prio-9",
      "prio-6",
      "prio-5",
      "prio-4",
      "prio-3",
      "prio-2",
      "prio-1",
      "prio-0",
    ]);
    expect(order).toContain("plain");
  }, 40_000);
});

describe("lite topics", () => {
  it("a LitePushConsumer gets exactly its lite topics, each in order; unsubscribe, offset options and suspend work", async () => {
    const events: Array<{ lite: string; body: string; attempt: number; topic: string }> = [];
    let suspendedOnce = false;
    const lite = await new LitePushConsumerBuilder()
      .setClientConfiguration({ endpoints: rmq.endpoints, namespace: "", logger })
      .setConsumerGroup("g-lite")
      .bindTopic(LITE_TOPIC)
      .setMessageListener({
        consume: (m: MessageView) => {
          events.push({
            lite: m.liteTopic ?? "",
            body: bodyText(m),
            attempt: m.deliveryAttempt ?? 0,
            topic: m.topic,
          });
          // The first delivery of chat-2:0 is suspended: it comes back with the same attempt.
          if (bodyText(m) === "chat-2:0" && !suspendedOnce) {
            suspendedOnce = true;
            return ConsumeResultSuspend.of(300);
          }
          return ConsumeResult.SUCCESS;
        },
      })
      .build();
    try {
      await lite.subscribeLite("chat-1");
      await lite.subscribeLite("chat-2");
      const p = await producer([LITE_TOPIC]);
      for (let i = 0; i < 5; i++)
        for (const t of ["chat-1", "chat-2", "chat-3"])
          await p.send({ topic: LITE_TOPIC, liteTopic: t, body: Buffer.from(`${t}:${i}`) });
      const of = (t: string) => events.filter((e) => e.lite === t).map((e) => e.body);
      await waitFor(() => of("chat-1").length >= 5 && of("chat-2").length >= 6, 20_000, "chat-1 and chat-2");
      expect(of("chat-1")).toEqual(["chat-1:0", "chat-1:1", "chat-1:2", "chat-1:3", "chat-1:4"]);
      expect(of("chat-2")).toEqual(["chat-2:0", "chat-2:0", "chat-2:1", "chat-2:2", "chat-2:3", "chat-2:4"]);
      expect(events.filter((e) => e.body === "chat-2:0").map((e) => e.attempt)).toEqual([1, 1]);
      expect(events.every((e) => e.topic === LITE_TOPIC)).toBe(true);
      expect(of("chat-3")).toEqual([]);

      // Unsubscribed: chat-1 stops; subscribed from the first offset: chat-3's earlier messages come.
      await lite.unsubscribeLite("chat-1");
      await lite.subscribeLite("chat-3", OffsetOption.MIN_OFFSET);
      await p.send({ topic: LITE_TOPIC, liteTopic: "chat-1", body: Buffer.from("chat-1:after") });
      await p.send({ topic: LITE_TOPIC, liteTopic: "chat-3", body: Buffer.from("chat-3:5") });
      await waitFor(() => of("chat-3").length >= 6, 20_000, "chat-3 from its first message");
      await new Promise((r) => setTimeout(r, 500));
      expect(of("chat-3")).toEqual(["chat-3:0", "chat-3:1", "chat-3:2", "chat-3:3", "chat-3:4", "chat-3:5"]);
      expect(of("chat-1")).not.toContain("chat-1:after");
    } finally {
      await lite.close();
    }
  }, 60_000);

  it("an illegal lite topic name is refused with ILLEGAL_LITE_TOPIC", async () => {
    const raw = createRawClient(rmq.endpoints, { metadata: { ...DEFAULT_TEST_METADATA } });
    try {
      const res = await raw.unary("sendMessage", {
        messages: [
          {
            topic: { name: LITE_TOPIC },
            body: Buffer.from("x"),
            systemProperties: {
              messageId: "E2E-LITE-BAD",
              messageType: MessageType.LITE,
              liteTopic: "bad name!",
            },
          },
        ],
      });
      expect(res.status?.code).toBe(Code.ILLEGAL_LITE_TOPIC);
      const sync = await raw.unary("syncLiteSubscription", {
        action: 0,
        topic: { name: LITE_TOPIC },
        group: { name: "g-lite" },
        liteTopicSet: ["no spaces"],
      });
      expect(sync.status?.code).toBe(Code.ILLEGAL_LITE_TOPIC);
    } finally {
      raw.close();
    }
  });
});

describe("topic message types", () => {
  it("a message whose type differs from its topic's is refused: by the SDK from the route, by the server with MESSAGE_PROPERTY_CONFLICT_WITH_TYPE", async () => {
    const p = await producer([FIFO_TOPIC, NORMAL_TOPIC]);
    // The SDK checks the route's accepted types itself (validate_message_type in the settings).
    await expect(p.send({ topic: NORMAL_TOPIC, messageGroup: "g", body: Buffer.from("x") })).rejects.toThrow(
      /message type not match/,
    );
    await expect(p.send({ topic: FIFO_TOPIC, body: Buffer.from("x") })).rejects.toThrow(
      /message type not match/,
    );
    // A client that does not check gets the upstream status code from the server.
    const raw = createRawClient(rmq.endpoints, { metadata: { ...DEFAULT_TEST_METADATA } });
    try {
      const send = (topic: string, messageType: MessageType, messageGroup?: string) =>
        raw.unary("sendMessage", {
          messages: [
            {
              topic: { name: topic },
              body: Buffer.from("x"),
              systemProperties: { messageId: `E2E-TYPE-${topic}`, messageType, messageGroup },
            },
          ],
        });
      expect((await send(NORMAL_TOPIC, MessageType.FIFO, "g")).status?.code).toBe(
        Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
      );
      expect((await send(FIFO_TOPIC, MessageType.NORMAL)).status?.code).toBe(
        Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
      );
    } finally {
      raw.close();
    }
  });
});
