// Which queue a SendMessage goes to. FIFO messages (with a message group) go to the queue
// Guava's consistentHash(group.hashCode(), writableQueueCount) picks, as the upstream proxy does, so
// one message group always lands on one queue and mixed proxies agree. Everything else is spread
// round-robin over the writable queues of all brokers.

import { javaStringHashCode } from "../broker/filter/java-hash.ts";
import { isWritable, type TopicRoute } from "./backend.ts";

export interface TargetQueue {
  brokerName: string;
  queueId: number;
}

const LCG_MULTIPLIER = 2862933555777941757n;
const UINT64_MASK = (1n << 64n) - 1n;
const TWO_POW_31 = 2 ** 31;

/**
 * Guava Hashing.consistentHash(long input, int buckets): a bucket in [0, buckets) such that growing
 * the bucket count moves as few inputs as possible. `input` is a Java long given as a bigint or a
 * safe integer.
 */
export function consistentHash(input: bigint | number, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets <= 0)
    throw new RangeError(`buckets must be positive, got ${buckets}`);
  let state = BigInt.asUintN(64, BigInt(input));
  let candidate = 0;
  for (;;) {
    state = (LCG_MULTIPLIER * state + 1n) & UINT64_MASK;
    const nextDouble = (Number(state >> 33n) + 1) / TWO_POW_31;
    const next = Math.floor((candidate + 1) / nextDouble);
    if (next >= 0 && next < buckets) candidate = next;
    else return candidate;
  }
}

export interface QueueSelector {
  /** The target for a message of `topic`; `messageGroup` set for FIFO messages. Undefined when no queue is writable. */
  select(route: TopicRoute, messageGroup: string | undefined): TargetQueue | undefined;
}

export function createQueueSelector(): QueueSelector {
  const roundRobin = new Map<string, number>();
  return {
    select(route, messageGroup) {
      // Counted and indexed without listing the queues: this runs once per SendMessage.
      const count = writableQueueCount(route);
      if (count === 0) return undefined;
      if (messageGroup !== undefined && messageGroup.length > 0) {
        return writableQueueAt(route, consistentHash(javaStringHashCode(messageGroup), count));
      }
      const next = ((roundRobin.get(route.topic) ?? Math.floor(Math.random() * count)) + 1) % count;
      roundRobin.set(route.topic, next);
      return writableQueueAt(route, next);
    },
  };
}

function writableQueueCount(route: TopicRoute): number {
  let count = 0;
  for (const broker of route.brokers)
    if (isWritable(broker.perm)) count += Math.max(0, broker.writeQueueNums);
  return count;
}

/** The `index`-th entry of writableQueues(route). */
function writableQueueAt(route: TopicRoute, index: number): TargetQueue | undefined {
  let rest = index;
  for (const broker of route.brokers) {
    if (!isWritable(broker.perm)) continue;
    const n = Math.max(0, broker.writeQueueNums);
    if (rest < n) return { brokerName: broker.brokerName, queueId: rest };
    rest -= n;
  }
  return undefined;
}

/** Writable queues in route order: broker by broker, queue ids ascending. */
export function writableQueues(route: TopicRoute): TargetQueue[] {
  const queues: TargetQueue[] = [];
  for (const broker of route.brokers) {
    if (!isWritable(broker.perm)) continue;
    for (let queueId = 0; queueId < broker.writeQueueNums; queueId++)
      queues.push({ brokerName: broker.brokerName, queueId });
  }
  return queues;
}
