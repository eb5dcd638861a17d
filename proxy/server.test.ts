// Protocol tests of the gRPC proxy with a raw grpc-js client (no SDK) against the real server on
// 127.0.0.1, over plaintext and TLS on the same port, backed by the in-memory test backend.

import { connect as http2Connect } from "node:http2";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../common/logger.ts";
import { Code, FilterType, MessageType, Permission } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { MessageProperty } from "./backend.ts";
import { createProxyServer } from "./server.ts";
import { createRawClient, DEFAULT_TEST_METADATA, type RawClient } from "./test-support/grpc-client.ts";
import { createMemoryBackend, MEMORY_BROKER_NAME } from "./test-support/memory-backend.ts";
import { type ProxyFixture, startProxyFixture } from "./test-support/proxy-fixture.ts";

const SMALL_BODY_LIMIT = 16 * 1024;
const INBOUND_LIMIT = 64 * 1024;

function message(
  topic: string,
  body: string | Uint8Array,
  sp: Record<string, unknown> = {},
  userProperties: Record<string, string> = {},
) {
  return {
    topic: { name: topic },
    body: typeof body === "string" ? Buffer.from(body) : body,
    userProperties,
    systemProperties: {
      messageId: `ID-${Math.random().toString(36).slice(2)}`,
      messageType: MessageType.NORMAL,
      ...sp,
    },
  };
}

function receiveRequest(topic: string, group: string, extra: Record<string, unknown> = {}) {
  return {
    group: { name: group },
    messageQueue: { topic: { name: topic }, id: 0, broker: { name: MEMORY_BROKER_NAME } },
    filterExpression: { type: FilterType.TAG, expression: "*" },
    batchSize: 16,
    invisibleDuration: { seconds: 30n },
    longPollingTimeout: { seconds: 5n },
    ...extra,
  };
}

