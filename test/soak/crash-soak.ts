// `npm run soak -- [--minutes N] [--seed N] [--fifo | --delay | --tx | --dlq]`: kill -9 `rmq local` again and again under load
// from the official Node SDK, and check after every restart what the broker promises across crashes:
//   1. every send the SDK saw acknowledged is delivered to the consumer group (at least once);
//   2. a message whose ack the SDK saw succeed is never delivered again — not after the ack, not after
//      a crash (the group's progress and the pop acks are persisted before the ack is answered);
//   3. with --fifo (a FIFO topic, an orderly group, messages in 32 message groups): a message is
//      delivered only once every earlier acknowledged send of its group is acked — or earlier in the
//      same batch (an ack whose outcome the crash hid counts as acked: the broker may have taken it);
//   4. with --delay (a DELAY topic, each message due 0.5–4 s after its send): no message is delivered
//      before its due time, less the timer's 1 s precision (timerPrecisionMs, rounded down as upstream);
//   5. with --tx (a TRANSACTION topic): each half message is meant to be committed or rolled back (the
//      decision is in its body); the producer commits, rolls back or leaves it to the broker's check,
//      whose checker answers from the body. Every send meant for commit is delivered (1.), none meant
//      for rollback ever is, whatever the crashes interrupted;
//   6. with --dlq (retryMaxTimes 1): a fifth of the messages are never acked ("poison"); each must
//      reach `%DLQ%<group>` (read by a second group) after its second delivery, and no message whose
//      ack succeeded may be there.
// Each round starts `rmq local` on the same store, runs producers and a SimpleConsumer (acking most of
// what it receives, leaving the rest to come back after the invisible time) for a random 2–6 s, then
// SIGKILLs the process. At the end one more start drains the group and the process must stop on
// SIGTERM with exit 0. Random choices come from --seed (printed), so a failing run can be repeated
// as far as the timing of a real process allows. Exit 0 when both hold, 1 with the violations.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type MessageView, Producer, SimpleConsumer } from "rocketmq-client-nodejs";
import { TransactionResolution } from "../../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  E2E_BROKER_CONF,
  type LocalProcess,
  quietSdkLogger,
  SDK_STREAM_SETTLE_MS,
  startRmqLocal,
  writeProperties,
  writeStoreConfig,
  writeTypedTopics,
} from "../fixtures/e2e-local.ts";
import { mulberry32 } from "../fixtures/store-crash-plan.ts";

const TOPIC = "SoakTopic";
const GROUP = "soak-group";
/** --dlq: the main group's dead letter topic, read by a group of its own; share of poison sends. */
const DLQ_TOPIC = `%DLQ%${GROUP}`;
const DLQ_READER_GROUP = "soak-dlq-reader";
const POISON_SHARE = 0.2;
/** --fifo: message groups, spread over the producers (each sends its groups' messages in order). */
const MESSAGE_GROUPS = 32;
const PRODUCERS = 4;
const CONSUMER_LOOPS = 2;
const RECEIVE_BATCH = 16;
const INVISIBLE_MS = 4000;
/** Share of received messages the consumer acks; the rest come back after INVISIBLE_MS. */
const ACK_SHARE = 0.85;
const ROUND_MIN_MS = 2000;
const ROUND_MAX_MS = 6000;
/** --delay: due times after the send. */
const DELAY_MIN_MS = 500;
const DELAY_MAX_MS = 4000;
/** --delay: a message may come this much before its due time (timerPrecisionMs, plus clock reading). */
const EARLY_TOLERANCE_MS = 1050;
/** --fifo: deliveries of one message before it goes to the DLQ (never reached at ACK_SHARE in practice). */
const FIFO_MAX_RETRIES = 64;
/** How long the final drain may take to see every acknowledged send. */
const DRAIN_TIMEOUT_MS = 120_000;
/** After the drain, receive this long more: nothing acked may show up. */
const QUIET_TAIL_MS = 3 * INVISIBLE_MS;

interface GroupLog {
  /** Sequence numbers of the group's acknowledged sends, in send order. */
  sent: number[];
  /** Sequence numbers whose ack succeeded or whose ack outcome is unknown. */
  acked: Set<number>;
  /** Index in `sent` of the first one not in `acked`. */
  next: number;
}

