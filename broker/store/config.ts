// The store's settings, named as upstream's MessageStoreConfig keys so a broker.conf binds to them
// directly. Defaults are upstream's unless the comment says otherwise.

export const FlushDiskType = { ASYNC_FLUSH: "ASYNC_FLUSH", SYNC_FLUSH: "SYNC_FLUSH" } as const;
export type FlushDiskType = (typeof FlushDiskType)[keyof typeof FlushDiskType];

export const BrokerRole = {
  ASYNC_MASTER: "ASYNC_MASTER",
  SYNC_MASTER: "SYNC_MASTER",
  SLAVE: "SLAVE",
} as const;
export type BrokerRole = (typeof BrokerRole)[keyof typeof BrokerRole];

/**
 * When the store moves work off the thread that accepts puts (not an upstream key: a MessageStoreOptions
 * setting): the CommitLog writer thread (sealing and writing ASYNC_FLUSH batches) and the Index thread.
 * AUTO starts the writer with the first large batch and gives a large Index (production-sized hash
 * table) its thread at open, so a quiet or small store (most tests) never pays for a thread's start-up
 * (tens of MiB and ~100 ms); ALWAYS starts both at open; NEVER keeps everything on one thread.
 */
export const HelperThreads = { AUTO: "auto", ALWAYS: "always", NEVER: "never" } as const;
/**
 * Cores below which the default is NEVER instead of AUTO. Measured on a 2-core box with `rmq local`
 * (`npm run bench:proxy`): with the writer thread the process spent ~123 µs CPU per SendMessage and
 * 51 µs per consumed message, without it 89 and 46 — the hand-off costs more than it saves when the
 * proxy, the broker and the threads share two cores.
 */
export const MIN_CORES_FOR_HELPER_THREADS = 4;
export type HelperThreads = (typeof HelperThreads)[keyof typeof HelperThreads];

export interface MessageStoreConfig {
  /** Root of everything the store writes (upstream default ~/store). */
  storePathRootDir: string;
  /** CommitLog directory; default `${storePathRootDir}/commitlog`. */
  storePathCommitLog: string;
  /** CommitLog segment size in bytes (upstream key spelling `mappedFileSizeCommitLog`; 1 GiB). */
  mappedFileSizeCommitLog: number;
  /** ConsumeQueue segment size: 300000 units x 20 bytes. */
  mappedFileSizeConsumeQueue: number;
  flushDiskType: FlushDiskType;
  brokerRole: BrokerRole;
  /** ASYNC_FLUSH: fsync period of the CommitLog (500 ms). */
  flushIntervalCommitLog: number;
  /** ASYNC_FLUSH: fsync only when this many 4 KiB pages are dirty (4). */
  flushCommitLogLeastPages: number;
  /** ASYNC_FLUSH: force a full fsync at least this often (10 s). */
  flushCommitLogThoroughInterval: number;
  /** ConsumeQueue flush period (1000 ms). */
  flushIntervalConsumeQueue: number;
  /** ConsumeQueue: fsync only when this many 4 KiB pages are dirty (2). */
  flushConsumeQueueLeastPages: number;
  /** ConsumeQueue: force a full fsync (and a checkpoint) at least this often (60 s). */
  flushConsumeQueueThoroughInterval: number;
  /** SYNC_FLUSH: an append fails with FLUSH_DISK_TIMEOUT after this long (5000 ms). */
  syncFlushTimeout: number;
  /** Largest message body accepted (4 MiB). */
  maxMessageSize: number;
  /**
   * Messages within this share (percent) of physical memory from the CommitLog's end are taken to be
   * in the page cache (40): the store reads them on the calling thread instead of the thread pool.
   */
  accessMessageInMemoryMaxRatio: number;
  /** Verify record CRCs while recovering (true). */
  checkCRCOnRecover: boolean;
  messageIndexEnable: boolean;
  /** Index file: hash slots per file (5,000,000). */
  maxHashSlotNum: number;
  /** Index file: entries per file (20,000,000). */
  maxIndexNum: number;
  /** Retention: hours a CommitLog file is kept (72). */
  fileReservedTime: number;
  /** Retention: hours of day when expired files are deleted, `;`-separated ("04"). */
  deleteWhen: string;
  /** Retention: disk usage (percent) above which old files are deleted regardless of time (75). */
  diskMaxUsedSpaceRatio: number;
  /** Retention: disk usage (percent) above which cleaning is forced even for unexpired files (85). */
  diskSpaceCleanForciblyRatio: number;
  /** Retention: disk usage (percent) above which the store refuses writes (90). */
  diskSpaceWarningLevelRatio: number;
  /** Retention check period (10000 ms). */
  cleanResourceInterval: number;
  /** Files deleted per retention run (10). */
  deleteFileBatchMax: number;
}

export function defaultMessageStoreConfig(storePathRootDir: string): MessageStoreConfig {
  return {
    storePathRootDir,
    storePathCommitLog: `${storePathRootDir}/commitlog`,
    mappedFileSizeCommitLog: 1024 * 1024 * 1024,
    mappedFileSizeConsumeQueue: 300_000 * 20,
    flushDiskType: FlushDiskType.ASYNC_FLUSH,
    brokerRole: BrokerRole.ASYNC_MASTER,
    flushIntervalCommitLog: 500,
    flushCommitLogLeastPages: 4,
    flushCommitLogThoroughInterval: 10_000,
    flushIntervalConsumeQueue: 1000,
    flushConsumeQueueLeastPages: 2,
    flushConsumeQueueThoroughInterval: 60_000,
    syncFlushTimeout: 5000,
    maxMessageSize: 4 * 1024 * 1024,
    accessMessageInMemoryMaxRatio: 40,
    checkCRCOnRecover: true,
    messageIndexEnable: true,
    maxHashSlotNum: 5_000_000,
    maxIndexNum: 20_000_000,
    fileReservedTime: 72,
    deleteWhen: "04",
    diskMaxUsedSpaceRatio: 75,
    diskSpaceCleanForciblyRatio: 85,
    diskSpaceWarningLevelRatio: 90,
    cleanResourceInterval: 10_000,
    deleteFileBatchMax: 10,
  };
}
