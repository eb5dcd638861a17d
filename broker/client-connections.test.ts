import { describe, expect, it } from "vitest";
import { ConsumeType } from "../common/client-connection.ts";
import { CHANNEL_EXPIRED_TIMEOUT_MS, createClientConnections } from "./client-connections.ts";

const conn = (clientId: string) => ({
  clientId,
  clientAddr: `10.0.0.1:${clientId.length + 40000}`,
  language: "NODE_JS",
  version: "5.0.3",
});

describe("client connections", () => {
  it("lists a group's consumers with one subscription per topic (the newest client's) and its producers", () => {
    let t = 1_000;
    const c = createClientConnections(() => t);
    c.heartbeat({
      connection: conn("c1"),
      consumerGroup: "G",
      consumeType: ConsumeType.CONSUME_PASSIVELY,
      subscriptions: [{ topic: "T1", expression: "a || b", expressionType: "TAG" }],
    });
    t += 10;
    c.heartbeat({
      connection: conn("c2"),
      consumerGroup: "G",
      consumeType: ConsumeType.CONSUME_PASSIVELY,
      subscriptions: [
        { topic: "T1", expression: "c", expressionType: "TAG" },
        { topic: "T0", expression: "a > 1", expressionType: "SQL92" },
      ],
    });
    c.heartbeat({ connection: conn("p1"), producerGroups: ["T1", "T2"] });
    const g = c.consumerConnection("G");
    expect(g?.connections.map((x) => x.clientId).sort()).toEqual(["c1", "c2"]);
    expect(g?.subscriptions).toEqual([
      { topic: "T0", expression: "a > 1", expressionType: "SQL92" },
      { topic: "T1", expression: "c", expressionType: "TAG" },
    ]);
    expect(g).toMatchObject({
      consumeType: "CONSUME_PASSIVELY",
      messageModel: "CLUSTERING",
      consumeFromWhere: "CONSUME_FROM_LAST_OFFSET",
    });
    expect(c.producerConnection("T2")).toEqual([conn("p1")]);
    expect(c.consumerConnection("other")).toBeUndefined();
    expect(c.producerConnection("T9")).toEqual([]);
  });

  it("forgets a client when it unregisters, moves groups or stops producing to a topic", () => {
    const c = createClientConnections(() => 0);
    c.heartbeat({ connection: conn("c1"), consumerGroup: "G1", subscriptions: [] });
    c.heartbeat({ connection: conn("c1"), consumerGroup: "G2", subscriptions: [] });
    expect(c.consumerConnection("G1")).toBeUndefined();
    expect(c.consumerConnection("G2")?.connections).toEqual([conn("c1")]);
    c.heartbeat({ connection: conn("p1"), producerGroups: ["T1", "T2"] });
    c.heartbeat({ connection: conn("p1"), producerGroups: ["T2"] });
    expect(c.producerConnection("T1")).toEqual([]);
    expect(c.producerConnection("T2")).toEqual([conn("p1")]);
    c.unregister("c1");
    c.unregister("p1");
    c.unregister("never-seen");
    expect(c.consumerConnection("G2")).toBeUndefined();
    expect(c.producerConnection("T2")).toEqual([]);
  });

  it("drops clients not heard of for the channel expiry (120 s), whether read or swept", () => {
    let t = 0;
    const c = createClientConnections(() => t);
    c.heartbeat({ connection: conn("old"), consumerGroup: "G", subscriptions: [] });
    c.heartbeat({ connection: conn("p-old"), producerGroups: ["T"] });
    t += CHANNEL_EXPIRED_TIMEOUT_MS - 1;
    c.heartbeat({ connection: conn("new"), consumerGroup: "G", subscriptions: [] });
    expect(
      c
        .consumerConnection("G")
        ?.connections.map((x) => x.clientId)
        .sort(),
    ).toEqual(["new", "old"]);
    t += 2;
    expect(c.consumerConnection("G")?.connections.map((x) => x.clientId)).toEqual(["new"]);
    expect(c.producerConnection("T")).toEqual([]);
    t += CHANNEL_EXPIRED_TIMEOUT_MS + 1;
    expect(c.consumerConnection("G")).toBeUndefined();
    // A heartbeat sweeps everything expired, so dead clients do not pile up unread.
    c.heartbeat({ connection: conn("x"), consumerGroup: "H", subscriptions: [] });
    c.heartbeat({ connection: conn("x"), consumerGroup: "H", subscriptions: [] });
    expect(c.consumerConnection("H")?.connections).toEqual([conn("x")]);
  });
});
