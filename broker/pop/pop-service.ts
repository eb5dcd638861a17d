// Pop consumption (upstream PopMessageProcessor, AckMessageProcessor, ChangeInvisibleTimeProcessor;
// our design): stateless consumers pop messages, which stay invisible to their group for an invisible
// time and come back (attempt + 1, through the group's pop retry topic) unless acked before it ends.
//
// Durability: a pop writes a check point (CK) to the revive topic and only then commits the consumer
// offset; ack, changeInvisibleTime, revive and DLQ moves write ACK records there. All of them are
// CommitLog records, written before the caller is answered, so after a crash or restart the
// in-flight table is rebuilt from the revive topic (revive-log-rebuild.ts): an acked message is not
// delivered again and an un-acked one comes back after its invisible time.
//
// Concurrency: one pop at a time reads a given (topic, group, queue) (a try-lock, as upstream: a busy
// queue is skipped, and pollers parked on it are woken when it is released). An in-flight message
// has at most one ack/change/DLQ/revive write under way; a second one waits for it and re-checks.
//
// FIFO pop (upstream order=true) is fifo-pop.ts: the same queue lock, per-message-group ordering
// state instead of the CK, attemptId honoured; its receipt handles carry reviveQid FIFO_REVIVE_QID.

import { join } from "node:path";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { lmqName, validateLiteTopic } from "../../common/lite-topic.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import { isRetryTopic } from "../../common/topic-validator.ts";
import {
  createMessageFilter,
  type FilterSpec,
  FilterType,
  type MessageFilter,
} from "../filter/message-filter.ts";
import type { ConsumerOffsetManager } from "../metadata/consumer-offset-manager.ts";
import type {
  SubscriptionGroupConfig,
  SubscriptionGroupManager,
} from "../metadata/subscription-group-manager.ts";
import {
  isReadable,
  PermName,
  type TopicConfig,
  type TopicConfigManager,
  TopicMessageType,
  topicMessageType,
} from "../metadata/topic-config-manager.ts";
import { FlushDiskType } from "../store/config.ts";
import type { HostAddress } from "../store/host-address.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import {
  GetMessageStatus,
  type MessageInput,
  PutMessageStatus,
  type MessageFilter as StoreMessageFilter,
} from "../store/message-store-types.ts";
import { ConsumerOrderInfoManager } from "./consumer-order-info.ts";
import { FifoPop } from "./fifo-pop.ts";
import { type CheckPointState, type InflightMessage, InflightTable, inflightKey } from "./inflight-table.ts";
import {
  defaultPopConfig,
  MAX_INVISIBLE_TIME_MS,
  MAX_POLL_TIMEOUT_MS,
  MAX_POP_BATCH_SIZE,
  type PopConfig,
} from "./pop-config.ts";
import { PopLongPolling } from "./pop-long-polling.ts";
import { PopProperty } from "./pop-properties.ts";
import { ensurePopTopic, PopReviveService } from "./pop-revive-service.ts";
import { DLQ_QUEUE_NUMS, deadLetterTopicOf, popRetryTopicOf, reviveTopicOf } from "./pop-topics.ts";
import { loadReceiptHandleKey, type ReceiptHandle, ReceiptHandleCodec } from "./receipt-handle.ts";
import { RecentlyAcked } from "./recently-acked.ts";
import { deadLetterMessage, maxDeliveryAttempts } from "./retry-message.ts";
import { ReviveLog } from "./revive-log.ts";
import { type RebuildReport, rebuildInflightFromReviveLog } from "./revive-log-rebuild.ts";
import { AckReason } from "./revive-log-record.ts";

/** Where a group that never consumed a queue starts (upstream ConsumeInitMode). */
export const ConsumeInitMode = {
  /** The queue's first message. */
  MIN: "MIN",
  /**
   * Upstream's MAX with initPopOffsetByCheckMsgInMem: the queue's first message while the queue still
   * starts at offset 0, else its last message. The upstream proxy pops with MAX.
   */
  MAX: "MAX",
} as const;
export type ConsumeInitMode = (typeof ConsumeInitMode)[keyof typeof ConsumeInitMode];

export interface PopOptions {
  /** A queue of the topic, or -1 / undefined for any. */
  queueId?: number;
  /** 1 .. 32. */
  maxMessages: number;
  /** How long popped messages stay invisible to the group (0 .. 12 h). */
  invisibleTimeMs: number;
  /** Default: TAG "*". */
  filter?: FilterSpec;
  /** How long to hold the call while nothing matches (0 = answer at once). */
  pollTimeoutMs?: number;
  /** Ends a held call early (it then resolves with []). */
  signal?: AbortSignal;
  /** Identifies a retried FIFO pop: it returns the messages the first try returned, if still in flight. */
  attemptId?: string;
  /** FIFO pop (upstream order=true): per message group, in queue order, one in flight at a time (fifo-pop.ts). */
  fifo?: boolean;
  /** Where a group without a committed offset starts; default MAX (as the upstream proxy). */
  initMode?: ConsumeInitMode;
  /**
   * Lite topics of `topic` (a LITE topic) to pop from instead of its queues: each is read in order
   * (FIFO, one in-flight batch per message group), rotating over them (broker/lite). At most
   * MAX_LITE_TOPICS_PER_POP.
   */
  liteTopics?: readonly string[];
}

/** Lite topics one pop may name (ours; the SDKs' default lite_subscription_quota is 100). */
export const MAX_LITE_TOPICS_PER_POP = 2000;

