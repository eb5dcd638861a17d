// The store facade (upstream DefaultMessageStore): lock -> load -> recover -> start services, then puts,
// reads, replication, retention and shutdown over the CommitLog, ConsumeQueues and Index.
import * as fs from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import { abortFileExists, createAbortFile, removeAbortFile } from "./abort-file.ts";
import { type CleanReport, CleanService, statfsUsedPercent } from "./clean-service.ts";
import { AppendOutcome, CommitLog, type RawChunk } from "./commitlog.ts";
import { CommitLogDispatcher } from "./commitlog-dispatcher.ts";
import {
  BrokerRole,
  FlushDiskType,
  HelperThreads,
  type MessageStoreConfig,
  MIN_CORES_FOR_HELPER_THREADS,
} from "./config.ts";
import { CQ_STORE_UNIT_SIZE, isBlankUnit, unitOffset, unitSize, unitTagsCode } from "./consume-queue.ts";
import { ConsumeQueueStore } from "./consume-queue-store.ts";
import type { Dispatcher } from "./dispatch.ts";
import { type HostAddress, ipToBytes } from "./host-address.ts";
import { type IndexService, openIndexService } from "./index/index-service.ts";
import { ThreadedIndexService } from "./index/threaded-index-service.ts";
import { type StoredMessage, viewToMessage, viewTopic } from "./message-codec.ts";
import { MessageConst } from "./message-const.ts";
import { OffsetMsgIdEncoder } from "./message-id.ts";
import {
  type GetMessageResult,
  GetMessageStatus,
  type MessageFilter,
  type MessageInput,
  type PutMessageResult,
  PutMessageStatus,
} from "./message-store-types.ts";
import { takesQueueSlot } from "./message-sysflag.ts";
import { type PutContext, prepareMessage } from "./put-message-prepare.ts";
import type { PutRecord } from "./put-record.ts";
import { type RecoveryReport, recoverStore } from "./recovery.ts";
import { StoreCheckpoint } from "./store-checkpoint.ts";
import { type FileIo, nodeFileIo } from "./store-io.ts";
import { acquireStoreLock, type StoreLock } from "./store-lock.ts";

/** Units scanned per getMessage when a filter skips messages (upstream maxFilterMessageSize). */
const MAX_FILTER_SCAN_UNITS = 16000;
/** Units fetched per round while filtering. */
const FILTER_FETCH_UNITS = 512;
/** Candidate offsets asked from the Index per key query when re-checking for the unique key. */
const UNIQ_KEY_QUERY_MAX = 32;
const OS_PAGE_SIZE = 4096;
/** Smallest segment sizes accepted (tests use small ones; production uses the defaults). */
const MIN_COMMITLOG_FILE_SIZE = 4096;
const MIN_CONSUME_QUEUE_FILE_SIZE = 16 * CQ_STORE_UNIT_SIZE;

export type IndexServiceFactory = (opts: {
  dir: string;
  maxHashSlotNum: number;
  maxIndexNum: number;
  logger?: Logger;
}) => Promise<IndexService>;

export interface MessageStoreOptions {
  /** Address written as STOREHOST and used in offset msgIds. */
  storeHost: HostAddress;
  logger?: Logger;
  /** Wall clock (ms): store timestamps, retention ages and hours. */
  clock?: () => number;
  /** Disk usage probe (percent used of the file system holding `path`); statfs by default. */
  diskUsedPercent?: (path: string) => Promise<number>;
  /** Positional IO used by the hot paths (tests wrap it to count or fail calls). */
  fileIo?: FileIo;
  /** How the key Index is created when messageIndexEnable is on (default: as helperThreads says). */
  createIndexService?: IndexServiceFactory;
  /** When the CommitLog writer and the Index get threads of their own (default AUTO: once busy). */
  helperThreads?: HelperThreads;
}

/**
 * HelperThreads.AUTO: an Index with at least this many hash slots (a 4 MiB slot table, beyond the CPU
 * caches: each key costs a cache miss, and every flush rewrites the table) gets a thread of its own.
 * Smaller ones (tests, small brokers) stay in place and never pay for the thread's start-up.
 */
