// All ConsumeQueues of a store (`{root}/consumequeue/{topic}/{queueId}/`): the dispatcher target that
// files each unit under its queue, and the maintenance (write-out, sync, truncate, retention) over all
// of them, serialised so that no two maintenance passes touch one queue's files at once.
import * as fs from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../common/logger.ts";
import { ConsumeQueue, ensureDurableDir } from "./consume-queue.ts";
import type { Dispatcher, DispatchRequest } from "./dispatch.ts";
import { MappedFileQueue } from "./mapped-file-queue.ts";
import { takesQueueSlot } from "./message-sysflag.ts";
import { type FileIo, syncDirectory } from "./store-io.ts";

/** Topics of light message queues (upstream MixAll.LMQ_PREFIX). */
const LMQ_TOPIC_PREFIX = "%LMQ%";

export class ConsumeQueueStore implements Dispatcher {
  readonly root: string;
  private readonly fileSize: number;
  private readonly io: FileIo;
  private readonly logger: Logger;
  private readonly queues = new Map<string, Map<number, ConsumeQueue>>();
  private lmqQueues = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(root: string, fileSize: number, io: FileIo, logger: Logger) {
    this.root = root;
    this.fileSize = fileSize;
    this.io = io;
    this.logger = logger;
  }

  /** Opens every queue found under `root`; directories that are not queue ids are ignored. */
  static async load(root: string, fileSize: number, io: FileIo, logger: Logger): Promise<ConsumeQueueStore> {
    await fs.promises.mkdir(root, { recursive: true });
    const store = new ConsumeQueueStore(root, fileSize, io, logger);
    for (const t of await fs.promises.readdir(root, { withFileTypes: true })) {
      if (!t.isDirectory()) continue;
      for (const q of await fs.promises.readdir(join(root, t.name), { withFileTypes: true })) {
        if (!q.isDirectory() || !/^(0|[1-9]\d{0,8})$/.test(q.name)) continue;
        const cq = await ConsumeQueue.load(join(root, t.name, q.name), t.name, Number(q.name), fileSize, io);
        store.put(cq);
      }
    }
    return store;
  }

  private put(cq: ConsumeQueue): void {
    let m = this.queues.get(cq.topic);
    if (m === undefined) {
      m = new Map();
      this.queues.set(cq.topic, m);
    }
    if (!m.has(cq.queueId) && cq.topic.startsWith(LMQ_TOPIC_PREFIX)) this.lmqQueues++;
    m.set(cq.queueId, cq);
  }

  /** ConsumeQueues of light message queues (`%LMQ%` topics: lite topics), bounded by maxLmqConsumeQueueNum upstream. */
  get lmqCount(): number {
    return this.lmqQueues;
  }

  find(topic: string, queueId: number): ConsumeQueue | undefined {
    return this.queues.get(topic)?.get(queueId);
  }

  findOrCreate(topic: string, queueId: number): ConsumeQueue {
    const found = this.queues.get(topic)?.get(queueId);
    if (found !== undefined) return found;
    const cq = new ConsumeQueue(
      topic,
      queueId,
      new MappedFileQueue(join(this.root, topic, String(queueId)), this.fileSize),
    );
    this.put(cq);
    return cq;
  }

  get isEmpty(): boolean {
    return this.queues.size === 0;
  }

  *all(): IterableIterator<ConsumeQueue> {
    for (const m of this.queues.values()) yield* m.values();
  }

  /** Dispatcher: transaction PREPARED/ROLLBACK records take no unit. */
  dispatch(req: DispatchRequest): void {
    if (!takesQueueSlot(req.sysFlag)) return;
    this.findOrCreate(req.topic, req.queueId).putUnit(
      req.commitLogOffset,
      req.size,
      req.tagsCode,
      req.queueOffset,
    );
  }

  /** Dispatcher: a batch in CommitLog order, looking each topic's queues up once per run of that topic. */
  dispatchBatch(reqs: readonly DispatchRequest[]): void {
    let topic: string | undefined;
    let byId: Map<number, ConsumeQueue> | undefined;
    for (const req of reqs) {
      if (!takesQueueSlot(req.sysFlag)) continue;
      if (req.topic !== topic) {
        topic = req.topic;
        byId = this.queues.get(topic);
      }
      let cq = byId?.get(req.queueId);
      if (cq === undefined) {
        cq = this.findOrCreate(req.topic, req.queueId);
        byId = this.queues.get(topic);
      }
      cq.putUnit(req.commitLogOffset, req.size, req.tagsCode, req.queueOffset);
    }
  }

  /** Runs `fn` after every earlier maintenance pass has finished. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => {});
    return p;
  }

  /** Writes every queue's buffered units to its files; returns bytes written. */
  writeAll(): Promise<number> {
    return this.exclusive(async () => {
      let total = 0;
      const ensureDir = (dir: string) => ensureDurableDir(dir, (d) => syncDirectory(this.io, d));
      for (const cq of this.all()) total += await cq.writeOut(this.io, ensureDir);
      return total;
    });
  }

  /** Bytes written since the last sync, over all queues. */
  get dirtyBytes(): number {
    let n = 0;
    for (const cq of this.all()) n += cq.dirtyBytes;
    return n;
  }

  /** fdatasync everything written so far. */
  syncAll(): Promise<void> {
    return this.exclusive(async () => {
      for (const cq of this.all()) await cq.sync(this.io);
    });
  }

  /** Removes every unit of a record at or after `phyCut`; returns units removed. */
  truncateDirty(phyCut: number): Promise<number> {
    return this.exclusive(async () => {
      let removed = 0;
      for (const cq of this.all()) {
        const n = await cq.truncateByPhyOffset(phyCut, this.io);
        if (n > 0) {
          removed += n;
          this.logger.info(
            { topic: cq.topic, queueId: cq.queueId, units: n, maxOffset: cq.maxLogicOffset },
            "ConsumeQueue truncated",
          );
        }
      }
      return removed;
    });
  }

  /** Retention: drops files wholly below the CommitLog's min offset; returns files deleted. */
  deleteExpired(minPhy: number): Promise<number> {
    return this.exclusive(async () => {
      let n = 0;
      for (const cq of this.all()) n += await cq.deleteExpired(minPhy, this.io);
      return n;
    });
  }

  close(): Promise<void> {
    return this.exclusive(async () => {
      for (const cq of this.all()) await cq.close();
    });
  }
}
