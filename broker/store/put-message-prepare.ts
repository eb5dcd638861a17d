// Checks one message against the store's limits and lays out its record fields, before anything is
// appended (a batch is validated whole first, so a bad message appends nothing).
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { ipToBytes } from "./host-address.ts";
import { calRecordLength, MAX_PROPERTIES_LENGTH, recordSysFlag } from "./message-codec.ts";
import { MessageConst } from "./message-const.ts";
import { createUniqKey, type OffsetMsgIdEncoder } from "./message-id.ts";
import { asciiPropertyLength } from "./message-properties.ts";
import type { MessageInput } from "./message-store-types.ts";
import { PutRecord } from "./put-record.ts";
import { tagsString2tagsCode } from "./tags-code.ts";

/** Topic length limit (upstream TopicValidator.TOPIC_MAX_LENGTH). */
export const TOPIC_MAX_LENGTH = 127;
/** Retry and dead-letter topics embed a group name and may be longer. */
export const RETRY_OR_DLQ_TOPIC_MAX_LENGTH = 255;
const RETRY_GROUP_TOPIC_PREFIX = "%RETRY%";
const DLQ_GROUP_TOPIC_PREFIX = "%DLQ%";
/** Validated topic names are remembered (bounded) so the check costs one lookup on the hot path. */
const TOPIC_CACHE_LIMIT = 65536;
const QUEUE_ID_MAX = 0x7fffffff;

/** What the store adds to every put: its limits and identity. */
export interface PutContext {
  maxMessageSize: number;
  maxRecordSize: number;
  storeHost: Uint8Array;
  storePort: number;
  /** Makes the offset msgIds of this store's records. */
  msgIds: OffsetMsgIdEncoder;
}

/** Valid topic -> its UTF-8 length. */
const validTopics = new Map<string, number>();

/**
 * Store-level topic rules: non-empty, at most 127 UTF-8 bytes (255 for %RETRY%/%DLQ% topics), well-formed
 * UTF-16 (a lone surrogate would be stored as U+FFFD and read back as another topic), and nothing that
 * is unsafe as a directory name (the ConsumeQueue lives under consumequeue/{topic}). The character
 * whitelist of upstream's TopicValidator is the broker's job, at topic creation. Returns the UTF-8 length.
 */
export function checkTopic(topic: string): number {
  const known = validTopics.get(topic);
  if (known !== undefined) return known;
  const len = Buffer.byteLength(topic, "utf8");
  if (len === 0) throw new RmqError(ErrorCode.IllegalTopic, "topic is empty");
  const max =
    topic.startsWith(RETRY_GROUP_TOPIC_PREFIX) || topic.startsWith(DLQ_GROUP_TOPIC_PREFIX)
      ? RETRY_OR_DLQ_TOPIC_MAX_LENGTH
      : TOPIC_MAX_LENGTH;
  if (len > max) throw new RmqError(ErrorCode.IllegalTopic, `topic is ${len} bytes, the limit is ${max}`);
  if (
    topic === "." ||
    topic === ".." ||
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is refused
    /[/\\\u0000-\u001f\u007f]/.test(topic) ||
    !topic.isWellFormed()
  ) {
    throw new RmqError(
      ErrorCode.IllegalTopic,
      `topic ${JSON.stringify(topic)} holds a character not allowed in a topic`,
    );
  }
  if (validTopics.size >= TOPIC_CACHE_LIMIT) validTopics.clear();
  validTopics.set(topic, len);
  return len;
}

/**
 * What one pass over a message's properties collects (module-level scratch: prepare is synchronous and
 * never re-entered, and Map.forEach with it as `this` allocates nothing per property).
 */
interface PropertyScan {
  pairs: string[];
  /** Entries of `pairs` filled so far. */
  count: number;
  bytes: number;
  uniqKey: string | undefined;
  tags: string | undefined;
  keys: string | undefined;
  wait: string | undefined;
}

const scan: PropertyScan = {
  pairs: [],
  count: 0,
  bytes: 0,
  uniqKey: undefined,
  tags: undefined,
  keys: undefined,
  wait: undefined,
};

function startScan(pairs: string[]): PropertyScan {
  const sc = scan;
  sc.pairs = pairs;
  sc.count = 0;
  sc.bytes = 0;
  sc.uniqKey = undefined;
  sc.tags = undefined;
  sc.keys = undefined;
  sc.wait = undefined;
  return sc;
}

