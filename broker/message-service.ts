// The broker's message service: the send path (validate, auto-create the topic, pick the queue, set
// the system properties, store as one batch), pop consumption (broker/pop), consumer progress for
// admin, and an orderly shutdown. Everything in and out is plain data, so the proxy's backend (local
// or over RPC) can wrap it directly.

import { ErrorCode, isRmqError, RmqError } from "../common/errors.ts";
import {
  type LiteOffsetPosition,
  lmqName,
  PROPERTY_LITE_TOPIC,
  validateLiteTopic,
} from "../common/lite-topic.ts";
import { type Logger, silentLogger } from "../common/logger.ts";
import { isRetryTopic, validateSendTopic } from "../common/topic-validator.ts";
import type { ConsumerOffsetManager } from "./metadata/consumer-offset-manager.ts";
import type { SubscriptionGroupManager } from "./metadata/subscription-group-manager.ts";
import {
  isWriteable,
  type TopicConfig,
  type TopicConfigManager,
  TopicMessageType,
  topicMessageType,
} from "./metadata/topic-config-manager.ts";
import type { PopConfig } from "./pop/pop-config.ts";
import {
  type ChangeInvisibleTimeResult,
  type HandleResult,
  type PopOptions,
  type PoppedMessage,
  PopService,
} from "./pop/pop-service.ts";
import { popRetryTopicOf } from "./pop/pop-topics.ts";
import type { HostAddress } from "./store/host-address.ts";
import { MessageConst } from "./store/message-const.ts";
import type { MessageStore } from "./store/message-store.ts";
import type { MessageInput, PutMessageStatus } from "./store/message-store-types.ts";
import type { TimerMessageStore } from "./timer/timer-message-store.ts";
import { isTimerMessage } from "./timer/timer-transform.ts";
import { isTransactionPrepared, toHalfMessage } from "./transaction/half-message.ts";
import { TransactionProperty } from "./transaction/transaction-properties.ts";
import {
  createTransactionService,
  DEFAULT_TRANSACTION_CONFIG,
  type EndTransactionRequest,
  type TransactionCheckRequest,
  type TransactionConfig,
  type TransactionService,
} from "./transaction/transaction-service.ts";

/** Messages in one send call (ours; upstream batches are bounded by maxMessageSize only). */
export const MAX_SEND_BATCH_SIZE = 1024;

/** The broker.conf keys the service follows (names and defaults as upstream BrokerConfig). */
export interface BrokerMessageServiceConfig {
  /** A send to an unknown topic creates it (true). */
  autoCreateTopicEnable: boolean;
  /** Queues of an auto-created topic (8). */
  defaultTopicQueueNums: number;
  /** A pop for an unknown group creates it (true). */
  autoCreateSubscriptionGroup: boolean;
  /** Revive topic queues, when the topic table does not have it yet (8). */
  reviveQueueNum?: number;
  /** SQL92 filters allowed (false, as upstream). */
  enablePropertyFilter?: boolean;
  /** Pop tuning beyond broker.conf keys (see broker/pop/pop-config.ts). */
  pop?: Partial<PopConfig>;
  /** Transaction check settings (upstream defaults: 6 s timeout, 30 s interval, 15 checks). */
  transaction?: Partial<TransactionConfig>;
  /** Refuse transactional half messages (upstream rejectTransactionMessage, false). */
  rejectTransactionMessage?: boolean;
  /** RecallMessage allowed (upstream recallMessageEnable, false: refused with FORBIDDEN). */
  recallMessageEnable?: boolean;
  /** Lite topics (LMQ ConsumeQueues) this broker keeps at most (upstream maxLmqConsumeQueueNum, 20000). */
  maxLmqConsumeQueueNum?: number;
}

/** Upstream MessageStoreConfig maxLmqConsumeQueueNum. */
export const DEFAULT_MAX_LMQ_CONSUME_QUEUE_NUM = 20_000;

