// End to end with the official Node SDK against `rmq local` child processes over one store: with
// autoCreateTopicEnable=false an unknown topic is refused; `kill -9` after acknowledged sends and
// acknowledged consumption loses neither (restart: every sent message is there, every acked one
// stays consumed); SIGTERM while a consumer long-polls exits 0 promptly and leaves a clean store.
//
// The topic is created before the first start through `{store}/config/topics.json` (upstream's file).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MessageView, Producer, SimpleConsumer } from "rocketmq-client-nodejs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  E2E_BROKER_CONF,
  type LocalProcess,
  quietSdkLogger,
  receiveUntil,
  SDK_STREAM_SETTLE_MS,
  SdkClients,
  startRmqLocal,
  writeProperties,
  writeStoreConfig,
} from "./fixtures/e2e-local.ts";

const TOPIC = "E2eDurable";
const GROUP = "g-durable";
const SENT = 30;
const ACKED = 15;
/** A SIGTERM'd process must be gone well before its 30 s shutdown grace and the 15 s poll it holds. */
const PROMPT_EXIT_MS = 10_000;

const sdkErrors: unknown[][] = [];
const logger = quietSdkLogger(sdkErrors);
const clients = new SdkClients();
let dir: string;
let storeDir: string;
let confFile: string;
let compileCacheDir: string;
let rmq: LocalProcess | undefined;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "e2e-lifecycle-"));
  storeDir = join(dir, "store");
  compileCacheDir = join(dir, "compile-cache");
  confFile = join(dir, "broker.conf");
  writeProperties(confFile, {
    ...E2E_BROKER_CONF,
    autoCreateTopicEnable: "false",
    grpcClientConsumerMaxLongPollingTimeoutMillis: "20000",
  });
  writeStoreConfig(storeDir, "topics.json", {
    topicConfigTable: {
      [TOPIC]: { topicName: TOPIC, readQueueNums: 4, writeQueueNums: 4, perm: 6 },
    },
    dataVersion: { stateVersion: 0, timestamp: Date.now(), counter: 1 },
  });
});

