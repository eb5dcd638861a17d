// The broker's topics: `{storePathRootDir}/config/topics.json` in upstream's shape
// ({"topicConfigTable": {name: TopicConfig}, "dataVersion": {...}}), the system topics every broker
// creates at start (upstream TopicConfigManager.init), and create/update/delete/get/list.

import { join } from "node:path";
import { corruptFileError, readJsonFile, writeFileAtomic } from "../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import {
  isSystemTopic,
  REPLY_TOPIC_POSTFIX,
  REVIVE_TOPIC_PREFIX,
  SYNC_BROKER_MEMBER_GROUP_PREFIX,
  SystemTopic,
  validateTopicName,
} from "../../common/topic-validator.ts";
import { quoteForMessage } from "../../common/value-validator.ts";
import { type DataVersion, newDataVersion, nextDataVersion } from "./data-version.ts";
import {
  boolAt,
  dataVersionAt,
  enumAt,
  FieldError,
  intAt,
  isObject,
  type JsonObject,
  objectAt,
  stringAt,
  stringMapAt,
} from "./json-fields.ts";

/** Upstream PermName bits. */
export const PermName = { PERM_PRIORITY: 8, PERM_READ: 4, PERM_WRITE: 2, PERM_INHERIT: 1 } as const;
/** Upstream PermName.isValid: 0 <= perm < PERM_PRIORITY. */
export const MAX_PERM = PermName.PERM_PRIORITY - 1;

export const TopicFilterType = { SINGLE_TAG: "SINGLE_TAG", MULTI_TAG: "MULTI_TAG" } as const;
export type TopicFilterType = (typeof TopicFilterType)[keyof typeof TopicFilterType];
const TOPIC_FILTER_TYPES = Object.values(TopicFilterType);

/** The `message.type` attribute (upstream TopicMessageType, plus PRIORITY and LITE of later versions). */
export const TopicMessageType = {
  UNSPECIFIED: "UNSPECIFIED",
  NORMAL: "NORMAL",
  FIFO: "FIFO",
  DELAY: "DELAY",
  TRANSACTION: "TRANSACTION",
  MIXED: "MIXED",
  PRIORITY: "PRIORITY",
  LITE: "LITE",
} as const;
export type TopicMessageType = (typeof TopicMessageType)[keyof typeof TopicMessageType];
const TOPIC_MESSAGE_TYPES = Object.values(TopicMessageType);

/** Topic attributes upstream knows (TopicAttributes), with their allowed values. */
export const TopicAttribute = {
  MESSAGE_TYPE: "message.type",
  QUEUE_TYPE: "queue.type",
  CLEANUP_POLICY: "cleanup.policy",
  RESERVE_TIME: "reserve.time",
} as const;
const ENUM_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = {
  [TopicAttribute.MESSAGE_TYPE]: TOPIC_MESSAGE_TYPES,
  [TopicAttribute.QUEUE_TYPE]: ["SimpleCQ", "BatchCQ"],
  [TopicAttribute.CLEANUP_POLICY]: ["DELETE", "COMPACTION"],
};

/** Upstream TopicConfig defaults: 16 read and 16 write queues, perm READ|WRITE. */
export const DEFAULT_TOPIC_QUEUE_NUMS = 16;
/** Upstream TopicConfigManager SCHEDULE_TOPIC_QUEUE_NUM: one queue per delay level (18). */
export const SCHEDULE_TOPIC_QUEUE_NUM = 18;
/** Our bound on queues per topic (upstream has none; it keeps a typo from creating millions of queues). */
export const MAX_QUEUE_NUMS = 65_535;
/** Upstream DefaultMQProducer.defaultTopicQueueNums: queues a producer asks for when auto-creating (4). */
export const DEFAULT_CLIENT_TOPIC_QUEUE_NUMS = 4;

export interface TopicConfig {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicFilterType: TopicFilterType;
  topicSysFlag: number;
  order: boolean;
  attributes: Record<string, string>;
}

export type TopicConfigInput = Pick<TopicConfig, "topicName"> & Partial<Omit<TopicConfig, "topicName">>;

