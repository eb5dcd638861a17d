// `rmq bench consumer`: C concurrent receive loops of one consumer group, each calling ReceiveMessage
// (long polling, up to `batch` messages) and acking what it got with one AckMessage per batch (or,
// with `ackEach`, one AckMessage per message, as the SDKs ack); the next receive starts while those
// acks are in flight (at most one batch of acks in flight per loop). Prints TPS
// (acked messages/s) and end-to-end latency from each message's born timestamp to its arrival
// (p50/p99/p999) every report interval and at the end. With the raw ceiling on (the default), the
// same run then reads ONE bare node:http2 server stream of length-prefixed frames of the same size
// and prints our messages/s against its frames/s.
//
// The run ends after `duration` seconds or, with `messages`, once that many were acked; receives
// still held then are cancelled (the proxy makes what it had not written visible again).

import { setTimeout as sleep } from "node:timers/promises";
import {
  DEFAULT_BENCH_RPC_TIMEOUT_MS,
  durationOf,
  receiveRequestFrame,
  simpleConsumerSettings,
} from "../../bench/grpc-client.ts";
import type { ReceivedMessage } from "../../bench/grpc-client-wire.ts";
import { RAW_PAYLOAD_BYTES, type RawStreamResult, runRawStreamCeiling } from "../../bench/http2-raw.ts";
import { Code, FilterType } from "../../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { DEFAULT_MIN_LONG_POLLING_MS } from "../../proxy/limits.ts";
import type { ConsumerBenchOptions } from "./bench-options.ts";
import { ErrorTally, formatMb, formatMs, formatPercentiles, formatRate, ratioLine } from "./bench-report.ts";
import { openBenchSession } from "./bench-session.ts";
import { createLatencyHistogram, type LatencySummary, latencySummary } from "./latency-histogram.ts";
import { createRunStop } from "./run-stop.ts";

/** Long polling of each receive: the proxy's minimum (5 s), so an idle loop still notices the end soon. */
export const CONSUMER_LONG_POLLING_MS = DEFAULT_MIN_LONG_POLLING_MS;
/** Pause of a loop after a failed receive, so an unreachable proxy or a refusing one does not spin it. */
export const FAILED_RECEIVE_PAUSE_MS = 50;

export interface ConsumerBenchResult {
  seconds: number;
  receivedMessages: number;
  ackedMessages: number;
  ackFailedMessages: number;
  receiveRpcs: number;
  /** Receives that ended with MESSAGE_NOT_FOUND (nothing within the long poll). */
  emptyReceives: number;
  ackRpcs: number;
  /** RPCs that failed at the transport level, receives and acks. */
  failedRpcs: number;
  /** Acked messages per second. */
  tps: number;
  mbPerSec: number;
  /** Mean body size of the received messages (0 when none). */
  averageBodyBytes: number;
  e2eLatency: LatencySummary;
  /** Failures by code: failed receives per RPC, failed acks per message. */
  errors: Record<string, number>;
  raw?: RawStreamResult;
  /** tps ÷ raw stream frames/s. */
  rawRatio?: number;
}

