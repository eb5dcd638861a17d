// The Settings a client gets back on its Telemetry stream: its own settings merged with what the
// server decides (upstream GrpcClientSettingsManager). What the SDKs need from it is in
// protocol.md §8: producers must get an exponential backoff and max_body_size > 0 or they never
// start / refuse every send; push consumers read receive_batch_size, long_polling_timeout, fifo and
// the backoff policy.

import { clone, create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  ClientType,
  CustomizedBackoffSchema,
  ExponentialBackoffSchema,
  MetricSchema,
  type RetryPolicy,
  RetryPolicySchema,
  type Settings,
  SettingsSchema,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type { GroupRetryPolicy, SubscriptionGroupConfig } from "./backend.ts";
import type { ProxyLimits } from "./limits.ts";

/** Upstream messageDelayLevel, the CUSTOMIZED group retry policy's table. */
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = [
  1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
].map((s) => s * 1000);

/** Upstream SubscriptionGroupConfig.retryMaxTimes default. */
export const DEFAULT_RETRY_MAX_TIMES = 16;

/** The group config used when none can be read (upstream defaults). */
export function defaultSubscriptionGroup(groupName: string): SubscriptionGroupConfig {
  return {
    groupName,
    consumeEnable: true,
    consumeMessageOrderly: false,
    retryMaxTimes: DEFAULT_RETRY_MAX_TIMES,
    retryPolicy: { type: "CUSTOMIZED", nextDelaysMs: [...DEFAULT_RETRY_DELAYS_MS] },
  };
}

/** Max delivery attempts of a group: the first delivery plus its retries. */
export function maxDeliveryAttempts(group: SubscriptionGroupConfig): number {
  return group.retryMaxTimes + 1;
}

export function producerSettingsReply(client: Settings, limits: Readonly<ProxyLimits>): Settings {
  const reply = clone(SettingsSchema, client);
  reply.backoffPolicy = create(RetryPolicySchema, {
    maxAttempts: limits.producerMaxAttempts,
    strategy: {
      case: "exponentialBackoff",
      value: {
        initial: durationFromMs(limits.producerBackoffInitialMs),
        max: durationFromMs(limits.producerBackoffMaxMs),
        multiplier: limits.producerBackoffMultiplier,
      },
    },
  });
  if (reply.pubSub.case === "publishing") {
    reply.pubSub.value.maxBodySize = limits.maxBodyBytes;
    reply.pubSub.value.validateMessageType = limits.enableTopicMessageTypeCheck;
  }
  reply.metric = create(MetricSchema, { on: false });
  return reply;
}

export function consumerSettingsReply(
  client: Settings,
  group: SubscriptionGroupConfig,
  limits: Readonly<ProxyLimits>,
): Settings {
  const reply = clone(SettingsSchema, client);
  reply.backoffPolicy = retryPolicyOf(group);
  // Lite push consumers read only an exponential backoff (with a customized one the Node SDK retries
  // nothing): they get the exponential equivalent of a customized table.
  const strategy = reply.backoffPolicy.strategy;
  if (client.clientType === ClientType.LITE_PUSH_CONSUMER && strategy.case === "customizedBackoff") {
    const next = strategy.value.next;
    reply.backoffPolicy.strategy = {
      case: "exponentialBackoff",
      value: create(ExponentialBackoffSchema, {
        initial: next[0],
        max: next[next.length - 1],
        multiplier: 2,
      }),
    };
  }
  if (reply.pubSub.case === "subscription") {
    const subscription = reply.pubSub.value;
    subscription.fifo = group.consumeMessageOrderly;
    subscription.liteSubscriptionQuota = limits.liteSubscriptionQuota;
    subscription.maxLiteTopicSize = limits.maxLiteTopicSize;
    subscription.receiveBatchSize = limits.maxReceiveBatchSize;
    subscription.longPollingTimeout = durationFromMs(limits.maxLongPollingMs);
  }
  reply.metric = create(MetricSchema, { on: false });
  return reply;
}

export function retryPolicyOf(group: SubscriptionGroupConfig): RetryPolicy {
  return create(RetryPolicySchema, {
    maxAttempts: maxDeliveryAttempts(group),
    strategy: strategyOf(group.retryPolicy),
  });
}

function strategyOf(policy: GroupRetryPolicy): RetryPolicy["strategy"] {
  if (policy.type === "EXPONENTIAL") {
    return {
      case: "exponentialBackoff",
      value: create(ExponentialBackoffSchema, {
        initial: durationFromMs(policy.initialMs),
        max: durationFromMs(policy.maxMs),
        multiplier: policy.multiplier,
      }),
    };
  }
  return {
    case: "customizedBackoff",
    value: create(CustomizedBackoffSchema, { next: policy.nextDelaysMs.map((ms) => durationFromMs(ms)) }),
  };
}
