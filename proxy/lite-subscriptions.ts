// Which lite topics each lite push consumer listens to (upstream LiteSubscriptionRegistry; kept in
// the proxy, which knows its clients). SyncLiteSubscription changes a client's set for one parent
// topic and group; ReceiveMessage from that client pops from exactly those lite topics. Nothing is
// persisted: clients re-send their whole set every 30 s (COMPLETE_ADD), and a client's sets go when
// its session does (NotifyClientTermination, telemetry gone, heartbeat expiry).

import { ErrorCode, RmqError } from "../common/errors.ts";

/** Lite subscriptions (client, lite topic) this proxy keeps in total (ours; upstream maxLiteSubscriptionCount). */
export const MAX_LITE_SUBSCRIPTIONS = 1_000_000;

export const LiteSubscriptionAction = {
  PARTIAL_ADD: "PARTIAL_ADD",
  PARTIAL_REMOVE: "PARTIAL_REMOVE",
  COMPLETE_ADD: "COMPLETE_ADD",
  COMPLETE_REMOVE: "COMPLETE_REMOVE",
} as const;
export type LiteSubscriptionAction = (typeof LiteSubscriptionAction)[keyof typeof LiteSubscriptionAction];

interface ClientSubscriptions {
  /** `group \0 topic` → lite topics, in subscription order. */
  sets: Map<string, Set<string>>;
  /** Held receives to wake when a set of this client changes (each removes itself when done). */
  waiters: Set<() => void>;
}

export interface LiteSubscriptionRegistry {
  /**
   * Applies an action to the client's set for (group, topic); returns the lite topics newly added.
   * Throws LITE_SUBSCRIPTION_QUOTA_EXCEEDED when the client's set would exceed `quota` or the
   * proxy-wide total MAX_LITE_SUBSCRIPTIONS (nothing is changed then).
   */
  sync(
    clientId: string,
    group: string,
    topic: string,
    action: LiteSubscriptionAction,
    liteTopics: readonly string[],
    quota: number,
  ): string[];
  liteTopicsOf(clientId: string, group: string, topic: string): string[];
  /** Resolves when the client's subscriptions change, `timeoutMs` passes or `signal` aborts. */
  waitForChange(clientId: string, timeoutMs: number, signal: AbortSignal): Promise<void>;
  removeClient(clientId: string): void;
  /** Subscriptions kept in total. */
  size(): number;
}

export function createLiteSubscriptionRegistry(): LiteSubscriptionRegistry {
  const clients = new Map<string, ClientSubscriptions>();
  let total = 0;

  const clientOf = (clientId: string): ClientSubscriptions => {
    let c = clients.get(clientId);
    if (c === undefined) {
      c = { sets: new Map(), waiters: new Set() };
      clients.set(clientId, c);
    }
    return c;
  };
  const notify = (c: ClientSubscriptions): void => {
    for (const wake of [...c.waiters]) wake();
  };

  return {
    sync(clientId, group, topic, action, liteTopics, quota) {
      const c = clientOf(clientId);
      const key = `${group}\u0000${topic}`;
      const current = c.sets.get(key) ?? new Set<string>();
      let next: Set<string>;
      switch (action) {
        case LiteSubscriptionAction.PARTIAL_ADD:
          next = new Set([...current, ...liteTopics]);
          break;
        case LiteSubscriptionAction.PARTIAL_REMOVE:
          next = new Set([...current].filter((t) => !liteTopics.includes(t)));
          break;
        case LiteSubscriptionAction.COMPLETE_ADD:
          next = new Set(liteTopics);
          break;
        default:
          next = new Set();
      }
      if (next.size > current.size) {
        if (next.size > quota)
          throw new RmqError(
            ErrorCode.LiteSubscriptionQuotaExceeded,
            `client ${clientId} would listen to ${next.size} lite topics of ${topic}; the quota is ${quota}`,
          );
        if (total + next.size - current.size > MAX_LITE_SUBSCRIPTIONS)
          throw new RmqError(
            ErrorCode.LiteSubscriptionQuotaExceeded,
            `this proxy keeps at most ${MAX_LITE_SUBSCRIPTIONS} lite subscriptions`,
          );
      }
      const added = [...next].filter((t) => !current.has(t));
      const changed = added.length > 0 || next.size !== current.size;
      total += next.size - current.size;
      if (next.size === 0) c.sets.delete(key);
      else c.sets.set(key, next);
      if (c.sets.size === 0 && c.waiters.size === 0) clients.delete(clientId);
      if (changed) notify(c);
      return added;
    },

    liteTopicsOf(clientId, group, topic) {
      const set = clients.get(clientId)?.sets.get(`${group}\u0000${topic}`);
      return set === undefined ? [] : [...set];
    },

    waitForChange(clientId, timeoutMs, signal) {
      if (signal.aborted || timeoutMs <= 0) return Promise.resolve();
      const c = clientOf(clientId);
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          c.waiters.delete(done);
          if (c.sets.size === 0 && c.waiters.size === 0 && clients.get(clientId) === c)
            clients.delete(clientId);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal.addEventListener("abort", done, { once: true });
        c.waiters.add(done);
      });
    },

    removeClient(clientId) {
      const c = clients.get(clientId);
      if (c === undefined) return;
      for (const set of c.sets.values()) total -= set.size;
      clients.delete(clientId);
      notify(c);
    },

    size: () => total,
  };
}