export interface PoppedMessage {
  /** The record as stored; its topic is the pop retry topic when the message came back from there. */
  message: StoredMessage;
  /** The subscribed topic. */
  topic: string;
  /** The client message id (UNIQ_KEY), or the offset msgId of a record without one. */
  messageId: string;
  receiptHandle: string;
  /** 1 on the first delivery (reconsumeTimes + 1). */
  deliveryAttempt: number;
  popTime: number;
  invisibleTimeMs: number;
}

/** Per-handle outcome of ack. */
export type HandleResult = { ok: true } | { ok: false; code: ErrorCode; message: string };

export interface ChangeInvisibleTimeResult {
  /** Replaces the old handle, which stops working. */
  receiptHandle: string;
  popTime: number;
  invisibleTimeMs: number;
}

export interface PopServiceOptions {
  store: MessageStore;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  brokerName: string;
  clusterName: string;
  /**
   * A pop for an unknown group creates it with defaults (upstream autoCreateSubscriptionGroup, true);
   * when false it is refused with CONSUMER_GROUP_NOT_FOUND.
   */
  autoCreateSubscriptionGroup?: boolean;
  /** Queues of the revive topic when it does not exist yet (upstream reviveQueueNum, 8). */
  reviveQueueNum?: number;
  /** Born host of the records pop writes (the broker's address). */
  storeHost?: HostAddress;
  config?: Partial<PopConfig>;
  logger?: Logger;
  /** Wall clock for pop times, invisible times and revive (tests inject one). */
  clock?: () => number;
  /** Random source for queue order and the retry-first choice (tests inject one). */
  random?: () => number;
}

const DEFAULT_REVIVE_QUEUE_NUM = 8;
/** Lite pop cursors kept before they are reset (ours; a cursor only spreads the starting point). */
const MAX_LITE_CURSORS = 100_000;
const DEFAULT_STORE_HOST: HostAddress = { address: "127.0.0.1", port: 10911 };
const MATCH_ALL: FilterSpec = { type: FilterType.TAG, expression: "*" };

type Resolved = { kind: "entry"; entry: InflightMessage } | { kind: "acked" };

interface PopContext {
  group: SubscriptionGroupConfig;
  topic: string;
  filter: MessageFilter;
  storeFilter: StoreMessageFilter | undefined;
  maxMessages: number;
  invisibleTimeMs: number;
  initMode: ConsumeInitMode;
  out: PoppedMessage[];
  popTime: number;
}

function illegal(message: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, message);
}

function checkInt(name: string, v: unknown, min: number, max: number): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw illegal(`${name}=${String(v)} must be an integer from ${min} to ${max}`);
  }
}

export class PopService {
  readonly brokerName: string;
  readonly reviveTopic: string;
  readonly config: Readonly<PopConfig>;
  private readonly store: MessageStore;
  private readonly topics: TopicConfigManager;
  private readonly groups: SubscriptionGroupManager;
  private readonly offsets: ConsumerOffsetManager;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly random: () => number;
  private readonly codec: ReceiptHandleCodec;
  private readonly reviveLog: ReviveLog;
  private readonly table = new InflightTable();
  private readonly recentlyAcked: RecentlyAcked;
  private readonly polling: PopLongPolling;
  private readonly reviver: PopReviveService;
  private readonly fifo: FifoPop;
  private readonly orderInfo: ConsumerOrderInfoManager;
  /** Where the next lite pop of a group starts in its lite topic list: `parent@group` → index. */
  private readonly liteCursor = new Map<string, number>();
  /** Queues being read by a pop: `topic@group@queueId`. */
  private readonly queueLocks = new Set<string>();
  /** Locked queues another pop skipped: their release wakes parked pollers. */
  private readonly contended = new Set<string>();
  private readonly operations = new Set<Promise<unknown>>();
  private readonly autoCreateSubscriptionGroup: boolean;
  private closed = false;
  rebuildReport: RebuildReport = { records: 0, unreadable: 0, inflight: 0 };

  private constructor(o: PopServiceOptions, codec: ReceiptHandleCodec, reviveQueueNums: number) {
    this.store = o.store;
    this.topics = o.topics;
    this.groups = o.groups;
    this.offsets = o.offsets;
    this.brokerName = o.brokerName;
    this.autoCreateSubscriptionGroup = o.autoCreateSubscriptionGroup ?? true;
    this.logger = o.logger ?? silentLogger();
    this.clock = o.clock ?? Date.now;
    this.random = o.random ?? Math.random;
    this.config = { ...defaultPopConfig(), ...o.config };
    this.codec = codec;
    this.reviveTopic = reviveTopicOf(o.clusterName);
    this.reviveLog = new ReviveLog({
      topic: this.reviveTopic,
      queueNums: reviveQueueNums,
      host: o.storeHost ?? DEFAULT_STORE_HOST,
      clock: this.clock,
    });
    this.recentlyAcked = new RecentlyAcked(this.config.recentlyAckedLimit);
    this.polling = new PopLongPolling({
      perKey: this.config.popPollingSize,
      total: this.config.maxPopPollingSize,
    });
    this.reviver = new PopReviveService({
      store: this.store,
      topics: this.topics,
      groups: this.groups,
      offsets: this.offsets,
      table: this.table,
      reviveLog: this.reviveLog,
      clock: this.clock,
      logger: this.logger,
      reviveIntervalMs: this.config.reviveIntervalMs,
      reviveBatchSize: this.config.reviveBatchSize,
      withBusy: (entries, fn) => this.withBusy(entries, fn),
    });
    this.orderInfo = new ConsumerOrderInfoManager(o.store.config.storePathRootDir, {
      syncFlush: o.store.config.flushDiskType === FlushDiskType.SYNC_FLUSH,
      persistOffsets: () => this.offsets.persist(),
    });
    this.fifo = new FifoPop({
      store: this.store,
      topics: this.topics,
      offsets: this.offsets,
      orderInfo: this.orderInfo,
      codec,
      polling: this.polling,
      brokerName: this.brokerName,
      popMaxTransferBytes: this.config.popMaxTransferBytes,
      clock: this.clock,
      logger: this.logger,
    });
  }

