// Consumer groups: `{storePathRootDir}/config/subscriptionGroup.json` in upstream's shape
// ({"subscriptionGroupTable": {...}, "forbiddenTable": {...}, "dataVersion": {...}}), the groups a
// broker creates at start (upstream SubscriptionGroupManager.init), auto-creation on first use when
// autoCreateSubscriptionGroup is on, and each group's retry policy.

import { join } from "node:path";
import { corruptFileError, readJsonFile, writeFileAtomic } from "../../common/atomic-file.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { SystemGroup, validateGroupName } from "../../common/group-validator.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
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

export const GroupRetryPolicyType = { EXPONENTIAL: "EXPONENTIAL", CUSTOMIZED: "CUSTOMIZED" } as const;
export type GroupRetryPolicyType = (typeof GroupRetryPolicyType)[keyof typeof GroupRetryPolicyType];

export interface ExponentialRetryPolicy {
  /** First delay, ms (5 s). */
  initial: number;
  /** Longest delay, ms (2 h). */
  max: number;
  multiplier: number;
}

export interface CustomizedRetryPolicy {
  /** Delays in ms; retry n (from 0) waits next[n + 2], clamped to the last (upstream's delay-level compatibility). */
  next: number[];
}

export interface GroupRetryPolicy {
  type: GroupRetryPolicyType;
  exponentialRetryPolicy?: ExponentialRetryPolicy;
  customizedRetryPolicy?: CustomizedRetryPolicy;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
/** Upstream CustomizedRetryPolicy default: the 18 delay levels 1s 5s 10s 30s 1m 2m 3m ... 10m 20m 30m 1h 2h. */
export const DEFAULT_CUSTOMIZED_RETRY_NEXT: readonly number[] = [
  SECOND,
  5 * SECOND,
  10 * SECOND,
  30 * SECOND,
  MINUTE,
  2 * MINUTE,
  3 * MINUTE,
  4 * MINUTE,
  5 * MINUTE,
  6 * MINUTE,
  7 * MINUTE,
  8 * MINUTE,
  9 * MINUTE,
  10 * MINUTE,
  20 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
];
/** Upstream ExponentialRetryPolicy defaults. */
export const DEFAULT_EXPONENTIAL_RETRY: Readonly<ExponentialRetryPolicy> = {
  initial: 5 * SECOND,
  max: 2 * HOUR,
  multiplier: 2,
};
/** Upstream clamps the exponent at 32. */
const MAX_EXPONENT = 32;

/** Upstream RetryPolicy.nextDelayDuration for a message consumed `reconsumeTimes` times already. */
export function nextRetryDelayMs(policy: GroupRetryPolicy, reconsumeTimes: number): number {
  const n = Math.max(0, reconsumeTimes);
  if (policy.type === GroupRetryPolicyType.EXPONENTIAL && policy.exponentialRetryPolicy !== undefined) {
    const p = policy.exponentialRetryPolicy;
    return Math.min(p.max, p.initial * p.multiplier ** Math.min(n, MAX_EXPONENT));
  }
  const next =
    policy.type === GroupRetryPolicyType.CUSTOMIZED && policy.customizedRetryPolicy !== undefined
      ? policy.customizedRetryPolicy.next
      : DEFAULT_CUSTOMIZED_RETRY_NEXT;
  return next[Math.min(n + 2, next.length - 1)] as number;
}

export interface SubscriptionGroupConfig {
  groupName: string;
  consumeEnable: boolean;
  consumeFromMinEnable: boolean;
  consumeBroadcastEnable: boolean;
  /** The "FIFO group" switch. */
  consumeMessageOrderly: boolean;
  retryQueueNums: number;
  retryMaxTimes: number;
  groupRetryPolicy: GroupRetryPolicy;
  brokerId: number;
  whichBrokerWhenConsumeSlowly: number;
  notifyConsumerIdsChangedEnable: boolean;
  groupSysFlag: number;
  /** Push consumers only (15). */
  consumeTimeoutMinute: number;
  attributes: Record<string, string>;
}

export type SubscriptionGroupInput = Pick<SubscriptionGroupConfig, "groupName"> &
  Partial<Omit<SubscriptionGroupConfig, "groupName">>;

/** Upstream SubscriptionGroupConfig defaults. */
export function newSubscriptionGroupConfig(input: SubscriptionGroupInput): SubscriptionGroupConfig {
  return {
    groupName: input.groupName,
    consumeEnable: input.consumeEnable ?? true,
    consumeFromMinEnable: input.consumeFromMinEnable ?? true,
    consumeBroadcastEnable: input.consumeBroadcastEnable ?? true,
    consumeMessageOrderly: input.consumeMessageOrderly ?? false,
    retryQueueNums: input.retryQueueNums ?? 1,
    retryMaxTimes: input.retryMaxTimes ?? 16,
    groupRetryPolicy: input.groupRetryPolicy ?? { type: GroupRetryPolicyType.CUSTOMIZED },
    brokerId: input.brokerId ?? 0,
    whichBrokerWhenConsumeSlowly: input.whichBrokerWhenConsumeSlowly ?? 1,
    notifyConsumerIdsChangedEnable: input.notifyConsumerIdsChangedEnable ?? true,
    groupSysFlag: input.groupSysFlag ?? 0,
    consumeTimeoutMinute: input.consumeTimeoutMinute ?? 15,
    attributes: { ...(input.attributes ?? {}) },
  };
}

/** Our bounds (upstream has none): retry queues per group, retries before DLQ. */
export const MAX_RETRY_QUEUE_NUMS = 1024;
export const MAX_RETRY_MAX_TIMES = 65_535;

function illegalGroupConfig(group: string, rule: string): RmqError {
  return new RmqError(
    ErrorCode.IllegalArgument,
    `subscription group ${quoteForMessage(group)} is illegal: ${rule}`,
  );
}

/** Checks a group's values (not its name). Throws RmqError(IllegalArgument) naming the field. */
export function validateSubscriptionGroupValues(g: SubscriptionGroupConfig): void {
  const bad = (rule: string) => illegalGroupConfig(g.groupName, rule);
  const int = (name: string, v: number, min: number, max: number) => {
    if (!Number.isInteger(v) || v < min || v > max)
      throw bad(`${name}=${v} must be an integer from ${min} to ${max}`);
  };
  int("retryQueueNums", g.retryQueueNums, 0, MAX_RETRY_QUEUE_NUMS);
  int("retryMaxTimes", g.retryMaxTimes, -1, MAX_RETRY_MAX_TIMES);
  int("brokerId", g.brokerId, 0, Number.MAX_SAFE_INTEGER);
  int("whichBrokerWhenConsumeSlowly", g.whichBrokerWhenConsumeSlowly, 0, Number.MAX_SAFE_INTEGER);
  int("groupSysFlag", g.groupSysFlag, 0, Number.MAX_SAFE_INTEGER);
  int("consumeTimeoutMinute", g.consumeTimeoutMinute, 0, Number.MAX_SAFE_INTEGER);
  const p = g.groupRetryPolicy;
  if (p.type !== GroupRetryPolicyType.EXPONENTIAL && p.type !== GroupRetryPolicyType.CUSTOMIZED) {
    throw bad(`groupRetryPolicy.type=${String(p.type)} must be EXPONENTIAL or CUSTOMIZED`);
  }
  const e = p.exponentialRetryPolicy;
  if (e !== undefined) {
    if (!Number.isSafeInteger(e.initial) || e.initial <= 0)
      throw bad(`exponentialRetryPolicy.initial=${e.initial} must be a positive integer (ms)`);
    if (!Number.isSafeInteger(e.max) || e.max < e.initial)
      throw bad(`exponentialRetryPolicy.max=${e.max} must be an integer >= initial (ms)`);
    if (!Number.isSafeInteger(e.multiplier) || e.multiplier < 1)
      throw bad(`exponentialRetryPolicy.multiplier=${e.multiplier} must be an integer >= 1`);
  }
  const c = p.customizedRetryPolicy;
  if (c !== undefined) {
    if (
      !Array.isArray(c.next) ||
      c.next.length === 0 ||
      !c.next.every((v) => Number.isSafeInteger(v) && v >= 0)
    ) {
      throw bad("customizedRetryPolicy.next must be a non-empty list of delays in ms (integers >= 0)");
    }
  }
}

export interface SubscriptionGroupManagerOptions {
  storePathRootDir: string;
  autoCreateSubscriptionGroup: boolean;
  logger?: Logger;
}

export class SubscriptionGroupManager {
  readonly configFilePath: string;
  private readonly opts: SubscriptionGroupManagerOptions;
  private readonly log: Logger;
  private readonly table = new Map<string, SubscriptionGroupConfig>();
  /** Upstream forbiddenTable (group -> topic -> bits), kept as loaded. */
  private forbiddenTable: JsonObject = {};
  readonly dataVersion: DataVersion = newDataVersion();

  constructor(opts: SubscriptionGroupManagerOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger();
    this.configFilePath = join(opts.storePathRootDir, "config", "subscriptionGroup.json");
  }

  async load(): Promise<void> {
    for (const groupName of [
      SystemGroup.TOOLS_CONSUMER,
      SystemGroup.FILTERSRV_CONSUMER,
      SystemGroup.SELF_TEST_CONSUMER,
    ]) {
      this.table.set(groupName, newSubscriptionGroupConfig({ groupName }));
    }
    for (const groupName of [
      SystemGroup.ONS_HTTP_PROXY,
      SystemGroup.ONSAPI_PULL,
      SystemGroup.ONSAPI_PERMISSION,
      SystemGroup.ONSAPI_OWNER,
      SystemGroup.SYS_RMQ_TRANS,
    ]) {
      this.table.set(groupName, newSubscriptionGroupConfig({ groupName, consumeBroadcastEnable: true }));
    }
    const doc = await readJsonFile(this.configFilePath);
    if (doc === undefined) return;
    try {
      const loaded = decodeSubscriptionGroupJson(doc);
      for (const g of loaded.groups) this.table.set(g.groupName, g);
      this.forbiddenTable = loaded.forbiddenTable;
      Object.assign(this.dataVersion, loaded.dataVersion);
      this.log.info(
        { file: this.configFilePath, groups: loaded.groups.length },
        "loaded subscription groups",
      );
    } catch (e) {
      if (e instanceof FieldError || e instanceof RmqError)
        throw corruptFileError(this.configFilePath, e.message, e);
      throw e;
    }
  }

