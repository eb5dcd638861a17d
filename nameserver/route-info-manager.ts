// The NameServer's route tables (upstream RouteInfoManager), pure: no IO and no timers; time comes
// from an injected clock so expiry is testable.
//
//   topicQueueTable   topic -> brokerName -> QueueData        what each broker set serves
//   brokerAddrTable   brokerName -> BrokerData               replicas' addresses by broker id
//   clusterAddrTable  clusterName -> brokerNames
//   brokerLiveTable   (clusterName, brokerAddr) -> last registration time, timeout, DataVersion, HA address
//
// Registration (sent by every replica at start, every 30 s and on topic changes) is the heartbeat.
// Only the master (id 0) — or, for broker sets with enableActingMaster, the lowest-id slave while the
// master is away — writes QueueData, and only when its DataVersion changed or it registers first.
// A broker whose last registration is older than its heartbeat timeout (default 120 s) is removed
// by scanNotActiveBroker() exactly as by an unregistration: its address leaves BrokerData; a broker
// set with no replica left leaves every topic and its cluster. A broker set that lost only its
// master keeps its QueueData, so routes show the remaining slaves (ids > 0) as upstream does.
//
// Differences from upstream, on purpose:
//   - deleteTopicWithBrokerRegistration defaults to true here: a registration with a new DataVersion
//     replaces the broker set's topics, so a topic deleted on the broker leaves the route at the next
//     heartbeat instead of lingering until someone deletes it on every NameServer (upstream default false).
//   - A live entry whose address no broker set lists any more is dropped by the scan (upstream keeps
//     warning about it every scan).
//   - Filter servers, static-topic mappings and min-broker-id notifications are not supported.

import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";

/** Upstream MixAll.MASTER_ID. */
export const MASTER_ID = 0;
/** Upstream DEFAULT_BROKER_CHANNEL_EXPIRED_TIME: a broker silent this long is removed (2 min). */
export const DEFAULT_BROKER_CHANNEL_EXPIRED_TIME_MS = 120_000;
/** Upstream PermName bits used here. */
const PERM_WRITE = 2;
/** The topic attribute carrying the message type (upstream TopicAttributes.TOPIC_MESSAGE_TYPE_ATTRIBUTE). */
export const MESSAGE_TYPE_ATTRIBUTE = "message.type";

/** Upstream DataVersion ({stateVersion, timestamp, counter}). */
export interface DataVersion {
  stateVersion: number;
  timestamp: number;
  counter: number;
}

/** A topic as a broker registers it. */
export interface RegisteredTopicConfig {
  topicName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicSysFlag: number;
  /** The `message.type` attribute, "" when absent. */
  messageType: string;
}

export interface RegisterBrokerInput {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddr: string;
  haServerAddr: string;
  /** A gRPC proxy serving this replica, "" if none. */
  proxyAddr?: string;
  zoneName?: string;
  enableActingMaster?: boolean;
  /** undefined or 0 = DEFAULT_BROKER_CHANNEL_EXPIRED_TIME_MS. */
  heartbeatTimeoutMillis?: number;
  topicConfigs: readonly RegisteredTopicConfig[];
  dataVersion: DataVersion;
}

export interface RegisterBrokerResult {
  /** false when the registration was refused (another address holds the id with a newer state). */
  accepted: boolean;
  /** For a slave: its live master's address, else "". */
  masterAddr: string;
  /** For a slave: its live master's HA address, else "". */
  haServerAddr: string;
}

export interface UnregisterBrokerInput {
  clusterName: string;
  brokerAddr: string;
  brokerName: string;
  brokerId: number;
}

/** Upstream QueueData. */
export interface QueueData {
  brokerName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicSysFlag: number;
  /** Ours: the `message.type` attribute the master registered ("" = unset). */
  messageType: string;
}

