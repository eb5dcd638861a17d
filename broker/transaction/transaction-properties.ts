// Names transactional messages use: the message properties (upstream MessageConst), the system group
// whose offsets record how far the half and op queues are processed, and the op record's tag.

export const TransactionProperty = {
  /** "true" on a message the producer sends as the first half of a transaction. */
  TRANSACTION_PREPARED: "TRAN_MSG",
  /** The producer group that sent the half message and answers its checks. */
  PRODUCER_GROUP: "PGROUP",
  /** On a half message: the topic the message goes to once committed. */
  REAL_TOPIC: "REAL_TOPIC",
  /** On a half message: the queue the message goes to once committed. */
  REAL_QUEUE_ID: "REAL_QID",
  /** Producer-chosen seconds before the first check (gRPC orphaned_transaction_recovery_duration). */
  CHECK_IMMUNITY_TIME_IN_SECONDS: "CHECK_IMMUNITY_TIME_IN_SECONDS",
  /** On a re-appended half message: how many checks were sent for the transaction so far. */
  TRANSACTION_CHECK_TIMES: "TRANSACTION_CHECK_TIMES",
  /** On a re-appended half message: the half queue offset of the transaction's first half record. */
  TRANSACTION_PREPARED_QUEUE_OFFSET: "TRAN_PREPARED_QUEUE_OFFSET",
  /**
   * Ours (upstream has no such property): on a re-appended half message, the CommitLog offset of the
   * transaction's first half record, so a check can quote the transaction id the send returned.
   */
  TRANSACTION_PREPARED_COMMITLOG_OFFSET: "TRAN_PREPARED_COMMITLOG_OFFSET",
} as const;

/** Consumer group whose offsets say how far the half and op queues are processed (upstream MixAll.CID_SYS_RMQ_TRANS). */
export const TRANSACTION_SYS_GROUP = "CID_RMQ_SYS_TRANS";
/** The one queue of the half topic; the op queue has the same id (upstream: op queue id = half queue id). */
export const HALF_QUEUE_ID = 0;
/** Queues of the half and op topics (upstream: 1 each). */
export const HALF_QUEUE_NUMS = 1;
/** Queues of TRANS_CHECK_MAX_TIME_TOPIC (upstream TCMT_QUEUE_NUMS, 1). */
export const CHECK_MAX_TIME_QUEUE_NUMS = 1;
/** Tag of an op record that removes half messages (upstream TransactionalMessageUtil.REMOVE_TAG). */
export const OP_REMOVE_TAG = "d";
