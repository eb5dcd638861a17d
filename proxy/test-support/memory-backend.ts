// A MessagingBackend over in-memory arrays, for the proxy's protocol tests only: enough pop/ack/
// invisibility semantics to drive the gRPC layer and the official SDK, nothing durable, no FIFO
// blocking. The real backend is the broker's.

import { createMessageFilter } from "../../broker/filter/message-filter.ts";
import type { ClientHeartbeat } from "../../common/client-connection.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import {
  type AckMessagesRequest,
  type AckResult,
  type ChangeInvisibleTimeRequest,
  type EndTransactionRequest,
  type ForwardToDeadLetterQueueRequest,
  MessageProperty,
  type MessagingBackend,
  PermName,
  type PoppedMessage,
  type PopRequest,
  type QueryAssignmentRequest,
  type QueueAssignment,
  type RecallMessageRequest,
  type ResetLiteOffsetRequest,
  type SendMessageResult,
  type SendMessagesRequest,
  type SubscriptionGroupConfig,
  type TopicMessageType,
  type TopicRoute,
  type TransactionCheck,
} from "../backend.ts";
import { defaultSubscriptionGroup } from "../client-settings.ts";

export const MEMORY_BROKER_NAME = "broker-a";
const STORE_HOST = "127.0.0.1:10911";

interface StoredMessage {
  topic: string;
  queueId: number;
  queueOffset: number;
  body: Uint8Array;
  properties: Record<string, string>;
  bornTimestamp: number;
  bornHost: string;
  storeTimestamp: number;
}

interface Delivery {
  acked: boolean;
  invisibleUntil: number;
  generation: number;
  attempts: number;
}

interface TopicState {
  messageType: TopicMessageType;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  queues: StoredMessage[][];
}

export interface MemoryBackend extends MessagingBackend {
  createTopic(
    topic: string,
    options?: { messageType?: TopicMessageType; queues?: number; perm?: number },
  ): void;
  setGroup(config: SubscriptionGroupConfig): void;
  /** Every sendMessages call, in order. */
  readonly sendCalls: SendMessagesRequest[];
  readonly popCalls: PopRequest[];
  readonly endTransactionCalls: EndTransactionRequest[];
  readonly resetLiteOffsetCalls: ResetLiteOffsetRequest[];
  readonly dlq: ForwardToDeadLetterQueueRequest[];
  readonly changeInvisibleCalls: ChangeInvisibleTimeRequest[];
  /** Every registerClient call, in order. */
  readonly clientHeartbeats: ClientHeartbeat[];
  /** Every unregisterClient call's client id, in order. */
  readonly unregisteredClients: string[];
  /** Store a message as if a producer had sent it (for pop tests). */
  put(topic: string, body: string | Uint8Array, properties?: Record<string, string>): StoredMessage;
  /** Pretend the broker wants this half message checked. */
  checkTransaction(check: TransactionCheck): boolean;
  /** Pops currently held (long polling). */
  heldPolls(): number;
}

