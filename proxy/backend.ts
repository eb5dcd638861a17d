// The contract between the gRPC proxy and whatever stores and serves messages. The proxy speaks the
// RocketMQ 5 client protocol; everything that touches a broker goes through MessagingBackend.
//
// Everything crossing this interface is plain serialisable data (strings, numbers, booleans, byte
// views, arrays and records), so a cluster-mode implementation can forward each call over RPC to a
// remote broker. The only exception is the AbortSignal of `pop`, which an RPC implementation maps to a
// deadline plus cancellation. A backend never hands the proxy a broker object, and the proxy never
// hands the backend a protobuf message.
//
// Errors: a method rejects with RmqError carrying a stable ErrorCode (common/errors.ts); the proxy
// maps the code once to a v2 status (proxy/status.ts). Per-item outcomes of batch calls (send, ack)
// are returned as results, not thrown, so one bad message does not fail its neighbours. Anything
// that is not an RmqError is reported to clients as INTERNAL_SERVER_ERROR.

import type { ClientHeartbeat } from "../common/client-connection.ts";
import type { ErrorCode } from "../common/errors.ts";
import type { LiteOffsetPosition } from "../common/lite-topic.ts";

/** Upstream TopicMessageType: what a topic accepts (topic attribute `message.type`). */
export const TopicMessageType = {
  UNSPECIFIED: "UNSPECIFIED",
  NORMAL: "NORMAL",
  FIFO: "FIFO",
  DELAY: "DELAY",
  TRANSACTION: "TRANSACTION",
  /** Accepts every type of the list above (upstream MIXED). */
  MIXED: "MIXED",
  /** Messages with a priority: higher priorities are popped first (plain messages accepted too). */
  PRIORITY: "PRIORITY",
  /** Messages multiplexed onto lite topics of this parent topic (RIP-83). */
  LITE: "LITE",
} as const;
export type TopicMessageType = (typeof TopicMessageType)[keyof typeof TopicMessageType];

/** Upstream PermName bits, as stored in topic configs and routes (6 = read + write). */
export const PermName = {
  INHERIT: 1,
  WRITE: 2,
  READ: 4,
} as const;

export function isReadable(perm: number): boolean {
  return (perm & PermName.READ) !== 0;
}

export function isWritable(perm: number): boolean {
  return (perm & PermName.WRITE) !== 0;
}

/** One broker (master set) serving a topic: the route's QueueData. */
export interface BrokerQueueData {
  brokerName: string;
  /** Queues consumers read: ids 0 .. readQueueNums-1. */
  readQueueNums: number;
  /** Queues producers write: ids 0 .. writeQueueNums-1. */
  writeQueueNums: number;
  /** PermName bits of the topic on this broker. */
  perm: number;
}

export interface TopicRoute {
  topic: string;
  messageType: TopicMessageType;
  /** At least one entry; brokers that do not serve the topic are left out. */
  brokers: BrokerQueueData[];
}

/** Upstream GroupRetryPolicy: how long a consumer waits before a failed message comes back. */
export type GroupRetryPolicy =
  | {
      type: "CUSTOMIZED";
      /** The delay table in attempt order (upstream: the 18 levels 1s .. 2h); clients get it as CustomizedBackoff.next. */
      nextDelaysMs: number[];
    }
  | {
      type: "EXPONENTIAL";
      initialMs: number;
      maxMs: number;
      multiplier: number;
    };

/** The parts of a SubscriptionGroupConfig the proxy needs. */
export interface SubscriptionGroupConfig {
  groupName: string;
  consumeEnable: boolean;
  /** The "FIFO group" switch (upstream consumeMessageOrderly). */
  consumeMessageOrderly: boolean;
  /** Retries before the DLQ (upstream default 16); max delivery attempts = retryMaxTimes + 1. */
  retryMaxTimes: number;
  retryPolicy: GroupRetryPolicy;
}

/** Message property names the proxy writes and reads (upstream MessageConst). */
export const MessageProperty = {
  TAGS: "TAGS",
  /** Several keys joined with KEY_SEPARATOR. */
  KEYS: "KEYS",
  /** The client-made message id (what clients see as message_id). */
  UNIQ_KEY: "UNIQ_KEY",
  /** FIFO message group. */
  SHARDING_KEY: "__SHARDINGKEY",
  /** Delivery time of a delay/timer message, epoch ms as a decimal string. */
  TIMER_DELIVER_MS: "TIMER_DELIVER_MS",
  /** "true" on a transactional half message. */
  TRANSACTION_PREPARED: "TRAN_MSG",
  PRODUCER_GROUP: "PGROUP",
  /** First orphan check of a half message no earlier than this many seconds after it was stored. */
  CHECK_IMMUNITY_TIME_IN_SECONDS: "CHECK_IMMUNITY_TIME_IN_SECONDS",
  TRACE_CONTEXT: "TRACE_CONTEXT",
  RECONSUME_TIME: "RECONSUME_TIME",
  /** On a message in a DLQ topic: where it came from. */
  DLQ_ORIGIN_TOPIC: "DLQ_ORIGIN_TOPIC",
  DLQ_ORIGIN_MESSAGE_ID: "DLQ_ORIGIN_MESSAGE_ID",
  /** Priority of a PRIORITY message, a decimal int >= 0 (upstream MessageConst.PROPERTY_PRIORITY). */
  PRIORITY: "_SYS_MSG_PRIORITY_",
  /** The lite topic of a LITE message (upstream MessageConst.PROPERTY_LITE_TOPIC). */
  LITE_TOPIC: "__LITE_TOPIC",
  /** Separator inside KEYS. */
  KEY_SEPARATOR: " ",
} as const;