/** A topic's message type: its `message.type` attribute, NORMAL when absent (upstream getTopicMessageType). */
export function topicMessageType(tc: TopicConfig): TopicMessageType {
  return (
    (tc.attributes[TopicAttribute.MESSAGE_TYPE] as TopicMessageType | undefined) ?? TopicMessageType.NORMAL
  );
}

export function isReadable(perm: number): boolean {
  return (perm & PermName.PERM_READ) !== 0;
}
export function isWriteable(perm: number): boolean {
  return (perm & PermName.PERM_WRITE) !== 0;
}
export function isInherited(perm: number): boolean {
  return (perm & PermName.PERM_INHERIT) !== 0;
}

export function newTopicConfig(input: TopicConfigInput): TopicConfig {
  return {
    topicName: input.topicName,
    readQueueNums: input.readQueueNums ?? DEFAULT_TOPIC_QUEUE_NUMS,
    writeQueueNums: input.writeQueueNums ?? DEFAULT_TOPIC_QUEUE_NUMS,
    perm: input.perm ?? PermName.PERM_READ | PermName.PERM_WRITE,
    topicFilterType: input.topicFilterType ?? TopicFilterType.SINGLE_TAG,
    topicSysFlag: input.topicSysFlag ?? 0,
    order: input.order ?? false,
    attributes: { ...(input.attributes ?? {}) },
  };
}

/** The broker settings the topic table depends on (field names as in BrokerConfig). */
export interface TopicConfigManagerOptions {
  storePathRootDir: string;
  brokerClusterName: string;
  brokerName: string;
  autoCreateTopicEnable: boolean;
  defaultTopicQueueNums: number;
  clusterTopicEnable: boolean;
  brokerTopicEnable: boolean;
  traceTopicEnable: boolean;
  msgTraceTopicName: string;
  reviveQueueNum: number;
  timerWheelEnable: boolean;
  enableMixedMessageType?: boolean;
  validateSystemTopicWhenUpdateTopic?: boolean;
  logger?: Logger;
}

function illegalTopicConfig(topic: string, rule: string): RmqError {
  return new RmqError(
    ErrorCode.IllegalArgument,
    `topic config of ${quoteForMessage(topic)} is illegal: ${rule}`,
  );
}

/** Checks a topic config's values (not its name); `where` prefixes messages. Throws RmqError(IllegalArgument). */
export function validateTopicConfigValues(
  tc: TopicConfig,
  opts: { enableMixedMessageType?: boolean; knownAttributesOnly?: boolean } = {},
): void {
  const t = tc.topicName;
  for (const k of ["readQueueNums", "writeQueueNums"] as const) {
    const v = tc[k];
    if (!Number.isInteger(v) || v < 0 || v > MAX_QUEUE_NUMS) {
      throw illegalTopicConfig(t, `${k}=${v} must be an integer from 0 to ${MAX_QUEUE_NUMS}`);
    }
  }
  if (!Number.isInteger(tc.perm) || tc.perm < 0 || tc.perm > MAX_PERM) {
    throw illegalTopicConfig(
      t,
      `perm=${tc.perm} must be an integer from 0 to ${MAX_PERM} (READ 4 | WRITE 2 | INHERIT 1)`,
    );
  }
  if (!TOPIC_FILTER_TYPES.includes(tc.topicFilterType)) {
    throw illegalTopicConfig(
      t,
      `topicFilterType=${tc.topicFilterType} must be one of ${TOPIC_FILTER_TYPES.join(", ")}`,
    );
  }
  if (!Number.isInteger(tc.topicSysFlag) || tc.topicSysFlag < 0) {
    throw illegalTopicConfig(t, `topicSysFlag=${tc.topicSysFlag} must be a non-negative integer`);
  }
  for (const [k, v] of Object.entries(tc.attributes)) {
    const allowed = ENUM_ATTRIBUTES[k];
    if (allowed !== undefined) {
      if (!allowed.includes(v))
        throw illegalTopicConfig(t, `attribute ${k}=${v} must be one of ${allowed.join(", ")}`);
    } else if (k === TopicAttribute.RESERVE_TIME) {
      if (!/^-?\d+$/.test(v) || Number(v) < -1)
        throw illegalTopicConfig(t, `attribute ${k}=${v} must be an integer >= -1`);
    } else if (opts.knownAttributesOnly) {
      throw illegalTopicConfig(
        t,
        `attribute ${quoteForMessage(k)} is not supported; supported: ${Object.values(TopicAttribute).join(", ")}`,
      );
    }
  }
  if (!opts.enableMixedMessageType && tc.attributes[TopicAttribute.MESSAGE_TYPE] === TopicMessageType.MIXED) {
    throw illegalTopicConfig(t, "message.type=MIXED is not allowed unless enableMixedMessageType=true");
  }
}

