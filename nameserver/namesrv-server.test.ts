// createNamesrv served on 127.0.0.1:0 and driven through its RPC service.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { closeRpcConnections, createRpcClient } from "../common/rpc-client.ts";
import {
  NamesrvService,
  type RegisterBrokerRequest,
  RegisterBrokerRequestSchema,
} from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { buildNamesrvConfig } from "./namesrv-config.ts";
import { createNamesrv, type Namesrv } from "./namesrv-server.ts";

let dir: string;
const running: Namesrv[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "namesrv-srv-"));
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.close()));
  closeRpcConnections();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(
  entries: Record<string, string> = {},
  now?: () => number,
): Promise<{ namesrv: Namesrv; addr: string }> {
  const config = buildNamesrvConfig([
    {
      source: "test",
      entries: {
        listenPort: "0",
        bindAddress: "127.0.0.1",
        kvConfigPath: path.join(dir, "kvConfig.json"),
        ...entries,
      },
    },
  ]);
  const namesrv = await createNamesrv({ config, now });
  running.push(namesrv);
  return { namesrv, addr: `127.0.0.1:${namesrv.port}` };
}

function registration(
  brokerName: string,
  topics: string[],
  over: { brokerAddr?: string; brokerId?: bigint } = {},
): RegisterBrokerRequest {
  return create(RegisterBrokerRequestSchema, {
    clusterName: "DefaultCluster",
    brokerName,
    brokerId: 0n,
    brokerAddr: `127.0.0.1:${brokerName === "broker-a" ? 10911 : 10921}`,
    haServerAddr: "127.0.0.1:10912",
    topicConfigs: topics.map((t) => ({ topicName: t, readQueueNums: 8, writeQueueNums: 8, perm: 6 })),
    dataVersion: { stateVersion: 0n, timestamp: 1n, counter: 1n },
    ...over,
  });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RmqError) return e.code;
    throw e;
  }
  return "OK";
}

describe("NameServer service", () => {
  it("kv config is served and survives a restart", async () => {
    const first = await start();
    const c1 = createRpcClient(NamesrvService, first.addr);
    await c1.putKvConfig({ namespace: "ORDER_TOPIC_CONFIG", key: "TopicOrder", value: "broker-a:8" });
    await c1.putKvConfig({ namespace: "ns", key: "k", value: "v" });
    await c1.putKvConfig({ namespace: "ns", key: "gone", value: "x" });
    await c1.deleteKvConfig({ namespace: "ns", key: "gone" });
    expect((await c1.getKvConfig({ namespace: "ns", key: "k" })).value).toBe("v");
    expect((await c1.getKvConfig({ namespace: "ns", key: "gone" })).value).toBeUndefined();
    expect(await codeOf(c1.putKvConfig({ namespace: "", key: "k", value: "v" }))).toBe(
      ErrorCode.IllegalArgument,
    );
    await first.namesrv.close();
    running.splice(0);

    const second = await start();
    const c2 = createRpcClient(NamesrvService, second.addr);
    expect((await c2.getKvConfig({ namespace: "ORDER_TOPIC_CONFIG", key: "TopicOrder" })).value).toBe(
      "broker-a:8",
    );
    expect((await c2.getKvListByNamespace({ namespace: "ns" })).table).toEqual({ k: "v" });
    expect(JSON.parse(fs.readFileSync(path.join(dir, "kvConfig.json"), "utf8"))).toEqual({
      configTable: { ORDER_TOPIC_CONFIG: { TopicOrder: "broker-a:8" }, ns: { k: "v" } },
    });
  });

  it("serves routes, deletes topics, and answers TOPIC_NOT_FOUND for unknown ones", async () => {
    const { addr } = await start();
    const c = createRpcClient(NamesrvService, addr);
    await c.registerBroker(registration("broker-a", ["T1", "T2"]));
    await c.registerBroker(registration("broker-b", ["T1"]));
    expect((await c.getAllTopicList({})).topics.sort()).toEqual(["T1", "T2"]);
    expect(await codeOf(c.getRouteInfoByTopic({ topic: "Unknown" }))).toBe(ErrorCode.TopicNotFound);

    await c.deleteTopicInNamesrv({ topic: "T2" });
    expect(await codeOf(c.getRouteInfoByTopic({ topic: "T2" }))).toBe(ErrorCode.TopicNotFound);
    await c.deleteTopicInNamesrv({ topic: "T1", clusterName: "OtherCluster" });
    expect((await c.getRouteInfoByTopic({ topic: "T1" })).route?.queueDatas).toHaveLength(2);
    await c.deleteTopicInNamesrv({ topic: "T1", clusterName: "DefaultCluster" });
    expect((await c.getAllTopicList({})).topics).toEqual([]);

    await c.unregisterBroker({
      clusterName: "DefaultCluster",
      brokerName: "broker-a",
      brokerAddr: "127.0.0.1:10911",
      brokerId: 0n,
    });
    expect(Object.keys((await c.getBrokerClusterInfo({})).brokerAddrTable)).toEqual(["broker-b"]);
  });

  it("rejects a registration without identity", async () => {
    const { addr } = await start();
    const c = createRpcClient(NamesrvService, addr);
    expect(await codeOf(c.registerBroker(registration("", ["T"])))).toBe(ErrorCode.IllegalArgument);
    expect(await codeOf(c.registerBroker(registration("broker-a", ["T"], { brokerAddr: "" })))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect(await codeOf(c.registerBroker(registration("broker-a", ["T"], { brokerId: -1n })))).toBe(
      ErrorCode.IllegalArgument,
    );
    expect((await c.getAllTopicList({})).topics).toEqual([]);
  });

  it("orderMessageEnable serves ORDER_TOPIC_CONFIG with routes and to registering brokers", async () => {
    const { addr } = await start({ orderMessageEnable: "true" });
    const c = createRpcClient(NamesrvService, addr);
    await c.putKvConfig({ namespace: "ORDER_TOPIC_CONFIG", key: "T", value: "broker-a:8" });
    const res = await c.registerBroker(registration("broker-a", ["T"]));
    expect(res.kvTable).toEqual({ T: "broker-a:8" });
    expect((await c.getRouteInfoByTopic({ topic: "T" })).route?.orderTopicConf).toBe("broker-a:8");
  });

  it("enableAllTopicList=false refuses the topic list", async () => {
    const { addr } = await start({ enableAllTopicList: "false" });
    expect(await codeOf(createRpcClient(NamesrvService, addr).getAllTopicList({}))).toBe(ErrorCode.Forbidden);
  });

  it("needWaitForService holds routes back until waitSecondsForService passed", async () => {
    let now = 5_000_000;
    const { addr } = await start({ needWaitForService: "true", waitSecondsForService: "45" }, () => now);
    const c = createRpcClient(NamesrvService, addr);
    await c.registerBroker(registration("broker-a", ["T"]));
    expect(await codeOf(c.getRouteInfoByTopic({ topic: "T" }))).toBe(ErrorCode.RpcUnavailable);
    now += 45_000;
    expect((await c.getRouteInfoByTopic({ topic: "T" })).route?.queueDatas).toHaveLength(1);
  });
});