describe("gRPC proxy protocol", () => {
  let fx: ProxyFixture;

  beforeAll(async () => {
    fx = await startProxyFixture({
      limits: {
        maxBodyBytes: SMALL_BODY_LIMIT,
        maxInboundMessageBytes: INBOUND_LIMIT,
        // keep held polls short so the tests stay quick
        minLongPollingMs: 200,
        maxLongPollingMs: 600,
        settingsResendDelayMs: 300,
      },
    });
    fx.backend.createTopic("TopicA");
    fx.backend.createTopic("FifoTopic", { messageType: "FIFO" });
    fx.backend.createTopic("TxTopic", { messageType: "TRANSACTION" });
    fx.backend.createTopic("DelayTopic", { messageType: "DELAY" });
  });

  afterAll(async () => {
    await fx.close();
  });

  describe.each([
    ["plaintext", false],
    ["TLS", true],
  ])("over %s", (_name, tls) => {
    let c: RawClient;
    let anonymous: RawClient;
    beforeAll(() => {
      c = fx.client(tls);
      anonymous = fx.client(tls, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "" });
    });

    it("QueryRoute numbers queues from 0 on broker id 0 with one endpoint: the address dialled", async () => {
      const r = await c.unary("queryRoute", {
        topic: { name: "TopicA" },
        endpoints: { addresses: [{ host: "127.0.0.1", port: 1 }] },
      });
      expect(r.status?.code).toBe(Code.OK);
      expect(r.messageQueues.map((q) => q.id)).toEqual([0, 1, 2, 3]);
      for (const q of r.messageQueues) {
        expect(q.permission).toBe(Permission.READ_WRITE);
        expect(q.broker?.id).toBe(0);
        expect(q.broker?.name).toBe(MEMORY_BROKER_NAME);
        expect(q.broker?.endpoints?.addresses).toEqual([
          expect.objectContaining({ host: "127.0.0.1", port: fx.server.port }),
        ]);
        expect(q.acceptMessageTypes).toEqual([MessageType.NORMAL]);
      }
    });

    it("answers CLIENT_ID_REQUIRED in the body when x-mq-client-id is missing", async () => {
      const r = await anonymous.unary("queryRoute", { topic: { name: "TopicA" } });
      expect(r.status?.code).toBe(Code.CLIENT_ID_REQUIRED);
      const s = await anonymous.unary("sendMessage", { messages: [message("TopicA", "x")] });
      expect(s.status?.code).toBe(Code.CLIENT_ID_REQUIRED);
      const stream = await anonymous.serverStream("receiveMessage", receiveRequest("TopicA", "G1"), {
        deadlineMs: 5000,
      });
      expect(stream.map((x) => x.content.case)).toEqual(["status", "deliveryTimestamp"]);
      expect(stream[0]?.content.value).toMatchObject({ code: Code.CLIENT_ID_REQUIRED });
    });

    it("answers ILLEGAL_TOPIC for bad and system topic names, TOPIC_NOT_FOUND for unknown ones", async () => {
      expect((await c.unary("queryRoute", { topic: { name: "bad topic!" } })).status?.code).toBe(
        Code.ILLEGAL_TOPIC,
      );
      expect((await c.unary("queryRoute", { topic: { name: "rmq_sys_anything" } })).status?.code).toBe(
        Code.ILLEGAL_TOPIC,
      );
      expect((await c.unary("queryRoute", { topic: { name: "NoSuchTopic" } })).status?.code).toBe(
        Code.TOPIC_NOT_FOUND,
      );
      const s = await c.unary("sendMessage", { messages: [message("NoSuchTopic", "x")] });
      expect(s.status?.code).toBe(Code.TOPIC_NOT_FOUND);
    });

    it("sends one entry per message with the client's message id, storing the system properties", async () => {
      const m = message(
        "TopicA",
        "payload",
        { tag: "TagA", keys: ["k1", "k2"], messageId: "MSG-OK-1" },
        { color: "red" },
      );
      const r = await c.unary("sendMessage", { messages: [m] });
      expect(r.status?.code).toBe(Code.OK);
      expect(r.entries).toHaveLength(1);
      expect(r.entries[0]).toMatchObject({ messageId: "MSG-OK-1", status: { code: Code.OK } });
      const stored = fx.backend.sendCalls.at(-1)?.messages[0];
      expect(stored?.properties).toMatchObject({
        [MessageProperty.UNIQ_KEY]: "MSG-OK-1",
        [MessageProperty.TAGS]: "TagA",
        [MessageProperty.KEYS]: "k1 k2",
        color: "red",
      });
      expect(Buffer.from(stored?.body ?? []).toString()).toBe("payload");
    });

    it("rejects bad messages with the upstream codes", async () => {
      const cases: [ReturnType<typeof message>, Code][] = [
        [message("TopicA", ""), Code.MESSAGE_BODY_EMPTY],
        [message("TopicA", "x", { messageId: "  " }), Code.ILLEGAL_MESSAGE_ID],
        [message("TopicA", Buffer.alloc(SMALL_BODY_LIMIT + 1)), Code.MESSAGE_BODY_TOO_LARGE],
        [message("TopicA", "x", { tag: "a|b" }), Code.ILLEGAL_MESSAGE_TAG],
        [message("TopicA", "x", { keys: ["bad\u0001key"] }), Code.ILLEGAL_MESSAGE_KEY],
        [
          message("FifoTopic", "x", { messageGroup: "g".repeat(64), messageType: MessageType.FIFO }),
          Code.ILLEGAL_MESSAGE_GROUP,
        ],
        [message("TopicA", "x", {}, { UNIQ_KEY: "forged" }), Code.ILLEGAL_MESSAGE_PROPERTY_KEY],
        [message("TopicA", "x", {}, { __SHARDINGKEY: "forged" }), Code.ILLEGAL_MESSAGE_PROPERTY_KEY],
        [
          message("DelayTopic", "x", {
            messageType: MessageType.DELAY,
            deliveryTimestamp: timestampFromMs(Date.now() + 4 * 24 * 3600 * 1000),
          }),
          Code.ILLEGAL_DELIVERY_TIME,
        ],
        [
          message("TopicA", "x", { messageGroup: "g1", messageType: MessageType.FIFO }),
          Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
        ],
      ];
      for (const [m, code] of cases) {
        const r = await c.unary("sendMessage", { messages: [m] });
        expect({ code: r.status?.code, entries: r.entries.length }).toEqual({ code, entries: 1 });
        expect(r.entries[0]?.status?.code).toBe(code);
        expect(r.entries[0]?.messageId).toBe(m.systemProperties.messageId);
      }
      expect((await c.unary("sendMessage", { messages: [] })).status?.code).toBe(Code.MESSAGE_CORRUPTED);
      const mixedTopics = await c.unary("sendMessage", {
        messages: [message("TopicA", "x"), message("FifoTopic", "y")],
      });
      expect(mixedTopics.status?.code).toBe(Code.MESSAGE_CORRUPTED);
    });

    it("reports MULTIPLE_RESULTS for a batch with different outcomes, entries in request order", async () => {
      const good = message("TopicA", "good");
      const empty = message("TopicA", "");
      const r = await c.unary("sendMessage", { messages: [good, empty] });
      expect(r.status?.code).toBe(Code.MULTIPLE_RESULTS);
      expect(r.entries.map((e) => [e.messageId, e.status?.code])).toEqual([
        [good.systemProperties.messageId, Code.OK],
        [empty.systemProperties.messageId, Code.MESSAGE_BODY_EMPTY],
      ]);
    });

    it("rejects an inbound message larger than the frame limit with RESOURCE_EXHAUSTED", async () => {
      const huge = message("TopicA", Buffer.alloc(INBOUND_LIMIT + 1024));
      await expect(c.unary("sendMessage", { messages: [huge] })).rejects.toMatchObject({
        code: GrpcStatus.RESOURCE_EXHAUSTED,
      });
      // the rejected stream does not linger half-open, and the connection stays usable
      await waitFor(() => fx.server.streamCount() === 0);
      expect((await c.unary("queryRoute", { topic: { name: "TopicA" } })).status?.code).toBe(Code.OK);
    });

    it("checks receive parameters: invisible time, polling time, filter", async () => {
      const badInvisible = await c.serverStream(
        "receiveMessage",
        receiveRequest("TopicA", "G1", { invisibleDuration: { seconds: 5n } }),
        { deadlineMs: 5000 },
      );
      expect(badInvisible[0]?.content.value).toMatchObject({ code: Code.ILLEGAL_INVISIBLE_TIME });
      expect(badInvisible.map((x) => x.content.case)).toEqual(["status", "deliveryTimestamp"]);

      const tooLong = await c.serverStream(
        "receiveMessage",
        receiveRequest("TopicA", "G1", { invisibleDuration: { seconds: 13n * 3600n } }),
        { deadlineMs: 5000 },
      );
      expect(tooLong[0]?.content.value).toMatchObject({ code: Code.ILLEGAL_INVISIBLE_TIME });

      const badFilter = await c.serverStream(
        "receiveMessage",
        receiveRequest("TopicA", "G1", { filterExpression: { type: FilterType.SQL, expression: "a >" } }),
        { deadlineMs: 5000 },
      );
      expect(badFilter[0]?.content.value).toMatchObject({ code: Code.ILLEGAL_FILTER_EXPRESSION });

      const badGroup = await c.serverStream("receiveMessage", receiveRequest("TopicA", "CID_RMQ_SYS_X"), {
        deadlineMs: 5000,
      });
      expect(badGroup[0]?.content.value).toMatchObject({ code: Code.ILLEGAL_CONSUMER_GROUP });

      // 150 ms left is less than the (test) minimum polling time of 200 ms: ILLEGAL_POLLING_TIME, or
      // BAD_REQUEST for clients older than 5.0.3 (string comparison, as upstream: Node's 1.0.8 is "older")
      const newClient = await c.serverStream("receiveMessage", receiveRequest("TopicA", "G1"), {
        deadlineMs: 150,
      });
      expect(newClient[0]?.content.value).toMatchObject({ code: Code.ILLEGAL_POLLING_TIME });
      const oldClient = await c.serverStream("receiveMessage", receiveRequest("TopicA", "G1"), {
        deadlineMs: 150,
        metadata: { "x-mq-client-version": "1.0.8" },
      });
      expect(oldClient[0]?.content.value).toMatchObject({ code: Code.BAD_REQUEST });
    });
  });

  it("writes status, then each message, then delivery_timestamp, then ends", async () => {
    const c = fx.client(false);
    fx.backend.createTopic("OrderTopic");
    fx.backend.put("OrderTopic", "first", { [MessageProperty.TAGS]: "T1", [MessageProperty.KEYS]: "a b" });
    fx.backend.put("OrderTopic", "second", { [MessageProperty.TAGS]: "T2" });
    const stream = await c.serverStream("receiveMessage", receiveRequest("OrderTopic", "GOrder"), {
      deadlineMs: 5000,
    });
    expect(stream.map((x) => x.content.case)).toEqual(["status", "message", "message", "deliveryTimestamp"]);
    expect(stream[0]?.content.value).toMatchObject({ code: Code.OK });
    const first = stream[1]?.content.case === "message" ? stream[1].content.value : undefined;
    expect(Buffer.from(first?.body ?? []).toString()).toBe("first");
    expect(first?.systemProperties).toMatchObject({
      tag: "T1",
      keys: ["a", "b"],
      bodyDigest: { type: 2, checksum: "8B04D5E3775D298E78455EFC5CA404D5" }, // MD5("first"), upper hex
      bodyEncoding: 1,
      messageType: MessageType.NORMAL,
      queueId: 0,
      queueOffset: 0n,
      deliveryAttempt: 1,
      storeHost: "127.0.0.1:10911",
    });
    expect(first?.systemProperties?.receiptHandle).toBeTruthy();
    expect(first?.systemProperties?.bornTimestamp).toBeDefined();
    expect(first?.systemProperties?.storeTimestamp).toBeDefined();
    expect(first?.systemProperties?.invisibleDuration?.seconds).toBe(30n);
  });

  it("holds a receive while nothing is available and answers when a message arrives", async () => {
    const c = fx.client(true);
    fx.backend.createTopic("WaitTopic");
    const pending = c.serverStream("receiveMessage", receiveRequest("WaitTopic", "GWait"), {
      deadlineMs: 5000,
    });
    await waitFor(() => fx.backend.heldPolls() === 1);
    fx.backend.put("WaitTopic", "late");
    const stream = await pending;
    expect(stream.map((x) => x.content.case)).toEqual(["status", "message", "deliveryTimestamp"]);
  });

  it("ends an empty long poll with MESSAGE_NOT_FOUND after the polling time, not at once", async () => {
    const c = fx.client(false);
    fx.backend.createTopic("EmptyTopic");
    const started = Date.now();
    const stream = await c.serverStream("receiveMessage", receiveRequest("EmptyTopic", "GEmpty"), {
      deadlineMs: 5000,
    });
    const elapsed = Date.now() - started;
    expect(stream.map((x) => x.content.case)).toEqual(["status", "deliveryTimestamp"]);
    expect(stream[0]?.content.value).toMatchObject({ code: Code.MESSAGE_NOT_FOUND });
    // long_polling_timeout 5 s is clamped to the test maximum of 600 ms: held, but not past it
    expect(elapsed).toBeGreaterThanOrEqual(500);
  });

  it("acks, changes invisibility (always returning a handle) and rejects stale handles", async () => {
    const c = fx.client(false);
    fx.backend.createTopic("AckTopic");
    fx.backend.put("AckTopic", "one");
    const stream = await c.serverStream("receiveMessage", receiveRequest("AckTopic", "GAck"), {
      deadlineMs: 5000,
    });
    const m = stream[1]?.content.case === "message" ? stream[1].content.value : undefined;
    const handle = m?.systemProperties?.receiptHandle ?? "";
    const messageId = m?.systemProperties?.messageId ?? "";
    const common = { group: { name: "GAck" }, topic: { name: "AckTopic" }, messageId };

    const tooLong = await c.unary("changeInvisibleDuration", {
      ...common,
      receiptHandle: handle,
      invisibleDuration: { seconds: 13n * 3600n },
    });
    expect(tooLong.status?.code).toBe(Code.ILLEGAL_INVISIBLE_TIME);
    expect(tooLong.receiptHandle).toBe(handle);

    const changed = await c.unary("changeInvisibleDuration", {
      ...common,
      receiptHandle: handle,
      invisibleDuration: { seconds: 20n },
    });
    expect(changed.status?.code).toBe(Code.OK);
    expect(changed.receiptHandle).not.toBe(handle);

    const stale = await c.unary("ackMessage", {
      group: common.group,
      topic: common.topic,
      entries: [{ messageId, receiptHandle: handle }],
    });
    expect(stale.status?.code).toBe(Code.INVALID_RECEIPT_HANDLE);

    const ok = await c.unary("ackMessage", {
      group: common.group,
      topic: common.topic,
      entries: [{ messageId, receiptHandle: changed.receiptHandle }],
    });
    expect(ok.status?.code).toBe(Code.OK);
    expect(ok.entries[0]).toMatchObject({ messageId, status: { code: Code.OK } });

    const blank = await c.unary("ackMessage", {
      group: common.group,
      topic: common.topic,
      entries: [{ messageId, receiptHandle: "" }],
    });
    expect(blank.status?.code).toBe(Code.INVALID_RECEIPT_HANDLE);
  });

  it("forwards a message past the group's max attempts to the DLQ instead of delivering it", async () => {
    const c = fx.client(false);
    fx.backend.createTopic("RetryTopic");
    fx.backend.setGroup({
      groupName: "GOnce",
      consumeEnable: true,
      consumeMessageOrderly: false,
      retryMaxTimes: 0,
      retryPolicy: { type: "EXPONENTIAL", initialMs: 1000, maxMs: 10000, multiplier: 2 },
    });
    fx.backend.put("RetryTopic", "poison");
    const first = await c.serverStream("receiveMessage", receiveRequest("RetryTopic", "GOnce"), {
      deadlineMs: 5000,
    });
    const m = first[1]?.content.case === "message" ? first[1].content.value : undefined;
    expect(m?.systemProperties?.deliveryAttempt).toBe(1);
    await c.unary("changeInvisibleDuration", {
      group: { name: "GOnce" },
      topic: { name: "RetryTopic" },
      messageId: m?.systemProperties?.messageId ?? "",
      receiptHandle: m?.systemProperties?.receiptHandle ?? "",
      invisibleDuration: { seconds: 0n },
    });
    const second = await c.serverStream("receiveMessage", receiveRequest("RetryTopic", "GOnce"), {
      deadlineMs: 5000,
    });
    expect(second[0]?.content.value).toMatchObject({ code: Code.MESSAGE_NOT_FOUND });
    expect(fx.backend.dlq).toEqual([
      expect.objectContaining({
        group: "GOnce",
        topic: "RetryTopic",
        deliveryAttempt: 2,
        maxDeliveryAttempts: 1,
      }),
    ]);
  });

  it("answers Heartbeat and NotifyClientTermination OK, unimplemented RPCs (the offset ones and PullMessage) NOT_IMPLEMENTED in the body", async () => {
    const c = fx.client(false, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "never-seen-before" });
    expect((await c.unary("heartbeat", { clientType: 1 })).status?.code).toBe(Code.OK);
    expect((await c.unary("notifyClientTermination", {})).status?.code).toBe(Code.OK);
    expect((await c.unary("updateOffset", {})).status?.code).toBe(Code.NOT_IMPLEMENTED);
    expect((await c.unary("getOffset", {})).status?.code).toBe(Code.NOT_IMPLEMENTED);
    expect((await c.unary("queryOffset", {})).status?.code).toBe(Code.NOT_IMPLEMENTED);
    // SyncLiteSubscription is served; an empty request names no topic.
    expect((await c.unary("syncLiteSubscription", {})).status?.code).toBe(Code.ILLEGAL_TOPIC);
    const pull = await c.serverStream("pullMessage", {}, { deadlineMs: 5000 });
    expect(pull[0]?.content.value).toMatchObject({ code: Code.NOT_IMPLEMENTED });
  });

  it("validates EndTransaction and passes commits to the backend", async () => {
    const c = fx.client(false);
    const blank = await c.unary("endTransaction", {
      topic: { name: "TxTopic" },
      messageId: "m",
      transactionId: " ",
      resolution: 1,
    });
    expect(blank.status?.code).toBe(Code.INVALID_TRANSACTION_ID);
    const sent = await c.unary("sendMessage", {
      messages: [message("TxTopic", "half", { messageType: MessageType.TRANSACTION })],
    });
    const entry = sent.entries[0];
    expect(entry?.transactionId).toMatch(/^TX/);
    const end = await c.unary("endTransaction", {
      topic: { name: "TxTopic" },
      messageId: entry?.messageId ?? "",
      transactionId: entry?.transactionId ?? "",
      resolution: 1,
      source: 1,
    });
    expect(end.status?.code).toBe(Code.OK);
    expect(fx.backend.endTransactionCalls.at(-1)).toMatchObject({
      resolution: "COMMIT",
      fromTransactionCheck: false,
      producerGroup: "TxTopic",
    });
    const unknown = await c.unary("endTransaction", {
      topic: { name: "TxTopic" },
      messageId: "m",
      transactionId: "nope",
      resolution: 2,
    });
    expect(unknown.status?.code).toBe(Code.INVALID_TRANSACTION_ID);
  });

  it("records rpc latency and messages in", async () => {
    const text = await fx.registry.metrics();
    expect(text).toMatch(
      /rocketmq_rpc_latency_count\{[^}]*request_code="send_message"[^}]*response_code="ok"/,
    );
    expect(text).toMatch(
      /rocketmq_rpc_latency_count\{[^}]*request_code="receive_message"[^}]*is_long_polling="true"/,
    );
    expect(text).toMatch(
      /rocketmq_messages_in_total\{topic="TopicA",message_type="normal",is_system="false"\} \d+/,
    );
    expect(text).toMatch(
      /rocketmq_messages_out_total\{topic="OrderTopic",consumer_group="GOrder",is_system="false"\} 2/,
    );
  });
});

