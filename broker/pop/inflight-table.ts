// The in-memory picture of what is in flight: every popped, un-acked message (keyed the way its
// receipt handle names it), the check point (CK) it belongs to, one deadline heap over all of them
// for revive, and per revive queue the CKs not yet resolved, from which the revive offset that may
// be committed follows. Everything here is rebuilt from the revive topic at start.

import { DeadlineHeap } from "./deadline-heap.ts";

/** One CK as it lives in memory. */
export interface CheckPointState {
  reviveQid: number;
  /** Queue offset of the CK record in its revive queue. */
  ckOffset: number;
  group: string;
  /** Topic popped from (subscribed topic or its pop retry topic). */
  topic: string;
  /** The subscribed topic. */
  originTopic: string;
  queueId: number;
  popTime: number;
  invisibleTime: number;
  /** Messages of this CK still in flight; the CK is resolved at 0. */
  remaining: number;
}

export interface InflightMessage {
  readonly key: string;
  readonly ck: CheckPointState;
  readonly index: number;
  readonly queueOffset: number;
  readonly commitLogOffset: number;
  /** When the message becomes visible again unless acked: popTime + invisibleTime. */
  readonly deadline: number;
  /** Set while an ack, changeInvisibleTime, DLQ move or revive of this message is being written. */
  busy: Promise<unknown> | undefined;
  removed: boolean;
  /**
   * The receipt handle issued for this message (unset for entries rebuilt from the revive log): a
   * handle string equal to it names this entry without being decoded and authenticated again.
   */
  receiptHandle: string | undefined;
}

/** Dead heap items tolerated beyond the live ones before the heap is compacted (ours). */
const HEAP_SLACK = 1024;
/** Resolved CKs tolerated in a revive queue's list before it is compacted (ours). */
const CK_LIST_SLACK = 256;

export function inflightKey(reviveQid: number, ckOffset: number, index: number): string {
  return `${reviveQid}:${ckOffset}:${index}`;
}

function queueKey(group: string, topic: string, queueId: number): string {
  return `${topic}@${group}@${queueId}`;
}

/** The unresolved CKs of one revive queue, in CK offset order. */
class ReviveQueueState {
  cks: CheckPointState[] = [];
  head = 0;
  live = 0;
  /** CK writes to this queue that were started and have not been registered (or failed) yet. */
  pendingWrites = 0;

  insert(ck: CheckPointState): void {
    const a = this.cks;
    let i = a.length;
    while (i > this.head && (a[i - 1] as CheckPointState).ckOffset > ck.ckOffset) i--;
    a.splice(i, 0, ck);
    this.live++;
  }

  /** Lowest CK offset still unresolved, after dropping resolved ones from the front. */
  firstLive(): number | undefined {
    const a = this.cks;
    while (this.head < a.length && (a[this.head] as CheckPointState).remaining <= 0) this.head++;
    if (this.head > CK_LIST_SLACK && this.head * 2 > a.length) {
      this.cks = a.slice(this.head);
      this.head = 0;
    }
    return this.cks[this.head]?.ckOffset;
  }

  resolved(): void {
    this.live--;
    if (this.cks.length - this.head > 2 * this.live + CK_LIST_SLACK) {
      this.cks = this.cks.slice(this.head).filter((c) => c.remaining > 0);
      this.head = 0;
    }
  }
}

export class InflightTable {
  private readonly entries = new Map<string, InflightMessage>();
  /** Live entries by the receipt handle issued for them. */
  private readonly byHandle = new Map<string, InflightMessage>();
  private readonly heap = new DeadlineHeap<InflightMessage>((e) => e.deadline);
  private readonly perQueue = new Map<string, number>();
  private readonly reviveQueues = new Map<number, ReviveQueueState>();

  get size(): number {
    return this.entries.size;
  }

  private reviveQueue(qid: number): ReviveQueueState {
    let q = this.reviveQueues.get(qid);
    if (q === undefined) {
      q = new ReviveQueueState();
      this.reviveQueues.set(qid, q);
    }
    return q;
  }

  /** A CK write to revive queue `qid` is starting: the revive offset must not pass it until it ends. */
  beginCkWrite(qid: number): void {
    this.reviveQueue(qid).pendingWrites++;
  }

  endCkWrite(qid: number): void {
    this.reviveQueue(qid).pendingWrites--;
  }

