// The broker's admin RPC service (proto/rmq/broker/v1/broker_admin.proto): what mqadmin asks a broker
// for — create/update/delete topics and subscription groups, topic and consumer statistics, runtime
// info, and message queries. The broker mounts it on its internal RPC server, either as
// `createBrokerController({ ..., extraRoutes: [mountBrokerAdmin] })` or by hand:
//
//   const server = await createRpcServer({
//     host, port: listenPort,
//     routes: (router) => {
//       mountOtherServices(router);
//       createBrokerAdminRoutes({ topics, groups, offsets, messageService, store, brokerName,
//         clusterName, onTopicsChanged: () => void registrar.registerAll() })(router);
//     },
//   });
//
// Topic attribute changes follow upstream's AttributeUtil: "+key=value" adds or changes, "-key"
// removes an existing key, only known keys, and queue.type / cleanup.policy only when the topic is
// created. Every failure is an RmqError the caller receives with the same code.

import * as fs from "node:fs";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { isSystemGroup, validateGroupName } from "../common/group-validator.ts";
import { validateTopicName } from "../common/topic-validator.ts";
import { quoteForMessage } from "../common/value-validator.ts";
import {
  BrokerAdminService,
  type BrokerTopicConfigSchema,
  type GroupRetryPolicy as GroupRetryPolicyMsg,
  type MessageViewSchema,
  type SubscriptionGroupConfigSchema,
} from "../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import type { BrokerController } from "./broker-controller.ts";
import type { ClientConnections } from "./client-connections.ts";
import type { BrokerMessageService } from "./message-service.ts";
import type { ConsumerOffsetManager } from "./metadata/consumer-offset-manager.ts";
import {
  type GroupRetryPolicy,
  GroupRetryPolicyType,
  type SubscriptionGroupConfig,
  type SubscriptionGroupInput,
  type SubscriptionGroupManager,
} from "./metadata/subscription-group-manager.ts";
import {
  PermName,
  TopicAttribute,
  type TopicConfig,
  type TopicConfigInput,
  type TopicConfigManager,
} from "./metadata/topic-config-manager.ts";
import { popRetryTopicOf } from "./pop/pop-topics.ts";
import { BrokerRole } from "./store/config.ts";
import type { HostAddress } from "./store/host-address.ts";
import type { StoredMessage } from "./store/message-codec.ts";
import { MessageConst } from "./store/message-const.ts";
import type { MessageStore } from "./store/message-store.ts";

/** Queues of a topic created through updateTopic without -r/-w (upstream UpdateTopicSubCommand: 8). */
export const ADMIN_DEFAULT_TOPIC_QUEUE_NUMS = 8;
/** Perm of a topic created through updateTopic without -p (READ | WRITE, 6). */
export const ADMIN_DEFAULT_TOPIC_PERM = PermName.PERM_READ | PermName.PERM_WRITE;
/** Messages one key query returns at most (upstream maxMsgsNumBatch, 64). */
export const MAX_QUERY_MESSAGE_NUM = 64;
/** The RocketMQ version this broker answers as (upstream MQVersion.getVersionDesc). */
export const BROKER_VERSION_DESC = "V5_3_3";

/** Upstream TopicAttributes: which keys exist and which may change after the topic is created. */
const TOPIC_ATTRIBUTE_CHANGEABLE: ReadonlyMap<string, boolean> = new Map([
  [TopicAttribute.MESSAGE_TYPE, true],
  [TopicAttribute.RESERVE_TIME, true],
  [TopicAttribute.QUEUE_TYPE, false],
  [TopicAttribute.CLEANUP_POLICY, false],
]);
/** Upstream SubscriptionGroupAttributes.ALL is empty: no group attribute is supported. */
const GROUP_ATTRIBUTE_CHANGEABLE: ReadonlyMap<string, boolean> = new Map();

