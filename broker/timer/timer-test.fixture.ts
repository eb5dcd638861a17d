// Test fixture (not a test): a real store, topic table and timer in a directory, with helpers to send
// timer messages the way the broker's send path does and to read what was delivered.

import { STORE_HOST, smallStoreConfig } from "../../test/fixtures/store-fixtures.ts";
import { createTopicConfigManager, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { MessageStoreConfig } from "../store/config.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import { createMessageStore, type MessageStore } from "../store/message-store.ts";
import type { MessageInput } from "../store/message-store-types.ts";
import type { TimerConfig } from "./timer-config.ts";
import { createTimerMessageStore, type TimerMessageStore } from "./timer-message-store.ts";

export const TEST_BROKER = "broker-a";

export interface TimerBroker {
  dir: string;
  store: MessageStore;
  topics: TopicConfigManager;
  timer: TimerMessageStore;
  /** Sends one message through the timer rewrite (as the send path will); returns its id and recall handle. */
  send(
    topic: string,
    body: string,
    properties: Record<string, string>,
    queueId?: number,
  ): Promise<{ messageId: string; recallHandle: string | undefined; timerOutMs: number | undefined }>;
  /** Every message in the topic's queue, in queue order. */
  delivered(topic: string, queueId?: number): Promise<StoredMessage[]>;
  close(): Promise<void>;
}

export interface TimerBrokerOptions {
  clock?: () => number;
  timer?: Partial<TimerConfig>;
  store?: Partial<MessageStoreConfig>;
  /** Leave the timer stopped (tests drive it with tick()). */
  noStart?: boolean;
}

export async function openTimerBroker(dir: string, o: TimerBrokerOptions = {}): Promise<TimerBroker> {
  const store = await createMessageStore(
    smallStoreConfig(dir, { mappedFileSizeCommitLog: 1024 * 1024, ...o.store }),
    {
      storeHost: STORE_HOST,
    },
  );
  const topics = await createTopicConfigManager({
    storePathRootDir: dir,
    brokerClusterName: "TestCluster",
    brokerName: TEST_BROKER,
    autoCreateTopicEnable: true,
    defaultTopicQueueNums: 4,
    clusterTopicEnable: true,
    brokerTopicEnable: true,
    traceTopicEnable: false,
    msgTraceTopicName: "RMQ_SYS_TRACE_TOPIC",
    reviveQueueNum: 1,
    timerWheelEnable: true,
  });
  const clock = o.clock ?? Date.now;
  const timer = await createTimerMessageStore({
    store,
    topics,
    storePathRootDir: dir,
    config: { mappedFileSizeTimerLog: 64 * 1024, ...o.timer },
    brokerName: TEST_BROKER,
    clock,
    storeHost: STORE_HOST,
  });
  if (o.noStart !== true) timer.start();
  return {
    dir,
    store,
    topics,
    timer,
    async send(topic, body, properties, queueId = 0) {
      // As the send path's auto-create would.
      if (!topics.has(topic))
        await topics.createIfAbsent({ topicName: topic, readQueueNums: 4, writeQueueNums: 4 });
      const input: MessageInput = {
        topic,
        queueId,
        flag: 0,
        body: Buffer.from(body),
        properties: new Map(Object.entries(properties)),
        bornTimestamp: clock(),
        bornHost: { address: "10.0.0.1", port: 5000 },
        sysFlag: 0,
        reconsumeTimes: 0,
        preparedTransactionOffset: 0,
      };
      const t = timer.transform(input);
      const [r] = await store.putMessages([t?.message ?? input]);
      return {
        messageId: (r as { uniqKey: string }).uniqKey,
        recallHandle: t?.recallHandle,
        timerOutMs: t?.timerOutMs,
      };
    },
    async delivered(topic, queueId = 0) {
      const out: StoredMessage[] = [];
      let next = store.getMinOffsetInQueue(topic, queueId);
      while (next < store.getMaxOffsetInQueue(topic, queueId)) {
        const r = await store.getMessage(topic, queueId, next, 256);
        out.push(...r.messages);
        if (r.nextBeginOffset <= next) break;
        next = r.nextBeginOffset;
      }
      return out;
    },
    async close() {
      await timer.shutdown();
      await store.shutdown();
    },
  };
}

export function bodyText(m: StoredMessage): string {
  return Buffer.from(m.body.buffer, m.body.byteOffset, m.body.byteLength).toString("utf8");
}
