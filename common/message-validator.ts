// What a published message may carry: tag, keys, message group, user properties and body, with the
// upstream proxy's rules and limits (SendMessageActivity / GrpcValidator / ProxyConfig defaults).

import { ErrorCode, RmqError } from "./errors.ts";
import { containsControlCharacter, isBlank, quoteForMessage, utf8Length } from "./value-validator.ts";

/** ProxyConfig.maxUserPropertySize (16 KiB): UTF-8 bytes of user property names + values + tag + keys. */
export const MAX_USER_PROPERTY_SIZE = 16 * 1024;
/** ProxyConfig.userPropertyMaxNum (128). */
export const MAX_USER_PROPERTY_COUNT = 128;
/** ProxyConfig.maxMessageGroupSize (64): a message group must be SHORTER than this many UTF-8 bytes, as upstream. */
export const MAX_MESSAGE_GROUP_SIZE = 64;
/** ProxyConfig.maxMessageSize (4 MiB). */
export const DEFAULT_MAX_MESSAGE_BODY_SIZE = 4 * 1024 * 1024;

/**
 * Property names the system owns (upstream MessageConst.STRING_HASH_SET): a client may not set them
 * as user properties.
 */
export const RESERVED_PROPERTY_NAMES: ReadonlySet<string> = new Set([
  "TRACE_ON",
  "MSG_REGION",
  "KEYS",
  "TAGS",
  "WAIT",
  "DELAY",
  "RETRY_TOPIC",
  "REAL_TOPIC",
  "REAL_QID",
  "TRAN_MSG",
  "PGROUP",
  "MIN_OFFSET",
  "MAX_OFFSET",
  "BUYER_ID",
  "ORIGIN_MESSAGE_ID",
  "TRANSFER_FLAG",
  "CORRECTION_FLAG",
  "MQ2_FLAG",
  "RECONSUME_TIME",
  "UNIQ_KEY",
  "MAX_RECONSUME_TIMES",
  "CONSUME_START_TIME",
  "POP_CK",
  "POP_CK_OFFSET",
  "1ST_POP_TIME",
  "TRAN_PREPARED_QUEUE_OFFSET",
  "DUP_INFO",
  "EXTEND_UNIQ_INFO",
  "INSTANCE_ID",
  "CORRELATION_ID",
  "REPLY_TO_CLIENT",
  "TTL",
  "ARRIVE_TIME",
  "PUSH_REPLY_TIME",
  "CLUSTER",
  "MSG_TYPE",
  "INNER_MULTI_QUEUE_OFFSET",
  "TIMER_DELAY_MS",
  "TIMER_DELAY_SEC",
  "TIMER_DELIVER_MS",
  "TIMER_ENQUEUE_MS",
  "TIMER_DEQUEUE_MS",
  "TIMER_ROLL_TIMES",
  "TIMER_OUT_MS",
  "TIMER_DEL_UNIQKEY",
  "TIMER_DELAY_LEVEL",
  "__BORNHOST",
  "BORN_TIMESTAMP",
  "DLQ_ORIGIN_TOPIC",
  "DLQ_ORIGIN_MESSAGE_ID",
  "__CRC32#",
]);

/** An empty tag means "no tag". Otherwise: not blank, no `|` (it separates tags in subscriptions), no control characters. */
export function validateTag(tag: string): void {
  if (tag.length === 0) return;
  const bad = (rule: string) =>
    new RmqError(ErrorCode.IllegalMessageTag, `tag ${quoteForMessage(tag)} is illegal: ${rule}`);
  if (isBlank(tag)) throw bad("a tag cannot be only whitespace");
  if (tag.includes("|")) throw bad("a tag cannot contain '|'");
  if (containsControlCharacter(tag)) throw bad("a tag cannot contain control characters");
}

