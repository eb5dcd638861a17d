// `npm run bench:proxy`: the proxy's targets, end to end on this box. Starts `rmq local` (NameServer +
// Broker + Proxy in one process, fresh store in a temp dir, every port chosen by the OS), then runs
// in this process
//   1. `rmq bench producer` with 1 KiB messages, ONE message per SendMessage (what the SDKs send),
//      followed by the raw node:http2 unary ceiling at the same concurrency and connections;
//   2. the same producer with batches of 32 (for information, and to give step 3 a backlog worth
//      measuring);
//   3. `rmq bench consumer` draining exactly what steps 1 and 2 stored (acking each received batch
//      with one AckMessage; the SDKs ack one message per AckMessage), followed by the raw ceiling of
//      one node:http2 server stream of 1 KiB frames;
// and prints the targets: SendMessage RPC/s ≥ 60 % of raw unary rps, ReceiveMessage messages/s ≥ 50 %
// of raw stream frames/s. Each phase also prints how much CPU the benchmark client and `rmq local`
// used, since both share the box's cores with the raw probes' client and server.
//
// Before phase 1 the producer runs WARM_UP_SECONDS unmeasured, so that phase 1 does not also measure V8
// compiling rmq local's send path. On a shared VM the raw ceilings move by tens of percent between runs;
// --rounds N repeats phase 1 (producer, then the raw unary ceiling) N times and judges the median ratio.
//
//   node bench/proxy.ts [--duration 10] [--concurrency 64] [--connections 1] [--rounds 1]
//                       [--consumer-concurrency 8] [--raw-duration 5] [--flush async|sync] [--strict]
//
// Exit 0 when every phase ran (1 with --strict and a missed target); 1 when `rmq local` would not
// start or a phase failed (the temp dir with the store and the rmq local log is then kept).

import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { positiveInteger } from "../cli/bench/bench-options.ts";
import { addRawStreamCeiling, runConsumerBench } from "../cli/bench/consumer.ts";
import { addRawUnaryCeiling, type ProducerBenchResult, runProducerBench } from "../cli/bench/producer.ts";
import { median } from "./stats.ts";

/** SendMessage (batch 1) RPC/s must reach this share of the raw http2 unary ceiling. */
export const UNARY_SEND_TARGET_RATIO = 0.6;
/** ReceiveMessage messages/s must reach this share of the raw one-stream ceiling. */
export const RECEIVE_TARGET_RATIO = 0.5;
const MESSAGE_BYTES = 1024;
/** Phase 2: messages per SendMessage and senders. */
const FILL_BATCH = 32;
const FILL_CONCURRENCY = 8;
/** Linux reports /proc CPU times in USER_HZ ticks, which the kernel ABI fixes at 100 per second. */
const PROC_TICKS_PER_SECOND = 100;
/** How long `rmq local` may take to print its ready line. */
const LOCAL_START_TIMEOUT_MS = 60_000;
/** How long `rmq local` may take to drain after SIGTERM before it is killed. */
const LOCAL_STOP_TIMEOUT_MS = 20_000;
/** The consumer phase stops when the backlog is drained; this only bounds a broken run. */
const CONSUMER_MAX_SECONDS = 300;
/** Unmeasured producer seconds before phase 1. */
const WARM_UP_SECONDS = 2;
const TOPIC = "BenchProxyTopic";
const GROUP = "BenchProxyGroup";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

interface LocalProcess {
  pid: number;
  proxyPort: number;
  stop(): Promise<void>;
}