/** Upstream TrackType values this broker can tell from consume offsets. */
export const TrackType = { CONSUMED: "CONSUMED", NOT_CONSUME_YET: "NOT_CONSUME_YET" } as const;

export interface BrokerAdminDeps {
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  messageService: BrokerMessageService;
  store: MessageStore;
  brokerName: string;
  clusterName: string;
  /** Called after a topic was created, changed or deleted (re-register to the NameServers). */
  onTopicsChanged?: () => void;
  /** Clients connected through proxies (consumerConnection, producerConnection); none when absent. */
  clients?: ClientConnections;
  /**
   * Extra runtime-info entries the broker measures (putTps, getTransferredTps, msgPutTotalTodayNow,
   * brokerActive, ...), laid over the ones computed here.
   */
  runtimeInfo?: () => Record<string, string>;
  /** Wall clock (ms); Date.now by default. */
  clock?: () => number;
}

function illegal(message: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, message);
}

// ------------------------------------------------------------------------------------- attributes

/** One parsed modification: `+key=value` (set) or `-key` (remove). */
export interface AttributeModification {
  op: "+" | "-";
  key: string;
  value: string;
}

/**
 * Parses upstream's attribute modification text ("+a=b,+c=d,-e"). Throws RmqError(IllegalArgument)
 * for a malformed entry or a key given twice.
 */
export function parseAttributeModification(text: string): AttributeModification[] {
  const trimmed = text.trim();
  if (trimmed === "") return [];
  const out: AttributeModification[] = [];
  const seen = new Set<string>();
  for (const raw of trimmed.split(",")) {
    const kv = raw.trim();
    const op = kv[0];
    if (op !== "+" && op !== "-") {
      throw illegal(`attribute ${quoteForMessage(kv)} must start with + (add or change) or - (remove)`);
    }
    const eq = kv.indexOf("=");
    let key: string;
    let value = "";
    if (op === "+") {
      if (eq < 0) throw illegal(`attribute ${quoteForMessage(kv)} must be +key=value`);
      key = kv.slice(1, eq);
      value = kv.slice(eq + 1);
      if (value === "") throw illegal(`attribute ${quoteForMessage(kv)} has an empty value`);
    } else {
      if (eq >= 0) throw illegal(`attribute ${quoteForMessage(kv)} must be -key (no value when removing)`);
      key = kv.slice(1);
    }
    if (key === "" || key.includes("+") || key.includes("-")) {
      throw illegal(`attribute ${quoteForMessage(kv)} has an illegal key`);
    }
    if (seen.has(key)) throw illegal(`attribute ${quoteForMessage(key)} is given twice`);
    seen.add(key);
    out.push({ op, key, value });
  }
  return out;
}

/**
 * Applies modifications to `current` as upstream AttributeUtil.alterCurrentAttributes does: on
 * create only additions; a removal needs an existing key; unknown keys and changes of keys that are
 * fixed at creation are refused. Values are checked later by the metadata manager.
 */
export function alterAttributes(
  what: string,
  create: boolean,
  current: Readonly<Record<string, string>>,
  mods: readonly AttributeModification[],
  known: ReadonlyMap<string, boolean>,
): Record<string, string> {
  const next: Record<string, string> = { ...current };
  for (const m of mods) {
    const changeable = known.get(m.key);
    if (changeable === undefined) {
      const supported = [...known.keys()];
      throw illegal(
        `${what}: attribute ${quoteForMessage(m.key)} is not supported` +
          (supported.length > 0 ? `; supported: ${supported.join(", ")}` : ""),
      );
    }
    if (create && m.op === "-") {
      throw illegal(`${what}: only +key=value is allowed when creating (got -${m.key})`);
    }
    if (!create && !changeable) {
      throw illegal(`${what}: attribute ${m.key} can only be set at creation`);
    }
    if (m.op === "+") {
      next[m.key] = m.value;
    } else {
      if (!(m.key in next)) throw illegal(`${what}: cannot remove attribute ${m.key}: it is not set`);
      delete next[m.key];
    }
  }
  return next;
}

