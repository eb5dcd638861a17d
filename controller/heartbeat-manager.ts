// Broker heartbeat table of one controller node. Not replicated (as upstream's DLedger-type
// controller): brokers heartbeat every controller, so a newly elected leader already has warm data.
// No clock and no timers here: callers pass `now` (ms) and run `scan(now, ...)` every
// SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS.

import { type BrokerLiveInfo, type BrokerLiveness, DEFAULT_ELECTION_PRIORITY } from "./broker-liveness.ts";

/** Used when a heartbeat carries no timeout (upstream BrokerHeartbeatManager.DEFAULT_BROKER_CHANNEL_EXPIRED_TIME = 10 s;
 *  brokers normally send their `controllerHeartBeatTimeoutMills`, default 10 s as well). */
export const DEFAULT_BROKER_HEARTBEAT_TIMEOUT_MS = 10_000;
/** Upstream ControllerConfig.scanNotActiveBrokerInterval default. */
export const SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS = 5_000;

/** One BROKER_HEARTBEAT request's fields (absent ones take upstream's defaults). */
export interface BrokerHeartbeat {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
  heartbeatTimeoutMillis?: number;
  epoch?: number;
  maxOffset?: number;
  confirmOffset?: number;
  electionPriority?: number;
}

export interface BrokerSetId {
  clusterName: string;
  brokerName: string;
}

export interface HeartbeatScanResult {
  /** Brokers whose heartbeat expired; they are removed from the table. */
  expired: BrokerLiveInfo[];
  /** Broker sets whose current master is among `expired`: the leader proposes ElectMaster for them. */
  brokerSetsToElect: BrokerSetId[];
}

function keyOf(clusterName: string, brokerName: string, brokerId: number): string {
  return `${clusterName}\u0000${brokerName}\u0000${brokerId}`;
}

export class BrokerHeartbeatManager {
  private readonly table = new Map<string, BrokerLiveInfo>();

  /** Records a heartbeat received at `now`. Epoch and offsets move forward only (as upstream). */
  onBrokerHeartbeat(hb: BrokerHeartbeat, now: number): void {
    const key = keyOf(hb.clusterName, hb.brokerName, hb.brokerId);
    const epoch = hb.epoch ?? -1;
    const maxOffset = hb.maxOffset ?? -1;
    const confirmOffset = hb.confirmOffset ?? -1;
    const timeout = hb.heartbeatTimeoutMillis ?? DEFAULT_BROKER_HEARTBEAT_TIMEOUT_MS;
    const priority = hb.electionPriority ?? DEFAULT_ELECTION_PRIORITY;
    const prev = this.table.get(key);
    if (prev === undefined) {
      this.table.set(key, {
        clusterName: hb.clusterName,
        brokerName: hb.brokerName,
        brokerId: hb.brokerId,
        brokerAddress: hb.brokerAddress,
        lastUpdateTimestamp: now,
        heartbeatTimeoutMillis: timeout,
        epoch,
        maxOffset,
        confirmOffset,
        electionPriority: priority,
      });
      return;
    }
    prev.lastUpdateTimestamp = Math.max(prev.lastUpdateTimestamp, now);
    prev.heartbeatTimeoutMillis = timeout;
    prev.electionPriority = priority;
    prev.brokerAddress = hb.brokerAddress;
    if (epoch > prev.epoch || (epoch === prev.epoch && maxOffset > prev.maxOffset)) {
      prev.epoch = epoch;
      prev.maxOffset = maxOffset;
      prev.confirmOffset = confirmOffset;
    }
  }

  /** Alive ⇔ lastUpdate + timeout ≥ now (upstream isBrokerActive). */
  isAlive(clusterName: string, brokerName: string, brokerId: number, now: number): boolean {
    const info = this.table.get(keyOf(clusterName, brokerName, brokerId));
    return info !== undefined && info.lastUpdateTimestamp + info.heartbeatTimeoutMillis >= now;
  }

  liveInfo(clusterName: string, brokerName: string, brokerId: number): BrokerLiveInfo | undefined {
    const info = this.table.get(keyOf(clusterName, brokerName, brokerId));
    return info === undefined ? undefined : { ...info };
  }

  /** Forgets a broker at once (its connection closed, or an admin cleaned it). */
  remove(clusterName: string, brokerName: string, brokerId: number): BrokerLiveInfo | undefined {
    const key = keyOf(clusterName, brokerName, brokerId);
    const info = this.table.get(key);
    this.table.delete(key);
    return info;
  }

  /** A liveness view frozen at `now`, for validation and the elect policy. */
  view(now: number): BrokerLiveness {
    return {
      isAlive: (c, b, id) => this.isAlive(c, b, id, now),
      liveInfo: (c, b, id) => this.liveInfo(c, b, id),
    };
  }

  /**
   * Removes the brokers whose heartbeat expired at `now` (now − last > timeout) and returns them, plus
   * the broker sets whose master was among them. `masterOf` reads the replicated state (null: no master).
   */
  scan(
    now: number,
    masterOf: (clusterName: string, brokerName: string) => number | null,
  ): HeartbeatScanResult {
    const expired: BrokerLiveInfo[] = [];
    for (const [key, info] of this.table) {
      if (now - info.lastUpdateTimestamp > info.heartbeatTimeoutMillis) {
        this.table.delete(key);
        expired.push(info);
      }
    }
    expired.sort((a, b) => {
      if (a.clusterName !== b.clusterName) return a.clusterName < b.clusterName ? -1 : 1;
      if (a.brokerName !== b.brokerName) return a.brokerName < b.brokerName ? -1 : 1;
      return a.brokerId - b.brokerId;
    });
    const brokerSetsToElect: BrokerSetId[] = [];
    const seen = new Set<string>();
    for (const info of expired) {
      const setKey = `${info.clusterName}\u0000${info.brokerName}`;
      if (seen.has(setKey)) continue;
      if (masterOf(info.clusterName, info.brokerName) === info.brokerId) {
        seen.add(setKey);
        brokerSetsToElect.push({ clusterName: info.clusterName, brokerName: info.brokerName });
      }
    }
    return { expired, brokerSetsToElect };
  }

  /** clusterName → brokerName → number of alive brokers (upstream getActiveBrokersNum). */
  activeBrokersNum(now: number): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    for (const info of this.table.values()) {
      if (info.lastUpdateTimestamp + info.heartbeatTimeoutMillis < now) continue;
      let perCluster = out.get(info.clusterName);
      if (perCluster === undefined) {
        perCluster = new Map();
        out.set(info.clusterName, perCluster);
      }
      perCluster.set(info.brokerName, (perCluster.get(info.brokerName) ?? 0) + 1);
    }
    return out;
  }

  get size(): number {
    return this.table.size;
  }
}
