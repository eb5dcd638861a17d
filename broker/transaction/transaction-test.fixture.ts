// Test fixture (not a test): a real store, topic table and offset table in a directory, the
// transaction service over them with a controllable clock, and helpers that send half messages the way
// the broker's send path does (toHalfMessage, putMessages, transactionIdOf).

import { BORN_HOST, STORE_HOST, smallStoreConfig } from "../../test/fixtures/store-fixtures.ts";
import {
  type ConsumerOffsetManager,
  createConsumerOffsetManager,
} from "../metadata/consumer-offset-manager.ts";
import { createTopicConfigManager, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import { createMessageStore, type MessageStore } from "../store/message-store.ts";
import { toHalfMessage } from "./half-message.ts";
import { TransactionProperty } from "./transaction-properties.ts";
import {
  createTransactionService,
  type TransactionCheckRequest,
  type TransactionConfig,
  type TransactionService,
} from "./transaction-service.ts";

export const TX_BROKER = "broker-tx";
export const TX_TOPIC = "TxTopic";
export const TX_GROUP = "PID_tx";
export const TX_QUEUES = 4;
/** Long enough that the timer never fires during a test that drives passes with checkNow. */
export const NO_TIMER_INTERVAL = 3_600_000;

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

export interface TxBroker {
  dir: string;
  store: MessageStore;
  topics: TopicConfigManager;
  offsets: ConsumerOffsetManager;
  service: TransactionService;
  /** Every check the service sent, in order. */
  checks: TransactionCheckRequest[];
  /** Clean stop: service, offsets (persisted), store. */
  close(): Promise<void>;
}

export interface SentHalf {
  transactionId: string;
  messageId: string;
  body: string;
  commitLogOffset: number;
  queueOffset: number;
}

export async function openTxBroker(
  dir: string,
  opts: {
    clock: TestClock;
    config?: Partial<TransactionConfig>;
    onCheck?: (c: TransactionCheckRequest) => boolean;
  },
): Promise<TxBroker> {
  const store = await createMessageStore(smallStoreConfig(dir, { messageIndexEnable: false }), {
    storeHost: STORE_HOST,
  });
  const topics = await createTopicConfigManager({
    storePathRootDir: dir,
    brokerClusterName: "TxCluster",
    brokerName: TX_BROKER,
    autoCreateTopicEnable: true,
    defaultTopicQueueNums: 8,
    clusterTopicEnable: true,
    brokerTopicEnable: true,
    traceTopicEnable: false,
    msgTraceTopicName: "RMQ_SYS_TRACE_TOPIC",
    reviveQueueNum: 1,
    timerWheelEnable: false,
  });
  await topics.createIfAbsent({ topicName: TX_TOPIC, readQueueNums: TX_QUEUES, writeQueueNums: TX_QUEUES });
  const offsets = await createConsumerOffsetManager({ storePathRootDir: dir });
  const checks: TransactionCheckRequest[] = [];
  const service = createTransactionService({
    store,
    topics,
    offsets,
    brokerName: TX_BROKER,
    config: {
      transactionTimeOut: 6000,
      transactionCheckInterval: NO_TIMER_INTERVAL,
      transactionCheckMax: 15,
      ...opts.config,
    },
    onCheck: (c) => {
      checks.push(c);
      return opts.onCheck?.(c) ?? true;
    },
    clock: opts.clock.read,
    storeHost: STORE_HOST,
  });
  await service.start();
  return {
    dir,
    store,
    topics,
    offsets,
    service,
    checks,
    async close() {
      await service.shutdown();
      await offsets.close();
      await store.shutdown();
    },
  };
}

/** Stores a transactional half message as the send path does; returns what the producer would get. */
export async function sendHalf(
  b: TxBroker,
  clock: TestClock,
  o: {
    body: string;
    queueId?: number;
    group?: string;
    properties?: Record<string, string>;
  },
): Promise<SentHalf> {
  const properties = new Map<string, string>([
    ["TAGS", "tagA"],
    ["KEYS", `key-${o.body}`],
    ["userProp", `v-${o.body}`],
    ...Object.entries(o.properties ?? {}),
  ]);
  properties.set(TransactionProperty.TRANSACTION_PREPARED, "true");
  properties.set(TransactionProperty.PRODUCER_GROUP, o.group ?? TX_GROUP);
  const half = toHalfMessage({
    topic: TX_TOPIC,
    queueId: o.queueId ?? 1,
    flag: 3,
    body: Buffer.from(o.body),
    properties,
    bornTimestamp: clock.now,
    bornHost: BORN_HOST,
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  });
  const [r] = await b.store.putMessages([half]);
  if (r === undefined) throw new Error("no put result");
  return {
    transactionId: b.service.transactionIdOf(r),
    messageId: r.uniqKey,
    body: o.body,
    commitLogOffset: r.commitLogOffset,
    queueOffset: r.queueOffset,
  };
}

/** Every readable message of queue 0..queues-1 of `topic`. */
export async function readAll(b: TxBroker, topic: string, queues = TX_QUEUES): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for (let q = 0; q < queues; q++) {
    let next = 0;
    for (;;) {
      const res = await b.store.getMessage(topic, q, next, 256);
      out.push(...res.messages);
      if (res.messages.length === 0 || res.nextBeginOffset <= next) break;
      next = res.nextBeginOffset;
    }
  }
  return out;
}

export function bodyText(body: Uint8Array): string {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
}
