import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Entry, Snapshot } from "../types.ts";
import { bytes, TestNetwork, text } from "./test-network.ts";

function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: 0, data: bytes(data) };
}

/** Snapshot the leader's state machine at its applied index and compact its log up to there. */
function snapshotAndCompact(net: TestNetwork, id: string, keep = 0): Snapshot {
  const n = net.node(id);
  const applied = n.raw.status().applied;
  const data = bytes(net.appliedData(id).join(","));
  const snap = n.storage.createSnapshot(applied, ["a", "b", "c"], data);
  n.storage.compact(applied - keep);
  return snap;
}

describe("snapshot install and log compaction", () => {
  it("a follower behind the leader's compaction point receives the snapshot, then the rest", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.crash("c");
    for (let i = 0; i < 20; i++) net.propose("a", `v${i}`);
    const snap = snapshotAndCompact(net, "a");
    expect(net.node("a").storage.firstIndex()).toBe(snap.metadata.index + 1);
    net.restart("c");
    net.tickAll(3);
    expect(net.sent.some((m) => m.type === "Snap" && m.to === "c")).toBe(true);
    const c = net.node("c");
    expect(c.storage.snapshot().metadata.index).toBe(snap.metadata.index);
    expect(text(c.storage.snapshot().data)).toBe(text(snap.data));
    // Entries after the snapshot replicate normally.
    net.propose("a", "after");
    expect(c.raw.status().commit).toBe(net.node("a").raw.status().commit);
    expect(net.appliedData("c")).toEqual(["after"]);
    expect(c.raw.status().applied).toBe(net.node("a").raw.status().applied);
  });

  it("entries just above the compaction point are still sent as appends, not a snapshot", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 10; i++) net.propose("a", `v${i}`);
    // Keep everything c is missing: no snapshot needed.
    const cLast = net.node("c").raw.status().lastIndex;
    net.node("a").storage.createSnapshot(net.node("a").raw.status().applied, ["a", "b", "c"], bytes(""));
    net.node("a").storage.compact(cLast);
    net.heal();
    net.tickAll(3);
    expect(net.sent.some((m) => m.type === "Snap")).toBe(false);
    expect(net.appliedData("c")).toHaveLength(10);
  });

  it("a snapshot that failed to send is retried", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 5; i++) net.propose("a", `v${i}`);
    snapshotAndCompact(net, "a");
    net.heal();
    let dropped = 0;
    net.interceptors.push((m) => (m.type === "Snap" && dropped++ < 1 ? undefined : m));
    net.tickAll(6);
    expect(dropped).toBe(2);
    expect(net.sent.filter((m) => m.type === "Snap" && m.to === "c").length).toBe(2);
    expect(net.node("c").storage.snapshot().metadata.index).toBeGreaterThan(0);
    expect(net.node("a").raw.status().progress?.get("c")?.state).toBe("Replicate");
  });

  it("a snapshot that is not newer than the follower's commit index is ignored", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    for (let i = 0; i < 5; i++) net.propose("a", `v${i}`);
    const c = net.node("c");
    const commit = c.raw.status().commit;
    c.raw.step({
      type: "Snap",
      from: "a",
      to: "c",
      term: c.raw.status().term,
      index: 0,
      logTerm: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: { metadata: { index: 3, term: 1, voters: ["a", "b", "c"] }, data: bytes("old") },
    });
    const rds = net.flushReady("c");
    expect(rds.some((rd) => rd.snapshot !== undefined)).toBe(false);
    expect(c.raw.status().commit).toBe(commit);
  });

  it("a restarted node resumes from its own snapshot and re-applies later committed entries", () => {
    const net = new TestNetwork(["a", "b", "c"]);
    net.campaign("a");
    for (let i = 0; i < 6; i++) net.propose("a", `v${i}`);
    const b = net.node("b");
    const snapIndex = b.raw.status().applied - 2;
    b.storage.createSnapshot(snapIndex, ["a", "b", "c"], bytes("state"));
    b.storage.compact(snapIndex);
    net.crash("b");
    const restarted = net.restart("b");
    net.stabilize();
    // Only the entries after the snapshot come back as committed entries.
    expect(restarted.applied.map((e) => e.index)).toEqual([snapIndex + 1, snapIndex + 2]);
  });
});

describe("MemoryStorage", () => {
  it("answers term/entries within [firstIndex-1, lastIndex] and throws outside", () => {
    const st = new MemoryStorage();
    st.append([entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
    expect([st.firstIndex(), st.lastIndex()]).toEqual([1, 4]);
    expect(st.term(0)).toBe(0);
    expect(st.term(3)).toBe(2);
    st.createSnapshot(3, ["a"], bytes("s"));
    st.compact(2);
    expect([st.firstIndex(), st.lastIndex()]).toEqual([3, 4]);
    expect(st.term(2)).toBe(1);
    expect(() => st.term(1)).toThrowError(RmqError);
    expect(() => st.entries(2, 4, 1e9)).toThrowError(/compacted/);
    expect(() => st.term(5)).toThrowError(/beyond/);
    expect(st.entries(3, 5, 1e9).map((e) => e.index)).toEqual([3, 4]);
    try {
      st.compact(1);
    } catch (e) {
      expect(isRmqError(e, ErrorCode.RaftLogCompacted)).toBe(true);
    }
  });

  it("append truncates a conflicting suffix and ignores compacted entries", () => {
    const st = new MemoryStorage();
    st.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
    st.append([entry(2, 2)]);
    expect(st.storedEntries().map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    st.createSnapshot(1, ["a"], bytes(""));
    st.compact(1);
    st.append([entry(1, 1), entry(2, 2), entry(3, 3)]);
    expect(st.storedEntries().map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 3],
    ]);
    expect(() => st.append([entry(9, 3)])).toThrowError(/gap/);
  });

  it("entries() respects maxBytes but returns at least one entry", () => {
    const st = new MemoryStorage();
    st.append([entry(1, 1, "x".repeat(100)), entry(2, 1, "y".repeat(100)), entry(3, 1, "z")]);
    expect(st.entries(1, 4, 10)).toHaveLength(1);
    expect(st.entries(1, 4, 240)).toHaveLength(2);
    expect(st.entries(1, 4, 1e9)).toHaveLength(3);
  });

  it("applySnapshot replaces the log; an older snapshot is refused", () => {
    const st = new MemoryStorage();
    st.append([entry(1, 1), entry(2, 1)]);
    st.applySnapshot({ metadata: { index: 10, term: 3, voters: ["a", "b"] }, data: bytes("s") });
    expect([st.firstIndex(), st.lastIndex(), st.term(10)]).toEqual([11, 10, 3]);
    expect(st.initialState().voters).toEqual(["a", "b"]);
    expect(() =>
      st.applySnapshot({ metadata: { index: 5, term: 3, voters: [] }, data: bytes("") }),
    ).toThrowError(/not newer/);
  });

  it("compacting many times keeps indexes right (array with a moving head)", () => {
    const st = new MemoryStorage();
    const all: Entry[] = [];
    for (let i = 1; i <= 5000; i++) all.push(entry(i, 1 + Math.floor(i / 1000)));
    st.append(all);
    for (let c = 100; c <= 4900; c += 100) {
      st.createSnapshot(c, ["a"], bytes(""));
      st.compact(c);
      expect(st.firstIndex()).toBe(c + 1);
      expect(st.term(c + 1)).toBe(1 + Math.floor((c + 1) / 1000));
      expect(st.entries(c + 1, c + 3, 1e9).map((e) => e.index)).toEqual([c + 1, c + 2]);
    }
    expect(st.lastIndex()).toBe(5000);
  });
});