interface Ledger {
  fifo: boolean;
  delay: boolean;
  tx: boolean;
  /** --tx: half messages meant to be rolled back (never to be delivered). */
  rolledBack: Set<string>;
  dlq: boolean;
  /** --dlq: sends never to be acked, which must end in the DLQ. */
  poison: Set<string>;
  /** --dlq: messageIds read from the DLQ. */
  dlqSeen: Set<string>;
  /** messageId of every send the SDK saw acknowledged. */
  sent: Set<string>;
  /** --fifo: per message group. */
  groups: Map<string, GroupLog>;
  /** messageId → when (ms) its ack was seen to succeed. */
  acked: Map<string, number>;
  /** Every messageId delivered at least once. */
  delivered: Set<string>;
  violations: string[];
  deliveries: number;
}

function record(ledger: Ledger, messageId: string, round: string): void {
  ledger.deliveries++;
  ledger.delivered.add(messageId);
  const at = ledger.acked.get(messageId);
  if (at !== undefined)
    ledger.violations.push(
      `${round}: ${messageId} delivered again after its ack succeeded (${Date.now() - at} ms ago)`,
    );
}

/** Per message group: the next sequence number to send (survives rounds: the order continues). */
const nextSeq = new Map<string, number>();

function groupLog(ledger: Ledger, g: string): GroupLog {
  let log = ledger.groups.get(g);
  if (log === undefined) {
    log = { sent: [], acked: new Set(), next: 0 };
    ledger.groups.set(g, log);
  }
  return log;
}

/**
 * Records a received batch and acks most of it (all of it with `random` undefined). FIFO: the batch is
 * taken in order; once a group's message is left un-acked, its later ones in the batch are too.
 */
async function consumeBatch(
  consumer: SimpleConsumer,
  batch: MessageView[],
  ledger: Ledger,
  random: (() => number) | undefined,
  name: string,
): Promise<void> {
  const skipped = new Set<string>();
  for (const m of batch) {
    record(ledger, m.messageId, name);
    if (ledger.rolledBack.has(m.messageId))
      ledger.violations.push(`${name}: ${m.messageId} delivered though its transaction was rolled back`);
    if (ledger.delay) {
      const due = Number(m.body.toString().split("@")[1]);
      if (Date.now() < due - EARLY_TOLERANCE_MS)
        ledger.violations.push(`${name}: ${m.messageId} delivered ${due - Date.now()} ms before it was due`);
    }
    if (ledger.dlq && m.body.toString().endsWith("-P")) continue; // poison: never acked
    let g: string | undefined;
    let k = -1;
    if (ledger.fifo) {
      const [group, seqText] = m.body.toString().split(":");
      g = group as string;
      k = Number(seqText);
      const log = groupLog(ledger, g);
      while (log.next < log.sent.length && log.acked.has(log.sent[log.next] as number)) log.next++;
      const first = log.sent[log.next];
      if (first !== undefined && first < k && !skipped.has(g))
        ledger.violations.push(
          `${name}: ${g}:${k} delivered while ${g}:${first} (acknowledged send) is not acked`,
        );
      if (skipped.has(g)) continue;
    }
    if (random !== undefined && random() >= ACK_SHARE) {
      if (g !== undefined) skipped.add(g);
      continue;
    }
    try {
      await consumer.ack(m);
      ledger.acked.set(m.messageId, Date.now());
      if (g !== undefined) groupLog(ledger, g).acked.add(k);
    } catch {
      // The ack may or may not have reached the broker: for the order it counts as acked, for
      // "never again" it does not count.
      if (g !== undefined) {
        groupLog(ledger, g).acked.add(k);
        skipped.add(g);
      }
    }
  }
}

