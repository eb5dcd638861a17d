// `rmq bench producer`: C concurrent senders, each sending `batch` messages of `size` bytes per
// SendMessage RPC for `duration` seconds through the proxy; a progress line every report interval and
// a summary at the end (TPS in messages/s, RPC/s, MB/s of bodies, per-RPC latency p50/p99/p999,
// failures by status code). With the raw ceiling on (the default), the same run then measures bare
// node:http2 unary calls (1 KiB request, tiny response with trailers) at the same concurrency and
// connection count and prints SendMessage RPC/s against that ceiling.
//
// Each sender encodes its request by hand before each send (a fresh message id per message, the
// born timestamp; bench/grpc-client-wire.ts), the body is one shared buffer. An RPC that fails at the transport level is
// counted and retried after a short pause; nothing else is retried.

import { setTimeout as sleep } from "node:timers/promises";
import { createMessageIdGenerator, createSendBatch, producerSettings } from "../../bench/grpc-client.ts";
import { type RawUnaryResult, runRawUnaryCeiling } from "../../bench/http2-raw.ts";
import { Code } from "../../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type { ProducerBenchOptions } from "./bench-options.ts";
import { ErrorTally, formatMb, formatMs, formatPercentiles, formatRate, ratioLine } from "./bench-report.ts";
import { openBenchSession } from "./bench-session.ts";
import { createLatencyHistogram, type LatencySummary, latencySummary } from "./latency-histogram.ts";
import { createRunStop } from "./run-stop.ts";

/** Pause of a sender after a transport failure, so an unreachable proxy does not spin the loop. */
export const FAILED_RPC_PAUSE_MS = 50;

export interface ProducerBenchResult {
  seconds: number;
  /** Messages the proxy answered OK. */
  sentMessages: number;
  failedMessages: number;
  /** SendMessage RPCs answered (whatever the status). */
  rpcs: number;
  /** RPCs that failed at the transport level (no answer). */
  failedRpcs: number;
  tps: number;
  rpcPerSec: number;
  mbPerSec: number;
  latency: LatencySummary;
  /** Failed messages by code. */
  errors: Record<string, number>;
  raw?: RawUnaryResult;
  /** SendMessage RPC/s ÷ raw unary rps. */
  rawRatio?: number;
}

export async function runProducerBench(
  options: ProducerBenchOptions,
  out: (line: string) => void,
  signal?: AbortSignal,
): Promise<ProducerBenchResult> {
  const session = await openBenchSession({
    endpoint: options.endpoint,
    connections: options.connections,
    topic: options.topic,
    settings: (client) => producerSettings(client, [options.topic]),
  });
  const { client } = session;
  out(
    `producer: ${options.endpoint} topic ${options.topic}, ${options.concurrency} senders over ${options.connections} connection(s), ` +
      `${options.batch} × ${options.size} B per SendMessage, ${options.durationSec} s`,
  );

  const body = Buffer.alloc(options.size, 0x61);
  const nextId = createMessageIdGenerator();
  const window = createLatencyHistogram();
  const total = createLatencyHistogram();
  const errors = new ErrorTally();
  let sent = 0;
  let failed = 0;
  let rpcs = 0;
  let failedRpcs = 0;

  const stop = createRunStop(signal, options.durationSec);

  const start = performance.now();
  let last = { at: start, sent: 0, rpcs: 0, failed: 0 };
  const progress = setInterval(() => {
    const now = performance.now();
    const seconds = (now - last.at) / 1000;
    const dSent = sent - last.sent;
    out(
      `producer [${((now - start) / 1000).toFixed(0)} s] tps ${formatRate(dSent / seconds)} msg/s, ` +
        `rpc ${formatRate((rpcs - last.rpcs) / seconds)}/s, ${formatMb((dSent * options.size) / 1e6 / seconds)}, ` +
        `rpc latency ${formatPercentiles(latencySummary(window))}, failed ${failed - last.failed}`,
    );
    total.addAll(window);
    window.reset();
    last = { at: now, sent, rpcs, failed };
  }, options.reportIntervalSec * 1000);

  const sender = async (index: number) => {
    const batch = createSendBatch(options.topic, options.batch, body, nextId);
    const connection = index % options.connections;
    while (!stop.signal.aborted) {
      const request = batch.encode(Date.now());
      const t0 = performance.now();
      let response: Awaited<ReturnType<typeof client.sendMessage>>;
      try {
        response = await client.sendMessage(request, connection);
      } catch (error) {
        failedRpcs++;
        failed += options.batch;
        errors.addTransport(error, options.batch);
        await sleep(FAILED_RPC_PAUSE_MS, undefined, { signal: stop.signal }).catch(() => {});
        continue;
      }
      window.record(performance.now() - t0);
      rpcs++;
      const top = response.status?.code ?? Code.CODE_UNSPECIFIED;
      if (response.entries.length === 0) {
        if (top === Code.OK) sent += options.batch;
        else {
          failed += options.batch;
          errors.addStatus(top, options.batch, response.status?.message);
        }
        continue;
      }
      for (const entry of response.entries) {
        const code = entry?.code ?? top;
        if (code === Code.OK) sent++;
        else {
          failed++;
          errors.addStatus(code, 1, entry?.message ?? response.status?.message);
        }
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, (_, i) => sender(i)));
  } finally {
    stop.dispose();
    clearInterval(progress);
    await session.close();
  }
  const seconds = (performance.now() - start) / 1000;
  total.addAll(window);

  const result: ProducerBenchResult = {
    seconds,
    sentMessages: sent,
    failedMessages: failed,
    rpcs,
    failedRpcs,
    tps: sent / seconds,
    rpcPerSec: rpcs / seconds,
    mbPerSec: (sent * options.size) / 1e6 / seconds,
    latency: latencySummary(total),
    errors: errors.toRecord(),
  };
  out(
    `producer summary: seconds=${seconds.toFixed(1)} sent=${sent} failed=${failed} rpcs=${rpcs} failed-rpcs=${failedRpcs}`,
  );
  out(
    `producer summary: tps ${formatRate(result.tps)} msg/s, rpc ${formatRate(result.rpcPerSec)}/s, ${formatMb(result.mbPerSec)}, ` +
      `rpc latency ${formatPercentiles(result.latency)} (max ${formatMs(total.max)})`,
  );
  out(`producer errors: ${errors.text()}`);

  if (options.rawCeiling && !signal?.aborted) await addRawUnaryCeiling(options, result, out);
  return result;
}

/**
 * Measure the raw node:http2 unary ceiling at the run's concurrency, connections and message size,
 * record it in `result` and print it with the ratio.
 */
export async function addRawUnaryCeiling(
  options: ProducerBenchOptions,
  result: ProducerBenchResult,
  out: (line: string) => void,
): Promise<void> {
  const raw = await runRawUnaryCeiling({
    concurrency: options.concurrency,
    connections: options.connections,
    durationMs: options.rawDurationSec * 1000,
    requestBytes: options.size,
  });
  result.raw = raw;
  result.rawRatio = raw.rps > 0 ? result.rpcPerSec / raw.rps : Number.NaN;
  out(
    `raw ceiling: node:http2 unary (${options.size} B request, tiny response + trailers), ${options.concurrency} in flight over ` +
      `${options.connections} connection(s), ${raw.seconds.toFixed(1)} s: ${formatRate(raw.rps)} rps, ` +
      `latency ${formatPercentiles(raw)}${raw.errors > 0 ? `, ${raw.errors} failed` : ""}`,
  );
  out(ratioLine("SendMessage rpc/s", result.rpcPerSec, "raw unary rps", raw.rps));
}