export class TopicConfigManager {
  readonly configFilePath: string;
  private readonly opts: TopicConfigManagerOptions;
  private readonly log: Logger;
  private readonly table = new Map<string, TopicConfig>();
  private readonly systemTopicSet = new Set<string>();
  readonly dataVersion: DataVersion = newDataVersion();

  constructor(opts: TopicConfigManagerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger();
    this.configFilePath = join(opts.storePathRootDir, "config", "topics.json");
  }

  /** Creates the system topics, then overlays topics.json (the file wins for topics it has, as upstream). */
  async load(): Promise<void> {
    this.initSystemTopics();
    const doc = await readJsonFile(this.configFilePath);
    if (doc === undefined) return;
    let loaded: { topics: TopicConfig[]; dataVersion: DataVersion };
    try {
      loaded = decodeTopicsJson(doc);
    } catch (e) {
      if (e instanceof FieldError || e instanceof RmqError)
        throw corruptFileError(this.configFilePath, e.message, e);
      throw e;
    }
    for (const tc of loaded.topics) this.table.set(tc.topicName, tc);
    Object.assign(this.dataVersion, loaded.dataVersion);
    this.log.info({ file: this.configFilePath, topics: loaded.topics.length }, "loaded topic configs");
  }

  private initSystemTopics(): void {
    const o = this.opts;
    const sys = (input: TopicConfigInput) => {
      this.systemTopicSet.add(input.topicName);
      this.table.set(input.topicName, newTopicConfig(input));
    };
    const rw = PermName.PERM_READ | PermName.PERM_WRITE;
    sys({ topicName: SystemTopic.SELF_TEST, readQueueNums: 1, writeQueueNums: 1 });
    if (o.autoCreateTopicEnable) {
      sys({
        topicName: SystemTopic.AUTO_CREATE_TOPIC_KEY,
        readQueueNums: o.defaultTopicQueueNums,
        writeQueueNums: o.defaultTopicQueueNums,
        perm: PermName.PERM_INHERIT | rw,
      });
    }
    sys({ topicName: SystemTopic.BENCHMARK, readQueueNums: 1024, writeQueueNums: 1024 });
    sys({ topicName: o.brokerClusterName, perm: PermName.PERM_INHERIT | (o.clusterTopicEnable ? rw : 0) });
    sys({
      topicName: o.brokerName,
      readQueueNums: 1,
      writeQueueNums: 1,
      perm: PermName.PERM_INHERIT | (o.brokerTopicEnable ? rw : 0),
    });
    sys({ topicName: SystemTopic.OFFSET_MOVED_EVENT, readQueueNums: 1, writeQueueNums: 1 });
    sys({
      topicName: SystemTopic.SCHEDULE,
      readQueueNums: SCHEDULE_TOPIC_QUEUE_NUM,
      writeQueueNums: SCHEDULE_TOPIC_QUEUE_NUM,
    });
    if (o.traceTopicEnable) sys({ topicName: o.msgTraceTopicName, readQueueNums: 1, writeQueueNums: 1 });
    sys({ topicName: `${o.brokerClusterName}_${REPLY_TOPIC_POSTFIX}`, readQueueNums: 1, writeQueueNums: 1 });
    sys({
      topicName: REVIVE_TOPIC_PREFIX + o.brokerClusterName,
      readQueueNums: o.reviveQueueNum,
      writeQueueNums: o.reviveQueueNum,
    });
    sys({
      topicName: SYNC_BROKER_MEMBER_GROUP_PREFIX + o.brokerName,
      readQueueNums: 1,
      writeQueueNums: 1,
      perm: PermName.PERM_INHERIT,
    });
    sys({ topicName: SystemTopic.TRANS_HALF, readQueueNums: 1, writeQueueNums: 1 });
    sys({ topicName: SystemTopic.TRANS_OP_HALF, readQueueNums: 1, writeQueueNums: 1 });
    if (o.timerWheelEnable) sys({ topicName: SystemTopic.TIMER, readQueueNums: 1, writeQueueNums: 1 });
  }

