// Every limit and timing of the gRPC proxy in one place, each with the upstream default it follows
// (apache/rocketmq ProxyConfig unless said otherwise). createProxyServer takes a partial override.

import { ErrorCode, RmqError } from "../common/errors.ts";
import { MAX_LITE_TOPIC_LENGTH } from "../common/lite-topic.ts";
import {
  DEFAULT_MAX_MESSAGE_BODY_SIZE,
  MAX_MESSAGE_GROUP_SIZE,
  MAX_USER_PROPERTY_COUNT,
  MAX_USER_PROPERTY_SIZE,
} from "../common/message-validator.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * Largest gRPC message accepted from a client (connect `readMaxBytes`); bigger ones fail with
 * RESOURCE_EXHAUSTED. Upstream grpcMaxInboundMessageSize is 130 MiB; ours is smaller on purpose: it
 * still fits a batch of several 4 MiB bodies plus headers, and bounds memory per request.
 */
export const DEFAULT_MAX_INBOUND_MESSAGE_BYTES = 32 * MiB;
/** Node http2 `maxSessionMemory` in MiB (Node default 10): room for a few large frames per connection. */
export const DEFAULT_MAX_SESSION_MEMORY_MB = 64;
/** Concurrent streams per connection (Node default 4294967295; grpc-java unlimited). */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 1000;
/** A connection with no open stream for this long is closed (grpcClientIdleTimeMills 120 s). */
export const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 120 * SECOND;
/** A client session without heartbeat, settings or Telemetry traffic for this long is dropped (channelExpiredTimeout 120 s). */
export const DEFAULT_CLIENT_SESSION_EXPIRY_MS = 120 * SECOND;
/** How long close() waits for in-flight calls before cutting connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5 * SECOND;

/** maxMessageSize (4 MiB); also what Settings.publishing.max_body_size tells producers. */
export const DEFAULT_MAX_BODY_BYTES = DEFAULT_MAX_MESSAGE_BODY_SIZE;
/**
 * A later delivery_timestamp is ILLEGAL_DELIVERY_TIME. Upstream's proxy maxDelayTimeMills is 1 day;
 * ours is the broker's timerMaxDelaySec default (3 days), so the broker's own limit is the one users meet.
 */
export const DEFAULT_MAX_DELAY_MS = 72 * HOUR;
/** Lite topics one lite push consumer may listen to per parent topic (advertised as lite_subscription_quota; the SDKs default to 100). */
export const DEFAULT_LITE_SUBSCRIPTION_QUOTA = 1000;
/** Longest lite topic name (advertised as max_lite_topic_size; the SDKs' default, 64). */
export const DEFAULT_MAX_LITE_TOPIC_SIZE = MAX_LITE_TOPIC_LENGTH;
/** maxTransactionRecoverySecond (1 h): a longer orphaned_transaction_recovery_duration is BAD_REQUEST. */
export const DEFAULT_MAX_TRANSACTION_RECOVERY_MS = HOUR;

/** grpcClientConsumerMinLongPollingTimeoutMillis (5 s). */
export const DEFAULT_MIN_LONG_POLLING_MS = 5 * SECOND;
/** grpcClientConsumerMaxLongPollingTimeoutMillis (20 s); also Settings.subscription.long_polling_timeout. */
export const DEFAULT_MAX_LONG_POLLING_MS = 20 * SECOND;
/** Held polls answer this much before the client's deadline so the reply still arrives (ours). */
export const LONG_POLLING_DEADLINE_MARGIN_MS = 200;
/**
 * Largest response message grpc-js accepts by default, and the Node SDK does not raise it: a delivered
 * message bigger than this (a body near the 4 MiB maximum plus its properties) cannot reach a Node
 * client. The proxy cannot split one message, so it only warns.
 */
export const NODE_CLIENT_MAX_RESPONSE_BYTES = 4 * MiB;
/** ProxyUtils.MAX_MSG_NUMS_FOR_POP_REQUEST (32); also Settings.subscription.receive_batch_size. */
export const DEFAULT_MAX_RECEIVE_BATCH_SIZE = 32;
/** minInvisibleTimeMillsForRecv (10 s). */
export const DEFAULT_MIN_INVISIBLE_MS = 10 * SECOND;
/** maxInvisibleTimeMills (12 h). */
export const DEFAULT_MAX_INVISIBLE_MS = 12 * HOUR;
/** defaultInvisibleTimeMills (60 s): what auto_renew receives use, then renewed in the background. */
export const DEFAULT_AUTO_RENEW_INVISIBLE_MS = MINUTE;
/** renewAheadTimeMillis (10 s): renew this long before a handle would expire. */
export const DEFAULT_RENEW_AHEAD_MS = 10 * SECOND;
/** renewMaxTimeMillis (3 h): stop renewing after this long; the message then becomes visible again. */
export const DEFAULT_RENEW_MAX_MS = 3 * HOUR;
/** RenewStrategyPolicy: invisible time granted by the n-th renewal (the last step repeats). */
export const DEFAULT_RENEW_STEPS_MS: readonly number[] = [
  MINUTE,
  3 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  30 * MINUTE,
  HOUR,
];
/** invisibleTimeMillisWhenClear (1 s): handles of a departed client come back this soon. */
export const DEFAULT_RELEASE_INVISIBLE_MS = SECOND;