// ------------------------------------------------------------------------------------ conversions

function topicConfigMsg(tc: TopicConfig): MessageInitShape<typeof BrokerTopicConfigSchema> {
  return {
    topicName: tc.topicName,
    readQueueNums: tc.readQueueNums,
    writeQueueNums: tc.writeQueueNums,
    perm: tc.perm,
    topicFilterType: tc.topicFilterType,
    topicSysFlag: tc.topicSysFlag,
    order: tc.order,
    attributes: { ...tc.attributes },
  };
}

function groupConfigMsg(g: SubscriptionGroupConfig): MessageInitShape<typeof SubscriptionGroupConfigSchema> {
  const p = g.groupRetryPolicy;
  return {
    groupName: g.groupName,
    consumeEnable: g.consumeEnable,
    consumeFromMinEnable: g.consumeFromMinEnable,
    consumeBroadcastEnable: g.consumeBroadcastEnable,
    consumeMessageOrderly: g.consumeMessageOrderly,
    retryQueueNums: g.retryQueueNums,
    retryMaxTimes: g.retryMaxTimes,
    groupRetryPolicy: {
      type: p.type,
      exponentialRetryPolicy:
        p.exponentialRetryPolicy === undefined
          ? undefined
          : {
              initial: BigInt(p.exponentialRetryPolicy.initial),
              max: BigInt(p.exponentialRetryPolicy.max),
              multiplier: BigInt(p.exponentialRetryPolicy.multiplier),
            },
      customizedRetryPolicy:
        p.customizedRetryPolicy === undefined
          ? undefined
          : { next: p.customizedRetryPolicy.next.map((v) => BigInt(v)) },
    },
    brokerId: BigInt(g.brokerId),
    whichBrokerWhenConsumeSlowly: BigInt(g.whichBrokerWhenConsumeSlowly),
    notifyConsumerIdsChangedEnable: g.notifyConsumerIdsChangedEnable,
    groupSysFlag: g.groupSysFlag,
    consumeTimeoutMinute: g.consumeTimeoutMinute,
    attributes: { ...g.attributes },
  };
}

function safeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw illegal(`${what}=${v} is out of range`);
  }
  return Number(v);
}

function retryPolicyFromMsg(p: GroupRetryPolicyMsg): GroupRetryPolicy {
  const type = p.type.trim().toUpperCase();
  if (type !== GroupRetryPolicyType.EXPONENTIAL && type !== GroupRetryPolicyType.CUSTOMIZED) {
    throw illegal(`groupRetryPolicy.type=${quoteForMessage(p.type)} must be EXPONENTIAL or CUSTOMIZED`);
  }
  const policy: GroupRetryPolicy = { type };
  const e = p.exponentialRetryPolicy;
  if (e !== undefined) {
    policy.exponentialRetryPolicy = {
      initial: safeNumber(e.initial, "exponentialRetryPolicy.initial"),
      max: safeNumber(e.max, "exponentialRetryPolicy.max"),
      multiplier: safeNumber(e.multiplier, "exponentialRetryPolicy.multiplier"),
    };
  }
  const c = p.customizedRetryPolicy;
  if (c !== undefined) {
    policy.customizedRetryPolicy = {
      next: c.next.map((v, i) => safeNumber(v, `customizedRetryPolicy.next[${i}]`)),
    };
  }
  return policy;
}

/** "ip:port" as upstream prints socket addresses ("[v6]:port" for IPv6). */
export function hostText(h: HostAddress): string {
  return h.address.includes(":") ? `[${h.address}]:${h.port}` : `${h.address}:${h.port}`;
}

// ------------------------------------------------------------------------------------ the service

