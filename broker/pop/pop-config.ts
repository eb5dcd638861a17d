// Settings of pop consumption: upstream BrokerConfig key names where upstream has one, our own
// (marked) where upstream keeps no bound. Every limit that keeps memory or work bounded is here.

/** Most messages one pop returns (upstream proxy caps batch_size at 32). */
export const MAX_POP_BATCH_SIZE = 32;
/** Longest invisible time a pop or changeInvisibleTime may ask for (upstream proxy maxInvisibleTimeMills, 12 h). */
export const MAX_INVISIBLE_TIME_MS = 12 * 60 * 60 * 1000;
/** Longest time one pop may be held waiting for a message (ours; the proxy clamps to 20 s before us). */
export const MAX_POLL_TIMEOUT_MS = 5 * 60 * 1000;

export interface PopConfig {
  /** Percent of pops that read the group's retry topic before the topic itself (upstream popFromRetryProbability, 20). */
  popFromRetryProbability: number;
  /** How often the revive timer looks for messages whose invisible time ran out (upstream reviveInterval, 1000 ms). */
  reviveIntervalMs: number;
  /** Due messages revived (re-read, written to retry/DLQ) per store batch (ours; upstream revives one by one). */
  reviveBatchSize: number;
  /**
   * Popped, un-acked messages kept in memory; a pop that would exceed it is refused with
   * TOO_MANY_REQUESTS until acks or revives make room (ours; upstream keeps no bound).
   */
  maxInflightMessages: number;
  /** Long polls held at once per topic@group (upstream popPollingSize, 1024). */
  popPollingSize: number;
  /** Long polls held at once in total (upstream maxPopPollingSize, 100000). */
  maxPopPollingSize: number;
  /**
   * Bytes one pop reads from the store per queue; at least one message is always returned
   * (upstream maxTransferBytesOnMessageInMemory, 256 KiB; ours is larger so 32 × 64 KiB fit one pop).
   */
  popMaxTransferBytes: number;
  /** Acked receipt handles remembered so a repeated ack answers OK (ours; upstream re-writes an ack record). */
  recentlyAckedLimit: number;
  /** SQL92 filters are accepted (upstream BrokerConfig enablePropertyFilter, false). */
  enablePropertyFilter: boolean;
}

export function defaultPopConfig(): PopConfig {
  return {
    popFromRetryProbability: 20,
    reviveIntervalMs: 1000,
    reviveBatchSize: 256,
    maxInflightMessages: 200_000,
    popPollingSize: 1024,
    maxPopPollingSize: 100_000,
    popMaxTransferBytes: 4 * 1024 * 1024,
    recentlyAckedLimit: 65_536,
    enablePropertyFilter: false,
  };
}
