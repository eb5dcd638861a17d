import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import {
  createTopicConfigManager,
  PermName,
  type TopicConfigManagerOptions,
  topicMessageType,
} from "./topic-config-manager.ts";

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

let root: string;
function must<T>(v: T | undefined): T {
  expect(v).toBeDefined();
  return v as T;
}
const base = (): TopicConfigManagerOptions => ({
  storePathRootDir: root,
  brokerClusterName: "DefaultCluster",
  brokerName: "broker-a",
  autoCreateTopicEnable: true,
  defaultTopicQueueNums: 8,
  clusterTopicEnable: true,
  brokerTopicEnable: true,
  traceTopicEnable: false,
  msgTraceTopicName: "RMQ_SYS_TRACE_TOPIC",
  reviveQueueNum: 8,
  timerWheelEnable: true,
});

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-topics-"));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe("TopicConfigManager", () => {
  it("creates upstream's system topics at start", async () => {
    const m = await createTopicConfigManager(base());
    const names = m
      .list()
      .map((t) => t.topicName)
      .sort();
    expect(names).toEqual(
      [
        "BenchmarkTest",
        "DefaultCluster",
        "DefaultCluster_REPLY_TOPIC",
        "OFFSET_MOVED_EVENT",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "SCHEDULE_TOPIC_XXXX",
        "SELF_TEST_TOPIC",
        "TBW102",
        "broker-a",
        "rmq_sys_REVIVE_LOG_DefaultCluster",
        "rmq_sys_SYNC_BROKER_MEMBER_broker-a",
        "rmq_sys_wheel_timer",
      ].sort(),
    );
    expect(m.get("TBW102")).toMatchObject({ readQueueNums: 8, writeQueueNums: 8, perm: 7 });
    expect(m.get("SCHEDULE_TOPIC_XXXX")).toMatchObject({ readQueueNums: 18, writeQueueNums: 18, perm: 6 });
    expect(m.get("DefaultCluster")).toMatchObject({ readQueueNums: 16, perm: 7 });
    expect(m.get("rmq_sys_SYNC_BROKER_MEMBER_broker-a")?.perm).toBe(PermName.PERM_INHERIT);
    expect(m.isSystemTopic("broker-a")).toBe(true);
    expect(m.isSystemTopic("TopicTest")).toBe(false);
    const off = await createTopicConfigManager({
      ...base(),
      autoCreateTopicEnable: false,
      traceTopicEnable: true,
      timerWheelEnable: false,
    });
    expect(off.get("TBW102")).toBeUndefined();
    expect(off.get("RMQ_SYS_TRACE_TOPIC")).toBeDefined();
    expect(off.get("rmq_sys_wheel_timer")).toBeUndefined();
  });

  it("creates, updates, deletes and persists topics in upstream's JSON shape", async () => {
    const m = await createTopicConfigManager(base());
    const v0 = m.dataVersion.counter;
    await m.createOrUpdate({
      topicName: "OrderTopic",
      readQueueNums: 4,
      writeQueueNums: 4,
      attributes: { "message.type": "FIFO" },
    });
    expect(m.dataVersion.counter).toBe(v0 + 1);
    expect(topicMessageType(must(m.get("OrderTopic")))).toBe("FIFO");
    await m.createOrUpdate({ topicName: "OrderTopic", perm: 4 }); // fields left out keep their values
    expect(m.get("OrderTopic")).toMatchObject({
      readQueueNums: 4,
      perm: 4,
      attributes: { "message.type": "FIFO" },
    });
    await m.createOrUpdate({ topicName: "OrderTopic", perm: 4 }); // no change: no new version
    expect(m.dataVersion.counter).toBe(v0 + 2);
    await m.createOrUpdate({ topicName: "Plain" });
    expect(topicMessageType(must(m.get("Plain")))).toBe("NORMAL");
    expect(await m.delete("Plain")).toBe(true);
    expect(await m.delete("Plain")).toBe(false);

    const json = JSON.parse(fs.readFileSync(path.join(root, "config", "topics.json"), "utf8"));
    expect(json.topicConfigTable.OrderTopic).toEqual({
      topicName: "OrderTopic",
      readQueueNums: 4,
      writeQueueNums: 4,
      perm: 4,
      topicFilterType: "SINGLE_TAG",
      topicSysFlag: 0,
      order: false,
      attributes: { "message.type": "FIFO" },
    });
    expect(json.dataVersion).toMatchObject({ stateVersion: 0, counter: v0 + 4 });
    expect(json.topicConfigTable.Plain).toBeUndefined();

    const again = await createTopicConfigManager(base());
    expect(again.get("OrderTopic")).toEqual(m.get("OrderTopic"));
    expect(again.dataVersion).toEqual(m.dataVersion);
  });

  it("accepts every message.type including PRIORITY and LITE, refuses MIXED unless enabled", async () => {
    const m = await createTopicConfigManager(base());
    for (const t of ["NORMAL", "FIFO", "DELAY", "TRANSACTION", "UNSPECIFIED", "PRIORITY", "LITE"]) {
      await m.createOrUpdate({ topicName: `T_${t}`, attributes: { "message.type": t } });
      expect(topicMessageType(must(m.get(`T_${t}`)))).toBe(t);
    }
    await expect(
      m.createOrUpdate({ topicName: "T_MIXED", attributes: { "message.type": "MIXED" } }),
    ).rejects.toThrow(/MIXED is not allowed/);
    const mixed = await createTopicConfigManager({ ...base(), enableMixedMessageType: true });
    await mixed.createOrUpdate({ topicName: "T_MIXED", attributes: { "message.type": "MIXED" } });
  });

  it("refuses illegal names, system topics, bad values and unknown attributes, naming the value", async () => {
    const m = await createTopicConfigManager(base());
    const fails: [Parameters<typeof m.createOrUpdate>[0], string, RegExp][] = [
      [{ topicName: "bad name" }, ErrorCode.IllegalTopic, /"bad name".*may only contain/],
      [{ topicName: "TBW102" }, ErrorCode.IllegalTopic, /conflicts with a system topic/],
      [{ topicName: "broker-a" }, ErrorCode.IllegalTopic, /conflicts with a system topic/],
      [{ topicName: "T", perm: 9 }, ErrorCode.IllegalArgument, /perm=9 must be an integer from 0 to 7/],
      [{ topicName: "T", readQueueNums: -1 }, ErrorCode.IllegalArgument, /readQueueNums=-1/],
      [
        { topicName: "T", attributes: { "message.type": "SOMETIMES" } },
        ErrorCode.IllegalArgument,
        /message\.type=SOMETIMES must be one of NORMAL|UNSPECIFIED/,
      ],
      [
        { topicName: "T", attributes: { color: "red" } },
        ErrorCode.IllegalArgument,
        /attribute "color" is not supported/,
      ],
    ];
    for (const [input, code, re] of fails) {
      const e = await m.createOrUpdate(input).catch((x: unknown) => x);
      expect(isRmqError(e, code as never)).toBe(true);
      expect((e as Error).message).toMatch(re);
    }
    await m.createOrUpdate({ topicName: "TBW102", perm: 7 }, { allowSystemTopic: true });
  });

  it("auto-creates a topic from TBW102 with min(client queues, template queues), without the inherit bit", async () => {
    const m = await createTopicConfigManager(base());
    const t = await m.createFromTemplate("NewTopic", { clientDefaultTopicQueueNums: 4 });
    expect(t).toMatchObject({ readQueueNums: 4, writeQueueNums: 4, perm: 6 });
    expect((await m.createFromTemplate("Wide", { clientDefaultTopicQueueNums: 32 }))?.writeQueueNums).toBe(8);
    const off = await createTopicConfigManager({
      ...base(),
      storePathRootDir: path.join(root, "other"),
      autoCreateTopicEnable: false,
    });
    expect(await off.createFromTemplate("NewTopic")).toBeUndefined();
  });

  it("keeps the file's version of a system topic, and stops with a clear error on a corrupt file", async () => {
    const file = path.join(root, "config", "topics.json");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(
      file,
      JSON.stringify({
        topicConfigTable: {
          TBW102: { topicName: "TBW102", readQueueNums: 2, writeQueueNums: 2, perm: 7 },
          Old: { topicName: "Old" },
        },
        dataVersion: { counter: 7, timestamp: 1, stateVersion: 0 },
      }),
    );
    const m = await createTopicConfigManager(base());
    expect(m.get("TBW102")?.readQueueNums).toBe(2);
    expect(m.get("Old")).toMatchObject({
      readQueueNums: 16,
      perm: 6,
      topicFilterType: "SINGLE_TAG",
      attributes: {},
    });
    expect(m.dataVersion.counter).toBe(7);

    fs.writeFileSync(file, JSON.stringify({ topicConfigTable: { X: { topicName: "X", perm: "rw" } } }));
    const e = await rejectionOf(createTopicConfigManager(base()));
    expect(isRmqError(e, ErrorCode.MetadataCorrupt)).toBe(true);
    expect(e.message).toContain(file);
    expect(e.message).toContain('topicConfigTable.X.perm="rw"');
    fs.writeFileSync(file, "{ not json");
    await expect(createTopicConfigManager(base())).rejects.toThrow(/topics\.json is unusable/);
  });
});
