import { describe, expect, it } from "vitest";
import { Prng } from "../sim/prng.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Message, NodeId } from "../types.ts";
import type { RawNodeConfig } from "./config.ts";
import { newMessage } from "./raft.ts";
import { createRawNode, type RawNode } from "./raw-node.ts";
import { storageWithTerms, TestNetwork } from "./test-network.ts";

/** A lone node (peers a, b, c) over `storage`, returning the messages of each Ready. */
function lone(storage: MemoryStorage, extra: Partial<RawNodeConfig> = {}): RawNode {
  const prng = new Prng(7);
  return createRawNode({ id: "a", peers: ["a", "b", "c"], storage, random: () => prng.next(), ...extra });
}

function drain(node: RawNode, storage?: MemoryStorage): Message[] {
  const out: Message[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    if (storage !== undefined) {
      storage.append(rd.entries);
      if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    }
    out.push(...rd.messages);
    node.advance(rd);
  }
  return out;
}

function voteRequest(from: NodeId, term: number, lastIndex: number, lastTerm: number, pre = false): Message {
  const m = newMessage(pre ? "PreVote" : "Vote", from, "a", term);
  m.index = lastIndex;
  m.logTerm = lastTerm;
  return m;
}

describe("vote granting: the candidate's log must be at least as up to date (§5.4.1)", () => {
  // Voter log: terms [1, 2, 2] → last entry (index 3, term 2).
  const cases: Array<[string, number, number, boolean]> = [
    ["lower last term, longer log", 5, 1, false],
    ["same last term, shorter log", 2, 2, false],
    ["same last term, same length", 3, 2, true],
    ["same last term, longer log", 4, 2, true],
    ["higher last term, shorter log", 1, 3, true],
  ];
  for (const [name, lastIndex, lastTerm, granted] of cases) {
    it(`${name} → ${granted ? "granted" : "rejected"}`, () => {
      const st = storageWithTerms([1, 2, 2]);
      const node = lone(st);
      node.step(voteRequest("b", 3, lastIndex, lastTerm));
      const resp = drain(node, st).find((m) => m.type === "VoteResp");
      expect(resp?.reject).toBe(!granted);
      expect(node.status().vote).toBe(granted ? "b" : "");
    });
  }

  it("applies to pre-votes too", () => {
    const st = storageWithTerms([1, 2, 2]);
    const node = lone(st);
    node.step(voteRequest("b", 3, 5, 1, true));
    expect(drain(node).find((m) => m.type === "PreVoteResp")?.reject).toBe(true);
  });
});

describe("vote granting: at most one vote per term", () => {
  it("rejects a second candidate in the same term and re-grants the first", () => {
    const st = storageWithTerms([1]);
    const node = lone(st);
    node.step(voteRequest("b", 2, 1, 1));
    node.step(voteRequest("c", 2, 1, 1));
    node.step(voteRequest("b", 2, 1, 1));
    const resps = drain(node, st).filter((m) => m.type === "VoteResp");
    expect(resps.map((m) => [m.to, m.reject])).toEqual([
      ["b", false],
      ["c", true],
      ["b", false],
    ]);
  });

  it("remembers the vote across a restart (vote is in the persisted HardState)", () => {
    const st = storageWithTerms([1]);
    const node = lone(st);
    node.step(voteRequest("b", 2, 1, 1));
    drain(node, st);
    expect(st.hardState()).toMatchObject({ term: 2, vote: "b" });
    const restarted = lone(st);
    restarted.step(voteRequest("c", 2, 1, 1));
    expect(drain(restarted, st).find((m) => m.type === "VoteResp")?.reject).toBe(true);
  });

  it("the vote is in the same Ready as the response, flagged mustSync", () => {
    const st = storageWithTerms([1]);
    const node = lone(st);
    node.step(voteRequest("b", 2, 1, 1));
    const rd = node.ready();
    expect(rd.hardState).toMatchObject({ term: 2, vote: "b" });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.some((m) => m.type === "VoteResp" && !m.reject)).toBe(true);
    node.advance(rd);
  });
});