  /** Names this broker registered as system topics at start (cluster and broker names among them). */
  systemTopics(): ReadonlySet<string> {
    return this.systemTopicSet;
  }

  isSystemTopic(topic: string): boolean {
    return isSystemTopic(topic, this.systemTopicSet);
  }

  get(topic: string): TopicConfig | undefined {
    return this.table.get(topic);
  }

  has(topic: string): boolean {
    return this.table.has(topic);
  }

  list(): TopicConfig[] {
    return [...this.table.values()];
  }

  /**
   * Creates or updates a topic as an operator asks (mqadmin updateTopic): the name must be legal
   * and, unless `allowSystemTopic`, not a system topic; values are checked; only known attributes.
   * On update, fields left out keep their current values (`attributes`, when given, replaces the map).
   */
  async createOrUpdate(
    input: TopicConfigInput,
    opts: { allowSystemTopic?: boolean } = {},
  ): Promise<TopicConfig> {
    validateTopicName(input.topicName);
    if (
      !opts.allowSystemTopic &&
      (this.opts.validateSystemTopicWhenUpdateTopic ?? true) &&
      this.isSystemTopic(input.topicName)
    ) {
      throw new RmqError(
        ErrorCode.IllegalTopic,
        `topic ${quoteForMessage(input.topicName)} is illegal: it conflicts with a system topic`,
      );
    }
    const prev = this.table.get(input.topicName);
    const given = Object.fromEntries(
      Object.entries(input).filter(([, v]) => v !== undefined),
    ) as TopicConfigInput;
    const tc = newTopicConfig(prev === undefined ? given : { ...prev, ...given });
    validateTopicConfigValues(tc, {
      enableMixedMessageType: this.opts.enableMixedMessageType,
      knownAttributesOnly: true,
    });
    if (prev !== undefined && sameTopicConfig(prev, tc)) return prev; // idempotent, as upstream
    this.table.set(tc.topicName, tc);
    await this.changed();
    this.log.info({ topic: tc.topicName, created: prev === undefined }, "topic config updated");
    return tc;
  }

  /** Creates `input` if no topic of that name exists (retry and DLQ topics, internal callers); returns the one in force. */
  async createIfAbsent(input: TopicConfigInput): Promise<TopicConfig> {
    const existing = this.table.get(input.topicName);
    if (existing !== undefined) return existing;
    validateTopicName(input.topicName);
    const tc = newTopicConfig(input);
    validateTopicConfigValues(tc, { enableMixedMessageType: true });
    this.table.set(tc.topicName, tc);
    await this.changed();
    return tc;
  }

  /**
   * Upstream createTopicInSendMessageMethod: a producer sent to an unknown topic; create it from the
   * template (TBW102) if the template is inheritable. Returns undefined when that is not allowed.
   */
  async createFromTemplate(
    topic: string,
    opts: { templateTopic?: string; clientDefaultTopicQueueNums?: number; topicSysFlag?: number } = {},
  ): Promise<TopicConfig | undefined> {
    const existing = this.table.get(topic);
    if (existing !== undefined) return existing;
    validateTopicName(topic);
    const templateName = opts.templateTopic ?? SystemTopic.AUTO_CREATE_TOPIC_KEY;
    const template = this.table.get(templateName);
    if (template === undefined) return undefined;
    let templatePerm = template.perm;
    if (templateName === SystemTopic.AUTO_CREATE_TOPIC_KEY && !this.opts.autoCreateTopicEnable) {
      templatePerm = PermName.PERM_READ | PermName.PERM_WRITE; // upstream: auto-creation switched off
    }
    if (!isInherited(templatePerm)) return undefined;
    const queueNums = Math.max(
      0,
      Math.min(opts.clientDefaultTopicQueueNums ?? DEFAULT_CLIENT_TOPIC_QUEUE_NUMS, template.writeQueueNums),
    );
    const tc = newTopicConfig({
      topicName: topic,
      readQueueNums: queueNums,
      writeQueueNums: queueNums,
      perm: templatePerm & ~PermName.PERM_INHERIT,
      topicSysFlag: opts.topicSysFlag ?? 0,
      topicFilterType: template.topicFilterType,
    });
    this.table.set(topic, tc);
    await this.changed();
    this.log.info({ topic, template: templateName }, "topic auto-created");
    return tc;
  }

