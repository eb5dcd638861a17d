import { describe, expect, it } from "vitest";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Entry } from "../types.ts";
import { RaftLog } from "./raft-log.ts";
import { bytes, storageWithTerms } from "./test-network.ts";

function ents(from: number, terms: number[], size = 0): Entry[] {
  return terms.map((term, i) => ({ term, index: from + i, type: 0, data: new Uint8Array(size) }));
}

describe("RaftLog: storage + unstable tail", () => {
  it("reads terms and slices across the storage/unstable boundary", () => {
    const log = new RaftLog(storageWithTerms([1, 1, 2]));
    log.append(ents(4, [2, 3]));
    expect([log.firstIndex(), log.lastIndex(), log.lastTerm()]).toEqual([1, 5, 3]);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => log.term(i))).toEqual([0, 1, 1, 2, 2, 3, undefined]);
    expect(log.slice(2, 6, 1e9).map((e) => e.index)).toEqual([2, 3, 4, 5]);
  });

  it("slice stops at maxBytes, including across the boundary", () => {
    const st = new MemoryStorage();
    st.append(ents(1, [1, 1], 100));
    const log = new RaftLog(st);
    log.append(ents(3, [1, 1], 100));
    expect(log.slice(1, 5, 250).map((e) => e.index)).toEqual([1, 2]);
    expect(log.slice(1, 5, 400).map((e) => e.index)).toEqual([1, 2, 3]);
    expect(log.slice(3, 5, 10).map((e) => e.index)).toEqual([3]);
  });

  it("an append overlapping the tail replaces the overlap (in memory and, later, in storage)", () => {
    const log = new RaftLog(storageWithTerms([1, 1, 1]));
    log.append(ents(4, [1, 1]));
    log.append(ents(2, [2]));
    expect(log.lastIndex()).toBe(2);
    expect([1, 2, 3].map((i) => log.term(i))).toEqual([1, 2, undefined]);
  });

  it("findConflict finds the first mismatching or new entry", () => {
    const log = new RaftLog(storageWithTerms([1, 2, 3]));
    expect(log.findConflict(ents(1, [1, 2, 3]))).toBe(0);
    expect(log.findConflict(ents(2, [2, 3, 4]))).toBe(4);
    expect(log.findConflict(ents(2, [2, 4]))).toBe(3);
  });

  it("findConflictByTerm skips every entry with a larger term", () => {
    const log = new RaftLog(storageWithTerms([1, 1, 3, 3, 5, 5, 5]));
    expect(log.findConflictByTerm(7, 4)).toEqual({ index: 4, term: 3 });
    expect(log.findConflictByTerm(7, 5)).toEqual({ index: 7, term: 5 });
    expect(log.findConflictByTerm(7, 2)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(7, 0)).toEqual({ index: 0, term: 0 });
  });

  it("isUpToDate compares last term first, then length", () => {
    const log = new RaftLog(storageWithTerms([1, 2, 2]));
    expect(log.isUpToDate(3, 2)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(false);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it("maybeCommit only commits an entry of the given term (unless told otherwise)", () => {
    const log = new RaftLog(storageWithTerms([1, 1, 2]));
    expect(log.maybeCommit(2, 2, false)).toBe(false);
    expect(log.committed).toBe(0);
    expect(log.maybeCommit(3, 2, false)).toBe(true);
    expect(log.committed).toBe(3);
    const buggy = new RaftLog(storageWithTerms([1, 1, 2]));
    expect(buggy.maybeCommit(2, 2, true)).toBe(true);
  });

  it("stableTo ignores a stale report when the entry was replaced meanwhile", () => {
    const log = new RaftLog(new MemoryStorage());
    log.append(ents(1, [1, 1]));
    log.append(ents(2, [2]));
    log.stableTo(2, 1); // the Ready held (2, term 1), since replaced
    expect(log.unstable.entries.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
    ]);
    log.stableTo(2, 2);
    expect(log.unstable.entries).toEqual([]);
    expect(log.unstable.offset).toBe(3);
  });

  it("restore replaces the log with a snapshot", () => {
    const log = new RaftLog(storageWithTerms([1, 1]));
    log.restore({ metadata: { index: 10, term: 4, voters: ["a"] }, data: bytes("s") });
    expect([log.firstIndex(), log.lastIndex(), log.committed, log.term(10), log.term(5)]).toEqual([
      11,
      10,
      10,
      4,
      undefined,
    ]);
    expect(log.nextCommittedEntries(1e9)).toEqual([]);
  });
});
