// Committed consume offsets: `{storePathRootDir}/config/consumerOffset.json` in upstream's shape
// ({"offsetTable": {"topic@group": {"queueId": offset}}, "dataVersion": {...}}). Kept in memory,
// persisted periodically (flushConsumerOffsetInterval, 5 s) and at shutdown through `persist()`.
//
// Unlike upstream (which only logs), a commit never moves an offset backwards: a late or duplicate
// commit from a client is ignored. Moving back is an explicit `reset` (mqadmin resetOffset).

import { join } from "node:path";
import { corruptFileError, readJsonFile, writeFileAtomic } from "../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import { type DataVersion, newDataVersion, nextDataVersion } from "./data-version.ts";
import { dataVersionAt, FieldError, isObject, objectAt } from "./json-fields.ts";

/** Upstream TOPIC_GROUP_SEPARATOR: offset keys are `topic@group`. */
export const TOPIC_GROUP_SEPARATOR = "@";
/** Upstream flushConsumerOffsetInterval default (5000 ms). */
export const DEFAULT_FLUSH_CONSUMER_OFFSET_INTERVAL_MS = 5000;
/** Upstream consumerOffsetUpdateVersionStep: the dataVersion moves every this many commits (500). */
const OFFSET_UPDATE_VERSION_STEP = 500;

export interface ConsumerOffsetManagerOptions {
  storePathRootDir: string;
  logger?: Logger;
}

function keyOf(topic: string, group: string): string {
  return topic + TOPIC_GROUP_SEPARATOR + group;
}

function splitKey(key: string): [topic: string, group: string] | undefined {
  const parts = key.split(TOPIC_GROUP_SEPARATOR);
  return parts.length === 2 ? (parts as [string, string]) : undefined;
}

function checkQueueAndOffset(queueId: number, offset: number): void {
  if (!Number.isInteger(queueId) || queueId < 0) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `queueId ${queueId} is illegal: it must be a non-negative integer`,
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `offset ${offset} is illegal: it must be a non-negative integer`,
    );
  }
}

export class ConsumerOffsetManager {
  readonly configFilePath: string;
  private readonly log: Logger;
  private readonly table = new Map<string, Map<number, number>>();
  readonly dataVersion: DataVersion = newDataVersion();
  /** Bumped on every change; persist() remembers which one it wrote. */
  private changes = 0;
  private persistedChanges = 0;
  private commitsSinceVersion = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: ConsumerOffsetManagerOptions) {
    this.log = opts.logger ?? silentLogger();
    this.configFilePath = join(opts.storePathRootDir, "config", "consumerOffset.json");
  }

  async load(): Promise<void> {
    const doc = await readJsonFile(this.configFilePath, parseFastjson);
    if (doc === undefined) return;
    try {
      const loaded = decodeConsumerOffsetJson(doc);
      for (const [k, m] of loaded.table) this.table.set(k, m);
      Object.assign(this.dataVersion, loaded.dataVersion);
    } catch (e) {
      if (e instanceof FieldError) throw corruptFileError(this.configFilePath, e.message, e);
      throw e;
    }
    this.log.info({ file: this.configFilePath, entries: this.table.size }, "loaded consumer offsets");
  }

  /**
   * Records that `group` consumed `topic`/`queueId` up to `offset`. Returns false (and changes
   * nothing) when that would move the offset backwards.
   */
  commit(group: string, topic: string, queueId: number, offset: number): boolean {
    checkQueueAndOffset(queueId, offset);
    const key = keyOf(topic, group);
    let m = this.table.get(key);
    if (m === undefined) {
      m = new Map();
      this.table.set(key, m);
    }
    const current = m.get(queueId);
    if (current !== undefined && offset <= current) return offset === current;
    m.set(queueId, offset);
    this.changes++;
    if (++this.commitsSinceVersion >= OFFSET_UPDATE_VERSION_STEP) {
      this.commitsSinceVersion = 0;
      nextDataVersion(this.dataVersion);
    }
    return true;
  }

  /** Sets an offset explicitly, backwards if need be (an operator's reset). */
  reset(group: string, topic: string, queueId: number, offset: number): void {
    checkQueueAndOffset(queueId, offset);
    const key = keyOf(topic, group);
    let m = this.table.get(key);
    if (m === undefined) {
      m = new Map();
      this.table.set(key, m);
    }
    m.set(queueId, offset);
    this.changes++;
    nextDataVersion(this.dataVersion);
  }

  /** The committed offset, or -1 when the group never committed on that queue (upstream). */
  query(group: string, topic: string, queueId: number): number {
    return this.table.get(keyOf(topic, group))?.get(queueId) ?? -1;
  }

  /** Every queue's committed offset of `group` on `topic`. */
  queryAll(group: string, topic: string): ReadonlyMap<number, number> {
    return new Map(this.table.get(keyOf(topic, group)) ?? []);
  }

  topicsOf(group: string): string[] {
    const out: string[] = [];
    for (const k of this.table.keys()) {
      const tg = splitKey(k);
      if (tg !== undefined && tg[1] === group) out.push(tg[0]);
    }
    return out;
  }

  groupsOf(topic: string): string[] {
    const out: string[] = [];
    for (const k of this.table.keys()) {
      const tg = splitKey(k);
      if (tg !== undefined && tg[0] === topic) out.push(tg[1]);
    }
    return out;
  }

  /** Forgets all offsets of a group (upstream cleanOffset); returns the topic@group entries removed. */
  removeGroup(group: string): number {
    return this.removeWhere((_topic, g) => g === group);
  }

  /** Forgets all offsets on a topic (upstream cleanOffsetByTopic); returns the entries removed. */
  removeTopic(topic: string): number {
    return this.removeWhere((t) => t === topic);
  }

  private removeWhere(match: (topic: string, group: string) => boolean): number {
    let n = 0;
    for (const k of [...this.table.keys()]) {
      const tg = splitKey(k);
      if (tg !== undefined && match(tg[0], tg[1])) {
        this.table.delete(k);
        n++;
      }
    }
    if (n > 0) {
      this.changes++;
      nextDataVersion(this.dataVersion);
    }
    return n;
  }

  encode(): string {
    const offsetTable: Record<string, Record<string, number>> = {};
    for (const [k, m] of this.table) {
      const o: Record<string, number> = {};
      for (const [q, off] of [...m].sort((a, b) => a[0] - b[0])) o[String(q)] = off;
      offsetTable[k] = o;
    }
    return `${JSON.stringify({ offsetTable, dataVersion: this.dataVersion }, null, 2)}\n`;
  }

  /** Writes consumerOffset.json atomically if anything changed since the last write. */
  async persist(): Promise<void> {
    const at = this.changes;
    if (at === this.persistedChanges) return;
    await writeFileAtomic(this.configFilePath, this.encode());
    this.persistedChanges = Math.max(this.persistedChanges, at);
  }

  /** Persists every `intervalMs` (upstream flushConsumerOffsetInterval) until `close()`. */
  startPeriodicPersist(intervalMs: number = DEFAULT_FLUSH_CONSUMER_OFFSET_INTERVAL_MS): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.persist().catch((e: unknown) => this.log.error({ err: e }, "persisting consumer offsets failed"));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops periodic persisting and writes the final state (broker shutdown). */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.persist();
  }
}