/** A file system's used ratio (0..1), total and free bytes; undefined when the path cannot be examined. */
async function diskUsage(path: string): Promise<{ ratio: number; total: number; free: number } | undefined> {
  try {
    const s = await fs.promises.statfs(path);
    if (s.blocks === 0) return { ratio: 0, total: 0, free: 0 };
    return {
      ratio: (s.blocks - s.bfree) / s.blocks,
      total: s.blocks * s.bsize,
      free: s.bavail * s.bsize,
    };
  } catch {
    return undefined;
  }
}

/** Upstream MixAll.humanReadableByteCount(bytes, si=false): "1.5 GiB". */
export function humanReadableByteCount(bytes: number): string {
  const unit = 1024;
  if (bytes < unit) return `${bytes} B`;
  const exp = Math.min(6, Math.floor(Math.log(bytes) / Math.log(unit)));
  return `${(bytes / unit ** exp).toFixed(1)} ${"KMGTPE"[exp - 1]}iB`;
}

/** Upstream's runtime text: "[ 0 days, 1 hours, 2 minutes, 3 seconds ]". */
function runtimeText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  return `[ ${days} days, ${hours} hours, ${minutes} minutes, ${s % 60} seconds ]`;
}

class BrokerAdmin {
  private readonly d: BrokerAdminDeps;
  private readonly clock: () => number;
  private readonly bootTimestamp: number;

  constructor(d: BrokerAdminDeps) {
    this.d = d;
    this.clock = d.clock ?? Date.now;
    this.bootTimestamp = this.clock();
  }

  private topicsChanged(): void {
    this.d.onTopicsChanged?.();
  }

  /** Store time of the message at `offset` of a queue, 0 when it is not there. */
  private async storeTimeAt(topic: string, queueId: number, offset: number): Promise<number> {
    if (offset < 0) return 0;
    const r = await this.d.store.getMessage(topic, queueId, offset, 1);
    return r.messages[0]?.storeTimestamp ?? 0;
  }

  async updateTopic(req: {
    topic: string;
    readQueueNums?: number;
    writeQueueNums?: number;
    perm?: number;
    order?: boolean;
    topicSysFlag?: number;
    attributesModification: string;
  }) {
    const topic = req.topic.trim();
    validateTopicName(topic);
    const prev = this.d.topics.get(topic);
    const create = prev === undefined;
    const mods = parseAttributeModification(req.attributesModification);
    const attributes =
      mods.length === 0
        ? undefined
        : alterAttributes(
            `topic ${quoteForMessage(topic)}`,
            create,
            prev?.attributes ?? {},
            mods,
            TOPIC_ATTRIBUTE_CHANGEABLE,
          );
    const input: TopicConfigInput = {
      topicName: topic,
      readQueueNums: req.readQueueNums ?? (create ? ADMIN_DEFAULT_TOPIC_QUEUE_NUMS : undefined),
      writeQueueNums: req.writeQueueNums ?? (create ? ADMIN_DEFAULT_TOPIC_QUEUE_NUMS : undefined),
      perm: req.perm ?? (create ? ADMIN_DEFAULT_TOPIC_PERM : undefined),
      order: req.order,
      topicSysFlag: req.topicSysFlag,
      attributes,
    };
    const tc = await this.d.topics.createOrUpdate(input);
    if (tc !== prev) this.topicsChanged();
    return { topicConfig: topicConfigMsg(tc), created: create };
  }

  async deleteTopic(req: { topic: string }) {
    const topic = req.topic.trim();
    validateTopicName(topic);
    if (this.d.topics.isSystemTopic(topic)) {
      throw new RmqError(
        ErrorCode.IllegalTopic,
        `topic ${quoteForMessage(topic)} is a system topic and cannot be deleted`,
      );
    }
    // The pop retry topics of the groups that consumed it go with it (upstream clearRetryTopicWhenDeleteTopic).
    const toDelete = [topic];
    for (const group of this.d.offsets.groupsOf(topic)) {
      const retry = popRetryTopicOf(group, topic);
      if (this.d.topics.has(retry)) toDelete.push(retry);
    }
    let existed = false;
    let changed = false;
    for (const t of toDelete) {
      const deleted = await this.d.topics.delete(t);
      if (t === topic) existed = deleted;
      changed ||= deleted;
      this.d.offsets.removeTopic(t);
    }
    await this.d.offsets.persist();
    if (changed) this.topicsChanged();
    return { existed };
  }

