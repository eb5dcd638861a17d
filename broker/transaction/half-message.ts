// The shapes a transactional message takes: the half message the send path stores instead of the
// real one (RMQ_SYS_TRANS_HALF_TOPIC queue 0, real topic and queue in REAL_TOPIC / REAL_QID), the copy
// the check loop re-appends (check count and first-record position in properties, so they survive a
// restart), the real message a commit stores, and the copy a discard moves to TRANS_CHECK_MAX_TIME_TOPIC.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { SystemTopic } from "../../common/topic-validator.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import { MessageConst } from "../store/message-const.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { MessageSysFlag } from "../store/message-sysflag.ts";
import { HALF_QUEUE_ID, TransactionProperty } from "./transaction-properties.ts";

/** Upstream MessageSysFlag.resetTransactionValue: the transaction type bits replaced by `type`. */
export function resetTransactionValue(sysFlag: number, type: number): number {
  return (sysFlag & ~MessageSysFlag.TRANSACTION_ROLLBACK_TYPE) | type;
}

/** TRAN_MSG is "true" (case-insensitive, as Java's Boolean.parseBoolean). */
export function isTransactionPrepared(properties: ReadonlyMap<string, string>): boolean {
  return properties.get(TransactionProperty.TRANSACTION_PREPARED)?.toLowerCase() === "true";
}

/** Properties only the broker may set on half records (a producer sending them would skip checks). */
const BROKER_HALF_PROPERTIES = [
  TransactionProperty.TRANSACTION_CHECK_TIMES,
  TransactionProperty.TRANSACTION_PREPARED_QUEUE_OFFSET,
  TransactionProperty.TRANSACTION_PREPARED_COMMITLOG_OFFSET,
] as const;

/**
 * The half message for a transactional send (upstream parseHalfMessageInner): topic
 * RMQ_SYS_TRANS_HALF_TOPIC queue 0, REAL_TOPIC / REAL_QID set, transaction type bits cleared so the
 * record takes a ConsumeQueue slot. Needs TRAN_MSG=true and a non-empty PGROUP.
 */
export function toHalfMessage(input: MessageInput): MessageInput {
  if (!isTransactionPrepared(input.properties)) {
    throw new RmqError(ErrorCode.IllegalArgument, "not a transactional message (TRAN_MSG is not true)");
  }
  const group = input.properties.get(TransactionProperty.PRODUCER_GROUP);
  if (group === undefined || group.length === 0) {
    throw new RmqError(
      ErrorCode.IllegalMessageProperty,
      "a transactional message needs its producer group in property PGROUP",
    );
  }
  const properties = new Map(input.properties);
  for (const p of BROKER_HALF_PROPERTIES) properties.delete(p);
  properties.set(TransactionProperty.REAL_TOPIC, input.topic);
  properties.set(TransactionProperty.REAL_QUEUE_ID, String(input.queueId));
  return {
    ...input,
    topic: SystemTopic.TRANS_HALF,
    queueId: HALF_QUEUE_ID,
    properties,
    sysFlag: resetTransactionValue(input.sysFlag, MessageSysFlag.TRANSACTION_NOT_TYPE),
    preparedTransactionOffset: 0,
  };
}

/** Where a transaction's first half record is: itself for a first record, else from the copy's properties. */
export interface HalfOrigin {
  commitLogOffset: number;
  queueOffset: number;
}

