// End to end with the official Node SDK (rocketmq-client-nodejs) against a real `rmq local` child
// process: normal messages (fields intact, ids, ack, redelivery after the invisible time,
// changeInvisibleDuration), push consumers sharing a group and separate groups, retries ending in
// the DLQ, TAG and SQL92 filters, body size limits, illegal topic names, and the broker metrics.
//
// The DLQ group is created before start through `{store}/config/subscriptionGroup.json` (upstream's
// file), with retryMaxTimes=2 and a 100 ms exponential backoff so the retries take about a second.

import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ConsumeResult,
  FilterExpression,
  type MessageView,
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
} from "./fixtures/e2e-local.ts";

/** The SDK's FilterType.SQL (apache.rocketmq.v2.FilterType). */
const SDK_FILTER_TYPE_SQL = 2;
const MiB = 1024 * 1024;
const DLQ_GROUP = "g-dlq";
const RMQ = fileURLToPath(new URL("../cli/rmq.ts", import.meta.url));

/** `rmq admin <args> -n <rmq local's NameServer>` as a child process. */
function rmqAdmin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RMQ, "admin", ...args, "-n", `127.0.0.1:${rmq.namesrvPort}`],
      { encoding: "utf8", timeout: 30_000 },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr }),
    );
  });
}

const sdkErrors: unknown[][] = [];
const logger = quietSdkLogger(sdkErrors);
let dir: string;
let rmq: LocalProcess;
const clients = new SdkClients();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "e2e-messaging-"));
  const storeDir = join(dir, "store");
  writeStoreConfig(storeDir, "subscriptionGroup.json", {
    subscriptionGroupTable: {
      [DLQ_GROUP]: {
        groupName: DLQ_GROUP,
        retryMaxTimes: 2,
        groupRetryPolicy: {
          type: "EXPONENTIAL",
          exponentialRetryPolicy: { initial: 100, max: 500, multiplier: 2 },
        },
      },
    },
    forbiddenTable: {},
    dataVersion: { stateVersion: 0, timestamp: Date.now(), counter: 1 },
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

function simpleConsumer(
  group: string,
  topic: string,
  filter: string | FilterExpression = "*",
): Promise<SimpleConsumer> {
  return clients.start(
    new SimpleConsumer({
      endpoints: rmq.endpoints,
      namespace: "",
      consumerGroup: group,
      subscriptions: new Map([[topic, filter]]),
      awaitDuration: 1000,
      logger,
    }),
  );
}

function pushConsumer(
  group: string,
  topic: string,
  consume: (m: MessageView) => ConsumeResult,
): Promise<PushConsumer> {
  return clients.start(
    new PushConsumer({
      endpoints: rmq.endpoints,
      namespace: "",
      consumerGroup: group,
      subscriptions: new Map([[topic, "*"]]),
      messageListener: { consume },
      logger,
    }),
  );
}

describe("rmq local with the official SDK", () => {
  it("delivers normal messages intact; acked ones never return, unacked ones return after the invisible time", async () => {
    const topic = "E2eNormal";
    const p = await producer([topic]);
    const r1 = await p.send({
      topic,
      tag: "TagA",
      keys: ["order-1", "customer-7"],
      properties: new Map([
        ["color", "red"],
        ["n", "1"],
      ]),
      body: Buffer.from("first body"),
    });
    const r2 = await p.send({ topic, tag: "TagB", body: Buffer.from("second body") });
    const r3 = await p.send({ topic, body: Buffer.from("third body") });
    expect(new Set([r1.messageId, r2.messageId, r3.messageId]).size).toBe(3);

    const c = await simpleConsumer("g-normal", topic);
    // Long enough that the acks below surely land within it, even on a loaded machine.
    const invisibleMs = 4000;
    const first = await receiveUntil(c, (got) => got.length >= 3, { timeoutMs: 10_000, invisibleMs });
    expect(first.map((m) => m.messageId).sort()).toEqual([r1.messageId, r2.messageId, r3.messageId].sort());
    const m1 = first.find((m) => m.messageId === r1.messageId) as MessageView;
    const m2 = first.find((m) => m.messageId === r2.messageId) as MessageView;
    const m3 = first.find((m) => m.messageId === r3.messageId) as MessageView;
    expect(m1.topic).toBe(topic);
    expect(m1.tag).toBe("TagA");
    expect(m1.keys).toEqual(["order-1", "customer-7"]);
    expect(m1.properties).toEqual(
      new Map([
        ["color", "red"],
        ["n", "1"],
      ]),
    );
    expect(bodyText(m1)).toBe("first body");
    expect(m1.corrupted).not.toBe(true);
    expect(m2.tag).toBe("TagB");
    expect(bodyText(m3)).toBe("third body");
    for (const m of first) expect(m.deliveryAttempt).toBe(1);

    await c.ack(m1);
    // m2 stays invisible far longer than its first invisible time; m3 is left alone.
    await c.changeInvisibleDuration(m2, 60_000);

    const again = await receiveUntil(c, (got) => got.some((m) => m.messageId === r3.messageId), {
      timeoutMs: 10_000,
      invisibleMs: 10_000,
    });
    const m3Again = again.find((m) => m.messageId === r3.messageId) as MessageView;
    expect(m3Again.deliveryAttempt).toBe(2);
    expect(bodyText(m3Again)).toBe("third body");
    expect(again.map((m) => m.messageId)).not.toContain(r1.messageId);
    expect(again.map((m) => m.messageId)).not.toContain(r2.messageId);
    await c.ack(m3Again);
    // The handle changeInvisibleDuration gave back acks m2.
    await c.ack(m2);

    // Nothing is left: a few more receives (each held ~1 s) come back empty.
    const rest = await receiveUntil(c, () => false, { timeoutMs: 3000, invisibleMs: 10_000 });
    expect(rest.map((m) => m.messageId)).toEqual([]);
  });

  it("lets push consumers of one group share a topic without loss, and gives every group everything", async () => {
    const topic = "E2ePush";
    const p = await producer([topic]);
    const seenByA = new Map<string, number>();
    const seenByB = new Map<string, number>();
    const otherGroup = new Set<string>();
    const record = (seen: Map<string, number>) => (m: MessageView) => {
      seen.set(m.messageId, (seen.get(m.messageId) ?? 0) + 1);
      return ConsumeResult.SUCCESS;
    };
    await pushConsumer("g-push-shared", topic, record(seenByA));
    await pushConsumer("g-push-shared", topic, record(seenByB));
    await pushConsumer("g-push-other", topic, (m) => {
      otherGroup.add(m.messageId);
      return ConsumeResult.SUCCESS;
    });

    const sent: string[] = [];
    for (let i = 0; i < 40; i++) {
      sent.push((await p.send({ topic, body: Buffer.from(`push-${i}`) })).messageId);
      // Spread the sends so that both consumers' polls get a chance to take messages.
      await new Promise((r) => setTimeout(r, 25));
    }
    const union = () => new Set([...seenByA.keys(), ...seenByB.keys()]);
    await waitFor(
      () => union().size === sent.length && otherGroup.size === sent.length,
      20_000,
      "all deliveries",
    );
    expect([...union()].sort()).toEqual([...sent].sort());
    expect([...otherGroup].sort()).toEqual([...sent].sort());
    // Shared: both consumers got work, and each message went to one of them once.
    expect(seenByA.size).toBeGreaterThan(0);
    expect(seenByB.size).toBeGreaterThan(0);
    const deliveries = [...seenByA.values(), ...seenByB.values()].reduce((a, b) => a + b, 0);
    expect(deliveries).toBe(sent.length);
  });

  it("retries a message a consumer keeps failing, then moves it to %DLQ%<group>", async () => {
    const topic = "E2eDlq";
    const p = await producer([topic]);
    const attempts = new Map<string, number[]>();
    await pushConsumer(DLQ_GROUP, topic, (m) => {
      attempts.set(m.messageId, [...(attempts.get(m.messageId) ?? []), m.deliveryAttempt ?? 0]);
      return ConsumeResult.FAILURE;
    });
    const receipt = await p.send({
      topic,
      tag: "Doomed",
      keys: ["dlq-key"],
      properties: new Map([["reason", "always fails"]]),
      body: Buffer.from("dead letter"),
    });
    // retryMaxTimes=2: delivered three times, then dead-lettered.
    await waitFor(() => (attempts.get(receipt.messageId)?.length ?? 0) >= 3, 20_000, "three deliveries");

    const reader = await simpleConsumer("g-dlq-reader", `%DLQ%${DLQ_GROUP}`);
    const dead = await receiveUntil(reader, (got) => got.length > 0, {
      timeoutMs: 15_000,
      invisibleMs: 10_000,
    });
    expect(dead).toHaveLength(1);
    const d = dead[0] as MessageView;
    expect(d.messageId).toBe(receipt.messageId);
    expect(bodyText(d)).toBe("dead letter");
    expect(d.tag).toBe("Doomed");
    expect(d.keys).toEqual(["dlq-key"]);
    expect(d.properties.get("reason")).toBe("always fails");
    await reader.ack(d);
    expect(attempts.get(receipt.messageId)?.slice(0, 3)).toEqual([1, 2, 3]);
    // Nothing comes back to the failing group after the DLQ move.
    await new Promise((r) => setTimeout(r, 2500));
    expect(attempts.get(receipt.messageId)).toEqual([1, 2, 3]);
  });

  it("delivers exactly the messages a TAG or SQL92 filter selects", async () => {
    const topic = "E2eFilter";
    const p = await producer([topic]);
    const sent: { id: string; tag: string; region: string; n: number }[] = [];
    for (let n = 0; n < 12; n++) {
      const tag = ["TagA", "TagB", "TagC"][n % 3] as string;
      const region = n % 2 === 0 ? "eu" : "us";
      const r = await p.send({
        topic,
        tag,
        properties: new Map([
          ["region", region],
          ["n", String(n)],
        ]),
        body: Buffer.from(`filter-${n}`),
      });
      sent.push({ id: r.messageId, tag, region, n });
    }
    const tagConsumer = await simpleConsumer("g-filter-tag", topic, "TagA || TagC");
    const sqlConsumer = await simpleConsumer(
      "g-filter-sql",
      topic,
      new FilterExpression("region = 'eu' AND n > 3", SDK_FILTER_TYPE_SQL as never),
    );
    const wantTag = sent.filter((s) => s.tag === "TagA" || s.tag === "TagC").map((s) => s.id);
    const wantSql = sent.filter((s) => s.region === "eu" && s.n > 3).map((s) => s.id);

    const check = async (c: SimpleConsumer, want: string[]) => {
      const got = await receiveUntil(c, (g) => g.length >= want.length, {
        timeoutMs: 10_000,
        invisibleMs: 10_000,
      });
      for (const m of got) await c.ack(m);
      // and nothing else arrives afterwards
      const extra = await receiveUntil(c, () => false, { timeoutMs: 2000, invisibleMs: 10_000 });
      expect([...got, ...extra].map((m) => m.messageId).sort()).toEqual([...want].sort());
    };
    await check(tagConsumer, wantTag);
    await check(sqlConsumer, wantSql);
  });

  it("round-trips a 3 MiB body and refuses a 5 MiB body and illegal topic names", async () => {
    const topic = "E2eLarge";
    const p = await producer([topic]);
    const big = Buffer.alloc(3 * MiB);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    const receipt = await p.send({ topic, body: big });
    const c = await simpleConsumer("g-large", topic);
    const got = await receiveUntil(c, (g) => g.length > 0, {
      timeoutMs: 10_000,
      invisibleMs: 10_000,
      max: 1,
    });
    expect(got).toHaveLength(1);
    expect(got[0]?.messageId).toBe(receipt.messageId);
    expect(got[0]?.corrupted).not.toBe(true);
    expect(Buffer.compare(got[0]?.body ?? Buffer.alloc(0), big)).toBe(0);
    await c.ack(got[0] as MessageView);

    // The SDK itself refuses bodies over the max_body_size the proxy announced (4 MiB) ...
    await expect(p.send({ topic, body: Buffer.alloc(5 * MiB) })).rejects.toThrow(/body size exceeds/);
    // ... and a client that sends one anyway gets MESSAGE_BODY_TOO_LARGE.
    const raw = createRawClient(rmq.endpoints, { metadata: { ...DEFAULT_TEST_METADATA } });
    try {
      const res = await raw.unary("sendMessage", {
        messages: [
          {
            topic: { name: topic },
            body: Buffer.alloc(5 * MiB),
            systemProperties: { messageId: "E2E-TOO-LARGE", messageType: MessageType.NORMAL },
          },
        ],
      });
      expect(res.entries[0]?.status?.code).toBe(Code.MESSAGE_BODY_TOO_LARGE);
      expect(res.status?.code).toBe(Code.MESSAGE_BODY_TOO_LARGE);
    } finally {
      raw.close();
    }

    await expect(p.send({ topic: "bad topic!", body: Buffer.from("x") })).rejects.toMatchObject({
      code: Code.ILLEGAL_TOPIC,
    });
    await expect(p.send({ topic: "rmq_sys_forbidden", body: Buffer.from("x") })).rejects.toMatchObject({
      code: Code.ILLEGAL_TOPIC,
    });
    // The SDK logs the refused route queries as errors; those are expected here.
    const expected = sdkErrors.filter((e) => e.includes("bad topic!") || e.includes("rmq_sys_forbidden"));
    expect(expected.length).toBeGreaterThanOrEqual(2);
    sdkErrors.splice(0, sdkErrors.length, ...sdkErrors.filter((e) => !expected.includes(e)));
  });

  it("consumerConnection and producerConnection show the SDK clients the proxy registered with the broker", async () => {
    const topic = "E2eConn";
    await producer([topic]);
    const c = await clients.start(
      new PushConsumer({
        endpoints: rmq.endpoints,
        namespace: "",
        consumerGroup: "g-conn",
        subscriptions: new Map([[topic, "TagA || TagB"]]),
        messageListener: { consume: () => ConsumeResult.SUCCESS },
        logger,
      }),
    );
    let cc = await rmqAdmin(["consumerConnection", "-g", "g-conn"]);
    for (let i = 0; i < 20 && cc.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 250));
      cc = await rmqAdmin(["consumerConnection", "-g", "g-conn"]);
    }
    expect(cc.stderr).toBe("");
    const lines = cc.stdout.split("\n");
    expect(lines[0]).toMatch(/^#ClientId +#ClientAddr +#Language +#Version$/);
    expect(lines[1]).toMatch(/^\S+ +127\.0\.0\.1:\d+ +NODE_JS +\S+$/);
    expect(lines.slice(2)).toEqual([
      "",
      "Below is subscription:",
      `${"#Topic".padEnd(20)} #SubExpression`,
      `${topic.padEnd(20)} TagA || TagB`,
      "",
      "ConsumeType: CONSUME_PASSIVELY",
      "MessageModel: CLUSTERING",
      "ConsumeFromWhere: CONSUME_FROM_LAST_OFFSET",
      "",
    ]);
    const pc = await rmqAdmin(["producerConnection", "-g", topic, "-t", topic]);
    expect(pc.stderr).toBe("");
    expect(pc.stdout).toMatch(/^0001 {2}\S+ +127\.0\.0\.1:\d+ +NODE_JS +\S+\n$/);
    // A consumer that shuts down (NotifyClientTermination) leaves the broker's table.
    await c.shutdown();
    const gone = await rmqAdmin(["consumerConnection", "-g", "g-conn"]);
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toMatch(/Not found the consumer group connection/);
  });

  it("exports broker metrics with upstream names and labels, and reports ready", async () => {
    const topic = "E2eMetrics";
    const p = await producer([topic]);
    for (let i = 0; i < 3; i++) await p.send({ topic, body: Buffer.from("12345") });
    const c = await simpleConsumer("g-metrics", topic);
    const got = await receiveUntil(c, (g) => g.length >= 3, { timeoutMs: 10_000, invisibleMs: 10_000 });
    for (const m of got) await c.ack(m);

    const text = await (await fetch(`${rmq.metricsUrl}/metrics`)).text();
    const series = (name: string, labels: Record<string, string>): number | undefined => {
      for (const line of text.split("\n")) {
        if (!line.startsWith(`${name}{`)) continue;
        if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
          return Number(line.split(" ").at(-1));
      }
      return undefined;
    };
    const common = { cluster: "E2eCluster", node_type: "broker", node_id: "e2e-broker" };
    expect(
      series("rocketmq_messages_in_total", { ...common, topic, message_type: "normal", is_system: "false" }),
    ).toBe(3);
    expect(series("rocketmq_throughput_in_total", { ...common, topic, message_type: "normal" })).toBe(15);
    expect(series("rocketmq_messages_out_total", { ...common, topic, consumer_group: "g-metrics" })).toBe(3);
    expect(series("rocketmq_throughput_out_total", { ...common, topic, consumer_group: "g-metrics" })).toBe(
      15,
    );
    expect(series("rocketmq_consumer_lag_messages", { consumer_group: "g-metrics", topic })).toBe(0);
    expect(
      series("rocketmq_rpc_latency_count", { request_code: "send_message", protocol_type: "grpc" }),
    ).toBeGreaterThan(0);
    const ready = await fetch(`${rmq.metricsUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(sdkErrors).toEqual([]);
  });
});
