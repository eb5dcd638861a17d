// What the timer writes when a slot comes due: the delivered message (back to its real topic and
// queue, same body, same UNIQ_KEY so the message id does not change) or, for a delay beyond the roll
// window, a copy back into the timer topic. Both carry TIMER_SOURCE_OFFSET, and after a crash
// scanTimerDeliveries finds them in the CommitLog written since the checkpoint, so nothing is written
// twice.

import { isRmqError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import { parseRecord, type StoredMessage, viewProperties, viewTopic } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { MessageSysFlag } from "../store/message-sysflag.ts";
import { TIMER_QUEUE_ID, TIMER_TOPIC, TimerProperty } from "./timer-properties.ts";

/** Transaction type bits: what the timer writes is an ordinary message. */
const TRANSACTION_TYPE_MASK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE;
/** CommitLog bytes read per step of the crash scan. */
const SCAN_READ_BYTES = 4 * 1024 * 1024;
const MARKER_BYTES = Buffer.from(TimerProperty.TIMER_SOURCE_OFFSET, "utf8");

function copyOf(
  m: StoredMessage,
  topic: string,
  queueId: number,
  properties: Map<string, string>,
): MessageInput {
  return {
    topic,
    queueId,
    flag: m.flag,
    body: m.body,
    properties,
    bornTimestamp: m.bornTimestamp,
    bornHost: m.bornHost,
    sysFlag: m.sysFlag & ~TRANSACTION_TYPE_MASK,
    reconsumeTimes: m.reconsumeTimes,
    preparedTransactionOffset: 0,
  };
}

/**
 * The message as its consumers get it: REAL_TOPIC / REAL_QID restored as topic and queue and removed,
 * TIMER_ROLL_TIMES removed; the producer's TIMER_DELIVER_MS (delivery timestamp shown to clients) and
 * TIMER_OUT_MS (so sending it again does not delay it again, as upstream) stay. Undefined when the
 * record does not name a destination.
 */
export function deliveredMessage(m: StoredMessage): MessageInput | undefined {
  const topic = m.properties.get(TimerProperty.REAL_TOPIC);
  const qid = Number(m.properties.get(TimerProperty.REAL_QID));
  if (topic === undefined || topic.length === 0 || !Number.isInteger(qid) || qid < 0) return undefined;
  const p = new Map(m.properties);
  p.delete(TimerProperty.REAL_TOPIC);
  p.delete(TimerProperty.REAL_QID);
  p.delete(TimerProperty.TIMER_ROLL_TIMES);
  p.set(TimerProperty.TIMER_SOURCE_OFFSET, String(m.commitLogOffset));
  return copyOf(m, topic, qid, p);
}

/** A long delay's record written again to the timer topic, to be enqueued into a nearer slot. */
export function rolledMessage(m: StoredMessage): MessageInput {
  const p = new Map(m.properties);
  const times = Number(p.get(TimerProperty.TIMER_ROLL_TIMES) ?? 0);
  p.set(TimerProperty.TIMER_ROLL_TIMES, String((Number.isSafeInteger(times) ? times : 0) + 1));
  p.set(TimerProperty.TIMER_SOURCE_OFFSET, String(m.commitLogOffset));
  return copyOf(m, TIMER_TOPIC, TIMER_QUEUE_ID, p);
}

/** What a delivery or roll found after a crash was made from: source offset -> its topic and UNIQ_KEY. */
export type DeliveredSources = Map<number, { topic: string; uniqKey: string | undefined }>;

/**
 * Reads the CommitLog from `fromOffset` to its end and collects every record the timer wrote (those
 * with TIMER_SOURCE_OFFSET). Records cut away by retention are skipped; a read failure is logged and
 * ends the scan early (what was found so far is returned).
 */
export async function scanTimerDeliveries(
  store: MessageStore,
  fromOffset: number,
  logger: Logger,
): Promise<DeliveredSources> {
  const found: DeliveredSources = new Map();
  let off = Math.max(fromOffset, store.getMinPhyOffset());
  const end = store.getMaxPhyOffset();
  while (off < end) {
    let chunk: Awaited<ReturnType<MessageStore["readRaw"]>>;
    try {
      chunk = await store.readRaw(off, SCAN_READ_BYTES);
    } catch (err) {
      if (!isRmqError(err)) throw err;
      logger.error(
        { err, offset: off },
        "timer: CommitLog scan for deliveries before the crash stopped early",
      );
      break;
    }
    const buf = chunk.bytes;
    let p = 0;
    while (p < buf.length) {
      const res = parseRecord(buf, p, buf.length, {
        verifyCrc: false,
        segmentRemaining: Number.MAX_SAFE_INTEGER,
      });
      if (res.kind !== "record") break;
      const v = res.view;
      if (v.propsLen > 0 && buf.subarray(v.propsPos, v.propsPos + v.propsLen).includes(MARKER_BYTES)) {
        const props = viewProperties(buf, v);
        const source = Number(props.get(TimerProperty.TIMER_SOURCE_OFFSET));
        // The first record made from a source is the delivery (or roll); later ones are copies of it
        // (pop retry, DLQ), which carry the property along.
        if (Number.isSafeInteger(source) && !found.has(source))
          found.set(source, { topic: viewTopic(buf, v), uniqKey: props.get(TimerProperty.UNIQ_KEY) });
      }
      p += v.size;
    }
    if (chunk.nextOffset <= off) break;
    off = chunk.nextOffset;
  }
  return found;
}
