// SendMessage: validate each message as the upstream proxy does (protocol.md §4), turn the valid
// ones into stored form, send them to one queue as one batch, and answer one entry per message in
// request order with the client's message id echoed. The top-level status is the single distinct
// entry code, or MULTIPLE_RESULTS.

import { gunzipSync } from "node:zlib";
import { durationMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateLiteTopic } from "../common/lite-topic.ts";
import {
  validateBody,
  validateKey,
  validateMessageGroup,
  validateTag,
  validateUserProperties,
} from "../common/message-validator.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import { quoteForMessage } from "../common/value-validator.ts";
import {
  Code,
  Encoding,
  type Message,
  MessageType,
  type Status,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type SendMessageRequest,
  type SendMessageResponse,
  SendMessageResponseSchema,
  type SendResultEntry,
  SendResultEntrySchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import {
  MessageProperty,
  type SendMessageEntry,
  type SendMessageResult,
  TopicMessageType,
  type TopicRoute,
} from "./backend.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import type { ProxyLimits } from "./limits.ts";
import { messageTypeOfProperties, PROXY_OWNED_PROPERTY_NAMES } from "./message-converter.ts";
import { resolveResource } from "./resource.ts";
import { batchStatus, okStatus, status, statusFromError, v2CodeOf } from "./status.ts";

interface PreparedMessage {
  entry: SendMessageEntry;
  messageType: MessageType;
  messageGroup: string | undefined;
  /** A PRIORITY message's priority: it goes to queue min(priority, writeQueueNums - 1) (upstream). */
  priority: number | undefined;
}

/** create(SendResultEntrySchema, { messageId }) written out: one per message sent. */
function resultEntry(messageId: string): SendResultEntry {
  return {
    $typeName: SendResultEntrySchema.typeName as SendResultEntry["$typeName"],
    messageId,
    transactionId: "",
    offset: 0n,
    recallHandle: "",
  };
}

interface Slot {
  entry: SendResultEntry;
  prepared: PreparedMessage;
}

export async function sendMessage(
  deps: ProxyDeps,
  call: CallContext,
  request: SendMessageRequest,
): Promise<SendMessageResponse> {
  const messages = request.messages;
  const first = messages[0];
  if (first === undefined) throw new RmqError(ErrorCode.MessageCorrupted, "no message to send");
  const topic = resolveResource(first.topic, call);
  for (let i = 1; i < messages.length; i++) {
    if (resolveResource((messages[i] as Message).topic, call).fullName !== topic.fullName) {
      throw new RmqError(
        ErrorCode.MessageCorrupted,
        "all messages of one SendMessage request must have the same topic",
      );
    }
  }
  validateClientTopic(topic.fullName);
  const route = await deps.backend.getTopicRoute(topic.fullName);
  const now = deps.now();

  // One entry per message, in request order; the valid ones also get their stored form.
  const entries: SendResultEntry[] = new Array(messages.length);
  const valid: Slot[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as Message;
    const entry = resultEntry(m.systemProperties?.messageId ?? "");
    entries[i] = entry;
    try {
      valid.push({ entry, prepared: prepareMessage(m, topic.fullName, route, call, deps.limits, now) });
    } catch (error) {
      entry.status = statusFromError(error, deps.logger, "SendMessage validation");
    }
  }

  if (valid.length > 0) {
    const group = messages.length === 1 ? valid[0]?.prepared.messageGroup : undefined;
    let target = deps.queueSelector.select(route, group);
    const priority = valid[0]?.prepared.priority;
    if (target !== undefined && priority !== undefined) {
      const broker = route.brokers.find((b) => b.brokerName === target?.brokerName);
      if (broker !== undefined)
        target = { ...target, queueId: Math.min(priority, broker.writeQueueNums - 1) };
    }
    if (target === undefined) {
      const forbidden = status(Code.FORBIDDEN, `topic ${topic.name} has no writable queue`);
      for (const slot of valid) slot.entry.status = forbidden;
    } else {
      try {
        const results = await deps.backend.sendMessages({
          topic: topic.fullName,
          brokerName: target.brokerName,
          queueId: target.queueId,
          messages: valid.map((slot) => slot.prepared.entry),
        });
        if (results.length !== valid.length) {
          throw new RmqError(
            ErrorCode.Internal,
            `backend returned ${results.length} results for ${valid.length} messages`,
          );
        }
        const stored: PreparedMessage[] = [];
        const ok = okStatus();
        for (let k = 0; k < valid.length; k++) {
          const slot = valid[k] as Slot;
          const result = results[k] as SendMessageResult;
          if (result.error !== undefined) {
            slot.entry.status = status(v2CodeOf(result.error.code), result.error.message);
            continue;
          }
          stored.push(slot.prepared);
          slot.entry.status = ok;
          slot.entry.offset = BigInt(result.queueOffset);
          slot.entry.transactionId = result.transactionId ?? "";
          slot.entry.recallHandle = result.recallHandle ?? "";
        }
        recordSent(deps, call, topic.fullName, stored);
      } catch (error) {
        const failed = statusFromError(error, deps.logger, "SendMessage");
        for (const slot of valid) slot.entry.status = failed;
      }
    }
  }

  const statuses: Status[] = new Array(entries.length);
  for (let i = 0; i < entries.length; i++) statuses[i] = (entries[i] as SendResultEntry).status ?? okStatus();
  return {
    $typeName: SendMessageResponseSchema.typeName as SendMessageResponse["$typeName"],
    status: batchStatus(statuses),
    entries,
  };
}

function recordSent(deps: ProxyDeps, call: CallContext, topic: string, stored: PreparedMessage[]): void {
  if (stored.length === 1) {
    // the usual SendMessage: one message, no grouping needed
    const p = stored[0] as PreparedMessage;
    deps.metrics.messagesIn(topic, messageTypeLabel(p.messageType), 1, p.entry.body.byteLength);
    if (p.messageType === MessageType.TRANSACTION) deps.clients.addProducerTopic(call.clientId, topic);
    return;
  }
  const byType = new Map<MessageType, { count: number; bytes: number }>();
  for (const p of stored) {
    const sum = byType.get(p.messageType) ?? { count: 0, bytes: 0 };
    sum.count++;
    sum.bytes += p.entry.body.byteLength;
    byType.set(p.messageType, sum);
  }
  for (const [type, sum] of byType)
    deps.metrics.messagesIn(topic, messageTypeLabel(type), sum.count, sum.bytes);
  if (byType.has(MessageType.TRANSACTION)) deps.clients.addProducerTopic(call.clientId, topic);
}

function messageTypeLabel(type: MessageType): string {
  switch (type) {
    case MessageType.FIFO:
      return "fifo";
    case MessageType.DELAY:
      return "delay";
    case MessageType.TRANSACTION:
      return "transaction";
    default:
      return "normal";
  }
}

const TOPIC_TYPE_OF_MESSAGE_TYPE: Partial<Record<MessageType, TopicMessageType>> = {
  [MessageType.NORMAL]: TopicMessageType.NORMAL,
  [MessageType.FIFO]: TopicMessageType.FIFO,
  [MessageType.DELAY]: TopicMessageType.DELAY,
  [MessageType.TRANSACTION]: TopicMessageType.TRANSACTION,
  [MessageType.PRIORITY]: TopicMessageType.PRIORITY,
  [MessageType.LITE]: TopicMessageType.LITE,
};

/** Validate one message and build its stored form; throws RmqError for the first rule it breaks. */
export function prepareMessage(
  m: Message,
  topic: string,
  route: TopicRoute,
  call: CallContext,
  limits: Readonly<ProxyLimits>,
  nowMs: number,
): PreparedMessage {
  const sp = m.systemProperties;
  const messageId = sp?.messageId ?? "";
  if (messageId.trim().length === 0) throw new RmqError(ErrorCode.IllegalMessageId, "message id is empty");

  const body = sp?.bodyEncoding === Encoding.GZIP ? gunzip(m.body, limits.maxBodyBytes) : m.body;
  validateBody(body, limits.maxBodyBytes);

  const tag = sp?.tag;
  if (tag !== undefined) validateTag(tag);
  const keys = (sp?.keys ?? []).filter((k) => k.length > 0);
  for (const key of keys) validateKey(key);
  const messageGroup = sp?.messageGroup;
  if (messageGroup !== undefined) validateMessageGroup(messageGroup, limits.maxMessageGroupBytes);

  for (const name of Object.keys(m.userProperties)) {
    if (PROXY_OWNED_PROPERTY_NAMES.has(name)) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `user property ${quoteForMessage(name)} is illegal: the name is reserved for system properties`,
      );
    }
  }
  validateUserProperties(
    m.userProperties,
    { tag, keys },
    { maxCount: limits.maxUserPropertyCount, maxTotalSize: limits.maxUserPropertyBytes },
  );

  const properties: Record<string, string> = { ...m.userProperties };
  properties[MessageProperty.UNIQ_KEY] = messageId;
  if (tag !== undefined && tag.length > 0) properties[MessageProperty.TAGS] = tag;
  if (keys.length > 0) properties[MessageProperty.KEYS] = keys.join(MessageProperty.KEY_SEPARATOR);
  if (messageGroup !== undefined && messageGroup.length > 0)
    properties[MessageProperty.SHARDING_KEY] = messageGroup;
  if (sp?.traceContext !== undefined && sp.traceContext.length > 0)
    properties[MessageProperty.TRACE_CONTEXT] = sp.traceContext;

  if (sp?.deliveryTimestamp !== undefined) {
    const deliverMs = timestampMs(sp.deliveryTimestamp);
    if (deliverMs - nowMs > limits.maxDelayMs) {
      throw new RmqError(
        ErrorCode.IllegalDeliveryTime,
        `delivery time ${new Date(deliverMs).toISOString()} is more than ${limits.maxDelayMs} ms ahead`,
      );
    }
    properties[MessageProperty.TIMER_DELIVER_MS] = String(deliverMs);
  }

  if (sp?.messageType === MessageType.TRANSACTION) {
    properties[MessageProperty.TRANSACTION_PREPARED] = "true";
    // gRPC producers have no producer group; the topic stands in for it, as upstream.
    properties[MessageProperty.PRODUCER_GROUP] = topic;
    if (sp.orphanedTransactionRecoveryDuration !== undefined) {
      const recoveryMs = durationMs(sp.orphanedTransactionRecoveryDuration);
      if (recoveryMs > limits.maxTransactionRecoveryMs) {
        throw new RmqError(
          ErrorCode.IllegalArgument,
          `orphaned transaction recovery duration ${recoveryMs} ms exceeds ${limits.maxTransactionRecoveryMs} ms`,
        );
      }
      properties[MessageProperty.CHECK_IMMUNITY_TIME_IN_SECONDS] = String(Math.floor(recoveryMs / 1000));
    }
  }

  // Priority (upstream: kept only when no stronger type applies; Node sends priority 0 typed NORMAL).
  let priority: number | undefined;
  if (sp?.priority !== undefined) {
    if (sp.priority < 0)
      throw new RmqError(ErrorCode.IllegalArgument, `priority ${sp.priority} is negative; it must be >= 0`);
    if (messageTypeOfProperties(properties) === MessageType.NORMAL) {
      priority = sp.priority;
      properties[MessageProperty.PRIORITY] = String(priority);
    }
  }

  // Lite topic (upstream: below the other types in precedence).
  const liteTopic = sp?.liteTopic;
  if (liteTopic !== undefined && liteTopic.length > 0) {
    validateLiteTopic(liteTopic, limits.maxLiteTopicSize);
    if (messageTypeOfProperties(properties) === MessageType.NORMAL)
      properties[MessageProperty.LITE_TOPIC] = liteTopic;
  }

  const messageType = messageTypeOfProperties(properties);
  if (limits.enableTopicMessageTypeCheck) checkTopicAcceptsType(route, messageType);

  return {
    entry: {
      body,
      properties,
      bornTimestamp: sp?.bornTimestamp !== undefined ? timestampMs(sp.bornTimestamp) : nowMs,
      bornHost: sp?.bornHost || call.connection.remoteAddress,
    },
    messageType,
    messageGroup,
    priority,
  };
}

