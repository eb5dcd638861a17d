// What the CommitLog dispatcher hands to each index it feeds (ConsumeQueue, Index, later timer/tx).
// The live path builds it from the fields the append already has (put-record.ts); recovery builds it
// from the record bytes (message-codec.ts viewToDispatchRequest). Both feed the same Dispatcher code,
// so recovery rebuilds exactly what the live path built.

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
  /** SYSFLAG as stored in the record (host-v6 bits included). */
  sysFlag: number;
  /** Property KEYS, space-separated keys as the producer set them (may be undefined). */
  keys: string | undefined;
  /** Property UNIQ_KEY: the client message id (may be undefined). */
  uniqKey: string | undefined;
  /** Prepared-transaction offset (0 when not a transaction record). */
  preparedTransactionOffset: number;
  /** All properties of the message, decoded (the live path decodes them only when this is read). */
  readonly properties: ReadonlyMap<string, string>;
}

/** Something fed by the dispatcher. Dispatch is synchronous; writes are buffered and flushed separately. */
export interface Dispatcher {
  dispatch(req: DispatchRequest): void;
  /** Several records in CommitLog order, as one call (same effect as dispatch on each, in order). */
  dispatchBatch?(reqs: readonly DispatchRequest[]): void;
}
