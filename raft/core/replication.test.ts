import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Entry } from "../types.ts";
import { RaftLog } from "./raft-log.ts";
import { bytes, storageWithTerms, TestNetwork } from "./test-network.ts";

function terms(st: MemoryStorage): number[] {
  return st.storedEntries().map((e) => e.term);
}

describe("leader append-only (§5.3): a leader never overwrites or deletes its entries", () => {
  it("the leader's log only grows while it brings divergent followers in line", () => {
    // Leader-to-be a has [1,1,2]; b has a conflicting [1,3,3,3] from a failed term-3 leader; c is empty.
    const net = new TestNetwork(["a", "b", "c"], {
      storage: (id) =>
        id === "a"
          ? storageWithTerms([1, 1, 2], 3)
          : id === "b"
            ? storageWithTerms([1, 3, 3, 3], 3)
            : new MemoryStorage(),
    });
    // a wins with c's vote (b's log is more up to date than a's, so b refuses).
    net.campaign("a");
    expect(net.leader()).toBe("a");
    const before = net.node("a").storage.storedEntries();
    net.propose("a", "x");
    const after = net.node("a").storage.storedEntries();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBe(before.length + 1);
    // and b's conflicting suffix was replaced by the leader's
    expect(terms(net.node("b").storage)).toEqual(terms(net.node("a").storage));
  });

  it("an append from a stale leader (older term) is refused and changes nothing", () => {
    const net = new TestNetwork(["a", "b", "c"], { storage: () => storageWithTerms([1], 5) });
    net.campaign("a");
    net.propose("a", "x");
    expect(net.node("a").raw.status().term).toBe(6);
    const before = terms(net.node("a").storage);
    const followerBefore = terms(net.node("c").storage);
    for (const to of ["a", "c"]) {
      net.node(to).raw.step({
        type: "App",
        from: "b",
        to,
        term: 5,
        index: 0,
        logTerm: 0,
        entries: [{ term: 5, index: 1, type: 0, data: bytes("stale") }],
        commit: 1,
        reject: false,
        rejectHint: 0,
      });
      net.flushReady(to);
    }
    // Both answer with their newer term so the stale leader steps down.
    const answers = net.queue.filter((m) => m.to === "b" && m.type === "AppResp");
    expect(answers.map((m) => m.term)).toEqual([6, 6]);
    net.stabilize();
    expect(terms(net.node("a").storage)).toEqual(before);
    expect(terms(net.node("c").storage)).toEqual(followerBefore);
    expect(net.leader()).toBe("a");
  });
});

describe("log matching and conflict resolution (§5.3, Figure 7)", () => {
  // Figure 7: leader for term 8 with log [1,1,1,4,4,5,5,6,6,6]; followers (a)..(f).
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, log] of Object.entries(followers)) {
    it(`follower (${name}) ends with exactly the leader's log`, () => {
      const net = new TestNetwork(["L", "F", "x"], {
        config: () => ({ preVote: false }),
        storage: (id) =>
          id === "L"
            ? storageWithTerms(leaderLog, 7)
            : id === "F"
              ? storageWithTerms(log, 7)
              : storageWithTerms(leaderLog, 7),
      });
      net.campaign("L");
      expect(net.leader()).toBe("L");
      net.propose("L", "y");
      const lt = terms(net.node("L").storage);
      expect(lt.slice(0, 10)).toEqual(leaderLog);
      expect(terms(net.node("F").storage)).toEqual(lt);
      // Same index and term ⇒ same data (log matching).
      const le = net.node("L").storage.storedEntries();
      const fe = net.node("F").storage.storedEntries();
      expect(fe.map((e) => [e.index, e.term, Buffer.from(e.data).toString()])).toEqual(
        le.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]),
      );
    });
  }

  it("fast backtracking: a long divergent suffix costs a few round trips, not one per entry", () => {
    const diverged = [1, ...Array.from({ length: 200 }, () => 2)];
    const net = new TestNetwork(["L", "F", "x"], {
      config: () => ({ preVote: false }),
      storage: (id) => (id === "F" ? storageWithTerms(diverged, 3) : storageWithTerms([1, 3, 3], 3)),
    });
    net.campaign("L");
    const rejects = net.sent.filter((m) => m.type === "AppResp" && m.from === "F" && m.reject).length;
    expect(terms(net.node("F").storage)).toEqual(terms(net.node("L").storage));
    expect(rejects).toBeLessThanOrEqual(3);
  });

  it("a follower never truncates committed entries", () => {
    const st = storageWithTerms([1, 1, 2]);
    const log = new RaftLog(st);
    log.commitTo(2);
    const conflicting: Entry[] = [{ term: 3, index: 2, type: 0, data: bytes("z") }];
    expect(() => log.maybeAppend(1, 1, 2, conflicting)).toThrowError(/conflicts with committed/);
    // a conflict above the commit index is fine
    expect(log.maybeAppend(2, 1, 2, [{ term: 3, index: 3, type: 0, data: bytes("z") }])).toBe(3);
    expect(log.term(3)).toBe(3);
  });

  it("rejects an append whose previous entry does not match, with a hint", () => {
    const net = new TestNetwork(["a", "b", "c"], {
      storage: (id) => (id === "b" ? storageWithTerms([1, 1]) : new MemoryStorage()),
    });
    const b = net.node("b");
    b.raw.step({
      type: "App",
      from: "a",
      to: "b",
      term: 5,
      index: 4,
      logTerm: 4,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    net.flushReady("b");
    const resp = net.queue.find((m) => m.type === "AppResp");
    expect(resp).toMatchObject({ reject: true, index: 4, rejectHint: 2, logTerm: 1 });
  });
});

