import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import {
  type DataVersion,
  DEFAULT_BROKER_CHANNEL_EXPIRED_TIME_MS,
  type RegisterBrokerInput,
  type RegisteredTopicConfig,
  RouteInfoManager,
} from "./route-info-manager.ts";

function topic(name: string, queues = 4, perm = 6, messageType = ""): RegisteredTopicConfig {
  return {
    topicName: name,
    readQueueNums: queues,
    writeQueueNums: queues,
    perm,
    topicSysFlag: 0,
    messageType,
  };
}

function dv(counter: number, stateVersion = 0): DataVersion {
  return { stateVersion, timestamp: 1_700_000_000_000 + counter, counter };
}

function broker(
  over: Partial<RegisterBrokerInput> & Pick<RegisterBrokerInput, "brokerName" | "brokerId" | "brokerAddr">,
): RegisterBrokerInput {
  return {
    clusterName: "DefaultCluster",
    haServerAddr: over.brokerAddr.replace(/:\d+$/, ":10912"),
    topicConfigs: [],
    dataVersion: dv(1),
    ...over,
  };
}

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function expectTopicNotFound(m: RouteInfoManager, t: string): void {
  let err: unknown;
  try {
    m.pickupTopicRouteData(t);
  } catch (e) {
    err = e;
  }
  expect(isRmqError(err, ErrorCode.TopicNotFound)).toBe(true);
  expect((err as Error).message).toContain(t);
}

