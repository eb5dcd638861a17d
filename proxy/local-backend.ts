// The proxy's backend in local mode (upstream proxyMode=local): the broker runs in the same process,
// so every MessagingBackend call is a direct call into its topic and group tables and its message
// service. Data crosses as plain values; bodies stay the store's buffers (no copies).
//
// Topic routes come from the broker's topic table: one broker (this one), its queue counts and
// permission, the `message.type` attribute. With autoCreateTopicEnable an unknown topic is created
// from the TBW102 template on first use (route query or send), as a producer's first send creates it
// upstream; without it the topic is TOPIC_NOT_FOUND. Groups likewise follow
// autoCreateSubscriptionGroup.

import { isIP } from "node:net";
import type { BrokerController } from "../broker/broker-controller.ts";
import type { SendMessageInput } from "../broker/message-service.ts";
import {
  type SubscriptionGroupConfig as BrokerGroupConfig,
  type GroupRetryPolicy as BrokerRetryPolicy,
  DEFAULT_CUSTOMIZED_RETRY_NEXT,
  DEFAULT_EXPONENTIAL_RETRY,
  GroupRetryPolicyType,
} from "../broker/metadata/subscription-group-manager.ts";
import {
  TopicMessageType as BrokerTopicMessageType,
  type TopicConfig,
  topicMessageType,
} from "../broker/metadata/topic-config-manager.ts";
import type { PoppedMessage as BrokerPoppedMessage } from "../broker/pop/pop-service.ts";
import type { HostAddress } from "../broker/store/host-address.ts";
import type { StoredMessage } from "../broker/store/message-codec.ts";
import { PutMessageStatus } from "../broker/store/message-store-types.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateSendTopic } from "../common/topic-validator.ts";
import {
  type AckMessagesRequest,
  type AckResult,
  type ChangeInvisibleTimeRequest,
  type EndTransactionRequest,
  type ForwardToDeadLetterQueueRequest,
  type GroupRetryPolicy,
  MessageProperty,
  type MessagingBackend,
  type PoppedMessage,
  type PopRequest,
  type QueryAssignmentRequest,
  type QueueAssignment,
  type RecallMessageRequest,
  type ResetLiteOffsetRequest,
  type SendMessageEntry,
  type SendMessageResult,
  type SendMessagesRequest,
  type SubscriptionGroupConfig,
  TopicMessageType,
  type TopicRoute,
  type TransactionCheck,
} from "./backend.ts";

/** Upstream push consumers' retry count when a group says -1 (16). */
const DEFAULT_RETRY_MAX_TIMES = 16;

const ROUTE_MESSAGE_TYPES: Readonly<Record<string, TopicMessageType>> = {
  [BrokerTopicMessageType.NORMAL]: TopicMessageType.NORMAL,
  [BrokerTopicMessageType.FIFO]: TopicMessageType.FIFO,
  [BrokerTopicMessageType.DELAY]: TopicMessageType.DELAY,
  [BrokerTopicMessageType.TRANSACTION]: TopicMessageType.TRANSACTION,
  [BrokerTopicMessageType.MIXED]: TopicMessageType.MIXED,
  [BrokerTopicMessageType.PRIORITY]: TopicMessageType.PRIORITY,
  [BrokerTopicMessageType.LITE]: TopicMessageType.LITE,
};

/**
 * The producer's address as the store can record it: an IP literal with an optional port. SDKs
 * report their host name instead (the Node SDK sends os.hostname()); such messages are stored with
 * the unspecified address 0.0.0.0.
 */
function bornHostOf(reported: string): HostAddress {
  const s = reported.trim();
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  if (bracket !== null && isIP(bracket[1] as string) === 6)
    return { address: bracket[1] as string, port: Number(bracket[2] ?? 0) };
  if (isIP(s) !== 0) return { address: s, port: 0 };
  const colon = s.lastIndexOf(":");
  if (colon > 0 && isIP(s.slice(0, colon)) === 4 && /^\d{1,5}$/.test(s.slice(colon + 1)))
    return { address: s.slice(0, colon), port: Number(s.slice(colon + 1)) };
  return UNKNOWN_HOST;
}
const UNKNOWN_HOST: HostAddress = { address: "0.0.0.0", port: 0 };
/** Born hosts remembered (ours): a producer reports the same one on every message. */
const MAX_CACHED_BORN_HOSTS = 1024;
const bornHosts = new Map<string, HostAddress>();

/** bornHostOf, remembered (its IP checks are regular expressions, and this runs per message). */
function cachedBornHostOf(reported: string): HostAddress {
  let host = bornHosts.get(reported);
  if (host === undefined) {
    host = Object.freeze(bornHostOf(reported));
    if (bornHosts.size >= MAX_CACHED_BORN_HOSTS) bornHosts.clear();
    bornHosts.set(reported, host);
  }
  return host;
}