const INDEX_THREAD_MIN_HASH_SLOTS = 1_000_000;

function indexFactory(mode: HelperThreads, maxHashSlotNum: number): IndexServiceFactory {
  const threaded =
    mode === HelperThreads.ALWAYS ||
    (mode === HelperThreads.AUTO && maxHashSlotNum >= INDEX_THREAD_MIN_HASH_SLOTS);
  return threaded ? (o) => ThreadedIndexService.open(o) : (o) => openIndexService(o);
}

export interface MessageStore {
  readonly config: MessageStoreConfig;
  readonly recoveryReport: RecoveryReport;
  putMessage(msg: MessageInput): Promise<PutMessageResult>;
  /** Many messages in one append batch (one write); all validated before any is appended. */
  putMessages(msgs: readonly MessageInput[]): Promise<PutMessageResult[]>;
  getMessage(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
    maxBytes?: number,
    filter?: MessageFilter,
  ): Promise<GetMessageResult>;
  /** The record at a CommitLog offset (confirmed records only; damaged ones are not returned). */
  lookMessageByOffset(commitLogOffset: number): Promise<StoredMessage | undefined>;
  /** Messages whose KEYS (or UNIQ_KEY) hold `key`, newest first, via the Index. */
  queryMessageByKey(
    topic: string,
    key: string,
    maxNum: number,
    begin: number,
    end: number,
  ): Promise<StoredMessage[]>;
  queryMessageByUniqKey(topic: string, uniqKey: string): Promise<StoredMessage | undefined>;
  getMinOffsetInQueue(topic: string, queueId: number): number;
  /** Next logical offset of the queue (one past the last visible message). */
  getMaxOffsetInQueue(topic: string, queueId: number): number;
  /** True when `topic`/`queueId` has a ConsumeQueue (it has held a message). */
  hasConsumeQueue(topic: string, queueId: number): boolean;
  /** ConsumeQueues of `%LMQ%` topics (lite topics). */
  lmqConsumeQueueCount(): number;
  getMinPhyOffset(): number;
  /** End of the CommitLog bytes written to the files. */
  getMaxPhyOffset(): number;
  /** End of the confirmed (visible, dispatched) records. */
  getConfirmOffset(): number;
  /** Replication: whole records from a record boundary. */
  readRaw(phyOffset: number, maxBytes: number): Promise<RawChunk>;
  /** Replication: appends verified records that start at the current end; resolves when durable per flush mode. */
  appendRaw(phyOffset: number, bytes: Uint8Array): Promise<{ nextOffset: number }>;
  /** Cuts the CommitLog, ConsumeQueues and Index back to a record boundary. */
  truncate(phyOffset: number): Promise<void>;
  /** Registers another index fed by the dispatcher from now on (timer, transactions). */
  addDispatcher(d: Dispatcher): void;
  /** Writes and syncs everything (CommitLog, ConsumeQueues, Index, checkpoint). */
  flush(): Promise<void>;
  /** One retention pass now (ignores deleteWhen, still honours fileReservedTime unless the disk is full). */
  cleanNow(): Promise<CleanReport>;
  /** Writes are refused (disk above the warning ratio, a failed write, a replica, shutting down). */
  isWritable(): boolean;
  shutdown(): Promise<void>;
}