describe("RouteInfoManager", () => {
  it("registers a master and serves its topics' route", () => {
    const m = new RouteInfoManager();
    const res = m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("TopicA", 8, 6, "FIFO"), topic("TopicB")],
      }),
    );
    expect(res).toEqual({ accepted: true, masterAddr: "", haServerAddr: "" });

    const route = m.pickupTopicRouteData("TopicA");
    expect(route.queueDatas).toEqual([
      {
        brokerName: "broker-a",
        readQueueNums: 8,
        writeQueueNums: 8,
        perm: 6,
        topicSysFlag: 0,
        messageType: "FIFO",
      },
    ]);
    expect(route.brokerDatas).toHaveLength(1);
    expect(route.brokerDatas[0]?.cluster).toBe("DefaultCluster");
    expect([...(route.brokerDatas[0]?.brokerAddrs ?? [])]).toEqual([[0, "10.0.0.1:10911"]]);
    expect(m.getAllTopicList().sort()).toEqual(["TopicA", "TopicB"]);
    expect(m.liveBrokers().map((l) => l.brokerAddr)).toEqual(["10.0.0.1:10911"]);
  });

  it("answers TOPIC_NOT_FOUND for a topic nobody registered", () => {
    const m = new RouteInfoManager();
    expectTopicNotFound(m, "Nope");
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("T")],
      }),
    );
    expectTopicNotFound(m, "Nope");
  });

  it("lets only the master write queue data; a slave learns its master from the answer", () => {
    const m = new RouteInfoManager();
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("T", 4)],
      }),
    );
    const res = m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 1,
        brokerAddr: "10.0.0.2:10911",
        topicConfigs: [topic("T", 99), topic("SlaveOnly")],
      }),
    );
    expect(res).toEqual({ accepted: true, masterAddr: "10.0.0.1:10911", haServerAddr: "10.0.0.1:10912" });
    const route = m.pickupTopicRouteData("T");
    expect(route.queueDatas[0]?.readQueueNums).toBe(4);
    expect(Object.fromEntries(route.brokerDatas[0]?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.1:10911",
      1: "10.0.0.2:10911",
    });
    expectTopicNotFound(m, "SlaveOnly");
  });

  it("re-registration with a new DataVersion replaces the broker's topics", () => {
    const m = new RouteInfoManager();
    const a = { brokerName: "broker-a", brokerId: 0, brokerAddr: "10.0.0.1:10911" };
    const b = { brokerName: "broker-b", brokerId: 0, brokerAddr: "10.0.0.3:10911" };
    m.registerBroker(
      broker({ ...a, topicConfigs: [topic("Keep", 4), topic("Gone"), topic("Shared")], dataVersion: dv(1) }),
    );
    m.registerBroker(broker({ ...b, topicConfigs: [topic("Shared")], dataVersion: dv(1) }));

    // Same DataVersion: the broker's table is taken as unchanged, as upstream.
    m.registerBroker(broker({ ...a, topicConfigs: [topic("Keep", 4)], dataVersion: dv(1) }));
    expect(m.getAllTopicList().sort()).toEqual(["Gone", "Keep", "Shared"]);

    m.registerBroker(broker({ ...a, topicConfigs: [topic("Keep", 16), topic("New")], dataVersion: dv(2) }));
    expect(m.getAllTopicList().sort()).toEqual(["Keep", "New", "Shared"]);
    expect(m.pickupTopicRouteData("Keep").queueDatas[0]?.readQueueNums).toBe(16);
    expectTopicNotFound(m, "Gone");
    // Shared lost broker-a only.
    expect(m.pickupTopicRouteData("Shared").queueDatas.map((q) => q.brokerName)).toEqual(["broker-b"]);
  });

  it("keeps topics a broker stops reporting when deleteTopicWithBrokerRegistration=false (upstream default)", () => {
    const m = new RouteInfoManager({ deleteTopicWithBrokerRegistration: false });
    const a = { brokerName: "broker-a", brokerId: 0, brokerAddr: "10.0.0.1:10911" };
    m.registerBroker(broker({ ...a, topicConfigs: [topic("Old")], dataVersion: dv(1) }));
    m.registerBroker(broker({ ...a, topicConfigs: [topic("New")], dataVersion: dv(2) }));
    expect(m.getAllTopicList().sort()).toEqual(["New", "Old"]);
  });

  it("expires a broker after the default 120 s without registration, and cleans its routes", () => {
    const c = clock();
    const m = new RouteInfoManager({ now: c.now });
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("T")],
      }),
    );
    c.advance(DEFAULT_BROKER_CHANNEL_EXPIRED_TIME_MS);
    expect(m.scanNotActiveBroker()).toEqual([]);
    expect(m.pickupTopicRouteData("T").queueDatas).toHaveLength(1);

    c.advance(1);
    const expired = m.scanNotActiveBroker();
    expect(expired.map((l) => l.brokerAddr)).toEqual(["10.0.0.1:10911"]);
    expectTopicNotFound(m, "T");
    expect(m.getAllTopicList()).toEqual([]);
    expect(m.liveBrokers()).toEqual([]);
    const info = m.getAllClusterInfo();
    expect(info.brokerAddrTable.size).toBe(0);
    expect(info.clusterAddrTable.size).toBe(0);
  });

  it("a registration resets the expiry clock, and a broker's own heartbeat timeout is honoured", () => {
    const c = clock();
    const m = new RouteInfoManager({ now: c.now });
    const fast = broker({
      brokerName: "fast",
      brokerId: 0,
      brokerAddr: "10.0.0.1:10911",
      heartbeatTimeoutMillis: 10_000,
      topicConfigs: [topic("F")],
    });
    const slow = broker({
      brokerName: "slow",
      brokerId: 0,
      brokerAddr: "10.0.0.2:10911",
      topicConfigs: [topic("S")],
    });
    m.registerBroker(fast);
    m.registerBroker(slow);
    c.advance(9000);
    m.registerBroker(fast);
    c.advance(9000);
    expect(m.scanNotActiveBroker()).toEqual([]);
    c.advance(1001);
    expect(m.scanNotActiveBroker().map((l) => l.brokerAddr)).toEqual(["10.0.0.1:10911"]);
    expectTopicNotFound(m, "F");
    expect(m.pickupTopicRouteData("S").brokerDatas[0]?.brokerName).toBe("slow");
  });

  it("when the master expires the route shows the remaining slave", () => {
    const c = clock();
    const m = new RouteInfoManager({ now: c.now });
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("T")],
      }),
    );
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 1,
        brokerAddr: "10.0.0.2:10911",
        topicConfigs: [topic("T")],
      }),
    );
    c.advance(60_000);
    m.registerBroker(
      broker({
        brokerName: "broker-a",
        brokerId: 1,
        brokerAddr: "10.0.0.2:10911",
        topicConfigs: [topic("T")],
      }),
    );
    c.advance(60_001);
    expect(m.scanNotActiveBroker().map((l) => l.brokerAddr)).toEqual(["10.0.0.1:10911"]);
    const route = m.pickupTopicRouteData("T");
    expect(route.queueDatas).toHaveLength(1);
    expect(route.queueDatas[0]?.perm).toBe(6);
    expect(Object.fromEntries(route.brokerDatas[0]?.brokerAddrs ?? [])).toEqual({ 1: "10.0.0.2:10911" });
    // A slave without a live master gets no master address back.
    expect(
      m.registerBroker(broker({ brokerName: "broker-a", brokerId: 1, brokerAddr: "10.0.0.2:10911" }))
        .masterAddr,
    ).toBe("");
  });

  it("with supportActingMaster, a masterless acting-master set is read-only and shows its lowest slave as id 0", () => {
    const m = new RouteInfoManager({ supportActingMaster: true });
    const reg = (id: number, addr: string) =>
      m.registerBroker(
        broker({
          brokerName: "broker-a",
          brokerId: id,
          brokerAddr: addr,
          enableActingMaster: true,
          topicConfigs: [topic("T")],
        }),
      );
    reg(0, "10.0.0.1:10911");
    reg(1, "10.0.0.2:10911");
    reg(2, "10.0.0.3:10911");
    m.unregisterBroker({
      clusterName: "DefaultCluster",
      brokerAddr: "10.0.0.1:10911",
      brokerName: "broker-a",
      brokerId: 0,
    });
    const route = m.pickupTopicRouteData("T");
    expect(route.queueDatas[0]?.perm).toBe(4);
    expect(Object.fromEntries(route.brokerDatas[0]?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.2:10911",
      2: "10.0.0.3:10911",
    });
  });

  it("unregistering the last replica removes the broker set, its topics and an emptied cluster", () => {
    const m = new RouteInfoManager();
    m.registerBroker(
      broker({ brokerName: "a", brokerId: 0, brokerAddr: "10.0.0.1:10911", topicConfigs: [topic("T")] }),
    );
    m.registerBroker(broker({ brokerName: "a", brokerId: 1, brokerAddr: "10.0.0.2:10911" }));
    m.unregisterBroker({
      clusterName: "DefaultCluster",
      brokerAddr: "10.0.0.2:10911",
      brokerName: "a",
      brokerId: 1,
    });
    expect(m.pickupTopicRouteData("T").brokerDatas).toHaveLength(1);
    m.unregisterBroker({
      clusterName: "DefaultCluster",
      brokerAddr: "10.0.0.1:10911",
      brokerName: "a",
      brokerId: 0,
    });
    expectTopicNotFound(m, "T");
    expect(m.getAllClusterInfo().clusterAddrTable.size).toBe(0);
  });

  it("reports clusters with their broker sets and replicas", () => {
    const m = new RouteInfoManager();
    m.registerBroker(
      broker({ clusterName: "c1", brokerName: "a", brokerId: 0, brokerAddr: "10.0.0.1:10911" }),
    );
    m.registerBroker(
      broker({ clusterName: "c1", brokerName: "a", brokerId: 1, brokerAddr: "10.0.0.2:10911" }),
    );
    m.registerBroker(
      broker({
        clusterName: "c1",
        brokerName: "b",
        brokerId: 0,
        brokerAddr: "10.0.0.3:10911",
        proxyAddr: "10.0.0.3:8081",
      }),
    );
    m.registerBroker(
      broker({ clusterName: "c2", brokerName: "x", brokerId: 0, brokerAddr: "10.0.1.1:10911" }),
    );
    const info = m.getAllClusterInfo();
    expect(Object.fromEntries([...info.clusterAddrTable].map(([k, v]) => [k, [...v].sort()]))).toEqual({
      c1: ["a", "b"],
      c2: ["x"],
    });
    expect(Object.fromEntries(info.brokerAddrTable.get("a")?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.1:10911",
      1: "10.0.0.2:10911",
    });
    expect(info.brokerAddrTable.get("x")?.cluster).toBe("c2");
    expect(Object.fromEntries(info.brokerAddrTable.get("b")?.proxyAddrs ?? [])).toEqual({
      0: "10.0.0.3:8081",
    });
    // Returned tables are copies.
    info.brokerAddrTable.get("a")?.brokerAddrs.clear();
    expect(m.getAllClusterInfo().brokerAddrTable.get("a")?.brokerAddrs.size).toBe(2);
  });

  it("deletes a topic everywhere or only in one cluster", () => {
    const m = new RouteInfoManager({ deleteTopicWithBrokerRegistration: false });
    m.registerBroker(
      broker({
        clusterName: "c1",
        brokerName: "a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        topicConfigs: [topic("T"), topic("U")],
      }),
    );
    m.registerBroker(
      broker({
        clusterName: "c2",
        brokerName: "x",
        brokerId: 0,
        brokerAddr: "10.0.1.1:10911",
        topicConfigs: [topic("T")],
      }),
    );
    m.deleteTopic("T", "c1");
    expect(m.pickupTopicRouteData("T").queueDatas.map((q) => q.brokerName)).toEqual(["x"]);
    m.deleteTopic("U");
    expectTopicNotFound(m, "U");
    m.deleteTopic("T", "c2");
    expectTopicNotFound(m, "T");
    expect(m.getAllTopicList()).toEqual([]);
  });

  it("refuses an address taking over a broker id held with a newer state version", () => {
    const m = new RouteInfoManager();
    m.registerBroker(
      broker({
        brokerName: "a",
        brokerId: 0,
        brokerAddr: "10.0.0.1:10911",
        dataVersion: dv(1, 5),
        topicConfigs: [topic("T")],
      }),
    );
    const res = m.registerBroker(
      broker({ brokerName: "a", brokerId: 0, brokerAddr: "10.0.0.9:10911", dataVersion: dv(1, 3) }),
    );
    expect(res.accepted).toBe(false);
    expect(Object.fromEntries(m.pickupTopicRouteData("T").brokerDatas[0]?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.1:10911",
    });
    expect(m.liveBrokers().map((l) => l.brokerAddr)).toEqual(["10.0.0.1:10911"]);
    // A newer state version takes the id over (a new master after failover).
    expect(
      m.registerBroker(
        broker({
          brokerName: "a",
          brokerId: 0,
          brokerAddr: "10.0.0.9:10911",
          dataVersion: dv(2, 6),
          topicConfigs: [topic("T")],
        }),
      ).accepted,
    ).toBe(true);
    expect(Object.fromEntries(m.pickupTopicRouteData("T").brokerDatas[0]?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.9:10911",
    });
  });

  it("a slave promoted to master keeps one entry for its address", () => {
    const m = new RouteInfoManager();
    m.registerBroker(broker({ brokerName: "a", brokerId: 1, brokerAddr: "10.0.0.2:10911" }));
    m.registerBroker(
      broker({ brokerName: "a", brokerId: 0, brokerAddr: "10.0.0.2:10911", topicConfigs: [topic("T")] }),
    );
    expect(Object.fromEntries(m.pickupTopicRouteData("T").brokerDatas[0]?.brokerAddrs ?? [])).toEqual({
      0: "10.0.0.2:10911",
    });
  });
});
