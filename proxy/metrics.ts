// Prometheus series the proxy records, named as RocketMQ 5 names them (research/ecosystem.md §1.3,
// §1.4). The Java proxy does not time gRPC calls; we record rocketmq_rpc_latency with
// protocol_type="grpc" and request_code = the RPC name in snake case. Static labels (cluster,
// node_type, node_id, proxy_mode) come from the registry's default labels, set by whoever owns it.
//
// In local mode the broker may register the message counters on the same registry; the existing
// metric is then reused (same name and labels) instead of registering twice. Set `countMessages`
// false when the broker already counts them, so messages are not counted twice.

import { Counter, Histogram, type Registry } from "prom-client";
import { isDlqTopic, isRetryTopic, isSystemTopic } from "../common/topic-validator.ts";

/** Label sets of rocketmq_rpc_latency kept ready (RPCs × response codes × results stay far below). */
const MAX_CACHED_LABEL_SETS = 4096;

/** Upstream rpc latency buckets, milliseconds. */
export const RPC_LATENCY_BUCKETS_MS = [1, 3, 5, 7, 10, 100, 1000, 2000, 3000];

export const RpcResult = {
  SUCCESS: "success",
  CANCELLED: "cancelled",
  PROCESS_REQUEST_FAILED: "process_request_failed",
  WRITE_CHANNEL_FAILED: "write_channel_failed",
} as const;
export type RpcResult = (typeof RpcResult)[keyof typeof RpcResult];

export interface ProxyMetrics {
  /** One finished RPC; `responseCode` is the body Status code name, lower case ("ok", "topic_not_found"). */
  observeRpc(
    rpc: string,
    responseCode: string,
    longPolling: boolean,
    result: RpcResult,
    latencyMs: number,
  ): void;
  /** Messages stored for producers. `messageType` lower case: normal, fifo, delay, transaction. */
  messagesIn(topic: string, messageType: string, count: number, bytes: number): void;
  /** Messages delivered to consumers of `group`. */
  messagesOut(topic: string, group: string, count: number, bytes: number): void;
}

export interface ProxyMetricsOptions {
  registry?: Registry;
  /** Record rocketmq_messages_in/out and throughput (default true). */
  countMessages?: boolean;
}

const NOOP_METRICS: ProxyMetrics = {
  observeRpc() {},
  messagesIn() {},
  messagesOut() {},
};

export function createProxyMetrics(options: ProxyMetricsOptions = {}): ProxyMetrics {
  const registry = options.registry;
  if (registry === undefined) return NOOP_METRICS;
  const rpcLatency = histogram(registry, {
    name: "rocketmq_rpc_latency",
    help: "Latency of RPCs served, in milliseconds",
    labelNames: ["protocol_type", "request_code", "response_code", "is_long_polling", "result"],
    buckets: RPC_LATENCY_BUCKETS_MS,
  });
  const countMessages = options.countMessages ?? true;
  const inLabels = ["topic", "message_type", "is_system"];
  const outLabels = ["topic", "consumer_group", "is_system"];
  const messagesIn = countMessages
    ? counter(registry, {
        name: "rocketmq_messages_in_total",
        help: "Messages produced",
        labelNames: inLabels,
      })
    : undefined;
  const throughputIn = countMessages
    ? counter(registry, {
        name: "rocketmq_throughput_in_total",
        help: "Bytes produced",
        labelNames: inLabels,
      })
    : undefined;
  const messagesOut = countMessages
    ? counter(registry, {
        name: "rocketmq_messages_out_total",
        help: "Messages consumed",
        labelNames: outLabels,
      })
    : undefined;
  const throughputOut = countMessages
    ? counter(registry, {
        name: "rocketmq_throughput_out_total",
        help: "Bytes consumed",
        labelNames: outLabels,
      })
    : undefined;

  // One label set per (rpc, code, long polling, result): built once, not per call (a hot path).
  const rpcLabels = new Map<string, Record<string, string>>();
  const labelsOf = (rpc: string, responseCode: string, longPolling: boolean, result: RpcResult) => {
    const key = `${rpc}|${responseCode}|${longPolling ? 1 : 0}|${result}`;
    let labels = rpcLabels.get(key);
    if (labels === undefined) {
      labels = Object.freeze({
        protocol_type: "grpc",
        request_code: snakeCase(rpc),
        response_code: responseCode,
        is_long_polling: String(longPolling),
        result,
      });
      if (rpcLabels.size < MAX_CACHED_LABEL_SETS) rpcLabels.set(key, labels);
    }
    return labels;
  };

  return {
    observeRpc(rpc, responseCode, longPolling, result, latencyMs) {
      rpcLatency.observe(labelsOf(rpc, responseCode, longPolling, result), latencyMs);
    },
    messagesIn(topic, messageType, count, bytes) {
      // Upstream does not count retry and DLQ traffic as messages in or out.
      if (messagesIn === undefined || throughputIn === undefined || isRetryTopic(topic) || isDlqTopic(topic))
        return;
      const labels = { topic, message_type: messageType, is_system: String(isSystemTopic(topic)) };
      messagesIn.inc(labels, count);
      throughputIn.inc(labels, bytes);
    },
    messagesOut(topic, group, count, bytes) {
      if (
        messagesOut === undefined ||
        throughputOut === undefined ||
        isRetryTopic(topic) ||
        isDlqTopic(topic)
      )
        return;
      const labels = { topic, consumer_group: group, is_system: String(isSystemTopic(topic)) };
      messagesOut.inc(labels, count);
      throughputOut.inc(labels, bytes);
    },
  };
}

function snakeCase(rpc: string): string {
  return rpc.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
}

function counter(
  registry: Registry,
  config: { name: string; help: string; labelNames: string[] },
): Counter<string> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Counter) return existing as Counter<string>;
  return new Counter({ ...config, registers: [registry] });
}

function histogram(
  registry: Registry,
  config: { name: string; help: string; labelNames: string[]; buckets: number[] },
): Histogram<string> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Histogram) return existing as Histogram<string>;
  return new Histogram({ ...config, registers: [registry] });
}