export function createMemoryBackend(
  options: { autoCreateGroups?: boolean; now?: () => number } = {},
): MemoryBackend {
  const now = options.now ?? Date.now;
  const topics = new Map<string, TopicState>();
  const groups = new Map<string, SubscriptionGroupConfig>();
  const deliveries = new Map<string, Delivery>(); // group|topic|queue|offset
  const waiters = new Set<() => void>();
  const sendCalls: SendMessagesRequest[] = [];
  const popCalls: PopRequest[] = [];
  const endTransactionCalls: EndTransactionRequest[] = [];
  const resetLiteOffsetCalls: ResetLiteOffsetRequest[] = [];
  const dlq: ForwardToDeadLetterQueueRequest[] = [];
  const changeInvisibleCalls: ChangeInvisibleTimeRequest[] = [];
  let transactionCheckHandler: ((check: TransactionCheck) => boolean) | undefined;
  let transactionSeq = 0;
  let held = 0;

  const topicOf = (topic: string): TopicState => {
    const t = topics.get(topic);
    if (t === undefined) throw new RmqError(ErrorCode.TopicNotFound, `topic ${topic} not found`);
    return t;
  };

  const store = (
    topic: string,
    queueId: number,
    message: Omit<StoredMessage, "topic" | "queueId" | "queueOffset" | "storeTimestamp">,
  ) => {
    const t = topicOf(topic);
    const queue = t.queues[queueId];
    if (queue === undefined)
      throw new RmqError(ErrorCode.IllegalArgument, `queue ${queueId} of ${topic} does not exist`);
    const stored: StoredMessage = {
      ...message,
      topic,
      queueId,
      queueOffset: queue.length,
      storeTimestamp: now(),
    };
    queue.push(stored);
    for (const wake of [...waiters]) wake();
    return stored;
  };

  const parseHandle = (
    group: string,
    handle: string,
  ): { key: string; delivery: Delivery; message: StoredMessage } => {
    const [topic, queueId, offset, generation] = handle.split("|");
    const message = topics.get(topic ?? "")?.queues[Number(queueId)]?.[Number(offset)];
    const key = `${group}|${topic}|${queueId}|${offset}`;
    const delivery = deliveries.get(key);
    if (
      message === undefined ||
      delivery === undefined ||
      delivery.acked ||
      delivery.generation !== Number(generation) ||
      delivery.invisibleUntil <= now()
    ) {
      throw new RmqError(ErrorCode.InvalidReceiptHandle, `receipt handle ${handle} is expired or unknown`);
    }
    return { key, delivery, message };
  };

  const handleOf = (m: StoredMessage, generation: number) =>
    `${m.topic}|${m.queueId}|${m.queueOffset}|${generation}`;

  const tryPop = (request: PopRequest): PoppedMessage[] => {
    const t = topicOf(request.topic);
    const filter = createMessageFilter(request.filter);
    const out: PoppedMessage[] = [];
    const t0 = now();
    for (let queueId = 0; queueId < t.readQueueNums && out.length < request.batchSize; queueId++) {
      if (request.queueId >= 0 && request.queueId !== queueId) continue;
      for (const m of t.queues[queueId] ?? []) {
        if (out.length >= request.batchSize) break;
        const key = `${request.group}|${m.topic}|${m.queueId}|${m.queueOffset}`;
        const d = deliveries.get(key) ?? { acked: false, invisibleUntil: 0, generation: 0, attempts: 0 };
        if (d.acked || d.invisibleUntil > t0) continue;
        const deliverAt = Number(m.properties[MessageProperty.TIMER_DELIVER_MS] ?? 0);
        if (deliverAt > t0) continue;
        if (!filter.matchesMessage(m.properties[MessageProperty.TAGS], { get: (n) => m.properties[n] }))
          continue;
        d.generation++;
        d.attempts++;
        d.invisibleUntil = t0 + request.invisibleTimeMs;
        deliveries.set(key, d);
        out.push({
          topic: m.topic,
          brokerName: MEMORY_BROKER_NAME,
          queueId: m.queueId,
          queueOffset: m.queueOffset,
          body: m.body,
          properties: { ...m.properties },
          bornTimestamp: m.bornTimestamp,
          bornHost: m.bornHost,
          storeTimestamp: m.storeTimestamp,
          storeHost: STORE_HOST,
          receiptHandle: handleOf(m, d.generation),
          deliveryAttempt: d.attempts,
          invisibleTimeMs: request.invisibleTimeMs,
        });
      }
    }
    return out;
  };

  const clientHeartbeats: ClientHeartbeat[] = [];
  const unregisteredClients: string[] = [];

  return {
    sendCalls,
    popCalls,
    clientHeartbeats,
    unregisteredClients,

    registerClient(heartbeat) {
      clientHeartbeats.push(heartbeat);
    },

    unregisterClient(clientId) {
      unregisteredClients.push(clientId);
    },
    endTransactionCalls,
    resetLiteOffsetCalls,
    dlq,
    changeInvisibleCalls,

    createTopic(topic, o = {}) {
      const queues = o.queues ?? 4;
      topics.set(topic, {
        messageType: o.messageType ?? "NORMAL",
        readQueueNums: queues,
        writeQueueNums: queues,
        perm: o.perm ?? PermName.READ | PermName.WRITE,
        queues: Array.from({ length: queues }, () => []),
      });
    },

    setGroup(config) {
      groups.set(config.groupName, config);
    },

    put(topic, body, properties = {}) {
      return store(topic, 0, {
        body: typeof body === "string" ? Buffer.from(body) : body,
        properties: { [MessageProperty.UNIQ_KEY]: `MEM${transactionSeq++}`, ...properties },
        bornTimestamp: now(),
        bornHost: "127.0.0.1",
      });
    },

    checkTransaction(check) {
      return transactionCheckHandler?.(check) ?? false;
    },

    heldPolls: () => held,

    async getTopicRoute(topic): Promise<TopicRoute> {
      const t = topicOf(topic);
      return {
        topic,
        messageType: t.messageType,
        brokers: [
          {
            brokerName: MEMORY_BROKER_NAME,
            readQueueNums: t.readQueueNums,
            writeQueueNums: t.writeQueueNums,
            perm: t.perm,
          },
        ],
      };
    },

    async getSubscriptionGroup(group) {
      const config = groups.get(group);
      if (config !== undefined) return config;
      if (options.autoCreateGroups ?? true) return defaultSubscriptionGroup(group);
      throw new RmqError(ErrorCode.ConsumerGroupNotFound, `group ${group} not found`);
    },

    async sendMessages(request): Promise<SendMessageResult[]> {
      sendCalls.push(request);
      return request.messages.map((m) => {
        const stored = store(request.topic, request.queueId, m);
        const isHalf = m.properties[MessageProperty.TRANSACTION_PREPARED] === "true";
        const isDelay = m.properties[MessageProperty.TIMER_DELIVER_MS] !== undefined;
        return {
          messageId: m.properties[MessageProperty.UNIQ_KEY] ?? "",
          queueId: stored.queueId,
          queueOffset: stored.queueOffset,
          transactionId: isHalf ? `TX${++transactionSeq}` : undefined,
          recallHandle: isDelay
            ? `RECALL|${request.topic}|${stored.queueId}|${stored.queueOffset}`
            : undefined,
        };
      });
    },

    async pop(request, signal) {
      popCalls.push(request);
      const found = tryPop(request);
      if (found.length > 0 || signal.aborted) return found;
      held++;
      try {
        return await new Promise<PoppedMessage[]>((resolve) => {
          const finish = (result: PoppedMessage[]) => {
            clearTimeout(timer);
            waiters.delete(onMessage);
            signal.removeEventListener("abort", onAbort);
            resolve(result);
          };
          const onMessage = () => {
            const popped = tryPop(request);
            if (popped.length > 0) finish(popped);
          };
          const onAbort = () => finish([]);
          const timer = setTimeout(() => finish([]), request.pollTimeMs);
          waiters.add(onMessage);
          signal.addEventListener("abort", onAbort);
        });
      } finally {
        held--;
      }
    },

    async ackMessages(request: AckMessagesRequest): Promise<AckResult[]> {
      return request.entries.map((e) => {
        try {
          parseHandle(request.group, e.receiptHandle).delivery.acked = true;
          return {};
        } catch (error) {
          return { error: { code: (error as RmqError).code, message: (error as RmqError).message } };
        }
      });
    },

    async changeInvisibleTime(request) {
      changeInvisibleCalls.push(request);
      const { delivery, message } = parseHandle(request.group, request.receiptHandle);
      delivery.generation++;
      delivery.invisibleUntil = now() + request.invisibleTimeMs;
      if (request.invisibleTimeMs === 0) for (const wake of [...waiters]) wake();
      return { receiptHandle: handleOf(message, delivery.generation) };
    },

    async forwardToDeadLetterQueue(request) {
      parseHandle(request.group, request.receiptHandle).delivery.acked = true;
      dlq.push(request);
    },

    async endTransaction(request) {
      endTransactionCalls.push(request);
      if (!request.transactionId.startsWith("TX")) {
        throw new RmqError(ErrorCode.TransactionNotFound, `transaction ${request.transactionId} not found`);
      }
    },

    async resetLiteOffset(request) {
      // The memory backend keeps no lite topics; record the call so tests can check it arrived.
      resetLiteOffsetCalls.push(request);
      return 0;
    },

    async recallMessage(request: RecallMessageRequest) {
      const [, topic, queueId, offset] = request.recallHandle.split("|");
      const message = topics.get(topic ?? "")?.queues[Number(queueId)]?.[Number(offset)];
      if (message === undefined) throw new RmqError(ErrorCode.MessageNotFound, "no such delay message");
      return { messageId: message.properties[MessageProperty.UNIQ_KEY] ?? "" };
    },

    async queryAssignment(request: QueryAssignmentRequest): Promise<QueueAssignment[]> {
      const t = topicOf(request.topic);
      return [{ brokerName: MEMORY_BROKER_NAME, queueId: -1, perm: t.perm }];
    },

    setTransactionCheckHandler(handler) {
      transactionCheckHandler = handler;
      return () => {
        if (transactionCheckHandler === handler) transactionCheckHandler = undefined;
      };
    },
  };
}