/** Upstream BrokerData. */
export interface BrokerData {
  cluster: string;
  brokerName: string;
  /** brokerId -> "host:port". */
  brokerAddrs: Map<number, string>;
  zoneName: string;
  enableActingMaster: boolean;
  /** Ours: brokerId -> the replica's gRPC proxy address, for replicas that registered one. */
  proxyAddrs: Map<number, string>;
}

/** Upstream TopicRouteData without filter servers and static-topic mappings. */
export interface TopicRouteData {
  queueDatas: QueueData[];
  brokerDatas: BrokerData[];
}

/** Upstream ClusterInfo. */
export interface ClusterInfo {
  brokerAddrTable: Map<string, BrokerData>;
  clusterAddrTable: Map<string, string[]>;
}

/** Upstream BrokerLiveInfo plus the key it lives under. */
export interface BrokerLiveInfo {
  clusterName: string;
  brokerAddr: string;
  lastUpdateTimestamp: number;
  heartbeatTimeoutMillis: number;
  dataVersion: DataVersion;
  haServerAddr: string;
}

export interface RouteInfoManagerOptions {
  /** Upstream NamesrvConfig.supportActingMaster (false). */
  supportActingMaster?: boolean;
  /** Upstream NamesrvConfig.deleteTopicWithBrokerRegistration; our default true (see file header). */
  deleteTopicWithBrokerRegistration?: boolean;
  /** Clock in epoch ms (tests inject one). */
  now?: () => number;
  logger?: Logger;
}

function liveKey(clusterName: string, brokerAddr: string): string {
  return `${clusterName}\u0000${brokerAddr}`;
}

function sameDataVersion(a: DataVersion, b: DataVersion): boolean {
  return a.stateVersion === b.stateVersion && a.timestamp === b.timestamp && a.counter === b.counter;
}

function sameQueueData(a: QueueData, b: QueueData): boolean {
  return (
    a.readQueueNums === b.readQueueNums &&
    a.writeQueueNums === b.writeQueueNums &&
    a.perm === b.perm &&
    a.topicSysFlag === b.topicSysFlag &&
    a.messageType === b.messageType
  );
}

function minKey(m: Map<number, string>): number | undefined {
  let min: number | undefined;
  for (const k of m.keys()) if (min === undefined || k < min) min = k;
  return min;
}

function cloneBrokerData(b: BrokerData): BrokerData {
  return { ...b, brokerAddrs: new Map(b.brokerAddrs), proxyAddrs: new Map(b.proxyAddrs) };
}

export class RouteInfoManager {
  private readonly topicQueueTable = new Map<string, Map<string, QueueData>>();
  private readonly brokerAddrTable = new Map<string, BrokerData>();
  private readonly clusterAddrTable = new Map<string, Set<string>>();
  private readonly brokerLiveTable = new Map<string, BrokerLiveInfo>();
  private readonly supportActingMaster: boolean;
  private readonly deleteTopicWithBrokerRegistration: boolean;
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(opts: RouteInfoManagerOptions = {}) {
    this.supportActingMaster = opts.supportActingMaster ?? false;
    this.deleteTopicWithBrokerRegistration = opts.deleteTopicWithBrokerRegistration ?? true;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger ?? silentLogger();
  }

