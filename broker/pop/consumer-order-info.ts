// Ordered (FIFO) consumption state per consumer group, topic and queue (upstream
// ConsumerOrderInfoManager; our layout). Above the group's committed offset a FIFO queue holds
// messages in three states: done (acked, dead-lettered, or not matching the subscription), delivered
// (popped and not done: in flight until popTime + invisibleTime, visible again after, keeping its
// place), and not yet delivered. The committed offset moves over contiguous done offsets only.
//
// Persisted to `{storePathRootDir}/config/consumerOrderInfo.json` (atomic write) periodically and on
// shutdown, like upstream: after a crash, messages acked since the last write come again (at least
// once, still in order); delivery attempts and invisible times written before survive.

import { join } from "node:path";
import { corruptFileError, readFileIfExists, writeFileAtomic } from "../../common/atomic-file.ts";

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

export class ConsumerOrderInfoManager {
  private readonly file: string;
  /** "topic@group" → queueId → state */
  private readonly table = new Map<string, Map<number, OrderQueueState>>();
  private dirty = false;

  constructor(storePathRootDir: string) {
    this.file = join(storePathRootDir, "config", ORDER_INFO_FILE);
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

  async load(): Promise<void> {
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

  /** Writes the file when something changed since the last write. */
  async persist(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await writeFileAtomic(this.file, this.encode());
    } catch (err) {
      this.dirty = true;
      throw err;
    }
  }

  /** Drops every state of `group` (the group was deleted). */
  removeGroup(group: string): void {
    for (const key of [...this.table.keys()]) if (key.endsWith(`@${group}`)) this.table.delete(key);
    this.dirty = true;
  }
}
