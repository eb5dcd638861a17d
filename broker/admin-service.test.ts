// The broker admin service over a real store and metadata managers in a temp dir, served by the real
// RPC server on 127.0.0.1:0 and called through the real RPC client.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { closeRpcConnections, createRpcClient } from "../common/rpc-client.ts";
import { createRpcServer, type RpcServer } from "../common/rpc-server.ts";
import { BrokerAdminService } from "../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import { tempDir } from "../test/fixtures/store-fixtures.ts";
import {
  ADMIN_DEFAULT_TOPIC_QUEUE_NUMS,
  alterAttributes,
  BROKER_VERSION_DESC,
  createBrokerAdminRoutes,
  humanReadableByteCount,
  parseAttributeModification,
} from "./admin-service.ts";
import { popRetryTopicOf } from "./pop/pop-topics.ts";
import {
  createTopic,
  openTestBroker,
  sendNumbered,
  TEST_BROKER,
  type TestBroker,
} from "./pop/test-broker.fixture.ts";

type AdminClient = ReturnType<typeof createRpcClient<typeof BrokerAdminService>>;

let broker: TestBroker;
let server: RpcServer;
let admin: AdminClient;
let topicChanges: number;
let removeDir: () => void;

beforeEach(async () => {
  const t = tempDir("admin-svc");
  removeDir = t.remove;
  broker = await openTestBroker(t.dir, { store: { messageIndexEnable: true } });
  topicChanges = 0;
  server = await createRpcServer({
    host: "127.0.0.1",
    port: 0,
    routes: createBrokerAdminRoutes({
      topics: broker.topics,
      groups: broker.groups,
      offsets: broker.offsets,
      messageService: broker.service,
      store: broker.store,
      brokerName: TEST_BROKER,
      clusterName: "TestCluster",
      onTopicsChanged: () => {
        topicChanges++;
      },
    }),
  });
  admin = createRpcClient(BrokerAdminService, `127.0.0.1:${server.port}`);
});

afterEach(async () => {
  closeRpcConnections();
  await server.close();
  await broker.close();
  removeDir();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RmqError) return e.code;
    throw e;
  }
  return "OK";
}

describe("attribute modifications", () => {
  it("parses +k=v and -k and refuses malformed or duplicated entries", () => {
    expect(parseAttributeModification("+message.type=FIFO, -reserve.time")).toEqual([
      { op: "+", key: "message.type", value: "FIFO" },
      { op: "-", key: "reserve.time", value: "" },
    ]);
    expect(parseAttributeModification("  ")).toEqual([]);
    for (const bad of [
      "message.type=FIFO",
      "+message.type",
      "-message.type=FIFO",
      "+=x",
      "+a=1,+a=2",
      "+a=",
      "+a-b=1",
    ]) {
      expect(() => parseAttributeModification(bad), bad).toThrow(RmqError);
    }
  });

  it("applies them against the current map as upstream AttributeUtil does", () => {
    const known = new Map([
      ["message.type", true],
      ["queue.type", false],
    ]);
    const mods = (s: string) => parseAttributeModification(s);
    expect(alterAttributes("t", true, {}, mods("+message.type=FIFO,+queue.type=BatchCQ"), known)).toEqual({
      "message.type": "FIFO",
      "queue.type": "BatchCQ",
    });
    expect(alterAttributes("t", false, { "message.type": "FIFO" }, mods("-message.type"), known)).toEqual({});
    expect(() => alterAttributes("t", true, {}, mods("-message.type"), known)).toThrow(/only \+key=value/);
    expect(() => alterAttributes("t", false, {}, mods("-message.type"), known)).toThrow(/it is not set/);
    expect(() => alterAttributes("t", false, {}, mods("+queue.type=SimpleCQ"), known)).toThrow(/at creation/);
    expect(() => alterAttributes("t", true, {}, mods("+color=red"), known)).toThrow(/not supported/);
  });

  it("prints byte counts as upstream humanReadableByteCount", () => {
    expect(humanReadableByteCount(512)).toBe("512 B");
    expect(humanReadableByteCount(1536)).toBe("1.5 KiB");
    expect(humanReadableByteCount(3 * 1024 ** 3)).toBe("3.0 GiB");
  });
});

