// The local-mode backend over a real in-process broker (temp store, OS-chosen port, no NameServer):
// routes from the topic table (auto-creation on and off, message type, updates), group views,
// per-message send outcomes, the pop/ack/changeInvisibleTime round trip as plain data, assignments.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { buildBrokerConfig } from "../broker/broker-config.ts";
import { type BrokerController, createBrokerController } from "../broker/broker-controller.ts";
import { ErrorCode, type RmqError } from "../common/errors.ts";
import { silentLogger } from "../common/logger.ts";
import { MessageProperty, type MessagingBackend, type PopRequest } from "./backend.ts";
import { createLocalBackend } from "./local-backend.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function open(
  entries: Record<string, string> = {},
): Promise<{ broker: BrokerController; backend: MessagingBackend }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-backend-"));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = buildBrokerConfig(
    [
      {
        source: "test",
        entries: {
          storePathRootDir: dir,
          brokerName: "broker-l",
          brokerIP1: "127.0.0.1",
          listenPort: "0",
          defaultTopicQueueNums: "4",
          mappedFileSizeCommitLog: String(64 * 1024),
          mappedFileSizeConsumeQueue: String(64 * 20),
          messageIndexEnable: "false",
          enablePropertyFilter: "true",
          ...entries,
        },
      },
    ],
    { home: dir, env: {} },
  );
  const broker = await createBrokerController({ config, logger: silentLogger(), host: "127.0.0.1" });
  cleanups.push(() => broker.shutdown());
  return { broker, backend: createLocalBackend(broker) };
}

function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => "resolved",
    (e: RmqError) => e.code,
  );
}

function popRequest(topic: string, group: string, over: Partial<PopRequest> = {}): PopRequest {
  return {
    group,
    topic,
    brokerName: "broker-l",
    queueId: -1,
    filter: { type: "TAG", expression: "*" },
    batchSize: 32,
    invisibleTimeMs: 30_000,
    pollTimeMs: 0,
    fifo: false,
    ...over,
  };
}

const entry = (
  id: string,
  body: string,
  properties: Record<string, string> = {},
  bornHost = "10.1.2.3:4000",
) => ({
  body: Buffer.from(body),
  properties: { [MessageProperty.UNIQ_KEY]: id, ...properties },
  bornTimestamp: 1_700_000_000_000,
  bornHost,
});

