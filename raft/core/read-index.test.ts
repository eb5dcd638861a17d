import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { bytes, TestNetwork, text } from "./test-network.ts";

function reads(net: TestNetwork, id: string): Array<[number, string]> {
  return net.node(id).readStates.map((rs) => [rs.index, text(rs.context)]);
}

describe("ReadIndex: linearizable reads confirmed by a heartbeat round", () => {
  it("the leader answers at its commit index after a quorum acknowledged a heartbeat", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.sent.length = 0;
    net.node("a").raw.readIndex(bytes("r1"));
    // Not answered before the heartbeat round.
    net.flushReady("a");
    expect(reads(net, "a")).toEqual([]);
    expect(net.queue.filter((m) => m.type === "Heartbeat" && m.context !== undefined)).toHaveLength(2);
    net.stabilize();
    expect(reads(net, "a")).toEqual([[2, "r1"]]);
  });

  it("a follower's read is forwarded to the leader and answered to the follower", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.propose("b", "x");
    net.node("c").raw.readIndex(bytes("rc"));
    net.stabilize();
    expect(reads(net, "c")).toEqual([[2, "rc"]]);
    expect(reads(net, "a")).toEqual([]);
  });

  it("several reads share one heartbeat round and keep their order", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.node("a").raw.readIndex(bytes("1"));
    net.node("a").raw.readIndex(bytes("2"));
    net.stabilize();
    expect(reads(net, "a").map(([, c]) => c)).toEqual(["1", "2"]);
  });

  it("a deposed leader cut off from the quorum never answers (no stale read)", () => {
    // Without CheckQuorum the old leader keeps believing it leads: the worst case for reads.
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ checkQuorum: false }) });
    net.campaign("a");
    net.propose("a", "old");
    net.isolate("a");
    net.campaign("b");
    net.propose("b", "new");
    expect(net.node("b").raw.status().state).toBe("Leader");
    expect(net.node("a").raw.status().state).toBe("Leader");
    net.node("a").raw.readIndex(bytes("stale?"));
    net.tickAll(5);
    expect(reads(net, "a")).toEqual([]);
    // Once healed, a learns the new term; the pending read is dropped, never answered stale.
    net.heal();
    net.tickAll(5);
    expect(net.node("a").raw.status().state).toBe("Follower");
    expect(reads(net, "a")).toEqual([]);
  });

  it("a new leader defers reads until an entry of its term is committed", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x"); // index 2
    // b wins a new term; hold every append from b so its no-op (index 3) cannot commit.
    net.interceptors.push((m) => (m.from === "b" && m.type === "App" ? undefined : m));
    net.tickAll(1);
    net.node("b").raw.transferLeader("b");
    net.node("a").raw.transferLeader("b");
    net.stabilize();
    expect(net.node("b").raw.status().state).toBe("Leader");
    net.node("b").raw.readIndex(bytes("r"));
    net.stabilize();
    expect(reads(net, "b")).toEqual([]);
    net.heal();
    net.tickAll(2);
    // Answered at an index that covers everything committed before the read.
    expect(reads(net, "b")).toEqual([[3, "r"]]);
  });

  it("throws RaftProposalDropped when no leader is known", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    let err: unknown;
    try {
      net.node("a").raw.readIndex(bytes("r"));
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.RaftProposalDropped)).toBe(true);
  });

  it("LeaseBased answers at once from the leader's commit index while it holds the lease", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ readOnlyOption: "LeaseBased" }) });
    net.campaign("a");
    // No heartbeat acknowledged yet: no lease, so the read takes a heartbeat round.
    net.node("a").raw.readIndex(bytes("r0"));
    const first = net.flushReady("a");
    expect(first.flatMap((rd) => rd.readStates)).toEqual([]);
    net.stabilize();
    expect(reads(net, "a")).toEqual([[1, "r0"]]);
    // Now the lease holds: answered in the same Ready, no message needed.
    net.node("a").raw.readIndex(bytes("r1"));
    const rds = net.flushReady("a");
    expect(rds.flatMap((rd) => rd.readStates).map((rs) => rs.index)).toEqual([1]);
    expect(rds.flatMap((rd) => rd.messages).filter((m) => m.type === "Heartbeat")).toHaveLength(0);
  });

  /** Isolate a LeaseBased leader and read from it every tick: when did it last serve, when did b/c win? */
  function leaseRace(unsafeLease: boolean): { lastServed: number; newLeaderAt: number } {
    const net = new TestNetwork(["a", "b", "c"], {
      config: () => ({
        readOnlyOption: "LeaseBased",
        preVote: false,
        unsafe: { leaseReadsWhileLeader: unsafeLease },
      }),
    });
    net.campaign("a");
    net.tickAll(1);
    net.isolate("a");
    let lastServed = -1;
    let newLeaderAt = -1;
    for (let t = 1; t <= 40; t++) {
      net.tickAll(1);
      const before = net.node("a").readStates.length;
      if (net.node("a").raw.status().state === "Leader") {
        net.node("a").raw.readIndex(bytes(`t${t}`));
        net.flushReady("a");
        if (net.node("a").readStates.length > before) lastServed = t;
      }
      if (newLeaderAt < 0 && ["b", "c"].some((id) => net.node(id).raw.status().state === "Leader"))
        newLeaderAt = t;
    }
    return { lastServed, newLeaderAt };
  }

  it("a cut-off LeaseBased leader stops serving reads before anyone else can be elected", () => {
    const { lastServed, newLeaderAt } = leaseRace(false);
    expect(lastServed).toBeGreaterThan(0); // the lease was used
    expect(newLeaderAt).toBeGreaterThan(0); // the majority moved on
    expect(lastServed).toBeLessThan(newLeaderAt);
  });

  it("with a lease bounded only by CheckQuorum (etcd's LeaseBased) it serves after a new leader exists", () => {
    const { lastServed, newLeaderAt } = leaseRace(true);
    expect(newLeaderAt).toBeGreaterThan(0);
    expect(lastServed).toBeGreaterThanOrEqual(newLeaderAt);
  });

  it("a restarted LeaseBased node refuses votes for an election timeout (it may owe a lease)", () => {
    const net = new TestNetwork(["a", "b", "c"], {
      config: () => ({ readOnlyOption: "LeaseBased", preVote: false }),
    });
    net.campaign("a");
    net.tickAll(1);
    net.crash("a");
    net.crash("b");
    net.restart("b");
    net.campaign("c");
    expect(net.node("c").raw.status().state).not.toBe("Leader");
    net.tick("b", 10);
    net.campaign("c");
    expect(net.node("c").raw.status().state).toBe("Leader");
  });

  it("with the quorum check disabled (planted bug) the cut-off leader serves a stale read", () => {
    const net = new TestNetwork(["a", "b", "c"], {
      config: () => ({ checkQuorum: false, unsafe: { readIndexWithoutQuorum: true } }),
    });
    net.campaign("a");
    net.propose("a", "old");
    net.isolate("a");
    net.campaign("b");
    net.propose("b", "new");
    expect(net.node("b").raw.status().commit).toBe(4);
    net.node("a").raw.readIndex(bytes("stale"));
    net.stabilize();
    expect(reads(net, "a")).toEqual([[2, "stale"]]);
  });
});
