// The copies a message gets when it comes back (pop retry topic) or gives up (DLQ): the same body,
// flag, born time and host and every property (UNIQ_KEY, KEYS, TAGS, user properties), with
// reconsumeTimes + 1 and the origin properties upstream sets (RETRY_TOPIC, ORIGIN_MESSAGE_ID,
// 1ST_POP_TIME on revive; DLQ_ORIGIN_TOPIC / DLQ_ORIGIN_MESSAGE_ID in the DLQ).

import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { MessageSysFlag } from "../store/message-sysflag.ts";
import { PopProperty } from "./pop-properties.ts";

/** Transaction type bits: a copy is an ordinary message whatever the original record was. */
const TRANSACTION_TYPE_MASK = MessageSysFlag.TRANSACTION_ROLLBACK_TYPE;

function copyOf(
  orig: StoredMessage,
  topic: string,
  queueId: number,
  properties: Map<string, string>,
): MessageInput {
  return {
    topic,
    queueId,
    flag: orig.flag,
    body: orig.body,
    properties,
    bornTimestamp: orig.bornTimestamp,
    bornHost: orig.bornHost,
    sysFlag: orig.sysFlag & ~TRANSACTION_TYPE_MASK,
    reconsumeTimes: orig.reconsumeTimes + 1,
    preparedTransactionOffset: 0,
  };
}

function originProperties(orig: StoredMessage, originTopic: string): Map<string, string> {
  const p = new Map(orig.properties);
  if (!p.has(PopProperty.RETRY_TOPIC)) p.set(PopProperty.RETRY_TOPIC, originTopic);
  if (!p.has(PopProperty.ORIGIN_MESSAGE_ID)) p.set(PopProperty.ORIGIN_MESSAGE_ID, orig.msgId);
  return p;
}

/** The message as it comes back through the group's pop retry topic after `popTime`'s invisible time ran out. */
export function retryMessage(
  orig: StoredMessage,
  retryTopic: string,
  queueId: number,
  originTopic: string,
  popTime: number,
): MessageInput {
  const p = originProperties(orig, originTopic);
  if (orig.reconsumeTimes === 0 || !p.has(PopProperty.FIRST_POP_TIME))
    p.set(PopProperty.FIRST_POP_TIME, String(popTime));
  return copyOf(orig, retryTopic, queueId, p);
}

/** The message as it lands in `%DLQ%{group}`. */
export function deadLetterMessage(
  orig: StoredMessage,
  dlqTopic: string,
  queueId: number,
  originTopic: string,
): MessageInput {
  const p = originProperties(orig, originTopic);
  p.set(PopProperty.DLQ_ORIGIN_TOPIC, originTopic);
  p.set(PopProperty.DLQ_ORIGIN_MESSAGE_ID, orig.properties.get(PopProperty.UNIQ_KEY) ?? orig.msgId);
  return copyOf(orig, dlqTopic, queueId, p);
}

/** Upstream push consumers' default when a group says -1: 16 retries. */
const DEFAULT_RETRY_MAX_TIMES = 16;

/** Deliveries a group allows before the DLQ: retryMaxTimes + 1 (retryMaxTimes < 0 means upstream's default 16). */
export function maxDeliveryAttempts(retryMaxTimes: number): number {
  return (retryMaxTimes < 0 ? DEFAULT_RETRY_MAX_TIMES : retryMaxTimes) + 1;
}
