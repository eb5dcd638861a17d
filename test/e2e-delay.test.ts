// End to end with the official Node SDK against a real `rmq local` child process: delay/timer
// messages. A 3 s delay is not delivered early and arrives soon after it is due; a message that comes
// due while the server is down arrives after the restart, once; a recalled message never arrives; a
// delivery time beyond the limit is refused with ILLEGAL_DELIVERY_TIME.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Producer, SimpleConsumer } from "rocketmq-client-nodejs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  bodyText,
  E2E_BROKER_CONF,
  type LocalProcess,
  quietSdkLogger,
  receiveUntil,
  SDK_STREAM_SETTLE_MS,
  SdkClients,
  startRmqLocal,
  stopLocalAndClients,
  writeProperties,
  writeTypedTopics,
} from "./fixtures/e2e-local.ts";

const TOPIC = "delay-topic";
const sdkErrors: unknown[][] = [];
const logger = quietSdkLogger(sdkErrors);
let dir: string;
let storeDir: string;
let confFile: string;
let rmq: LocalProcess | undefined;
const clients = new SdkClients();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "e2e-delay-"));
  storeDir = join(dir, "store");
  writeTypedTopics(storeDir, [{ name: TOPIC, queues: 2, type: "DELAY" }]);
  confFile = join(dir, "broker.conf");
  writeProperties(confFile, { ...E2E_BROKER_CONF, recallMessageEnable: "true" });
  rmq = await startRmqLocal({ storeDir, confFile });
});

afterEach(async () => {
  await clients.stopAll(true);
});

afterAll(async () => {
  const code = await stopLocalAndClients(clients, rmq, dir);
  if (code !== undefined) expect(code).toBe(0);
});

function server(): LocalProcess {
  if (rmq === undefined) throw new Error("rmq local is not running");
  return rmq;
}

function producer(): Promise<Producer> {
  return clients.start(
    new Producer({ endpoints: server().endpoints, namespace: "", topics: [TOPIC], logger }),
  );
}

function consumer(group: string): Promise<SimpleConsumer> {
  return clients.start(
    new SimpleConsumer({
      endpoints: server().endpoints,
      namespace: "",
      consumerGroup: group,
      subscriptions: new Map([[TOPIC, "*"]]),
      awaitDuration: 1000,
      logger,
    }),
  );
}

describe("delay messages", () => {
  it("a 3 s delay is not delivered before 3 s and is delivered within 1.5 s after; a recalled one never", async () => {
    const c = await consumer("g-delay");
    await receiveUntil(c, () => false, { timeoutMs: 300, invisibleMs: 10_000 });
    const p = await producer();
    const sentAt = Date.now();
    const due = new Date(sentAt + 3000);
    await p.send({ topic: TOPIC, body: Buffer.from("in-3s"), deliveryTimestamp: due });
    const recalled = await p.send({ topic: TOPIC, body: Buffer.from("recalled"), deliveryTimestamp: due });
    expect(recalled.recallHandle).toBeTruthy();
    const recall = await p.recallMessage(TOPIC, recalled.recallHandle as string);
    expect(recall.messageId).toBe(recalled.messageId);
    const got = await receiveUntil(c, (r) => r.length >= 1, { timeoutMs: 10_000, invisibleMs: 10_000 });
    const arrivedAt = Date.now();
    expect(got.map(bodyText)).toEqual(["in-3s"]);
    expect(arrivedAt).toBeGreaterThanOrEqual(due.getTime());
    expect(arrivedAt - due.getTime()).toBeLessThanOrEqual(1500);
    expect(got[0]?.deliveryTimestamp?.getTime()).toBe(due.getTime());
    for (const m of got) await c.ack(m);
    // The recalled message never arrives, not after its due time either.
    const later = await receiveUntil(c, () => false, { timeoutMs: 2500, invisibleMs: 10_000 });
    expect(later.map(bodyText)).toEqual([]);
  }, 30_000);

  it("a delivery time beyond the limit is refused with ILLEGAL_DELIVERY_TIME", async () => {
    const p = await producer();
    await expect(
      p.send({
        topic: TOPIC,
        body: Buffer.from("too-far"),
        deliveryTimestamp: new Date(Date.now() + 4 * 86_400_000),
      }),
    ).rejects.toMatchObject({ code: Code.ILLEGAL_DELIVERY_TIME });
  });

  it("a message due while the server is down arrives after the restart, once", async () => {
    const p = await producer();
    const due = new Date(Date.now() + 2000);
    await p.send({ topic: TOPIC, body: Buffer.from("due-while-down"), deliveryTimestamp: due });
    await clients.stopAll(true);
    await new Promise((r) => setTimeout(r, SDK_STREAM_SETTLE_MS));
    const { signal } = await server().stop("SIGKILL");
    expect(signal).toBe("SIGKILL");
    rmq = undefined;
    // Down past the due time.
    await new Promise((r) => setTimeout(r, Math.max(0, due.getTime() - Date.now()) + 1000));
    rmq = await startRmqLocal({ storeDir, confFile });
    const c = await consumer("g-delay-restart");
    const got = await receiveUntil(c, (r) => r.some((m) => bodyText(m) === "due-while-down"), {
      timeoutMs: 10_000,
      invisibleMs: 10_000,
    });
    for (const m of got) await c.ack(m);
    const more = await receiveUntil(c, () => false, { timeoutMs: 2000, invisibleMs: 10_000 });
    expect([...got, ...more].map(bodyText).filter((b) => b === "due-while-down")).toEqual(["due-while-down"]);
  }, 40_000);
});
