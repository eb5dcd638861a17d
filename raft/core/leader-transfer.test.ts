import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { bytes, TestNetwork } from "./test-network.ts";

describe("leader transfer (TimeoutNow)", () => {
  it("hands leadership to an up-to-date follower at once, despite the CheckQuorum lease", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    const term = net.node("a").raw.status().term;
    net.node("a").raw.transferLeader("b");
    net.stabilize();
    expect(net.leader()).toBe("b");
    expect(net.node("b").raw.status().term).toBe(term + 1);
    expect(net.sent.some((m) => m.type === "TimeoutNow" && m.to === "b")).toBe(true);
    net.propose("c", "after-transfer");
    for (const id of ["a", "b", "c"]) expect(net.appliedData(id)).toEqual(["after-transfer"]);
  });

  it("first brings a lagging transferee up to date, then sends TimeoutNow", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 5; i++) net.propose("a", `v${i}`);
    net.heal();
    net.sent.length = 0;
    net.node("a").raw.transferLeader("c");
    net.stabilize();
    const firstTimeoutNow = net.sent.findIndex((m) => m.type === "TimeoutNow");
    const lastAppToC = net.sent.findLastIndex((m) => m.type === "App" && m.to === "c" && m.from === "a");
    expect(firstTimeoutNow).toBeGreaterThan(lastAppToC);
    expect(net.leader()).toBe("c");
    expect(net.node("c").raw.status().commit).toBeGreaterThanOrEqual(6);
  });

  it("drops proposals while a transfer is in progress", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.node("a").raw.transferLeader("c");
    let err: unknown;
    try {
      net.node("a").raw.propose(bytes("x"));
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.RaftProposalDropped)).toBe(true);
  });

  it("aborts after an election timeout if the transferee never catches up", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.node("a").raw.transferLeader("c");
    expect(net.node("a").raw.status().leadTransferee).toBe("c");
    net.tickAll(10);
    expect(net.node("a").raw.status()).toMatchObject({ state: "Leader", leadTransferee: "" });
    net.propose("a", "ok");
    expect(net.appliedData("b")).toEqual(["ok"]);
  });

  it("a follower forwards the request to the leader; a transfer to the leader itself is a no-op", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.node("a").raw.transferLeader("a");
    net.stabilize();
    expect(net.leader()).toBe("a");
    net.node("c").raw.transferLeader("b");
    net.stabilize();
    expect(net.leader()).toBe("b");
  });
});