function validateConfig(c: MessageStoreConfig): void {
  const bad = (key: string, why: string): never => {
    throw new RmqError(ErrorCode.IllegalConfig, `${key}: ${why}`);
  };
  if (c.storePathCommitLog.includes(","))
    bad("storePathCommitLog", "several CommitLog paths are not supported; give one directory");
  if (
    !Number.isSafeInteger(c.mappedFileSizeCommitLog) ||
    c.mappedFileSizeCommitLog < MIN_COMMITLOG_FILE_SIZE
  ) {
    bad("mappedFileSizeCommitLog", `must be an integer >= ${MIN_COMMITLOG_FILE_SIZE}`);
  }
  if (
    !Number.isSafeInteger(c.mappedFileSizeConsumeQueue) ||
    c.mappedFileSizeConsumeQueue < MIN_CONSUME_QUEUE_FILE_SIZE ||
    c.mappedFileSizeConsumeQueue % CQ_STORE_UNIT_SIZE !== 0
  ) {
    bad(
      "mappedFileSizeConsumeQueue",
      `must be a multiple of ${CQ_STORE_UNIT_SIZE} and >= ${MIN_CONSUME_QUEUE_FILE_SIZE}`,
    );
  }
  if (!(c.maxMessageSize > 0)) bad("maxMessageSize", "must be > 0");
  if (c.flushDiskType !== FlushDiskType.ASYNC_FLUSH && c.flushDiskType !== FlushDiskType.SYNC_FLUSH) {
    bad("flushDiskType", "allowed values: ASYNC_FLUSH, SYNC_FLUSH");
  }
  for (const k of [
    "flushIntervalCommitLog",
    "flushIntervalConsumeQueue",
    "syncFlushTimeout",
    "cleanResourceInterval",
  ] as const) {
    if (!(c[k] > 0)) bad(k, "must be > 0");
  }
}

export async function createMessageStore(
  config: MessageStoreConfig,
  opts: MessageStoreOptions,
): Promise<MessageStore> {
  validateConfig(config);
  const logger = opts.logger ?? silentLogger();
  const clock = opts.clock ?? Date.now;
  const io = opts.fileIo ?? nodeFileIo;
  const helperThreads =
    opts.helperThreads ??
    (availableParallelism() >= MIN_CORES_FOR_HELPER_THREADS ? HelperThreads.AUTO : HelperThreads.NEVER);
  const root = config.storePathRootDir;
  await fs.promises.mkdir(root, { recursive: true });
  const lock = await acquireStoreLock(root);
  const cleanups: Array<() => Promise<void>> = [() => lock.release()];
  try {
    // The Index opens (its thread starts) while the rest loads.
    let indexOpening: Promise<IndexService> | undefined;
    if (config.messageIndexEnable) {
      const factory = opts.createIndexService ?? indexFactory(helperThreads, config.maxHashSlotNum);
      const opening = factory({
        dir: join(root, "index"),
        maxHashSlotNum: config.maxHashSlotNum,
        maxIndexNum: config.maxIndexNum,
        logger,
      });
      opening.catch(() => {}); // awaited below; a failure before that is handled by the cleanup
      cleanups.push(async () => (await opening).close());
      indexOpening = opening;
    }
    const cleanShutdown = !abortFileExists(root);
    const { checkpoint, state: checkpointState } = await StoreCheckpoint.open(join(root, "checkpoint"), io);
    cleanups.push(() => checkpoint.close());
    let dispatcher: CommitLogDispatcher | undefined;
    const { commitLog, ignored } = await CommitLog.open({
      dir: config.storePathCommitLog,
      fileSize: config.mappedFileSizeCommitLog,
      flushDiskType: config.flushDiskType,
      syncFlushTimeout: config.syncFlushTimeout,
      flushIntervalCommitLog: config.flushIntervalCommitLog,
      flushCommitLogLeastPages: config.flushCommitLogLeastPages,
      flushCommitLogThoroughInterval: config.flushCommitLogThoroughInterval,
      io,
      writerThread: helperThreads,
      hotReadBytes: Math.floor((totalmem() * config.accessMessageInMemoryMaxRatio) / 100),
      logger,
      clock,
      onConfirmed: (records, end) => dispatcher?.dispatchBatch(records, end),
    });
    cleanups.push(() => commitLog.abandon());
    const consumeQueues = await ConsumeQueueStore.load(
      join(root, "consumequeue"),
      config.mappedFileSizeConsumeQueue,
      io,
      logger,
    );
    cleanups.push(() => consumeQueues.close());
    const index = await indexOpening;
    dispatcher = new CommitLogDispatcher(consumeQueues, index);
    const report = await recoverStore({
      commitLog,
      consumeQueues,
      dispatcher,
      index,
      checkpoint: checkpoint.data,
      checkpointState,
      cleanShutdown,
      checkCRCOnRecover: config.checkCRCOnRecover,
      ignoredFiles: ignored,
      io,
      logger,
      clock,
    });
    const store = new DefaultMessageStore({
      config,
      opts,
      logger,
      clock,
      io,
      lock,
      checkpoint,
      commitLog,
      consumeQueues,
      index,
      dispatcher,
      report,
    });
    await store.start();
    return store;
  } catch (e) {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    throw e;
  }
}