export async function runConsumerBench(
  options: ConsumerBenchOptions,
  out: (line: string) => void,
  signal?: AbortSignal,
): Promise<ConsumerBenchResult> {
  const session = await openBenchSession({
    endpoint: options.endpoint,
    connections: options.connections,
    topic: options.topic,
    settings: (client) =>
      simpleConsumerSettings(client, options.group, options.topic, CONSUMER_LONG_POLLING_MS),
  });
  const { client } = session;
  out(
    `consumer: ${options.endpoint} topic ${options.topic} group ${options.group}, ${options.concurrency} receive loops over ` +
      `${options.connections} connection(s), batch ${options.batch}, ${options.durationSec} s` +
      (options.messages === undefined ? "" : ` or ${options.messages} messages`),
  );

  const request = receiveRequestFrame({
    group: { name: options.group },
    messageQueue: session.queue ?? { topic: { name: options.topic }, id: 0 },
    filterExpression: { type: FilterType.TAG, expression: "*" },
    batchSize: options.batch,
    invisibleDuration: durationOf(options.invisibleMs),
    autoRenew: false,
    longPollingTimeout: durationOf(CONSUMER_LONG_POLLING_MS),
  });
  const receiveTimeoutMs = CONSUMER_LONG_POLLING_MS + DEFAULT_BENCH_RPC_TIMEOUT_MS;

  const window = createLatencyHistogram();
  const total = createLatencyHistogram();
  const errors = new ErrorTally();
  let received = 0;
  let bodyBytes = 0;
  let acked = 0;
  let ackFailed = 0;
  let receiveRpcs = 0;
  let emptyReceives = 0;
  let ackRpcs = 0;
  let failedRpcs = 0;

  const stop = createRunStop(signal, options.durationSec);
  const reachedTarget = () => options.messages !== undefined && acked >= options.messages;

  const start = performance.now();
  let last = { at: start, acked: 0, received: 0, bodyBytes: 0, receiveRpcs: 0, failed: 0 };
  const progress = setInterval(() => {
    const now = performance.now();
    const seconds = (now - last.at) / 1000;
    out(
      `consumer [${((now - start) / 1000).toFixed(0)} s] tps ${formatRate((acked - last.acked) / seconds)} msg/s, ` +
        `received ${formatRate((received - last.received) / seconds)}/s, ${formatMb((bodyBytes - last.bodyBytes) / 1e6 / seconds)}, ` +
        `receive rpc ${formatRate((receiveRpcs - last.receiveRpcs) / seconds)}/s, ` +
        `e2e latency ${formatPercentiles(latencySummary(window))}, failed ${errors.total() - last.failed}`,
    );
    total.addAll(window);
    window.reset();
    last = { at: now, acked, received, bodyBytes, receiveRpcs, failed: errors.total() };
  }, options.reportIntervalSec * 1000);

  const ack = async (messages: ReceivedMessage[], connection: number) => {
    const entries = messages.map((m) => ({ messageId: m.messageId, receiptHandle: m.receiptHandle }));
    try {
      const response = await client.ackMessage(options.group, options.topic, entries, connection);
      ackRpcs++;
      const top = response.status?.code ?? Code.CODE_UNSPECIFIED;
      if (response.entries.length === 0) {
        if (top === Code.OK) acked += entries.length;
        else {
          ackFailed += entries.length;
          errors.addStatus(top, entries.length, response.status?.message);
        }
      } else {
        for (const entry of response.entries) {
          const code = entry?.code ?? top;
          if (code === Code.OK) acked++;
          else {
            ackFailed++;
            errors.addStatus(code, 1, entry?.message ?? response.status?.message);
          }
        }
      }
    } catch (error) {
      failedRpcs++;
      ackFailed += entries.length;
      errors.addTransport(error, entries.length);
    }
    if (reachedTarget()) stop.stop();
  };

  const loop = async (index: number) => {
    const connection = index % options.connections;
    let ackInFlight: Promise<void> = Promise.resolve();
    while (!stop.signal.aborted) {
      let result: Awaited<ReturnType<typeof client.receiveMessage>>;
      try {
        result = await client.receiveMessage(request, connection, {
          timeoutMs: receiveTimeoutMs,
          signal: stop.signal,
        });
      } catch (error) {
        if (stop.signal.aborted) break;
        failedRpcs++;
        errors.addTransport(error);
        await sleep(FAILED_RECEIVE_PAUSE_MS, undefined, { signal: stop.signal }).catch(() => {});
        continue;
      }
      receiveRpcs++;
      const code = result.status?.code ?? Code.CODE_UNSPECIFIED;
      if (code === Code.MESSAGE_NOT_FOUND) emptyReceives++;
      else if (code !== Code.OK) errors.addStatus(code, 1, result.status?.message);
      const messages = result.messages;
      if (messages.length === 0) {
        if (code !== Code.OK && code !== Code.MESSAGE_NOT_FOUND) {
          await sleep(FAILED_RECEIVE_PAUSE_MS, undefined, { signal: stop.signal }).catch(() => {});
        }
        continue;
      }
      const now = Date.now();
      for (const m of messages) {
        if (m.bornTimestampMs !== undefined) window.record(Math.max(0, now - m.bornTimestampMs));
        bodyBytes += m.bodyBytes;
      }
      received += messages.length;
      await ackInFlight;
      ackInFlight = options.ackEach
        ? Promise.all(messages.map((m) => ack([m], connection))).then(() => {})
        : ack(messages, connection);
    }
    await ackInFlight;
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => loop(i)));
  } finally {
    stop.dispose();
    clearInterval(progress);
    await session.close();
  }
  const seconds = (performance.now() - start) / 1000;
  total.addAll(window);

  const result: ConsumerBenchResult = {
    seconds,
    receivedMessages: received,
    ackedMessages: acked,
    ackFailedMessages: ackFailed,
    receiveRpcs,
    emptyReceives,
    ackRpcs,
    failedRpcs,
    tps: acked / seconds,
    mbPerSec: bodyBytes / 1e6 / seconds,
    averageBodyBytes: received > 0 ? bodyBytes / received : 0,
    e2eLatency: latencySummary(total),
    errors: errors.toRecord(),
  };
  out(
    `consumer summary: seconds=${seconds.toFixed(1)} received=${received} acked=${acked} ack-failed=${ackFailed} ` +
      `receive-rpcs=${receiveRpcs} empty-receives=${emptyReceives} ack-rpcs=${ackRpcs} failed-rpcs=${failedRpcs}`,
  );
  out(
    `consumer summary: tps ${formatRate(result.tps)} msg/s, ${formatMb(result.mbPerSec)}, ` +
      `e2e latency ${formatPercentiles(result.e2eLatency)} (max ${formatMs(total.max)})`,
  );
  out(`consumer errors: ${errors.text()}`);

  if (options.rawCeiling && !signal?.aborted) await addRawStreamCeiling(options, result, out);
  return result;
}

/**
 * Measure the raw node:http2 one-stream ceiling with frames of the run's average body size (1 KiB
 * when nothing was received), record it in `result` and print it with the ratio.
 */
export async function addRawStreamCeiling(
  options: ConsumerBenchOptions,
  result: ConsumerBenchResult,
  out: (line: string) => void,
): Promise<void> {
  const frameBytes = result.averageBodyBytes > 0 ? Math.round(result.averageBodyBytes) : RAW_PAYLOAD_BYTES;
  const raw = await runRawStreamCeiling({ durationMs: options.rawDurationSec * 1000, frameBytes });
  result.raw = raw;
  result.rawRatio = raw.framesPerSec > 0 ? result.tps / raw.framesPerSec : Number.NaN;
  out(
    `raw ceiling: node:http2 one server stream of ${frameBytes} B length-prefixed frames, ${raw.seconds.toFixed(1)} s: ` +
      `${formatRate(raw.framesPerSec)} frames/s, ${formatMb(raw.mbPerSec)}`,
  );
  out(ratioLine("ReceiveMessage msg/s", result.tps, "raw stream frames/s", raw.framesPerSec));
}