export interface SendMessageInput {
  /** Body bytes (kept as a view, not copied). */
  body: Uint8Array;
  /** Properties as stored: user properties and system ones (UNIQ_KEY, __SHARDINGKEY, ...). */
  properties?: Readonly<Record<string, string>>;
  /** Sets TAGS. */
  tag?: string;
  /** Sets KEYS (joined with a space). */
  keys?: readonly string[];
  /** Producer clock; default now. */
  bornTimestamp?: number;
  /** Producer address ("ip:port", "ip", or parsed); default 127.0.0.1:0. */
  bornHost?: string | HostAddress;
  flag?: number;
}

export interface SendRequest {
  topic: string;
  /** A writable queue, or undefined / -1 to let the broker choose (round robin per topic). */
  queueId?: number;
  messages: readonly SendMessageInput[];
}

export interface SendResult {
  status: PutMessageStatus;
  /** The client message id (UNIQ_KEY; generated when the message had none). */
  messageId: string;
  /** Store host + CommitLog offset. */
  offsetMsgId: string;
  topic: string;
  queueId: number;
  queueOffset: number;
  commitLogOffset: number;
  /** Set for a transactional half message: the id EndTransaction quotes. */
  transactionId?: string;
  /** Set for a delay/timer message: the handle RecallMessage takes. */
  recallHandle?: string;
}

export interface QueueProgress {
  topic: string;
  queueId: number;
  /** Next offset the queue will assign (upstream brokerOffset). */
  brokerOffset: number;
  /** Committed consumer offset, -1 when the group never consumed the queue. */
  consumerOffset: number;
  /** Messages not consumed yet (from the queue's first message when consumerOffset is -1). */
  lag: number;
  /** Popped and not acked yet. */
  inflight: number;
}

export interface ConsumerProgress {
  group: string;
  /** Every queue of every topic the group has offsets on, its pop retry topics included. */
  queues: QueueProgress[];
  totalLag: number;
  totalInflight: number;
}

export interface BrokerMessageServiceOptions {
  store: MessageStore;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  brokerName: string;
  clusterName: string;
  config: BrokerMessageServiceConfig;
  logger?: Logger;
  /** The broker's address (born host of the records the broker writes itself). */
  storeHost?: HostAddress;
  /** Injected clock for pop times and revive (tests). */
  clock?: () => number;
  /**
   * Delay/timer messages (broker/timer), started and shut down by the caller (after this service
   * stops, before the store). Without one (timerWheelEnable=false) timer messages are refused.
   */
  timer?: TimerMessageStore;
  /** Injected randomness for queue order (tests). */
  random?: () => number;
}

export interface BrokerMessageService {
  readonly brokerName: string;
  /** Stores a batch on one queue; one result per message, in order. */
  sendMessages(request: SendRequest): Promise<SendResult[]>;
  pop(group: string, topic: string, options: PopOptions): Promise<PoppedMessage[]>;
  ack(group: string, topic: string, receiptHandles: readonly string[]): Promise<HandleResult[]>;
  /** `suspend`: a lite consumer pauses the message; its next delivery is not another attempt (FIFO handles). */
  changeInvisibleTime(
    group: string,
    topic: string,
    receiptHandle: string,
    invisibleTimeMs: number,
    suspend?: boolean,
  ): Promise<ChangeInvisibleTimeResult>;
  /**
   * Moves the group's offset on one lite topic of a LITE topic (a lite subscription's offset option):
   * MIN, MAX, an absolute offset, or TAIL_N (that many messages before the end). Resolves with the offset set.
   */
  resetLiteOffset(
    group: string,
    topic: string,
    liteTopic: string,
    position: LiteOffsetPosition,
  ): Promise<number>;
  forwardToDeadLetterQueue(group: string, topic: string, receiptHandle: string): Promise<void>;
  /** Offsets, lag and in-flight counts of a group, optionally for one topic (and its pop retry topic). */
  consumerProgress(group: string, topic?: string): ConsumerProgress;
  /** Runs one revive pass now (the timer does it every reviveIntervalMs). */
  reviveDue(): Promise<number>;
  /**
   * Commits or rolls back a transactional half message. Rejects INVALID_TRANSACTION_ID or
   * TRANSACTION_NOT_FOUND (already ended, discarded after too many checks, unknown).
   */
  endTransaction(request: EndTransactionRequest): Promise<void>;
  /**
   * Installs the relay of orphan-transaction checks to producers (the proxy's); returns the function
   * that uninstalls it. Without one, checks find no producer (and count as sent, as upstream).
   */
  setTransactionCheckListener(listener: (check: TransactionCheckRequest) => boolean): () => void;
  /** One transaction check pass now (the timer runs one every transactionCheckInterval). */
  checkTransactionsNow(): Promise<number>;
  /**
   * Cancels a delay/timer message not delivered yet; resolves with its message id. Rejects FORBIDDEN
   * (recallMessageEnable=false or no timer), ILLEGAL_ARGUMENT (a bad handle), MESSAGE_NOT_FOUND
   * (already delivered or unknown).
   */
  recallMessage(topic: string, recallHandle: string): Promise<{ messageId: string }>;
  /** Ends held polls, finishes operations under way, persists consumer offsets. The store is the caller's to shut down. */
  shutdown(): Promise<void>;
}

