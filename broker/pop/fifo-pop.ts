// FIFO pop (upstream pop with order=true; our lock unit). For a consumer group that consumes orderly,
// the messages of one message group (`__SHARDINGKEY`) are delivered strictly in queue order: a
// message is handed out only when no earlier message of its group is in flight, and a message whose
// invisible time ran out comes back in its own place (delivery attempt + 1) before anything after it
// in its group. When its attempts run out it moves to `%DLQ%<group>` and the group moves on.
//
// Upstream blocks a whole queue while any popped message of it is in flight; we block per message
// group, so groups that share a queue progress in parallel. Messages without a message group form
// one group of their own per queue. One pop may return several consecutive messages of a group (the
// SDK consumes a batch in order).
//
// No check point is written: the state lives in ConsumerOrderInfoManager (consumer-order-info.ts, with
// a journal of settled messages that acks wait for),
// receipt handles carry reviveQid FIFO_REVIVE_QID so ack/change/DLQ find their way here, and
// redelivery happens at pop time, not through the revive topic.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { parseLmqName } from "../../common/lite-topic.ts";
import type { Logger } from "../../common/logger.ts";
import type { MessageFilter } from "../filter/message-filter.ts";
import type { ConsumerOffsetManager } from "../metadata/consumer-offset-manager.ts";
import type { SubscriptionGroupConfig } from "../metadata/subscription-group-manager.ts";
import type { TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import { GetMessageStatus, type MessageInput } from "../store/message-store-types.ts";
import {
  type ConsumerOrderInfoManager,
  ORDER_INFO_PERSIST_INTERVAL_MS,
  type OrderQueueState,
} from "./consumer-order-info.ts";
import type { PopLongPolling } from "./pop-long-polling.ts";
import { PopProperty } from "./pop-properties.ts";
import { ensurePopTopic } from "./pop-revive-service.ts";
import { DLQ_QUEUE_NUMS, deadLetterTopicOf } from "./pop-topics.ts";
import type { ReceiptHandle, ReceiptHandleCodec } from "./receipt-handle.ts";
import { deadLetterMessage, maxDeliveryAttempts } from "./retry-message.ts";

/** Revive queue id marking FIFO receipt handles (upstream POP_ORDER_REVIVE_QUEUE, 999). */
export const FIFO_REVIVE_QID = 999;
/** Messages one FIFO pop looks at past the committed offset (ours; bounds the work and the done set). */
export const FIFO_SCAN_WINDOW = 2048;
/** Messages read from the store per step of a FIFO scan (ours). */
const FIFO_READ_CHUNK = 64;
/** The message group property (upstream MessageConst.PROPERTY_SHARDING_KEY). */
const SHARDING_KEY = "__SHARDINGKEY";

export interface FifoPopContext {
  group: SubscriptionGroupConfig;
  topic: string;
  queueId: number;
  filter: MessageFilter;
  maxMessages: number;
  invisibleTimeMs: number;
  popTime: number;
  attemptId: string | undefined;
  /** Where a queue the group never read starts. */
  initOffset: () => number;
}

export interface FifoPopped {
  message: StoredMessage;
  receiptHandle: string;
  deliveryAttempt: number;
}

export interface FifoPopDeps {
  store: MessageStore;
  topics: TopicConfigManager;
  offsets: ConsumerOffsetManager;
  orderInfo: ConsumerOrderInfoManager;
  codec: ReceiptHandleCodec;
  polling: PopLongPolling;
  brokerName: string;
  popMaxTransferBytes: number;
  clock: () => number;
  logger: Logger;
}

function invalid(why: string): RmqError {
  return new RmqError(ErrorCode.InvalidReceiptHandle, `receipt handle is invalid: ${why}`);
}

export class FifoPop {
  private readonly d: FifoPopDeps;
  /** One wake-up timer per topic for the earliest expiry of a FIFO message in flight. */
  private readonly wakeTimers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private persistTimer: NodeJS.Timeout | undefined;

  constructor(d: FifoPopDeps) {
    this.d = d;
  }

  start(): void {
    this.persistTimer = setInterval(() => {
      this.d.orderInfo
        .persist()
        .catch((err) => this.d.logger.error({ err }, "persisting consumerOrderInfo failed"));
    }, ORDER_INFO_PERSIST_INTERVAL_MS);
    this.persistTimer.unref();
  }

  async shutdown(): Promise<void> {
    if (this.persistTimer !== undefined) clearInterval(this.persistTimer);
    for (const w of this.wakeTimers.values()) clearTimeout(w.timer);
    this.wakeTimers.clear();
    await this.d.orderInfo.close();
  }

  /** True when some message of the queue was delivered and is not done (in flight, or due again). */
  hasDelivered(group: string, topic: string, queueId: number): boolean {
    return (this.d.orderInfo.peek(group, topic, queueId)?.delivered.size ?? 0) > 0;
  }

  inflightCount(group: string, topic: string, queueId: number): number {
    return this.d.orderInfo.peek(group, topic, queueId)?.inflightCount(this.d.clock()) ?? 0;
  }

  /** True when `h` was issued by a FIFO pop. */
  static isFifoHandle(h: ReceiptHandle): boolean {
    return h.reviveQid === FIFO_REVIVE_QID;
  }

  private handle(
    topic: string,
    queueId: number,
    m: StoredMessage,
    popTime: number,
    invisibleTime: number,
  ): string {
    return this.d.codec.encode({
      ckOffset: 0,
      popTime,
      invisibleTime,
      reviveQid: FIFO_REVIVE_QID,
      index: 0,
      brokerName: this.d.brokerName,
      topic,
      queueId,
      queueOffset: m.queueOffset,
      commitLogOffset: m.commitLogOffset,
    });
  }

  /** Commits the offset over contiguous done messages. */
  private settle(group: string, topic: string, queueId: number, s: OrderQueueState): void {
    const committed = this.d.offsets.query(group, topic, queueId);
    if (committed < 0) return;
    const next = s.advance(committed);
    if (next > committed) this.d.offsets.commit(group, topic, queueId, next);
  }

  /** Wakes pollers of `topic` when the earliest in-flight FIFO message of a pop becomes visible again. */
  private scheduleWake(topic: string, at: number): void {
    const existing = this.wakeTimers.get(topic);
    if (existing !== undefined && existing.at <= at) return;
    if (existing !== undefined) clearTimeout(existing.timer);
    const timer = setTimeout(
      () => {
        this.wakeTimers.delete(topic);
        this.d.polling.touch(topic);
      },
      Math.max(0, at - this.d.clock()) + 5,
    );
    timer.unref();
    this.wakeTimers.set(topic, { at, timer });
  }

  /**
   * Pops from one queue (the caller holds the queue lock). Returns the messages to deliver in queue
   * order; dead-letters messages whose attempts ran out on the way.
   */
  async popQueue(ctx: FifoPopContext): Promise<FifoPopped[]> {
    const { store, offsets, orderInfo } = this.d;
    const group = ctx.group.groupName;
    const { topic, queueId } = ctx;
    const s = orderInfo.get(group, topic, queueId);
    let committed = offsets.query(group, topic, queueId);
    if (committed < 0) {
      committed = ctx.initOffset();
      offsets.commit(group, topic, queueId, committed);
    }
    const minOffset = store.getMinOffsetInQueue(topic, queueId);
    if (committed < minOffset) {
      // Retention removed what the group had not consumed: move on to the first message there is.
      offsets.reset(group, topic, queueId, minOffset);
      committed = minOffset;
    }
    committed = s.advance(committed);
    offsets.commit(group, topic, queueId, committed);

    const now = ctx.popTime;
    const out: FifoPopped[] = [];
    const attempts = maxDeliveryAttempts(ctx.group.retryMaxTimes);
    const deadLetters: MessageInput[] = [];
    const dlq = deadLetterTopicOf(group);

    // A retried pop (same attempt id) gets the messages the first one returned, if still in flight.
    const retried =
      ctx.attemptId !== undefined && s.lastAttempt?.attemptId === ctx.attemptId
        ? new Set(s.lastAttempt.offsets)
        : undefined;

    const blocked = new Set<string>();
    let offset = committed;
    let scanned = 0;
    scan: while (out.length < ctx.maxMessages && scanned < FIFO_SCAN_WINDOW) {
      const res = await store.getMessage(
        topic,
        queueId,
        offset,
        Math.min(FIFO_READ_CHUNK, FIFO_SCAN_WINDOW - scanned),
        this.d.popMaxTransferBytes,
      );
      if (res.messages.length === 0) {
        if (res.status === GetMessageStatus.OFFSET_OVERFLOW_BADLY && offset === committed) {
          this.d.logger.warn(
            { group, topic, queueId, offset },
            "FIFO consumer offset beyond the queue end; moved back",
          );
          offsets.reset(group, topic, queueId, res.nextBeginOffset);
        }
        break;
      }
      for (const m of res.messages) {
        const o = m.queueOffset;
        scanned++;
        // Acks while this scan awaited the store may have settled it (and moved the offset past it).
        if (s.done.has(o) || o < offsets.query(group, topic, queueId)) continue;
        const key = m.properties.get(SHARDING_KEY) ?? "";
        if (blocked.has(key)) continue;
        const d = s.delivered.get(o);
        const inFlight = d !== undefined && d.popTime + d.invisibleTime > now;
        if (inFlight && !(retried?.has(o) ?? false)) {
          blocked.add(key);
          continue;
        }
        if (d === undefined && !ctx.filter.matchesMessage(m.properties.get(PopProperty.TAGS), m.properties)) {
          // Not for this subscription: consumed by skipping, as upstream.
          orderInfo.markDone(group, topic, queueId, s, o);
          continue;
        }
        // A retried pop and a suspended message (lite consumers) keep their attempt count.
        const attempt =
          inFlight || d?.suspended === true ? (d?.attempts ?? 1) : (d?.attempts ?? m.reconsumeTimes) + 1;
        if (attempt > attempts) {
          await ensurePopTopic(this.d.topics, dlq, DLQ_QUEUE_NUMS);
          deadLetters.push(deadLetterMessage(m, dlq, 0, parseLmqName(topic)?.parent ?? topic));
          orderInfo.markDone(group, topic, queueId, s, o);
          continue;
        }
        s.delivered.set(o, { attempts: attempt, popTime: now, invisibleTime: ctx.invisibleTimeMs });
        out.push({
          message: m,
          receiptHandle: this.handle(topic, queueId, m, now, ctx.invisibleTimeMs),
          deliveryAttempt: attempt,
        });
        if (out.length >= ctx.maxMessages) break scan;
      }
      offset = res.nextBeginOffset;
    }
    if (deadLetters.length > 0) {
      await store.putMessages(deadLetters);
      await orderInfo.flushJournal(); // else a crash would dead-letter them a second time
    } else {
      // Filter skips need no wait: after a crash they are only filtered again.
      orderInfo.flushJournal().catch((err: unknown) => this.journalFailed(err));
    }
    if (ctx.attemptId !== undefined && out.length > 0)
      s.lastAttempt = { attemptId: ctx.attemptId, offsets: out.map((p) => p.message.queueOffset) };
    if (out.length > 0) this.scheduleWake(topic, now + ctx.invisibleTimeMs);
    orderInfo.markDirty();
    this.settle(group, topic, queueId, s);
    return out;
  }

  /**
   * The queue state and delivered entry a FIFO handle names, or "done" when it was settled already.
   * The handle's own topic (MAC-checked) is used: the request names the subscribed topic, which for a
   * lite topic is its parent. Throws INVALID_RECEIPT_HANDLE.
   */
  private find(
    group: string,
    topic: string,
    h: ReceiptHandle,
  ): { s: OrderQueueState; kind: "delivered" | "done" } {
    if (h.brokerName !== this.d.brokerName)
      throw invalid(`it belongs to broker ${h.brokerName}, this is ${this.d.brokerName}`);
    if (h.topic !== topic && parseLmqName(h.topic)?.parent !== topic)
      throw invalid(`it was issued for topic ${parseLmqName(h.topic)?.parent ?? h.topic}`);
    if (this.d.clock() >= h.popTime + h.invisibleTime)
      throw invalid("it expired (the invisible time is over)");
    const s = this.d.orderInfo.peek(group, h.topic, h.queueId);
    const committed = this.d.offsets.query(group, h.topic, h.queueId);
    if (s === undefined) {
      if (committed > h.queueOffset)
        return { s: this.d.orderInfo.get(group, h.topic, h.queueId), kind: "done" };
      throw invalid(`it was not issued to consumer group ${group}`);
    }
    if (s.done.has(h.queueOffset) || (committed >= 0 && h.queueOffset < committed))
      return { s, kind: "done" };
    const d = s.delivered.get(h.queueOffset);
    if (d === undefined || d.popTime !== h.popTime || d.invisibleTime !== h.invisibleTime)
      throw invalid("the message is no longer in flight under this handle (changed or redelivered)");
    return { s, kind: "delivered" };
  }

  /** Settles the message. The caller answers the ack only after flushJournal() resolved. */
  ack(group: string, topic: string, h: ReceiptHandle): void {
    const r = this.find(group, topic, h);
    if (r.kind === "done") return;
    r.s.delivered.delete(h.queueOffset);
    this.d.orderInfo.markDone(group, h.topic, h.queueId, r.s, h.queueOffset);
    this.settle(group, h.topic, h.queueId, r.s);
    // The next message of the group may go out now.
    this.d.polling.touch(h.topic);
  }

  /**
   * New invisible time for a delivered message; returns its new handle. With `suspend` (a lite
   * consumer pausing a lite topic) its next delivery does not count as another attempt.
   */
  changeInvisibleTime(
    group: string,
    topic: string,
    h: ReceiptHandle,
    invisibleTimeMs: number,
    suspend = false,
  ): string {
    const r = this.find(group, topic, h);
    if (r.kind === "done") throw invalid("the message was acked");
    const d = r.s.delivered.get(h.queueOffset);
    if (d === undefined) throw invalid("the message is no longer in flight");
    const popTime = this.d.clock();
    d.popTime = popTime;
    d.invisibleTime = invisibleTimeMs;
    if (suspend) d.suspended = true;
    this.d.orderInfo.markDirty();
    if (invisibleTimeMs === 0) this.d.polling.touch(h.topic);
    else this.scheduleWake(h.topic, popTime + invisibleTimeMs);
    return this.d.codec.encode({ ...h, popTime, invisibleTime: invisibleTimeMs });
  }

  async forwardToDeadLetterQueue(group: string, topic: string, h: ReceiptHandle): Promise<void> {
    const r = this.find(group, topic, h);
    if (r.kind === "done") throw invalid("the message was acked");
    const m = await this.d.store.lookMessageByOffset(h.commitLogOffset);
    if (m === undefined || m.topic !== h.topic || m.queueOffset !== h.queueOffset)
      throw new RmqError(
        ErrorCode.MessageNotFound,
        `message at CommitLog offset ${h.commitLogOffset} can no longer be read`,
      );
    const dlq = deadLetterTopicOf(group);
    await ensurePopTopic(this.d.topics, dlq, DLQ_QUEUE_NUMS);
    await this.d.store.putMessages([deadLetterMessage(m, dlq, 0, parseLmqName(h.topic)?.parent ?? topic)]);
    // Settle unless an ack got there first while the copy was written.
    if (r.s.delivered.delete(h.queueOffset)) {
      this.d.orderInfo.markDone(group, h.topic, h.queueId, r.s, h.queueOffset);
      this.settle(group, h.topic, h.queueId, r.s);
      this.d.polling.touch(h.topic);
    }
    await this.d.orderInfo.flushJournal();
  }

  /** Writes the journal lines of what was settled; acks await it before they are answered. */
  flushJournal(): Promise<void> {
    return this.d.orderInfo.flushJournal();
  }

  private journalFailed(err: unknown): void {
    this.d.logger.error({ err }, "writing the FIFO consumption journal failed");
  }

  /** Forgets the ordering state of a queue whose consumer offset an operator or a lite subscription reset. */
  resetQueue(group: string, topic: string, queueId: number): void {
    if (this.d.orderInfo.resetQueue(group, topic, queueId) === undefined) return;
    this.d.orderInfo.flushJournal().catch((err: unknown) => this.journalFailed(err));
    this.d.polling.touch(topic);
  }
}
