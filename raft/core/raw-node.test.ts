import { describe, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { Prng } from "../sim/prng.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import { createRawNode } from "./raw-node.ts";
import { bytes } from "./test-network.ts";

function single() {
  const storage = new MemoryStorage();
  const prng = new Prng(3);
  const node = createRawNode({ id: "a", peers: ["a"], storage, random: () => prng.next() });
  return { node, storage };
}

describe("RawNode Ready/advance contract", () => {
  it("a single-voter node elects itself and commits its proposals in the same Ready", () => {
    const { node, storage } = single();
    node.campaign();
    node.propose(bytes("x"));
    const rd = node.ready();
    expect(rd.softState).toEqual({ lead: "a", state: "Leader" });
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.hardState).toEqual({ term: 1, vote: "a", commit: 2 });
    expect(rd.mustSync).toBe(true);
    storage.append(rd.entries);
    storage.setHardState(rd.hardState ?? { term: 0, vote: "", commit: 0 });
    node.advance(rd);
    expect(node.hasReady()).toBe(false);
    expect(node.status()).toMatchObject({ applied: 2, commit: 2, lastIndex: 2 });
  });

  it("ready() twice without advance() is refused; hasReady() is false meanwhile", () => {
    const { node } = single();
    node.campaign();
    const rd = node.ready();
    node.propose(bytes("y"));
    expect(node.hasReady()).toBe(false);
    let err: unknown;
    try {
      node.ready();
    } catch (e) {
      err = e;
    }
    expect(isRmqError(err, ErrorCode.RaftInvariantViolated)).toBe(true);
    node.advance(rd);
    expect(node.hasReady()).toBe(true);
    // The proposal made between ready() and advance() comes in the next Ready.
    expect(node.ready().entries.map((e) => e.index)).toEqual([2]);
  });

  it("entries handed out in a Ready are not handed out again", () => {
    const { node, storage } = single();
    node.campaign();
    const rd1 = node.ready();
    storage.append(rd1.entries);
    node.advance(rd1);
    node.propose(bytes("z"));
    const rd2 = node.ready();
    expect(rd2.entries.map((e) => e.index)).toEqual([2]);
    expect(rd2.committedEntries.map((e) => e.index)).toEqual([2]);
  });

  it("a commit-only HardState change does not require an fsync", () => {
    const storage = new MemoryStorage();
    storage.append([{ term: 1, index: 1, type: 0, data: bytes("a") }]);
    storage.setHardState({ term: 1, vote: "", commit: 0 });
    const prng = new Prng(1);
    const node = createRawNode({ id: "b", peers: ["a", "b", "c"], storage, random: () => prng.next() });
    node.step({
      type: "Heartbeat",
      from: "a",
      to: "b",
      term: 1,
      index: 0,
      logTerm: 0,
      entries: [],
      commit: 1,
      reject: false,
      rejectHint: 0,
    });
    const rd = node.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: "", commit: 1 });
    expect(rd.mustSync).toBe(false);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
  });

  it("local-only message types from the network are ignored", () => {
    const { node } = single();
    node.step({
      type: "Hup",
      from: "x",
      to: "a",
      term: 0,
      index: 0,
      logTerm: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
    });
    expect(node.status().state).toBe("Follower");
  });

  it("rejects an invalid configuration with a clear error", () => {
    const prng = new Prng(1);
    expect(() =>
      createRawNode({
        id: "a",
        peers: ["a"],
        storage: new MemoryStorage(),
        random: () => prng.next(),
        electionTick: 1,
        heartbeatTick: 1,
      }),
    ).toThrowError(/electionTick/);
    expect(() =>
      createRawNode({
        id: "a",
        peers: ["a"],
        storage: new MemoryStorage(),
        random: () => prng.next(),
        readOnlyOption: "LeaseBased",
        checkQuorum: false,
      }),
    ).toThrowError(/LeaseBased requires checkQuorum/);
  });

  it("restarts from storage with the persisted term, vote and commit", () => {
    const { node, storage } = single();
    node.campaign();
    node.propose(bytes("x"));
    const rd = node.ready();
    storage.append(rd.entries);
    if (rd.hardState) storage.setHardState(rd.hardState);
    node.advance(rd);
    const prng = new Prng(9);
    const again = createRawNode({ id: "a", peers: ["a"], storage, random: () => prng.next() });
    expect(again.status()).toMatchObject({ term: 1, vote: "a", commit: 2, applied: 0, state: "Follower" });
    // Committed entries are re-delivered for the state machine to rebuild.
    expect(again.ready().committedEntries.map((e) => e.index)).toEqual([1, 2]);
  });
});