describe("topics", () => {
  it("creates with updateTopic's defaults, updates only what is given, persists and notifies", async () => {
    const created = await admin.updateTopic({
      topic: "OrderTopic",
      attributesModification: "+message.type=FIFO",
    });
    expect(created.created).toBe(true);
    expect(created.topicConfig).toMatchObject({
      topicName: "OrderTopic",
      readQueueNums: ADMIN_DEFAULT_TOPIC_QUEUE_NUMS,
      writeQueueNums: ADMIN_DEFAULT_TOPIC_QUEUE_NUMS,
      perm: 6,
      attributes: { "message.type": "FIFO" },
    });
    expect(topicChanges).toBe(1);

    const updated = await admin.updateTopic({ topic: "OrderTopic", perm: 4, attributesModification: "" });
    expect(updated.created).toBe(false);
    expect(updated.topicConfig).toMatchObject({ readQueueNums: 8, writeQueueNums: 8, perm: 4 });
    expect(updated.topicConfig?.attributes).toEqual({ "message.type": "FIFO" });
    expect(topicChanges).toBe(2);

    // The same request again changes nothing and does not re-register.
    await admin.updateTopic({ topic: "OrderTopic", perm: 4, attributesModification: "" });
    expect(topicChanges).toBe(2);

    const removed = await admin.updateTopic({
      topic: "OrderTopic",
      readQueueNums: 2,
      attributesModification: "-message.type",
    });
    expect(removed.topicConfig?.attributes).toEqual({});
    expect(removed.topicConfig?.readQueueNums).toBe(2);

    const onDisk = JSON.parse(readFileSync(join(broker.dir, "config", "topics.json"), "utf8"));
    expect(onDisk.topicConfigTable.OrderTopic).toMatchObject({
      readQueueNums: 2,
      writeQueueNums: 8,
      perm: 4,
    });
    expect((await admin.getTopicList({})).topics).toContain("OrderTopic");
    expect((await admin.getTopicConfig({ topic: "OrderTopic" })).topicConfig?.perm).toBe(4);
    expect((await admin.getTopicConfig({ topic: "Missing" })).topicConfig).toBeUndefined();
  });

  it("refuses bad names, values and attribute changes with stable codes and clear messages", async () => {
    const req = (over: Partial<Parameters<AdminClient["updateTopic"]>[0]>) =>
      admin.updateTopic({ topic: "T1", attributesModification: "", ...over });
    expect(await codeOf(req({ topic: "bad topic" }))).toBe(ErrorCode.IllegalTopic);
    expect(await codeOf(req({ topic: "SELF_TEST_TOPIC" }))).toBe(ErrorCode.IllegalTopic);
    expect(await codeOf(req({ perm: 9 }))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(req({ readQueueNums: -1 }))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(req({ attributesModification: "+message.type=NOPE" }))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(req({ attributesModification: "+message.type=MIXED" }))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(req({ attributesModification: "+color=red" }))).toBe(ErrorCode.IllegalArgument);
    await expect(req({ attributesModification: "+message.type=NOPE" })).rejects.toThrow(
      /message\.type=NOPE must be one of/,
    );
    // Nothing was created by the refused requests.
    expect(broker.topics.has("T1")).toBe(false);
    expect(topicChanges).toBe(0);

    await req({ attributesModification: "+queue.type=SimpleCQ,+message.type=DELAY" });
    expect(await codeOf(req({ attributesModification: "+queue.type=BatchCQ" }))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(req({ attributesModification: "-reserve.time" }))).toBe(ErrorCode.IllegalArgument);
    expect(broker.topics.get("T1")?.attributes).toEqual({
      "queue.type": "SimpleCQ",
      "message.type": "DELAY",
    });
  });

  it("deletes a topic with its offsets and pop retry topics; refuses system topics", async () => {
    await createTopic(broker, "Doomed", 2);
    const retry = popRetryTopicOf("G1", "Doomed");
    await broker.topics.createIfAbsent({ topicName: retry, readQueueNums: 1, writeQueueNums: 1 });
    broker.offsets.commit("G1", "Doomed", 0, 3);

    expect(await admin.deleteTopic({ topic: "Doomed" })).toMatchObject({ existed: true });
    expect(broker.topics.has("Doomed")).toBe(false);
    expect(broker.topics.has(retry)).toBe(false);
    expect(broker.offsets.query("G1", "Doomed", 0)).toBe(-1);
    expect(topicChanges).toBe(1);

    expect(await admin.deleteTopic({ topic: "Doomed" })).toMatchObject({ existed: false });
    expect(topicChanges).toBe(1);
    expect(await codeOf(admin.deleteTopic({ topic: "TBW102" }))).toBe(ErrorCode.IllegalTopic);
    expect(await codeOf(admin.deleteTopic({ topic: TEST_BROKER }))).toBe(ErrorCode.IllegalTopic);
  });

  it("reports per-queue min/max offsets and the last store time; TOPIC_NOT_FOUND otherwise", async () => {
    await createTopic(broker, "Stats", 3);
    await admin.updateTopic({ topic: "Stats", readQueueNums: 4, attributesModification: "" });
    await sendNumbered(broker, "Stats", 7); // round robin over write queues 0..2: 3, 2, 2
    const stats = await admin.getTopicStats({ topic: "Stats" });
    expect(stats.brokerName).toBe(TEST_BROKER);
    expect(stats.queues.map((q) => [q.queueId, Number(q.minOffset), Number(q.maxOffset)])).toEqual([
      [0, 0, 3],
      [1, 0, 2],
      [2, 0, 2],
      [3, 0, 0],
    ]);
    const last = await broker.store.getMessage("Stats", 0, 2, 1);
    expect(Number(stats.queues[0]?.lastUpdateTimestamp)).toBe(last.messages[0]?.storeTimestamp);
    expect(stats.queues[3]?.lastUpdateTimestamp).toBe(0n);
    expect(await codeOf(admin.getTopicStats({ topic: "Nope" }))).toBe(ErrorCode.TopicNotFound);
    await expect(admin.getTopicStats({ topic: "Nope" })).rejects.toThrow(
      /"Nope" does not exist on broker broker-a/,
    );
  });
});

