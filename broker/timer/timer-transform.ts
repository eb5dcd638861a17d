// The send-path rewrite of a timer message (upstream HookUtils.checkIfTimerMessage +
// transformTimerMessage): a message asking for a later delivery goes to the timer topic, with its
// destination and rounded delivery time in properties, and the send result gets a recall handle.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { isRetryTopic } from "../../common/topic-validator.ts";
import { createUniqKey } from "../store/message-id.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { encodeRecallHandle } from "./recall-handle.ts";
import { TIMER_QUEUE_ID, TIMER_TOPIC, TimerProperty } from "./timer-properties.ts";

export interface TimerTransformConfig {
  timerPrecisionMs: number;
  timerMaxDelaySec: number;
  /** Named in the recall handle. */
  brokerName: string;
}

export interface TimerTransformResult {
  /** The message to store instead: topic rmq_sys_wheel_timer, queue 0, REAL_TOPIC/REAL_QID/TIMER_OUT_MS set. */
  message: MessageInput;
  /** The slot the message waits for (delivery happens at the end of it, within timerPrecisionMs). */
  timerOutMs: number;
  /** The message's UNIQ_KEY (generated here when it had none, so the handle can name it). */
  uniqKey: string;
  /** For the send result; undefined for retry topics (as upstream). */
  recallHandle: string | undefined;
}

const LONG_PATTERN = /^[+-]?\d+$/;

/**
 * True when the message asks for the timer: it carries TIMER_DELIVER_MS, TIMER_DELAY_MS or
 * TIMER_DELAY_SEC and is not already a timer record (timer topic, or TIMER_OUT_MS set: a message the
 * timer delivered keeps TIMER_OUT_MS, so sending it again does not delay it again).
 */
export function isTimerMessage(input: Pick<MessageInput, "topic" | "properties">): boolean {
  const p = input.properties;
  if (input.topic === TIMER_TOPIC || p.has(TimerProperty.TIMER_OUT_MS)) return false;
  return (
    p.has(TimerProperty.TIMER_DELIVER_MS) ||
    p.has(TimerProperty.TIMER_DELAY_MS) ||
    p.has(TimerProperty.TIMER_DELAY_SEC)
  );
}

function illegal(why: string): RmqError {
  return new RmqError(ErrorCode.IllegalDeliveryTime, `timer message is illegal: ${why}`);
}

function parseLong(name: string, v: string): number {
  const n = Number(v);
  if (!LONG_PATTERN.test(v) || !Number.isSafeInteger(n))
    throw illegal(`${name}=${JSON.stringify(v)} is not an integer`);
  return n;
}

/** The requested delivery time (epoch ms): TIMER_DELAY_SEC, else TIMER_DELAY_MS, else TIMER_DELIVER_MS (upstream order). */
function requestedDeliverMs(p: ReadonlyMap<string, string>, now: number): number {
  const sec = p.get(TimerProperty.TIMER_DELAY_SEC);
  if (sec !== undefined) return now + parseLong(TimerProperty.TIMER_DELAY_SEC, sec) * 1000;
  const ms = p.get(TimerProperty.TIMER_DELAY_MS);
  if (ms !== undefined) return now + parseLong(TimerProperty.TIMER_DELAY_MS, ms);
  return parseLong(TimerProperty.TIMER_DELIVER_MS, p.get(TimerProperty.TIMER_DELIVER_MS) ?? "");
}

/**
 * Rewrites a timer message for the timer topic, or returns undefined when it is not one or its time
 * has already come (it is then stored as it is and delivered at once). A delay above timerMaxDelaySec,
 * or a time that is not an integer, is RmqError(IllegalDeliveryTime). Rounding as upstream: down to
 * the precision, and an exact multiple one step lower, so the message is due at the end of its slot.
 */
export function transformTimerMessage(
  input: MessageInput,
  cfg: TimerTransformConfig,
  now: number,
): TimerTransformResult | undefined {
  if (!isTimerMessage(input)) return undefined;
  const p = input.properties;
  const deliverMs = requestedDeliverMs(p, now);
  if (deliverMs <= now) {
    if (p.has(TimerProperty.TIMER_DEL_UNIQKEY)) throw illegal("a delete marker's time has already passed");
    return undefined;
  }
  if (deliverMs - now > cfg.timerMaxDelaySec * 1000) {
    throw illegal(
      `the delivery time is ${deliverMs - now} ms ahead, more than timerMaxDelaySec=${cfg.timerMaxDelaySec} s`,
    );
  }
  const precision = cfg.timerPrecisionMs;
  const timerOutMs =
    deliverMs % precision === 0 ? deliverMs - precision : Math.floor(deliverMs / precision) * precision;
  const props = new Map(p);
  let uniqKey = props.get(TimerProperty.UNIQ_KEY);
  if (uniqKey === undefined || uniqKey.length === 0) {
    uniqKey = createUniqKey(now);
    props.set(TimerProperty.UNIQ_KEY, uniqKey);
  }
  props.set(TimerProperty.TIMER_OUT_MS, String(timerOutMs));
  props.set(TimerProperty.REAL_TOPIC, input.topic);
  props.set(TimerProperty.REAL_QID, String(input.queueId));
  return {
    message: { ...input, topic: TIMER_TOPIC, queueId: TIMER_QUEUE_ID, properties: props },
    timerOutMs,
    uniqKey,
    recallHandle: isRetryTopic(input.topic)
      ? undefined
      : encodeRecallHandle({
          topic: input.topic,
          brokerName: cfg.brokerName,
          timestampMs: timerOutMs + 1,
          messageId: uniqKey,
        }),
  };
}