describe("Telemetry", () => {
  let fx: ProxyFixture;
  beforeAll(async () => {
    fx = await startProxyFixture({ limits: { settingsResendDelayMs: 300 } });
    fx.backend.createTopic("TopicT");
    fx.backend.createTopic("TxTopic", { messageType: "TRANSACTION" });
    fx.backend.setGroup({
      groupName: "FifoGroup",
      consumeEnable: true,
      consumeMessageOrderly: true,
      retryMaxTimes: 5,
      retryPolicy: { type: "EXPONENTIAL", initialMs: 1000, maxMs: 60000, multiplier: 2 },
    });
  });
  afterAll(async () => {
    await fx.close();
  });

  function collect(call: ReturnType<RawClient["bidi"]>) {
    const received: unknown[] = [];
    const ended = new Promise<{ error?: { code?: number } }>((resolve) => {
      call.on("data", (d: unknown) => received.push(d));
      call.on("error", (error: { code?: number }) => resolve({ error }));
      call.on("end", () => resolve({}));
    });
    return { received, ended };
  }

  it("answers producer Settings with OK + exponential backoff + max body size, and again ~1 s later", async () => {
    const c = fx.client(true, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "producer-1" });
    const call = c.bidi("telemetry");
    const { received } = collect(call);
    call.write({
      command: {
        case: "settings",
        value: {
          clientType: 1,
          requestTimeout: { seconds: 3n },
          pubSub: {
            case: "publishing",
            value: { topics: [{ name: "TopicT" }], maxBodySize: 0, validateMessageType: true },
          },
          userAgent: { language: 8, version: "1.0.8" },
        },
      },
    });
    await waitFor(() => received.length >= 2);
    const [first, second] = received as {
      status?: { code: number };
      command: { case: string; value: Record<string, unknown> };
    }[];
    expect(first?.status?.code).toBe(Code.OK);
    expect(first?.command.case).toBe("settings");
    const settings = first?.command.value as {
      backoffPolicy?: {
        maxAttempts: number;
        strategy: {
          case: string;
          value: { initial?: { nanos: number }; max?: { seconds: bigint }; multiplier: number };
        };
      };
      pubSub: { case: string; value: { maxBodySize: number; validateMessageType: boolean } };
      requestTimeout?: { seconds: bigint };
    };
    expect(settings.backoffPolicy?.maxAttempts).toBe(3);
    expect(settings.backoffPolicy?.strategy.case).toBe("exponentialBackoff");
    expect(settings.backoffPolicy?.strategy.value).toMatchObject({
      initial: { nanos: 10_000_000 },
      max: { seconds: 1n },
      multiplier: 2,
    });
    expect(settings.pubSub.value).toMatchObject({ maxBodySize: 4 * 1024 * 1024, validateMessageType: true });
    expect(settings.requestTimeout?.seconds).toBe(3n);
    expect(second).toEqual(first);
    expect(fx.server.clients.get("producer-1")?.clientType).toBe(1);

    // an orphan check for a topic the producer declared reaches its stream
    const pushed = fx.backend.checkTransaction({
      topic: "TopicT",
      transactionId: "TX-check",
      message: {
        topic: "TopicT",
        brokerName: "b",
        queueId: 0,
        queueOffset: 7,
        body: Buffer.from("half"),
        properties: { [MessageProperty.UNIQ_KEY]: "HALF-1", [MessageProperty.TRANSACTION_PREPARED]: "true" },
        bornTimestamp: Date.now(),
        bornHost: "h",
        storeTimestamp: Date.now(),
        storeHost: "s",
        receiptHandle: "",
        deliveryAttempt: 1,
        invisibleTimeMs: 0,
      },
    });
    expect(pushed).toBe(true);
    await waitFor(() => received.length >= 3);
    const command = (
      received[2] as {
        command: {
          case: string;
          value: {
            transactionId: string;
            message: {
              systemProperties: { messageId: string; bodyDigest: { checksum: string }; messageType: number };
            };
          };
        };
      }
    ).command;
    expect(command.case).toBe("recoverOrphanedTransactionCommand");
    expect(command.value.transactionId).toBe("TX-check");
    expect(command.value.message.systemProperties).toMatchObject({
      messageId: "HALF-1",
      messageType: MessageType.TRANSACTION,
    });
    expect(command.value.message.systemProperties.bodyDigest.checksum).toMatch(/^[0-9A-F]{32}$/);
    call.end();
  });

  it("answers consumer Settings with the group's fifo flag, batch 32, long polling 20 s and its retry policy", async () => {
    const c = fx.client(false, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "consumer-1" });
    const call = c.bidi("telemetry");
    const { received } = collect(call);
    call.write({
      command: {
        case: "settings",
        value: {
          clientType: 3,
          pubSub: {
            case: "subscription",
            value: {
              group: { name: "FifoGroup" },
              subscriptions: [
                { topic: { name: "TopicT" }, expression: { type: FilterType.TAG, expression: "*" } },
              ],
              longPollingTimeout: { seconds: 30n },
            },
          },
        },
      },
    });
    await waitFor(() => received.length >= 1);
    const reply = received[0] as {
      status?: { code: number };
      command: {
        value: {
          backoffPolicy?: { maxAttempts: number; strategy: { case: string } };
          pubSub: {
            value: { fifo?: boolean; receiveBatchSize?: number; longPollingTimeout?: { seconds: bigint } };
          };
        };
      };
    };
    expect(reply.status?.code).toBe(Code.OK);
    expect(reply.command.value.pubSub.value).toMatchObject({
      fifo: true,
      receiveBatchSize: 32,
      longPollingTimeout: { seconds: 20n },
    });
    expect(reply.command.value.backoffPolicy?.maxAttempts).toBe(6);
    expect(reply.command.value.backoffPolicy?.strategy.case).toBe("exponentialBackoff");
    call.end();
  });

  it("ends the stream with INVALID_ARGUMENT for settings without publishing or subscription", async () => {
    const c = fx.client(false, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "bad-settings" });
    const call = c.bidi("telemetry");
    const { ended } = collect(call);
    call.write({ command: { case: "settings", value: { clientType: 1 } } });
    expect((await ended).error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });

  it("ends the stream with INVALID_ARGUMENT without a client id", async () => {
    const c = fx.client(false, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "" });
    const call = c.bidi("telemetry");
    const { ended } = collect(call);
    call.write({ command: { case: "settings", value: { clientType: 1 } } });
    expect((await ended).error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
  });

  it("drops the session when the client ends its stream", async () => {
    const c = fx.client(false, { ...DEFAULT_TEST_METADATA, "x-mq-client-id": "short-lived" });
    const call = c.bidi("telemetry");
    const { received, ended } = collect(call);
    call.write({
      command: {
        case: "settings",
        value: { clientType: 1, pubSub: { case: "publishing", value: { topics: [] } } },
      },
    });
    await waitFor(() => received.length >= 1);
    expect(fx.server.clients.get("short-lived")).toBeDefined();
    call.end();
    await ended;
    await waitFor(() => fx.server.clients.get("short-lived") === undefined);
  });
});