function hostString(h: HostAddress): string {
  return h.address.includes(":") ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`;
}

function retryPolicyOf(g: BrokerGroupConfig): GroupRetryPolicy {
  const p: BrokerRetryPolicy = g.groupRetryPolicy;
  if (p.type === GroupRetryPolicyType.EXPONENTIAL) {
    const e = p.exponentialRetryPolicy ?? DEFAULT_EXPONENTIAL_RETRY;
    return { type: "EXPONENTIAL", initialMs: e.initial, maxMs: e.max, multiplier: e.multiplier };
  }
  return {
    type: "CUSTOMIZED",
    nextDelaysMs: [...(p.customizedRetryPolicy?.next ?? DEFAULT_CUSTOMIZED_RETRY_NEXT)],
  };
}

export function createLocalBackend(broker: BrokerController): MessagingBackend {
  const { topics, groups, messageService, brokerName, config } = broker;
  /** Routes by topic config object: an update replaces the object, which drops the stale route. */
  const routes = new WeakMap<TopicConfig, TopicRoute>();
  /** Group configs by broker group object, for the same reason. */
  const groupViews = new WeakMap<BrokerGroupConfig, SubscriptionGroupConfig>();

  const checkBroker = (requested: string | undefined): void => {
    if (requested !== undefined && requested !== "" && requested !== brokerName) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `broker ${JSON.stringify(requested)} is not served by this proxy (local mode serves ${brokerName})`,
      );
    }
  };

  /** The topic's config, created from the template when auto-creation is on. */
  const topicConfig = async (topic: string): Promise<TopicConfig> => {
    const existing = topics.get(topic);
    if (existing !== undefined) return existing;
    if (config.autoCreateTopicEnable) {
      validateSendTopic(topic);
      const created = await topics.createFromTemplate(topic, {
        clientDefaultTopicQueueNums: config.defaultTopicQueueNums,
      });
      if (created !== undefined) {
        broker.registerTopicsIfChanged();
        return created;
      }
    }
    throw new RmqError(
      ErrorCode.TopicNotFound,
      `topic ${JSON.stringify(topic)} does not exist on broker ${brokerName}` +
        (config.autoCreateTopicEnable ? "" : " (autoCreateTopicEnable=false)"),
    );
  };

  const routeOf = (tc: TopicConfig): TopicRoute => {
    let route = routes.get(tc);
    if (route === undefined) {
      route = {
        topic: tc.topicName,
        messageType: ROUTE_MESSAGE_TYPES[topicMessageType(tc)] ?? TopicMessageType.UNSPECIFIED,
        brokers: [
          {
            brokerName,
            readQueueNums: tc.readQueueNums,
            writeQueueNums: tc.writeQueueNums,
            perm: tc.perm & config.brokerPermission,
          },
        ],
      };
      routes.set(tc, route);
    }
    return route;
  };

  const storedToPopped = (
    m: StoredMessage,
    topic: string,
    messageId: string,
    receiptHandle = "",
    deliveryAttempt = 1,
    invisibleTimeMs = 0,
  ): PoppedMessage => {
    const properties: Record<string, string> = {};
    for (const [name, value] of m.properties) properties[name] = value;
    properties[MessageProperty.UNIQ_KEY] ??= messageId;
    return {
      topic,
      brokerName,
      queueId: m.queueId,
      queueOffset: m.queueOffset,
      body: m.body,
      properties,
      bornTimestamp: m.bornTimestamp,
      bornHost: m.bornHost.address,
      storeTimestamp: m.storeTimestamp,
      storeHost: hostString(m.storeHost),
      receiptHandle,
      deliveryAttempt,
      invisibleTimeMs,
    };
  };

  const toPopped = (p: BrokerPoppedMessage): PoppedMessage =>
    storedToPopped(p.message, p.topic, p.messageId, p.receiptHandle, p.deliveryAttempt, p.invisibleTimeMs);

  return {
    getTopicRoute(topic) {
      // Called on every SendMessage: a known topic answers without another async step.
      const existing = topics.get(topic);
      return existing !== undefined ? Promise.resolve(routeOf(existing)) : topicConfig(topic).then(routeOf);
    },

    async getSubscriptionGroup(group) {
      const g = await groups.findOrAutoCreate(group);
      if (g === undefined) {
        throw new RmqError(
          ErrorCode.ConsumerGroupNotFound,
          `consumer group ${JSON.stringify(group)} does not exist on broker ${brokerName}` +
            (config.autoCreateSubscriptionGroup ? "" : " (autoCreateSubscriptionGroup=false)"),
        );
      }
      let view = groupViews.get(g);
      if (view === undefined) {
        view = {
          groupName: g.groupName,
          consumeEnable: g.consumeEnable,
          consumeMessageOrderly: g.consumeMessageOrderly,
          retryMaxTimes: g.retryMaxTimes < 0 ? DEFAULT_RETRY_MAX_TIMES : g.retryMaxTimes,
          retryPolicy: retryPolicyOf(g),
        };
        groupViews.set(g, view);
      }
      return view;
    },

    async sendMessages(request: SendMessagesRequest): Promise<SendMessageResult[]> {
      checkBroker(request.brokerName);
      const results: SendMessageResult[] = new Array(request.messages.length);
      const inputs: SendMessageInput[] = new Array(request.messages.length);
      for (let i = 0; i < inputs.length; i++) {
        const m = request.messages[i] as SendMessageEntry;
        inputs[i] = {
          body: m.body,
          properties: m.properties,
          bornTimestamp: m.bornTimestamp,
          bornHost: cachedBornHostOf(m.bornHost),
        };
      }
      if (inputs.length > 0) {
        const stored = await messageService.sendMessages({
          topic: request.topic,
          queueId: request.queueId,
          messages: inputs,
        });
        stored.forEach((r, i) => {
          results[i] = {
            error:
              r.status === PutMessageStatus.FLUSH_DISK_TIMEOUT
                ? {
                    code: ErrorCode.FlushDiskTimeout,
                    message: `message stored but not flushed within syncFlushTimeout (${config.syncFlushTimeout} ms)`,
                  }
                : undefined,
            messageId: r.messageId,
            queueId: r.queueId,
            queueOffset: r.queueOffset,
            transactionId: r.transactionId,
            recallHandle: r.recallHandle,
          };
        });
      }
      return results;
    },

    async pop(request: PopRequest, signal: AbortSignal): Promise<PoppedMessage[]> {
      checkBroker(request.brokerName);
      if (signal.aborted) return [];
      const popped = await messageService.pop(request.group, request.topic, {
        queueId: request.queueId,
        maxMessages: request.batchSize,
        invisibleTimeMs: request.invisibleTimeMs,
        filter: request.filter,
        pollTimeoutMs: request.pollTimeMs,
        signal,
        attemptId: request.attemptId,
        fifo: request.fifo,
        liteTopics: request.liteTopics,
      });
      return popped.map(toPopped);
    },

    async ackMessages(request: AckMessagesRequest): Promise<AckResult[]> {
      const results = await messageService.ack(
        request.group,
        request.topic,
        request.entries.map((e) => e.receiptHandle),
      );
      return results.map((r) => (r.ok ? {} : { error: { code: r.code, message: r.message } }));
    },

    async changeInvisibleTime(request: ChangeInvisibleTimeRequest) {
      const r = await messageService.changeInvisibleTime(
        request.group,
        request.topic,
        request.receiptHandle,
        request.invisibleTimeMs,
        request.suspend,
      );
      return { receiptHandle: r.receiptHandle };
    },

    async forwardToDeadLetterQueue(request: ForwardToDeadLetterQueueRequest) {
      await messageService.forwardToDeadLetterQueue(request.group, request.topic, request.receiptHandle);
    },

    async endTransaction(request: EndTransactionRequest) {
      await messageService.endTransaction(request);
    },

    setTransactionCheckHandler(handler: (check: TransactionCheck) => boolean): () => void {
      return messageService.setTransactionCheckListener((check) =>
        handler({
          topic: check.topic,
          transactionId: check.transactionId,
          message: storedToPopped(check.message, check.topic, check.messageId),
        }),
      );
    },

    resetLiteOffset(request: ResetLiteOffsetRequest): Promise<number> {
      return messageService.resetLiteOffset(
        request.group,
        request.topic,
        request.liteTopic,
        request.position,
      );
    },

    recallMessage(request: RecallMessageRequest): Promise<{ messageId: string }> {
      return messageService.recallMessage(request.topic, request.recallHandle);
    },

    registerClient(heartbeat) {
      broker.clients.heartbeat(heartbeat);
    },

    unregisterClient(clientId) {
      broker.clients.unregister(clientId);
    },

    async queryAssignment(request: QueryAssignmentRequest): Promise<QueueAssignment[]> {
      const tc = await topicConfig(request.topic);
      const perm = routeOf(tc).brokers[0]?.perm ?? 0;
      const g = groups.get(request.group);
      // A FIFO group consumes queue by queue; others take any queue of the broker (upstream). Lite
      // consumers pop from their lite topics, whatever queue they name.
      if (g?.consumeMessageOrderly === true && topicMessageType(tc) !== BrokerTopicMessageType.LITE) {
        return Array.from({ length: tc.readQueueNums }, (_, queueId) => ({ brokerName, queueId, perm }));
      }
      return [{ brokerName, queueId: -1, perm }];
    },
  };
}