describe("batching (maxSizePerMsg) and pipelining (inflight window)", () => {
  it("splits a backlog into appends of at most maxSizePerMsg bytes", () => {
    const net = new TestNetwork(["a", "b", "c"], { config: () => ({ maxSizePerMsg: 1000 }) });
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 50; i++) net.node("a").raw.propose(new Uint8Array(100));
    net.stabilize();
    net.heal();
    net.sent.length = 0;
    net.tickAll(3);
    const apps = net.sent.filter((m) => m.type === "App" && m.to === "c" && m.entries.length > 0);
    expect(apps.length).toBeGreaterThan(1);
    for (const m of apps) {
      const size = m.entries.reduce((s, e) => s + e.data.byteLength + 16, 0);
      expect(size <= 1000 || m.entries.length === 1).toBe(true);
      expect(m.entries.length).toBeGreaterThan(1); // batched, not one entry per message
    }
    expect(net.node("c").raw.status().lastIndex).toBe(net.node("a").raw.status().lastIndex);
  });

  it("sends at most maxInflightMsgs appends before acknowledgements arrive", () => {
    const net = new TestNetwork(["a", "b"], { config: () => ({ maxInflightMsgs: 4, maxSizePerMsg: 1 }) });
    net.campaign("a");
    // Hold b's answers: a keeps pipelining until the window is full.
    net.interceptors.push((m) => (m.from === "b" ? undefined : m));
    net.sent.length = 0;
    for (let i = 0; i < 20; i++) net.node("a").raw.propose(bytes(`p${i}`));
    net.flushReady("a");
    const withEntries = net.queue.filter((m) => m.type === "App" && m.entries.length > 0);
    expect(withEntries.length).toBe(4);
    const pr = net.node("a").raw.status().progress?.get("b");
    expect(pr).toMatchObject({ state: "Replicate", inflight: 4, paused: true });
    // Let the answers through: the window slides and everything replicates.
    net.heal();
    net.stabilize();
    net.tickAll(2);
    expect(net.node("b").raw.status().commit).toBe(21);
  });

  it("recovers when every append in the window was lost", () => {
    const net = new TestNetwork(["a", "b", "c"], {
      config: () => ({ maxInflightMsgs: 2, maxSizePerMsg: 1 }),
    });
    net.campaign("a");
    net.interceptors.push((m) => (m.type === "App" && m.to === "c" ? undefined : m));
    for (let i = 0; i < 10; i++) net.propose("a", `p${i}`);
    expect(net.node("c").raw.status().lastIndex).toBe(1);
    net.heal();
    net.tickAll(5);
    expect(net.node("c").raw.status().lastIndex).toBe(11);
    expect(net.appliedData("c")).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`));
  });
});

describe("proposals: forwarded to the leader, or dropped with a clear error", () => {
  it("a follower forwards a proposal and it commits everywhere", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.propose("c", "from-c");
    for (const id of ["a", "b", "c"]) expect(net.appliedData(id)).toEqual(["from-c"]);
  });

  it("throws RaftProposalDropped when no leader is known", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    let err: unknown;
    try {
      net.node("b").raw.propose(bytes("x"));
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.RaftProposalDropped)).toBe(true);
  });

  it("a batch proposal becomes consecutive entries in one append", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.sent.length = 0;
    net.node("a").raw.proposeBatch([bytes("1"), bytes("2"), bytes("3")]);
    net.stabilize();
    const app = net.sent.find((m) => m.type === "App" && m.entries.length > 0);
    expect(app?.entries.map((e) => e.index)).toEqual([2, 3, 4]);
    expect(net.appliedData("b")).toEqual(["1", "2", "3"]);
  });
});