  getTopicList() {
    return {
      topics: this.d.topics
        .list()
        .map((t) => t.topicName)
        .sort(),
    };
  }

  getTopicConfig(req: { topic: string }) {
    const tc = this.d.topics.get(req.topic.trim());
    return { topicConfig: tc === undefined ? undefined : topicConfigMsg(tc) };
  }

  private requireTopic(topic: string): TopicConfig {
    validateTopicName(topic);
    const tc = this.d.topics.get(topic);
    if (tc === undefined) {
      throw new RmqError(
        ErrorCode.TopicNotFound,
        `topic ${quoteForMessage(topic)} does not exist on broker ${this.d.brokerName}`,
      );
    }
    return tc;
  }

  async getTopicStats(req: { topic: string }) {
    const tc = this.requireTopic(req.topic.trim());
    const { store } = this.d;
    const queueNums = Math.max(tc.readQueueNums, tc.writeQueueNums);
    const queues = await Promise.all(
      Array.from({ length: queueNums }, async (_, queueId) => {
        const min = store.getMinOffsetInQueue(tc.topicName, queueId);
        const max = store.getMaxOffsetInQueue(tc.topicName, queueId);
        const last = max > min ? await this.storeTimeAt(tc.topicName, queueId, max - 1) : 0;
        return {
          queueId,
          minOffset: BigInt(min),
          maxOffset: BigInt(max),
          lastUpdateTimestamp: BigInt(last),
        };
      }),
    );
    return { brokerName: this.d.brokerName, queues, putTps: 0 };
  }

  getTopicConsumers(req: { topic: string }) {
    const topic = req.topic.trim();
    validateTopicName(topic);
    return { groups: this.d.offsets.groupsOf(topic).sort() };
  }

  async updateSubscriptionGroup(req: {
    groupName: string;
    consumeEnable?: boolean;
    consumeFromMinEnable?: boolean;
    consumeBroadcastEnable?: boolean;
    consumeMessageOrderly?: boolean;
    retryQueueNums?: number;
    retryMaxTimes?: number;
    groupRetryPolicy?: GroupRetryPolicyMsg;
    brokerId?: bigint;
    whichBrokerWhenConsumeSlowly?: bigint;
    notifyConsumerIdsChangedEnable?: boolean;
    consumeTimeoutMinute?: number;
    attributesModification: string;
  }) {
    const group = req.groupName.trim();
    validateGroupName(group);
    const prev = this.d.groups.get(group);
    const mods = parseAttributeModification(req.attributesModification);
    const input: SubscriptionGroupInput = {
      groupName: group,
      consumeEnable: req.consumeEnable,
      consumeFromMinEnable: req.consumeFromMinEnable,
      consumeBroadcastEnable: req.consumeBroadcastEnable,
      consumeMessageOrderly: req.consumeMessageOrderly,
      retryQueueNums: req.retryQueueNums,
      retryMaxTimes: req.retryMaxTimes,
      groupRetryPolicy:
        req.groupRetryPolicy === undefined ? undefined : retryPolicyFromMsg(req.groupRetryPolicy),
      brokerId: req.brokerId === undefined ? undefined : safeNumber(req.brokerId, "brokerId"),
      whichBrokerWhenConsumeSlowly:
        req.whichBrokerWhenConsumeSlowly === undefined
          ? undefined
          : safeNumber(req.whichBrokerWhenConsumeSlowly, "whichBrokerWhenConsumeSlowly"),
      notifyConsumerIdsChangedEnable: req.notifyConsumerIdsChangedEnable,
      consumeTimeoutMinute: req.consumeTimeoutMinute,
      attributes:
        mods.length === 0
          ? undefined
          : alterAttributes(
              `group ${quoteForMessage(group)}`,
              prev === undefined,
              prev?.attributes ?? {},
              mods,
              GROUP_ATTRIBUTE_CHANGEABLE,
            ),
    };
    const g = await this.d.groups.createOrUpdate(input);
    return { config: groupConfigMsg(g), created: prev === undefined };
  }