/** One message to store. */
export interface SendMessageEntry {
  /** Body bytes as the client sent them (a view into the request, not a copy; never compressed). */
  body: Uint8Array;
  /**
   * User properties plus the system ones above, as the CommitLog stores them: always UNIQ_KEY; TAGS,
   * KEYS, __SHARDINGKEY, TIMER_DELIVER_MS, TRACE_CONTEXT when set; TRAN_MSG="true" + PGROUP (+
   * CHECK_IMMUNITY_TIME_IN_SECONDS) on transactional half messages.
   */
  properties: Record<string, string>;
  /** Producer clock, epoch ms. */
  bornTimestamp: number;
  /** Producer host as reported by the client, or its peer address. */
  bornHost: string;
}

export interface SendMessagesRequest {
  topic: string;
  /** Target queue on `brokerName`, chosen by the proxy from the route's writable queues. */
  brokerName: string;
  queueId: number;
  /** One or more messages; a backend should store them as one batch (one append, one flush). */
  messages: SendMessageEntry[];
}

/** Outcome of one message of a batch. `error` unset means stored. */
export interface SendMessageResult {
  error?: BackendError;
  /** The UNIQ_KEY of the stored message. */
  messageId: string;
  queueId: number;
  queueOffset: number;
  /** Set for transactional half messages: the id EndTransaction must quote. */
  transactionId?: string;
  /** Set for delay/timer messages: the handle RecallMessage takes. */
  recallHandle?: string;
}

/** A per-item failure inside a batch result. */
export interface BackendError {
  code: ErrorCode;
  message: string;
}

export interface PopRequest {
  group: string;
  topic: string;
  /** Which broker to pop from (a broker name of the route), or undefined for any. */
  brokerName?: string;
  /** A queue id, or -1 for any queue of the topic. */
  queueId: number;
  filter: { type: "TAG" | "SQL92"; expression: string };
  /** 1..32. */
  batchSize: number;
  /** How long popped messages stay invisible to the group. */
  invisibleTimeMs: number;
  /** How long the call may be held while nothing is available (already clamped by the proxy). */
  pollTimeMs: number;
  /** Pop in FIFO order (upstream order=true): the queue is blocked while popped messages are in flight. */
  fifo: boolean;
  /** Identifies a retried FIFO pop so it returns the same messages. */
  attemptId?: string;
  /**
   * For a LITE topic: pop from these lite topics (each strictly in order) instead of its queues;
   * popped messages carry the parent topic and their lite topic in LITE_TOPIC.
   */
  liteTopics?: string[];
}

/** A popped message. Its topic is the subscribed one, also when it was redelivered from a retry topic. */
export interface PoppedMessage {
  topic: string;
  brokerName: string;
  queueId: number;
  queueOffset: number;
  /** Uncompressed body. */
  body: Uint8Array;
  /** Stored properties (UNIQ_KEY, TAGS, KEYS, __SHARDINGKEY, TIMER_DELIVER_MS, TRAN_MSG, DLQ_ORIGIN_*...). */
  properties: Record<string, string>;
  bornTimestamp: number;
  bornHost: string;
  storeTimestamp: number;
  storeHost: string;
  /** Opaque to the proxy and to clients; valid until the invisible time runs out. */
  receiptHandle: string;
  /** 1 on the first delivery (upstream reconsumeTimes + 1). */
  deliveryAttempt: number;
  invisibleTimeMs: number;
}

export interface AckEntry {
  receiptHandle: string;
  messageId: string;
}

export interface AckMessagesRequest {
  group: string;
  topic: string;
  entries: AckEntry[];
}

/** Outcome of one ack; `error` unset means acknowledged (acking an already acked message is not an error). */
export interface AckResult {
  error?: BackendError;
}

export interface ChangeInvisibleTimeRequest {
  group: string;
  topic: string;
  receiptHandle: string;
  messageId: string;
  /** 0 makes the message visible again at once (a nack). */
  invisibleTimeMs: number;
  /** A lite consumer pauses the message: its next delivery does not count as another attempt. */
  suspend?: boolean;
}

export interface ResetLiteOffsetRequest {
  group: string;
  /** The LITE parent topic. */
  topic: string;
  liteTopic: string;
  position: LiteOffsetPosition;
}

export interface ForwardToDeadLetterQueueRequest {
  group: string;
  topic: string;
  receiptHandle: string;
  messageId: string;
  deliveryAttempt: number;
  maxDeliveryAttempts: number;
}