  get(group: string): SubscriptionGroupConfig | undefined {
    return this.table.get(group);
  }

  list(): SubscriptionGroupConfig[] {
    return [...this.table.values()];
  }

  /**
   * Upstream findSubscriptionGroupConfig: the group, auto-created with defaults on first use when
   * autoCreateSubscriptionGroup is on (and the name is legal). Undefined otherwise.
   */
  async findOrAutoCreate(group: string): Promise<SubscriptionGroupConfig | undefined> {
    const existing = this.table.get(group);
    if (existing !== undefined || !this.opts.autoCreateSubscriptionGroup) return existing;
    try {
      validateGroupName(group);
    } catch {
      return undefined;
    }
    const g = newSubscriptionGroupConfig({ groupName: group });
    this.table.set(group, g);
    await this.changed();
    this.log.info({ group }, "subscription group auto-created");
    return g;
  }

  /** Creates or updates a group (mqadmin updateSubGroup); fields left out keep their current values. */
  async createOrUpdate(input: SubscriptionGroupInput): Promise<SubscriptionGroupConfig> {
    validateGroupName(input.groupName);
    const prev = this.table.get(input.groupName);
    const given = Object.fromEntries(
      Object.entries(input).filter(([, v]) => v !== undefined),
    ) as SubscriptionGroupInput;
    const g = newSubscriptionGroupConfig(prev === undefined ? given : { ...prev, ...given });
    validateSubscriptionGroupValues(g);
    this.table.set(g.groupName, g);
    await this.changed();
    this.log.info({ group: g.groupName, created: prev === undefined }, "subscription group updated");
    return g;
  }

  async delete(group: string): Promise<boolean> {
    if (!this.table.delete(group)) return false;
    delete this.forbiddenTable[group];
    await this.changed();
    this.log.info({ group }, "subscription group deleted");
    return true;
  }

  private async changed(): Promise<void> {
    nextDataVersion(this.dataVersion);
    await this.persist();
  }

  encode(): string {
    const subscriptionGroupTable: Record<string, SubscriptionGroupConfig> = {};
    for (const [k, v] of this.table) subscriptionGroupTable[k] = v;
    return `${JSON.stringify({ subscriptionGroupTable, forbiddenTable: this.forbiddenTable, dataVersion: this.dataVersion }, null, 2)}\n`;
  }