describe("subscription groups", () => {
  it("creates, updates only the given fields, and deletes with or without offsets", async () => {
    const created = await admin.updateSubscriptionGroup({
      groupName: "GID_A",
      retryMaxTimes: 3,
      consumeMessageOrderly: true,
      groupRetryPolicy: {
        type: "EXPONENTIAL",
        exponentialRetryPolicy: { initial: 1000n, max: 60_000n, multiplier: 2n },
      },
      attributesModification: "",
    });
    expect(created.created).toBe(true);
    expect(created.config).toMatchObject({
      groupName: "GID_A",
      retryMaxTimes: 3,
      consumeMessageOrderly: true,
      consumeEnable: true,
      retryQueueNums: 1,
    });
    expect(broker.groups.get("GID_A")?.groupRetryPolicy).toEqual({
      type: "EXPONENTIAL",
      exponentialRetryPolicy: { initial: 1000, max: 60_000, multiplier: 2 },
    });

    const updated = await admin.updateSubscriptionGroup({
      groupName: "GID_A",
      consumeEnable: false,
      attributesModification: "",
    });
    expect(updated.created).toBe(false);
    expect(updated.config).toMatchObject({
      retryMaxTimes: 3,
      consumeMessageOrderly: true,
      consumeEnable: false,
    });
    const list = await admin.getSubscriptionGroupList({});
    expect(list.groups.map((g) => g.groupName)).toContain("GID_A");

    broker.offsets.commit("GID_A", "SomeTopic", 0, 5);
    expect(await admin.deleteSubscriptionGroup({ groupName: "GID_A", cleanOffset: false })).toMatchObject({
      existed: true,
    });
    expect(broker.offsets.query("GID_A", "SomeTopic", 0)).toBe(5);
    await admin.updateSubscriptionGroup({ groupName: "GID_A", attributesModification: "" });
    await admin.deleteSubscriptionGroup({ groupName: "GID_A", cleanOffset: true });
    expect(broker.offsets.query("GID_A", "SomeTopic", 0)).toBe(-1);
    expect(broker.groups.get("GID_A")).toBeUndefined();
    expect(await admin.deleteSubscriptionGroup({ groupName: "GID_A", cleanOffset: false })).toMatchObject({
      existed: false,
    });
  });

  it("refuses bad values, unsupported attributes and system groups", async () => {
    const req = (over: Partial<Parameters<AdminClient["updateSubscriptionGroup"]>[0]>) =>
      admin.updateSubscriptionGroup({ groupName: "GID_B", attributesModification: "", ...over });
    expect(await codeOf(req({ groupName: "bad group" }))).toBe(ErrorCode.IllegalConsumerGroup);
    expect(await codeOf(req({ retryMaxTimes: -5 }))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(req({ groupRetryPolicy: { type: "SOMETIMES" } }))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(req({ attributesModification: "+x=y" }))).toBe(ErrorCode.IllegalArgument);
    expect(broker.groups.get("GID_B")).toBeUndefined();
    expect(
      await codeOf(admin.deleteSubscriptionGroup({ groupName: "CID_RMQ_SYS_TRANS", cleanOffset: false })),
    ).toBe(ErrorCode.IllegalConsumerGroup);
  });
});

