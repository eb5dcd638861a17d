// The NameServer's key/value config (upstream KVConfigManager): namespace -> key -> value, kept in
// `kvConfigPath` as upstream's kvConfig.json, {"configTable":{"<namespace>":{"<key>":"<value>"}}}.
// Every change is written atomically (common/atomic-file.ts) before the call returns, so a value
// that was acknowledged survives a crash. The ORDER_TOPIC_CONFIG namespace holds order-topic
// layouts (topic -> "brokerName:queueNums;...") served with routes when orderMessageEnable=true.

import { corruptFileError, readJsonFile, writeFileAtomic } from "../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";

/** Upstream NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG. */
export const NAMESPACE_ORDER_TOPIC_CONFIG = "ORDER_TOPIC_CONFIG";

function decode(doc: unknown): Map<string, Map<string, string>> {
  const table = new Map<string, Map<string, string>>();
  if (typeof doc !== "object" || doc === null || Array.isArray(doc))
    throw new Error("expected a JSON object");
  const configTable = (doc as Record<string, unknown>).configTable;
  if (configTable === undefined || configTable === null) return table;
  if (typeof configTable !== "object" || Array.isArray(configTable))
    throw new Error("configTable is not an object");
  for (const [ns, kv] of Object.entries(configTable as Record<string, unknown>)) {
    if (typeof kv !== "object" || kv === null || Array.isArray(kv))
      throw new Error(`configTable.${ns} is not an object`);
    const m = new Map<string, string>();
    for (const [k, v] of Object.entries(kv as Record<string, unknown>)) {
      if (typeof v !== "string") throw new Error(`configTable.${ns}.${k} is not a string`);
      m.set(k, v);
    }
    table.set(ns, m);
  }
  return table;
}

function requireName(what: string, v: string): void {
  if (v === "") throw new RmqError(ErrorCode.IllegalArgument, `kv config ${what} must not be empty`);
}

export class KvConfigManager {
  readonly path: string;
  private readonly table: Map<string, Map<string, string>>;
  private readonly log: Logger;

  /** Use createKvConfigManager(), which loads the file. */
  constructor(path: string, table: Map<string, Map<string, string>>, log: Logger = silentLogger()) {
    this.path = path;
    this.table = table;
    this.log = log;
  }

  async put(namespace: string, key: string, value: string): Promise<void> {
    requireName("namespace", namespace);
    requireName("key", key);
    let kv = this.table.get(namespace);
    if (kv === undefined) {
      kv = new Map();
      this.table.set(namespace, kv);
    }
    const prev = kv.get(key);
    kv.set(key, value);
    this.log.info(
      { namespace, key, value, prev },
      prev === undefined ? "kv config created" : "kv config updated",
    );
    await this.persist();
  }

  get(namespace: string, key: string): string | undefined {
    return this.table.get(namespace)?.get(key);
  }

  /** Removes the key; a namespace left empty is removed too. Deleting a missing key is not an error. */
  async delete(namespace: string, key: string): Promise<void> {
    const kv = this.table.get(namespace);
    if (kv === undefined || !kv.delete(key)) return;
    if (kv.size === 0) this.table.delete(namespace);
    this.log.info({ namespace, key }, "kv config deleted");
    await this.persist();
  }

  /** Every key of `namespace` (empty when the namespace is unknown). */
  list(namespace: string): Map<string, string> {
    return new Map(this.table.get(namespace) ?? []);
  }

  private persist(): Promise<void> {
    const configTable: Record<string, Record<string, string>> = {};
    for (const [ns, kv] of this.table) configTable[ns] = Object.fromEntries(kv);
    return writeFileAtomic(this.path, JSON.stringify({ configTable }, null, 2));
  }
}

/** Loads `path` (absent = empty table). A file that does not parse is RmqError(MetadataCorrupt). */
export async function createKvConfigManager(
  path: string,
  logger: Logger = silentLogger(),
): Promise<KvConfigManager> {
  const doc = await readJsonFile(path);
  let table = new Map<string, Map<string, string>>();
  if (doc !== undefined) {
    try {
      table = decode(doc);
    } catch (e) {
      throw corruptFileError(path, (e as Error).message, e);
    }
    logger.info({ path, namespaces: table.size }, "kv config loaded");
  }
  return new KvConfigManager(path, table, logger);
}