interface StoreParts {
  config: MessageStoreConfig;
  opts: MessageStoreOptions;
  logger: Logger;
  clock: () => number;
  io: FileIo;
  lock: StoreLock;
  checkpoint: StoreCheckpoint;
  commitLog: CommitLog;
  consumeQueues: ConsumeQueueStore;
  index: IndexService | undefined;
  dispatcher: CommitLogDispatcher;
  report: RecoveryReport;
}

class DefaultMessageStore implements MessageStore {
  readonly config: MessageStoreConfig;
  readonly recoveryReport: RecoveryReport;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly io: FileIo;
  private readonly lock: StoreLock;
  private readonly checkpoint: StoreCheckpoint;
  private readonly commitLog: CommitLog;
  private readonly consumeQueues: ConsumeQueueStore;
  private readonly index: IndexService | undefined;
  private readonly dispatcher: CommitLogDispatcher;
  private readonly cleanService: CleanService;
  private readonly putContext: PutContext;
  /** Next queue offset per topic and queue id (upstream topicQueueTable). */
  private readonly topicQueueTable = new Map<string, Map<number, number>>();
  private diskFull = false;
  private truncating = false;
  private shuttingDown = false;
  private closed = false;
  private cqFlushTimer: NodeJS.Timeout | undefined;
  private lastCqThoroughFlush = 0;
  private maintenance: Promise<unknown> = Promise.resolve();

  constructor(p: StoreParts) {
    this.config = p.config;
    this.recoveryReport = p.report;
    this.logger = p.logger;
    this.clock = p.clock;
    this.io = p.io;
    this.lock = p.lock;
    this.checkpoint = p.checkpoint;
    this.commitLog = p.commitLog;
    this.consumeQueues = p.consumeQueues;
    this.index = p.index;
    this.dispatcher = p.dispatcher;
    this.putContext = {
      maxMessageSize: p.config.maxMessageSize,
      maxRecordSize: p.commitLog.maxRecordSize,
      storeHost: ipToBytes(p.opts.storeHost.address),
      storePort: p.opts.storeHost.port,
      msgIds: new OffsetMsgIdEncoder(p.opts.storeHost),
    };
    this.cleanService = new CleanService({
      config: p.config,
      commitLog: p.commitLog,
      consumeQueues: p.consumeQueues,
      index: p.index,
      clock: p.clock,
      diskUsedPercent: p.opts.diskUsedPercent ?? statfsUsedPercent,
      safeDeleteOffset: () => Math.min(this.commitLog.flushedOffset, this.dispatcher.dispatchedOffset),
      onDiskFull: (full) => {
        this.diskFull = full;
      },
      logger: p.logger,
    });
    this.rebuildTopicQueueTable();
  }

  private rebuildTopicQueueTable(): void {
    this.topicQueueTable.clear();
    for (const cq of this.consumeQueues.all()) this.queueOffsets(cq.topic).set(cq.queueId, cq.maxLogicOffset);
  }

  private queueOffsets(topic: string): Map<number, number> {
    let m = this.topicQueueTable.get(topic);
    if (m === undefined) {
      m = new Map();
      this.topicQueueTable.set(topic, m);
    }
    return m;
  }

  /** Makes the recovered state durable, marks the run as started, starts the background services. */
  async start(): Promise<void> {
    await this.flushConsumeQueues(true);
    await createAbortFile(this.config.storePathRootDir, this.io);
    this.commitLog.startFlusher();
    this.lastCqThoroughFlush = this.clock();
    this.cqFlushTimer = setInterval(() => {
      void this.flushConsumeQueues(false).catch((err: unknown) =>
        this.logger.error({ err }, "ConsumeQueue flush failed"),
      );
    }, this.config.flushIntervalConsumeQueue);
    this.cqFlushTimer.unref();
    this.cleanService.start();
  }

