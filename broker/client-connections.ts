// The clients connected to this broker through a proxy, by group: what mqadmin's consumerConnection and
// producerConnection print (upstream ConsumerManager / ProducerManager, fed by client heartbeats).
// A proxy re-registers a client on each of its heartbeats and unregisters it when its session ends;
// a client not heard of for CHANNEL_EXPIRED_TIMEOUT_MS (a proxy that died without saying so) is
// dropped the next time its group is read or the registry is swept on a register.

import {
  type ClientConnection,
  type ClientHeartbeat,
  type ConsumerSubscription,
  ConsumeType,
} from "../common/client-connection.ts";

/** Upstream ConsumerManager/ProducerManager channelExpiredTimeout: 120 s without a heartbeat. */
export const CHANNEL_EXPIRED_TIMEOUT_MS = 120_000;
/** Expired clients are swept from the whole registry at most this often (on a register). */
const SWEEP_INTERVAL_MS = 10_000;

export interface ConsumerConnectionInfo {
  connections: ClientConnection[];
  subscriptions: ConsumerSubscription[];
  consumeType: ConsumeType;
  /** gRPC consumers always consume in clustering mode. */
  messageModel: "CLUSTERING";
  /** Where a new group starts: the end of the queue, as upstream's proxy registers gRPC consumers. */
  consumeFromWhere: "CONSUME_FROM_LAST_OFFSET";
}

interface ConsumerEntry {
  connection: ClientConnection;
  consumeType: ConsumeType;
  subscriptions: readonly ConsumerSubscription[];
  lastUpdateMs: number;
}

interface ProducerEntry {
  connection: ClientConnection;
  lastUpdateMs: number;
}

export interface ClientConnections {
  /** Registers (or refreshes) a client. */
  heartbeat(h: ClientHeartbeat): void;
  /** The client's session ended: it leaves every group. */
  unregister(clientId: string): void;
  /** The consumers of `group`, newest subscriptions first merged by topic; undefined when none. */
  consumerConnection(group: string): ConsumerConnectionInfo | undefined;
  /** The producers of `group`; empty when none. */
  producerConnection(group: string): ClientConnection[];
}

export function createClientConnections(now: () => number = Date.now): ClientConnections {
  const consumers = new Map<string, Map<string, ConsumerEntry>>();
  const producers = new Map<string, Map<string, ProducerEntry>>();
  /** Groups each client is in, so that unregister does not scan every group. */
  const groupsOf = new Map<string, { consumer?: string; producer: Set<string> }>();
  let lastSweep = now();

  const live = <E extends { lastUpdateMs: number }>(table: Map<string, E>, t: number): E[] => {
    const out: E[] = [];
    for (const [clientId, e] of table) {
      if (t - e.lastUpdateMs > CHANNEL_EXPIRED_TIMEOUT_MS) table.delete(clientId);
      else out.push(e);
    }
    return out;
  };

  const sweep = (t: number): void => {
    for (const [group, table] of consumers) if (live(table, t).length === 0) consumers.delete(group);
    for (const [group, table] of producers) if (live(table, t).length === 0) producers.delete(group);
    for (const [clientId, g] of groupsOf) {
      const inConsumers = g.consumer !== undefined && consumers.get(g.consumer)?.has(clientId) === true;
      for (const p of g.producer) if (producers.get(p)?.has(clientId) !== true) g.producer.delete(p);
      if (!inConsumers) g.consumer = undefined;
      if (g.consumer === undefined && g.producer.size === 0) groupsOf.delete(clientId);
    }
  };

  const leave = (clientId: string, keepConsumer?: string, keepProducers?: ReadonlySet<string>): void => {
    const g = groupsOf.get(clientId);
    if (g === undefined) return;
    if (g.consumer !== undefined && g.consumer !== keepConsumer) {
      const table = consumers.get(g.consumer);
      table?.delete(clientId);
      if (table?.size === 0) consumers.delete(g.consumer);
      g.consumer = undefined;
    }
    for (const p of [...g.producer]) {
      if (keepProducers?.has(p) === true) continue;
      const table = producers.get(p);
      table?.delete(clientId);
      if (table?.size === 0) producers.delete(p);
      g.producer.delete(p);
    }
  };

  return {
    heartbeat(h) {
      const t = now();
      if (t - lastSweep >= SWEEP_INTERVAL_MS) {
        lastSweep = t;
        sweep(t);
      }
      const id = h.connection.clientId;
      const producerGroups = new Set(h.producerGroups ?? []);
      // A client that moved groups (or stopped producing to a topic) leaves the old ones.
      leave(id, h.consumerGroup, producerGroups);
      let g = groupsOf.get(id);
      if (g === undefined) {
        g = { producer: new Set() };
        groupsOf.set(id, g);
      }
      if (h.consumerGroup !== undefined && h.consumerGroup.length > 0) {
        let table = consumers.get(h.consumerGroup);
        if (table === undefined) {
          table = new Map();
          consumers.set(h.consumerGroup, table);
        }
        table.set(id, {
          connection: { ...h.connection },
          consumeType: h.consumeType ?? ConsumeType.CONSUME_ACTIVELY,
          subscriptions: [...(h.subscriptions ?? [])],
          lastUpdateMs: t,
        });
        g.consumer = h.consumerGroup;
      }
      for (const p of producerGroups) {
        let table = producers.get(p);
        if (table === undefined) {
          table = new Map();
          producers.set(p, table);
        }
        table.set(id, { connection: { ...h.connection }, lastUpdateMs: t });
        g.producer.add(p);
      }
      if (g.consumer === undefined && g.producer.size === 0) groupsOf.delete(id);
    },

    unregister(clientId) {
      leave(clientId);
      groupsOf.delete(clientId);
    },

    consumerConnection(group) {
      const table = consumers.get(group);
      if (table === undefined) return undefined;
      const entries = live(table, now());
      if (entries.length === 0) {
        consumers.delete(group);
        return undefined;
      }
      // One subscription per topic, the most recently heard client's (upstream keeps the newest).
      const byTopic = new Map<string, ConsumerSubscription>();
      const newestFirst = [...entries].sort((a, b) => b.lastUpdateMs - a.lastUpdateMs);
      for (const e of newestFirst)
        for (const s of e.subscriptions) if (!byTopic.has(s.topic)) byTopic.set(s.topic, { ...s });
      return {
        connections: entries.map((e) => ({ ...e.connection })),
        subscriptions: [...byTopic.values()].sort((a, b) => a.topic.localeCompare(b.topic)),
        consumeType: (newestFirst[0] as ConsumerEntry).consumeType,
        messageModel: "CLUSTERING",
        consumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
      };
    },

    producerConnection(group) {
      const table = producers.get(group);
      if (table === undefined) return [];
      const entries = live(table, now());
      if (entries.length === 0) producers.delete(group);
      return entries.map((e) => ({ ...e.connection }));
    },
  };
}