export interface EndTransactionRequest {
  topic: string;
  /** Producer group of the half message (the proxy uses the topic name, as upstream). */
  producerGroup: string;
  messageId: string;
  transactionId: string;
  resolution: "COMMIT" | "ROLLBACK";
  /** True when the producer answers an orphan check (RecoverOrphanedTransactionCommand). */
  fromTransactionCheck: boolean;
}

export interface RecallMessageRequest {
  topic: string;
  recallHandle: string;
}

export interface QueryAssignmentRequest {
  topic: string;
  group: string;
}

/** One queue a push consumer should poll; queueId -1 means "any queue of that broker". */
export interface QueueAssignment {
  brokerName: string;
  queueId: number;
  perm: number;
}

/** A half message whose producer must say commit or rollback (pushed to a producer's Telemetry stream). */
export interface TransactionCheck {
  topic: string;
  transactionId: string;
  message: PoppedMessage;
}

export interface MessagingBackend {
  /**
   * The route of `topic`. Rejects TOPIC_NOT_FOUND when no broker serves it. Called on every
   * QueryRoute and SendMessage, so implementations cache.
   */
  getTopicRoute(topic: string): Promise<TopicRoute>;

  /**
   * The group's config. When the group does not exist the backend either creates it with defaults
   * (upstream autoCreateSubscriptionGroup) or rejects CONSUMER_GROUP_NOT_FOUND.
   */
  getSubscriptionGroup(group: string): Promise<SubscriptionGroupConfig>;

  /**
   * Store a batch on one queue. Resolves with exactly one result per message, in order; per-message
   * failures (flush or replication timeouts, ...) are results with `error`. Rejects only when
   * nothing was stored (TOPIC_NOT_FOUND, STORE_NOT_WRITABLE, ...).
   */
  sendMessages(request: SendMessagesRequest): Promise<SendMessageResult[]>;

  /**
   * Pop up to batchSize messages matching the filter exactly (TAG: the exact tag test, not just its
   * hash; SQL92: the evaluated selector). When none is available, hold the call until one arrives,
   * `pollTimeMs` passes or `signal` aborts, then resolve with what there is (possibly []): a long
   * poll ends in an empty result, never in a rejection. Rejects TOPIC_NOT_FOUND,
   * CONSUMER_GROUP_NOT_FOUND, ILLEGAL_FILTER_EXPRESSION, TOO_MANY_REQUESTS (too many held polls).
   */
  pop(request: PopRequest, signal: AbortSignal): Promise<PoppedMessage[]>;

  /**
   * Acknowledge received messages. One result per entry, in order; an expired or unknown handle is
   * an entry error INVALID_RECEIPT_HANDLE.
   */
  ackMessages(request: AckMessagesRequest): Promise<AckResult[]>;

  /**
   * Make a received message invisible for `invisibleTimeMs` from now; resolves with the handle that
   * replaces the old one (the old one stops working). Rejects INVALID_RECEIPT_HANDLE when the handle
   * expired or was acked.
   */
  changeInvisibleTime(request: ChangeInvisibleTimeRequest): Promise<{ receiptHandle: string }>;

  /**
   * Move a received message to the group's DLQ (`%DLQ%<group>`, keeping its origin topic and id in
   * DLQ_ORIGIN_TOPIC / DLQ_ORIGIN_MESSAGE_ID) and acknowledge the original. Rejects
   * INVALID_RECEIPT_HANDLE when the handle is no longer valid.
   */
  forwardToDeadLetterQueue(request: ForwardToDeadLetterQueueRequest): Promise<void>;

  /**
   * Commit or roll back a half message. Rejects INVALID_TRANSACTION_ID / TRANSACTION_NOT_FOUND when
   * the id is unknown (for example already resolved).
   */
  endTransaction(request: EndTransactionRequest): Promise<void>;

  /** Move the group's offset on one lite topic (a lite subscription's offset option); resolves with the offset set. */
  resetLiteOffset(request: ResetLiteOffsetRequest): Promise<number>;

  /** Cancel a delay message before delivery; resolves with its message id. Rejects MESSAGE_NOT_FOUND when already delivered or unknown. */
  recallMessage(request: RecallMessageRequest): Promise<{ messageId: string }>;

  /**
   * A client's heartbeat (its Settings or a Heartbeat call): the brokers learn it is connected, as a
   * consumer of its group or a producer of its topics (mqadmin consumerConnection/producerConnection).
   */
  registerClient(heartbeat: ClientHeartbeat): void;

  /** The client's session ended (NotifyClientTermination, stream end or expiry). */
  unregisterClient(clientId: string): void;

  /**
   * Queues a push consumer of `group` should poll for `topic` (upstream: one entry per readable
   * broker with queue id -1, or one per readable queue for FIFO groups). Rejects TOPIC_NOT_FOUND.
   */
  queryAssignment(request: QueryAssignmentRequest): Promise<QueueAssignment[]>;

  /**
   * Optional: the backend asks the proxy to relay orphan-transaction checks to a producer of the
   * topic. The proxy installs `handler` at start and uninstalls it on close (the returned function).
   * `handler` returns false when no producer of that topic is connected to this proxy.
   */
  setTransactionCheckHandler?(handler: (check: TransactionCheck) => boolean): () => void;
}