async function round(
  rmq: LocalProcess,
  ledger: Ledger,
  random: () => number,
  runMs: number,
  name: string,
): Promise<void> {
  const sdkErrors: unknown[][] = [];
  const logger = quietSdkLogger(sdkErrors);
  const producer = new Producer({
    endpoints: rmq.endpoints,
    namespace: "",
    topics: [TOPIC],
    logger,
    ...(ledger.tx ? { checker: txChecker } : {}),
  });
  const consumer = groupConsumer(rmq, logger);
  await producer.startup();
  await consumer.startup();
  const until = Date.now() + runMs;
  let seq = 0;
  const produce = async (p: number): Promise<void> => {
    while (Date.now() < until) {
      if (ledger.tx) {
        // C: meant to be committed, R: rolled back; how it ends: by the producer, or by the check.
        const commit = random() < 0.5;
        const end = random();
        const tx = producer.beginTransaction();
        let id: string;
        try {
          id = (
            await producer.send(
              { topic: TOPIC, body: Buffer.from(`${name}-${seq++}-${commit ? "C" : "R"}`) },
              tx,
            )
          ).messageId;
        } catch {
          continue; // no half message known to exist
        }
        if (commit) ledger.sent.add(id);
        else ledger.rolledBack.add(id);
        try {
          if (end < 0.4) await (commit ? tx.commit() : tx.rollback());
          // else: left open, for the broker's check
        } catch {
          // the check decides
        }
        continue;
      }
      if (ledger.delay) {
        const due = Date.now() + DELAY_MIN_MS + Math.floor(random() * (DELAY_MAX_MS - DELAY_MIN_MS));
        try {
          const r = await producer.send({
            topic: TOPIC,
            body: Buffer.from(`${name}-${seq++}@${due}`),
            deliveryTimestamp: new Date(due),
          });
          ledger.sent.add(r.messageId);
        } catch {
          // outcome unknown
        }
        continue;
      }
      if (!ledger.fifo) {
        const poison = ledger.dlq && random() < POISON_SHARE;
        try {
          const r = await producer.send({
            topic: TOPIC,
            body: Buffer.from(`${name}-${seq++}${ledger.dlq ? (poison ? "-P" : "-K") : ""}`),
          });
          ledger.sent.add(r.messageId);
          if (poison) ledger.poison.add(r.messageId);
        } catch {
          // outcome unknown (the process may be dying): neither promised nor checked
        }
        continue;
      }
      // One loop owns each group and sends its messages one after the other: the send order.
      const g = `g${p + PRODUCERS * Math.floor(random() * (MESSAGE_GROUPS / PRODUCERS))}`;
      const log = groupLog(ledger, g);
      const k = nextSeq.get(g) ?? 0;
      nextSeq.set(g, k + 1);
      try {
        const r = await producer.send({ topic: TOPIC, messageGroup: g, body: Buffer.from(`${g}:${k}`) });
        ledger.sent.add(r.messageId);
        log.sent.push(k);
      } catch {
        // outcome unknown
      }
    }
  };
  const dlqReader = ledger.dlq ? dlqConsumer(rmq, logger) : undefined;
  await dlqReader?.startup();
  const readDlq = async (): Promise<void> => {
    while (dlqReader !== undefined && Date.now() < until) {
      try {
        await consumeDlq(dlqReader, ledger, name);
      } catch {
        // promises nothing
      }
    }
  };
  const consume = async (): Promise<void> => {
    while (Date.now() < until) {
      try {
        await consumeBatch(
          consumer,
          await consumer.receive(RECEIVE_BATCH, INVISIBLE_MS),
          ledger,
          random,
          name,
        );
      } catch {
        // a receive that failed promises nothing
      }
    }
  };
  await Promise.all([
    ...Array.from({ length: PRODUCERS }, (_, p) => produce(p)),
    // FIFO: one receive loop, so the ack of a group's message is answered before its next one can come.
    ...Array.from({ length: ledger.fifo ? 1 : CONSUMER_LOOPS }, consume),
    readDlq(),
  ]);
  await Promise.allSettled([producer.shutdown(), consumer.shutdown(), dlqReader?.shutdown()]);
  await new Promise((r) => setTimeout(r, SDK_STREAM_SETTLE_MS));
}

