// `node bench/timer.ts` — timer messages at rest: sends N timer messages (1 KiB, due in one hour)
// through the store the way the broker's send path does (transform, then putMessages in batches),
// waits until the timer has enqueued all of them into its timer log and wheel, then prints the
// resident memory after a full GC and the rates. The target: RSS < 200 MiB with 100,000 pending.
//
// Options: --count N (default 100000), --batch N (messages per putMessages, default 32),
//          --dir PATH (default a temp dir; removed afterwards).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createTopicConfigManager } from "../broker/metadata/topic-config-manager.ts";
import { defaultMessageStoreConfig } from "../broker/store/config.ts";
import { createMessageStore } from "../broker/store/message-store.ts";
import type { MessageInput } from "../broker/store/message-store-types.ts";
import { createTimerMessageStore } from "../broker/timer/timer-message-store.ts";

const MESSAGE_SIZE = 1024;
const DELAY_MS = 3_600_000;
const TOPIC = "BenchTimerTopic";
const MIB = 1024 * 1024;
/** Target from the brief: resident memory with 100k pending messages. */
const RSS_TARGET_MIB = 200;

interface Options {
  count: number;
  batch: number;
  dir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { count: 100_000, batch: 32, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--count") o.count = positiveInt(a, next());
    else if (a === "--batch") o.batch = positiveInt(a, next());
    else if (a === "--dir") o.dir = next();
    else throw new Error(`unknown option ${a} (known: --count N, --batch N, --dir PATH)`);
  }
  return o;
}

function positiveInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

/** A full GC, without needing --expose-gc on the command line. */
function fullGc(): void {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  gc();
  gc();
}

function mib(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "bench-timer-"));
  const storeHost = { address: "127.0.0.1", port: 10911 };
  const store = await createMessageStore(defaultMessageStoreConfig(dir), { storeHost });
  try {
    const topics = await createTopicConfigManager({
      storePathRootDir: dir,
      brokerClusterName: "BenchCluster",
      brokerName: "broker-bench",
      autoCreateTopicEnable: true,
      defaultTopicQueueNums: 8,
      clusterTopicEnable: true,
      brokerTopicEnable: true,
      traceTopicEnable: false,
      msgTraceTopicName: "RMQ_SYS_TRACE_TOPIC",
      reviveQueueNum: 8,
      timerWheelEnable: true,
    });
    const timer = await createTimerMessageStore({
      store,
      topics,
      storePathRootDir: dir,
      brokerName: "broker-bench",
      storeHost,
    });
    timer.start();
    fullGc();
    const rssBefore = process.memoryUsage().rss;

    const body = Buffer.alloc(MESSAGE_SIZE, 0x61);
    const started = performance.now();
    for (let sent = 0; sent < o.count; ) {
      const n = Math.min(o.batch, o.count - sent);
      const batch: MessageInput[] = [];
      const now = Date.now();
      for (let i = 0; i < n; i++) {
        const input: MessageInput = {
          topic: TOPIC,
          queueId: (sent + i) % 8,
          flag: 0,
          body,
          properties: new Map([["TIMER_DELIVER_MS", String(now + DELAY_MS)]]),
          bornTimestamp: now,
          bornHost: storeHost,
          sysFlag: 0,
          reconsumeTimes: 0,
          preparedTransactionOffset: 0,
        };
        batch.push(timer.transform(input)?.message ?? input);
      }
      await store.putMessages(batch);
      sent += n;
    }
    const storedMs = performance.now() - started;
    while (timer.pendingCount() < o.count) await new Promise((r) => setTimeout(r, 5));
    const enqueuedMs = performance.now() - started;
    await timer.flush();
    fullGc();
    const mem = process.memoryUsage();

    const rate = (ms: number) => Math.round(o.count / (ms / 1000)).toLocaleString("en-US");
    console.log(`timer messages        ${o.count.toLocaleString("en-US")} x ${MESSAGE_SIZE} B, due in 1 h`);
    console.log(`stored (send path)    ${(storedMs / 1000).toFixed(2)} s  ${rate(storedMs)} msg/s`);
    console.log(`enqueued (timer log)  ${(enqueuedMs / 1000).toFixed(2)} s  ${rate(enqueuedMs)} msg/s`);
    console.log(`pending               ${timer.pendingCount().toLocaleString("en-US")}`);
    console.log(`RSS before sending    ${mib(rssBefore)} MiB`);
    console.log(
      `RSS after GC          ${mib(mem.rss)} MiB (target < ${RSS_TARGET_MIB} MiB: ${mem.rss < RSS_TARGET_MIB * MIB ? "met" : "NOT met"})`,
    );
    console.log(`JS heap used          ${mib(mem.heapUsed)} MiB, external ${mib(mem.external)} MiB`);
    await timer.shutdown();
  } finally {
    await store.shutdown();
    if (o.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