  /** Loads the handle key, rebuilds the in-flight table from the revive topic, starts long polling and revive. */
  static async create(o: PopServiceOptions): Promise<PopService> {
    const key = await loadReceiptHandleKey(join(o.store.config.storePathRootDir, "config"));
    const reviveTopic = reviveTopicOf(o.clusterName);
    let tc = o.topics.get(reviveTopic);
    if (tc === undefined) {
      const n = o.reviveQueueNum ?? DEFAULT_REVIVE_QUEUE_NUM;
      tc = await o.topics.createIfAbsent({
        topicName: reviveTopic,
        readQueueNums: n,
        writeQueueNums: n,
        perm: PermName.PERM_READ | PermName.PERM_WRITE,
      });
    }
    const svc = new PopService(o, new ReceiptHandleCodec(key), Math.max(tc.readQueueNums, tc.writeQueueNums));
    svc.rebuildReport = await rebuildInflightFromReviveLog({
      store: svc.store,
      offsets: svc.offsets,
      table: svc.table,
      recentlyAcked: svc.recentlyAcked,
      reviveTopic,
      reviveQueueNums: svc.reviveLog.queueNums,
      logger: svc.logger,
    });
    svc.logger.info({ reviveTopic, ...svc.rebuildReport }, "pop in-flight state rebuilt from the revive log");
    await svc.orderInfo.load();
    svc.store.addDispatcher(svc.polling);
    svc.reviver.start();
    svc.fifo.start();
    return svc;
  }

  get inflightMessages(): number {
    return this.table.size;
  }

  get heldPolls(): number {
    return this.polling.heldPolls;
  }

  /** Messages of `group` popped from `topic`/`queueId` (a subscribed or a retry topic) and not acked yet. */
  inflightCount(group: string, topic: string, queueId: number): number {
    return this.table.inflightCount(group, topic, queueId) + this.fifo.inflightCount(group, topic, queueId);
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.operations.add(p);
    const done = () => this.operations.delete(p);
    p.then(done, done);
    return p;
  }

