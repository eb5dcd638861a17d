// `rmq bench producer|consumer`: the load generator through the proxy (DESIGN.md §2, §7). Prints TPS
// and latency percentiles every few seconds and at the end, then — unless --no-raw-ceiling — the raw
// node:http2 ceiling measured in the same run and our ratio to it. Bad flags fail with one line and
// exit 1 (RmqError ILLEGAL_ARGUMENT); so does a proxy that cannot be reached or refuses the topic.

import type { Command } from "commander";
import { ErrorCode, RmqError } from "../common/errors.ts";
import {
  BENCH_DEFAULTS,
  parseConsumerFlags,
  parseProducerFlags,
  type RawBenchFlags,
} from "./bench/bench-options.ts";
import { runConsumerBench } from "./bench/consumer.ts";
import { runProducerBench } from "./bench/producer.ts";

export interface BenchCommandIo {
  /** Where report lines go (default: stdout). */
  out?: (line: string) => void;
  /** Stops a run early (default: SIGINT). */
  signal?: AbortSignal;
}

export function registerBenchCommand(program: Command, io: BenchCommandIo = {}): void {
  const out = io.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const bench = program
    .command("bench")
    .description(
      "load generator through the proxy: prints TPS, latency percentiles and the raw http2 ceiling",
    );

  withCommonOptions(
    bench
      .command("producer")
      .description("send messages with C concurrent SendMessage loops")
      .option("--size <bytes>", `message body size (default ${BENCH_DEFAULTS.size})`)
      .option("--batch <n>", `messages per SendMessage RPC (default ${BENCH_DEFAULTS.producerBatch})`),
    BENCH_DEFAULTS.producerConcurrency,
  ).action(async (flags: RawBenchFlags) => {
    const options = parseProducerFlags(flags);
    const result = await runWithSignal(io.signal, (signal) => runProducerBench(options, out, signal));
    if (result.sentMessages === 0 && result.failedMessages > 0) {
      throw new RmqError(
        ErrorCode.RpcFailed,
        `producer sent no message: ${Object.entries(result.errors)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")}`,
      );
    }
  });

  withCommonOptions(
    bench
      .command("consumer")
      .description("receive and ack messages with C concurrent ReceiveMessage loops of one group")
      .option("--group <group>", `consumer group (default ${BENCH_DEFAULTS.group})`)
      .option(
        "--batch <n>",
        `messages per ReceiveMessage, at most 32 (default ${BENCH_DEFAULTS.consumerBatch})`,
      )
      .option(
        "--invisible-ms <ms>",
        `invisible duration of received messages (default ${BENCH_DEFAULTS.invisibleMs})`,
      )
      .option("--messages <n>", "stop once this many messages were acked (default: run for --duration)")
      .option("--ack-each", "one AckMessage per message, as the SDKs ack (default: one per received batch)"),
    BENCH_DEFAULTS.consumerConcurrency,
  ).action(async (flags: RawBenchFlags) => {
    const options = parseConsumerFlags(flags);
    await runWithSignal(io.signal, (signal) => runConsumerBench(options, out, signal));
  });
}

function withCommonOptions(command: Command, defaultConcurrency: number): Command {
  return command
    .option("--endpoint <host:port>", `proxy gRPC endpoint (default ${BENCH_DEFAULTS.endpoint})`)
    .option("--topic <topic>", `topic (default ${BENCH_DEFAULTS.topic})`)
    .option("--concurrency <n>", `concurrent loops (default ${defaultConcurrency})`)
    .option("--connections <k>", `HTTP/2 connections (default ${BENCH_DEFAULTS.connections})`)
    .option("--duration <sec>", `run time in seconds (default ${BENCH_DEFAULTS.durationSec})`)
    .option(
      "--report-interval <sec>",
      `seconds between progress lines (default ${BENCH_DEFAULTS.reportIntervalSec})`,
    )
    .option("--raw-ceiling", "also measure the raw node:http2 ceiling in this run (default)")
    .option("--no-raw-ceiling", "skip the raw node:http2 ceiling")
    .option(
      "--raw-duration <sec>",
      `seconds of the raw ceiling probe (default ${BENCH_DEFAULTS.rawDurationSec})`,
    );
}

/** Run with the given signal, or with one SIGINT (Ctrl-C) triggers: the run stops early and still reports. */
async function runWithSignal<T>(
  signal: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (signal !== undefined) return run(signal);
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort();
  process.once("SIGINT", onSigint);
  try {
    return await run(interrupted.signal);
  } finally {
    process.off("SIGINT", onSigint);
  }
}