/** How the send path stored a message. */
const MessageKind = { NORMAL: 0, HALF: 1, TIMER: 2 } as const;
type MessageKind = (typeof MessageKind)[keyof typeof MessageKind];

const DEFAULT_BORN_HOST: HostAddress = { address: "127.0.0.1", port: 0 };

/** "ip:port", "[v6]:port", a bare IPv4 or IPv6 literal; a host that is not an IP literal is refused by the store. */
function parseHost(h: string | HostAddress | undefined): HostAddress {
  if (h === undefined) return DEFAULT_BORN_HOST;
  if (typeof h !== "string") return h;
  const s = h.trim();
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  if (bracket !== null) return { address: bracket[1] as string, port: Number(bracket[2] ?? 0) };
  const colon = s.lastIndexOf(":");
  if (colon > 0 && s.indexOf(":") === colon && /^\d{1,5}$/.test(s.slice(colon + 1))) {
    return { address: s.slice(0, colon), port: Number(s.slice(colon + 1)) };
  }
  return { address: s, port: 0 };
}

class DefaultBrokerMessageService implements BrokerMessageService {
  readonly brokerName: string;
  private readonly o: BrokerMessageServiceOptions;
  private readonly popService: PopService;
  private readonly logger: Logger;
  private readonly clock: () => number;
  /** Next queue per topic for sends that leave the choice to the broker. */
  private readonly nextQueue = new Map<string, number>();
  private closed = false;

  private readonly transactions: TransactionService;
  private checkListener: ((check: TransactionCheckRequest) => boolean) | undefined;

  constructor(o: BrokerMessageServiceOptions, popService: PopService) {
    this.o = o;
    this.transactions = createTransactionService({
      store: o.store,
      topics: o.topics,
      offsets: o.offsets,
      brokerName: o.brokerName,
      config: { ...DEFAULT_TRANSACTION_CONFIG, ...o.config.transaction },
      onCheck: (check) => this.checkListener?.(check) ?? false,
      logger: o.logger?.child({ component: "transactions" }),
      clock: o.clock,
      storeHost: o.storeHost,
    });
    this.brokerName = o.brokerName;
    this.popService = popService;
    this.logger = o.logger ?? silentLogger();
    this.clock = o.clock ?? Date.now;
  }

  // ------------------------------------------------------------------ send

  private async topicForSend(topic: string): Promise<TopicConfig> {
    validateSendTopic(topic);
    const existing = this.o.topics.get(topic);
    if (existing !== undefined) return existing;
    if (this.o.config.autoCreateTopicEnable) {
      const created = await this.o.topics.createFromTemplate(topic, {
        clientDefaultTopicQueueNums: this.o.config.defaultTopicQueueNums,
      });
      if (created !== undefined) return created;
    }
    throw new RmqError(
      ErrorCode.TopicNotFound,
      `topic ${JSON.stringify(topic)} does not exist on broker ${this.brokerName}` +
        (this.o.config.autoCreateTopicEnable ? "" : " (autoCreateTopicEnable=false)"),
    );
  }

