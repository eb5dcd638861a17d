// Names the timer uses (upstream MessageConst, TimerMessageStore): the properties of a timer message
// before and after the broker rewrites it, the internal topic, and the delete key a recall writes.

import { SystemTopic } from "../../common/topic-validator.ts";

/** The timer wheel's internal topic (upstream TimerMessageStore.TIMER_TOPIC); 1 queue. */
export const TIMER_TOPIC = SystemTopic.TIMER;
/** The only queue of the timer topic. */
export const TIMER_QUEUE_ID = 0;

export const TimerProperty = {
  /** Absolute delivery time (epoch ms), set by the producer. */
  TIMER_DELIVER_MS: "TIMER_DELIVER_MS",
  /** Relative delay in ms, set by the producer. */
  TIMER_DELAY_MS: "TIMER_DELAY_MS",
  /** Relative delay in s, set by the producer. */
  TIMER_DELAY_SEC: "TIMER_DELAY_SEC",
  /** The delivery time after rounding to the precision: the slot the message waits in. */
  TIMER_OUT_MS: "TIMER_OUT_MS",
  /** How many times a long delay was rolled over to a later slot. */
  TIMER_ROLL_TIMES: "TIMER_ROLL_TIMES",
  /** On a delete marker (recall): `{realTopic}+{uniqKey}` of the message it cancels. */
  TIMER_DEL_UNIQKEY: "TIMER_DEL_UNIQKEY",
  /** The destination of a rewritten message. */
  REAL_TOPIC: "REAL_TOPIC",
  REAL_QID: "REAL_QID",
  UNIQ_KEY: "UNIQ_KEY",
  TAGS: "TAGS",
  /**
   * Ours: on every message the timer writes (a delivery or a rolled copy), the CommitLog offset of
   * the timer-topic record it was made from. After a crash the timer re-reads the CommitLog written
   * since its last checkpoint for this property, so a message delivered just before the crash is not
   * delivered again. The `__RMQ.TRANSIENT.` prefix keeps it from clients (proxy/message-converter.ts).
   */
  TIMER_SOURCE_OFFSET: "__RMQ.TRANSIENT.TIMER_SOURCE_OFFSET",
} as const;

/** Tag of the delete markers a recall writes (upstream RecallMessageProcessor RECALL_MESSAGE_TAG). */
export const RECALL_MESSAGE_TAG = "_RECALL_TAG_";

/** How a delete marker names the message it cancels (upstream TimerMessageStore.buildDeleteKey). */
export function buildDeleteKey(realTopic: string, uniqKey: string): string {
  return `${realTopic}+${uniqKey}`;
}
