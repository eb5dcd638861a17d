// End-to-end through the official RocketMQ Node SDK (rocketmq-client-nodejs, Producer and
// SimpleConsumer) against the real proxy server and the in-memory test backend: start-up (QueryRoute,
// Telemetry Settings handshake), send, receive, ack, and shutdown (NotifyClientTermination) finish
// without hangs. The SDK logs to ~/logs/rocketmq unless given a logger, so it gets a silent one.

import { Producer, SimpleConsumer } from "rocketmq-client-nodejs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TransactionResolution } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { MessageProperty } from "./backend.ts";
import { type ProxyFixture, startProxyFixture } from "./test-support/proxy-fixture.ts";

const sdkErrors: unknown[][] = [];
const quietLogger = {
  info() {},
  warn() {},
  debug() {},
  error(...args: unknown[]) {
    sdkErrors.push(args);
  },
};

describe("official Node SDK against the proxy", () => {
  let fx: ProxyFixture;
  beforeAll(async () => {
    fx = await startProxyFixture({ limits: { minLongPollingMs: 500, maxLongPollingMs: 1000 } });
    fx.backend.createTopic("SdkTopic");
    fx.backend.createTopic("SdkTxTopic", { messageType: "TRANSACTION" });
  });
  afterAll(async () => {
    await fx.close();
  });

  it("starts, sends, receives, acks and shuts down", async () => {
    const endpoints = fx.address;
    const producer = new Producer({ endpoints, namespace: "", topics: ["SdkTopic"], logger: quietLogger });
    await producer.startup();
    const receipt = await producer.send({
      topic: "SdkTopic",
      tag: "TagA",
      keys: ["order-1"],
      properties: new Map([["color", "red"]]),
      body: Buffer.from("hello from the SDK"),
    });
    expect(receipt.messageId).toMatch(/^[0-9A-F]{34}$/);

    const consumer = new SimpleConsumer({
      endpoints,
      namespace: "",
      consumerGroup: "SdkGroup",
      subscriptions: new Map([["SdkTopic", "TagA"]]),
      awaitDuration: 2000,
      logger: quietLogger,
    });
    await consumer.startup();
    const messages = await consumer.receive(10, 20_000);
    expect(messages).toHaveLength(1);
    const [m] = messages;
    expect(m?.messageId).toBe(receipt.messageId);
    expect(m?.tag).toBe("TagA");
    expect(m?.keys).toEqual(["order-1"]);
    expect(m?.properties.get("color")).toBe("red");
    expect(m?.body.toString()).toBe("hello from the SDK");
    expect(m?.corrupted).not.toBe(true);
    expect(m?.deliveryAttempt).toBe(1);
    if (m !== undefined) await consumer.ack(m);

    // acked: a second receive is held for the await duration and comes back empty
    expect(await consumer.receive(10, 20_000)).toEqual([]);

    expect(
      fx.server.clients
        .sessions()
        .map((s) => s.clientType)
        .sort(),
    ).toEqual([1, 3]);
    // Both sessions were reported to the backend (consumerConnection / producerConnection) with what
    // their Settings said, and their ends too.
    const reported = fx.backend.clientHeartbeats;
    expect(reported.find((h) => h.consumerGroup === "SdkGroup")).toMatchObject({
      connection: { language: "NODE_JS" },
      consumeType: "CONSUME_ACTIVELY",
      subscriptions: [{ topic: "SdkTopic", expression: "TagA", expressionType: "TAG" }],
    });
    expect(reported.find((h) => h.producerGroups?.includes("SdkTopic"))?.connection.language).toBe("NODE_JS");
    const ids = new Set(reported.map((h) => h.connection.clientId));
    expect(ids.size).toBe(2);
    await producer.shutdown();
    await consumer.shutdown();
    expect(fx.server.clients.sessions()).toEqual([]);
    expect(new Set(fx.backend.unregisteredClients)).toEqual(ids);
    expect(sdkErrors).toEqual([]);
  });

  it("relays an orphan-transaction check to the producer, whose checker answers with EndTransaction", async () => {
    const checked: string[] = [];
    const producer = new Producer({
      endpoints: fx.address,
      namespace: "",
      topics: ["SdkTxTopic"],
      logger: quietLogger,
      checker: {
        async check(view) {
          checked.push(view.messageId);
          return TransactionResolution.COMMIT as never;
        },
      },
    });
    await producer.startup();
    const transaction = producer.beginTransaction();
    const receipt = await producer.send({ topic: "SdkTxTopic", body: Buffer.from("half") }, transaction);
    const stored = fx.backend.sendCalls.at(-1)?.messages[0];
    expect(stored?.properties[MessageProperty.TRANSACTION_PREPARED]).toBe("true");

    // the producer neither commits nor rolls back: the broker side asks it
    const relayed = fx.server.recoverOrphanedTransaction({
      topic: "SdkTxTopic",
      transactionId: receipt.transactionId,
      message: {
        topic: "SdkTxTopic",
        brokerName: "broker-a",
        queueId: 0,
        queueOffset: 0,
        body: stored?.body ?? new Uint8Array(),
        properties: stored?.properties ?? {},
        bornTimestamp: Date.now(),
        bornHost: "127.0.0.1",
        storeTimestamp: Date.now(),
        storeHost: "127.0.0.1:10911",
        receiptHandle: "",
        deliveryAttempt: 1,
        invisibleTimeMs: 0,
      },
    });
    expect(relayed).toBe(true);
    const deadline = Date.now() + 5000;
    while (!fx.backend.endTransactionCalls.some((c) => c.fromTransactionCheck) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(checked).toEqual([receipt.messageId]);
    expect(fx.backend.endTransactionCalls.at(-1)).toMatchObject({
      topic: "SdkTxTopic",
      messageId: receipt.messageId,
      transactionId: receipt.transactionId,
      resolution: "COMMIT",
      fromTransactionCheck: true,
    });
    await producer.shutdown();
    expect(sdkErrors).toEqual([]);
  });
});
