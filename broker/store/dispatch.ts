// What the CommitLog dispatcher hands to each index it feeds (ConsumeQueue, Index, later timer/tx).
// Built once per record while scanning the CommitLog, so recovery can rebuild every index from it.

export interface DispatchRequest {
  topic: string;
  queueId: number;
  /** Logical offset of this message in its ConsumeQueue. */
  queueOffset: number;
  /** Physical offset of the record in the CommitLog. */
  commitLogOffset: number;
  /** Whole record size in bytes. */
  size: number;
  /** Java String.hashCode() of the TAGS property (0 when no tag); stored as an 8-byte long in the ConsumeQueue. */
  tagsCode: number;
  storeTimestamp: number;
  bornTimestamp: number;
  sysFlag: number;
  /** Property KEYS, space-separated keys as the producer set them (may be undefined). */
  keys: string | undefined;
  /** Property UNIQ_KEY: the client message id (may be undefined). */
  uniqKey: string | undefined;
  /** Prepared-transaction offset (0 when not a transaction record). */
  preparedTransactionOffset: number;
  /** All properties of the message, decoded. */
  properties: ReadonlyMap<string, string>;
}

/** Something fed by the dispatcher. `dispatch` is synchronous; writes are buffered and flushed separately. */
export interface Dispatcher {
  dispatch(req: DispatchRequest): void;
}
