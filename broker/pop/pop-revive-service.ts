// Revive (upstream PopReviveService, our design): one timer for all in-flight messages. Each pass takes
// the messages whose invisible time ran out from the deadline heap, re-reads them by CommitLog offset
// and writes, in one store batch, a copy to the group's pop retry topic with reconsumeTimes + 1 (or to
// `%DLQ%{group}` once the group's retryMaxTimes is used up) plus the ACK records that close them in
// their CKs, so a restart neither loses nor duplicates the revive. Then it commits how far each revive
// queue is resolved.

import type { Logger } from "../../common/logger.ts";
import type { ConsumerOffsetManager } from "../metadata/consumer-offset-manager.ts";
import type { SubscriptionGroupManager } from "../metadata/subscription-group-manager.ts";
import { PermName, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import type { CheckPointState, InflightMessage, InflightTable } from "./inflight-table.ts";
import {
  DLQ_QUEUE_NUMS,
  deadLetterTopicOf,
  POP_RETRY_QUEUE_NUMS,
  popRetryTopicOf,
  REVIVE_GROUP,
} from "./pop-topics.ts";
import { deadLetterMessage, maxDeliveryAttempts, retryMessage } from "./retry-message.ts";
import type { ReviveLog } from "./revive-log.ts";
import { AckReason } from "./revive-log-record.ts";

export interface PopReviveServiceDeps {
  store: MessageStore;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  table: InflightTable;
  reviveLog: ReviveLog;
  clock: () => number;
  logger: Logger;
  reviveIntervalMs: number;
  reviveBatchSize: number;
  /** Runs `fn` with the messages marked busy (acks and changes of them wait); releases the ones not removed. */
  withBusy: <T>(entries: InflightMessage[], fn: () => Promise<T>) => Promise<T>;
}

/** A topic created on demand by pop: read + write, `queueNums` queues. */
export function ensurePopTopic(
  topics: TopicConfigManager,
  topicName: string,
  queueNums: number,
): Promise<unknown> {
  return topics.createIfAbsent({
    topicName,
    readQueueNums: queueNums,
    writeQueueNums: queueNums,
    perm: PermName.PERM_READ | PermName.PERM_WRITE,
  });
}

export class PopReviveService {
  private readonly d: PopReviveServiceDeps;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(deps: PopReviveServiceDeps) {
    this.d = deps;
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      void this.reviveDue().catch((err: unknown) => this.d.logger.error({ err }, "revive pass failed"));
    }, this.d.reviveIntervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => 0);
  }

  /** One revive pass over everything due now (a pass already under way is joined, not doubled). Returns messages resolved. */
  reviveDue(): Promise<number> {
    if (this.running !== undefined) return this.running;
    const p = this.pass().finally(() => {
      this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async pass(): Promise<number> {
    let total = 0;
    for (;;) {
      const due = this.d.table.takeDue(this.d.clock(), this.d.reviveBatchSize);
      if (due.length === 0) break;
      try {
        total += await this.d.withBusy(due, () => this.reviveBatch(due));
      } catch (err) {
        // The messages stay in flight and are due again on the next pass.
        this.d.logger.error({ err, messages: due.length }, "revive write failed; will retry");
        break;
      }
    }
    this.commitReviveOffsets();
    return total;
  }

  private async reviveBatch(due: InflightMessage[]): Promise<number> {
    const { store, topics, groups, reviveLog, table, logger } = this.d;
    const originals = await Promise.all(due.map((e) => store.lookMessageByOffset(e.commitLogOffset)));
    const batch: MessageInput[] = [];
    const acks = new Map<CheckPointState, Map<AckReason, number[]>>();
    const addAck = (e: InflightMessage, reason: AckReason) => {
      let byReason = acks.get(e.ck);
      if (byReason === undefined) {
        byReason = new Map();
        acks.set(e.ck, byReason);
      }
      const list = byReason.get(reason);
      if (list === undefined) byReason.set(reason, [e.index]);
      else list.push(e.index);
    };
    for (let i = 0; i < due.length; i++) {
      const e = due[i] as InflightMessage;
      const m = originals[i];
      if (!isSameMessage(m, e)) {
        logger.warn(
          {
            group: e.ck.group,
            topic: e.ck.topic,
            queueId: e.ck.queueId,
            queueOffset: e.queueOffset,
            commitLogOffset: e.commitLogOffset,
          },
          "in-flight message can no longer be read (removed by retention?); dropping it",
        );
        addAck(e, AckReason.LOST);
        continue;
      }
      const group = groups.get(e.ck.group);
      const attempts = maxDeliveryAttempts(group?.retryMaxTimes ?? -1);
      // The next delivery would be attempt reconsumeTimes + 2.
      if (m.reconsumeTimes + 2 > attempts) {
        const dlq = deadLetterTopicOf(e.ck.group);
        await ensurePopTopic(topics, dlq, DLQ_QUEUE_NUMS);
        batch.push(deadLetterMessage(m, dlq, 0, e.ck.originTopic));
        addAck(e, AckReason.DLQ);
      } else {
        const retry = popRetryTopicOf(e.ck.group, e.ck.originTopic);
        await ensurePopTopic(topics, retry, POP_RETRY_QUEUE_NUMS);
        batch.push(retryMessage(m, retry, 0, e.ck.originTopic, e.ck.popTime));
        addAck(e, AckReason.REVIVE);
      }
    }
    for (const [ck, byReason] of acks) {
      for (const [reason, indexes] of byReason)
        batch.push(reviveLog.ack(ck.reviveQid, { ckOffset: ck.ckOffset, indexes, reason }));
    }
    await store.putMessages(batch);
    for (const e of due) table.remove(e);
    return due.length;
  }

  /** Records, per revive queue, the offset below which every CK is resolved (read back at start). */
  commitReviveOffsets(): void {
    const { store, offsets, table, reviveLog } = this.d;
    for (let qid = 0; qid < reviveLog.queueNums; qid++) {
      const at = table.reviveCommitOffset(qid, store.getMaxOffsetInQueue(reviveLog.topic, qid));
      if (at !== undefined && at > 0) offsets.commit(REVIVE_GROUP, reviveLog.topic, qid, at);
    }
  }
}

function isSameMessage(m: StoredMessage | undefined, e: InflightMessage): m is StoredMessage {
  return (
    m !== undefined && m.topic === e.ck.topic && m.queueId === e.ck.queueId && m.queueOffset === e.queueOffset
  );
}
