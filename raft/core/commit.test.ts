import { describe, expect, it } from "vitest";
import type { Message } from "../types.ts";
import { TestNetwork } from "./test-network.ts";

/**
 * The Figure 8 scenario of the Raft paper, 5 nodes a..e:
 *  1. a leads term T1 and replicates X (index 2) to b only.
 *  2. a crashes; e is elected (votes c, d, e) and appends its no-op at index 2 locally, then crashes.
 *  3. a restarts, is elected (votes a, b, c), replicates X to c — X is now on a majority (a, b, c)
 *     but a's own no-op (index 3) reached only b.
 *  4. a crashes; e restarts and can win (votes c, d, e: its last term beats X's) and overwrite X.
 * Safe Raft: a must not commit X in step 3 (it is from an earlier term); then step 4 is harmless.
 */
function figure8(unsafeCommit: boolean): TestNetwork {
  const net = new TestNetwork(["a", "b", "c", "d", "e"], {
    config: () => ({
      preVote: false,
      checkQuorum: false,
      unsafe: { commitPreviousTermEntries: unsafeCommit },
    }),
  });
  net.campaign("a");
  // 1. X reaches b only.
  net.partition(["a"], ["c", "d", "e"]);
  net.propose("a", "X");
  expect(net.node("b").raw.termAt(2)).toBe(net.node("a").raw.termAt(2));
  net.heal();
  // 2. a crashes; e wins with c and d, its appends are lost, it crashes.
  net.crash("a");
  net.interceptors.push((m) => (m.from === "e" && m.type === "App" ? undefined : m));
  net.campaign("e");
  expect(net.node("e").raw.status().state).toBe("Leader");
  net.crash("e");
  net.heal();
  // 3. a restarts and wins; only b gets its no-op, c gets X but not the no-op, d gets nothing.
  net.restart("a");
  net.interceptors.push((m: Message) => {
    if (m.from !== "a" || m.type !== "App") return m;
    if (m.to === "d") return undefined;
    if (m.to === "c") return { ...m, entries: m.entries.filter((e) => e.index < 3) };
    return m;
  });
  for (let i = 0; i < 3 && net.node("a").raw.status().state !== "Leader"; i++) net.campaign("a");
  expect(net.node("a").raw.status().state).toBe("Leader");
  expect(net.node("c").raw.termAt(2)).toBe(net.node("a").raw.termAt(2));
  return net;
}

describe("commit only entries of the current term by counting replicas (§5.4.2, Figure 8)", () => {
  it("a new leader does not commit an earlier-term entry stored on a majority", () => {
    const net = figure8(false);
    expect(net.node("a").raw.status().commit).toBe(1);
    expect(net.appliedData("a")).toEqual([]);
  });

  it("so a later leader may overwrite it without any node having applied it", () => {
    const net = figure8(false);
    net.crash("a");
    net.heal();
    net.restart("e");
    for (let i = 0; i < 3 && net.node("e").raw.status().state !== "Leader"; i++) net.campaign("e");
    expect(net.leader()).toBe("e");
    net.restart("a");
    net.propose("e", "Y");
    net.tickAll(3);
    // X was overwritten everywhere and applied nowhere; every node applied the same sequence.
    for (const id of ["a", "b", "c", "d", "e"]) expect(net.appliedData(id)).toEqual(["Y"]);
  });

  it("the entry commits once an entry of the leader's own term is replicated", () => {
    const net = figure8(false);
    net.heal();
    net.tickAll(2);
    expect(net.node("a").raw.status().commit).toBe(3);
    for (const id of ["a", "b", "c", "d"]) expect(net.appliedData(id)).toEqual(["X"]);
  });

  it("with the rule disabled (planted bug) X commits, and a leader without X is elected", () => {
    const net = figure8(true);
    expect(net.node("a").raw.status().commit).toBe(2);
    expect(net.appliedData("a")).toEqual(["X"]);
    const xTerm = net.node("a").raw.termAt(2);
    net.crash("a");
    net.heal();
    net.restart("e");
    net.node("e").raw.campaign();
    net.deliverRounds(10);
    if (net.node("e").raw.status().state !== "Leader") {
      net.node("e").raw.campaign();
      net.deliverRounds(10);
    }
    // Leader completeness is broken: the new leader's entry at the committed index 2 is not X.
    expect(net.node("e").raw.status().state).toBe("Leader");
    expect(net.node("e").raw.termAt(2)).not.toBe(xTerm);
  });
});

describe("leader completeness (§5.4): every leader holds every committed entry", () => {
  it("across a sequence of leader crashes, each new leader has all committed entries", () => {
    const ids = ["a", "b", "c", "d", "e"];
    const net = new TestNetwork(ids);
    const committed: Array<{ index: number; term: number }> = [];
    let leader = "a";
    net.campaign(leader);
    for (let round = 0; round < 8; round++) {
      // Commit a few entries while one follower misses them.
      const lagging = ids[(round + 1) % 5] as string;
      if (lagging !== leader) net.isolate(lagging);
      for (let i = 0; i < 3; i++) net.propose(leader, `r${round}-${i}`);
      const st = net.node(leader).raw.status();
      for (let i = committed.length + 1; i <= st.commit; i++) {
        committed.push({ index: i, term: net.node(leader).raw.termAt(i) as number });
      }
      net.heal();
      // The leader crashes; someone else is elected (the lagging node may try and must fail).
      net.crash(leader);
      net.node(lagging).raw.campaign();
      net.stabilize();
      for (let i = 0; i < 60 && net.leader() === undefined; i++) net.tickAll();
      const newLeader = net.leader();
      expect(newLeader).toBeDefined();
      for (const c of committed) expect(net.node(newLeader as string).raw.termAt(c.index)).toBe(c.term);
      net.restart(leader);
      net.stabilize();
      leader = newLeader as string;
    }
    expect(committed.length).toBeGreaterThan(20);
  });

  it("a node missing committed entries cannot be elected", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ preVote: false, checkQuorum: false }) });
    net.campaign("a");
    net.isolate("c");
    net.propose("a", "x"); // committed on a and b
    net.heal();
    net.crash("a");
    net.interceptors.push((m) => (m.from === "a" ? undefined : m));
    net.campaign("c");
    expect(net.node("c").raw.status().state).not.toBe("Leader");
    net.campaign("b");
    expect(net.leader()).toBe("b");
  });
});
