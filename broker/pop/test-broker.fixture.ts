// Test fixture (not a test): a real broker stack in a directory — store with small segments, topic,
// group and offset managers, and the message service — plus a controllable clock.

import { STORE_HOST, smallStoreConfig } from "../../test/fixtures/store-fixtures.ts";
import {
  type BrokerMessageService,
  type BrokerMessageServiceConfig,
  createBrokerMessageService,
} from "../message-service.ts";
import {
  type ConsumerOffsetManager,
  createConsumerOffsetManager,
} from "../metadata/consumer-offset-manager.ts";
import {
  createSubscriptionGroupManager,
  type SubscriptionGroupManager,
} from "../metadata/subscription-group-manager.ts";
import { createTopicConfigManager, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { MessageStoreConfig } from "../store/config.ts";
import { createMessageStore, type MessageStore } from "../store/message-store.ts";

export const TEST_CLUSTER = "TestCluster";
export const TEST_BROKER = "broker-a";
/** Revive queues in tests (upstream 8): two, so round robin and per-queue rebuild are exercised. */
export const TEST_REVIVE_QUEUES = 2;

export class TestClock {
  now: number;
  constructor(start = 1_700_000_000_000) {
    this.now = start;
  }
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

export interface TestBroker {
  dir: string;
  store: MessageStore;
  topics: TopicConfigManager;
  groups: SubscriptionGroupManager;
  offsets: ConsumerOffsetManager;
  service: BrokerMessageService;
  /** Clean stop: service, offsets, store. */
  close(): Promise<void>;
}

export interface OpenOptions {
  clock?: () => number;
  random?: () => number;
  config?: Partial<BrokerMessageServiceConfig>;
  store?: Partial<MessageStoreConfig>;
  autoCreateTopicEnable?: boolean;
}

export async function openTestBroker(dir: string, o: OpenOptions = {}): Promise<TestBroker> {
  const store = await createMessageStore(smallStoreConfig(dir, { messageIndexEnable: false, ...o.store }), {
    storeHost: STORE_HOST,
  });
  const autoCreateTopicEnable = o.autoCreateTopicEnable ?? o.config?.autoCreateTopicEnable ?? true;
  const topics = await createTopicConfigManager({
    storePathRootDir: dir,
    brokerClusterName: TEST_CLUSTER,
    brokerName: TEST_BROKER,
    autoCreateTopicEnable,
    defaultTopicQueueNums: 8,
    clusterTopicEnable: true,
    brokerTopicEnable: true,
    traceTopicEnable: false,
    msgTraceTopicName: "RMQ_SYS_TRACE_TOPIC",
    reviveQueueNum: TEST_REVIVE_QUEUES,
    timerWheelEnable: false,
  });
  const groups = await createSubscriptionGroupManager({
    storePathRootDir: dir,
    autoCreateSubscriptionGroup: true,
  });
  const offsets = await createConsumerOffsetManager({ storePathRootDir: dir });
  const service = await createBrokerMessageService({
    store,
    topics,
    groups,
    offsets,
    brokerName: TEST_BROKER,
    clusterName: TEST_CLUSTER,
    storeHost: STORE_HOST,
    config: {
      autoCreateTopicEnable,
      defaultTopicQueueNums: 4,
      autoCreateSubscriptionGroup: true,
      enablePropertyFilter: true,
      ...o.config,
      // Revive runs when a test says so (reviveDue), not on a timer racing the injected clock.
      pop: { reviveIntervalMs: 3_600_000, ...o.config?.pop },
    },
    clock: o.clock,
    random: o.random,
  });
  return {
    dir,
    store,
    topics,
    groups,
    offsets,
    service,
    async close() {
      await service.shutdown();
      await offsets.close();
      await store.shutdown();
    },
  };
}

/** Creates `topic` with `queues` read/write queues. */
export async function createTopic(b: TestBroker, topic: string, queues: number): Promise<void> {
  await b.topics.createOrUpdate({ topicName: topic, readQueueNums: queues, writeQueueNums: queues });
}

/** Sends `count` messages "m0".."m{count-1}" spread over the topic's queues; returns their message ids in order. */
export async function sendNumbered(
  b: TestBroker,
  topic: string,
  count: number,
  opts: {
    tag?: (i: number) => string | undefined;
    properties?: (i: number) => Record<string, string>;
    prefix?: string;
  } = {},
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const [r] = await b.service.sendMessages({
      topic,
      messages: [
        {
          body: Buffer.from(`${opts.prefix ?? "m"}${i}`),
          tag: opts.tag?.(i),
          keys: [`key-${i}`],
          properties: opts.properties?.(i),
        },
      ],
    });
    ids.push((r as { messageId: string }).messageId);
  }
  return ids;
}

export function bodyText(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
}
