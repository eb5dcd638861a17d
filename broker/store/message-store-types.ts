// The MessageStore's request/response shapes and status codes (names as upstream's PutMessageStatus and
// GetMessageStatus).
import type { HostAddress } from "./host-address.ts";
import type { StoredMessage } from "./message-codec.ts";

export const PutMessageStatus = {
  PUT_OK: "PUT_OK",
  /** The record is written but its fdatasync did not finish within syncFlushTimeout (SYNC_FLUSH). */
  FLUSH_DISK_TIMEOUT: "FLUSH_DISK_TIMEOUT",
} as const;
export type PutMessageStatus = (typeof PutMessageStatus)[keyof typeof PutMessageStatus];

/** A message to store. Validation failures (size, topic, properties, store state) throw RmqError instead. */
export interface MessageInput {
  topic: string;
  queueId: number;
  flag: number;
  body: Uint8Array;
  /** User and system properties; UNIQ_KEY is generated when absent (the map itself is not modified). */
  properties: ReadonlyMap<string, string>;
  bornTimestamp: number;
  bornHost: HostAddress;
  sysFlag: number;
  reconsumeTimes: number;
  preparedTransactionOffset: number;
}

export interface PutMessageResult {
  status: PutMessageStatus;
  /** Offset msgId (store host + CommitLog offset, upper-case hex). */
  msgId: string;
  uniqKey: string;
  commitLogOffset: number;
  queueOffset: number;
  /** Record size in the CommitLog. */
  size: number;
  storeTimestamp: number;
}

export const GetMessageStatus = {
  FOUND: "FOUND",
  /** Units were there but the filter matched none of them. */
  NO_MATCHED_MESSAGE: "NO_MATCHED_MESSAGE",
  /** The records of the units read are gone (retention) or were damaged. */
  MESSAGE_WAS_REMOVING: "MESSAGE_WAS_REMOVING",
  OFFSET_FOUND_NULL: "OFFSET_FOUND_NULL",
  OFFSET_OVERFLOW_BADLY: "OFFSET_OVERFLOW_BADLY",
  OFFSET_OVERFLOW_ONE: "OFFSET_OVERFLOW_ONE",
  OFFSET_TOO_SMALL: "OFFSET_TOO_SMALL",
  NO_MATCHED_LOGIC_QUEUE: "NO_MATCHED_LOGIC_QUEUE",
  NO_MESSAGE_IN_QUEUE: "NO_MESSAGE_IN_QUEUE",
} as const;
export type GetMessageStatus = (typeof GetMessageStatus)[keyof typeof GetMessageStatus];

/**
 * Two-stage filter as upstream's MessageFilter: first on the ConsumeQueue unit's tagsCode (no CommitLog
 * read), then on the message properties (after the read). Either stage may be left out.
 */
export interface MessageFilter {
  isMatchedByConsumeQueue?(tagsCode: number): boolean;
  isMatchedByCommitLog?(properties: ReadonlyMap<string, string>): boolean;
}

export interface GetMessageResult {
  status: GetMessageStatus;
  messages: StoredMessage[];
  /** Where the next read of this queue should start. */
  nextBeginOffset: number;
  minOffset: number;
  maxOffset: number;
}
