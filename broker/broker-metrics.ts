// The broker's Prometheus series, with RocketMQ 5's names and labels (research/ecosystem.md §1.2,
// §1.3): messages and bytes in per topic and message type, out per topic and consumer group, the
// message size histogram, and scrape-time gauges for topics, groups, permission, consumer lag and
// in-flight messages. The static labels every series carries (cluster, node_type, node_id) are the
// registry's default labels, set by the process that owns the registry (brokerMetricLabels).
//
// As upstream, traffic of retry and DLQ topics is not counted as messages in or out. Counting
// happens around the message service (instrumentMessageService), so the broker counts the same way
// whichever front end (local proxy, internal RPC) calls it.

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { isDlqTopic, isRetryTopic } from "../common/topic-validator.ts";
import type { BrokerMessageService, SendRequest, SendResult } from "./message-service.ts";
import type { SubscriptionGroupManager } from "./metadata/subscription-group-manager.ts";
import type { TopicConfigManager } from "./metadata/topic-config-manager.ts";
import type { PopOptions, PoppedMessage } from "./pop/pop-service.ts";
import { PutMessageStatus } from "./store/message-store-types.ts";

/** Upstream rocketmq_message_size buckets: 1 KiB, 4 KiB, 512 KiB, 1 MiB, 2 MiB, 4 MiB. */
export const MESSAGE_SIZE_BUCKETS_BYTES = [
  1024,
  4096,
  512 * 1024,
  1024 * 1024,
  2 * 1024 * 1024,
  4 * 1024 * 1024,
];
/** Most (group, topic) series the lag gauges export per scrape (upstream metricsOtelCardinalityLimit, 50000). */
export const MAX_LAG_SERIES = 50_000;
/** The lag walk is reused by the gauges of one scrape for this long (ours). */
const LAG_SNAPSHOT_REUSE_MS = 1000;

/** Stored property names that decide a message's type (upstream MessageConst). */
const TypeProperty = {
  TRANSACTION_PREPARED: "TRAN_MSG",
  TIMER_DELIVER_MS: "TIMER_DELIVER_MS",
  DELAY_TIME_LEVEL: "DELAY",
  SHARDING_KEY: "__SHARDINGKEY",
} as const;

/** Upstream message_type label values (lower-cased TopicMessageType). */
export const MessageTypeLabel = {
  NORMAL: "normal",
  FIFO: "fifo",
  DELAY: "delay",
  TRANSACTION: "transaction",
} as const;
export type MessageTypeLabel = (typeof MessageTypeLabel)[keyof typeof MessageTypeLabel];

/** The labels every broker series carries (upstream labelMap): set them as the registry's default labels. */
export function brokerMetricLabels(o: {
  brokerClusterName: string;
  brokerName: string;
}): Record<string, string> {
  return { cluster: o.brokerClusterName, node_type: "broker", node_id: o.brokerName };
}

/** What a stored message is, from its properties (upstream TopicMessageType.parseFromMessageProperty). */
export function messageTypeOfProperties(
  properties: Readonly<Record<string, string>> | undefined,
): MessageTypeLabel {
  if (properties === undefined) return MessageTypeLabel.NORMAL;
  if (properties[TypeProperty.TRANSACTION_PREPARED] === "true") return MessageTypeLabel.TRANSACTION;
  if (
    properties[TypeProperty.TIMER_DELIVER_MS] !== undefined ||
    properties[TypeProperty.DELAY_TIME_LEVEL] !== undefined
  )
    return MessageTypeLabel.DELAY;
  if (properties[TypeProperty.SHARDING_KEY] !== undefined) return MessageTypeLabel.FIFO;
  return MessageTypeLabel.NORMAL;
}

export interface BrokerMetrics {
  /** Messages stored for producers on `topic`. */
  messagesIn(
    topic: string,
    messageType: MessageTypeLabel,
    count: number,
    bytes: number,
    sizes: readonly number[],
  ): void;
  /** Messages delivered from `topic` to `group`. */
  messagesOut(topic: string, group: string, count: number, bytes: number): void;
}

export interface BrokerMetricsOptions {
  registry?: Registry;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  /** The broker's brokerPermission (PermName bits). */
  brokerPermission: () => number;
  /** Per-group progress for the lag gauges; left out = no lag gauges. */
  consumerProgress?: BrokerMessageService["consumerProgress"];
  /** Groups the lag gauges visit (a group without offsets adds no series). */
  consumerGroups?: () => Iterable<string>;
}