describe("auto_renew receives", () => {
  it("renew the handle in the background and accept the original handle for ack", async () => {
    const fx = await startProxyFixture({
      limits: {
        autoRenewInvisibleMs: 1500,
        renewAheadMs: 1000,
        renewStepsMs: [1500],
        minLongPollingMs: 200,
        maxLongPollingMs: 500,
      },
    });
    try {
      fx.backend.createTopic("RenewTopic");
      fx.backend.put("RenewTopic", "slow work");
      const c = fx.client(false);
      const stream = await c.serverStream(
        "receiveMessage",
        receiveRequest("RenewTopic", "GRenew", { autoRenew: true, invisibleDuration: undefined }),
        { deadlineMs: 5000 },
      );
      const m = stream[1]?.content.case === "message" ? stream[1].content.value : undefined;
      const handle = m?.systemProperties?.receiptHandle ?? "";
      await waitFor(() => fx.backend.changeInvisibleCalls.length >= 1, 5000);
      const ack = await c.unary("ackMessage", {
        group: { name: "GRenew" },
        topic: { name: "RenewTopic" },
        entries: [{ messageId: m?.systemProperties?.messageId ?? "", receiptHandle: handle }],
      });
      expect(ack.status?.code).toBe(Code.OK);
    } finally {
      await fx.close();
    }
  });
});

