// Flags of `rmq bench producer|consumer`: defaults (after upstream's benchmark tool where it has
// one), and validation that fails with one line naming the flag (RmqError ILLEGAL_ARGUMENT, which
// `rmq` prints and exits 1 on).

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { DEFAULT_MAX_MESSAGE_BODY_SIZE } from "../../common/message-validator.ts";
import {
  DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
  DEFAULT_MAX_INVISIBLE_MS,
  DEFAULT_MAX_RECEIVE_BATCH_SIZE,
  DEFAULT_MIN_INVISIBLE_MS,
} from "../../proxy/limits.ts";

export const BENCH_DEFAULTS = Object.freeze({
  /** The proxy's default gRPC port (upstream grpcServerPort). */
  endpoint: "127.0.0.1:8081",
  /** Upstream benchmark topic. */
  topic: "BenchmarkTest",
  /** Upstream benchmark consumer group. */
  group: "benchmark_consumer",
  /** Upstream Producer.java: 64 sender threads. */
  producerConcurrency: 64,
  /** Upstream Consumer.java: 20 consumer threads. */
  consumerConcurrency: 20,
  /** 1 KiB (upstream Producer.java uses 128 B; our anchors are measured with 1 KiB). */
  size: 1024,
  /** One message per SendMessage, as the official SDKs send. */
  producerBatch: 1,
  /** Upstream receive batch (ProxyUtils.MAX_MSG_NUMS_FOR_POP_REQUEST). */
  consumerBatch: DEFAULT_MAX_RECEIVE_BATCH_SIZE,
  connections: 1,
  durationSec: 30,
  /** Upstream prints every 10 s; a shorter default suits short runs. */
  reportIntervalSec: 5,
  rawDurationSec: 5,
  /** Long enough that a slow run does not see its own messages come back. */
  invisibleMs: 30_000,
});

/** More loops than this is a typo, not a benchmark. */
export const MAX_BENCH_CONCURRENCY = 10_000;
/** HTTP/2 connections per run. */
export const MAX_BENCH_CONNECTIONS = 1024;

interface CommonBenchOptions {
  endpoint: string;
  topic: string;
  concurrency: number;
  connections: number;
  durationSec: number;
  reportIntervalSec: number;
  /** Measure the raw node:http2 ceiling in the same run (default true). */
  rawCeiling: boolean;
  rawDurationSec: number;
}

export interface ProducerBenchOptions extends CommonBenchOptions {
  /** Body bytes per message. */
  size: number;
  /** Messages per SendMessage RPC. */
  batch: number;
}

export interface ConsumerBenchOptions extends CommonBenchOptions {
  group: string;
  /** Messages per ReceiveMessage RPC (at most 32). */
  batch: number;
  invisibleMs: number;
  /** Stop once this many messages were acked (default: run for the duration). */
  messages?: number;
  /**
   * One AckMessage per message, as the SDKs ack (SimpleConsumer.ack and the push consumers send one
   * entry per call), instead of one per received batch (default false; the protocol allows both).
   */
  ackEach?: boolean;
}

/** What commander hands the action: every value a string, flags booleans. */
export type RawBenchFlags = Record<string, string | boolean | undefined>;

function illegal(message: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, message);
}

export function positiveInteger(
  flag: string,
  value: string | boolean | undefined,
  fallback: number,
  max?: number,
): number {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw illegal(`--${flag} must be a positive integer, got ${JSON.stringify(String(value))}`);
  }
  if (max !== undefined && n > max) throw illegal(`--${flag} must be at most ${max}, got ${n}`);
  return n;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?):(\d{1,5})$/;

export function endpointFlag(value: string | boolean | undefined): string {
  if (value === undefined) return BENCH_DEFAULTS.endpoint;
  const text = String(value).trim();
  const m = HOST_PORT.exec(text);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535) {
    throw illegal(`--endpoint must be host:port (e.g. 127.0.0.1:8081), got ${JSON.stringify(String(value))}`);
  }
  return text;
}

function nameFlag(flag: string, value: string | boolean | undefined, fallback: string): string {
  if (value === undefined) return fallback;
  const text = String(value).trim();
  if (text.length === 0 || typeof value !== "string") throw illegal(`--${flag} must not be empty`);
  return text;
}

function commonOptions(flags: RawBenchFlags, defaultConcurrency: number): CommonBenchOptions {
  return {
    endpoint: endpointFlag(flags.endpoint),
    topic: nameFlag("topic", flags.topic, BENCH_DEFAULTS.topic),
    concurrency: positiveInteger("concurrency", flags.concurrency, defaultConcurrency, MAX_BENCH_CONCURRENCY),
    connections: positiveInteger(
      "connections",
      flags.connections,
      BENCH_DEFAULTS.connections,
      MAX_BENCH_CONNECTIONS,
    ),
    durationSec: positiveInteger("duration", flags.duration, BENCH_DEFAULTS.durationSec),
    reportIntervalSec: positiveInteger(
      "report-interval",
      flags.reportInterval,
      BENCH_DEFAULTS.reportIntervalSec,
    ),
    // commander: --raw-ceiling sets true, --no-raw-ceiling false, neither leaves it unset
    rawCeiling: flags.rawCeiling !== false,
    rawDurationSec: positiveInteger("raw-duration", flags.rawDuration, BENCH_DEFAULTS.rawDurationSec),
  };
}

export function parseProducerFlags(flags: RawBenchFlags): ProducerBenchOptions {
  const common = commonOptions(flags, BENCH_DEFAULTS.producerConcurrency);
  const size = positiveInteger("size", flags.size, BENCH_DEFAULTS.size, DEFAULT_MAX_MESSAGE_BODY_SIZE);
  const batch = positiveInteger("batch", flags.batch, BENCH_DEFAULTS.producerBatch);
  if (size * batch > DEFAULT_MAX_INBOUND_MESSAGE_BYTES) {
    throw illegal(
      `--batch ${batch} × --size ${size} exceeds the proxy's ${DEFAULT_MAX_INBOUND_MESSAGE_BYTES}-byte request limit`,
    );
  }
  return { ...common, size, batch };
}

export function parseConsumerFlags(flags: RawBenchFlags): ConsumerBenchOptions {
  const common = commonOptions(flags, BENCH_DEFAULTS.consumerConcurrency);
  const invisibleMs = positiveInteger("invisible-ms", flags.invisibleMs, BENCH_DEFAULTS.invisibleMs);
  if (invisibleMs < DEFAULT_MIN_INVISIBLE_MS || invisibleMs > DEFAULT_MAX_INVISIBLE_MS) {
    throw illegal(
      `--invisible-ms must be between ${DEFAULT_MIN_INVISIBLE_MS} and ${DEFAULT_MAX_INVISIBLE_MS} (the proxy's range), got ${invisibleMs}`,
    );
  }
  return {
    ...common,
    group: nameFlag("group", flags.group, BENCH_DEFAULTS.group),
    batch: positiveInteger(
      "batch",
      flags.batch,
      BENCH_DEFAULTS.consumerBatch,
      DEFAULT_MAX_RECEIVE_BATCH_SIZE,
    ),
    invisibleMs,
    messages: flags.messages === undefined ? undefined : positiveInteger("messages", flags.messages, 0),
    ackEach: flags.ackEach === true,
  };
}