describe("local backend", () => {
  it("routes from the topic table: auto-created topics, the message.type attribute, updates", async () => {
    const { broker, backend } = await open();
    const route = await backend.getTopicRoute("NewTopic");
    expect(route).toEqual({
      topic: "NewTopic",
      messageType: "NORMAL",
      brokers: [{ brokerName: "broker-l", readQueueNums: 4, writeQueueNums: 4, perm: 6 }],
    });
    expect(broker.topics.get("NewTopic")?.writeQueueNums).toBe(4);
    expect(await backend.getTopicRoute("NewTopic")).toBe(route); // cached

    await broker.topics.createOrUpdate({ topicName: "FifoTopic", attributes: { "message.type": "FIFO" } });
    expect((await backend.getTopicRoute("FifoTopic")).messageType).toBe("FIFO");
    await broker.topics.createOrUpdate({ topicName: "FifoTopic", perm: 4 });
    expect((await backend.getTopicRoute("FifoTopic")).brokers[0]?.perm).toBe(4);
    expect(await codeOf(backend.getTopicRoute("bad topic"))).toBe(ErrorCode.IllegalTopic);
  });

  it("refuses unknown topics and groups when auto-creation is off", async () => {
    const { backend } = await open({ autoCreateTopicEnable: "false", autoCreateSubscriptionGroup: "false" });
    expect(await codeOf(backend.getTopicRoute("Unknown"))).toBe(ErrorCode.TopicNotFound);
    expect(await codeOf(backend.queryAssignment({ topic: "Unknown", group: "G" }))).toBe(
      ErrorCode.TopicNotFound,
    );
    expect(await codeOf(backend.getSubscriptionGroup("UnknownGroup"))).toBe(ErrorCode.ConsumerGroupNotFound);
  });

  it("gives the proxy each group's retry policy and attempts", async () => {
    const { broker, backend } = await open();
    expect(await backend.getSubscriptionGroup("AutoGroup")).toMatchObject({
      groupName: "AutoGroup",
      consumeEnable: true,
      consumeMessageOrderly: false,
      retryMaxTimes: 16,
      retryPolicy: { type: "CUSTOMIZED" },
    });
    await broker.groups.createOrUpdate({
      groupName: "ExpGroup",
      retryMaxTimes: -1,
      groupRetryPolicy: {
        type: "EXPONENTIAL",
        exponentialRetryPolicy: { initial: 100, max: 800, multiplier: 3 },
      },
    });
    expect(await backend.getSubscriptionGroup("ExpGroup")).toMatchObject({
      retryMaxTimes: 16,
      retryPolicy: { type: "EXPONENTIAL", initialMs: 100, maxMs: 800, multiplier: 3 },
    });
  });

  it("stores a batch with one outcome per message: transaction ids for half messages, recall handles for delay messages", async () => {
    const { backend } = await open();
    await backend.getTopicRoute("SendTopic");
    const results = await backend.sendMessages({
      topic: "SendTopic",
      brokerName: "broker-l",
      queueId: 1,
      messages: [
        entry("ID-A", "a"),
        entry("ID-T", "t", { [MessageProperty.TRANSACTION_PREPARED]: "true" }),
        entry("ID-D", "d", { [MessageProperty.TIMER_DELIVER_MS]: String(Date.now() + 60_000) }),
        entry("ID-B", "b", {}, "producer-host"),
      ],
    });
    expect(results.map((r) => [r.messageId, r.error?.code, r.queueId])).toEqual([
      ["ID-A", undefined, 1],
      ["ID-T", undefined, 1],
      ["ID-D", undefined, 1],
      ["ID-B", undefined, 1],
    ]);
    expect([results[0]?.queueOffset, results[3]?.queueOffset]).toEqual([0, 1]);
    // The half message is stored aside (not in SendTopic) and answered with its transaction id.
    expect(results[1]?.transactionId).toMatch(/^[0-9A-F]{40}\./);
    expect(results[0]?.transactionId).toBeUndefined();
    // The delay message waits in the timer and is answered with its recall handle.
    expect(results[2]?.recallHandle).toBeTruthy();
    expect(results[0]?.recallHandle).toBeUndefined();
    expect(
      await codeOf(
        backend.sendMessages({
          topic: "SendTopic",
          brokerName: "other",
          queueId: 0,
          messages: [entry("X", "x")],
        }),
      ),
    ).toBe(ErrorCode.IllegalArgument);

    const popped = await backend.pop(popRequest("SendTopic", "G"), new AbortController().signal);
    expect(
      popped.map((p) => [p.properties[MessageProperty.UNIQ_KEY], Buffer.from(p.body).toString()]),
    ).toEqual([
      ["ID-A", "a"],
      ["ID-B", "b"],
    ]);
    expect(popped[0]).toMatchObject({
      topic: "SendTopic",
      brokerName: "broker-l",
      queueId: 1,
      queueOffset: 0,
      bornTimestamp: 1_700_000_000_000,
      bornHost: "10.1.2.3",
      deliveryAttempt: 1,
      invisibleTimeMs: 30_000,
    });
    // A host name is not an address the CommitLog can hold.
    expect(popped[1]?.bornHost).toBe("0.0.0.0");
    expect(popped[0]?.storeHost).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("pops, changes invisibility and acks through opaque handles", async () => {
    const { backend } = await open();
    await backend.getTopicRoute("PopTopic");
    await backend.sendMessages({
      topic: "PopTopic",
      brokerName: "broker-l",
      queueId: 0,
      messages: [entry("ID-1", "one")],
    });
    const aborted = new AbortController();
    aborted.abort();
    expect(await backend.pop(popRequest("PopTopic", "G"), aborted.signal)).toEqual([]);
    expect(
      await codeOf(
        backend.pop(popRequest("PopTopic", "G", { brokerName: "other" }), new AbortController().signal),
      ),
    ).toBe(ErrorCode.IllegalArgument);

    const [m] = await backend.pop(popRequest("PopTopic", "G"), new AbortController().signal);
    expect(m?.properties[MessageProperty.UNIQ_KEY]).toBe("ID-1");
    const handle = m?.receiptHandle ?? "";
    const changed = await backend.changeInvisibleTime({
      group: "G",
      topic: "PopTopic",
      receiptHandle: handle,
      messageId: "ID-1",
      invisibleTimeMs: 60_000,
    });
    expect(changed.receiptHandle).not.toBe(handle);
    const acks = await backend.ackMessages({
      group: "G",
      topic: "PopTopic",
      entries: [
        { receiptHandle: handle, messageId: "ID-1" },
        { receiptHandle: changed.receiptHandle, messageId: "ID-1" },
      ],
    });
    expect(acks.map((a) => a.error?.code)).toEqual([ErrorCode.InvalidReceiptHandle, undefined]);
    // Acking again answers OK; the message is gone for the group.
    expect(
      await backend.ackMessages({
        group: "G",
        topic: "PopTopic",
        entries: [{ receiptHandle: changed.receiptHandle, messageId: "ID-1" }],
      }),
    ).toEqual([{}]);
    expect(await backend.pop(popRequest("PopTopic", "G"), new AbortController().signal)).toEqual([]);
  });

  it("assigns any queue to ordinary groups and every queue to FIFO groups; refuses unknown transactions and recalls", async () => {
    const { broker, backend } = await open();
    await broker.topics.createOrUpdate({ topicName: "AssignTopic", readQueueNums: 3, writeQueueNums: 3 });
    expect(await backend.queryAssignment({ topic: "AssignTopic", group: "G" })).toEqual([
      { brokerName: "broker-l", queueId: -1, perm: 6 },
    ]);
    await broker.groups.createOrUpdate({ groupName: "FifoGroup", consumeMessageOrderly: true });
    expect(
      (await backend.queryAssignment({ topic: "AssignTopic", group: "FifoGroup" })).map((a) => a.queueId),
    ).toEqual([0, 1, 2]);
    expect(
      await codeOf(
        backend.endTransaction({
          topic: "AssignTopic",
          producerGroup: "AssignTopic",
          messageId: "M",
          transactionId: "T",
          resolution: "COMMIT",
          fromTransactionCheck: false,
        }),
      ),
    ).toBe(ErrorCode.InvalidTransactionId);
    // recallMessageEnable is off by default, as upstream.
    expect(await codeOf(backend.recallMessage({ topic: "AssignTopic", recallHandle: "R" }))).toBe(
      ErrorCode.Forbidden,
    );
  });
});