describe("pre-vote does not bump terms", () => {
  it("granting a pre-vote leaves term and vote unchanged", () => {
    const st = storageWithTerms([1, 1], 1);
    const node = lone(st);
    node.step(voteRequest("b", 2, 2, 1, true));
    const msgs = drain(node, st);
    const resp = msgs.find((m) => m.type === "PreVoteResp");
    expect(resp?.reject).toBe(false);
    expect(resp?.term).toBe(2); // answered in the candidate's future term
    expect(node.status()).toMatchObject({ term: 1, vote: "" });
  });

  it("a pre-candidate campaigns at term+1 without changing its own term", () => {
    const node = lone(storageWithTerms([1], 1));
    node.campaign();
    const msgs = drain(node);
    expect(node.status()).toMatchObject({ term: 1, state: "PreCandidate" });
    expect(msgs.filter((m) => m.type === "PreVote").map((m) => m.term)).toEqual([2, 2]);
  });

  it("an isolated node keeps its term, and rejoining does not depose the leader", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    const term = net.node("a").raw.status().term;
    net.isolate("c");
    net.tickAll(100);
    expect(net.node("c").raw.status().term).toBe(term);
    net.heal();
    net.tickAll(5);
    expect(net.leader()).toBe("a");
    expect(net.node("a").raw.status().term).toBe(term);
  });

  it("without pre-vote an isolated node inflates its term (what pre-vote prevents)", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ preVote: false }) });
    net.campaign("a");
    const term = net.node("a").raw.status().term;
    net.isolate("c");
    net.tickAll(100);
    expect(net.node("c").raw.status().term).toBeGreaterThan(term + 2);
  });
});

describe("election timeout randomization", () => {
  function ticksToCampaign(seed: number): number {
    const prng = new Prng(seed);
    const node = createRawNode({
      id: "a",
      peers: ["a", "b", "c"],
      storage: new MemoryStorage(),
      random: () => prng.next(),
    });
    for (let t = 1; t <= 100; t++) {
      node.tick();
      if (node.status().state !== "Follower") return t;
    }
    return -1;
  }

  it("campaigns after a timeout drawn from [electionTick, 2*electionTick)", () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      const t = ticksToCampaign(seed);
      expect(t).toBeGreaterThanOrEqual(10);
      expect(t).toBeLessThanOrEqual(19);
      seen.add(t);
    }
    expect(seen.size).toBeGreaterThanOrEqual(8);
  });

  it("is a pure function of the injected PRNG", () => {
    expect(ticksToCampaign(42)).toBe(ticksToCampaign(42));
  });
});

describe("leader election", () => {
  for (const size of [1, 3, 5]) {
    it(`${size} nodes: one leader, everyone follows it`, () => {
      const ids = ["a", "b", "c", "d", "e"].slice(0, size);
      const net = new TestNetwork(ids);
      net.campaign("a");
      expect(net.leader()).toBe("a");
      for (const id of ids) expect(net.node(id).raw.status().lead).toBe("a");
      // The leader's first entry of its term (no-op) commits everywhere.
      for (const id of ids) expect(net.node(id).raw.status().commit).toBe(1);
    });
  }

  it("a candidate without a quorum does not win", () => {
    const net = new TestNetwork(["a", "b", "c", "d", "e"]);
    net.partition(["a", "b"], ["c", "d", "e"]);
    net.campaign("a");
    expect(net.node("a").raw.status().state).not.toBe("Leader");
    net.campaign("c");
    expect(net.leader()).toBe("c");
  });

  it("a candidate that hears from a leader of its own term becomes its follower", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ preVote: false }) });
    // a and b campaign at once in term 1; b votes for itself, so only c can decide.
    net.node("a").raw.campaign();
    net.node("b").raw.campaign();
    net.flushAll();
    // Deliver c's vote to a first.
    net.queue.sort((x, y) => (x.from === "a" ? -1 : y.from === "a" ? 1 : 0));
    net.stabilize();
    expect(net.leader()).toBe("a");
    expect(net.node("b").raw.status()).toMatchObject({ state: "Follower", term: 1, lead: "a" });
  });
});

describe("CheckQuorum lease: no votes while a leader was heard from recently", () => {
  it("followers ignore a higher-term vote within the election timeout", () => {
    const net = new TestNetwork(["a", "b", "c"], {
      config: (id) => (id === "c" ? { preVote: false } : {}),
    });
    net.campaign("a");
    const term = net.node("a").raw.status().term;
    net.isolate("c");
    net.tick("c", 30); // c campaigns at higher terms, unheard
    net.stabilize();
    net.heal();
    net.campaign("c"); // b has a live leader: ignores c's vote request
    expect(net.node("b").raw.status().term).toBe(term);
    expect(net.node("c").raw.status().state).not.toBe("Leader");
  });

  it("once the lease expired the vote is considered", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: (id) => (id === "c" ? { preVote: false } : {}) });
    net.campaign("a");
    net.crash("a");
    net.tick("b", 10); // b has not heard from a for a whole election timeout
    net.campaign("c");
    expect(net.node("c").raw.status().state).toBe("Leader");
  });

  it("the lease rule does not apply without checkQuorum", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ preVote: false, checkQuorum: false }) });
    net.campaign("a");
    net.campaign("c");
    expect(net.leader()).toBe("c");
  });
});