/** grpcClientProducerMaxAttempts (3) and the exponential backoff Settings give producers (10 ms ×2 up to 1 s). */
export const DEFAULT_PRODUCER_MAX_ATTEMPTS = 3;
export const DEFAULT_PRODUCER_BACKOFF_INITIAL_MS = 10;
export const DEFAULT_PRODUCER_BACKOFF_MAX_MS = 1000;
export const DEFAULT_PRODUCER_BACKOFF_MULTIPLIER = 2;
/** The Settings reply is written again this long after the first (works around a Node SDK start-up race; ours). */
export const SETTINGS_RESEND_DELAY_MS = 1000;

export interface ProxyLimits {
  maxInboundMessageBytes: number;
  maxSessionMemoryMb: number;
  maxConcurrentStreams: number;
  clientIdleTimeoutMs: number;
  clientSessionExpiryMs: number;
  shutdownGraceMs: number;
  maxBodyBytes: number;
  maxDelayMs: number;
  maxTransactionRecoveryMs: number;
  maxUserPropertyCount: number;
  maxUserPropertyBytes: number;
  maxMessageGroupBytes: number;
  /** enableTopicMessageTypeCheck (true): reject messages whose type the topic does not accept. */
  enableTopicMessageTypeCheck: boolean;
  minLongPollingMs: number;
  maxLongPollingMs: number;
  maxReceiveBatchSize: number;
  minInvisibleMs: number;
  maxInvisibleMs: number;
  autoRenewInvisibleMs: number;
  renewAheadMs: number;
  renewMaxMs: number;
  renewStepsMs: readonly number[];
  releaseInvisibleMs: number;
  producerMaxAttempts: number;
  producerBackoffInitialMs: number;
  producerBackoffMaxMs: number;
  producerBackoffMultiplier: number;
  settingsResendDelayMs: number;
  liteSubscriptionQuota: number;
  maxLiteTopicSize: number;
}

export const DEFAULT_PROXY_LIMITS: Readonly<ProxyLimits> = Object.freeze({
  maxInboundMessageBytes: DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
  maxSessionMemoryMb: DEFAULT_MAX_SESSION_MEMORY_MB,
  maxConcurrentStreams: DEFAULT_MAX_CONCURRENT_STREAMS,
  clientIdleTimeoutMs: DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
  clientSessionExpiryMs: DEFAULT_CLIENT_SESSION_EXPIRY_MS,
  shutdownGraceMs: DEFAULT_SHUTDOWN_GRACE_MS,
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  maxDelayMs: DEFAULT_MAX_DELAY_MS,
  liteSubscriptionQuota: DEFAULT_LITE_SUBSCRIPTION_QUOTA,
  maxLiteTopicSize: DEFAULT_MAX_LITE_TOPIC_SIZE,
  maxTransactionRecoveryMs: DEFAULT_MAX_TRANSACTION_RECOVERY_MS,
  maxUserPropertyCount: MAX_USER_PROPERTY_COUNT,
  maxUserPropertyBytes: MAX_USER_PROPERTY_SIZE,
  maxMessageGroupBytes: MAX_MESSAGE_GROUP_SIZE,
  enableTopicMessageTypeCheck: true,
  minLongPollingMs: DEFAULT_MIN_LONG_POLLING_MS,
  maxLongPollingMs: DEFAULT_MAX_LONG_POLLING_MS,
  maxReceiveBatchSize: DEFAULT_MAX_RECEIVE_BATCH_SIZE,
  minInvisibleMs: DEFAULT_MIN_INVISIBLE_MS,
  maxInvisibleMs: DEFAULT_MAX_INVISIBLE_MS,
  autoRenewInvisibleMs: DEFAULT_AUTO_RENEW_INVISIBLE_MS,
  renewAheadMs: DEFAULT_RENEW_AHEAD_MS,
  renewMaxMs: DEFAULT_RENEW_MAX_MS,
  renewStepsMs: DEFAULT_RENEW_STEPS_MS,
  releaseInvisibleMs: DEFAULT_RELEASE_INVISIBLE_MS,
  producerMaxAttempts: DEFAULT_PRODUCER_MAX_ATTEMPTS,
  producerBackoffInitialMs: DEFAULT_PRODUCER_BACKOFF_INITIAL_MS,
  producerBackoffMaxMs: DEFAULT_PRODUCER_BACKOFF_MAX_MS,
  producerBackoffMultiplier: DEFAULT_PRODUCER_BACKOFF_MULTIPLIER,
  settingsResendDelayMs: SETTINGS_RESEND_DELAY_MS,
});

export function resolveProxyLimits(overrides: Partial<ProxyLimits> = {}): Readonly<ProxyLimits> {
  const limits: ProxyLimits = { ...DEFAULT_PROXY_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof ProxyLimits, unknown][]) {
    if (value !== undefined) (limits as unknown as Record<string, unknown>)[key] = value;
  }
  if (limits.minLongPollingMs > limits.maxLongPollingMs) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      `minLongPollingMs (${limits.minLongPollingMs}) must not exceed maxLongPollingMs (${limits.maxLongPollingMs})`,
    );
  }
  if (limits.maxInboundMessageBytes < limits.maxBodyBytes) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      `maxInboundMessageBytes (${limits.maxInboundMessageBytes}) must be at least maxBodyBytes (${limits.maxBodyBytes})`,
    );
  }
  return Object.freeze(limits);
}
