import { describe, expect, it } from "vitest";
import { TestNetwork } from "./test-network.ts";

describe("CheckQuorum: a leader steps down without a quorum of recent responses", () => {
  it("an isolated leader becomes a follower within two election timeouts", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("a");
    let steppedDownAt = -1;
    for (let t = 1; t <= 20; t++) {
      net.tick("a");
      net.stabilize();
      if (net.node("a").raw.status().state !== "Leader") {
        steppedDownAt = t;
        break;
      }
    }
    expect(steppedDownAt).toBeGreaterThan(0);
    expect(steppedDownAt).toBeLessThanOrEqual(20);
    expect(net.node("a").raw.status().lead).toBe("");
  });

  it("a leader that can send but not receive (asymmetric partition) steps down too", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.cutLink("b", "a");
    net.cutLink("c", "a");
    net.tickAll(20);
    expect(net.node("a").raw.status().state).not.toBe("Leader");
  });

  it("a leader with one responsive follower of two stays leader", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.tickAll(100);
    expect(net.node("a").raw.status().state).toBe("Leader");
  });

  it("a 5-node leader with only one responsive follower steps down", () => {
    const net = new TestNetwork(["a", "b", "c", "d", "e"]);
    net.campaign("a");
    net.partition(["a", "b"], ["c", "d", "e"]);
    net.tickAll(25);
    expect(net.node("a").raw.status().state).not.toBe("Leader");
    // and the majority side elected a leader of its own
    const leaders = ["c", "d", "e"].filter((id) => net.node(id).raw.status().state === "Leader");
    expect(leaders).toHaveLength(1);
  });

  it("without checkQuorum an isolated leader stays leader (what CheckQuorum prevents)", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ checkQuorum: false }) });
    net.campaign("a");
    net.isolate("a");
    net.tick("a", 50);
    net.stabilize();
    expect(net.node("a").raw.status().state).toBe("Leader");
  });
});