/** A message key: not blank, no control characters (an empty key is skipped, as upstream). */
export function validateKey(key: string): void {
  if (key.length === 0) return;
  const bad = (rule: string) =>
    new RmqError(ErrorCode.IllegalMessageKey, `message key ${quoteForMessage(key)} is illegal: ${rule}`);
  if (isBlank(key)) throw bad("a key cannot be only whitespace");
  if (containsControlCharacter(key)) throw bad("a key cannot contain control characters");
}

/** A FIFO message group: not blank, fewer than 64 UTF-8 bytes, no control characters. */
export function validateMessageGroup(messageGroup: string, maxSize = MAX_MESSAGE_GROUP_SIZE): void {
  if (messageGroup.length === 0) return;
  const bad = (rule: string) =>
    new RmqError(
      ErrorCode.IllegalMessageGroup,
      `message group ${quoteForMessage(messageGroup)} is illegal: ${rule}`,
    );
  if (isBlank(messageGroup)) throw bad("a message group cannot be only whitespace");
  const size = utf8Length(messageGroup);
  if (maxSize > 0 && size >= maxSize) {
    throw bad(`a message group must be shorter than ${maxSize} UTF-8 bytes, this one has ${size}`);
  }
  if (containsControlCharacter(messageGroup)) throw bad("a message group cannot contain control characters");
}

export interface UserPropertyLimits {
  maxCount?: number;
  maxTotalSize?: number;
}

/**
 * User properties plus the tag and keys they are counted with: at most 128 properties, no reserved
 * names, no control characters in names or values, at most 16 KiB of UTF-8 in names + values + tag + keys.
 */
export function validateUserProperties(
  properties: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  tagAndKeys: { tag?: string; keys?: readonly string[] } = {},
  limits: UserPropertyLimits = {},
): void {
  const maxCount = limits.maxCount ?? MAX_USER_PROPERTY_COUNT;
  const maxTotalSize = limits.maxTotalSize ?? MAX_USER_PROPERTY_SIZE;
  const entries = properties instanceof Map ? [...properties.entries()] : Object.entries(properties);
  if (entries.length > maxCount) {
    throw new RmqError(
      ErrorCode.MessagePropertiesTooLarge,
      `message has ${entries.length} user properties, more than the limit of ${maxCount}`,
    );
  }
  let size = 0;
  for (const [name, value] of entries) {
    if (RESERVED_PROPERTY_NAMES.has(name)) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `user property ${quoteForMessage(name)} is illegal: the name is reserved for system properties`,
      );
    }
    if (name.length === 0 || containsControlCharacter(name)) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `user property ${quoteForMessage(name)} is illegal: a property name cannot be empty or contain control characters`,
      );
    }
    if (containsControlCharacter(value)) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `value ${quoteForMessage(value)} of user property ${quoteForMessage(name)} is illegal: a property value cannot contain control characters`,
      );
    }
    size += utf8Length(name) + utf8Length(value);
  }
  if (tagAndKeys.tag !== undefined) size += utf8Length(tagAndKeys.tag);
  for (const k of tagAndKeys.keys ?? []) size += utf8Length(k);
  if (size > maxTotalSize) {
    throw new RmqError(
      ErrorCode.MessagePropertiesTooLarge,
      `user properties, tag and keys take ${size} bytes, more than the limit of ${maxTotalSize} bytes`,
    );
  }
}

/** The body: not empty (unless `allowEmpty`), at most `maxSize` bytes (4 MiB by default; <= 0 disables the check). */
export function validateBody(
  body: Uint8Array,
  maxSize = DEFAULT_MAX_MESSAGE_BODY_SIZE,
  allowEmpty = false,
): void {
  if (!allowEmpty && body.byteLength === 0) {
    throw new RmqError(ErrorCode.MessageBodyEmpty, "message body is empty: a message must carry a body");
  }
  if (maxSize > 0 && body.byteLength > maxSize) {
    throw new RmqError(
      ErrorCode.MessageBodyTooLarge,
      `message body of ${body.byteLength} bytes is too large: the limit is ${maxSize} bytes`,
    );
  }
}