async function startLocal(
  storeDir: string,
  logPath: string,
  configFile: string | undefined,
): Promise<LocalProcess> {
  const args = [
    join(REPO, "cli", "rmq.ts"),
    "local",
    "--store",
    storeDir,
    "--namesrv-port",
    "0",
    "--proxy-port",
    "0",
    "--listen-port",
    "0",
    "--metrics-port",
    "0",
  ];
  if (configFile !== undefined) args.push("-c", configFile);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], cwd: REPO });
  const log = createWriteStream(logPath);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let timer: NodeJS.Timeout | undefined;
  try {
    const proxyPort = await new Promise<number>((resolvePort, reject) => {
      // Keep reading stdout for the whole run (a full pipe would stall the child's logger).
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        log.write(`${line}\n`);
        if (!line.includes("rmq local ready")) return;
        try {
          const port = Number((JSON.parse(line) as { proxyPort?: unknown }).proxyPort);
          if (Number.isInteger(port) && port > 0) resolvePort(port);
        } catch {
          // not a JSON log line
        }
      });
      void exited.then((code) =>
        reject(new Error(`rmq local exited with ${code} before it was ready (log: ${logPath})`)),
      );
      timer = setTimeout(
        () => reject(new Error(`rmq local not ready within ${LOCAL_START_TIMEOUT_MS} ms (log: ${logPath})`)),
        LOCAL_START_TIMEOUT_MS,
      );
    });
    return {
      pid: child.pid ?? 0,
      proxyPort,
      async stop() {
        child.kill("SIGTERM");
        const kill = setTimeout(() => child.kill("SIGKILL"), LOCAL_STOP_TIMEOUT_MS);
        const code = await exited;
        clearTimeout(kill);
        log.end();
        if (code !== 0) process.stderr.write(`rmq local exited with ${code} (log: ${logPath})\n`);
      },
    };
  } catch (error) {
    child.kill("SIGKILL");
    await exited;
    log.end();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** CPU seconds a process has used so far (user + system), or NaN where /proc is not available. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / PROC_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/**
 * Measures the CPU the benchmark process and `rmq local` use from now until the returned call, which
 * reports it as cores and as CPU time per message: on a shared box the rates move with other load,
 * the CPU cost per message much less.
 */
function startCpuWatch(localPid: number): (messages: number) => string {
  const wallStart = performance.now();
  const selfStart = process.cpuUsage();
  const localStart = processCpuSeconds(localPid);
  return (messages) => {
    const wall = (performance.now() - wallStart) / 1000;
    const self = process.cpuUsage(selfStart);
    const selfSeconds = (self.user + self.system) / 1e6;
    const localSeconds = processCpuSeconds(localPid) - localStart;
    const perMessage = (seconds: number) =>
      messages > 0 && Number.isFinite(seconds)
        ? `${Math.round((seconds * 1e6) / messages)} µs/msg`
        : "? µs/msg";
    const cores = (seconds: number) => (Number.isFinite(seconds) ? (seconds / wall).toFixed(2) : "?");
    return (
      `cpu: bench client ${cores(selfSeconds)} cores (${perMessage(selfSeconds)}), ` +
      `rmq local ${cores(localSeconds)} cores (${perMessage(localSeconds)}), ${availableParallelism()} cores on this box`
    );
  };
}

function verdict(ratio: number | undefined, target: number): string {
  if (ratio === undefined || !Number.isFinite(ratio)) return "NOT MEASURED";
  return ratio >= target ? "MET" : "MISSED";
}

function percent(ratio: number | undefined): string {
  return ratio === undefined || !Number.isFinite(ratio) ? "-" : `${(ratio * 100).toFixed(1)} %`;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      duration: { type: "string" },
      concurrency: { type: "string" },
      connections: { type: "string" },
      "consumer-concurrency": { type: "string" },
      "raw-duration": { type: "string" },
      flush: { type: "string" },
      strict: { type: "boolean" },
      rounds: { type: "string" },
    },
  });
  const rounds = positiveInteger("rounds", values.rounds, 1);
  const durationSec = positiveInteger("duration", values.duration, 10);
  const concurrency = positiveInteger("concurrency", values.concurrency, 64);
  const connections = positiveInteger("connections", values.connections, 1);
  const consumerConcurrency = positiveInteger("consumer-concurrency", values["consumer-concurrency"], 8);
  const rawDurationSec = positiveInteger("raw-duration", values["raw-duration"], 5);
  const flush = values.flush ?? "async";
  if (flush !== "async" && flush !== "sync") throw new Error(`--flush must be async or sync, got ${flush}`);

  const dir = mkdtempSync(join(tmpdir(), "rmq-bench-proxy-"));
  const out = (line: string) => process.stdout.write(`${line}\n`);
  let configFile: string | undefined;
  if (flush === "sync") {
    configFile = join(dir, "broker.conf");
    writeFileSync(configFile, "flushDiskType=SYNC_FLUSH\n");
  }
  out(`bench:proxy: starting rmq local (store ${join(dir, "store")}, ${flush.toUpperCase()}_FLUSH)`);
  const local = await startLocal(join(dir, "store"), join(dir, "rmq-local.log"), configFile);
  let keepDir = false;
  try {
    const endpoint = `127.0.0.1:${local.proxyPort}`;
    const common = {
      endpoint,
      topic: TOPIC,
      connections,
      reportIntervalSec: 5,
      rawCeiling: false,
      rawDurationSec,
    };
    const unaryOptions = { ...common, concurrency, durationSec, size: MESSAGE_BYTES, batch: 1 };
    out("");
    out(`== warm-up: producer, 1 message per SendMessage, ${WARM_UP_SECONDS} s, not measured ==`);
    const warm = await runProducerBench({ ...unaryOptions, durationSec: WARM_UP_SECONDS }, () => {});
    let unarySent = warm.sentMessages;
    const unaryRatios: number[] = [];
    let producer: ProducerBenchResult | undefined;
    let cpu: (messages: number) => string;
    for (let round = 0; round < rounds; round++) {
      out("");
      out(
        `== phase 1: producer, 1 message per SendMessage${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ""} ==`,
      );
      cpu = startCpuWatch(local.pid);
      producer = await runProducerBench(unaryOptions, out);
      out(cpu(producer.sentMessages));
      await addRawUnaryCeiling(unaryOptions, producer, out);
      if (producer.sentMessages === 0) {
        throw new Error(
          `the producer phase stored no message (${Object.keys(producer.errors).join(", ") || "no RPC answered"})`,
        );
      }
      unarySent += producer.sentMessages;
      unaryRatios.push(producer.rawRatio ?? Number.NaN);
    }
    const unaryRatio = median(unaryRatios);

    out("");
    out(`== phase 2: producer, ${FILL_BATCH} messages per SendMessage (backlog for phase 3) ==`);
    cpu = startCpuWatch(local.pid);
    const filler = await runProducerBench(
      { ...common, concurrency: FILL_CONCURRENCY, durationSec, size: MESSAGE_BYTES, batch: FILL_BATCH },
      out,
    );
    out(cpu(filler.sentMessages));
    const stored = unarySent + filler.sentMessages;

    out("");
    out(`== phase 3: consumer, draining the ${stored} stored messages ==`);
    out("(e2e latency here includes the time each message waited in the backlog)");
    out(
      "(acks: one AckMessage per received batch of up to 32 entries, which the protocol allows; the SDKs " +
        "send one AckMessage per message)",
    );
    const consumerOptions = {
      ...common,
      concurrency: consumerConcurrency,
      durationSec: CONSUMER_MAX_SECONDS,
      group: GROUP,
      batch: 32,
      invisibleMs: 60_000,
      messages: stored,
    };
    cpu = startCpuWatch(local.pid);
    const consumer = await runConsumerBench(consumerOptions, out);
    out(cpu(consumer.ackedMessages));
    await addRawStreamCeiling(consumerOptions, consumer, out);
    const sendVerdict = verdict(unaryRatio, UNARY_SEND_TARGET_RATIO);
    const receiveVerdict = verdict(consumer.rawRatio, RECEIVE_TARGET_RATIO);
    out("");
    out("== targets ==");
    out(
      rounds > 1
        ? `unary SendMessage (batch 1, ${concurrency} in flight): median of ${rounds} rounds ${percent(unaryRatio)} ` +
            `of raw http2 unary (rounds: ${unaryRatios.map(percent).join(", ")}) ` +
            `(target >= ${UNARY_SEND_TARGET_RATIO * 100} %): ${sendVerdict}`
        : `unary SendMessage (batch 1, ${concurrency} in flight): ${Math.round(producer?.rpcPerSec ?? 0)} rpc/s = ` +
            `${percent(unaryRatio)} of raw http2 unary ${Math.round(producer?.raw?.rps ?? 0)} rps ` +
            `(target >= ${UNARY_SEND_TARGET_RATIO * 100} %): ${sendVerdict}`,
    );
    out(
      `ReceiveMessage (${consumerConcurrency} loops, batch 32): ${Math.round(consumer.tps)} msg/s = ` +
        `${percent(consumer.rawRatio)} of raw http2 stream ${Math.round(consumer.raw?.framesPerSec ?? 0)} frames/s ` +
        `(target >= ${RECEIVE_TARGET_RATIO * 100} %): ${receiveVerdict}`,
    );
    out(
      `batched SendMessage (batch ${FILL_BATCH}, ${FILL_CONCURRENCY} in flight, for information): ` +
        `${Math.round(filler.tps)} msg/s in ${Math.round(filler.rpcPerSec)} rpc/s`,
    );
    if (consumer.ackedMessages !== stored) {
      keepDir = true;
      out(`WARNING: acked ${consumer.ackedMessages} of ${stored} stored messages (store kept in ${dir})`);
      return 1;
    }
    return values.strict === true && (sendVerdict !== "MET" || receiveVerdict !== "MET") ? 1 : 0;
  } catch (error) {
    keepDir = true;
    out(`bench:proxy: failed; store and rmq local log kept in ${dir}`);
    throw error;
  } finally {
    await local.stop();
    if (!keepDir) rmSync(dir, { recursive: true, force: true });
  }
}

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(`bench:proxy: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