  async deleteSubscriptionGroup(req: { groupName: string; cleanOffset: boolean }) {
    const group = req.groupName.trim();
    validateGroupName(group);
    if (isSystemGroup(group)) {
      throw new RmqError(
        ErrorCode.IllegalConsumerGroup,
        `group ${quoteForMessage(group)} is a system group and cannot be deleted`,
      );
    }
    const existed = await this.d.groups.delete(group);
    if (req.cleanOffset && this.d.offsets.removeGroup(group) > 0) await this.d.offsets.persist();
    return { existed };
  }

  getSubscriptionGroupList() {
    return {
      groups: this.d.groups
        .list()
        .sort((a, b) => a.groupName.localeCompare(b.groupName))
        .map(groupConfigMsg),
    };
  }

  async getConsumerProgress(req: { group: string; topic: string }) {
    const group = req.group.trim();
    validateGroupName(group);
    const topic = req.topic.trim();
    if (topic !== "") validateTopicName(topic);
    const progress = this.d.messageService.consumerProgress(group, topic === "" ? undefined : topic);
    const queues = await Promise.all(
      progress.queues.map(async (q) => ({
        topic: q.topic,
        queueId: q.queueId,
        brokerOffset: BigInt(q.brokerOffset),
        consumerOffset: BigInt(q.consumerOffset),
        lag: BigInt(q.lag),
        inflight: BigInt(q.inflight),
        lastTimestamp: BigInt(
          q.consumerOffset > 0 ? await this.storeTimeAt(q.topic, q.queueId, q.consumerOffset - 1) : 0,
        ),
      })),
    );
    return { brokerName: this.d.brokerName, queues, consumeTps: 0 };
  }

  getConsumerConnection(req: { group: string }) {
    const group = req.group.trim();
    validateGroupName(group);
    const info = this.d.clients?.consumerConnection(group);
    if (info === undefined)
      throw new RmqError(
        ErrorCode.ConsumerNotOnline,
        `no consumer of group ${quoteForMessage(group)} is connected to broker ${this.d.brokerName}`,
      );
    return {
      connections: info.connections,
      subscriptions: info.subscriptions,
      consumeType: info.consumeType,
      messageModel: info.messageModel,
      consumeFromWhere: info.consumeFromWhere,
    };
  }

  getProducerConnection(req: { group: string }) {
    const group = req.group.trim();
    if (group === "") throw illegal("a producer group is required");
    const connections = this.d.clients?.producerConnection(group) ?? [];
    if (connections.length === 0)
      throw new RmqError(
        ErrorCode.ProducerNotOnline,
        `no producer of group ${quoteForMessage(group)} is connected to broker ${this.d.brokerName}`,
      );
    return { connections };
  }