describe("shutdown", () => {
  it("ends held long polls and Telemetry streams cleanly, then stops without waiting out the grace period", async () => {
    const fx = await startProxyFixture({ limits: { maxLongPollingMs: 20_000, shutdownGraceMs: 15_000 } });
    fx.backend.createTopic("IdleTopic");
    const c = fx.client(false);
    const telemetry = c.bidi("telemetry");
    const telemetryEnd = new Promise<string>((resolve) => {
      telemetry.on("data", () => {});
      telemetry.on("error", (e: Error) => resolve(`error ${e.message}`));
      telemetry.on("end", () => resolve("end"));
    });
    telemetry.write({
      command: {
        case: "settings",
        value: { clientType: 1, pubSub: { case: "publishing", value: { topics: [] } } },
      },
    });
    await waitFor(() => fx.server.clients.sessions().length === 1);
    const pending = c.serverStream(
      "receiveMessage",
      receiveRequest("IdleTopic", "GIdle", { longPollingTimeout: { seconds: 20n } }),
      { deadlineMs: 30_000 },
    );
    await waitFor(() => fx.backend.heldPolls() === 1);
    const started = Date.now();
    await fx.close();
    // far below both the 20 s poll and the 15 s grace period
    expect(Date.now() - started).toBeLessThan(5_000);
    const stream = await pending;
    expect(stream.map((x) => x.content.case)).toEqual(["status", "deliveryTimestamp"]);
    expect(stream[0]?.content.value).toMatchObject({ code: Code.MESSAGE_NOT_FOUND });
    expect(await telemetryEnd).toBe("end");
  });

  it("answers HTTP/2 PINGs on an idle connection without closing it", async () => {
    const fx = await startProxyFixture();
    try {
      const session = http2Connect(`http://${fx.address}`);
      session.on("error", () => {});
      let goaway = false;
      session.once("goaway", () => {
        goaway = true;
      });
      await new Promise<void>((resolve) => session.once("connect", () => resolve()));
      for (let i = 0; i < 3; i++) {
        const rtt = await new Promise<number>((resolve, reject) =>
          session.ping((error, duration) => (error ? reject(error) : resolve(duration))),
        );
        expect(rtt).toBeGreaterThanOrEqual(0);
      }
      expect(goaway).toBe(false);
      expect(fx.server.connectionCount()).toBe(1);
      session.destroy();
    } finally {
      await fx.close();
    }
  });

  it("serves only TLS in enforcing mode and only plaintext in disabled mode", async () => {
    const backend = createMemoryBackend();
    backend.createTopic("ModeTopic");
    for (const mode of ["enforcing", "disabled"] as const) {
      const server = await createProxyServer({
        port: 0,
        host: "127.0.0.1",
        backend,
        logger: silentLogger(),
        tls: { mode },
      });
      const tls = createRawClient(`127.0.0.1:${server.port}`, { tls: true });
      const plain = createRawClient(`127.0.0.1:${server.port}`, { tls: false });
      try {
        // settle both at once so that the expected failure is never an unhandled rejection
        const outcome = (call: Promise<{ status?: { code: number } }>) =>
          call.then(
            (r) => r.status?.code,
            (e: { code?: number }) => `failed ${e.code}`,
          );
        const [viaTls, viaPlain] = await Promise.all([
          outcome(tls.unary("queryRoute", { topic: { name: "ModeTopic" } }, { deadlineMs: 1500 })),
          outcome(plain.unary("queryRoute", { topic: { name: "ModeTopic" } }, { deadlineMs: 1500 })),
        ]);
        if (mode === "enforcing") {
          expect(viaTls).toBe(Code.OK);
          expect(viaPlain).toMatch(/^failed/);
        } else {
          expect(viaPlain).toBe(Code.OK);
          expect(viaTls).toMatch(/^failed/);
        }
      } finally {
        tls.close();
        plain.close();
        await server.close();
      }
    }
  });

  it("closes connections that have no stream for the idle timeout", async () => {
    const fx = await startProxyFixture({ limits: { clientIdleTimeoutMs: 300 } });
    try {
      const session = http2Connect(`http://${fx.address}`);
      const closed = new Promise<boolean>((resolve) => {
        session.once("goaway", () => resolve(true));
        session.once("close", () => resolve(true));
      });
      session.on("error", () => {});
      expect(await closed).toBe(true);
      session.destroy();
    } finally {
      await fx.close();
    }
  });
});