function nonNegativeInt(s: string | undefined): number | undefined {
  if (s === undefined || !/^\d{1,16}$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** The first half record of the transaction `half` belongs to. */
export function halfOriginOf(half: StoredMessage): HalfOrigin {
  const q = nonNegativeInt(half.properties.get(TransactionProperty.TRANSACTION_PREPARED_QUEUE_OFFSET));
  const c = nonNegativeInt(half.properties.get(TransactionProperty.TRANSACTION_PREPARED_COMMITLOG_OFFSET));
  if (q === undefined || c === undefined)
    return { commitLogOffset: half.commitLogOffset, queueOffset: half.queueOffset };
  return { commitLogOffset: c, queueOffset: q };
}

/** True for a record the check loop re-appended (not the one the producer's send stored). */
export function isHalfCopy(half: StoredMessage): boolean {
  return halfOriginOf(half).queueOffset !== half.queueOffset;
}

/** Checks sent so far for the transaction (0 when the property is absent or not a number). */
export function checkTimesOf(half: StoredMessage): number {
  return nonNegativeInt(half.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES)) ?? 0;
}

/** REAL_TOPIC and REAL_QID of a half message; undefined when they are missing or malformed. */
export function realQueueOf(half: StoredMessage): { topic: string; queueId: number } | undefined {
  const topic = half.properties.get(TransactionProperty.REAL_TOPIC);
  const queueId = nonNegativeInt(half.properties.get(TransactionProperty.REAL_QUEUE_ID));
  if (topic === undefined || topic.length === 0 || queueId === undefined || queueId > 0x7fffffff)
    return undefined;
  return { topic, queueId };
}

/**
 * The copy the check loop appends to the half queue (upstream renewHalfMessageInner /
 * putBackHalfMsgQueue): same body, born time and host, flag and properties (UNIQ_KEY included), with
 * the check count and the first record's position.
 */
export function halfCopyOf(half: StoredMessage, origin: HalfOrigin, checkTimes: number): MessageInput {
  const properties = new Map(half.properties);
  properties.set(TransactionProperty.TRANSACTION_CHECK_TIMES, String(checkTimes));
  properties.set(TransactionProperty.TRANSACTION_PREPARED_QUEUE_OFFSET, String(origin.queueOffset));
  properties.set(TransactionProperty.TRANSACTION_PREPARED_COMMITLOG_OFFSET, String(origin.commitLogOffset));
  return {
    topic: SystemTopic.TRANS_HALF,
    queueId: HALF_QUEUE_ID,
    flag: half.flag,
    body: half.body,
    properties,
    bornTimestamp: half.bornTimestamp,
    bornHost: half.bornHost,
    sysFlag: half.sysFlag,
    reconsumeTimes: half.reconsumeTimes,
    preparedTransactionOffset: 0,
  };
}

/**
 * The message a commit stores (upstream endMessageTransaction): the real topic and queue, the same
 * body, flag, born time and host, and the same properties (UNIQ_KEY, so the message id is unchanged)
 * without TRAN_MSG, REAL_TOPIC, REAL_QID and the check loop's own; sysflag of commit type;
 * preparedTransactionOffset = the half record's CommitLog offset.
 */
export function realMessageOf(half: StoredMessage): MessageInput {
  const real = realQueueOf(half);
  if (real === undefined) {
    throw new RmqError(
      ErrorCode.MessageCorrupted,
      `half message at CommitLog offset ${half.commitLogOffset} has no valid REAL_TOPIC / REAL_QID`,
    );
  }
  const properties = new Map(half.properties);
  properties.delete(TransactionProperty.TRANSACTION_PREPARED);
  properties.delete(TransactionProperty.REAL_TOPIC);
  properties.delete(TransactionProperty.REAL_QUEUE_ID);
  for (const p of BROKER_HALF_PROPERTIES) properties.delete(p);
  return {
    topic: real.topic,
    queueId: real.queueId,
    flag: half.flag,
    body: half.body,
    properties,
    bornTimestamp: half.bornTimestamp,
    bornHost: half.bornHost,
    sysFlag: resetTransactionValue(half.sysFlag, MessageSysFlag.TRANSACTION_COMMIT_TYPE),
    reconsumeTimes: half.reconsumeTimes,
    preparedTransactionOffset: half.commitLogOffset,
  };
}

/** The copy a discarded half message leaves in TRANS_CHECK_MAX_TIME_TOPIC queue 0 (upstream toMessageExtBrokerInner). */
export function discardMessageOf(half: StoredMessage): MessageInput {
  return {
    topic: SystemTopic.TRANS_CHECK_MAX_TIME,
    queueId: 0,
    flag: half.flag,
    body: half.body,
    properties: new Map(half.properties),
    bornTimestamp: half.bornTimestamp,
    bornHost: half.bornHost,
    sysFlag: half.sysFlag,
    reconsumeTimes: half.reconsumeTimes,
    preparedTransactionOffset: 0,
  };
}

/** The message id (UNIQ_KEY) of a half message, "" when it has none. */
export function messageIdOf(half: StoredMessage): string {
  return half.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) ?? "";
}
