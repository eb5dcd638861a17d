import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DispatchRequest } from "../dispatch.ts";
import { CHECKPOINT_SUFFIX, checkpointDirFor } from "./index-checkpoint.ts";
import { indexKeyHash, indexKeyHashOf, javaStringHashCode, javaStringHashCodeFrom } from "./index-file.ts";
import { createIndexService, type DefaultIndexService, openIndexService } from "./index-service.ts";

const BASE_TS = Date.UTC(2024, 0, 1, 12, 0, 0);
const RECORD_SIZE = 100;
const TOPIC = "TopicTest";

function req(
  i: number,
  opts: { keys?: string; uniqKey?: string | null; ts?: number; sysFlag?: number; topic?: string } = {},
): DispatchRequest {
  return {
    topic: opts.topic ?? TOPIC,
    queueId: 0,
    queueOffset: i,
    commitLogOffset: i * RECORD_SIZE,
    size: RECORD_SIZE,
    tagsCode: 0,
    storeTimestamp: opts.ts ?? BASE_TS + i * 1000,
    bornTimestamp: opts.ts ?? BASE_TS + i * 1000,
    sysFlag: opts.sysFlag ?? 0,
    keys: opts.keys,
    uniqKey: opts.uniqKey === null ? undefined : (opts.uniqKey ?? `UNIQ${i}`),
    preparedTransactionOffset: 0,
    properties: new Map(),
  };
}

const ALL_TIME: [number, number] = [0, Number.MAX_SAFE_INTEGER];
const off = (i: number) => i * RECORD_SIZE;

let root: string;
let dir: string;
const open: DefaultIndexService[] = [];
const ckptOf = (indexDir: string, name: string) =>
  path.join(checkpointDirFor(indexDir), name + CHECKPOINT_SUFFIX);

async function openIdx(opts: { slots?: number; entries?: number; pages?: number; at?: string } = {}) {
  const s = await openIndexService({
    dir: opts.at ?? dir,
    maxHashSlotNum: opts.slots ?? 64,
    maxIndexNum: opts.entries ?? 1000,
    maxCachedPages: opts.pages,
  });
  open.push(s);
  return s;
}

/** A copy of the store as it is on disk right now (what a crash would leave); returns its index dir. */
function crashCopy(): string {
  const copy = path.join(root, `crash-${fs.readdirSync(root).length}`);
  fs.mkdirSync(copy);
  fs.cpSync(dir, path.join(copy, "index"), { recursive: true });
  fs.cpSync(checkpointDirFor(dir), checkpointDirFor(path.join(copy, "index")), { recursive: true });
  return path.join(copy, "index");
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-index-"));
  dir = path.join(root, "index");
});

afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  fs.rmSync(root, { recursive: true, force: true });
});

describe("key hash", () => {
  it("is Java's String.hashCode, made non-negative as upstream", () => {
    expect(javaStringHashCode("hello")).toBe(99162322);
    expect(javaStringHashCode("Aa")).toBe(javaStringHashCode("BB")); // the classic collision
    expect(javaStringHashCode("polygenelubricants")).toBe(-2147483648);
    expect(indexKeyHash("polygenelubricants")).toBe(0);
    expect(indexKeyHash("TopicTest#key-1")).toBe(Math.abs(javaStringHashCode("TopicTest#key-1")));
  });
});