  persist(): Promise<void> {
    return writeFileAtomic(this.configFilePath, this.encode());
  }
}

/** Parses and checks a subscriptionGroup.json document. Throws FieldError or RmqError naming the bad field. */
export function decodeSubscriptionGroupJson(doc: unknown): {
  groups: SubscriptionGroupConfig[];
  forbiddenTable: JsonObject;
  dataVersion: DataVersion;
} {
  if (!isObject(doc)) throw new FieldError("the document must be a JSON object");
  const table = objectAt(doc, "subscriptionGroupTable", "", true);
  const groups: SubscriptionGroupConfig[] = [];
  for (const [name, raw] of Object.entries(table)) {
    const where = `subscriptionGroupTable.${name}.`;
    if (!isObject(raw)) throw new FieldError(`${where.slice(0, -1)} must be an object`);
    const groupName = stringAt(raw, "groupName", name, where);
    if (groupName !== name)
      throw new FieldError(`${where}groupName=${JSON.stringify(groupName)} differs from its key`);
    const g: SubscriptionGroupConfig = {
      groupName,
      consumeEnable: boolAt(raw, "consumeEnable", true, where),
      consumeFromMinEnable: boolAt(raw, "consumeFromMinEnable", true, where),
      consumeBroadcastEnable: boolAt(raw, "consumeBroadcastEnable", true, where),
      consumeMessageOrderly: boolAt(raw, "consumeMessageOrderly", false, where),
      retryQueueNums: intAt(raw, "retryQueueNums", 1, where),
      retryMaxTimes: intAt(raw, "retryMaxTimes", 16, where),
      groupRetryPolicy: decodeRetryPolicy(
        objectAt(raw, "groupRetryPolicy", where),
        `${where}groupRetryPolicy.`,
      ),
      brokerId: intAt(raw, "brokerId", 0, where),
      whichBrokerWhenConsumeSlowly: intAt(raw, "whichBrokerWhenConsumeSlowly", 1, where),
      notifyConsumerIdsChangedEnable: boolAt(raw, "notifyConsumerIdsChangedEnable", true, where),
      groupSysFlag: intAt(raw, "groupSysFlag", 0, where),
      consumeTimeoutMinute: intAt(raw, "consumeTimeoutMinute", 15, where),
      attributes: stringMapAt(raw, "attributes", where),
    };
    validateSubscriptionGroupValues(g);
    groups.push(g);
  }
  return { groups, forbiddenTable: objectAt(doc, "forbiddenTable", ""), dataVersion: dataVersionAt(doc, "") };
}

function decodeRetryPolicy(raw: JsonObject, where: string): GroupRetryPolicy {
  const type = enumAt(
    raw,
    "type",
    Object.values(GroupRetryPolicyType),
    GroupRetryPolicyType.CUSTOMIZED,
    where,
  );
  const policy: GroupRetryPolicy = { type };
  if (isObject(raw.exponentialRetryPolicy)) {
    const e = raw.exponentialRetryPolicy;
    const w = `${where}exponentialRetryPolicy.`;
    policy.exponentialRetryPolicy = {
      initial: intAt(e, "initial", DEFAULT_EXPONENTIAL_RETRY.initial, w),
      max: intAt(e, "max", DEFAULT_EXPONENTIAL_RETRY.max, w),
      multiplier: intAt(e, "multiplier", DEFAULT_EXPONENTIAL_RETRY.multiplier, w),
    };
  }
  if (isObject(raw.customizedRetryPolicy)) {
    const next = raw.customizedRetryPolicy.next;
    if (next !== undefined && !Array.isArray(next))
      throw new FieldError(`${where}customizedRetryPolicy.next must be a list`);
    policy.customizedRetryPolicy = {
      next: next === undefined ? [...DEFAULT_CUSTOMIZED_RETRY_NEXT] : (next as number[]),
    };
  }
  return policy;
}

export async function createSubscriptionGroupManager(
  opts: SubscriptionGroupManagerOptions,
): Promise<SubscriptionGroupManager> {
  const m = new SubscriptionGroupManager(opts);
  await m.load();
  return m;
}
