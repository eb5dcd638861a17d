// Transaction ids: what a transactional send returns and EndTransaction quotes back. Upstream's
// remoting producer sends the half record's CommitLog offset and queue offset (tranStateTableOffset)
// in its END_TRANSACTION header, and the upstream proxy keeps a memory map from the gRPC transactionId
// to those two numbers. Ours carries them in the id itself, so a commit finds the half record with one
// read, after a broker or proxy restart too, and names the broker so a proxy can route without state:
//
//   <CommitLog offset, 16 hex><queue offset, 16 hex><check, 8 hex> "." <broker name>
//
// The check is a CRC32 over the offsets, the broker name and the message id (UNIQ_KEY): a garbled id,
// or one quoted with another message's id, is refused before anything is read. It is not a secret; the
// half record read back is validated as well (producer group, message id, topic).

import { crc32 } from "node:zlib";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { offsetHex } from "../store/message-id.ts";

const HEX_PART_LENGTH = 40;
const SEPARATOR = ".";
/** Longest id decoded (ours): the hex part, the separator and a broker name with room. */
export const MAX_TRANSACTION_ID_LENGTH = 512;
const HEX = /^[0-9A-Fa-f]+$/;
const TWO_POW_32 = 4294967296;

export interface TransactionIdFields {
  brokerName: string;
  /** CommitLog offset of the transaction's first half record. */
  commitLogOffset: number;
  /** Its offset in the half queue. */
  queueOffset: number;
}

export interface DecodedTransactionId extends TransactionIdFields {
  check: number;
}

function checkOf(f: TransactionIdFields, messageId: string): number {
  return crc32(`${f.commitLogOffset}:${f.queueOffset}:${f.brokerName}:${messageId}`) >>> 0;
}

function invalid(id: string, why: string): RmqError {
  const shown = id.length > 80 ? `${id.slice(0, 80)}...` : id;
  return new RmqError(
    ErrorCode.InvalidTransactionId,
    `transaction id ${JSON.stringify(shown)} is invalid: ${why}`,
  );
}

/** The id of the transaction whose first half record is `f`, sent with message id `messageId`. */
export function encodeTransactionId(f: TransactionIdFields, messageId: string): string {
  const check = checkOf(f, messageId).toString(16).toUpperCase().padStart(8, "0");
  return offsetHex(f.commitLogOffset) + offsetHex(f.queueOffset) + check + SEPARATOR + f.brokerName;
}

function parseOffset(hex: string): number {
  const hi = Number.parseInt(hex.slice(0, 8), 16);
  const n = hi * TWO_POW_32 + Number.parseInt(hex.slice(8), 16);
  return Number.isSafeInteger(n) ? n : Number.NaN;
}

/** Splits an id into its fields. Throws RmqError(InvalidTransactionId) for anything not made by encodeTransactionId. */
export function decodeTransactionId(id: string): DecodedTransactionId {
  if (id.length > MAX_TRANSACTION_ID_LENGTH) throw invalid(id, `longer than ${MAX_TRANSACTION_ID_LENGTH}`);
  if (id.length <= HEX_PART_LENGTH + 1 || id[HEX_PART_LENGTH] !== SEPARATOR)
    throw invalid(id, "not of the form <40 hex digits>.<broker name>");
  const hex = id.slice(0, HEX_PART_LENGTH);
  if (!HEX.test(hex)) throw invalid(id, "the first 40 characters must be hex digits");
  const commitLogOffset = parseOffset(hex.slice(0, 16));
  const queueOffset = parseOffset(hex.slice(16, 32));
  if (Number.isNaN(commitLogOffset) || Number.isNaN(queueOffset)) throw invalid(id, "offset out of range");
  return {
    commitLogOffset,
    queueOffset,
    check: Number.parseInt(hex.slice(32, 40), 16),
    brokerName: id.slice(HEX_PART_LENGTH + 1),
  };
}

/** True when `id` was issued for the message whose id (UNIQ_KEY) is `messageId`. */
export function transactionIdMatches(id: DecodedTransactionId, messageId: string): boolean {
  return checkOf(id, messageId) === id.check;
}
