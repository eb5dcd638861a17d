// Checks one message against the store's limits and lays out its record fields, before anything is
// appended (a batch is validated whole first, so a bad message appends nothing).
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { ipToBytes } from "./host-address.ts";
import { calRecordLength, MAX_PROPERTIES_LENGTH, type RecordFields } from "./message-codec.ts";
import { MessageConst } from "./message-const.ts";
import { createUniqKey } from "./message-id.ts";
import { propertiesToString } from "./message-properties.ts";
import type { MessageInput } from "./message-store-types.ts";

/** Topic length limit (upstream TopicValidator.TOPIC_MAX_LENGTH). */
export const TOPIC_MAX_LENGTH = 127;
/** Retry and dead-letter topics embed a group name and may be longer. */
export const RETRY_OR_DLQ_TOPIC_MAX_LENGTH = 255;
const RETRY_GROUP_TOPIC_PREFIX = "%RETRY%";
const DLQ_GROUP_TOPIC_PREFIX = "%DLQ%";
/** Validated topic names are remembered (bounded) so the check costs one lookup on the hot path. */
const TOPIC_CACHE_LIMIT = 65536;
const QUEUE_ID_MAX = 0x7fffffff;

export interface PreparedMessage {
  fields: RecordFields;
  totalSize: number;
  uniqKey: string;
  /** SYNC_FLUSH: wait for the fdatasync (the WAIT property is not "false"). */
  waitFlush: boolean;
}

const validTopics = new Set<string>();

/**
 * Store-level topic rules: non-empty, at most 127 UTF-8 bytes (255 for %RETRY%/%DLQ% topics), and
 * nothing that is unsafe as a directory name (the ConsumeQueue lives under consumequeue/{topic}).
 * The character whitelist of upstream's TopicValidator is the broker's job, at topic creation.
 */
export function checkTopic(topic: string): number {
  const len = Buffer.byteLength(topic, "utf8");
  if (validTopics.has(topic)) return len;
  if (len === 0) throw new RmqError(ErrorCode.IllegalTopic, "topic is empty");
  const max =
    topic.startsWith(RETRY_GROUP_TOPIC_PREFIX) || topic.startsWith(DLQ_GROUP_TOPIC_PREFIX)
      ? RETRY_OR_DLQ_TOPIC_MAX_LENGTH
      : TOPIC_MAX_LENGTH;
  if (len > max) throw new RmqError(ErrorCode.IllegalTopic, `topic is ${len} bytes, the limit is ${max}`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
  if (topic === "." || topic === ".." || /[/\\\u0000-\u001f\u007f]/.test(topic)) {
    throw new RmqError(
      ErrorCode.IllegalTopic,
      `topic ${JSON.stringify(topic)} holds a character not allowed in a topic`,
    );
  }
  if (validTopics.size >= TOPIC_CACHE_LIMIT) validTopics.clear();
  validTopics.add(topic);
  return len;
}

export function prepareMessage(
  msg: MessageInput,
  maxMessageSize: number,
  maxRecordSize: number,
  storeHost: Uint8Array,
  storePort: number,
  now: number,
): PreparedMessage {
  const topicLength = checkTopic(msg.topic);
  if (!Number.isInteger(msg.queueId) || msg.queueId < 0 || msg.queueId > QUEUE_ID_MAX) {
    throw new RmqError(ErrorCode.IllegalArgument, `queueId ${msg.queueId} is not a non-negative int`);
  }
  if (msg.body.length > maxMessageSize) {
    throw new RmqError(
      ErrorCode.MessageBodyTooLarge,
      `body is ${msg.body.length} bytes, maxMessageSize is ${maxMessageSize}`,
    );
  }
  const given = msg.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX);
  const uniqKey = given !== undefined && given.length > 0 ? given : createUniqKey(now);
  const properties =
    given === uniqKey
      ? propertiesToString(msg.properties)
      : propertiesToString(msg.properties, MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX, uniqKey);
  const propertiesLength = Buffer.byteLength(properties, "utf8");
  if (propertiesLength > MAX_PROPERTIES_LENGTH) {
    throw new RmqError(
      ErrorCode.MessagePropertiesTooLarge,
      `properties are ${propertiesLength} bytes, the limit is ${MAX_PROPERTIES_LENGTH}`,
    );
  }
  const bornHost = ipToBytes(msg.bornHost.address);
  const totalSize = calRecordLength(
    bornHost.length,
    storeHost.length,
    msg.body.length,
    topicLength,
    propertiesLength,
  );
  if (totalSize > maxRecordSize) {
    throw new RmqError(
      ErrorCode.MessageBodyTooLarge,
      `record of ${totalSize} bytes does not fit a CommitLog segment`,
    );
  }
  return {
    fields: {
      queueId: msg.queueId,
      flag: msg.flag,
      queueOffset: 0,
      physicalOffset: 0,
      sysFlag: msg.sysFlag,
      bornTimestamp: msg.bornTimestamp,
      bornHost,
      bornPort: msg.bornHost.port,
      storeTimestamp: 0,
      storeHost,
      storePort,
      reconsumeTimes: msg.reconsumeTimes,
      preparedTransactionOffset: msg.preparedTransactionOffset,
      body: msg.body,
      topic: msg.topic,
      topicLength,
      properties,
      propertiesLength,
    },
    totalSize,
    uniqKey,
    waitFlush: msg.properties.get(MessageConst.PROPERTY_WAIT_STORE_MSG_OK) !== "false",
  };
}