  private checkOpen(): void {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "the broker message service is shut down");
  }

  // ------------------------------------------------------------------ pop

  pop(group: string, topic: string, o: PopOptions): Promise<PoppedMessage[]> {
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.track(this.doPop(group, topic, o));
  }

  private async resolveGroup(group: string): Promise<SubscriptionGroupConfig> {
    const existing = this.groups.get(group);
    if (existing !== undefined) return existing;
    if (!this.autoCreateSubscriptionGroup) {
      throw new RmqError(
        ErrorCode.ConsumerGroupNotFound,
        `consumer group ${JSON.stringify(group)} does not exist (autoCreateSubscriptionGroup=false)`,
      );
    }
    // The manager's own auto-create switch may be off while ours is on: create explicitly then (validates the name).
    return (
      (await this.groups.findOrAutoCreate(group)) ?? (await this.groups.createOrUpdate({ groupName: group }))
    );
  }

  private resolveTopic(topic: string): TopicConfig {
    const tc = this.topics.get(topic);
    if (tc === undefined)
      throw new RmqError(
        ErrorCode.TopicNotFound,
        `topic ${JSON.stringify(topic)} does not exist on broker ${this.brokerName}`,
      );
    return tc;
  }

  private makeFilter(spec: FilterSpec | undefined): {
    filter: MessageFilter;
    storeFilter: StoreMessageFilter | undefined;
  } {
    const s = spec ?? MATCH_ALL;
    if (s.type === FilterType.SQL92 && !this.config.enablePropertyFilter) {
      throw new RmqError(
        ErrorCode.IllegalFilterExpression,
        "SQL92 filtering is disabled on this broker (set enablePropertyFilter=true)",
      );
    }
    const filter = createMessageFilter(s);
    const expr = s.expression.trim();
    // Subscribe-all needs no filter (and the store reads faster without one).
    if (s.type === FilterType.TAG && (expr === "*" || expr === "")) return { filter, storeFilter: undefined };
    return {
      filter,
      storeFilter: {
        isMatchedByConsumeQueue: (tagsCode) => filter.matchesConsumeQueueUnit(tagsCode),
        isMatchedByCommitLog: (props) => filter.matchesMessage(props.get(PopProperty.TAGS), props),
      },
    };
  }

  private async doPop(groupName: string, topic: string, o: PopOptions): Promise<PoppedMessage[]> {
    checkInt("maxMessages", o.maxMessages, 1, MAX_POP_BATCH_SIZE);
    checkInt("invisibleTimeMs", o.invisibleTimeMs, 0, MAX_INVISIBLE_TIME_MS);
    const pollTimeoutMs = o.pollTimeoutMs ?? 0;
    if (!(pollTimeoutMs >= 0 && pollTimeoutMs <= MAX_POLL_TIMEOUT_MS)) {
      throw illegal(`pollTimeoutMs=${pollTimeoutMs} must be from 0 to ${MAX_POLL_TIMEOUT_MS}`);
    }
    const group = await this.resolveGroup(groupName);
    if (!group.consumeEnable)
      throw new RmqError(
        ErrorCode.Forbidden,
        `consumer group ${JSON.stringify(groupName)} may not consume (consumeEnable=false)`,
      );
    const tc = this.resolveTopic(topic);
    if (!isReadable(tc.perm))
      throw new RmqError(
        ErrorCode.Forbidden,
        `topic ${JSON.stringify(topic)} is not readable on broker ${this.brokerName}`,
      );
    const queueId = o.queueId ?? -1;
    if (queueId !== -1) checkInt("queueId", queueId, 0, tc.readQueueNums - 1);
    const { filter, storeFilter } = this.makeFilter(o.filter);
    const retryTopic = popRetryTopicOf(groupName, topic);
    const lites = o.liteTopics;
    if (lites !== undefined) {
      if (topicMessageType(tc) !== TopicMessageType.LITE)
        throw illegal(
          `topic ${JSON.stringify(topic)} is not a LITE topic; it has no lite topics to pop from`,
        );
      if (lites.length > MAX_LITE_TOPICS_PER_POP)
        throw illegal(`${lites.length} lite topics in one pop; at most ${MAX_LITE_TOPICS_PER_POP}`);
      for (const lite of lites) validateLiteTopic(lite);
    }
    const watched = lites === undefined ? [topic, retryTopic] : lites.map((lite) => lmqName(topic, lite));
    const started = performance.now();
    for (;;) {
      const snapshot = this.polling.snapshot(watched);
      const ctx: PopContext = {
        group,
        topic,
        filter,
        storeFilter,
        maxMessages: o.maxMessages,
        invisibleTimeMs: o.invisibleTimeMs,
        initMode: o.initMode ?? ConsumeInitMode.MAX,
        out: [],
        popTime: this.clock(),
      };
      if (lites !== undefined) await this.popLite(ctx, tc, lites, o.attemptId);
      else if (o.fifo === true) await this.popFifo(ctx, tc, queueId, o.attemptId);
      else await this.popOnce(ctx, tc, queueId, retryTopic);
      const left = pollTimeoutMs - (performance.now() - started);
      if (ctx.out.length > 0 || left <= 0 || this.closed || o.signal?.aborted === true) return ctx.out;
      if (this.polling.changedSince(snapshot)) {
        // Something changed while this pop read: read again, but after a turn of the event loop, so a
        // run of stale snapshots (reads that finish without IO) cannot keep acks and sends waiting.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      await this.polling.wait({
        snapshot,
        key: `${topic}@${groupName}`,
        mayMatch: (tagsCode) => filter.matchesConsumeQueueUnit(tagsCode),
        timeoutMs: left,
        signal: o.signal,
      });
    }
  }

  private async popOnce(
    ctx: PopContext,
    tc: TopicConfig,
    queueId: number,
    retryTopic: string,
  ): Promise<void> {
    if (this.table.size >= this.config.maxInflightMessages) {
      throw new RmqError(
        ErrorCode.TooManyRequests,
        `${this.table.size} messages are in flight on broker ${this.brokerName} (limit maxInflightMessages=${this.config.maxInflightMessages}); ack some first`,
      );
    }
    const retryTc = this.topics.get(retryTopic);
    // A PRIORITY topic serves its retries last (upstream popFromRetryProbabilityForPriority, 0).
    const retryFirst =
      topicMessageType(tc) !== TopicMessageType.PRIORITY &&
      this.random() * 100 < this.config.popFromRetryProbability;
    if (retryFirst && retryTc !== undefined) await this.popTopic(ctx, retryTc, -1);
    if (ctx.out.length < ctx.maxMessages) await this.popTopic(ctx, tc, queueId);
    if (!retryFirst && retryTc !== undefined && ctx.out.length < ctx.maxMessages)
      await this.popTopic(ctx, retryTc, -1);
  }

  /**
   * Pops from lite topics of a LITE topic, each in FIFO order, starting after the lite topic the
   * group's last lite pop started with; lite topics with nothing new past the committed offset are
   * skipped without a read.
   */
  private async popLite(
    ctx: PopContext,
    parent: TopicConfig,
    lites: readonly string[],
    attemptId: string | undefined,
  ): Promise<void> {
    const n = lites.length;
    if (n === 0) return;
    const cursorKey = `${parent.topicName}@${ctx.group.groupName}`;
    const start = (this.liteCursor.get(cursorKey) ?? 0) % n;
    this.liteCursor.set(cursorKey, start + 1);
    const group = ctx.group.groupName;
    for (let i = 0; i < n && ctx.out.length < ctx.maxMessages; i++) {
      const lmq = lmqName(parent.topicName, lites[(start + i) % n] as string);
      const end = this.store.getMaxOffsetInQueue(lmq, 0);
      if (end <= 0) continue;
      const committed = this.offsets.query(group, lmq, 0);
      if (committed >= end && !this.fifo.hasDelivered(group, lmq, 0)) continue;
      const lmqConfig: TopicConfig = { ...parent, topicName: lmq, readQueueNums: 1, writeQueueNums: 1 };
      await this.popFifo(ctx, lmqConfig, 0, attemptId, parent.topicName);
    }
    if (this.liteCursor.size > MAX_LITE_CURSORS) this.liteCursor.clear();
  }

  /** FIFO pop over one queue or all queues of the topic (from a random one), under the queue locks. */
  private async popFifo(
    ctx: PopContext,
    tc: TopicConfig,
    queueId: number,
    attemptId: string | undefined,
    shownTopic: string = tc.topicName,
  ): Promise<void> {
    const n = tc.readQueueNums;
    const start = Math.floor(this.random() * n);
    const queues = queueId >= 0 ? [queueId] : Array.from({ length: n }, (_, i) => (i + start) % n);
    for (const q of queues) {
      if (ctx.out.length >= ctx.maxMessages) return;
      const lockKey = `${tc.topicName}@${ctx.group.groupName}@${q}`;
      if (this.queueLocks.has(lockKey)) {
        this.contended.add(lockKey);
        continue;
      }
      this.queueLocks.add(lockKey);
      let found = false;
      try {
        const popped = await this.fifo.popQueue({
          group: ctx.group,
          topic: tc.topicName,
          queueId: q,
          filter: ctx.filter,
          maxMessages: ctx.maxMessages - ctx.out.length,
          invisibleTimeMs: ctx.invisibleTimeMs,
          popTime: ctx.popTime,
          attemptId,
          initOffset: () => this.initOffset(tc.topicName, q, ctx.initMode),
        });
        found = popped.length > 0;
        for (const p of popped) {
          ctx.out.push({
            message: p.message,
            topic: shownTopic,
            messageId: p.message.properties.get(PopProperty.UNIQ_KEY) ?? p.message.msgId,
            receiptHandle: p.receiptHandle,
            deliveryAttempt: p.deliveryAttempt,
            popTime: ctx.popTime,
            invisibleTimeMs: ctx.invisibleTimeMs,
          });
        }
      } finally {
        this.queueLocks.delete(lockKey);
        // A pop turned away meanwhile is woken only when this one found messages (more may be left);
        // when it found none, neither would the other (waking it would only make the two take turns).
        if (this.contended.delete(lockKey) && found) this.polling.touch(tc.topicName);
      }
    }
  }

  /** The decoded handle when `handle` was issued by a FIFO pop (never throws: anything else takes the normal path). */
  private fifoHandle(handle: string): ReceiptHandle | undefined {
    if (this.table.byReceiptHandle(handle) !== undefined) return undefined;
    try {
      const h = this.codec.decode(handle);
      return FifoPop.isFifoHandle(h) ? h : undefined;
    } catch {
      return undefined;
    }
  }

  private async popTopic(ctx: PopContext, tc: TopicConfig, queueId: number): Promise<void> {
    if (queueId >= 0) {
      await this.popQueue(ctx, tc.topicName, queueId);
      return;
    }
    const n = tc.readQueueNums;
    if (topicMessageType(tc) === TopicMessageType.PRIORITY) {
      // Priority messages sit in queue min(priority, n - 1): the highest queue is served first (upstream).
      for (let q = n - 1; q >= 0 && ctx.out.length < ctx.maxMessages; q--)
        await this.popQueue(ctx, tc.topicName, q);
      return;
    }
    const start = Math.floor(this.random() * n);
    for (let i = 0; i < n && ctx.out.length < ctx.maxMessages; i++)
      await this.popQueue(ctx, tc.topicName, (start + i) % n);
  }

  private initOffset(topic: string, queueId: number, mode: ConsumeInitMode): number {
    const min = this.store.getMinOffsetInQueue(topic, queueId);
    // Retry topics always start from their first message, as upstream.
    if (mode === ConsumeInitMode.MIN || isRetryTopic(topic) || min <= 0) return Math.max(min, 0);
    return Math.max(this.store.getMaxOffsetInQueue(topic, queueId) - 1, 0);
  }

  /** Reads one queue from the group's offset, stores the CK (and any DLQ copies), commits the offset. */
  private async popQueue(ctx: PopContext, topic: string, queueId: number): Promise<void> {
    const group = ctx.group.groupName;
    const lockKey = `${topic}@${group}@${queueId}`;
    if (this.queueLocks.has(lockKey)) {
      this.contended.add(lockKey);
      return;
    }
    this.queueLocks.add(lockKey);
    const before = ctx.out.length;
    try {
      let offset = this.offsets.query(group, topic, queueId);
      if (offset < 0) {
        offset = this.initOffset(topic, queueId, ctx.initMode);
        this.offsets.commit(group, topic, queueId, offset);
      }
      const want = ctx.maxMessages - ctx.out.length;
      const res = await this.store.getMessage(
        topic,
        queueId,
        offset,
        want,
        this.config.popMaxTransferBytes,
        ctx.storeFilter,
      );
      const next = res.nextBeginOffset;
      if (res.status === GetMessageStatus.OFFSET_OVERFLOW_BADLY) {
        this.logger.warn(
          { group, topic, queueId, offset, maxOffset: res.maxOffset },
          "consumer offset beyond the queue end; moved back to it",
        );
        this.offsets.reset(group, topic, queueId, next);
        return;
      }
      if (res.messages.length === 0) {
        if (next > offset) this.offsets.commit(group, topic, queueId, next);
        return;
      }
      await this.storePop(ctx, topic, queueId, res.messages, next);
    } finally {
      this.queueLocks.delete(lockKey);
      // As in popFifo: wake a pop turned away meanwhile only when this one found messages.
      if (this.contended.delete(lockKey) && ctx.out.length > before) this.polling.touch(topic);
    }
  }

  private async storePop(
    ctx: PopContext,
    topic: string,
    queueId: number,
    messages: StoredMessage[],
    next: number,
  ): Promise<void> {
    const group = ctx.group.groupName;
    const attempts = maxDeliveryAttempts(ctx.group.retryMaxTimes);
    const deliver: StoredMessage[] = [];
    const batch: MessageInput[] = [];
    for (const m of messages) {
      // A retried message whose attempts ran out meanwhile (retryMaxTimes lowered) goes to the DLQ instead.
      if (m.reconsumeTimes + 1 > attempts) {
        const dlq = deadLetterTopicOf(group);
        await ensurePopTopic(this.topics, dlq, DLQ_QUEUE_NUMS);
        batch.push(deadLetterMessage(m, dlq, 0, ctx.topic));
      } else {
        deliver.push(m);
      }
    }
    const reviveQid = this.reviveLog.nextQueueId();
    const popTime = ctx.popTime;
    if (deliver.length > 0) {
      batch.push(
        this.reviveLog.ck(reviveQid, {
          group,
          topic,
          originTopic: ctx.topic,
          queueId,
          popTime,
          invisibleTime: ctx.invisibleTimeMs,
          queueOffsets: deliver.map((m) => m.queueOffset),
          commitLogOffsets: deliver.map((m) => m.commitLogOffset),
          brokerName: this.brokerName,
          nextOffset: next,
        }),
      );
      this.table.beginCkWrite(reviveQid);
    }
    try {
      const results = await this.store.putMessages(batch);
      if (results.some((r) => r.status !== PutMessageStatus.PUT_OK)) {
        this.logger.warn(
          { group, topic, queueId, statuses: results.map((r) => r.status) },
          "pop check point written but not flushed in time",
        );
      }
      if (deliver.length > 0) {
        const ckResult = results[results.length - 1];
        if (ckResult === undefined)
          throw new RmqError(ErrorCode.Internal, "store returned no result for the pop check point");
        const ck: CheckPointState = {
          reviveQid,
          ckOffset: ckResult.queueOffset,
          group,
          topic,
          originTopic: ctx.topic,
          queueId,
          popTime,
          invisibleTime: ctx.invisibleTimeMs,
          remaining: 0,
        };
        const entries = this.table.add(
          ck,
          deliver.map((m, index) => ({
            index,
            queueOffset: m.queueOffset,
            commitLogOffset: m.commitLogOffset,
          })),
        );
        for (let i = 0; i < entries.length; i++)
          ctx.out.push(this.popped(deliver[i] as StoredMessage, entries[i] as InflightMessage, ctx.topic));
      }
      this.offsets.commit(group, topic, queueId, next);
    } finally {
      if (deliver.length > 0) this.table.endCkWrite(reviveQid);
    }
  }

  /** Encodes the receipt handle of an entry and registers it in the table (so acks find it undecoded). */
  private handleOf(e: InflightMessage): string {
    const handle = this.codec.encode({
      ckOffset: e.ck.ckOffset,
      popTime: e.ck.popTime,
      invisibleTime: e.ck.invisibleTime,
      reviveQid: e.ck.reviveQid,
      index: e.index,
      brokerName: this.brokerName,
      topic: e.ck.topic,
      queueId: e.ck.queueId,
      queueOffset: e.queueOffset,
      commitLogOffset: e.commitLogOffset,
    });
    this.table.setReceiptHandle(e, handle);
    return handle;
  }

  private popped(m: StoredMessage, e: InflightMessage, originTopic: string): PoppedMessage {
    return {
      message: m,
      topic: originTopic,
      messageId: m.properties.get(PopProperty.UNIQ_KEY) ?? m.msgId,
      receiptHandle: this.handleOf(e),
      deliveryAttempt: m.reconsumeTimes + 1,
      popTime: e.ck.popTime,
      invisibleTimeMs: e.ck.invisibleTime,
    };
  }

  // ------------------------------------------------------------------ handles

  /** Decodes and checks a handle against the in-flight table (no waiting). Throws INVALID_RECEIPT_HANDLE. */
  private resolve(
    group: string,
    topic: string,
    handle: string,
    issued: InflightMessage | undefined = this.table.byReceiptHandle(handle),
  ): Resolved {
    const invalid = (why: string) =>
      new RmqError(ErrorCode.InvalidReceiptHandle, `receipt handle is invalid: ${why}`);
    // The very string this broker issued for a live entry (`issued`): it is authentic and its fields
    // are the entry's, so decoding and checking its MAC again would only cost time (the same checks follow).
    if (issued !== undefined) {
      if (this.clock() >= issued.ck.popTime + issued.ck.invisibleTime)
        throw invalid("it expired (the invisible time is over)");
      if (issued.ck.group !== group) throw invalid(`it was issued to consumer group ${issued.ck.group}`);
      if (topic !== issued.ck.originTopic && topic !== issued.ck.topic)
        throw invalid(`it was issued for topic ${issued.ck.originTopic}`);
      return { kind: "entry", entry: issued };
    }
    const h = this.codec.decode(handle);
    if (h.brokerName !== this.brokerName)
      throw invalid(`it belongs to broker ${h.brokerName}, this is ${this.brokerName}`);
    if (this.clock() >= h.popTime + h.invisibleTime) throw invalid("it expired (the invisible time is over)");
    const key = inflightKey(h.reviveQid, h.ckOffset, h.index);
    const e = this.table.get(key);
    if (e === undefined) {
      if (this.recentlyAcked.has(h.reviveQid, h.ckOffset, h.index)) return { kind: "acked" };
      throw invalid(
        "the message is no longer in flight under this handle (acked, changed, revived or moved to the DLQ)",
      );
    }
    if (e.ck.group !== group) throw invalid(`it was issued to consumer group ${e.ck.group}`);
    if (topic !== e.ck.originTopic && topic !== e.ck.topic)
      throw invalid(`it was issued for topic ${e.ck.originTopic}`);
    if (
      e.queueOffset !== h.queueOffset ||
      e.ck.popTime !== h.popTime ||
      e.ck.invisibleTime !== h.invisibleTime
    ) {
      throw invalid("it does not match the message in flight");
    }
    return { kind: "entry", entry: e };
  }

  /**
   * Runs `fn` on the in-flight message a handle names, marked busy; waits first for any write under
   * way on it and checks the handle again after. The check and the marking happen in one tick.
   */
  private async withIdleEntry<T>(
    group: string,
    topic: string,
    handle: string,
    fn: (e: InflightMessage) => Promise<T>,
  ): Promise<T> {
    for (;;) {
      const r = this.resolve(group, topic, handle);
      if (r.kind === "acked")
        throw new RmqError(
          ErrorCode.InvalidReceiptHandle,
          "receipt handle is invalid: the message was acked",
        );
      const e = r.entry;
      if (e.busy !== undefined) {
        await e.busy.catch(() => {});
        continue;
      }
      return this.withBusy([e], () => fn(e));
    }
  }

  private async withBusy<T>(entries: InflightMessage[], fn: () => Promise<T>): Promise<T> {
    let done = () => {};
    const busy = new Promise<void>((resolve) => {
      done = resolve;
    });
    for (const e of entries) e.busy = busy;
    try {
      return await fn();
    } finally {
      for (const e of entries) if (!e.removed) this.table.release(e);
      done();
    }
  }

  // ------------------------------------------------------------------ ack

  /** Acks popped messages; one result per handle, in order. A handle acked before answers OK. */
  ack(group: string, topic: string, handles: readonly string[]): Promise<HandleResult[]> {
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.track(this.doAck(group, topic, handles));
  }

  private async doAck(group: string, topic: string, handles: readonly string[]): Promise<HandleResult[]> {
    const results: Array<HandleResult | undefined> = new Array(handles.length).fill(undefined);
    let targets: Array<{ i: number; e: InflightMessage }>;
    const fifoAcked: number[] = [];
    // Resolve every handle in one synchronous pass; if some message has a write under way, wait for
    // those and resolve again, so that the targets are marked busy in the same tick they were checked.
    for (;;) {
      targets = [];
      const waits: Array<Promise<unknown>> = [];
      for (let i = 0; i < handles.length; i++) {
        if (results[i] !== undefined) continue;
        try {
          const handle = handles[i] as string;
          // One table lookup for the usual case, a handle this broker issued and still tracks.
          const issued = this.table.byReceiptHandle(handle);
          const fh = issued === undefined ? this.fifoHandle(handle) : undefined;
          if (fh !== undefined) {
            this.fifo.ack(group, topic, fh);
            results[i] = { ok: true };
            fifoAcked.push(i);
            continue;
          }
          const r = this.resolve(group, topic, handle, issued);
          if (r.kind === "acked") results[i] = { ok: true };
          else if (r.entry.busy !== undefined) waits.push(r.entry.busy.catch(() => {}));
          else targets.push({ i, e: r.entry });
        } catch (err) {
          results[i] = failure(err);
        }
      }
      if (waits.length === 0) break;
      await Promise.all(waits);
    }
    if (fifoAcked.length > 0) {
      // Answered once the journal holds them: a crash must not deliver an acked FIFO message again.
      try {
        await this.fifo.flushJournal();
      } catch (err) {
        for (const i of fifoAcked) results[i] = failure(err);
      }
    }
    if (targets.length === 0) return results as HandleResult[];
    // The same handle twice in one call: one ack record, OK for both.
    const entries = [...new Set(targets.map((t) => t.e))];
    try {
      await this.withBusy(entries, async () => {
        const byCk = new Map<CheckPointState, number[]>();
        for (const e of entries) {
          const list = byCk.get(e.ck);
          if (list === undefined) byCk.set(e.ck, [e.index]);
          else list.push(e.index);
        }
        const batch: MessageInput[] = [];
        for (const [ck, indexes] of byCk)
          batch.push(
            this.reviveLog.ack(ck.reviveQid, { ckOffset: ck.ckOffset, indexes, reason: AckReason.ACK }),
          );
        await this.store.putMessages(batch);
        for (const e of entries) this.table.remove(e);
        for (const [ck, indexes] of byCk) this.recentlyAcked.add(ck.reviveQid, ck.ckOffset, indexes);
      });
      for (const t of targets) results[t.i] = { ok: true };
    } catch (err) {
      for (const t of targets) results[t.i] = failure(err);
    }
    return results as HandleResult[];
  }

  // ------------------------------------------------------------------ changeInvisibleTime

  /**
   * Makes a popped message invisible for `invisibleTimeMs` from now (0 = visible again at once, as a
   * nack). Writes a new one-message CK and closes the old entry in one batch; returns the new handle.
   */
  changeInvisibleTime(
    group: string,
    topic: string,
    handle: string,
    invisibleTimeMs: number,
    suspend = false,
  ): Promise<ChangeInvisibleTimeResult> {
    try {
      this.checkOpen();
      checkInt("invisibleTimeMs", invisibleTimeMs, 0, MAX_INVISIBLE_TIME_MS);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.track(this.doChangeInvisibleTime(group, topic, handle, invisibleTimeMs, suspend));
  }

  private async doChangeInvisibleTime(
    group: string,
    topic: string,
    handle: string,
    invisibleTimeMs: number,
    suspend: boolean,
  ): Promise<ChangeInvisibleTimeResult> {
    const fh = this.fifoHandle(handle);
    if (fh !== undefined) {
      const receiptHandle = this.fifo.changeInvisibleTime(group, topic, fh, invisibleTimeMs, suspend);
      return { receiptHandle, popTime: this.clock(), invisibleTimeMs };
    }
    return this.withIdleEntry(group, topic, handle, async (e) => {
      const popTime = this.clock();
      const qid = this.reviveLog.nextQueueId();
      const batch = [
        this.reviveLog.ck(qid, {
          group,
          topic: e.ck.topic,
          originTopic: e.ck.originTopic,
          queueId: e.ck.queueId,
          popTime,
          invisibleTime: invisibleTimeMs,
          queueOffsets: [e.queueOffset],
          commitLogOffsets: [e.commitLogOffset],
          brokerName: this.brokerName,
          nextOffset: undefined,
        }),
        this.reviveLog.ack(e.ck.reviveQid, {
          ckOffset: e.ck.ckOffset,
          indexes: [e.index],
          reason: AckReason.CHANGE,
        }),
      ];
      this.table.beginCkWrite(qid);
      try {
        const results = await this.store.putMessages(batch);
        const ckOffset = (results[0] as { queueOffset: number }).queueOffset;
        this.table.remove(e);
        const ck: CheckPointState = {
          reviveQid: qid,
          ckOffset,
          group,
          topic: e.ck.topic,
          originTopic: e.ck.originTopic,
          queueId: e.ck.queueId,
          popTime,
          invisibleTime: invisibleTimeMs,
          remaining: 0,
        };
        const [moved] = this.table.add(ck, [
          { index: 0, queueOffset: e.queueOffset, commitLogOffset: e.commitLogOffset },
        ]);
        return { receiptHandle: this.handleOf(moved as InflightMessage), popTime, invisibleTimeMs };
      } finally {
        this.table.endCkWrite(qid);
      }
    });
  }

  // ------------------------------------------------------------------ DLQ

  /** Copies a popped message to `%DLQ%{group}` (origin topic and message id kept) and closes it, in one batch. */
  forwardToDeadLetterQueue(group: string, topic: string, handle: string): Promise<void> {
    try {
      this.checkOpen();
    } catch (e) {
      return Promise.reject(e);
    }
    return this.track(this.doForwardToDeadLetterQueue(group, topic, handle));
  }

  private async doForwardToDeadLetterQueue(group: string, topic: string, handle: string): Promise<void> {
    const fh = this.fifoHandle(handle);
    if (fh !== undefined) {
      await this.fifo.forwardToDeadLetterQueue(group, topic, fh);
      return;
    }
    await this.withIdleEntry(group, topic, handle, async (e) => {
      const m = await this.store.lookMessageByOffset(e.commitLogOffset);
      if (m === undefined || m.topic !== e.ck.topic || m.queueOffset !== e.queueOffset) {
        throw new RmqError(
          ErrorCode.MessageNotFound,
          `message at CommitLog offset ${e.commitLogOffset} can no longer be read`,
        );
      }
      const dlq = deadLetterTopicOf(group);
      await ensurePopTopic(this.topics, dlq, DLQ_QUEUE_NUMS);
      await this.store.putMessages([
        deadLetterMessage(m, dlq, 0, e.ck.originTopic),
        this.reviveLog.ack(e.ck.reviveQid, {
          ckOffset: e.ck.ckOffset,
          indexes: [e.index],
          reason: AckReason.DLQ,
        }),
      ]);
      this.table.remove(e);
    });
  }

  // ------------------------------------------------------------------ offsets

  /**
   * Sets the group's consumer offset of a queue (an operator's reset, or a lite subscription's
   * offset option), clamped to the queue's bounds; forgets its FIFO state. Resolves with the offset set.
   */
  resetOffset(group: string, topic: string, queueId: number, offset: number): number {
    this.checkOpen();
    const min = Math.max(0, this.store.getMinOffsetInQueue(topic, queueId));
    const max = Math.max(min, this.store.getMaxOffsetInQueue(topic, queueId));
    const clamped = Math.min(max, Math.max(min, Math.floor(offset)));
    this.offsets.reset(group, topic, queueId, clamped);
    this.fifo.resetQueue(group, topic, queueId);
    return clamped;
  }

  // ------------------------------------------------------------------ revive and lifecycle

  /** One revive pass now (the timer runs them every reviveIntervalMs); resolves with the messages revived or dead-lettered. */
  reviveDue(): Promise<number> {
    return this.reviver.reviveDue();
  }

  /** Ends held polls, waits for operations under way, commits revive progress and persists consumer offsets. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.polling.shutdown();
    await this.reviver.stop();
    await Promise.allSettled([...this.operations]);
    this.reviver.commitReviveOffsets();
    await this.fifo.shutdown();
    await this.offsets.persist();
  }
}

function failure(e: unknown): HandleResult {
  if (isRmqError(e)) return { ok: false, code: e.code, message: e.message };
  return { ok: false, code: ErrorCode.Internal, message: e instanceof Error ? e.message : String(e) };
}