  registerBroker(req: RegisterBrokerInput): RegisterBrokerResult {
    const result: RegisterBrokerResult = { accepted: true, masterAddr: "", haServerAddr: "" };
    const { clusterName, brokerName, brokerId, brokerAddr } = req;

    let names = this.clusterAddrTable.get(clusterName);
    if (names === undefined) {
      names = new Set();
      this.clusterAddrTable.set(clusterName, names);
    }
    names.add(brokerName);

    let registerFirst = false;
    let brokerData = this.brokerAddrTable.get(brokerName);
    if (brokerData === undefined) {
      registerFirst = true;
      brokerData = {
        cluster: clusterName,
        brokerName,
        brokerAddrs: new Map(),
        zoneName: "",
        enableActingMaster: false,
        proxyAddrs: new Map(),
      };
      this.brokerAddrTable.set(brokerName, brokerData);
    }
    brokerData.enableActingMaster = req.enableActingMaster ?? false;
    brokerData.zoneName = req.zoneName ?? "";
    const addrs = brokerData.brokerAddrs;

    // One address has one id: a slave promoted to master re-registers its address under id 0.
    for (const [id, addr] of addrs) {
      if (addr === brokerAddr && id !== brokerId) {
        addrs.delete(id);
        brokerData.proxyAddrs.delete(id);
      }
    }

    // Another address holding this id with a newer state wins (an old master coming back late).
    const oldAddr = addrs.get(brokerId);
    if (oldAddr !== undefined && oldAddr !== brokerAddr) {
      const oldLive = this.brokerLiveTable.get(liveKey(clusterName, oldAddr));
      if (oldLive !== undefined && oldLive.dataVersion.stateVersion > req.dataVersion.stateVersion) {
        this.log.warn(
          { clusterName, brokerName, brokerId, oldAddr, brokerAddr },
          "registration refused: another address holds this broker id with a newer state version",
        );
        this.brokerLiveTable.delete(liveKey(clusterName, brokerAddr));
        return { ...result, accepted: false };
      }
    }

    addrs.set(brokerId, brokerAddr);
    registerFirst ||= oldAddr === undefined;
    if (req.proxyAddr) brokerData.proxyAddrs.set(brokerId, req.proxyAddr);
    else brokerData.proxyAddrs.delete(brokerId);

    const isMaster = brokerId === MASTER_ID;
    const isPrimeSlave = brokerData.enableActingMaster && !isMaster && brokerId === minKey(addrs);
    const key = liveKey(clusterName, brokerAddr);
    const prevLive = this.brokerLiveTable.get(key);
    if (isMaster || isPrimeSlave) {
      const versionChanged =
        prevLive === undefined || !sameDataVersion(prevLive.dataVersion, req.dataVersion);
      if ((registerFirst || versionChanged) && this.deleteTopicWithBrokerRegistration) {
        this.removeTopicsNotIn(brokerName, new Set(req.topicConfigs.map((t) => t.topicName)));
      }
      for (const tc of req.topicConfigs) {
        if (!registerFirst && !versionChanged && this.topicQueueTable.get(tc.topicName)?.has(brokerName))
          continue;
        const perm = isPrimeSlave ? tc.perm & ~PERM_WRITE : tc.perm;
        this.putQueueData(tc.topicName, {
          brokerName,
          readQueueNums: tc.readQueueNums,
          writeQueueNums: tc.writeQueueNums,
          perm,
          topicSysFlag: tc.topicSysFlag,
          messageType: tc.messageType,
        });
      }
    }

    const timeout = req.heartbeatTimeoutMillis
      ? req.heartbeatTimeoutMillis
      : DEFAULT_BROKER_CHANNEL_EXPIRED_TIME_MS;
    this.brokerLiveTable.set(key, {
      clusterName,
      brokerAddr,
      lastUpdateTimestamp: this.now(),
      heartbeatTimeoutMillis: timeout,
      dataVersion: { ...req.dataVersion },
      haServerAddr: req.haServerAddr,
    });
    if (prevLive === undefined) {
      this.log.info(
        { clusterName, brokerName, brokerId, brokerAddr, haServerAddr: req.haServerAddr },
        "new broker registered",
      );
    }

    if (!isMaster) {
      const masterAddr = addrs.get(MASTER_ID);
      const masterLive =
        masterAddr === undefined ? undefined : this.brokerLiveTable.get(liveKey(clusterName, masterAddr));
      if (masterAddr !== undefined && masterLive !== undefined) {
        result.masterAddr = masterAddr;
        result.haServerAddr = masterLive.haServerAddr;
      }
    }
    return result;
  }

  private putQueueData(topic: string, qd: QueueData): void {
    let byBroker = this.topicQueueTable.get(topic);
    if (byBroker === undefined) {
      byBroker = new Map();
      this.topicQueueTable.set(topic, byBroker);
      this.log.info({ topic, queueData: qd }, "new topic registered");
    }
    const existing = byBroker.get(qd.brokerName);
    if (existing !== undefined && !sameQueueData(existing, qd)) {
      this.log.info({ topic, old: existing, new: qd }, "topic changed");
    }
    byBroker.set(qd.brokerName, qd);
  }

