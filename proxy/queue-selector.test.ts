import { describe, expect, it } from "vitest";
import { PermName, type TopicRoute } from "./backend.ts";
import { consistentHash, createQueueSelector, writableQueues } from "./queue-selector.ts";

const route: TopicRoute = {
  topic: "T",
  messageType: "NORMAL",
  brokers: [
    { brokerName: "a", readQueueNums: 4, writeQueueNums: 4, perm: PermName.READ | PermName.WRITE },
    { brokerName: "b", readQueueNums: 2, writeQueueNums: 2, perm: PermName.READ | PermName.WRITE },
    { brokerName: "ro", readQueueNums: 8, writeQueueNums: 8, perm: PermName.READ },
  ],
};

describe("queue selection", () => {
  it("computes Guava's consistentHash (Guava's own cross-language golden values)", () => {
    const golden100 = [0, 55, 62, 8, 45, 59, 86, 97, 82, 59, 73, 37, 17, 56, 86, 21, 90, 37, 38, 83];
    expect(golden100.map((_, i) => consistentHash(i, 100))).toEqual(golden100);
    expect(consistentHash(10863919174838991n, 11)).toBe(6);
    expect(consistentHash(2016238256797177309n, 11)).toBe(3);
    expect(consistentHash(1673758223894951030n, 11)).toBe(5);
    expect(consistentHash(2, 100001)).toBe(80343);
    expect(consistentHash(2201, 100001)).toBe(22152);
    expect(consistentHash(2202, 100001)).toBe(15018);
    expect(consistentHash(-1, 7)).toBeGreaterThanOrEqual(0);
    expect(() => consistentHash(1, 0)).toThrow(RangeError);
  });

  it("lists only writable queues, broker by broker", () => {
    expect(writableQueues(route).map((q) => `${q.brokerName}:${q.queueId}`)).toEqual([
      "a:0",
      "a:1",
      "a:2",
      "a:3",
      "b:0",
      "b:1",
    ]);
  });

  it("keeps one message group on one queue and spreads the rest round-robin", () => {
    const selector = createQueueSelector();
    const fifo = new Set(
      Array.from({ length: 20 }, () => JSON.stringify(selector.select(route, "order-42"))),
    );
    expect(fifo.size).toBe(1);
    const spread = new Set(
      Array.from({ length: 6 }, () => JSON.stringify(selector.select(route, undefined))),
    );
    expect(spread.size).toBe(6);
    expect(selector.select({ ...route, brokers: route.brokers.slice(2) }, undefined)).toBeUndefined();
  });
});
