// Ordered (FIFO) consumption state per consumer group, topic and queue (upstream
// ConsumerOrderInfoManager; our layout). Above the group's committed offset a FIFO queue holds
// messages in three states: done (acked, dead-lettered, or not matching the subscription), delivered
// (popped and not done: in flight until popTime + invisibleTime, visible again after, keeping its
// place), and not yet delivered. The committed offset moves over contiguous done offsets only.
//
// Persisted to `{storePathRootDir}/config/consumerOrderInfo.json` (atomic write) periodically and on
// shutdown, as upstream, and between two writes every settled message, reset queue and dropped group
// goes to a journal (consumer-order-journal.ts) before the ack that settled it is answered: after a
// crash nothing acked comes again. Delivery attempts and invisible times are only in the snapshot (a
// crash may hand an in-flight message out again sooner, with the attempt count of the last write).

import { join } from "node:path";
import { corruptFileError, readFileIfExists, writeFileAtomic } from "../../common/atomic-file.ts";
import { ConsumerOrderJournal, type JournalReplay } from "./consumer-order-journal.ts";

/** Upstream persists consumerOrderInfo.json every 10 s (ConsumerOrderInfoManager via BrokerController). */
export const ORDER_INFO_PERSIST_INTERVAL_MS = 10_000;
export const ORDER_INFO_FILE = "consumerOrderInfo.json";

export interface DeliveredOrderedMessage {
  /** Deliveries so far (1 after the first pop). */
  attempts: number;
  popTime: number;
  invisibleTime: number;
  /** Made invisible by a suspend (lite consumers): the next delivery is not another attempt. */
  suspended?: boolean;
}

export class OrderQueueState {
  /** Offsets at or above the committed offset that need no more delivery. */
  readonly done = new Set<number>();
  /** Popped and not done, by queue offset. */
  readonly delivered = new Map<number, DeliveredOrderedMessage>();
  /** The last pop's attempt id and the offsets it returned (a retried pop gets them again). */
  lastAttempt: { attemptId: string; offsets: number[] } | undefined;

  /** Moves `committed` over contiguous done offsets, forgetting them; returns the new committed offset. */
  advance(committed: number): number {
    let c = committed;
    while (this.done.delete(c)) {
      this.delivered.delete(c);
      c++;
    }
    // Anything below the committed offset (an operator moved it forward) is settled.
    for (const o of this.done) if (o < c) this.done.delete(o);
    for (const o of this.delivered.keys()) if (o < c) this.delivered.delete(o);
    return c;
  }

  inflightCount(now: number): number {
    let n = 0;
    for (const d of this.delivered.values()) if (d.popTime + d.invisibleTime > now) n++;
    return n;
  }

  get isEmpty(): boolean {
    return this.done.size === 0 && this.delivered.size === 0;
  }
}

interface PersistedQueue {
  done: number[];
  /** offset → [attempts, popTime, invisibleTime] */
  delivered: Record<string, [number, number, number]>;
}

interface PersistedFile {
  version: 1;
  /** "topic@group" → queueId → state */
  table: Record<string, Record<string, PersistedQueue>>;
}

export interface ConsumerOrderInfoOptions {
  /** SYNC_FLUSH: journal lines are fdatasynced before the acks they record are answered. */
  syncFlush: boolean;
  /**
   * Persists the consumer offsets; a snapshot calls it after taking its state, so that offsets the
   * snapshot no longer lists as done (the committed offset moved over them) are durable before the
   * journal that recorded them is deleted.
   */
  persistOffsets: () => Promise<void>;
}

export class ConsumerOrderInfoManager {
  private readonly file: string;
  /** "topic@group" → queueId → state */
  private readonly table = new Map<string, Map<number, OrderQueueState>>();
  private dirty = false;
  private readonly journal: ConsumerOrderJournal;
  private readonly persistOffsets: () => Promise<void>;
  private persisting: Promise<void> | undefined;

  constructor(storePathRootDir: string, o: ConsumerOrderInfoOptions) {
    const configDir = join(storePathRootDir, "config");
    this.file = join(configDir, ORDER_INFO_FILE);
    this.journal = new ConsumerOrderJournal(configDir, o.syncFlush);
    this.persistOffsets = o.persistOffsets;
  }

  /** Settles `offset` of the queue whose state is `s`: no more delivery, recorded in the journal. */
  markDone(group: string, topic: string, queueId: number, s: OrderQueueState, offset: number): void {
    s.done.add(offset);
    this.journal.append(["d", ConsumerOrderInfoManager.key(topic, group), queueId, offset]);
    this.dirty = true;
  }

  /** Drops the ordering state of one queue (its consumer offset was reset), recorded in the journal. */
  resetQueue(group: string, topic: string, queueId: number): OrderQueueState | undefined {
    const s = this.peek(group, topic, queueId);
    if (s === undefined) return undefined;
    s.done.clear();
    s.delivered.clear();
    s.lastAttempt = undefined;
    this.journal.append(["r", ConsumerOrderInfoManager.key(topic, group), queueId]);
    this.dirty = true;
    return s;
  }

  /**
   * Writes the journal lines of everything settled so far; resolves once they would survive a crash
   * of the process (with SYNC_FLUSH: of the machine). Acks await it before they are answered.
   */
  flushJournal(): Promise<void> {
    return this.journal.flush();
  }

