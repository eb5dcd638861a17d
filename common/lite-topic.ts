// Lite topics (RIP-83): many small ordered streams multiplexed onto one parent topic of type LITE.
// Each lite topic is stored as its own one-queue internal topic `%LMQ%$<parent>$<lite>` (upstream
// LiteUtil names the same light message queue), so it gets its own ConsumeQueue, offsets and FIFO
// state without a topic config of its own: permissions and type are the parent's.

import { ErrorCode, RmqError } from "./errors.ts";

/** Prefix of the internal topic of a lite topic (upstream MixAll.LMQ_PREFIX + "$"). */
export const LMQ_PREFIX = "%LMQ%$";
const SEPARATOR = "$";
/** Longest lite topic name (the SDKs' default max_lite_topic_size, 64 characters). */
export const MAX_LITE_TOPIC_LENGTH = 64;
/** Characters of a lite topic name (upstream GrpcValidator.validateLiteTopic). */
const LITE_TOPIC_REGEX = /^[a-zA-Z0-9_-]+$/;
/** The message property naming a message's lite topic (upstream MessageConst.PROPERTY_LITE_TOPIC). */
export const PROPERTY_LITE_TOPIC = "__LITE_TOPIC";

/** Throws ILLEGAL_LITE_TOPIC unless `name` is 1..64 characters of [a-zA-Z0-9_-]. */
export function validateLiteTopic(name: string, maxLength: number = MAX_LITE_TOPIC_LENGTH): void {
  if (name.trim().length === 0) throw new RmqError(ErrorCode.IllegalLiteTopic, "lite topic is blank");
  if (name.length > maxLength)
    throw new RmqError(
      ErrorCode.IllegalLiteTopic,
      `lite topic ${JSON.stringify(name.slice(0, 80))} is longer than ${maxLength} characters`,
    );
  if (!LITE_TOPIC_REGEX.test(name))
    throw new RmqError(
      ErrorCode.IllegalLiteTopic,
      `lite topic ${JSON.stringify(name)} may only contain characters matching ${LITE_TOPIC_REGEX.source}`,
    );
}

/** Where a new lite subscription starts (the v2 OffsetOption kinds that move the offset). */
export type LiteOffsetPosition =
  | { kind: "MIN" }
  | { kind: "MAX" }
  | { kind: "OFFSET"; value: number }
  | { kind: "TAIL_N"; value: number };

/** The internal topic holding the messages of lite topic `lite` of `parent`. */
export function lmqName(parent: string, lite: string): string {
  return `${LMQ_PREFIX}${parent}${SEPARATOR}${lite}`;
}

export function isLmq(topic: string): boolean {
  return topic.startsWith(LMQ_PREFIX);
}

/** Parent and lite topic of an internal lite-topic name, or undefined for any other topic. */
export function parseLmqName(topic: string): { parent: string; lite: string } | undefined {
  if (!isLmq(topic)) return undefined;
  const rest = topic.slice(LMQ_PREFIX.length);
  const at = rest.lastIndexOf(SEPARATOR);
  if (at <= 0 || at === rest.length - 1) return undefined;
  return { parent: rest.slice(0, at), lite: rest.slice(at + 1) };
}
