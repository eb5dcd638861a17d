// Long polling for pop: a pop that found nothing parks here until a message it could take arrives on
// one of its topics (the store hands every confirmed record to `dispatch`), its time runs out, its
// signal aborts, or the broker shuts down. Nothing polls in a loop.
//
// Lost wake-ups are impossible without a lock: every topic has a change counter that `dispatch` (and
// `touch`, when a queue lock is released) bumps. A pop snapshots the counters of its topics before it
// reads; if any moved by the time it would park, it reads again instead of parking.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Dispatcher, DispatchRequest } from "../store/dispatch.ts";

export interface PollingLimits {
  /** Held polls per topic@group (upstream popPollingSize). */
  perKey: number;
  /** Held polls in total (upstream maxPopPollingSize). */
  total: number;
}

interface Waiter {
  topics: readonly string[];
  key: string;
  /** Cheap pre-check on a record's tagsCode; a false answer leaves the waiter parked. */
  mayMatch: (tagsCode: number) => boolean;
  wake: () => void;
}

export type TopicSnapshot = ReadonlyArray<readonly [topic: string, seq: number]>;

export class PopLongPolling implements Dispatcher {
  private readonly byTopic = new Map<string, Set<Waiter>>();
  private readonly perKey = new Map<string, number>();
  private readonly seqs = new Map<string, number>();
  private readonly limits: PollingLimits;
  private total = 0;
  private closed = false;

  constructor(limits: PollingLimits) {
    this.limits = limits;
  }

  get heldPolls(): number {
    return this.total;
  }

  snapshot(topics: readonly string[]): TopicSnapshot {
    return topics.map((t) => [t, this.seqs.get(t) ?? 0] as const);
  }

  /** True when any topic of the snapshot changed since it was taken. */
  changedSince(snap: TopicSnapshot): boolean {
    for (const [t, s] of snap) if ((this.seqs.get(t) ?? 0) !== s) return true;
    return false;
  }

  private bump(topic: string): void {
    this.seqs.set(topic, (this.seqs.get(topic) ?? 0) + 1);
  }

  dispatch(req: DispatchRequest): void {
    this.bump(req.topic);
    const ws = this.byTopic.get(req.topic);
    if (ws === undefined) return;
    for (const w of ws) if (w.mayMatch(req.tagsCode)) w.wake();
  }

  /** Something other than a new record may let a parked pop succeed (a queue lock was released): wake all on `topic`. */
  touch(topic: string): void {
    this.bump(topic);
    const ws = this.byTopic.get(topic);
    if (ws !== undefined) for (const w of ws) w.wake();
  }

  /**
   * Parks until woken, `timeoutMs` passes, `signal` aborts or shutdown. Resolves at once when the
   * snapshot is already stale. Throws TOO_MANY_REQUESTS when the polling limits are reached.
   */
  wait(opts: {
    snapshot: TopicSnapshot;
    key: string;
    mayMatch: (tagsCode: number) => boolean;
    timeoutMs: number;
    signal: AbortSignal | undefined;
  }): Promise<void> {
    if (
      this.closed ||
      opts.timeoutMs <= 0 ||
      opts.signal?.aborted === true ||
      this.changedSince(opts.snapshot)
    ) {
      return Promise.resolve();
    }
    const held = this.perKey.get(opts.key) ?? 0;
    if (held >= this.limits.perKey || this.total >= this.limits.total) {
      throw new RmqError(
        ErrorCode.TooManyRequests,
        `too many long polls held (${held} on ${opts.key}, ${this.total} in total; limits ${this.limits.perKey} and ${this.limits.total})`,
      );
    }
    return new Promise<void>((resolve) => {
      const topics = opts.snapshot.map(([t]) => t);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", finish);
        for (const t of topics) {
          const ws = this.byTopic.get(t);
          if (ws === undefined) continue;
          ws.delete(waiter);
          if (ws.size === 0) this.byTopic.delete(t);
        }
        const n = (this.perKey.get(opts.key) ?? 1) - 1;
        if (n <= 0) this.perKey.delete(opts.key);
        else this.perKey.set(opts.key, n);
        this.total--;
        resolve();
      };
      const waiter: Waiter = { topics, key: opts.key, mayMatch: opts.mayMatch, wake: finish };
      for (const t of topics) {
        let ws = this.byTopic.get(t);
        if (ws === undefined) {
          ws = new Set();
          this.byTopic.set(t, ws);
        }
        ws.add(waiter);
      }
      this.perKey.set(opts.key, held + 1);
      this.total++;
      const timer = setTimeout(finish, opts.timeoutMs);
      opts.signal?.addEventListener("abort", finish, { once: true });
    });
  }

  /** Ends every held poll now and makes later waits return at once. */
  shutdown(): void {
    this.closed = true;
    const all = new Set<Waiter>();
    for (const ws of this.byTopic.values()) for (const w of ws) all.add(w);
    for (const w of all) w.wake();
  }
}