  private static key(topic: string, group: string): string {
    return `${topic}@${group}`;
  }

  get(group: string, topic: string, queueId: number): OrderQueueState {
    const key = ConsumerOrderInfoManager.key(topic, group);
    let queues = this.table.get(key);
    if (queues === undefined) {
      queues = new Map();
      this.table.set(key, queues);
    }
    let s = queues.get(queueId);
    if (s === undefined) {
      s = new OrderQueueState();
      queues.set(queueId, s);
    }
    return s;
  }

  peek(group: string, topic: string, queueId: number): OrderQueueState | undefined {
    return this.table.get(ConsumerOrderInfoManager.key(topic, group))?.get(queueId);
  }

  markDirty(): void {
    this.dirty = true;
  }

  /** Loads the last snapshot, then replays the journals written after it. */
  async load(): Promise<JournalReplay> {
    await this.loadSnapshot();
    const replay = this.journal.replay();
    for (const rec of replay.records) {
      if (rec[0] === "d") {
        const at = rec[1].lastIndexOf("@");
        this.get(rec[1].slice(at + 1), rec[1].slice(0, at), rec[2]).done.add(rec[3]);
      } else if (rec[0] === "r") {
        const s = this.table.get(rec[1])?.get(rec[2]);
        if (s !== undefined) {
          s.done.clear();
          s.delivered.clear();
        }
      } else {
        this.dropGroup(rec[1]);
      }
    }
    if (replay.records.length > 0) this.dirty = true;
    return replay;
  }

  private async loadSnapshot(): Promise<void> {
    const text = await readFileIfExists(this.file);
    if (text === undefined) return;
    let parsed: PersistedFile;
    try {
      parsed = JSON.parse(text) as PersistedFile;
    } catch (err) {
      throw corruptFileError(this.file, "not valid JSON", err);
    }
    if (
      parsed === null ||
      typeof parsed !== "object" ||
      parsed.version !== 1 ||
      typeof parsed.table !== "object"
    )
      throw corruptFileError(this.file, "expected {version: 1, table: {...}}");
    const isOffset = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    for (const [key, queues] of Object.entries(parsed.table)) {
      const at = key.lastIndexOf("@");
      if (at <= 0 || queues === null || typeof queues !== "object")
        throw corruptFileError(this.file, `bad entry ${JSON.stringify(key)}`);
      const topic = key.slice(0, at);
      const group = key.slice(at + 1);
      for (const [qid, q] of Object.entries(queues)) {
        const queueId = Number(qid);
        if (!isOffset(queueId) || q === null || typeof q !== "object" || !Array.isArray(q.done))
          throw corruptFileError(this.file, `bad queue ${JSON.stringify(qid)} of ${JSON.stringify(key)}`);
        const s = this.get(group, topic, queueId);
        for (const o of q.done) {
          if (!isOffset(o)) throw corruptFileError(this.file, `bad done offset in ${JSON.stringify(key)}`);
          s.done.add(o);
        }
        for (const [o, v] of Object.entries(q.delivered ?? {})) {
          const offset = Number(o);
          if (!isOffset(offset) || !Array.isArray(v) || v.length !== 3 || !v.every(isOffset))
            throw corruptFileError(
              this.file,
              `bad delivered entry ${JSON.stringify(o)} in ${JSON.stringify(key)}`,
            );
          s.delivered.set(offset, { attempts: v[0], popTime: v[1], invisibleTime: v[2] });
        }
      }
    }
  }

  encode(): string {
    const table: PersistedFile["table"] = {};
    for (const [key, queues] of this.table) {
      const out: Record<string, PersistedQueue> = {};
      for (const [queueId, s] of queues) {
        if (s.isEmpty) continue;
        const delivered: PersistedQueue["delivered"] = {};
        for (const [o, d] of s.delivered) delivered[String(o)] = [d.attempts, d.popTime, d.invisibleTime];
        out[String(queueId)] = { done: [...s.done].sort((a, b) => a - b), delivered };
      }
      if (Object.keys(out).length > 0) table[key] = out;
    }
    return JSON.stringify({ version: 1, table } satisfies PersistedFile);
  }

  /**
   * Writes the snapshot when something changed since the last one: rotates the journal, takes the
   * state, persists the consumer offsets, writes the file, deletes the journals it covers. One at a time.
   */
  persist(): Promise<void> {
    const run = async (): Promise<void> => {
      if (!this.dirty) return;
      const upTo = await this.journal.rotate();
      this.dirty = false;
      const text = this.encode();
      try {
        await this.persistOffsets();
        await writeFileAtomic(this.file, text);
      } catch (err) {
        this.dirty = true;
        throw err;
      }
      this.journal.dropUpTo(upTo);
    };
    const p = (this.persisting ?? Promise.resolve()).then(run, run);
    this.persisting = p.catch(() => {});
    return p;
  }

  /** Persists a last time and closes the journal (broker shutdown). */
  async close(): Promise<void> {
    await this.persist();
    this.journal.close();
  }

  /** Drops every state of `group` (the group was deleted). */
  removeGroup(group: string): void {
    this.dropGroup(group);
    this.journal.append(["g", group]);
    this.dirty = true;
  }

  private dropGroup(group: string): void {
    for (const key of [...this.table.keys()]) if (key.endsWith(`@${group}`)) this.table.delete(key);
  }
}
