// Start-up: rebuilds the in-flight table from the revive topic. Each revive queue is read from its
// committed offset (everything before it was resolved, see InflightTable.reviveCommitOffset) to its
// end; CKs open entries, ACKs close them, and what is left is in flight again with its original
// deadline (already passed deadlines are revived by the first revive pass). Each CK's committed
// consumer offset is re-applied too: consumerOffset.json is only persisted every few seconds, and a
// crash must not hand out again what a durable CK says was popped.

import type { Logger } from "../../common/logger.ts";
import type { ConsumerOffsetManager } from "../metadata/consumer-offset-manager.ts";
import type { MessageStore } from "../store/message-store.ts";
import type { CheckPointState, InflightTable } from "./inflight-table.ts";
import { REVIVE_GROUP } from "./pop-topics.ts";
import type { RecentlyAcked } from "./recently-acked.ts";
import { AckReason, type CheckPointRecord, parseReviveLogRecord } from "./revive-log-record.ts";

/** Revive records read per store call while rebuilding (ours). */
const REBUILD_READ_BATCH = 512;

export interface RebuildReport {
  /** Revive records read. */
  records: number;
  /** Records that were neither a CK nor an ACK (logged, skipped). */
  unreadable: number;
  /** Messages in flight after the rebuild. */
  inflight: number;
}

interface OpenCk {
  rec: CheckPointRecord;
  acked: Set<number>;
}

export async function rebuildInflightFromReviveLog(opts: {
  store: MessageStore;
  offsets: ConsumerOffsetManager;
  table: InflightTable;
  recentlyAcked: RecentlyAcked;
  reviveTopic: string;
  reviveQueueNums: number;
  logger: Logger;
}): Promise<RebuildReport> {
  const { store, offsets, table, reviveTopic, logger } = opts;
  const report: RebuildReport = { records: 0, unreadable: 0, inflight: 0 };
  for (let qid = 0; qid < opts.reviveQueueNums; qid++) {
    const committed = offsets.query(REVIVE_GROUP, reviveTopic, qid);
    let offset = Math.max(committed, store.getMinOffsetInQueue(reviveTopic, qid), 0);
    const max = store.getMaxOffsetInQueue(reviveTopic, qid);
    const open = new Map<number, OpenCk>();
    while (offset < max) {
      const res = await store.getMessage(reviveTopic, qid, offset, REBUILD_READ_BATCH);
      for (const m of res.messages) {
        report.records++;
        const rec = parseReviveLogRecord(m);
        if (rec === undefined) {
          report.unreadable++;
          logger.warn(
            { reviveTopic, reviveQid: qid, queueOffset: m.queueOffset },
            "unreadable revive log record skipped",
          );
          continue;
        }
        if (rec.kind === "ck") {
          open.set(m.queueOffset, { rec: rec.ck, acked: new Set() });
          const no = rec.ck.nextOffset;
          if (no !== undefined && no >= 0) offsets.commit(rec.ck.group, rec.ck.topic, rec.ck.queueId, no);
          continue;
        }
        const ck = open.get(rec.ack.ckOffset);
        if (ck === undefined) continue; // its CK was resolved before the committed offset
        for (const i of rec.ack.indexes) ck.acked.add(i);
        if (rec.ack.reason === AckReason.ACK) opts.recentlyAcked.add(qid, rec.ack.ckOffset, rec.ack.indexes);
        if (ck.acked.size >= ck.rec.queueOffsets.length) open.delete(rec.ack.ckOffset);
      }
      if (res.nextBeginOffset <= offset) break;
      offset = res.nextBeginOffset;
    }
    for (const [ckOffset, { rec, acked }] of open) {
      const state: CheckPointState = {
        reviveQid: qid,
        ckOffset,
        group: rec.group,
        topic: rec.topic,
        originTopic: rec.originTopic,
        queueId: rec.queueId,
        popTime: rec.popTime,
        invisibleTime: rec.invisibleTime,
        remaining: 0,
      };
      const messages: Array<{ index: number; queueOffset: number; commitLogOffset: number }> = [];
      rec.queueOffsets.forEach((queueOffset, index) => {
        if (!acked.has(index))
          messages.push({ index, queueOffset, commitLogOffset: rec.commitLogOffsets[index] as number });
      });
      report.inflight += table.add(state, messages).length;
    }
  }
  return report;
}