function simpleConsumer(
  rmq: LocalProcess,
  logger: ReturnType<typeof quietSdkLogger>,
  group: string,
  topic: string,
): SimpleConsumer {
  return new SimpleConsumer({
    endpoints: rmq.endpoints,
    namespace: "",
    consumerGroup: group,
    subscriptions: new Map([[topic, "*"]]),
    awaitDuration: 1000,
    logger,
  });
}

/** The checked group's consumer. */
function groupConsumer(rmq: LocalProcess, logger: ReturnType<typeof quietSdkLogger>): SimpleConsumer {
  return simpleConsumer(rmq, logger, GROUP, TOPIC);
}

/** --dlq: a consumer of the main group's DLQ, in a group of its own. */
function dlqConsumer(rmq: LocalProcess, logger: ReturnType<typeof quietSdkLogger>): SimpleConsumer {
  return simpleConsumer(rmq, logger, DLQ_READER_GROUP, DLQ_TOPIC);
}

/** --dlq: reads and acks one batch of the DLQ. */
async function consumeDlq(reader: SimpleConsumer, ledger: Ledger, name: string): Promise<void> {
  for (const m of await reader.receive(RECEIVE_BATCH, INVISIBLE_MS)) {
    ledger.dlqSeen.add(m.messageId);
    if (ledger.acked.has(m.messageId))
      ledger.violations.push(`${name}: ${m.messageId} went to the DLQ though its ack had succeeded`);
    await reader.ack(m).catch(() => {});
  }
}

/** --tx: the broker's check of an open transaction is answered from the decision in the body. */
const txChecker = {
  async check(m: MessageView) {
    return (
      m.body.toString().endsWith("-C") ? TransactionResolution.COMMIT : TransactionResolution.ROLLBACK
    ) as never;
  },
};