function checkTopicAcceptsType(route: TopicRoute, messageType: MessageType): void {
  if (route.messageType === TopicMessageType.MIXED || route.messageType === TopicMessageType.UNSPECIFIED)
    return;
  const wanted = TOPIC_TYPE_OF_MESSAGE_TYPE[messageType];
  // A PRIORITY topic also stores plain messages (upstream); they are spread like on a NORMAL topic.
  if (route.messageType === TopicMessageType.PRIORITY && wanted === TopicMessageType.NORMAL) return;
  if (wanted !== route.messageType) {
    throw new RmqError(
      ErrorCode.MessagePropertyConflictWithType,
      `topic ${route.topic} accepts ${route.messageType} messages, not ${wanted ?? messageType}`,
    );
  }
}

function gunzip(body: Uint8Array, maxBytes: number): Uint8Array {
  try {
    return gunzipSync(body, { maxOutputLength: Math.max(maxBytes + 1, 1) });
  } catch (error) {
    if (error instanceof RangeError) {
      throw new RmqError(
        ErrorCode.MessageBodyTooLarge,
        `decompressed message body exceeds ${maxBytes} bytes`,
      );
    }
    throw new RmqError(ErrorCode.MessageCorrupted, `message body is not valid gzip: ${String(error)}`);
  }
}