const NOOP: BrokerMetrics = { messagesIn() {}, messagesOut() {} };

export function createBrokerMetrics(o: BrokerMetricsOptions): BrokerMetrics {
  const registry = o.registry;
  if (registry === undefined) return NOOP;
  const isSystem = (topic: string) => String(o.topics.isSystemTopic(topic));
  const inLabels = ["topic", "message_type", "is_system"];
  const outLabels = ["topic", "consumer_group", "is_system"];
  const messagesIn = counter(registry, "rocketmq_messages_in_total", "Messages produced", inLabels);
  const throughputIn = counter(registry, "rocketmq_throughput_in_total", "Bytes produced", inLabels);
  const messagesOut = counter(registry, "rocketmq_messages_out_total", "Messages consumed", outLabels);
  const throughputOut = counter(registry, "rocketmq_throughput_out_total", "Bytes consumed", outLabels);
  const messageSize = getOrCreate(
    registry,
    "rocketmq_message_size",
    Histogram,
    () =>
      new Histogram({
        name: "rocketmq_message_size",
        help: "Size of produced messages, bytes",
        labelNames: inLabels,
        buckets: MESSAGE_SIZE_BUCKETS_BYTES,
        registers: [registry],
      }),
  );
  gauge(registry, "rocketmq_topic_number", "Topics on the broker", [], function () {
    this.set(o.topics.list().length);
  });
  gauge(registry, "rocketmq_consumer_group_number", "Subscription groups on the broker", [], function () {
    this.set(o.groups.list().length);
  });
  gauge(
    registry,
    "rocketmq_broker_permission",
    "Broker permission (2 write, 4 read, 6 read-write)",
    [],
    function () {
      this.set(o.brokerPermission());
    },
  );
  const progress = o.consumerProgress;
  const consumerGroups = o.consumerGroups;
  if (progress !== undefined && consumerGroups !== undefined) {
    // Both gauges come from one walk over the groups' queues, shared by the two collects of a scrape.
    let snapshot: { at: number; rows: LagRow[] } | undefined;
    const rows = (): LagRow[] => {
      const now = Date.now();
      if (snapshot === undefined || now - snapshot.at > LAG_SNAPSHOT_REUSE_MS) {
        snapshot = { at: now, rows: lagRows(progress, consumerGroups(), isSystem) };
      }
      return snapshot.rows;
    };
    const lagLabels = ["consumer_group", "topic", "is_retry", "is_system"];
    gauge(registry, "rocketmq_consumer_lag_messages", "Messages not consumed yet", lagLabels, function () {
      this.reset();
      for (const r of rows()) this.set(r.labels, r.lag);
    });
    gauge(
      registry,
      "rocketmq_consumer_inflight_messages",
      "Messages received and not acknowledged yet",
      lagLabels,
      function () {
        this.reset();
        for (const r of rows()) this.set(r.labels, r.inflight);
      },
    );
  }

  return {
    messagesIn(topic, messageType, count, bytes, sizes) {
      if (isRetryTopic(topic) || isDlqTopic(topic)) return;
      const labels = { topic, message_type: messageType, is_system: isSystem(topic) };
      messagesIn.inc(labels, count);
      throughputIn.inc(labels, bytes);
      for (const size of sizes) messageSize.observe(labels, size);
    },
    messagesOut(topic, group, count, bytes) {
      if (isRetryTopic(topic) || isDlqTopic(topic)) return;
      const labels = { topic, consumer_group: group, is_system: isSystem(topic) };
      messagesOut.inc(labels, count);
      throughputOut.inc(labels, bytes);
    },
  };
}

/**
 * The message service with its traffic counted: stored messages (PUT_OK or FLUSH_DISK_TIMEOUT, both
 * are in the CommitLog) per topic and type, popped messages per topic read and group. Everything
 * else is passed through untouched.
 */