  private chooseQueue(tc: TopicConfig, requested: number | undefined): number {
    if (tc.writeQueueNums <= 0)
      throw new RmqError(ErrorCode.Forbidden, `topic ${JSON.stringify(tc.topicName)} has no write queues`);
    if (requested !== undefined && requested !== -1) {
      if (!Number.isInteger(requested) || requested < 0 || requested >= tc.writeQueueNums) {
        throw new RmqError(
          ErrorCode.IllegalArgument,
          `queueId=${requested} is not a write queue of topic ${JSON.stringify(tc.topicName)} (0 .. ${tc.writeQueueNums - 1})`,
        );
      }
      return requested;
    }
    const q = (this.nextQueue.get(tc.topicName) ?? 0) % tc.writeQueueNums;
    this.nextQueue.set(tc.topicName, q + 1);
    return q;
  }

  /** A LITE message goes to queue 0 of its lite topic's internal topic (broker/lite). */
  private liteMessage(tc: TopicConfig, input: MessageInput, lite: string): MessageInput {
    validateLiteTopic(lite);
    if (topicMessageType(tc) !== TopicMessageType.LITE)
      throw new RmqError(
        ErrorCode.MessagePropertyConflictWithType,
        `topic ${JSON.stringify(tc.topicName)} is not a LITE topic: a message with lite topic ${JSON.stringify(lite)} cannot go there`,
      );
    const lmq = lmqName(tc.topicName, lite);
    const max = this.o.config.maxLmqConsumeQueueNum ?? DEFAULT_MAX_LMQ_CONSUME_QUEUE_NUM;
    if (!this.o.store.hasConsumeQueue(lmq, 0) && this.o.store.lmqConsumeQueueCount() >= max)
      throw new RmqError(
        ErrorCode.LiteTopicQuotaExceeded,
        `broker ${this.brokerName} keeps ${max} lite topics already (maxLmqConsumeQueueNum); lite topic ${JSON.stringify(lite)} is refused`,
      );
    return { ...input, topic: lmq, queueId: 0 };
  }