  /** Serialises CommitLog truncation with the ConsumeQueue flush + checkpoint sequence. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.maintenance.then(fn, fn);
    this.maintenance = p.catch(() => {});
    return p;
  }

  /**
   * Writes buffered ConsumeQueue units; when enough is dirty (or `force`, or the thorough interval
   * passed) syncs them (and, on the thorough pass, the Index), then records in the checkpoint how far
   * everything is durable.
   */
  private flushConsumeQueues(force: boolean): Promise<void> {
    return this.exclusive(async () => {
      const dispatched = this.dispatcher.dispatchedOffset;
      const dispatchedTs = this.dispatcher.lastStoreTimestamp;
      await this.consumeQueues.writeAll();
      const now = this.clock();
      const thorough =
        force || now - this.lastCqThoroughFlush >= this.config.flushConsumeQueueThoroughInterval;
      if (!thorough && this.consumeQueues.dirtyBytes < this.config.flushConsumeQueueLeastPages * OS_PAGE_SIZE)
        return;
      if (thorough) this.lastCqThoroughFlush = now;
      await this.consumeQueues.syncAll();
      // The Index (fully rewritten slot pages under random keys: tens of MiB) is flushed on the
      // thorough interval, under memory pressure (index-service.ts) and at shutdown, not every pass;
      // after a crash, recovery re-indexes from its own durable point.
      if (this.index !== undefined && thorough) await this.index.flush();
      const d = this.checkpoint.data;
      d.dispatchedPhyOffset = dispatched;
      d.logicsMsgTimestamp = dispatchedTs;
      if (this.index !== undefined && thorough) d.indexMsgTimestamp = dispatchedTs;
      d.commitLogFlushedOffset = this.commitLog.flushedOffset;
      d.physicMsgTimestamp = this.commitLog.flushedStoreTimestamp;
      d.confirmPhyOffset = this.commitLog.confirmOffset;
      await this.checkpoint.flush();
    });
  }

  // ---------------------------------------------------------------- puts

  isWritable(): boolean {
    return (
      !this.shuttingDown &&
      !this.truncating &&
      !this.diskFull &&
      this.commitLog.failed === undefined &&
      this.config.brokerRole !== BrokerRole.SLAVE
    );
  }

  private checkWritable(replica: boolean): void {
    if (this.shuttingDown) throw new RmqError(ErrorCode.StoreShutdown, "store is shut down");
    if (this.truncating) throw new RmqError(ErrorCode.StoreNotWritable, "store is truncating");
    if (this.diskFull)
      throw new RmqError(ErrorCode.StoreDiskFull, "disk usage above diskSpaceWarningLevelRatio");
    if (this.commitLog.failed !== undefined) {
      throw new RmqError(ErrorCode.StoreNotWritable, `store failed: ${this.commitLog.failed.message}`);
    }
    if (!replica && this.config.brokerRole === BrokerRole.SLAVE) {
      throw new RmqError(ErrorCode.StoreNotWritable, "a SLAVE store only takes replicated records");
    }
  }

  /** Synchronous: assigns the queue offset and appends the record (stored at `now`) to the pending batch. */
  private append(r: PutRecord, now: number): void {
    const slot = takesQueueSlot(r.sysFlag);
    let offsets: Map<number, number> | undefined;
    if (slot) {
      offsets = this.queueOffsets(r.topic);
      r.queueOffset = offsets.get(r.queueId) ?? 0;
    }
    this.commitLog.appendRecord(r, now);
    if (offsets !== undefined) offsets.set(r.queueId, r.queueOffset + 1);
  }

