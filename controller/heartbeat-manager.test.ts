import { describe, expect, it } from "vitest";
import { DEFAULT_ELECTION_PRIORITY } from "./broker-liveness.ts";
import { BrokerHeartbeatManager, DEFAULT_BROKER_HEARTBEAT_TIMEOUT_MS } from "./heartbeat-manager.ts";

const C = "DefaultCluster";

describe("BrokerHeartbeatManager", () => {
  it("a broker is alive until last + timeout, inclusive; unknown brokers are not alive", () => {
    const hb = new BrokerHeartbeatManager();
    expect(hb.isAlive(C, "a", 1, 0)).toBe(false);
    hb.onBrokerHeartbeat(
      { clusterName: C, brokerName: "a", brokerId: 1, brokerAddress: "h:1", heartbeatTimeoutMillis: 3000 },
      1000,
    );
    expect(hb.isAlive(C, "a", 1, 4000)).toBe(true);
    expect(hb.isAlive(C, "a", 1, 4001)).toBe(false);
    expect(hb.isAlive(C, "a", 2, 1000)).toBe(false);
    expect(hb.isAlive(C, "b", 1, 1000)).toBe(false);
  });

  it("fills upstream defaults for absent fields", () => {
    const hb = new BrokerHeartbeatManager();
    hb.onBrokerHeartbeat({ clusterName: C, brokerName: "a", brokerId: 1, brokerAddress: "h:1" }, 0);
    expect(hb.liveInfo(C, "a", 1)).toMatchObject({
      heartbeatTimeoutMillis: DEFAULT_BROKER_HEARTBEAT_TIMEOUT_MS,
      epoch: -1,
      maxOffset: -1,
      confirmOffset: -1,
      electionPriority: DEFAULT_ELECTION_PRIORITY,
    });
    expect(DEFAULT_BROKER_HEARTBEAT_TIMEOUT_MS).toBe(10_000);
  });

  it("epoch and offsets move forward only; timeout, priority and address follow the latest beat", () => {
    const hb = new BrokerHeartbeatManager();
    const base = { clusterName: C, brokerName: "a", brokerId: 1, brokerAddress: "h:1" };
    hb.onBrokerHeartbeat({ ...base, epoch: 2, maxOffset: 500, confirmOffset: 400, electionPriority: 3 }, 0);
    hb.onBrokerHeartbeat(
      { ...base, epoch: 2, maxOffset: 300, confirmOffset: 100, electionPriority: 1, brokerAddress: "h:9" },
      10,
    );
    expect(hb.liveInfo(C, "a", 1)).toMatchObject({
      epoch: 2,
      maxOffset: 500,
      confirmOffset: 400,
      electionPriority: 1,
      brokerAddress: "h:9",
      lastUpdateTimestamp: 10,
    });
    hb.onBrokerHeartbeat({ ...base, epoch: 3, maxOffset: 10, confirmOffset: 5 }, 20);
    expect(hb.liveInfo(C, "a", 1)).toMatchObject({ epoch: 3, maxOffset: 10, confirmOffset: 5 });
    hb.onBrokerHeartbeat({ ...base, epoch: 1, maxOffset: 99_999 }, 30);
    expect(hb.liveInfo(C, "a", 1)).toMatchObject({ epoch: 3, maxOffset: 10 });
  });

  it("scan removes expired brokers and names the sets whose master expired", () => {
    const hb = new BrokerHeartbeatManager();
    const beat = (brokerName: string, brokerId: number, now: number) =>
      hb.onBrokerHeartbeat(
        {
          clusterName: C,
          brokerName,
          brokerId,
          brokerAddress: `h:${brokerId}`,
          heartbeatTimeoutMillis: 1000,
        },
        now,
      );
    beat("a", 1, 0); // master of a, expires
    beat("a", 2, 0); // slave of a, expires
    beat("b", 1, 0); // slave of b, expires
    beat("b", 2, 900); // master of b, alive
    beat("c", 5, 0); // master of c, expires
    const masters: Record<string, number> = { a: 1, b: 2, c: 5 };
    const r = hb.scan(1500, (_c, brokerName) => masters[brokerName] ?? null);
    expect(r.expired.map((e) => `${e.brokerName}/${e.brokerId}`)).toEqual(["a/1", "a/2", "b/1", "c/5"]);
    expect(r.brokerSetsToElect).toEqual([
      { clusterName: C, brokerName: "a" },
      { clusterName: C, brokerName: "c" },
    ]);
    expect(hb.size).toBe(1);
    expect(hb.scan(1500, () => null)).toEqual({ expired: [], brokerSetsToElect: [] });
    // A broker exactly at its deadline is not expired yet.
    expect(hb.scan(1900, () => null).expired).toEqual([]);
    expect(hb.scan(1901, () => null).expired.map((e) => e.brokerId)).toEqual([2]);
  });

  it("counts alive brokers per cluster and broker set, and views are frozen at their instant", () => {
    const hb = new BrokerHeartbeatManager();
    hb.onBrokerHeartbeat(
      { clusterName: C, brokerName: "a", brokerId: 1, brokerAddress: "h", heartbeatTimeoutMillis: 100 },
      0,
    );
    hb.onBrokerHeartbeat(
      { clusterName: C, brokerName: "a", brokerId: 2, brokerAddress: "h", heartbeatTimeoutMillis: 100 },
      50,
    );
    expect(hb.activeBrokersNum(120).get(C)?.get("a")).toBe(1);
    const early = hb.view(100);
    const late = hb.view(151);
    expect([early.isAlive(C, "a", 1), early.isAlive(C, "a", 2)]).toEqual([true, true]);
    expect([late.isAlive(C, "a", 1), late.isAlive(C, "a", 2)]).toEqual([false, false]);
    expect(hb.remove(C, "a", 1)?.brokerId).toBe(1);
    expect(hb.liveInfo(C, "a", 1)).toBeUndefined();
  });
});