async function drain(rmq: LocalProcess, ledger: Ledger): Promise<void> {
  const logger = quietSdkLogger([]);
  // --tx: a producer of the topic answers the checks of transactions still open.
  const checkerProducer = ledger.tx
    ? new Producer({ endpoints: rmq.endpoints, namespace: "", topics: [TOPIC], logger, checker: txChecker })
    : undefined;
  await checkerProducer?.startup();
  const consumer = groupConsumer(rmq, logger);
  await consumer.startup();
  const dlqReader = ledger.dlq ? dlqConsumer(rmq, logger) : undefined;
  await dlqReader?.startup();
  const missing = () => [
    ...[...ledger.sent].filter((id) => !ledger.delivered.has(id)),
    ...[...ledger.poison].filter((id) => !ledger.dlqSeen.has(id)),
  ];
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  let quietUntil = Number.POSITIVE_INFINITY;
  const draining = () => Date.now() < Math.min(deadline, quietUntil);
  // The group and its DLQ reader each in a loop of their own (an empty DLQ holds its receive a second).
  const mainLoop = async (): Promise<void> => {
    while (draining())
      await consumeBatch(
        consumer,
        await consumer.receive(RECEIVE_BATCH, INVISIBLE_MS),
        ledger,
        undefined,
        "drain",
      );
  };
  const dlqLoop = async (): Promise<void> => {
    while (dlqReader !== undefined && draining()) await consumeDlq(dlqReader, ledger, "drain");
  };
  const watch = async (): Promise<void> => {
    while (draining()) {
      if (quietUntil === Number.POSITIVE_INFINITY && missing().length === 0)
        quietUntil = Date.now() + QUIET_TAIL_MS;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await Promise.all([mainLoop(), dlqLoop(), watch()]);
  for (const id of missing())
    ledger.violations.push(
      ledger.poison.has(id)
        ? `never-acked send ${id} did not reach the DLQ`
        : `acknowledged send ${id} was never delivered`,
    );
  await consumer.shutdown();
  await dlqReader?.shutdown();
  await checkerProducer?.shutdown();
  await new Promise((r) => setTimeout(r, SDK_STREAM_SETTLE_MS));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string" },
      seed: { type: "string" },
      fifo: { type: "boolean" },
      delay: { type: "boolean" },
      tx: { type: "boolean" },
      dlq: { type: "boolean" },
    },
  });
  const tx = values.tx === true;
  const dlq = values.dlq === true;
  const fifo = values.fifo === true;
  const delay = values.delay === true;
  if (Number(fifo) + Number(delay) + Number(tx) + Number(dlq) > 1)
    throw new Error("--fifo, --delay, --tx, --dlq: one of them");
  const type = fifo ? "FIFO" : delay ? "DELAY" : tx ? "TRANSACTION" : "NORMAL";
  const minutes = Number(values.minutes ?? "3");
  const seed = Number(values.seed ?? String(Date.now() % 1_000_000));
  if (!Number.isFinite(minutes) || minutes <= 0)
    throw new Error(`--minutes must be positive, got ${values.minutes}`);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const random = mulberry32(seed);
  const dir = mkdtempSync(join(tmpdir(), "rmq-soak-"));
  const storeDir = join(dir, "store");
  const confFile = join(dir, "broker.conf");
  const compileCacheDir = join(dir, "compile-cache");
  writeProperties(confFile, {
    ...E2E_BROKER_CONF,
    autoCreateTopicEnable: "false",
    // --tx: open transactions are checked after 3 s (upstream 6 s), every 0.5 s (upstream 30 s).
    transactionTimeOut: "3000",
    transactionCheckInterval: "500",
  });
  writeTypedTopics(storeDir, [
    { name: TOPIC, queues: 4, type },
    ...(dlq ? [{ name: DLQ_TOPIC, queues: 1, type: "NORMAL" }] : []),
  ]);
  if (fifo || dlq)
    writeStoreConfig(storeDir, "subscriptionGroup.json", {
      subscriptionGroupTable: {
        [GROUP]: {
          groupName: GROUP,
          consumeMessageOrderly: fifo,
          retryMaxTimes: fifo ? FIFO_MAX_RETRIES : 1,
          // Retries come back after 100 ms (the invisible time is what spaces deliveries here).
          groupRetryPolicy: {
            type: "EXPONENTIAL",
            exponentialRetryPolicy: { initial: 100, max: 100, multiplier: 1 },
          },
        },
      },
      forbiddenTable: {},
      dataVersion: { stateVersion: 0, timestamp: Date.now(), counter: 1 },
    });
  console.log(`soak: seed ${seed}, ${minutes} min, ${type} topic, store ${storeDir}`);
  const ledger: Ledger = {
    fifo,
    delay,
    tx,
    rolledBack: new Set(),
    dlq,
    poison: new Set(),
    dlqSeen: new Set(),
    sent: new Set(),
    groups: new Map(),
    acked: new Map(),
    delivered: new Set(),
    violations: [],
    deliveries: 0,
  };
  const end = Date.now() + minutes * 60_000;
  let rounds = 0;
  let keep = false;
  try {
    while (Date.now() < end) {
      const rmq = await startRmqLocal({ storeDir, confFile, compileCacheDir });
      const runMs = ROUND_MIN_MS + Math.floor(random() * (ROUND_MAX_MS - ROUND_MIN_MS));
      await round(rmq, ledger, random, runMs, `r${rounds}`);
      await rmq.stop("SIGKILL");
      rounds++;
      console.log(
        `round ${rounds}: ${runMs} ms, sent ${ledger.sent.size}, delivered ${ledger.delivered.size} (${ledger.deliveries} deliveries), acked ${ledger.acked.size}, violations ${ledger.violations.length}`,
      );
    }
    const rmq = await startRmqLocal({ storeDir, confFile, compileCacheDir });
    await drain(rmq, ledger);
    const { code } = await rmq.stop("SIGTERM");
    if (code !== 0) ledger.violations.push(`rmq local exited with ${code} on SIGTERM after the drain`);
    console.log(
      `soak: ${rounds} kill -9 rounds; ${ledger.sent.size} acknowledged sends all delivered: ${ledger.violations.every((v) => !v.startsWith("acknowledged send"))}; ${ledger.acked.size} acks; ${ledger.violations.length} violations`,
    );
    for (const v of ledger.violations.slice(0, 20)) console.log(`  VIOLATION ${v}`);
    keep = ledger.violations.length > 0;
    return keep ? 1 : 0;
  } finally {
    if (keep) console.log(`store kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
