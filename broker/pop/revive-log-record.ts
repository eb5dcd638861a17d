// The records pop consumption writes to its revive topic (`rmq_sys_REVIVE_LOG_{cluster}`), as upstream
// does: a check point (CK, tag `ck`) per pop, and acks (tag `ack`) that resolve some of a CK's
// messages. They are ordinary CommitLog records, so they are flushed, recovered and replicated with
// everything else; the in-flight table is rebuilt from them at start.
//
// CK body, JSON with upstream's PopCheckPoint keys where the meaning is the same:
//   {"c": group, "t": topic popped, "ot": subscribed topic (only when t is the retry topic), "q": queueId,
//    "pt": popTime, "it": invisibleTime, "so": first queue offset, "d": [queue offset - so per message],
//    "co": [CommitLog offset per message], "bn": brokerName, "no": consumer offset committed after the pop}
// "no" is absent on the CK a changeInvisibleTime writes (it commits nothing).
//
// ACK body: {"ck": queue offset of the CK in the same revive queue, "i": [message indexes], "r": reason}.
// Upstream's acks name the CK by (topic, group, queue, startOffset, popTime); ours name it by its own
// queue offset, which the receipt handle carries.

import type { HostAddress } from "../store/host-address.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { PopProperty } from "./pop-properties.ts";

/** Upstream PopAckConstants.CK_TAG. */
export const CK_TAG = "ck";
/** Upstream PopAckConstants.ACK_TAG. */
export const ACK_TAG = "ack";

/** Why a CK's messages stopped being in flight. */
export const AckReason = {
  /** The consumer acked. */
  ACK: "ack",
  /** The invisible time ran out; a copy went to the retry topic. */
  REVIVE: "revive",
  /** Sent to the DLQ (retries exhausted, or on request). */
  DLQ: "dlq",
  /** changeInvisibleTime moved the message to a new CK. */
  CHANGE: "change",
  /** The message could not be read back any more (retention removed it). */
  LOST: "lost",
} as const;
export type AckReason = (typeof AckReason)[keyof typeof AckReason];
const ACK_REASONS: readonly string[] = Object.values(AckReason);

export interface CheckPointRecord {
  group: string;
  /** Topic popped from: the subscribed topic or its pop retry topic. */
  topic: string;
  /** The subscribed topic. */
  originTopic: string;
  queueId: number;
  popTime: number;
  invisibleTime: number;
  queueOffsets: number[];
  commitLogOffsets: number[];
  brokerName: string;
  /** Consumer offset committed once this CK was stored; undefined for a changeInvisibleTime CK. */
  nextOffset: number | undefined;
}

export interface AckRecord {
  ckOffset: number;
  indexes: number[];
  reason: AckReason;
}

export type ReviveLogRecord = { kind: "ck"; ck: CheckPointRecord } | { kind: "ack"; ack: AckRecord };

function reviveMessage(
  reviveTopic: string,
  reviveQid: number,
  tag: string,
  body: unknown,
  now: number,
  host: HostAddress,
): MessageInput {
  return {
    topic: reviveTopic,
    queueId: reviveQid,
    flag: 0,
    body: Buffer.from(JSON.stringify(body), "utf8"),
    properties: new Map([[PopProperty.TAGS, tag]]),
    bornTimestamp: now,
    bornHost: host,
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

export function checkPointMessage(
  reviveTopic: string,
  reviveQid: number,
  ck: CheckPointRecord,
  now: number,
  host: HostAddress,
): MessageInput {
  const so = ck.queueOffsets[0] ?? 0;
  const body: Record<string, unknown> = {
    c: ck.group,
    t: ck.topic,
    q: ck.queueId,
    pt: ck.popTime,
    it: ck.invisibleTime,
    so,
    d: ck.queueOffsets.map((o) => o - so),
    co: ck.commitLogOffsets,
    bn: ck.brokerName,
  };
  if (ck.originTopic !== ck.topic) body.ot = ck.originTopic;
  if (ck.nextOffset !== undefined) body.no = ck.nextOffset;
  return reviveMessage(reviveTopic, reviveQid, CK_TAG, body, now, host);
}

export function ackMessage(
  reviveTopic: string,
  reviveQid: number,
  ack: AckRecord,
  now: number,
  host: HostAddress,
): MessageInput {
  return reviveMessage(
    reviveTopic,
    reviveQid,
    ACK_TAG,
    { ck: ack.ckOffset, i: ack.indexes, r: ack.reason },
    now,
    host,
  );
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);
const isStr = (v: unknown): v is string => typeof v === "string" && v.length > 0;

/** Decodes a revive topic record; undefined for anything that is not a well-formed CK or ACK. */
export function parseReviveLogRecord(m: StoredMessage): ReviveLogRecord | undefined {
  const tag = m.properties.get(PopProperty.TAGS);
  if (tag !== CK_TAG && tag !== ACK_TAG) return undefined;
  let o: Record<string, unknown>;
  try {
    const v: unknown = JSON.parse(
      Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString("utf8"),
    );
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    o = v as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (tag === ACK_TAG) {
    if (!isInt(o.ck) || !isIntArray(o.i) || typeof o.r !== "string" || !ACK_REASONS.includes(o.r))
      return undefined;
    return { kind: "ack", ack: { ckOffset: o.ck, indexes: o.i, reason: o.r as AckReason } };
  }
  if (
    !isStr(o.c) ||
    !isStr(o.t) ||
    !isInt(o.q) ||
    !isInt(o.pt) ||
    !isInt(o.it) ||
    !isInt(o.so) ||
    !isStr(o.bn)
  )
    return undefined;
  if (!isIntArray(o.d) || !isIntArray(o.co) || o.d.length !== o.co.length || o.d.length === 0)
    return undefined;
  if (o.ot !== undefined && !isStr(o.ot)) return undefined;
  if (o.no !== undefined && !isInt(o.no)) return undefined;
  const so = o.so;
  return {
    kind: "ck",
    ck: {
      group: o.c,
      topic: o.t,
      originTopic: (o.ot as string | undefined) ?? o.t,
      queueId: o.q,
      popTime: o.pt,
      invisibleTime: o.it,
      queueOffsets: o.d.map((d) => so + d),
      commitLogOffsets: o.co,
      brokerName: o.bn,
      nextOffset: o.no as number | undefined,
    },
  };
}