describe("consumer progress", () => {
  it("reports broker offset, consumer offset, lag, inflight and last consumed time per queue", async () => {
    await createTopic(broker, "Progress", 2);
    await sendNumbered(broker, "Progress", 6); // 3 per queue
    broker.offsets.commit("GID_P", "Progress", 0, 2);
    const popped = await broker.service.pop("GID_P", "Progress", {
      queueId: 1,
      maxMessages: 1,
      invisibleTimeMs: 60_000,
    });
    expect(popped).toHaveLength(1);

    const p = await admin.getConsumerProgress({ group: "GID_P", topic: "Progress" });
    expect(p.brokerName).toBe(TEST_BROKER);
    const rows = p.queues
      .filter((q) => q.topic === "Progress")
      .map((q) => [
        q.queueId,
        Number(q.brokerOffset),
        Number(q.consumerOffset),
        Number(q.lag),
        Number(q.inflight),
      ]);
    expect(rows[0]).toEqual([0, 3, 2, 1, 0]);
    expect(rows[1]?.slice(0, 2)).toEqual([1, 3]);
    expect(rows[1]?.[4]).toBe(1);
    const consumed = await broker.store.getMessage("Progress", 0, 1, 1);
    expect(Number(p.queues[0]?.lastTimestamp)).toBe(consumed.messages[0]?.storeTimestamp);

    // Without a topic: every topic the group has offsets on.
    const all = await admin.getConsumerProgress({ group: "GID_P", topic: "" });
    expect(all.queues.some((q) => q.topic === "Progress")).toBe(true);
    expect((await admin.getConsumerProgress({ group: "GID_NONE", topic: "" })).queues).toEqual([]);
    expect(await codeOf(admin.getConsumerProgress({ group: "bad group", topic: "" }))).toBe(
      ErrorCode.IllegalConsumerGroup,
    );
    expect((await admin.getTopicConsumers({ topic: "Progress" })).groups).toContain("GID_P");
  });
});