  putMessage(msg: MessageInput): Promise<PutMessageResult> {
    let r: PutRecord;
    try {
      this.checkWritable(false);
      const now = this.clock();
      r = prepareMessage(msg, this.putContext, now);
      this.append(r, now);
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      r.resolve = resolve;
      r.reject = reject;
      this.commitLog.addWaiter(r);
    });
  }

  putMessages(msgs: readonly MessageInput[]): Promise<PutMessageResult[]> {
    let records: PutRecord[];
    let waitFlush = false;
    try {
      this.checkWritable(false);
      const now = this.clock();
      records = msgs.map((m) => prepareMessage(m, this.putContext, now));
      for (const r of records) {
        if (r.waitFlush) waitFlush = true;
        this.append(r, now);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (records.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.commitLog.addWaiter({
        waitFlush,
        complete(outcome) {
          const status =
            outcome === AppendOutcome.FLUSH_TIMEOUT
              ? PutMessageStatus.FLUSH_DISK_TIMEOUT
              : PutMessageStatus.PUT_OK;
          resolve(records.map((r) => r.result(status)));
        },
        fail: reject,
      });
    });
  }

  // ---------------------------------------------------------------- reads

  getMinOffsetInQueue(topic: string, queueId: number): number {
    return this.consumeQueues.find(topic, queueId)?.minLogicOffset ?? 0;
  }

  getMaxOffsetInQueue(topic: string, queueId: number): number {
    return this.consumeQueues.find(topic, queueId)?.maxLogicOffset ?? 0;
  }

  hasConsumeQueue(topic: string, queueId: number): boolean {
    return this.consumeQueues.find(topic, queueId) !== undefined;
  }

  lmqConsumeQueueCount(): number {
    return this.consumeQueues.lmqCount;
  }

  getMinPhyOffset(): number {
    return this.commitLog.minOffset;
  }

  getMaxPhyOffset(): number {
    return this.commitLog.writtenOffset;
  }

  getConfirmOffset(): number {
    return this.commitLog.confirmOffset;
  }

  async getMessage(
    topic: string,
    queueId: number,
    offset: number,
    maxCount: number,
    maxBytes: number = Number.POSITIVE_INFINITY,
    filter?: MessageFilter,
  ): Promise<GetMessageResult> {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "store is shut down");
    const cq = this.consumeQueues.find(topic, queueId);
    if (cq === undefined) {
      return {
        status: GetMessageStatus.NO_MATCHED_LOGIC_QUEUE,
        messages: [],
        nextBeginOffset: 0,
        minOffset: 0,
        maxOffset: 0,
      };
    }
    const minOffset = cq.minLogicOffset;
    const maxOffset = cq.maxLogicOffset;
    const result = (
      status: GetMessageStatus,
      nextBeginOffset: number,
      messages: StoredMessage[] = [],
    ): GetMessageResult => ({
      status,
      messages,
      nextBeginOffset,
      minOffset,
      maxOffset,
    });
    if (maxOffset === 0) return result(GetMessageStatus.NO_MESSAGE_IN_QUEUE, 0);
    if (offset === maxOffset) return result(GetMessageStatus.OFFSET_OVERFLOW_ONE, offset);
    if (offset > maxOffset) return result(GetMessageStatus.OFFSET_OVERFLOW_BADLY, maxOffset);
    // Below the minimum, the read moves to the first available message.
    let next = Math.max(offset, minOffset);
    if (next >= maxOffset) return result(GetMessageStatus.OFFSET_TOO_SMALL, maxOffset);

    const messages: StoredMessage[] = [];
    let bytes = 0;
    let scanned = 0;
    let filteredOut = false;
    let missing = false;
    const scanLimit = Math.max(maxCount, MAX_FILTER_SCAN_UNITS);
    const filtering =
      filter?.isMatchedByConsumeQueue !== undefined || filter?.isMatchedByCommitLog !== undefined;
    while (messages.length < maxCount && next < maxOffset && scanned < scanLimit) {
      const want = Math.min(scanLimit - scanned, filtering ? FILTER_FETCH_UNITS : maxCount - messages.length);
      const units = await cq.getUnits(next, want, this.io);
      if (units === undefined) {
        // The ConsumeQueue file went (retention) while we were reading: move on to what is left.
        missing = true;
        if (cq.minLogicOffset <= next) break; // retention is still moving the min: come back later
        next = cq.minLogicOffset;
        continue;
      }
      const count = units.length / CQ_STORE_UNIT_SIZE;
      if (count === 0) break;
      const refs: Array<{ offset: number; size: number; queueOffset: number }> = [];
      let consumed = 0;
      for (let j = 0; j < count; j++) {
        if (messages.length + refs.length >= maxCount) break;
        const size = unitSize(units, j);
        if (isBlankUnit(units, j) || size <= 0) {
          consumed = j + 1;
          continue;
        }
        if (bytes + size > maxBytes && messages.length + refs.length > 0) break;
        consumed = j + 1;
        if (
          filter?.isMatchedByConsumeQueue !== undefined &&
          !filter.isMatchedByConsumeQueue(unitTagsCode(units, j))
        ) {
          filteredOut = true;
          continue;
        }
        refs.push({ offset: unitOffset(units, j), size, queueOffset: next + j });
        bytes += size;
      }
      scanned += consumed;
      const records = await this.commitLog.readRecords(refs);
      for (let i = 0; i < refs.length; i++) {
        const rec = records[i];
        const ref = refs[i] as { offset: number; size: number; queueOffset: number };
        if (rec === undefined) {
          missing = true;
          continue;
        }
        const v = rec.view;
        // The unit must name this very message: a stale unit never serves another record.
        if (v.queueId !== queueId || v.queueOffset !== ref.queueOffset || viewTopic(rec.buf, v) !== topic) {
          this.logger.error(
            { topic, queueId, queueOffset: ref.queueOffset, commitLogOffset: ref.offset },
            "ConsumeQueue unit names another record",
          );
          missing = true;
          continue;
        }
        const m = viewToMessage(rec.buf, v);
        if (filter?.isMatchedByCommitLog !== undefined && !filter.isMatchedByCommitLog(m.properties)) {
          filteredOut = true;
          continue;
        }
        messages.push(m);
      }
      next += consumed;
      // Stopped inside this chunk: the count or byte limit was reached.
      if (consumed < count) break;
    }
    let status: GetMessageStatus;
    if (messages.length > 0) status = GetMessageStatus.FOUND;
    else if (filteredOut) status = GetMessageStatus.NO_MATCHED_MESSAGE;
    else if (missing) status = GetMessageStatus.MESSAGE_WAS_REMOVING;
    else status = GetMessageStatus.OFFSET_FOUND_NULL;
    return result(status, next, messages);
  }

  async lookMessageByOffset(commitLogOffset: number): Promise<StoredMessage | undefined> {
    const rec = await this.commitLog.readRecordAt(commitLogOffset);
    return rec === undefined ? undefined : viewToMessage(rec.buf, rec.view);
  }

  async queryMessageByKey(
    topic: string,
    key: string,
    maxNum: number,
    begin: number,
    end: number,
  ): Promise<StoredMessage[]> {
    if (this.index === undefined) return [];
    const offsets = [...new Set(await this.index.query(topic, key, maxNum, begin, end))];
    const found = await Promise.all(offsets.map((o) => this.lookMessageByOffset(o)));
    const out: StoredMessage[] = [];
    for (const m of found) {
      if (m === undefined || m.topic !== topic || m.storeTimestamp < begin || m.storeTimestamp > end)
        continue;
      // The Index holds hashes: re-check the real key (collisions, entries of records cut away).
      const keys = m.properties.get(MessageConst.PROPERTY_KEYS);
      const hasKey = keys?.split(MessageConst.KEY_SEPARATOR).includes(key) === true;
      if (!hasKey && m.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) !== key) continue;
      out.push(m);
      if (out.length >= maxNum) break;
    }
    return out;
  }

  async queryMessageByUniqKey(topic: string, uniqKey: string): Promise<StoredMessage | undefined> {
    if (this.index === undefined) return undefined;
    const offsets = await this.index.query(topic, uniqKey, UNIQ_KEY_QUERY_MAX, 0, Number.MAX_SAFE_INTEGER);
    for (const o of offsets) {
      const m = await this.lookMessageByOffset(o);
      if (
        m !== undefined &&
        m.topic === topic &&
        m.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) === uniqKey
      )
        return m;
    }
    return undefined;
  }

  // ---------------------------------------------------------------- replication

  readRaw(phyOffset: number, maxBytes: number): Promise<RawChunk> {
    return this.commitLog.readRaw(phyOffset, maxBytes);
  }

  appendRaw(phyOffset: number, bytes: Uint8Array): Promise<{ nextOffset: number }> {
    try {
      this.checkWritable(true);
      const data = Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const views = this.commitLog.appendRaw(phyOffset, data);
      for (const v of views) {
        if (!takesQueueSlot(v.sysFlag)) continue;
        const offsets = this.queueOffsets(viewTopic(data, v));
        if ((offsets.get(v.queueId) ?? 0) <= v.queueOffset) offsets.set(v.queueId, v.queueOffset + 1);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.commitLog.addWaiter({
        waitFlush: true,
        complete: (outcome) => {
          if (outcome === AppendOutcome.FLUSH_TIMEOUT)
            reject(new RmqError(ErrorCode.FlushDiskTimeout, "replicated records not synced in time"));
          else resolve({ nextOffset: this.commitLog.nextOffset });
        },
        fail: reject,
      });
    });
  }

  async truncate(phyOffset: number): Promise<void> {
    if (this.shuttingDown) throw new RmqError(ErrorCode.StoreShutdown, "store is shut down");
    this.truncating = true;
    try {
      await this.exclusive(async () => {
        await this.commitLog.whenIdle();
        const deleted = await this.commitLog.truncate(phyOffset);
        const units = await this.consumeQueues.truncateDirty(phyOffset);
        if (this.index !== undefined) await this.index.truncate(phyOffset);
        if (this.dispatcher.dispatchedOffset > phyOffset) this.dispatcher.dispatchedOffset = phyOffset;
        this.rebuildTopicQueueTable();
        const d = this.checkpoint.data;
        d.dispatchedPhyOffset = Math.min(d.dispatchedPhyOffset, phyOffset);
        d.commitLogFlushedOffset = Math.min(d.commitLogFlushedOffset, phyOffset);
        d.confirmPhyOffset = Math.min(d.confirmPhyOffset, phyOffset);
        await this.checkpoint.flush();
        this.logger.warn(
          { phyOffset, deletedFiles: deleted, consumeQueueUnitsRemoved: units },
          "store truncated",
        );
      });
    } finally {
      this.truncating = false;
    }
  }

  addDispatcher(d: Dispatcher): void {
    this.dispatcher.addDispatcher(d);
  }

  // ---------------------------------------------------------------- maintenance and shutdown

  async flush(): Promise<void> {
    await this.commitLog.flush();
    await this.flushConsumeQueues(true);
  }

  cleanNow(): Promise<CleanReport> {
    return this.cleanService.run(true);
  }

  async shutdown(): Promise<void> {
    if (this.closed || this.shuttingDown) return;
    this.shuttingDown = true;
    this.cleanService.stop();
    if (this.cqFlushTimer !== undefined) clearInterval(this.cqFlushTimer);
    this.commitLog.stopFlusher();
    let clean = true;
    try {
      await this.commitLog.flush();
      await this.flushConsumeQueues(true);
    } catch (err) {
      clean = false;
      this.logger.error({ err }, "flush at shutdown failed");
    }
    if (this.commitLog.failed !== undefined) clean = false;
    if (this.index !== undefined)
      await this.index.close().catch((err: unknown) => this.logger.error({ err }, "Index close failed"));
    await this.commitLog.close();
    await this.consumeQueues.close();
    await this.checkpoint.close();
    // The abort marker stays when something could not be made durable: the next open then recovers.
    if (clean) await removeAbortFile(this.config.storePathRootDir, this.io);
    this.closed = true;
    await this.lock.release();
    this.logger.info({ maxPhyOffset: this.commitLog.writtenOffset, clean }, "store shut down");
  }
}
