// The Index: message keys and client message ids -> CommitLog offsets, in upstream's IndexFile
// format, fed by the CommitLog dispatcher.
//
// Per dispatched record it indexes `${topic}#${uniqKey}` and `${topic}#${k}` for each space-separated
// token k of KEYS; ROLLBACK transaction records are not indexed. `dispatch` only touches memory (a
// bounded page cache, see page-cache.ts); `flush` writes dirty pages, fdatasyncs, then records a
// checkpoint per file (index-checkpoint.ts). `durableMaxPhyOffset` tells recovery from where the
// CommitLog must be re-dispatched after a crash: every record below it is durably indexed. Records
// at or above it may be dispatched again; they are skipped if already indexed in memory.
//
// On open, a file whose checkpoint is missing or damaged, or which contradicts its checkpoint, is
// deleted together with every newer file (their records fall above durableMaxPhyOffset and get
// re-indexed from the CommitLog); an unsealed file's slot table is repaired (index-file.ts).

import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { ErrorCode, RmqError } from "../../../common/errors.ts";
import { type Logger, silentLogger } from "../../../common/logger.ts";
import type { Dispatcher, DispatchRequest } from "../dispatch.ts";
import { CHECKPOINT_SUFFIX, checkpointDirFor } from "./index-checkpoint.ts";
import {
  INDEX_FILE_NAME,
  IndexFile,
  type IndexFileFlushJob,
  indexFileName,
  indexKeyHash,
  parseIndexFileName,
} from "./index-file.ts";
import { type IndexedRecord, IndexKeyHasher, NumberList, PACKED_RECORD_HEADER } from "./index-keys.ts";
import { DEFAULT_MAX_CACHED_PAGES, PageCache } from "./page-cache.ts";

export interface IndexService extends Dispatcher {
  /** Persist buffered index writes (fdatasync). */
  flush(): Promise<void>;
  /** Every record with commitLogOffset < this is durably indexed. */
  readonly durableMaxPhyOffset: number;
  /** Candidate CommitLog offsets, newest first (the caller re-checks the key). */
  query(
    topic: string,
    key: string,
    maxNum: number,
    beginTimestamp: number,
    endTimestamp: number,
  ): Promise<number[]>;
  /** Forget entries of records at/after phyOffset. */
  truncate(phyOffset: number): Promise<void>;
  /** Delete files wholly below the CommitLog min offset; returns files deleted. */
  deleteExpired(minPhyOffset: number): Promise<number>;
  close(): Promise<void>;
}

export interface IndexServiceOptions {
  dir: string;
  /** Slots per file (upstream maxHashSlotNum, 5,000,000). */
  maxHashSlotNum: number;
  /** Entries per file (upstream maxIndexNum, 20,000,000); a file holds maxIndexNum - 1. */
  maxIndexNum: number;
  /** Resident 4 KiB pages before clean ones are evicted (DEFAULT_MAX_CACHED_PAGES, 32 MiB). */
  maxCachedPages?: number;
  logger?: Logger;
}

/** A flush starts on its own once this share of the cache's page limit is dirty. */
const PRESSURE_FLUSH_DIRTY_SHARE = 7 / 8;

export interface IndexServiceStats {
  files: number;
  cachedPages: number;
  dirtyPages: number;
  maxCachedPages: number;
  /** Records dispatched (in memory) up to here. */
  dispatchedEnd: number;
  /** Page reads in flight (slot pages that dispatched entries wait for, query reads). */
  pendingPageReads: number;
}

export class DefaultIndexService implements IndexService {
  private readonly dir: string;
  private readonly checkpointDir: string;
  private readonly hashSlotNum: number;
  private readonly indexNum: number;
  private readonly cache: PageCache;
  private readonly log: Logger;
  private files: IndexFile[] = [];
  private nextSeq = 1;
  private lastNameMs = 0;
  private dispatchedEnd = 0;
  private durable = 0;
  private readonly loads = new Set<Promise<unknown>>();
  private failure: unknown;
  private chain: Promise<unknown> = Promise.resolve();
  private truncating = false;
  private closed = false;
  private pressureFlushScheduled = false;
  private readonly hasher = new IndexKeyHasher();
  private readonly hashes = new NumberList();

