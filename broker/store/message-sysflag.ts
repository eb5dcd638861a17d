// SYSFLAG bits of a CommitLog record, as upstream's MessageSysFlag defines them.

export const MessageSysFlag = {
  COMPRESSED_FLAG: 0x1,
  MULTI_TAGS_FLAG: 0x2,
  TRANSACTION_NOT_TYPE: 0,
  TRANSACTION_PREPARED_TYPE: 0x4,
  TRANSACTION_COMMIT_TYPE: 0x8,
  TRANSACTION_ROLLBACK_TYPE: 0xc,
  BORNHOST_V6_FLAG: 0x10,
  STOREHOSTADDRESS_V6_FLAG: 0x20,
  NEED_UNWRAP_FLAG: 0x40,
  INNER_BATCH_FLAG: 0x80,
} as const;

/** The transaction type bits (2-3) of a sysFlag. */
export function transactionType(sysFlag: number): number {
  return sysFlag & 0xc;
}

/** PREPARED (half) and ROLLBACK records take no ConsumeQueue slot; their QUEUEOFFSET is 0. */
export function takesQueueSlot(sysFlag: number): boolean {
  const t = sysFlag & 0xc;
  return t === MessageSysFlag.TRANSACTION_NOT_TYPE || t === MessageSysFlag.TRANSACTION_COMMIT_TYPE;
}