  private removeTopicsNotIn(brokerName: string, keep: ReadonlySet<string>): void {
    for (const [topic, byBroker] of this.topicQueueTable) {
      if (keep.has(topic) || !byBroker.delete(brokerName)) continue;
      this.log.info({ topic, brokerName }, "topic no longer registered by broker, removed from its route");
      if (byBroker.size === 0) this.topicQueueTable.delete(topic);
    }
  }

  unregisterBroker(req: UnregisterBrokerInput): void {
    this.unregisterBrokers([req]);
  }

  /** Upstream unRegisterBroker(Set): removes each replica, then cleans the topics once. */
  unregisterBrokers(reqs: readonly UnregisterBrokerInput[]): void {
    const removed = new Set<string>();
    const reduced = new Set<string>();
    for (const req of reqs) {
      const existed = this.brokerLiveTable.delete(liveKey(req.clusterName, req.brokerAddr));
      const brokerData = this.brokerAddrTable.get(req.brokerName);
      if (brokerData === undefined) continue;
      for (const [id, addr] of brokerData.brokerAddrs) {
        if (addr !== req.brokerAddr) continue;
        brokerData.brokerAddrs.delete(id);
        brokerData.proxyAddrs.delete(id);
      }
      this.log.info({ ...req, wasLive: existed }, "broker unregistered");
      if (brokerData.brokerAddrs.size > 0) {
        reduced.add(req.brokerName);
        continue;
      }
      this.brokerAddrTable.delete(req.brokerName);
      const names = this.clusterAddrTable.get(req.clusterName);
      if (names !== undefined) {
        names.delete(req.brokerName);
        if (names.size === 0) this.clusterAddrTable.delete(req.clusterName);
      }
      removed.add(req.brokerName);
      reduced.delete(req.brokerName);
    }
    this.cleanTopics(removed, reduced);
  }

  private cleanTopics(removed: ReadonlySet<string>, reduced: ReadonlySet<string>): void {
    if (removed.size === 0 && reduced.size === 0) return;
    for (const [topic, byBroker] of this.topicQueueTable) {
      for (const name of removed) byBroker.delete(name);
      if (byBroker.size === 0) {
        this.topicQueueTable.delete(topic);
        continue;
      }
      for (const name of reduced) {
        const qd = byBroker.get(name);
        const bd = this.brokerAddrTable.get(name);
        // Acting-master broker sets that lost their master become read-only until it returns.
        if (qd !== undefined && bd?.enableActingMaster && this.noMaster(bd)) qd.perm &= ~PERM_WRITE;
      }
    }
  }

  private noMaster(bd: BrokerData): boolean {
    const min = minKey(bd.brokerAddrs);
    return min === undefined || min > MASTER_ID;
  }

  /**
   * Removes every broker whose last registration is older than its heartbeat timeout; returns them.
   * Upstream runs it every scanNotActiveBrokerInterval (5 s).
   */
  scanNotActiveBroker(): BrokerLiveInfo[] {
    const now = this.now();
    const expired: BrokerLiveInfo[] = [];
    for (const live of this.brokerLiveTable.values()) {
      if (live.lastUpdateTimestamp + live.heartbeatTimeoutMillis < now) expired.push(live);
    }
    const reqs: UnregisterBrokerInput[] = [];
    for (const live of expired) {
      this.log.warn(
        {
          clusterName: live.clusterName,
          brokerAddr: live.brokerAddr,
          heartbeatTimeoutMillis: live.heartbeatTimeoutMillis,
        },
        "broker expired: no registration within its heartbeat timeout",
      );
      const found = this.findBroker(live.clusterName, live.brokerAddr);
      if (found === undefined) this.brokerLiveTable.delete(liveKey(live.clusterName, live.brokerAddr));
      else reqs.push({ clusterName: live.clusterName, brokerAddr: live.brokerAddr, ...found });
    }
    if (reqs.length > 0) this.unregisterBrokers(reqs);
    return expired;
  }