  /** Registers a stored CK and its messages (those not already resolved). */
  add(
    ck: CheckPointState,
    messages: ReadonlyArray<{ index: number; queueOffset: number; commitLogOffset: number }>,
  ): InflightMessage[] {
    const out: InflightMessage[] = [];
    ck.remaining = messages.length;
    if (messages.length === 0) return out;
    this.reviveQueue(ck.reviveQid).insert(ck);
    const deadline = ck.popTime + ck.invisibleTime;
    const qk = queueKey(ck.group, ck.topic, ck.queueId);
    for (const m of messages) {
      const e: InflightMessage = {
        key: inflightKey(ck.reviveQid, ck.ckOffset, m.index),
        ck,
        index: m.index,
        queueOffset: m.queueOffset,
        commitLogOffset: m.commitLogOffset,
        deadline,
        busy: undefined,
        removed: false,
        receiptHandle: undefined,
      };
      this.entries.set(e.key, e);
      this.heap.push(e);
      out.push(e);
    }
    this.perQueue.set(qk, (this.perQueue.get(qk) ?? 0) + messages.length);
    return out;
  }

  get(key: string): InflightMessage | undefined {
    return this.entries.get(key);
  }

  /** Remembers the receipt handle issued for a live entry (one per entry), until the entry is removed. */
  setReceiptHandle(e: InflightMessage, receiptHandle: string): void {
    if (e.removed) return;
    if (e.receiptHandle !== undefined) this.byHandle.delete(e.receiptHandle);
    e.receiptHandle = receiptHandle;
    this.byHandle.set(receiptHandle, e);
  }

  /** The live entry a receipt handle was issued for, when the string is exactly that handle. */
  byReceiptHandle(receiptHandle: string): InflightMessage | undefined {
    return this.byHandle.get(receiptHandle);
  }

  /** The message is no longer in flight (acked, revived, moved to the DLQ or to a new CK). */
  remove(e: InflightMessage): void {
    if (e.removed) return;
    e.removed = true;
    e.busy = undefined;
    this.entries.delete(e.key);
    if (e.receiptHandle !== undefined) this.byHandle.delete(e.receiptHandle);
    const qk = queueKey(e.ck.group, e.ck.topic, e.ck.queueId);
    const n = (this.perQueue.get(qk) ?? 1) - 1;
    if (n <= 0) this.perQueue.delete(qk);
    else this.perQueue.set(qk, n);
    e.ck.remaining--;
    if (e.ck.remaining === 0) this.reviveQueue(e.ck.reviveQid).resolved();
    if (this.heap.size > 2 * this.entries.size + HEAP_SLACK) this.heap.rebuild((x) => !x.removed);
  }

  /** Ends a busy period that did not remove the message; it is due again at once if its deadline passed meanwhile. */
  release(e: InflightMessage): void {
    if (e.removed) return;
    e.busy = undefined;
    this.heap.push(e);
  }

  /** Up to `max` messages whose deadline is <= now and that are not busy. */
  takeDue(now: number, max: number): InflightMessage[] {
    const out: InflightMessage[] = [];
    while (out.length < max) {
      const top = this.heap.peek();
      if (top === undefined || top.deadline > now) break;
      this.heap.pop();
      // A busy message is re-pushed by release() if its operation fails; removed ones are done.
      if (top.removed || top.busy !== undefined) continue;
      if (this.entries.get(top.key) !== top) continue;
      out.push(top);
    }
    return out;
  }

  /** The earliest deadline among live messages (undefined when none). */
  nextDeadline(): number | undefined {
    for (;;) {
      const top = this.heap.peek();
      if (top === undefined) return undefined;
      if (top.removed) {
        this.heap.pop();
        continue;
      }
      return top.deadline;
    }
  }

  /** Messages of `group` popped from `topic`/`queueId` and still in flight. */
  inflightCount(group: string, topic: string, queueId: number): number {
    return this.perQueue.get(queueKey(group, topic, queueId)) ?? 0;
  }

  /**
   * How far revive queue `qid` may be committed: below its first unresolved CK; when none, up to
   * `queueMaxOffset` unless a CK write is still under way (its offset is not known yet).
   */
  reviveCommitOffset(qid: number, queueMaxOffset: number): number | undefined {
    const q = this.reviveQueues.get(qid);
    if (q === undefined) return queueMaxOffset;
    const first = q.firstLive();
    if (first !== undefined) return Math.min(first, queueMaxOffset);
    return q.pendingWrites > 0 ? undefined : queueMaxOffset;
  }
}