  constructor(opts: IndexServiceOptions) {
    if (!Number.isInteger(opts.maxHashSlotNum) || opts.maxHashSlotNum < 1) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `maxHashSlotNum must be a positive integer, got ${opts.maxHashSlotNum}`,
      );
    }
    if (!Number.isInteger(opts.maxIndexNum) || opts.maxIndexNum < 2) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `maxIndexNum must be an integer >= 2, got ${opts.maxIndexNum}`,
      );
    }
    this.dir = opts.dir;
    this.checkpointDir = checkpointDirFor(opts.dir);
    this.hashSlotNum = opts.maxHashSlotNum;
    this.indexNum = opts.maxIndexNum;
    this.cache = new PageCache(opts.maxCachedPages ?? DEFAULT_MAX_CACHED_PAGES);
    this.log = opts.logger ?? silentLogger();
  }

  get durableMaxPhyOffset(): number {
    return this.durable;
  }

  stats(): IndexServiceStats {
    return {
      files: this.files.length,
      cachedPages: this.cache.size,
      dirtyPages: this.cache.dirtyCount,
      maxCachedPages: this.cache.maxPages,
      dispatchedEnd: this.dispatchedEnd,
      pendingPageReads: this.loads.size,
    };
  }

  /** Names of the index files, oldest first (for tests and operators). */
  fileNames(): string[] {
    return this.files.map((f) => f.name);
  }

  // ---- open

  async open(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await fsp.mkdir(this.checkpointDir, { recursive: true });
    const indexNames = (await fsp.readdir(this.dir)).filter((n) => INDEX_FILE_NAME.test(n)).sort();
    const present = new Set(indexNames);
    for (const n of await fsp.readdir(this.checkpointDir)) {
      if (n.endsWith(CHECKPOINT_SUFFIX) && !present.has(n.slice(0, -CHECKPOINT_SUFFIX.length))) {
        await fsp.rm(join(this.checkpointDir, n), { force: true }); // checkpoint of a file already gone
      }
    }
    let discarding = false;
    for (const name of indexNames) {
      if (discarding) {
        await this.discard(name, "an older index file was discarded or left unsealed");
        continue;
      }
      const opened = await IndexFile.open(this.fileInit(name));
      if (typeof opened === "string") {
        await this.discard(name, opened);
        discarding = true;
        continue;
      }
      this.files.push(opened);
      this.lastNameMs = Math.max(this.lastNameMs, parseIndexFileName(name) ?? 0);
      // Newer files cannot be trusted past an unsealed one (a crash during a multi-file flush).
      if (opened.durable?.sealed !== true) discarding = true;
    }
    const last = this.files.at(-1);
    this.durable = last?.durable?.dispatchedEnd ?? 0;
    this.dispatchedEnd = this.durable;
    if (
      this.files.some((f) =>
        f.needsFlush(f !== last, f === last ? this.durable : (f.sealedDispatchedEnd ?? 0)),
      )
    ) {
      await this.flushLocked(); // persist slot repairs and header fixes now
    }
  }

  private async discard(name: string, reason: string): Promise<void> {
    this.log.warn(
      { file: join(this.dir, name), reason },
      "discarding index file; its records will be re-indexed from the CommitLog",
    );
    await fsp.rm(join(this.dir, name), { force: true });
    await fsp.rm(join(this.checkpointDir, name + CHECKPOINT_SUFFIX), { force: true });
  }

  private fileInit(name: string) {
    return {
      seq: this.nextSeq++,
      dir: this.dir,
      checkpointDir: this.checkpointDir,
      name,
      hashSlotNum: this.hashSlotNum,
      indexNum: this.indexNum,
      cache: this.cache,
      trackLoad: (p: Promise<unknown>) => {
        this.loads.add(p);
        p.then(
          () => this.loads.delete(p),
          (e: unknown) => {
            this.loads.delete(p);
            this.failure ??= e;
            this.log.error({ err: e }, "index page read failed");
          },
        );
      },
    };
  }

  // ---- dispatch (synchronous, memory only)

  private checkDispatchable(): void {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "index service is closed");
    if (this.truncating) throw new RmqError(ErrorCode.Internal, "index dispatch while a truncate is running");
  }

  dispatch(req: DispatchRequest): void {
    this.checkDispatchable();
    this.indexRecord(req);
    this.relieveMemoryPressure();
  }

  /** Several records in CommitLog order: the same as dispatch on each. */
  dispatchBatch(reqs: readonly DispatchRequest[]): void {
    this.checkDispatchable();
    for (const req of reqs) this.indexRecord(req);
    this.relieveMemoryPressure();
  }

  /**
   * Records packed by IndexKeyHasher.pack (an Index on another thread gets its records this way), the
   * first `length` numbers of `packed`: the same as dispatchBatch on those records.
   */
  dispatchPacked(packed: ArrayLike<number>, length: number): void {
    this.checkDispatchable();
    let i = 0;
    while (i < length) {
      const count = packed[i + 3] as number;
      const from = i + PACKED_RECORD_HEADER;
      this.indexHashes(
        packed[i] as number,
        packed[i + 1] as number,
        packed[i + 2] as number,
        packed,
        from,
        from + count,
      );
      i = from + count;
    }
    this.relieveMemoryPressure();
  }

  private indexRecord(req: IndexedRecord): void {
    if (req.commitLogOffset < this.dispatchedEnd) return; // already indexed (re-dispatch after recovery)
    const hashes = this.hashes;
    hashes.length = 0;
    this.hasher.collect(req, hashes);
    this.indexHashes(req.commitLogOffset, req.size, req.storeTimestamp, hashes.data, 0, hashes.length);
  }

  /** Indexes the record at `offset` under the key hashes `hashes[from, to)`. */
  private indexHashes(
    offset: number,
    size: number,
    storeTimestamp: number,
    hashes: ArrayLike<number>,
    from: number,
    to: number,
  ): void {
    if (offset < this.dispatchedEnd) return; // already indexed (re-dispatch after recovery)
    for (let k = from; k < to; k++) this.putKey(offset, storeTimestamp, hashes[k] as number);
    this.dispatchedEnd = offset + size;
  }

  private relieveMemoryPressure(): void {
    if (
      this.cache.dirtyCount > this.cache.maxPages * PRESSURE_FLUSH_DIRTY_SHARE &&
      !this.pressureFlushScheduled
    ) {
      // Dirty pages cannot be evicted: write them back early so memory stays bounded. The share is
      // above what a default file's slot table takes (4883 of 8192 pages): random keys dirty all of it,
      // and a lower mark would rewrite those 20 MB every few thousand keys.
      this.pressureFlushScheduled = true;
      setImmediate(() => {
        this.flush()
          .catch((e: unknown) => {
            if (!this.closed) this.log.error({ err: e }, "index flush under memory pressure failed");
          })
          .finally(() => {
            this.pressureFlushScheduled = false;
          });
      });
    }
  }

  private putKey(offset: number, storeTimestamp: number, hash: number): void {
    let file = this.files.at(-1);
    if (file === undefined || !file.put(hash, offset, storeTimestamp)) {
      file = this.roll(offset);
      file.put(hash, offset, storeTimestamp);
    }
  }

  /** Starts a new file; the full one is sealed at the next flush. `at`: the record that did not fit. */
  private roll(at: number): IndexFile {
    const prev = this.files.at(-1);
    if (prev !== undefined) {
      prev.sealedDispatchedEnd = at;
      prev.releaseTail();
    }
    const ms = Math.max(Date.now(), this.lastNameMs + 1);
    this.lastNameMs = ms;
    const file = IndexFile.createNew(
      this.fileInit(indexFileName(ms)),
      prev?.endPhyOffset ?? 0,
      prev?.endTimestamp ?? 0,
    );
    this.files.push(file);
    return file;
  }

  // ---- serialized operations

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "index service is closed");
      return fn();
    });
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** Waits for every page read in flight (entries waiting on a slot page get linked when it arrives). */
  private async settle(): Promise<void> {
    while (this.loads.size > 0) await Promise.allSettled([...this.loads]);
    if (this.failure !== undefined) {
      throw new RmqError(ErrorCode.Internal, `index is unusable after an IO error: ${String(this.failure)}`, {
        cause: this.failure,
      });
    }
  }

  flush(): Promise<void> {
    return this.exclusive(() => this.flushLocked());
  }

  private async flushLocked(): Promise<void> {
    await this.settle();
    // Synchronous from here to the first await: a consistent snapshot of every file.
    const target = this.dispatchedEnd;
    if (this.files.length === 0 && target > this.durable) this.roll(target); // somewhere to record the durable point
    const last = this.files.at(-1);
    const jobs: IndexFileFlushJob[] = [];
    for (const f of this.files) {
      const sealed = f !== last;
      const job = f.snapshot(sealed, sealed ? (f.sealedDispatchedEnd ?? target) : target);
      if (job !== undefined) jobs.push(job);
    }
    for (const job of jobs) await job.file.write(job); // oldest first: a newer checkpoint implies older ones
    this.durable = target;
  }

  query(
    topic: string,
    key: string,
    maxNum: number,
    beginTimestamp: number,
    endTimestamp: number,
  ): Promise<number[]> {
    return this.exclusive(async () => {
      await this.settle();
      const out: number[] = [];
      if (maxNum <= 0) return out;
      const hash = indexKeyHash(`${topic}#${key}`);
      for (let i = this.files.length - 1; i >= 0; i--) {
        const f = this.files[i] as IndexFile;
        if (f.isTimeMatched(beginTimestamp, endTimestamp)) {
          await f.select(hash, maxNum, beginTimestamp, endTimestamp, out);
        }
        if (f.beginTimestamp < beginTimestamp || out.length >= maxNum) break;
      }
      return [...new Set(out)]; // a record re-dispatched across a file roll may appear twice
    });
  }

  truncate(phyOffset: number): Promise<void> {
    return this.exclusive(async () => {
      await this.settle();
      this.truncating = true;
      const removed: IndexFile[] = []; // newest first
      try {
        for (;;) {
          const last = this.files.at(-1);
          if (last === undefined) break;
          const wholeFileAfter = last.entryCount > 0 && last.beginPhyOffset >= phyOffset;
          const emptyAfterOthers = last.entryCount === 0 && this.files.length > 1;
          if (wholeFileAfter || emptyAfterOthers) {
            removed.push(last);
            this.files.pop();
            continue;
          }
          if (last.entryCount > 0) {
            await last.pinHeader();
            await last.truncateFrom(phyOffset);
          }
          last.sealedDispatchedEnd = undefined; // the active file again
          break;
        }
        for (const f of removed) this.cache.dropFile(f.seq);
        this.dispatchedEnd = Math.min(this.dispatchedEnd, phyOffset);
        if (this.files.length === 0) {
          for (const f of removed) await f.destroy(); // nothing left to record a durable point in
          await this.flushLocked();
        } else {
          // Record the shortened state durably BEFORE deleting files: if we crash in between, the
          // now unsealed last file makes open() discard the newer ones anyway.
          await this.flushLocked();
          for (const f of removed) await f.destroy();
        }
      } finally {
        this.truncating = false;
      }
    });
  }

  deleteExpired(minPhyOffset: number): Promise<number> {
    return this.exclusive(async () => {
      let deleted = 0;
      while (this.files.length > 1) {
        const first = this.files[0] as IndexFile;
        if (first.durable?.sealed !== true || first.endPhyOffset >= minPhyOffset) break;
        this.files.shift();
        await first.destroy();
        deleted++;
      }
      return deleted;
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return this.exclusive(async () => {
      try {
        await this.flushLocked();
      } finally {
        this.closed = true;
        for (const f of this.files) await f.close();
        this.cache.clear();
      }
    });
  }
}

/** Opens (or creates) the Index in `opts.dir`, repairing what a crash left behind. */
export async function openIndexService(opts: IndexServiceOptions): Promise<DefaultIndexService> {
  const service = new DefaultIndexService(opts);
  await service.open();
  return service;
}

export function createIndexService(opts: {
  dir: string;
  maxHashSlotNum: number;
  maxIndexNum: number;
  maxCachedPages?: number;
  logger?: Logger;
}): Promise<IndexService> {
  return openIndexService(opts);
}