  async delete(topic: string): Promise<boolean> {
    if (!this.table.delete(topic)) return false;
    await this.changed();
    this.log.info({ topic }, "topic config deleted");
    return true;
  }

  private async changed(): Promise<void> {
    nextDataVersion(this.dataVersion);
    await this.persist();
  }

  encode(): string {
    const topicConfigTable: Record<string, TopicConfig> = {};
    for (const [k, v] of this.table) topicConfigTable[k] = v;
    return `${JSON.stringify({ topicConfigTable, dataVersion: this.dataVersion }, null, 2)}\n`;
  }

  /** Writes topics.json atomically (temp + fsync + rename + directory fsync). */
  persist(): Promise<void> {
    return writeFileAtomic(this.configFilePath, this.encode());
  }
}

function sameTopicConfig(a: TopicConfig, b: TopicConfig): boolean {
  return (
    a.topicName === b.topicName &&
    a.readQueueNums === b.readQueueNums &&
    a.writeQueueNums === b.writeQueueNums &&
    a.perm === b.perm &&
    a.topicFilterType === b.topicFilterType &&
    a.topicSysFlag === b.topicSysFlag &&
    a.order === b.order &&
    sameAttributes(a.attributes, b.attributes)
  );
}

function sameAttributes(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/** Parses and checks a topics.json document. Throws FieldError naming the bad field. */
export function decodeTopicsJson(doc: unknown): { topics: TopicConfig[]; dataVersion: DataVersion } {
  if (!isObject(doc)) throw new FieldError("the document must be a JSON object");
  const table = objectAt(doc, "topicConfigTable", "", true);
  const topics: TopicConfig[] = [];
  for (const [name, raw] of Object.entries(table)) {
    const where = `topicConfigTable.${name}.`;
    if (!isObject(raw)) throw new FieldError(`${where.slice(0, -1)} must be an object`);
    const tc = decodeTopicConfig(raw as JsonObject, name, where);
    validateTopicConfigValues(tc, { enableMixedMessageType: true });
    topics.push(tc);
  }
  return { topics, dataVersion: dataVersionAt(doc, "") };
}

function decodeTopicConfig(raw: JsonObject, key: string, where: string): TopicConfig {
  const topicName = stringAt(raw, "topicName", key, where);
  if (topicName !== key)
    throw new FieldError(`${where}topicName=${JSON.stringify(topicName)} differs from its key`);
  return {
    topicName,
    readQueueNums: intAt(raw, "readQueueNums", DEFAULT_TOPIC_QUEUE_NUMS, where, 0, MAX_QUEUE_NUMS),
    writeQueueNums: intAt(raw, "writeQueueNums", DEFAULT_TOPIC_QUEUE_NUMS, where, 0, MAX_QUEUE_NUMS),
    perm: intAt(raw, "perm", PermName.PERM_READ | PermName.PERM_WRITE, where, 0, MAX_PERM),
    topicFilterType: enumAt(raw, "topicFilterType", TOPIC_FILTER_TYPES, TopicFilterType.SINGLE_TAG, where),
    topicSysFlag: intAt(raw, "topicSysFlag", 0, where, 0),
    order: boolAt(raw, "order", false, where),
    attributes: stringMapAt(raw, "attributes", where),
  };
}

/** Creates the manager and loads topics.json. Throws RmqError(MetadataCorrupt) for an unusable file. */
export async function createTopicConfigManager(opts: TopicConfigManagerOptions): Promise<TopicConfigManager> {
  const m = new TopicConfigManager(opts);
  await m.load();
  return m;
}