afterAll(async () => {
  await clients.stopAll(true);
  if (rmq !== undefined) await rmq.stop("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

function consumer(group: string, awaitDuration = 1000): Promise<SimpleConsumer> {
  return clients.start(
    new SimpleConsumer({
      endpoints: (rmq as LocalProcess).endpoints,
      namespace: "",
      consumerGroup: group,
      subscriptions: new Map([[TOPIC, "*"]]),
      awaitDuration,
      logger,
    }),
  );
}

function recovery(p: LocalProcess): { cleanShutdown?: boolean } | undefined {
  return p.logs("store recovered")[0]?.recovery as { cleanShutdown?: boolean } | undefined;
}

describe("rmq local across kill -9 and SIGTERM", () => {
  const sent: string[] = [];
  const acked = new Set<string>();

  it("refuses an unknown topic when autoCreateTopicEnable is off", async () => {
    rmq = await startRmqLocal({ storeDir, confFile, compileCacheDir });
    const p = await clients.start(new Producer({ endpoints: rmq.endpoints, namespace: "", logger }));
    await expect(p.send({ topic: "NoSuchTopic", body: Buffer.from("x") })).rejects.toMatchObject({
      code: Code.TOPIC_NOT_FOUND,
    });
    // The SDK logs the refused route query as an error; expected here.
    expect(sdkErrors.every((e) => e.includes("NoSuchTopic"))).toBe(true);
    sdkErrors.length = 0;
  });

  it("keeps every acknowledged send and every acknowledged consumption across kill -9", async () => {
    const first = rmq as LocalProcess;
    const p = await clients.start(
      new Producer({ endpoints: first.endpoints, namespace: "", topics: [TOPIC], logger }),
    );
    for (let i = 0; i < SENT; i++)
      sent.push((await p.send({ topic: TOPIC, body: Buffer.from(`durable-${i}`) })).messageId);

    const c = await consumer(GROUP);
    const received = await receiveUntil(c, (got) => got.length >= ACKED, {
      timeoutMs: 10_000,
      invisibleMs: 5000,
    });
    for (const m of received.slice(0, ACKED)) {
      await c.ack(m);
      acked.add(m.messageId);
    }
    expect(acked.size).toBe(ACKED);
    // Anything received beyond ACKED stays un-acked (in flight) when the process dies.
    await clients.stopAll();
    // The SDK half-closes its Telemetry streams at shutdown and drops their listeners: a reset
    // before the server has finished them would be an uncaught error in this test process.
    await new Promise((r) => setTimeout(r, SDK_STREAM_SETTLE_MS));
    const { signal } = await first.stop("SIGKILL");
    expect(signal).toBe("SIGKILL");

    rmq = await startRmqLocal({ storeDir, confFile, compileCacheDir });
    expect(recovery(rmq)?.cleanShutdown).toBe(false);
    const again = await consumer(GROUP);
    const want = sent.filter((id) => !acked.has(id));
    const seen: MessageView[] = [];
    const got = new Set<string>();
    const deadline = Date.now() + 20_000;
    while (want.some((id) => !got.has(id)) && Date.now() < deadline) {
      for (const m of await again.receive(32, 10_000)) {
        seen.push(m);
        got.add(m.messageId);
        await again.ack(m);
      }
    }
    // and nothing acked before the crash comes back later either
    const late = await receiveUntil(again, () => false, { timeoutMs: 2500, invisibleMs: 10_000 });
    seen.push(...late);
    expect([...got].sort()).toEqual([...want].sort());
    expect(seen.filter((m) => acked.has(m.messageId)).map((m) => m.messageId)).toEqual([]);
    expect(sdkErrors).toEqual([]);
    await clients.stopAll();
  });

  it("exits 0 promptly on SIGTERM while a consumer long-polls, leaving a clean, complete store", async () => {
    const second = rmq as LocalProcess;
    const poller = await consumer("g-poller", 15_000);
    // A new group starts at each queue's first message (the queues start at offset 0): drain them so the next receive is held.
    await receiveUntil(poller, (got) => got.length >= SENT, { timeoutMs: 10_000, invisibleMs: 60_000 });
    const held = poller.receive(32, 60_000).then(
      (messages) => ({ messages }),
      (error: unknown) => ({ error }),
    );
    await new Promise((r) => setTimeout(r, 500));
    const started = Date.now();
    const { code } = await second.stop("SIGTERM");
    const tookMs = Date.now() - started;
    expect(code).toBe(0);
    expect(tookMs).toBeLessThan(PROMPT_EXIT_MS);
    expect(second.logs("stopped")).toHaveLength(1);
    const outcome = await held;
    expect("messages" in outcome ? outcome.messages : []).toEqual([]);
    await clients.stopAll(true);
    sdkErrors.length = 0;

    rmq = await startRmqLocal({ storeDir, confFile, compileCacheDir });
    expect(recovery(rmq)?.cleanShutdown).toBe(true);
    // Everything sent before the crash is still there for a group that never read the topic.
    const fresh = await consumer("g-fresh");
    const all = await receiveUntil(fresh, (got) => new Set(got.map((m) => m.messageId)).size >= SENT, {
      timeoutMs: 10_000,
      invisibleMs: 10_000,
    });
    expect([...new Set(all.map((m) => m.messageId))].sort()).toEqual([...sent].sort());
    // g-durable finished everything before the SIGTERM: nothing is left for it.
    const done = await consumer(GROUP);
    expect(await receiveUntil(done, () => false, { timeoutMs: 1500, invisibleMs: 10_000 })).toEqual([]);
    await clients.stopAll();
    const { code: lastCode } = await rmq.stop("SIGTERM");
    expect(lastCode).toBe(0);
    rmq = undefined;
  });
});
