// Topic names: the character and length rules, and which topics belong to the system (upstream
// TopicValidator, and the proxy's GrpcValidator for what a client may touch).

import { ErrorCode, RmqError } from "./errors.ts";
import { quoteForMessage } from "./value-validator.ts";

/** Upstream TOPIC_MAX_LENGTH (127, also MessageStoreConfig.maxTopicLength = Byte.MAX_VALUE). */
export const TOPIC_MAX_LENGTH = 127;
/** Retry and DLQ topics embed a group name, so they may be longer (255). */
export const RETRY_OR_DLQ_TOPIC_MAX_LENGTH = 255;
export const TOPIC_NAME_PATTERN = "^[%|a-zA-Z0-9_-]+$";
const TOPIC_NAME_REGEX = /^[%|a-zA-Z0-9_-]+$/;

export const RETRY_GROUP_TOPIC_PREFIX = "%RETRY%";
export const DLQ_GROUP_TOPIC_PREFIX = "%DLQ%";
/** Topics whose name starts with this are system topics (upstream SYSTEM_TOPIC_PREFIX). */
export const SYSTEM_TOPIC_PREFIX = "rmq_sys_";
export const SYNC_BROKER_MEMBER_GROUP_PREFIX = `${SYSTEM_TOPIC_PREFIX}SYNC_BROKER_MEMBER_`;
export const REVIVE_TOPIC_PREFIX = `${SYSTEM_TOPIC_PREFIX}REVIVE_LOG_`;
export const REPLY_TOPIC_POSTFIX = "REPLY_TOPIC";

/** The fixed system topic names (upstream TopicValidator constants). */
export const SystemTopic = {
  AUTO_CREATE_TOPIC_KEY: "TBW102",
  SCHEDULE: "SCHEDULE_TOPIC_XXXX",
  BENCHMARK: "BenchmarkTest",
  TRANS_HALF: "RMQ_SYS_TRANS_HALF_TOPIC",
  TRACE: "RMQ_SYS_TRACE_TOPIC",
  TRANS_OP_HALF: "RMQ_SYS_TRANS_OP_HALF_TOPIC",
  TRANS_CHECK_MAX_TIME: "TRANS_CHECK_MAX_TIME_TOPIC",
  SELF_TEST: "SELF_TEST_TOPIC",
  OFFSET_MOVED_EVENT: "OFFSET_MOVED_EVENT",
  ROCKSDB_OFFSET: "CHECKPOINT_TOPIC",
  /** The 5.x timer wheel's internal topic (upstream TimerMessageStore.TIMER_TOPIC). */
  TIMER: `${SYSTEM_TOPIC_PREFIX}wheel_timer`,
} as const;

const FIXED_SYSTEM_TOPICS: ReadonlySet<string> = new Set(Object.values(SystemTopic));

/** System topics a producer may never send to (upstream NOT_ALLOWED_SEND_TOPIC_SET). */
const NOT_ALLOWED_SEND_TOPICS: ReadonlySet<string> = new Set([
  SystemTopic.SCHEDULE,
  SystemTopic.TRANS_HALF,
  SystemTopic.TRANS_OP_HALF,
  SystemTopic.TRANS_CHECK_MAX_TIME,
  SystemTopic.SELF_TEST,
  SystemTopic.OFFSET_MOVED_EVENT,
]);

function illegal(topic: string, rule: string): RmqError {
  return new RmqError(ErrorCode.IllegalTopic, `topic ${quoteForMessage(topic)} is illegal: ${rule}`);
}

export function isRetryTopic(topic: string): boolean {
  return topic.startsWith(RETRY_GROUP_TOPIC_PREFIX);
}

export function isDlqTopic(topic: string): boolean {
  return topic.startsWith(DLQ_GROUP_TOPIC_PREFIX);
}

export function retryTopicOf(group: string): string {
  return RETRY_GROUP_TOPIC_PREFIX + group;
}

export function dlqTopicOf(group: string): string {
  return DLQ_GROUP_TOPIC_PREFIX + group;
}

/** The name rules every topic obeys: not blank, only `^[%|a-zA-Z0-9_-]+$`, at most 127 chars (255 for retry/DLQ). */
export function validateTopicName(topic: string): void {
  if (topic.trim().length === 0) throw illegal(topic, "a topic name cannot be blank");
  if (!TOPIC_NAME_REGEX.test(topic)) {
    throw illegal(topic, `a topic name may only contain characters matching ${TOPIC_NAME_PATTERN}`);
  }
  const max = isRetryTopic(topic) || isDlqTopic(topic) ? RETRY_OR_DLQ_TOPIC_MAX_LENGTH : TOPIC_MAX_LENGTH;
  if (topic.length > max) {
    throw illegal(
      topic,
      `a ${max === TOPIC_MAX_LENGTH ? "" : "retry or DLQ "}topic name is at most ${max} characters, this one has ${topic.length}`,
    );
  }
}

/**
 * True for system topics: the fixed names, anything under `rmq_sys_`, and the per-broker names a
 * broker registers at start (its cluster name, broker name, `<cluster>_REPLY_TOPIC`, ...) passed in
 * `brokerSystemTopics`.
 */
export function isSystemTopic(topic: string, brokerSystemTopics?: ReadonlySet<string>): boolean {
  return (
    FIXED_SYSTEM_TOPICS.has(topic) ||
    topic.startsWith(SYSTEM_TOPIC_PREFIX) ||
    (brokerSystemTopics?.has(topic) ?? false)
  );
}

export function isNotAllowedSendTopic(topic: string): boolean {
  return NOT_ALLOWED_SEND_TOPICS.has(topic);
}

/** What the proxy checks before a client may send to or consume from `topic`: name rules, and not a system topic. */
export function validateClientTopic(topic: string, brokerSystemTopics?: ReadonlySet<string>): void {
  validateTopicName(topic);
  if (isSystemTopic(topic, brokerSystemTopics)) {
    throw illegal(topic, "it is a system topic, which clients cannot access");
  }
}

/** What a broker checks on a send request: name rules, and not one of the internal topics nobody may send to. */
export function validateSendTopic(topic: string): void {
  validateTopicName(topic);
  if (isNotAllowedSendTopic(topic)) throw illegal(topic, "sending to this system topic is not allowed");
}