  async getBrokerRuntimeInfo() {
    const { store } = this.d;
    const now = this.clock();
    const t: Record<string, string> = {};
    t.brokerVersionDesc = BROKER_VERSION_DESC;
    // Ours (upstream's table does not name the broker): handy in `brokerStatus -c` output.
    t.brokerName = this.d.brokerName;
    t.brokerClusterName = this.d.clusterName;
    t.brokerActive = String(store.config.brokerRole !== BrokerRole.SLAVE);
    t.bootTimestamp = String(this.bootTimestamp);
    t.runtime = runtimeText(now - this.bootTimestamp);
    t.commitLogMinOffset = String(store.getMinPhyOffset());
    t.commitLogMaxOffset = String(store.getMaxPhyOffset());
    t.dispatchBehindBytes = String(Math.max(0, store.getMaxPhyOffset() - store.getConfirmOffset()));
    const first =
      store.getMaxPhyOffset() > store.getMinPhyOffset()
        ? await store.lookMessageByOffset(store.getMinPhyOffset())
        : undefined;
    t.earliestMessageTimeStamp = String(first?.storeTimestamp ?? -1);
    const commitLogDisk = await diskUsage(store.config.storePathCommitLog);
    t.commitLogDiskRatio = String(commitLogDisk?.ratio ?? -1);
    const rootDisk = await diskUsage(store.config.storePathRootDir);
    t.consumeQueueDiskRatio = String(rootDisk?.ratio ?? -1);
    if (rootDisk !== undefined) {
      t.commitLogDirCapacity = `Total : ${humanReadableByteCount(rootDisk.total)}, Free : ${humanReadableByteCount(rootDisk.free)}.`;
    }
    // What this broker does not measure (yet) reads as zero, as upstream reports idle pools.
    t.putTps = "0.0 0.0 0.0";
    t.getTransferredTps = "0.0 0.0 0.0";
    t.sendThreadPoolQueueSize = "0";
    t.sendThreadPoolQueueHeadWaitTimeMills = "0";
    t.pullThreadPoolQueueSize = "0";
    t.pullThreadPoolQueueHeadWaitTimeMills = "0";
    t.ackThreadPoolQueueSize = "0";
    t.ackThreadPoolQueueHeadWaitTimeMills = "0";
    t.pageCacheLockTimeMills = "0";
    t.timerReadBehind = "0";
    t.timerOffsetBehind = "0";
    t.timerCongestNum = "0";
    t.timerEnqueueTps = "0.0";
    t.timerDequeueTps = "0.0";
    return { table: { ...t, ...(this.d.runtimeInfo?.() ?? {}) } };
  }

  private messageView(m: StoredMessage, withBody: boolean): MessageInitShape<typeof MessageViewSchema> {
    const tracks = withBody
      ? this.d.offsets
          .groupsOf(m.topic)
          .sort()
          .map((g) => ({
            consumerGroup: g,
            trackType:
              this.d.offsets.query(g, m.topic, m.queueId) > m.queueOffset
                ? TrackType.CONSUMED
                : TrackType.NOT_CONSUME_YET,
          }))
      : [];
    return {
      topic: m.topic,
      queueId: m.queueId,
      queueOffset: BigInt(m.queueOffset),
      commitLogOffset: BigInt(m.commitLogOffset),
      offsetMsgId: m.msgId,
      uniqKey: m.properties.get(MessageConst.PROPERTY_UNIQ_CLIENT_MESSAGE_ID_KEYIDX) ?? "",
      flag: m.flag,
      sysFlag: m.sysFlag,
      bodyCrc: m.bodyCRC,
      bornTimestamp: BigInt(m.bornTimestamp),
      bornHost: hostText(m.bornHost),
      storeTimestamp: BigInt(m.storeTimestamp),
      storeHost: hostText(m.storeHost),
      reconsumeTimes: m.reconsumeTimes,
      preparedTransactionOffset: BigInt(m.preparedTransactionOffset),
      properties: Object.fromEntries(m.properties),
      body: withBody ? m.body : new Uint8Array(0),
      storeSize: m.storeSize,
      tracks,
    };
  }