/** A name or value as it will be stored: a lone surrogate becomes U+FFFD, as the UTF-8 encoder writes it. */
function storedText(s: string): string {
  return s.isWellFormed() ? s : s.toWellFormed();
}

function scanProperty(this: PropertyScan, value: string, name: string): void {
  let k = name;
  let v = value;
  let kl = asciiPropertyLength(k);
  if (kl < 0) {
    k = storedText(k);
    kl = Buffer.byteLength(k, "utf8");
  }
  let vl = asciiPropertyLength(v);
  if (vl < 0) {
    v = storedText(v);
    vl = Buffer.byteLength(v, "utf8");
  }
  this.pairs[this.count++] = k;
  this.pairs[this.count++] = v;
  this.bytes += kl + vl + 2;
  // Names that matter here are ASCII, so they are compared as given.
  if (k === MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) this.uniqKey = v;
  else if (k === MessageConst.PROPERTY_TAGS) this.tags = v;
  else if (k === MessageConst.PROPERTY_KEYS) this.keys = v;
  else if (k === MessageConst.PROPERTY_WAIT_STORE_MSG_OK) this.wait = v;
}

/**
 * Validates a message and builds its PutRecord. The properties are read once: they become the
 * name/value list the encoder writes (UNIQ_KEY appended when absent or empty), and TAGS, KEYS and
 * UNIQ_KEY are taken from exactly what the record will hold, so the live dispatch matches what recovery
 * decodes from the bytes.
 */
export function prepareMessage(msg: MessageInput, ctx: PutContext, now: number): PutRecord {
  const topicLength = checkTopic(msg.topic);
  const queueId = msg.queueId;
  if (!Number.isInteger(queueId) || queueId < 0 || queueId > QUEUE_ID_MAX) {
    throw new RmqError(ErrorCode.IllegalArgument, `queueId ${queueId} is not a non-negative int`);
  }
  const body = msg.body;
  if (body.length > ctx.maxMessageSize) {
    throw new RmqError(
      ErrorCode.MessageBodyTooLarge,
      `body is ${body.length} bytes, maxMessageSize is ${ctx.maxMessageSize}`,
    );
  }
  // Sized up front (room for UNIQ_KEY too): no growth as it fills.
  const pairs = new Array<string>(2 * msg.properties.size + 2);
  const sc = startScan(pairs);
  msg.properties.forEach(scanProperty, sc);
  let uniqKey = sc.uniqKey;
  if (uniqKey === undefined || uniqKey.length === 0) {
    uniqKey = createUniqKey(now);
    pairs[sc.count++] = MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX;
    pairs[sc.count++] = uniqKey;
    sc.bytes += MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX.length + uniqKey.length + 2;
  }
  pairs.length = sc.count;
  const propertiesLength = sc.bytes;
  if (propertiesLength > MAX_PROPERTIES_LENGTH) {
    throw new RmqError(
      ErrorCode.MessagePropertiesTooLarge,
      `properties are ${propertiesLength} bytes, the limit is ${MAX_PROPERTIES_LENGTH}`,
    );
  }
  const bornHost = ipToBytes(msg.bornHost.address);
  const storeHost = ctx.storeHost;
  const totalSize = calRecordLength(
    bornHost.length,
    storeHost.length,
    body.length,
    topicLength,
    propertiesLength,
  );
  if (totalSize > ctx.maxRecordSize) {
    throw new RmqError(
      ErrorCode.MessageBodyTooLarge,
      `record of ${totalSize} bytes does not fit a CommitLog segment`,
    );
  }
  const r = new PutRecord();
  r.queueId = queueId;
  r.flag = msg.flag;
  r.sysFlag = recordSysFlag(msg.sysFlag, bornHost.length, storeHost.length);
  r.bornTimestamp = msg.bornTimestamp;
  r.bornHost = bornHost;
  r.bornPort = msg.bornHost.port;
  r.storeHost = storeHost;
  r.storePort = ctx.storePort;
  r.reconsumeTimes = msg.reconsumeTimes;
  r.preparedTransactionOffset = msg.preparedTransactionOffset;
  r.body = body;
  r.topic = msg.topic;
  r.topicLength = topicLength;
  r.propertyPairs = pairs;
  r.propertiesLength = propertiesLength;
  r.size = totalSize;
  r.tagsCode = tagsString2tagsCode(sc.tags);
  r.keys = sc.keys;
  r.uniqKey = uniqKey;
  r.waitFlush = sc.wait !== "false";
  r.msgIds = ctx.msgIds;
  return r;
}