describe("the two wire paths: lean gRPC layer and connect fallback", () => {
  let fx: ProxyFixture;
  beforeAll(async () => {
    fx = await startProxyFixture({ limits: { minLongPollingMs: 5000, maxLongPollingMs: 20_000 } });
    fx.backend.createTopic("TopicW");
    fx.backend.createTopic("TopicIdle");
  });
  afterAll(async () => {
    await fx.close();
  });

  it("answers a gzip-compressed request (served by connect) exactly as a plain one (served lean)", async () => {
    const plain = fx.client(false);
    const gzip = createRawClient(fx.address, { channelOptions: { "grpc.default_compression_algorithm": 2 } });
    try {
      const a = await plain.unary("sendMessage", { messages: [message("TopicW", "plain")] });
      const b = await gzip.unary("sendMessage", { messages: [message("TopicW", "gzipped")] });
      expect(a.status?.code).toBe(Code.OK);
      expect(b.status?.code).toBe(Code.OK);
      expect(b.entries).toHaveLength(1);
      const stored = fx.backend.sendCalls.flatMap((call) =>
        call.messages.map((m) => Buffer.from(m.body).toString()),
      );
      expect(stored).toEqual(expect.arrayContaining(["plain", "gzipped"]));
      const latency = await fx.registry.getSingleMetricAsString("rocketmq_rpc_latency");
      expect(latency).toMatch(/rocketmq_rpc_latency_count\{[^}]*request_code="send_message"[^}]*\} 2/);
    } finally {
      gzip.close();
    }
  });

  it("answers an unknown method with gRPC UNIMPLEMENTED", async () => {
    const session = http2Connect(fx.address.startsWith("http") ? fx.address : `http://${fx.address}`);
    session.on("error", () => {});
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/apache.rocketmq.v2.MessagingService/NoSuchMethod",
        "content-type": "application/grpc",
        te: "trailers",
      });
      const headers = await new Promise<Record<string, unknown>>((resolve) =>
        stream.once("response", resolve),
      );
      stream.close();
      expect(headers["grpc-status"]).toBe(String(GrpcStatus.UNIMPLEMENTED));
    } finally {
      session.destroy();
    }
  });

  it("ends a held ReceiveMessage the client cancels: the backend's poll is released", async () => {
    const c = fx.client(false);
    const call = c.openServerStream(
      "receiveMessage",
      receiveRequest("TopicIdle", "GroupCancel", { longPollingTimeout: { seconds: 15n } }),
      { deadlineMs: 30_000 },
    );
    const ended = new Promise<number>((resolve) => {
      call.on("error", (e: { code: number }) => resolve(e.code));
      call.on("end", () => resolve(GrpcStatus.OK));
    });
    call.on("data", () => {});
    await waitFor(() => fx.backend.heldPolls() === 1);
    call.cancel();
    expect(await ended).toBe(GrpcStatus.CANCELLED);
    // well before the 15 s poll would have ended by itself
    await waitFor(() => fx.backend.heldPolls() === 0, 3000);
    await waitFor(() => fx.server.streamCount() === 0, 3000);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
