import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Entry } from "../types.ts";
import { createWalStorage } from "./wal-storage.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "rmq-wal-storage-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: 0,
  data: new TextEncoder().encode(`e${index}`),
});
const range = (lo: number, hi: number, term: number) =>
  Array.from({ length: hi - lo + 1 }, (_, i) => ent(lo + i, term));

describe("WalStorage", () => {
  it("serves reads from memory and rebuilds them from the WAL after a restart", async () => {
    const a = await createWalStorage(dir, { segmentBytes: 512 });
    expect([a.firstIndex(), a.lastIndex()]).toEqual([1, 0]);
    await a.saveReady({
      entries: range(1, 10, 1),
      hardState: { term: 1, vote: "n1", commit: 0 },
      mustSync: true,
    });
    await a.saveReady({
      entries: range(8, 12, 2),
      hardState: { term: 2, vote: "n2", commit: 9 },
      mustSync: true,
    }); // conflict at 8
    expect(a.lastIndex()).toBe(12);
    expect(a.term(7)).toBe(1);
    expect(a.term(8)).toBe(2);
    // A commit-only hard state is not written on its own...
    await a.saveReady({ entries: [], hardState: { term: 2, vote: "n2", commit: 11 }, mustSync: false });
    expect(a.hardState().commit).toBe(11);
    await a.close(); // ...but close() flushes it.

    const b = await createWalStorage(dir, { segmentBytes: 512 });
    expect(b.initialState().hardState).toEqual({ term: 2, vote: "n2", commit: 11 });
    expect(b.entries(1, 13, Number.MAX_SAFE_INTEGER).map((e) => [e.index, e.term])).toEqual([
      ...range(1, 7, 1).map((e) => [e.index, 1]),
      ...range(8, 12, 2).map((e) => [e.index, 2]),
    ]);
    expect(b.recovery.entriesRecovered).toBe(12);
    await b.close();
  });

  it("a local snapshot + compaction drops old WAL segments; a restart starts after the snapshot", async () => {
    const s = await createWalStorage(dir, { segmentBytes: 256 });
    for (let i = 1; i <= 60; i += 5) {
      await s.saveReady({
        entries: range(i, i + 4, 1),
        hardState: { term: 1, vote: "", commit: i + 4 },
        mustSync: true,
      });
    }
    const segmentsBefore = s.walSegments();
    await s.createSnapshot(50, ["n1", "n2", "n3"], new Uint8Array([42]));
    await s.compact(45);
    expect(s.firstIndex()).toBe(46);
    expect(s.term(45)).toBe(1);
    expect(s.walSegments()).toBeLessThan(segmentsBefore);
    await s.close();

    const r = await createWalStorage(dir, { segmentBytes: 256 });
    expect(r.snapshot().metadata).toEqual({ index: 50, term: 1, voters: ["n1", "n2", "n3"] });
    expect([...r.snapshot().data]).toEqual([42]);
    expect(r.initialState().voters).toEqual(["n1", "n2", "n3"]);
    expect([r.firstIndex(), r.lastIndex()]).toEqual([51, 60]);
    await r.close();
  });

  it("a snapshot from the leader replaces the whole log, also after a restart", async () => {
    const s = await createWalStorage(dir);
    await s.saveReady({
      entries: range(1, 5, 1),
      hardState: { term: 1, vote: "", commit: 3 },
      mustSync: true,
    });
    await s.saveReady({
      snapshot: { metadata: { index: 4, term: 3, voters: ["a", "b", "c"] }, data: new Uint8Array([7]) },
      entries: [],
      hardState: { term: 3, vote: "", commit: 4 },
      mustSync: true,
    });
    expect([s.firstIndex(), s.lastIndex(), s.term(4)]).toEqual([5, 4, 3]);
    await s.saveReady({ entries: range(5, 6, 3), mustSync: true });
    await s.close();
    const r = await createWalStorage(dir);
    expect([r.firstIndex(), r.lastIndex(), r.term(4), r.term(5)]).toEqual([5, 6, 3, 3]);
    expect(r.initialState().hardState.commit).toBe(4);
    await r.close();
  });
});
