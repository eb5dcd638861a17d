// Between v2 protobuf messages and the backend's stored form: which v2 system property becomes which
// stored property on send (upstream SendMessageActivity.buildMessageProperty), and how a popped
// message is presented to a client on delivery (upstream GrpcConverter.buildMessage).

import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RESERVED_PROPERTY_NAMES } from "../common/message-validator.ts";
import {
  Encoding,
  type Message,
  MessageSchema,
  MessageType,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { MessageProperty, type PoppedMessage } from "./backend.ts";
import { type BodyDigest, BodyDigestFormat, bodyDigest } from "./body-digest.ts";
import { unwrapNamespace } from "./resource.ts";

/**
 * Properties the proxy itself writes on send that are not in the reserved set of
 * common/message-validator.ts; a client may not set them as user properties either.
 */
export const PROXY_OWNED_PROPERTY_NAMES: ReadonlySet<string> = new Set([
  MessageProperty.SHARDING_KEY,
  MessageProperty.TRACE_CONTEXT,
  MessageProperty.CHECK_IMMUNITY_TIME_IN_SECONDS,
  MessageProperty.PRIORITY,
  MessageProperty.LITE_TOPIC,
]);

/** Properties the broker keeps for itself and never shows clients (upstream "__RMQ.TRANSIENT." prefix). */
const TRANSIENT_PROPERTY_PREFIX = "__RMQ.TRANSIENT.";

/** What the message's stored properties say it is (upstream TopicMessageType.parseFromMessageProperty). */
export function messageTypeOfProperties(properties: Readonly<Record<string, string>>): MessageType {
  if (properties[MessageProperty.TRANSACTION_PREPARED] === "true") return MessageType.TRANSACTION;
  if (properties[MessageProperty.TIMER_DELIVER_MS] !== undefined) return MessageType.DELAY;
  if (properties[MessageProperty.SHARDING_KEY] !== undefined) return MessageType.FIFO;
  if (properties[MessageProperty.PRIORITY] !== undefined) return MessageType.PRIORITY;
  if (properties[MessageProperty.LITE_TOPIC] !== undefined) return MessageType.LITE;
  return MessageType.NORMAL;
}

export interface DeliveryOptions {
  /** Namespace of the request; stripped from names shown to the client. */
  namespace: string;
  /** Receipt handle shown to the client (may differ from the backend's when the proxy renews it). */
  receiptHandle?: string;
  /** How the receiving SDK checks the body digest (body-digest.ts); default MD5, which every SDK accepts. */
  digestFormat?: BodyDigestFormat;
}

/**
 * Everything a client sees of one delivered message, decided once: v2MessageFromPopped builds the
 * protobuf message from it, message-wire-encoder.ts the wire bytes of the same message.
 */
export interface DeliveredMessage {
  topicName: string;
  namespace: string;
  userProperties: Record<string, string>;
  body: Uint8Array;
  tag: string | undefined;
  keys: string[];
  messageId: string;
  /** The body's digest in the form the receiving SDK checks. */
  bodyDigest: BodyDigest;
  messageType: MessageType;
  bornTimestampMs: number;
  bornHost: string;
  storeTimestampMs: number;
  storeHost: string;
  /** Set for delay messages (a finite TIMER_DELIVER_MS). */
  deliveryTimestampMs: number | undefined;
  /** Omitted when empty. */
  receiptHandle: string | undefined;
  queueId: number;
  queueOffset: number;
  /** Omitted when not positive. */
  invisibleTimeMs: number | undefined;
  deliveryAttempt: number;
  messageGroup: string | undefined;
  traceContext: string | undefined;
  deadLetterQueue: { topic: string; messageId: string } | undefined;
  /** Set for LITE messages. */
  liteTopic: string | undefined;
  /** Set for PRIORITY messages (>= 0). */
  priority: number | undefined;
}

/** What a client receives for a popped (or orphan-checked) message. */
export function deliveredMessage(popped: PoppedMessage, options: DeliveryOptions): DeliveredMessage {
  const props = popped.properties;
  const userProperties: Record<string, string> = {};
  for (const [name, value] of Object.entries(props)) {
    if (RESERVED_PROPERTY_NAMES.has(name) || PROXY_OWNED_PROPERTY_NAMES.has(name)) continue;
    if (name.startsWith(TRANSIENT_PROPERTY_PREFIX)) continue;
    userProperties[name] = value;
  }
  const keysProperty = props[MessageProperty.KEYS];
  const keys =
    keysProperty === undefined || keysProperty.length === 0
      ? []
      : keysProperty.split(MessageProperty.KEY_SEPARATOR).filter((k) => k.length > 0);
  const deliverMs = Number(props[MessageProperty.TIMER_DELIVER_MS]);
  const dlqTopic = props[MessageProperty.DLQ_ORIGIN_TOPIC];
  const dlqMessageId = props[MessageProperty.DLQ_ORIGIN_MESSAGE_ID];
  const priority = Number(props[MessageProperty.PRIORITY]);
  const receiptHandle = options.receiptHandle ?? popped.receiptHandle;
  return {
    topicName: unwrapNamespace(options.namespace, popped.topic),
    namespace: options.namespace,
    userProperties,
    body: popped.body,
    tag: props[MessageProperty.TAGS],
    keys,
    messageId: props[MessageProperty.UNIQ_KEY] ?? "",
    bodyDigest: bodyDigest(popped.body, options.digestFormat ?? BodyDigestFormat.MD5_UPPER_HEX),
    messageType: messageTypeOfProperties(props),
    bornTimestampMs: popped.bornTimestamp,
    bornHost: popped.bornHost,
    storeTimestampMs: popped.storeTimestamp,
    storeHost: popped.storeHost,
    deliveryTimestampMs: Number.isFinite(deliverMs) ? deliverMs : undefined,
    receiptHandle: receiptHandle.length > 0 ? receiptHandle : undefined,
    queueId: popped.queueId,
    queueOffset: popped.queueOffset,
    invisibleTimeMs: popped.invisibleTimeMs > 0 ? popped.invisibleTimeMs : undefined,
    deliveryAttempt: Math.max(1, popped.deliveryAttempt),
    messageGroup: props[MessageProperty.SHARDING_KEY],
    traceContext: props[MessageProperty.TRACE_CONTEXT],
    deadLetterQueue:
      dlqTopic !== undefined && dlqMessageId !== undefined
        ? { topic: dlqTopic, messageId: dlqMessageId }
        : undefined,
    liteTopic: props[MessageProperty.LITE_TOPIC],
    priority: Number.isSafeInteger(priority) && priority >= 0 ? priority : undefined,
  };
}

/** The v2 Message a client receives for a popped (or orphan-checked) message. */
export function v2MessageFromPopped(popped: PoppedMessage, options: DeliveryOptions): Message {
  return v2Message(deliveredMessage(popped, options));
}

export function v2Message(m: DeliveredMessage): Message {
  return create(MessageSchema, {
    topic: { name: m.topicName, resourceNamespace: m.namespace },
    userProperties: m.userProperties,
    body: m.body,
    systemProperties: {
      tag: m.tag,
      keys: m.keys,
      messageId: m.messageId,
      bodyDigest: { type: m.bodyDigest.type, checksum: m.bodyDigest.checksum },
      bodyEncoding: Encoding.IDENTITY,
      messageType: m.messageType,
      bornTimestamp: timestampFromMs(m.bornTimestampMs),
      bornHost: m.bornHost,
      storeTimestamp: timestampFromMs(m.storeTimestampMs),
      storeHost: m.storeHost,
      deliveryTimestamp:
        m.deliveryTimestampMs === undefined ? undefined : timestampFromMs(m.deliveryTimestampMs),
      receiptHandle: m.receiptHandle,
      queueId: m.queueId,
      queueOffset: BigInt(m.queueOffset),
      invisibleDuration: m.invisibleTimeMs === undefined ? undefined : durationFromMs(m.invisibleTimeMs),
      deliveryAttempt: m.deliveryAttempt,
      messageGroup: m.messageGroup,
      traceContext: m.traceContext,
      deadLetterQueue: m.deadLetterQueue,
      liteTopic: m.liteTopic,
      priority: m.priority,
    },
  });
}