describe("IndexService", () => {
  it("indexes the unique key and every KEYS token; queries return offsets newest first", async () => {
    const idx = await createIndexService({ dir, maxHashSlotNum: 64, maxIndexNum: 1000 });
    open.push(idx as DefaultIndexService);
    for (let i = 0; i < 100; i++) idx.dispatch(req(i, { keys: `k${i % 10} common  shared` }));
    expect(await idx.query(TOPIC, "common", 500, ...ALL_TIME)).toEqual(
      Array.from({ length: 100 }, (_, j) => off(99 - j)),
    );
    expect(await idx.query(TOPIC, "k3", 500, ...ALL_TIME)).toEqual(
      [93, 83, 73, 63, 53, 43, 33, 23, 13, 3].map(off),
    );
    expect(await idx.query(TOPIC, "UNIQ42", 10, ...ALL_TIME)).toEqual([off(42)]);
    expect(await idx.query(TOPIC, "common", 5, ...ALL_TIME)).toEqual([99, 98, 97, 96, 95].map(off));
    expect(await idx.query("OtherTopic", "common", 10, ...ALL_TIME)).toEqual([]);
    expect(await idx.query(TOPIC, "", 10, ...ALL_TIME)).toEqual([]);
  });

  it("keeps colliding keys apart by hash and returns equal-hash keys for the caller to re-check", async () => {
    const idx = await openIdx({ slots: 3 });
    // With 3 slots every chain mixes many keys.
    for (let i = 0; i < 60; i++) idx.dispatch(req(i, { keys: `key${i % 7}`, uniqKey: null }));
    for (let k = 0; k < 7; k++) {
      const expected = Array.from({ length: 60 }, (_, i) => i)
        .filter((i) => i % 7 === k)
        .reverse()
        .map(off);
      expect(await idx.query(TOPIC, `key${k}`, 100, ...ALL_TIME)).toEqual(expected);
    }
    // "Aa" and "BB" share a Java hash: the index cannot tell them apart; both come back.
    idx.dispatch(req(60, { keys: "Aa", uniqKey: null }));
    idx.dispatch(req(61, { keys: "BB", uniqKey: null }));
    expect(await idx.query(TOPIC, "Aa", 10, ...ALL_TIME)).toEqual([off(61), off(60)]);
    expect(await idx.query(TOPIC, "BB", 10, ...ALL_TIME)).toEqual([off(61), off(60)]);
  });

  it("does not index ROLLBACK transaction records, but does index prepared and committed ones", async () => {
    const idx = await openIdx();
    idx.dispatch(req(0, { keys: "tx", sysFlag: 0x4 })); // prepared
    idx.dispatch(req(1, { keys: "tx", sysFlag: 0x8 })); // commit
    idx.dispatch(req(2, { keys: "tx", sysFlag: 0xc })); // rollback
    idx.dispatch(req(3, { keys: "tx", sysFlag: 0x1 | 0x8 })); // commit with another flag bit set
    expect(await idx.query(TOPIC, "tx", 10, ...ALL_TIME)).toEqual([off(3), off(1), off(0)]);
    expect(await idx.query(TOPIC, "UNIQ2", 10, ...ALL_TIME)).toEqual([]);
  });

  it("skips records dispatched again below what it already indexed", async () => {
    const idx = await openIdx();
    for (let i = 0; i < 5; i++) idx.dispatch(req(i, { keys: "again" }));
    for (let i = 0; i < 5; i++) idx.dispatch(req(i, { keys: "again" }));
    expect(await idx.query(TOPIC, "again", 100, ...ALL_TIME)).toEqual([4, 3, 2, 1, 0].map(off));
  });

  it("rolls to new files named by creation time when one is full, and queries across them", async () => {
    const idx = await openIdx({ slots: 5, entries: 10 }); // 9 entries per file
    for (let i = 0; i < 50; i++) idx.dispatch(req(i, { keys: `even${i % 2}`, uniqKey: null }));
    await idx.flush();
    const names = idx.fileNames();
    expect(names.length).toBe(6);
    expect(names.every((n) => /^\d{17}$/.test(n))).toBe(true);
    expect([...names].sort()).toEqual(names);
    expect(fs.readdirSync(dir).sort()).toEqual(names); // only upstream-format files in the index dir
    expect(fs.readdirSync(checkpointDirFor(dir)).sort()).toEqual(names.map((n) => n + CHECKPOINT_SUFFIX));
    const size = fs.statSync(path.join(dir, names[0] as string)).size;
    expect(size).toBe(40 + 5 * 4 + 10 * 20); // upstream layout: header + slots + entries
    const evens = Array.from({ length: 25 }, (_, j) => off(48 - 2 * j));
    expect(await idx.query(TOPIC, "even0", 100, ...ALL_TIME)).toEqual(evens);
    expect(await idx.query(TOPIC, "even0", 7, ...ALL_TIME)).toEqual(evens.slice(0, 7));
  });

  it("writes upstream's header: timestamps, phy offsets, slot count, indexCount from 1", async () => {
    const idx = await openIdx({ slots: 16, entries: 100 });
    for (let i = 1; i <= 3; i++) idx.dispatch(req(i, { keys: "h", uniqKey: null }));
    await idx.flush();
    const buf = fs.readFileSync(path.join(dir, idx.fileNames()[0] as string));
    expect(Number(buf.readBigInt64BE(0))).toBe(BASE_TS + 1000);
    expect(Number(buf.readBigInt64BE(8))).toBe(BASE_TS + 3000);
    expect(Number(buf.readBigInt64BE(16))).toBe(off(1));
    expect(Number(buf.readBigInt64BE(24))).toBe(off(3));
    expect(buf.readInt32BE(32)).toBe(1); // one slot used
    expect(buf.readInt32BE(36)).toBe(4); // three entries, counting from 1
    const slot = indexKeyHash(`${TOPIC}#h`) % 16;
    expect(buf.readInt32BE(40 + slot * 4)).toBe(3); // the newest entry heads the chain
    const entry3 = 40 + 16 * 4 + 3 * 20;
    expect(buf.readInt32BE(entry3)).toBe(indexKeyHash(`${TOPIC}#h`));
    expect(Number(buf.readBigInt64BE(entry3 + 4))).toBe(off(3));
    expect(buf.readInt32BE(entry3 + 12)).toBe(2); // seconds since beginTimestamp
    expect(buf.readInt32BE(entry3 + 16)).toBe(2); // previous entry of the chain
  });

  it("filters by store time (second resolution, as upstream) across files", async () => {
    const idx = await openIdx({ slots: 7, entries: 12 });
    for (let i = 0; i < 40; i++) idx.dispatch(req(i, { keys: "t", uniqKey: null }));
    const inRange = await idx.query(TOPIC, "t", 100, BASE_TS + 10_000, BASE_TS + 20_000);
    expect(inRange).toEqual(Array.from({ length: 11 }, (_, j) => off(20 - j)));
    expect(await idx.query(TOPIC, "t", 100, BASE_TS + 100_000, BASE_TS + 200_000)).toEqual([]);
    expect(await idx.query(TOPIC, "t", 100, 0, BASE_TS - 1)).toEqual([]);
  });

  it("truncate forgets records at/after the offset, durably, and indexes what is written next", async () => {
    const idx = await openIdx({ slots: 5, entries: 8 });
    for (let i = 0; i < 30; i++) idx.dispatch(req(i, { keys: `a${i % 3} all` }));
    await idx.flush();
    expect(idx.durableMaxPhyOffset).toBe(off(30));
    await idx.truncate(off(17));
    expect(idx.durableMaxPhyOffset).toBe(off(17));
    const before17 = Array.from({ length: 17 }, (_, j) => off(16 - j));
    expect(await idx.query(TOPIC, "all", 100, ...ALL_TIME)).toEqual(before17);
    expect(await idx.query(TOPIC, "UNIQ20", 10, ...ALL_TIME)).toEqual([]);
    // The CommitLog now writes different records at the same offsets.
    for (let i = 17; i < 25; i++) idx.dispatch(req(i, { keys: "rewritten all", uniqKey: `NEW${i}` }));
    expect(await idx.query(TOPIC, "all", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 25 }, (_, j) => off(24 - j)),
    );
    expect(await idx.query(TOPIC, "NEW20", 10, ...ALL_TIME)).toEqual([off(20)]);
    await idx.close();
    const again = await openIdx({ slots: 5, entries: 8 });
    expect(again.durableMaxPhyOffset).toBe(off(25));
    expect(await again.query(TOPIC, "rewritten", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 8 }, (_, j) => off(24 - j)),
    );
    expect(await again.query(TOPIC, "a1", 100, ...ALL_TIME)).toEqual([16, 13, 10, 7, 4, 1].map(off));
    expect(await again.query(TOPIC, "UNIQ20", 10, ...ALL_TIME)).toEqual([]);
  });

  it("truncate at a file boundary reactivates the full file before it, which then rolls again", async () => {
    const idx = await openIdx({ slots: 5, entries: 8 }); // 7 entries per file: files start at records 0, 7, 14, 21
    for (let i = 0; i < 25; i++) idx.dispatch(req(i, { keys: "b", uniqKey: null }));
    await idx.flush();
    expect(idx.stats().files).toBe(4);
    await idx.truncate(off(14));
    expect(idx.stats().files).toBe(2);
    expect(fs.readdirSync(dir).length).toBe(2);
    expect(fs.readdirSync(checkpointDirFor(dir)).length).toBe(2);
    for (let i = 14; i < 20; i++) idx.dispatch(req(i, { keys: "b", uniqKey: null }));
    await idx.close();
    const again = await openIdx({ slots: 5, entries: 8 });
    expect(again.stats().files).toBe(3);
    expect(await again.query(TOPIC, "b", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 20 }, (_, j) => off(19 - j)),
    );
  });

  it("truncate below everything leaves an empty index", async () => {
    const idx = await openIdx({ slots: 5, entries: 8 });
    for (let i = 10; i < 30; i++) idx.dispatch(req(i, { keys: "x" }));
    await idx.flush();
    await idx.truncate(off(5));
    expect(await idx.query(TOPIC, "x", 100, ...ALL_TIME)).toEqual([]);
    expect(idx.durableMaxPhyOffset).toBe(off(5));
    await idx.close();
    const again = await openIdx({ slots: 5, entries: 8 });
    expect(again.durableMaxPhyOffset).toBeLessThanOrEqual(off(5));
    expect(await again.query(TOPIC, "x", 100, ...ALL_TIME)).toEqual([]);
  });

  it("deleteExpired removes whole files below the CommitLog min offset, never the last one", async () => {
    const idx = await openIdx({ slots: 5, entries: 10 });
    for (let i = 0; i < 45; i++) idx.dispatch(req(i, { keys: "d", uniqKey: null })); // 9 per file: 5 files
    await idx.flush();
    expect(idx.stats().files).toBe(5);
    const [first, second] = idx.fileNames();
    // Files end at records 8, 17, 26, 35, 44: a min offset of record 18 frees the first two.
    expect(await idx.deleteExpired(off(18))).toBe(2);
    expect(idx.stats().files).toBe(3);
    expect(fs.existsSync(path.join(dir, first as string))).toBe(false);
    expect(fs.existsSync(ckptOf(dir, second as string))).toBe(false);
    expect(await idx.query(TOPIC, "d", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 27 }, (_, j) => off(44 - j)),
    );
    expect(await idx.deleteExpired(off(1000))).toBe(2);
    expect(idx.stats().files).toBe(1);
  });

  it("reopens after a flush with everything queryable and keeps appending to the same chains", async () => {
    const idx = await openIdx({ slots: 16, entries: 100 });
    for (let i = 0; i < 20; i++) idx.dispatch(req(i, { keys: `r${i % 4}` }));
    await idx.close();
    const again = await openIdx({ slots: 16, entries: 100 });
    expect(again.durableMaxPhyOffset).toBe(off(20));
    expect(await again.query(TOPIC, "r1", 100, ...ALL_TIME)).toEqual([17, 13, 9, 5, 1].map(off));
    for (let i = 20; i < 30; i++) again.dispatch(req(i, { keys: `r${i % 4}` }));
    expect(await again.query(TOPIC, "r1", 100, ...ALL_TIME)).toEqual([29, 25, 21, 17, 13, 9, 5, 1].map(off));
    expect(again.fileNames().length).toBe(1);
  });

  it("after a crash, unflushed dispatches are gone, durableMaxPhyOffset says so, and re-dispatch restores them", async () => {
    const idx = await openIdx({ slots: 16, entries: 100 });
    for (let i = 0; i < 20; i++) idx.dispatch(req(i, { keys: `c${i % 4}` }));
    await idx.flush();
    for (let i = 20; i < 35; i++) idx.dispatch(req(i, { keys: `c${i % 4}` })); // only in memory
    const copy = crashCopy();
    const after = await openIdx({ slots: 16, entries: 100, at: copy });
    expect(after.durableMaxPhyOffset).toBe(off(20));
    expect(await after.query(TOPIC, "c1", 100, ...ALL_TIME)).toEqual([17, 13, 9, 5, 1].map(off));
    expect(await after.query(TOPIC, "UNIQ25", 10, ...ALL_TIME)).toEqual([]);
    for (let i = 0; i < 35; i++) after.dispatch(req(i, { keys: `c${i % 4}` })); // recovery re-dispatches
    expect(await after.query(TOPIC, "c1", 100, ...ALL_TIME)).toEqual(
      [33, 29, 25, 21, 17, 13, 9, 5, 1].map(off),
    );
  });

  it("after a crash between writing pages and the checkpoint, repairs slots that point past the checkpoint", async () => {
    const idx = await openIdx({ slots: 16, entries: 100 });
    for (let i = 0; i < 20; i++) idx.dispatch(req(i, { keys: `p${i % 4}` }));
    await idx.flush();
    const name = idx.fileNames()[0] as string;
    const oldCheckpoint = fs.readFileSync(ckptOf(dir, name));
    for (let i = 20; i < 35; i++) idx.dispatch(req(i, { keys: `p${i % 4}` }));
    await idx.flush(); // pages now reference entries 21..35 ...
    const copy = crashCopy();
    // ... but the crash lost the checkpoint written after them (and its twin slot held the old one).
    fs.writeFileSync(ckptOf(copy, name), oldCheckpoint);
    const after = await openIdx({ slots: 16, entries: 100, at: copy });
    expect(after.durableMaxPhyOffset).toBe(off(20));
    // Slots were pointed back at entries that exist: the old chains are whole, the lost tail is not visible.
    expect(await after.query(TOPIC, "p1", 100, ...ALL_TIME)).toEqual([17, 13, 9, 5, 1].map(off));
    expect(await after.query(TOPIC, "p3", 100, ...ALL_TIME)).toEqual([19, 15, 11, 7, 3].map(off));
    for (let i = 20; i < 35; i++) after.dispatch(req(i, { keys: `p${i % 4}` }));
    expect(await after.query(TOPIC, "p1", 100, ...ALL_TIME)).toEqual(
      [33, 29, 25, 21, 17, 13, 9, 5, 1].map(off),
    );
    await after.close();
    const third = await openIdx({ slots: 16, entries: 100, at: copy });
    expect(await third.query(TOPIC, "p2", 100, ...ALL_TIME)).toEqual(
      [34, 30, 26, 22, 18, 14, 10, 6, 2].map(off),
    );
  });

  it("discards a file created but never checkpointed (crash before its first flush finished)", async () => {
    const idx = await openIdx({ slots: 5, entries: 10 });
    for (let i = 0; i < 9; i++) idx.dispatch(req(i, { keys: "n", uniqKey: null }));
    await idx.flush();
    for (let i = 9; i < 14; i++) idx.dispatch(req(i, { keys: "n", uniqKey: null }));
    await idx.flush();
    const copy = crashCopy();
    const newest = idx.fileNames()[1] as string;
    fs.writeFileSync(ckptOf(copy, newest), Buffer.alloc(1024)); // never written
    const after = await openIdx({ slots: 5, entries: 10, at: copy });
    expect(after.fileNames()).toEqual([idx.fileNames()[0]]);
    expect(after.durableMaxPhyOffset).toBe(off(9));
    expect(fs.existsSync(path.join(copy, newest))).toBe(false);
    for (let i = 0; i < 14; i++) after.dispatch(req(i, { keys: "n", uniqKey: null }));
    expect(await after.query(TOPIC, "n", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 14 }, (_, j) => off(13 - j)),
    );
  });

  it("detects garbage index files and rebuilds from the CommitLog instead of crashing", async () => {
    const idx = await openIdx({ slots: 5, entries: 10 });
    for (let i = 0; i < 40; i++) idx.dispatch(req(i, { keys: "g", uniqKey: null }));
    await idx.close();
    const names = fs
      .readdirSync(dir)
      .filter((n) => /^\d{17}$/.test(n))
      .sort();
    expect(names.length).toBe(5);
    // 1) garbage over the second file's header (a sealed file must match its checkpoint)
    const second = path.join(dir, names[1] as string);
    const fd = fs.openSync(second, "r+");
    fs.writeSync(fd, Buffer.from("garbage garbage garbage garbage garbage!"), 0, 40, 0);
    fs.closeSync(fd);
    const after = await openIdx({ slots: 5, entries: 10 });
    expect(after.fileNames()).toEqual([names[0]]);
    expect(after.durableMaxPhyOffset).toBe(off(9)); // record 9 spilled into the discarded second file
    for (let i = 0; i < 40; i++) after.dispatch(req(i, { keys: "g", uniqKey: null }));
    expect(await after.query(TOPIC, "g", 100, ...ALL_TIME)).toEqual(
      Array.from({ length: 40 }, (_, j) => off(39 - j)),
    );
    await after.close();
    // 2) random bytes in every checkpoint and a stray checkpoint: an empty index, no exception
    const ckptDir = checkpointDirFor(dir);
    const noise = Buffer.from(Array.from({ length: 1024 }, (_, k) => (k * 37) & 0xff));
    for (const n of fs.readdirSync(ckptDir)) fs.writeFileSync(path.join(ckptDir, n), noise);
    fs.writeFileSync(ckptOf(dir, "20000101000000000"), "stray");
    const third = await openIdx({ slots: 5, entries: 10 });
    expect(third.fileNames()).toEqual([]);
    expect(third.durableMaxPhyOffset).toBe(0);
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(fs.readdirSync(checkpointDirFor(dir))).toEqual([]);
    third.dispatch(req(0, { keys: "fresh" }));
    expect(await third.query(TOPIC, "fresh", 10, ...ALL_TIME)).toEqual([0]);
  });

  it("discards a file whose size does not match its layout", async () => {
    const idx = await openIdx({ slots: 5, entries: 10 });
    for (let i = 0; i < 5; i++) idx.dispatch(req(i, { keys: "s" }));
    await idx.close();
    const name = fs.readdirSync(dir).find((n) => /^\d{17}$/.test(n)) as string;
    fs.truncateSync(path.join(dir, name), 100);
    const after = await openIdx({ slots: 5, entries: 10 });
    expect(after.fileNames()).toEqual([]);
    expect(after.durableMaxPhyOffset).toBe(0);
  });

  it("keeps resident pages under the limit with a file far larger than the cache", async () => {
    // 20,000 slots (20 pages) + 200,000 entries (~977 pages) per file; the cache holds 32 pages.
    const limit = 32;
    const idx = await openIdx({ slots: 20_000, entries: 200_000, pages: limit });
    const n = 60_000;
    let maxAfterFlush = 0;
    for (let i = 0; i < n; i++) {
      idx.dispatch(req(i, { keys: `m${(i * 7919) % 5000}`, uniqKey: null }));
      if (i % 3000 === 2999) {
        await idx.flush();
        maxAfterFlush = Math.max(maxAfterFlush, idx.stats().cachedPages);
      }
    }
    await idx.flush();
    expect(maxAfterFlush).toBeLessThanOrEqual(limit);
    expect(idx.stats().cachedPages).toBeLessThanOrEqual(limit);
    const fileBytes = fs.statSync(path.join(dir, idx.fileNames()[0] as string)).size;
    expect(fileBytes).toBeGreaterThan(limit * 4096 * 25);
    const expectKey = (k: number) =>
      Array.from({ length: n }, (_, i) => i)
        .filter((i) => (i * 7919) % 5000 === k)
        .reverse()
        .map(off);
    expect(await idx.query(TOPIC, "m123", 1000, ...ALL_TIME)).toEqual(expectKey(123));
    await idx.close();
    // Reopened, every slot page must be read back before entries can be linked: done asynchronously.
    const again = await openIdx({ slots: 20_000, entries: 200_000, pages: limit });
    for (let i = n; i < n + 5000; i++)
      again.dispatch(req(i, { keys: `m${(i * 7919) % 5000}`, uniqKey: null }));
    expect(again.stats().pendingPageReads).toBeGreaterThan(0); // entries waiting for their slot page
    expect(again.stats().cachedPages).toBeLessThanOrEqual(limit + again.stats().dirtyPages);
    const both = Array.from({ length: n + 5000 }, (_, i) => i)
      .filter((i) => (i * 7919) % 5000 === 4321)
      .reverse()
      .map(off);
    expect(await again.query(TOPIC, "m4321", 1000, ...ALL_TIME)).toEqual(both);
    await again.flush();
    expect(again.stats().cachedPages).toBeLessThanOrEqual(limit);
  });

  it("refuses dispatch after close", async () => {
    const idx = await openIdx();
    await idx.close();
    expect(() => idx.dispatch(req(0))).toThrow(/closed/);
    await expect(idx.query(TOPIC, "x", 1, ...ALL_TIME)).rejects.toThrow(/closed/);
  });
});

describe("index key hashing", () => {
  it("hashes topic#key from its parts exactly as from the joined string (property test)", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary" }),
        fc.string({ unit: "binary" }),
        fc.nat(),
        (topic, key, cut) => {
          const prefix = javaStringHashCodeFrom(javaStringHashCode(topic), "#", 0, 1);
          expect(indexKeyHashOf(prefix, key, 0, key.length)).toBe(indexKeyHash(`${topic}#${key}`));
          // A token inside a longer string (how KEYS is split without building substrings).
          const from = key.length === 0 ? 0 : cut % key.length;
          expect(indexKeyHashOf(prefix, key, from, key.length)).toBe(
            indexKeyHash(`${topic}#${key.slice(from)}`),
          );
        },
      ),
      { numRuns: 500 },
    );
    // Integer.MIN_VALUE maps to 0, as upstream's abs.
    expect(indexKeyHash("polygenelubricants")).toBe(0);
    expect(javaStringHashCode("polygenelubricants")).toBe(-2147483648);
  });
});