describe("runtime info and message queries", () => {
  it("answers mqadmin's runtime keys with the store's real offsets and disk ratio", async () => {
    await createTopic(broker, "RT", 1);
    await sendNumbered(broker, "RT", 2);
    const { table } = await admin.getBrokerRuntimeInfo({});
    expect(table.brokerVersionDesc).toBe(BROKER_VERSION_DESC);
    expect(table.brokerActive).toBe("true");
    expect([table.brokerName, table.brokerClusterName]).toEqual([TEST_BROKER, "TestCluster"]);
    expect(Number(table.commitLogMaxOffset)).toBe(broker.store.getMaxPhyOffset());
    expect(Number(table.commitLogMaxOffset)).toBeGreaterThan(0);
    const ratio = Number(table.commitLogDiskRatio);
    expect(ratio).toBeGreaterThanOrEqual(0);
    expect(ratio).toBeLessThanOrEqual(1);
    const first = await broker.store.getMessage("RT", 0, 0, 1);
    expect(Number(table.earliestMessageTimeStamp)).toBe(first.messages[0]?.storeTimestamp);
    expect(table.putTps?.split(" ")).toHaveLength(3);
    expect(table.runtime).toMatch(/^\[ 0 days, 0 hours, \d+ minutes, \d+ seconds \]$/);
  });

  it("finds messages by key, by unique key and by CommitLog offset, with consume tracks", async () => {
    await createTopic(broker, "Q", 1);
    const ids = await sendNumbered(broker, "Q", 3); // keys key-0..key-2
    broker.offsets.commit("GID_Q", "Q", 0, 2);

    const byKey = await admin.queryMessageByKey({
      topic: "Q",
      key: "key-1",
      maxNum: 0,
      beginTimestamp: 0n,
      endTimestamp: 0n,
    });
    expect(byKey.messages).toHaveLength(1);
    const listed = byKey.messages[0];
    expect(listed?.uniqKey).toBe(ids[1]);
    expect(listed?.queueOffset).toBe(1n);
    expect(listed?.body).toHaveLength(0);
    expect(
      (
        await admin.queryMessageByKey({
          topic: "Q",
          key: "nope",
          maxNum: 5,
          beginTimestamp: 0n,
          endTimestamp: 0n,
        })
      ).messages,
    ).toEqual([]);

    const byUniq = await admin.queryMessageByUniqKey({ topic: "Q", uniqKey: ids[2] as string });
    expect(Buffer.from(byUniq.message?.body ?? []).toString()).toBe("m2");
    expect(byUniq.message?.properties.KEYS).toBe("key-2");
    expect(byUniq.message?.storeHost).toBe("127.0.0.1:10911");
    expect(byUniq.message?.tracks).toEqual([
      expect.objectContaining({ consumerGroup: "GID_Q", trackType: "NOT_CONSUME_YET" }),
    ]);
    expect(
      (await admin.queryMessageByUniqKey({ topic: "Q", uniqKey: "00000000000000000000000000000000" }))
        .message,
    ).toBeUndefined();

    const viewed = await admin.viewMessage({ commitLogOffset: listed?.commitLogOffset ?? -1n });
    expect(viewed.message?.offsetMsgId).toBe(listed?.offsetMsgId);
    expect(viewed.message?.tracks[0]?.trackType).toBe("CONSUMED");
    expect((await admin.viewMessage({ commitLogOffset: 10_000_000n })).message).toBeUndefined();
    expect(await codeOf(admin.viewMessage({ commitLogOffset: -1n }))).toBe(ErrorCode.IllegalArgument);
    expect(
      await codeOf(
        admin.queryMessageByKey({ topic: "Q", key: " ", maxNum: 1, beginTimestamp: 0n, endTimestamp: 0n }),
      ),
    ).toBe(ErrorCode.IllegalArgument);
  });
});
