// Op records: the messages in RMQ_SYS_TRANS_OP_HALF_TOPIC that mark half messages as done (committed,
// rolled back or discarded). As upstream: tag "d", body = the half queue offsets, each followed by ",",
// at most transactionOpMsgMaxSize bytes per record. Our offsets are those of each transaction's first
// half record (see transaction-state.ts).

import { SystemTopic } from "../../common/topic-validator.ts";
import type { HostAddress } from "../store/host-address.ts";
import { MessageConst } from "../store/message-const.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import { HALF_QUEUE_ID, OP_REMOVE_TAG } from "./transaction-properties.ts";

/** Longest op record body (upstream transactionOpMsgMaxSize, 4096 bytes). */
export const TRANSACTION_OP_MSG_MAX_SIZE = 4096;
const OFFSET_SEPARATOR = ",";
/** A queue offset in decimal: at most 16 digits below 2^53. */
const OFFSET = /^\d{1,16}$/;

/** `offsets` in groups whose op record body stays within `maxSize` bytes (an offset never splits). */
export function splitOpOffsets(
  offsets: readonly number[],
  maxSize: number = TRANSACTION_OP_MSG_MAX_SIZE,
): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  let size = 0;
  for (const o of offsets) {
    const len = String(o).length + OFFSET_SEPARATOR.length;
    if (cur.length > 0 && size + len > maxSize) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(o);
    size += len;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The body of an op record listing `offsets`: each followed by "," (upstream's format). */
export function opBody(offsets: readonly number[]): string {
  let s = "";
  for (const o of offsets) s += `${o}${OFFSET_SEPARATOR}`;
  return s;
}

/** The offsets an op record body lists; malformed entries are skipped (upstream logs and skips them too). */
export function parseOpBody(body: Uint8Array): number[] {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1");
  const out: number[] = [];
  for (const s of text.split(OFFSET_SEPARATOR)) {
    if (!OFFSET.test(s)) continue;
    const n = Number(s);
    if (Number.isSafeInteger(n)) out.push(n);
  }
  return out;
}

/** True for an op record this broker writes (tag "d"); other tags are not ours and are ignored. */
export function isRemoveOp(properties: ReadonlyMap<string, string>): boolean {
  return properties.get(MessageConst.PROPERTY_TAGS) === OP_REMOVE_TAG;
}

/** The op record carrying `body`, as the broker writes it (born at the broker, queue = the half queue). */
export function opMessage(body: string, bornTimestamp: number, bornHost: HostAddress): MessageInput {
  return {
    topic: SystemTopic.TRANS_OP_HALF,
    queueId: HALF_QUEUE_ID,
    flag: 0,
    body: Buffer.from(body, "latin1"),
    properties: new Map([[MessageConst.PROPERTY_TAGS, OP_REMOVE_TAG]]),
    bornTimestamp,
    bornHost,
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}