/**
 * JSON.parse that also accepts what upstream's fastjson writes for Map<Integer, Long>: unquoted
 * integer keys (`{0:12,1:5}`). Only used for consumerOffset.json, whose only strings are keys.
 */
export function parseFastjson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (first) {
    const quoted = text.replace(/([{,]\s*)(-?\d+)(\s*:)/g, '$1"$2"$3');
    if (quoted === text) throw first;
    return JSON.parse(quoted);
  }
}

/** Parses and checks a consumerOffset.json document. Throws FieldError naming the bad entry. */
export function decodeConsumerOffsetJson(doc: unknown): {
  table: Map<string, Map<number, number>>;
  dataVersion: DataVersion;
} {
  if (!isObject(doc)) throw new FieldError("the document must be a JSON object");
  const raw = objectAt(doc, "offsetTable", "", true);
  const table = new Map<string, Map<number, number>>();
  for (const [key, queues] of Object.entries(raw)) {
    if (splitKey(key) === undefined)
      throw new FieldError(`offsetTable key ${JSON.stringify(key)} is not topic@group`);
    if (!isObject(queues)) throw new FieldError(`offsetTable.${key} must be an object of queueId: offset`);
    const m = new Map<number, number>();
    for (const [q, off] of Object.entries(queues)) {
      const queueId = Number(q);
      if (!/^\d+$/.test(q) || !Number.isSafeInteger(queueId))
        throw new FieldError(`offsetTable.${key} has queueId ${JSON.stringify(q)}, not an integer >= 0`);
      if (typeof off !== "number" || !Number.isSafeInteger(off) || off < -1) {
        throw new FieldError(`offsetTable.${key}.${q}=${JSON.stringify(off)} must be an integer offset`);
      }
      m.set(queueId, off);
    }
    table.set(key, m);
  }
  return { table, dataVersion: dataVersionAt(doc, "") };
}

export async function createConsumerOffsetManager(
  opts: ConsumerOffsetManagerOptions,
): Promise<ConsumerOffsetManager> {
  const m = new ConsumerOffsetManager(opts);
  await m.load();
  return m;
}
