// End to end with the official Node SDK against a real `rmq local` child process: transactional
// messages. Commit delivers once, rollback never; a transaction nobody ends is checked through the
// producer's Telemetry stream (RecoverOrphanedTransactionCommand) and the checker's answer applies;
// after kill -9 and a restart, a pending half message is still checked.
//
// broker.conf shortens the upstream check timing (transactionTimeOut 6 s, interval 30 s) so the
// test runs in seconds.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type MessageView, Producer, SimpleConsumer } from "rocketmq-client-nodejs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, TransactionResolution } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
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
  waitFor,
  writeProperties,
  writeTypedTopics,
} from "./fixtures/e2e-local.ts";

const TOPIC = "tx-topic";
const sdkErrors: unknown[][] = [];
const logger = quietSdkLogger(sdkErrors);
let dir: string;
let storeDir: string;
let confFile: string;
let rmq: LocalProcess | undefined;
const clients = new SdkClients();

/** The checker's answers by message body; anything else stays undecided (UNSPECIFIED). */
const answers = new Map<string, TransactionResolution>();
const checked: Array<{ body: string; messageId: string }> = [];
const checker = {
  async check(m: MessageView) {
    checked.push({ body: bodyText(m), messageId: m.messageId });
    return (answers.get(bodyText(m)) ?? TransactionResolution.TRANSACTION_RESOLUTION_UNSPECIFIED) as never;
  },
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "e2e-tx-"));
  storeDir = join(dir, "store");
  writeTypedTopics(storeDir, [{ name: TOPIC, queues: 2, type: "TRANSACTION" }]);
  confFile = join(dir, "broker.conf");
  writeProperties(confFile, {
    ...E2E_BROKER_CONF,
    transactionTimeOut: "3000",
    transactionCheckInterval: "500",
    transactionCheckMax: "30",
  });
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
    new Producer({ endpoints: server().endpoints, namespace: "", topics: [TOPIC], checker, logger }),
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

async function sendInTransaction(p: Producer, body: string) {
  const tx = p.beginTransaction();
  const receipt = await p.send({ topic: TOPIC, tag: "tx", body: Buffer.from(body) }, tx);
  expect(receipt.transactionId).toBeTruthy();
  return { tx, receipt };
}

/** Everything the group receives within `ms` (acked as it arrives). */
async function drain(c: SimpleConsumer, ms: number): Promise<string[]> {
  const got = await receiveUntil(c, () => false, { timeoutMs: ms, invisibleMs: 20_000 });
  for (const m of got) await c.ack(m);
  return got.map(bodyText);
}

describe("transactional messages", () => {
  it("commit delivers the message once; rollback never; ending twice is refused", async () => {
    const c = await consumer("g-tx-end");
    await drain(c, 300);
    const p = await producer();
    const committed = await sendInTransaction(p, "commit-me");
    const rolledBack = await sendInTransaction(p, "roll-me-back");
    // Half messages are invisible until committed.
    expect(await drain(c, 1200)).toEqual([]);
    await committed.tx.commit();
    await rolledBack.tx.rollback();
    const got = await receiveUntil(c, (r) => r.length >= 1, { timeoutMs: 10_000, invisibleMs: 20_000 });
    expect(got.map(bodyText)).toEqual(["commit-me"]);
    expect(got[0]?.messageId).toBe(committed.receipt.messageId);
    for (const m of got) await c.ack(m);
    await expect(committed.tx.commit()).rejects.toMatchObject({ code: Code.INVALID_TRANSACTION_ID });
    expect(await drain(c, 3000)).toEqual([]);
    // Neither was checked: both were ended before transactionTimeOut.
    expect(checked.filter((x) => x.body === "commit-me" || x.body === "roll-me-back")).toEqual([]);
  }, 30_000);

  it("an orphaned transaction is checked through the producer and the checker's answer is applied", async () => {
    const c = await consumer("g-tx-orphan");
    await drain(c, 300);
    answers.set("orphan-commit", TransactionResolution.COMMIT);
    answers.set("orphan-rollback", TransactionResolution.ROLLBACK);
    const p = await producer();
    const a = await sendInTransaction(p, "orphan-commit");
    await sendInTransaction(p, "orphan-rollback");
    await waitFor(
      () =>
        checked.some((x) => x.body === "orphan-commit") && checked.some((x) => x.body === "orphan-rollback"),
      15_000,
      "both orphans checked",
    );
    expect(checked.find((x) => x.body === "orphan-commit")?.messageId).toBe(a.receipt.messageId);
    const got = await receiveUntil(c, (r) => r.length >= 1, { timeoutMs: 10_000, invisibleMs: 20_000 });
    expect(got.map(bodyText)).toEqual(["orphan-commit"]);
    for (const m of got) await c.ack(m);
    // Resolved transactions are not checked again, and nothing else arrives.
    const checksSoFar = checked.length;
    expect(await drain(c, 2500)).toEqual([]);
    expect(checked.length).toBe(checksSoFar);
  }, 40_000);

  it("after kill -9 and a restart, a pending half message is still checked and committed", async () => {
    const p = await producer();
    await sendInTransaction(p, "survivor");
    await clients.stop(p);
    // The SDK's half-closed Telemetry stream completes before the server dies (else grpc-js reports ECONNRESET).
    await new Promise((r) => setTimeout(r, SDK_STREAM_SETTLE_MS));
    const { signal } = await server().stop("SIGKILL");
    expect(signal).toBe("SIGKILL");
    rmq = undefined;
    rmq = await startRmqLocal({ storeDir, confFile });
    answers.set("survivor", TransactionResolution.COMMIT);
    const c = await consumer("g-tx-restart");
    await producer();
    await waitFor(
      () => checked.some((x) => x.body === "survivor"),
      20_000,
      "the half message checked after restart",
    );
    const got = await receiveUntil(c, (r) => r.some((m) => bodyText(m) === "survivor"), {
      timeoutMs: 10_000,
      invisibleMs: 20_000,
    });
    expect(got.map(bodyText).filter((b) => b === "survivor")).toEqual(["survivor"]);
  }, 60_000);
});
