// Message property names pop consumption reads and writes (upstream MessageConst).

export const PopProperty = {
  TAGS: "TAGS",
  KEYS: "KEYS",
  UNIQ_KEY: "UNIQ_KEY",
  /** On a retried message: the topic it was first sent to. */
  RETRY_TOPIC: "RETRY_TOPIC",
  /** On a retried or dead-lettered message: the msgId of the record it was copied from, kept from the first copy on. */
  ORIGIN_MESSAGE_ID: "ORIGIN_MESSAGE_ID",
  /** On a revived message: when it was first popped (epoch ms). */
  FIRST_POP_TIME: "1ST_POP_TIME",
  /** On a message in a DLQ topic: the topic it came from. */
  DLQ_ORIGIN_TOPIC: "DLQ_ORIGIN_TOPIC",
  /** On a message in a DLQ topic: its client message id (UNIQ_KEY) there. */
  DLQ_ORIGIN_MESSAGE_ID: "DLQ_ORIGIN_MESSAGE_ID",
} as const;