  private findBroker(
    clusterName: string,
    brokerAddr: string,
  ): { brokerName: string; brokerId: number } | undefined {
    for (const bd of this.brokerAddrTable.values()) {
      if (bd.cluster !== clusterName) continue;
      for (const [id, addr] of bd.brokerAddrs) {
        if (addr === brokerAddr) return { brokerName: bd.brokerName, brokerId: id };
      }
    }
    return undefined;
  }

  /** The route of `topic`. Throws RmqError(TopicNotFound) when no live broker set serves it. */
  pickupTopicRouteData(topic: string): TopicRouteData {
    const byBroker = this.topicQueueTable.get(topic);
    const queueDatas: QueueData[] = [];
    const brokerDatas: BrokerData[] = [];
    for (const [name, qd] of byBroker ?? []) {
      queueDatas.push({ ...qd });
      const bd = this.brokerAddrTable.get(name);
      if (bd !== undefined) brokerDatas.push(cloneBrokerData(bd));
    }
    if (queueDatas.length === 0 || brokerDatas.length === 0) {
      throw new RmqError(
        ErrorCode.TopicNotFound,
        `no route info for topic ${topic} on this NameServer: no live broker serves it`,
      );
    }
    if (this.supportActingMaster) this.actAsMaster(queueDatas, brokerDatas);
    return { queueDatas, brokerDatas };
  }

  /** With supportActingMaster: a masterless, read-only broker set shows its lowest-id slave as id 0. */
  private actAsMaster(queueDatas: readonly QueueData[], brokerDatas: readonly BrokerData[]): void {
    for (const bd of brokerDatas) {
      if (bd.brokerAddrs.size === 0 || bd.brokerAddrs.has(MASTER_ID) || !bd.enableActingMaster) continue;
      const qd = queueDatas.find((q) => q.brokerName === bd.brokerName);
      if (qd === undefined || (qd.perm & PERM_WRITE) !== 0) continue;
      const min = minKey(bd.brokerAddrs) as number;
      const addr = bd.brokerAddrs.get(min) as string;
      bd.brokerAddrs.delete(min);
      bd.brokerAddrs.set(MASTER_ID, addr);
      const proxy = bd.proxyAddrs.get(min);
      if (proxy !== undefined) {
        bd.proxyAddrs.delete(min);
        bd.proxyAddrs.set(MASTER_ID, proxy);
      }
    }
  }

  getAllClusterInfo(): ClusterInfo {
    const brokerAddrTable = new Map<string, BrokerData>();
    for (const [name, bd] of this.brokerAddrTable) brokerAddrTable.set(name, cloneBrokerData(bd));
    const clusterAddrTable = new Map<string, string[]>();
    for (const [cluster, names] of this.clusterAddrTable) clusterAddrTable.set(cluster, [...names]);
    return { brokerAddrTable, clusterAddrTable };
  }

  getAllTopicList(): string[] {
    return [...this.topicQueueTable.keys()];
  }

  /** Removes `topic` from every broker set, or only from those of `clusterName`. */
  deleteTopic(topic: string, clusterName?: string): void {
    if (clusterName === undefined || clusterName === "") {
      this.topicQueueTable.delete(topic);
      return;
    }
    const names = this.clusterAddrTable.get(clusterName);
    const byBroker = this.topicQueueTable.get(topic);
    if (names === undefined || byBroker === undefined) return;
    for (const name of names) byBroker.delete(name);
    if (byBroker.size === 0) this.topicQueueTable.delete(topic);
  }

  /** The live table, for status output and tests. */
  liveBrokers(): BrokerLiveInfo[] {
    return [...this.brokerLiveTable.values()].map((l) => ({ ...l, dataVersion: { ...l.dataVersion } }));
  }
}