export function instrumentMessageService(
  service: BrokerMessageService,
  metrics: BrokerMetrics,
): BrokerMessageService {
  if (metrics === NOOP) return service;
  return {
    get brokerName() {
      return service.brokerName;
    },
    async sendMessages(request: SendRequest): Promise<SendResult[]> {
      const results = await service.sendMessages(request);
      countIn(metrics, request, results);
      return results;
    },
    async pop(group: string, topic: string, options: PopOptions): Promise<PoppedMessage[]> {
      const popped = await service.pop(group, topic, options);
      if (popped.length > 0) countOut(metrics, group, popped);
      return popped;
    },
    ack: (group, topic, handles) => service.ack(group, topic, handles),
    changeInvisibleTime: (group, topic, handle, ms, suspend) =>
      service.changeInvisibleTime(group, topic, handle, ms, suspend),
    resetLiteOffset: (group, topic, lite, position) => service.resetLiteOffset(group, topic, lite, position),
    forwardToDeadLetterQueue: (group, topic, handle) =>
      service.forwardToDeadLetterQueue(group, topic, handle),
    consumerProgress: (group, topic) => service.consumerProgress(group, topic),
    reviveDue: () => service.reviveDue(),
    endTransaction: (request) => service.endTransaction(request),
    setTransactionCheckListener: (listener) => service.setTransactionCheckListener(listener),
    checkTransactionsNow: () => service.checkTransactionsNow(),
    recallMessage: (topic, handle) => service.recallMessage(topic, handle),
    shutdown: () => service.shutdown(),
  };
}

function countIn(metrics: BrokerMetrics, request: SendRequest, results: readonly SendResult[]): void {
  const topic = results[0]?.topic ?? request.topic;
  // A batch is usually one type; group by type without allocating per message when it is.
  const byType = new Map<MessageTypeLabel, { count: number; bytes: number; sizes: number[] }>();
  for (let i = 0; i < results.length; i++) {
    const r = results[i] as SendResult;
    if (r.status !== PutMessageStatus.PUT_OK && r.status !== PutMessageStatus.FLUSH_DISK_TIMEOUT) continue;
    const m = request.messages[i];
    if (m === undefined) continue;
    const type = messageTypeOfProperties(m.properties);
    let sum = byType.get(type);
    if (sum === undefined) {
      sum = { count: 0, bytes: 0, sizes: [] };
      byType.set(type, sum);
    }
    sum.count++;
    sum.bytes += m.body.byteLength;
    sum.sizes.push(m.body.byteLength);
  }
  for (const [type, sum] of byType) metrics.messagesIn(topic, type, sum.count, sum.bytes, sum.sizes);
}

function countOut(metrics: BrokerMetrics, group: string, popped: readonly PoppedMessage[]): void {
  // Counted under the topic each record was read from, so redeliveries from retry topics are left out.
  let topic = popped[0]?.message.topic ?? "";
  let count = 0;
  let bytes = 0;
  for (const p of popped) {
    if (p.message.topic !== topic) {
      metrics.messagesOut(topic, group, count, bytes);
      topic = p.message.topic;
      count = 0;
      bytes = 0;
    }
    count++;
    bytes += p.message.body.byteLength;
  }
  if (count > 0) metrics.messagesOut(topic, group, count, bytes);
}

function getOrCreate<T>(
  registry: Registry,
  name: string,
  kind: abstract new (...args: never[]) => T,
  make: () => T,
): T {
  const existing = registry.getSingleMetric(name);
  return existing instanceof kind ? existing : make();
}

function counter(registry: Registry, name: string, help: string, labelNames: string[]): Counter<string> {
  return getOrCreate(
    registry,
    name,
    Counter,
    () => new Counter({ name, help, labelNames, registers: [registry] }),
  ) as Counter<string>;
}

function gauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  collect?: (this: Gauge<string>) => void | Promise<void>,
): Gauge<string> {
  return getOrCreate(
    registry,
    name,
    Gauge,
    () => new Gauge({ name, help, labelNames, registers: [registry], collect }),
  ) as Gauge<string>;
}

interface LagRow {
  labels: Record<string, string>;
  lag: number;
  inflight: number;
}

function lagRows(
  progress: BrokerMessageService["consumerProgress"],
  groups: Iterable<string>,
  isSystem: (topic: string) => string,
): LagRow[] {
  const rows: LagRow[] = [];
  for (const group of groups) {
    const byTopic = new Map<string, LagRow>();
    for (const q of progress(group).queues) {
      let row = byTopic.get(q.topic);
      if (row === undefined) {
        if (rows.length >= MAX_LAG_SERIES) return rows;
        row = {
          labels: {
            consumer_group: group,
            topic: q.topic,
            is_retry: String(isRetryTopic(q.topic)),
            is_system: isSystem(q.topic),
          },
          lag: 0,
          inflight: 0,
        };
        byTopic.set(q.topic, row);
        rows.push(row);
      }
      row.lag += q.lag;
      row.inflight += q.inflight;
    }
  }
  return rows;
}
