// Between v2 protobuf messages and the backend's stored form: which v2 system property becomes which
// stored property on send (upstream SendMessageActivity.buildMessageProperty), and how a popped
// message is presented to a client on delivery (upstream GrpcConverter.buildMessage).

import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { RESERVED_PROPERTY_NAMES } from "../common/message-validator.ts";
import {
  DigestType,
  Encoding,
  type Message,
  MessageSchema,
  MessageType,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { MessageProperty, type PoppedMessage } from "./backend.ts";
import { unwrapNamespace } from "./resource.ts";

/**
 * Properties the proxy itself writes on send that are not in the reserved set of
 * common/message-validator.ts; a client may not set them as user properties either.
 */
export const PROXY_OWNED_PROPERTY_NAMES: ReadonlySet<string> = new Set([
  MessageProperty.SHARDING_KEY,
  MessageProperty.TRACE_CONTEXT,
  MessageProperty.CHECK_IMMUNITY_TIME_IN_SECONDS,
]);

/** Properties the broker keeps for itself and never shows clients (upstream "__RMQ.TRANSIENT." prefix). */
const TRANSIENT_PROPERTY_PREFIX = "__RMQ.TRANSIENT.";

/** What the message's stored properties say it is (upstream TopicMessageType.parseFromMessageProperty). */
export function messageTypeOfProperties(properties: Readonly<Record<string, string>>): MessageType {
  if (properties[MessageProperty.TRANSACTION_PREPARED] === "true") return MessageType.TRANSACTION;
  if (properties[MessageProperty.TIMER_DELIVER_MS] !== undefined) return MessageType.DELAY;
  if (properties[MessageProperty.SHARDING_KEY] !== undefined) return MessageType.FIFO;
  return MessageType.NORMAL;
}

/** Upper-case hex MD5, the body digest every SDK checks (protocol.md §5). */
export function md5UpperHex(body: Uint8Array): string {
  return createHash("md5").update(body).digest("hex").toUpperCase();
}

export interface DeliveryOptions {
  /** Namespace of the request; stripped from names shown to the client. */
  namespace: string;
  /** Receipt handle shown to the client (may differ from the backend's when the proxy renews it). */
  receiptHandle?: string;
}

/** The v2 Message a client receives for a popped (or orphan-checked) message. */
export function v2MessageFromPopped(popped: PoppedMessage, options: DeliveryOptions): Message {
  const props = popped.properties;
  const userProperties: Record<string, string> = {};
  for (const [name, value] of Object.entries(props)) {
    if (RESERVED_PROPERTY_NAMES.has(name) || PROXY_OWNED_PROPERTY_NAMES.has(name)) continue;
    if (name.startsWith(TRANSIENT_PROPERTY_PREFIX)) continue;
    userProperties[name] = value;
  }
  const tag = props[MessageProperty.TAGS];
  const keys = (props[MessageProperty.KEYS] ?? "")
    .split(MessageProperty.KEY_SEPARATOR)
    .filter((k) => k.length > 0);
  const deliverMs = Number(props[MessageProperty.TIMER_DELIVER_MS]);
  const messageGroup = props[MessageProperty.SHARDING_KEY];
  const traceContext = props[MessageProperty.TRACE_CONTEXT];
  const dlqTopic = props[MessageProperty.DLQ_ORIGIN_TOPIC];
  const dlqMessageId = props[MessageProperty.DLQ_ORIGIN_MESSAGE_ID];
  const receiptHandle = options.receiptHandle ?? popped.receiptHandle;

  return create(MessageSchema, {
    topic: { name: unwrapNamespace(options.namespace, popped.topic), resourceNamespace: options.namespace },
    userProperties,
    body: popped.body,
    systemProperties: {
      tag,
      keys,
      messageId: props[MessageProperty.UNIQ_KEY] ?? "",
      bodyDigest: { type: DigestType.MD5, checksum: md5UpperHex(popped.body) },
      bodyEncoding: Encoding.IDENTITY,
      messageType: messageTypeOfProperties(props),
      bornTimestamp: timestampFromMs(popped.bornTimestamp),
      bornHost: popped.bornHost,
      storeTimestamp: timestampFromMs(popped.storeTimestamp),
      storeHost: popped.storeHost,
      deliveryTimestamp: Number.isFinite(deliverMs) ? timestampFromMs(deliverMs) : undefined,
      receiptHandle: receiptHandle.length > 0 ? receiptHandle : undefined,
      queueId: popped.queueId,
      queueOffset: BigInt(popped.queueOffset),
      invisibleDuration: popped.invisibleTimeMs > 0 ? durationFromMs(popped.invisibleTimeMs) : undefined,
      deliveryAttempt: Math.max(1, popped.deliveryAttempt),
      messageGroup,
      traceContext,
      deadLetterQueue:
        dlqTopic !== undefined && dlqMessageId !== undefined
          ? { topic: dlqTopic, messageId: dlqMessageId }
          : undefined,
    },
  });
}