  async queryMessageByKey(req: {
    topic: string;
    key: string;
    maxNum: number;
    beginTimestamp: bigint;
    endTimestamp: bigint;
  }) {
    const topic = req.topic.trim();
    validateTopicName(topic);
    if (req.key.trim() === "") throw illegal("the message key to query cannot be blank");
    if (req.maxNum < 0) throw illegal(`maxNum=${req.maxNum} must be >= 0`);
    const maxNum = req.maxNum === 0 ? MAX_QUERY_MESSAGE_NUM : Math.min(req.maxNum, MAX_QUERY_MESSAGE_NUM);
    const begin = safeNumber(req.beginTimestamp, "beginTimestamp");
    const end =
      req.endTimestamp === 0n ? Number.MAX_SAFE_INTEGER : safeNumber(req.endTimestamp, "endTimestamp");
    if (end < begin) throw illegal(`endTimestamp=${end} is before beginTimestamp=${begin}`);
    const found = await this.d.store.queryMessageByKey(topic, req.key, maxNum, begin, end);
    return { messages: found.map((m) => this.messageView(m, false)) };
  }

  async queryMessageByUniqKey(req: { topic: string; uniqKey: string }) {
    const topic = req.topic.trim();
    validateTopicName(topic);
    if (req.uniqKey.trim() === "") throw illegal("the message id to query cannot be blank");
    const m = await this.d.store.queryMessageByUniqKey(topic, req.uniqKey.trim());
    return { message: m === undefined ? undefined : this.messageView(m, true) };
  }

  async viewMessage(req: { commitLogOffset: bigint }) {
    const offset = safeNumber(req.commitLogOffset, "commitLogOffset");
    if (offset < 0) throw illegal(`commitLogOffset=${offset} must be >= 0`);
    if (offset < this.d.store.getMinPhyOffset() || offset >= this.d.store.getMaxPhyOffset()) {
      return { message: undefined };
    }
    const m = await this.d.store.lookMessageByOffset(offset);
    return { message: m === undefined ? undefined : this.messageView(m, true) };
  }
}

/** The broker admin service as routes for common/rpc-server.ts: `createBrokerAdminRoutes(deps)(router)`. */
export function createBrokerAdminRoutes(deps: BrokerAdminDeps): (router: ConnectRouter) => void {
  const admin = new BrokerAdmin(deps);
  return (router) => {
    router.service(BrokerAdminService, {
      updateTopic: (req) => admin.updateTopic(req),
      deleteTopic: (req) => admin.deleteTopic(req),
      getTopicList: () => admin.getTopicList(),
      getTopicConfig: (req) => admin.getTopicConfig(req),
      getTopicStats: (req) => admin.getTopicStats(req),
      getTopicConsumers: (req) => admin.getTopicConsumers(req),
      updateSubscriptionGroup: (req) => admin.updateSubscriptionGroup(req),
      deleteSubscriptionGroup: (req) => admin.deleteSubscriptionGroup(req),
      getSubscriptionGroupList: () => admin.getSubscriptionGroupList(),
      getConsumerProgress: (req) => admin.getConsumerProgress(req),
      getBrokerRuntimeInfo: () => admin.getBrokerRuntimeInfo(),
      queryMessageByKey: (req) => admin.queryMessageByKey(req),
      queryMessageByUniqKey: (req) => admin.queryMessageByUniqKey(req),
      viewMessage: (req) => admin.viewMessage(req),
      getConsumerConnection: (req) => admin.getConsumerConnection(req),
      getProducerConnection: (req) => admin.getProducerConnection(req),
    });
  };
}

/**
 * The admin service as one of createBrokerController's `extraRoutes`: serves the controller's own
 * tables and store, and re-registers with the NameServers after a topic change.
 */
export function mountBrokerAdmin(router: ConnectRouter, broker: BrokerController): void {
  createBrokerAdminRoutes({
    topics: broker.topics,
    groups: broker.groups,
    offsets: broker.offsets,
    messageService: broker.messageService,
    store: broker.store,
    brokerName: broker.brokerName,
    clusterName: broker.clusterName,
    clients: broker.clients,
    onTopicsChanged: () => broker.registerTopicsIfChanged(),
  })(router);
}