  async sendMessages(request: SendRequest): Promise<SendResult[]> {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "the broker message service is shut down");
    const n = request.messages.length;
    if (n === 0) return [];
    if (n > MAX_SEND_BATCH_SIZE)
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `${n} messages in one send; at most ${MAX_SEND_BATCH_SIZE}`,
      );
    // A known topic (every send but a topic's first) needs no async step.
    validateSendTopic(request.topic);
    const tc = this.o.topics.get(request.topic) ?? (await this.topicForSend(request.topic));
    if (!isWriteable(tc.perm)) {
      throw new RmqError(
        ErrorCode.Forbidden,
        `topic ${JSON.stringify(tc.topicName)} is not writable on broker ${this.brokerName}`,
      );
    }
    const queueId = this.chooseQueue(tc, request.queueId);
    const now = this.clock();
    // Only batches holding half or timer messages need these (most sends hold neither).
    let kinds: MessageKind[] | undefined;
    let recallHandles: Array<string | undefined> | undefined;
    const inputs: MessageInput[] = request.messages.map((m, i) => {
      if (m.body.length === 0)
        throw new RmqError(ErrorCode.MessageBodyEmpty, `message ${i} has an empty body`);
      const props = new Map<string, string>();
      const given = m.properties;
      if (given !== undefined) for (const name in given) props.set(name, given[name] as string);
      if (m.tag !== undefined && m.tag.length > 0) props.set(MessageConst.PROPERTY_TAGS, m.tag);
      if (m.keys !== undefined && m.keys.length > 0)
        props.set(MessageConst.PROPERTY_KEYS, m.keys.join(MessageConst.KEY_SEPARATOR));
      const input: MessageInput = {
        topic: tc.topicName,
        queueId,
        flag: m.flag ?? 0,
        body: m.body,
        properties: props,
        bornTimestamp: m.bornTimestamp ?? now,
        bornHost: parseHost(m.bornHost),
        sysFlag: 0,
        reconsumeTimes: 0,
        preparedTransactionOffset: 0,
      };
      if (isTransactionPrepared(props)) {
        if (this.o.config.rejectTransactionMessage === true)
          throw new RmqError(
            ErrorCode.Forbidden,
            `broker ${this.brokerName} refuses transactional messages (rejectTransactionMessage=true)`,
          );
        // gRPC producers have no group of their own; the topic stands in for it (upstream proxy).
        if (!props.has(TransactionProperty.PRODUCER_GROUP))
          props.set(TransactionProperty.PRODUCER_GROUP, tc.topicName);
        kinds ??= new Array(n).fill(MessageKind.NORMAL);
        kinds[i] = MessageKind.HALF;
        return toHalfMessage(input);
      }
      const timer = this.o.timer;
      if (timer === undefined) {
        if (isTimerMessage(input))
          throw new RmqError(
            ErrorCode.Forbidden,
            `broker ${this.brokerName} does not take delay messages (timerWheelEnable=false)`,
          );
      } else {
        const t = timer.transform(input);
        if (t !== undefined) {
          kinds ??= new Array(n).fill(MessageKind.NORMAL);
          recallHandles ??= new Array(n);
          kinds[i] = MessageKind.TIMER;
          recallHandles[i] = t.recallHandle;
          return t.message;
        }
      }
      const lite = props.get(PROPERTY_LITE_TOPIC);
      if (lite !== undefined) return this.liteMessage(tc, input, lite);
      return input;
    });
    const results = await this.o.store.putMessages(inputs);
    return results.map((r, i) => {
      const result: SendResult = {
        status: r.status,
        messageId: r.uniqKey,
        offsetMsgId: r.msgId,
        topic: tc.topicName,
        queueId,
        queueOffset: r.queueOffset,
        commitLogOffset: r.commitLogOffset,
      };
      const kind = kinds?.[i];
      if (kind === MessageKind.HALF) result.transactionId = this.transactions.transactionIdOf(r);
      else if (kind === MessageKind.TIMER) result.recallHandle = recallHandles?.[i];
      return result;
    });
  }

  // ------------------------------------------------------------------ pop (broker/pop)

  pop(group: string, topic: string, options: PopOptions): Promise<PoppedMessage[]> {
    return this.popService.pop(group, topic, options);
  }

  ack(group: string, topic: string, receiptHandles: readonly string[]): Promise<HandleResult[]> {
    return this.popService.ack(group, topic, receiptHandles);
  }

  changeInvisibleTime(
    group: string,
    topic: string,
    receiptHandle: string,
    invisibleTimeMs: number,
    suspend?: boolean,
  ): Promise<ChangeInvisibleTimeResult> {
    return this.popService.changeInvisibleTime(group, topic, receiptHandle, invisibleTimeMs, suspend);
  }

  async resetLiteOffset(
    group: string,
    topic: string,
    liteTopic: string,
    position: LiteOffsetPosition,
  ): Promise<number> {
    validateLiteTopic(liteTopic);
    const tc = this.o.topics.get(topic);
    if (tc === undefined)
      throw new RmqError(
        ErrorCode.TopicNotFound,
        `topic ${JSON.stringify(topic)} does not exist on broker ${this.brokerName}`,
      );
    if (topicMessageType(tc) !== TopicMessageType.LITE)
      throw new RmqError(ErrorCode.IllegalArgument, `topic ${JSON.stringify(topic)} is not a LITE topic`);
    const lmq = lmqName(topic, liteTopic);
    const { store } = this.o;
    const min = Math.max(0, store.getMinOffsetInQueue(lmq, 0));
    const max = Math.max(min, store.getMaxOffsetInQueue(lmq, 0));
    const target =
      position.kind === "MIN"
        ? min
        : position.kind === "MAX"
          ? max
          : position.kind === "OFFSET"
            ? position.value
            : max - position.value;
    return this.popService.resetOffset(group, lmq, 0, target);
  }

  forwardToDeadLetterQueue(group: string, topic: string, receiptHandle: string): Promise<void> {
    return this.popService.forwardToDeadLetterQueue(group, topic, receiptHandle);
  }

  reviveDue(): Promise<number> {
    return this.popService.reviveDue();
  }

  // ------------------------------------------------------------------ transactions (broker/transaction)

  endTransaction(request: EndTransactionRequest): Promise<void> {
    if (this.closed)
      return Promise.reject(new RmqError(ErrorCode.StoreShutdown, "the broker message service is shut down"));
    return this.transactions.endTransaction(request);
  }

  setTransactionCheckListener(listener: (check: TransactionCheckRequest) => boolean): () => void {
    this.checkListener = listener;
    return () => {
      if (this.checkListener === listener) this.checkListener = undefined;
    };
  }

  checkTransactionsNow(): Promise<number> {
    return this.transactions.checkNow();
  }

  // ------------------------------------------------------------------ recall (broker/timer)

  async recallMessage(topic: string, recallHandle: string): Promise<{ messageId: string }> {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "the broker message service is shut down");
    if (this.o.config.recallMessageEnable !== true)
      throw new RmqError(
        ErrorCode.Forbidden,
        `broker ${this.brokerName} does not allow recall (recallMessageEnable=false)`,
      );
    if (this.o.timer === undefined)
      throw new RmqError(
        ErrorCode.Forbidden,
        `broker ${this.brokerName} keeps no delay messages (timerWheelEnable=false)`,
      );
    return this.o.timer.recall(topic, recallHandle);
  }

  /** Rebuilds the transaction state and starts the check timer. */
  async start(): Promise<void> {
    await this.transactions.start();
  }

  // ------------------------------------------------------------------ admin

  consumerProgress(group: string, topic?: string): ConsumerProgress {
    const { offsets, topics, store } = this.o;
    const names = new Set(topic === undefined ? offsets.topicsOf(group) : [topic]);
    // A topic's pop retry topic counts once it exists, even before the group read from it.
    for (const t of [...names]) {
      const retry = popRetryTopicOf(group, t);
      if (!isRetryTopic(t) && topics.has(retry)) names.add(retry);
    }
    const queues: QueueProgress[] = [];
    for (const t of [...names].sort(
      (a, b) => Number(isRetryTopic(a)) - Number(isRetryTopic(b)) || a.localeCompare(b),
    )) {
      const committed = offsets.queryAll(group, t);
      const queueIds = new Set<number>(committed.keys());
      const tc = topics.get(t);
      for (let q = 0; q < (tc?.readQueueNums ?? 0); q++) queueIds.add(q);
      for (const q of [...queueIds].sort((a, b) => a - b)) {
        const brokerOffset = store.getMaxOffsetInQueue(t, q);
        const consumerOffset = committed.get(q) ?? -1;
        const from = consumerOffset >= 0 ? consumerOffset : store.getMinOffsetInQueue(t, q);
        queues.push({
          topic: t,
          queueId: q,
          brokerOffset,
          consumerOffset,
          lag: Math.max(0, brokerOffset - from),
          inflight: this.popService.inflightCount(group, t, q),
        });
      }
    }
    return {
      group,
      queues,
      totalLag: queues.reduce((s, q) => s + q.lag, 0),
      totalInflight: queues.reduce((s, q) => s + q.inflight, 0),
    };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.transactions.shutdown();
    } catch (err) {
      if (!isRmqError(err)) throw err;
      this.logger.error({ err }, "transaction service shutdown failed");
    }
    try {
      await this.popService.shutdown();
    } catch (err) {
      if (!isRmqError(err)) throw err;
      this.logger.error({ err }, "pop shutdown failed");
    }
  }
}

/** Builds the service over an opened store and loaded metadata managers; rebuilds pop state from the revive topic. */
export async function createBrokerMessageService(
  o: BrokerMessageServiceOptions,
): Promise<BrokerMessageService> {
  const popService = await PopService.create({
    store: o.store,
    topics: o.topics,
    groups: o.groups,
    offsets: o.offsets,
    brokerName: o.brokerName,
    clusterName: o.clusterName,
    autoCreateSubscriptionGroup: o.config.autoCreateSubscriptionGroup,
    reviveQueueNum: o.config.reviveQueueNum,
    storeHost: o.storeHost,
    config: { enablePropertyFilter: o.config.enablePropertyFilter ?? false, ...o.config.pop },
    logger: o.logger,
    clock: o.clock,
    random: o.random,
  });
  const service = new DefaultBrokerMessageService(o, popService);
  try {
    await service.start();
  } catch (err) {
    await service.shutdown().catch(() => {});
    throw err;
  }
  return service;
}
