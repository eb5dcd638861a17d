import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isRmqError } from "../../common/errors.ts";
import { type Entry, EntryType, type HardState } from "../types.ts";
import { encodeRecords, RecordType, scanRecords } from "./record.ts";
import { decodeSnapshotFile, encodeSnapshotFile } from "./snapshot-file.ts";
import { createRaftWal } from "./wal.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "raft-wal-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function entry(index: number, term: number, size = 40): Entry {
  const data = Buffer.alloc(size, `${index}/${term};`);
  return { index, term, type: index % 7 === 0 ? EntryType.Noop : EntryType.Normal, data };
}
function range(first: number, last: number, term: number, size?: number): Entry[] {
  const out: Entry[] = [];
  for (let i = first; i <= last; i++) out.push(entry(i, term, size));
  return out;
}
/** Comparable form (data as Buffer, so views and copies compare equal). */
function plain(entries: Entry[]) {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: Buffer.from(e.data) }));
}
const hs = (term: number, vote: string, commit: number): HardState => ({ term, vote, commit });

describe("record framing", () => {
  it("round-trips every record type and stops at damage", () => {
    const records = [
      { type: RecordType.Entry, entry: entry(1, 1) },
      { type: RecordType.HardState, hardState: hs(3, "n2", 1) },
      { type: RecordType.HardState, hardState: hs(4, "", 0) },
      { type: RecordType.Truncate, fromIndex: 2 ** 40 },
      {
        type: RecordType.Entry,
        entry: { index: 2 ** 52, term: 2 ** 33, type: EntryType.Noop, data: new Uint8Array() },
      },
    ] as const;
    const buf = encodeRecords(records);
    const scan = scanRecords(buf);
    expect(scan.damage).toBeUndefined();
    expect(scan.validBytes).toBe(buf.length);
    expect(
      scan.records.map((r) =>
        r.record.type === RecordType.Entry ? { ...r.record, entry: plain([r.record.entry])[0] } : r.record,
      ),
    ).toEqual(records.map((r) => (r.type === RecordType.Entry ? { ...r, entry: plain([r.entry])[0] } : r)));
    expect(scanRecords(buf.subarray(0, buf.length - 1)).damage).toBe("partial-record");
    expect(scanRecords(buf.subarray(0, 5)).damage).toBe("partial-header");
    const flipped = Buffer.from(buf);
    flipped[20] = (flipped[20] as number) ^ 0x40;
    expect(scanRecords(flipped)).toMatchObject({ damage: "bad-crc", validBytes: 0, records: [] });
  });
});

describe("RaftWal", () => {
  it("round-trips entries and hard state across a restart, rolling segments named by first index", async () => {
    const a = await createRaftWal(dir, { segmentBytes: 1024 });
    expect(a).toMatchObject({ hardState: undefined, snapshot: undefined, entries: [], tornTail: undefined });
    const written: Entry[] = [];
    for (let b = 0; b < 12; b++) {
      const batch = range(b * 5 + 1, b * 5 + 5, 1 + Math.floor(b / 4));
      written.push(...batch);
      await a.wal.append(batch, hs(1 + Math.floor(b / 4), "n1", b * 5));
    }
    expect(a.wal.lastIndex).toBe(60);
    const segs = a.wal.segments();
    expect(segs.length).toBeGreaterThan(3);
    expect(segs[0]?.firstIndex).toBe(1);
    for (const s of segs)
      expect(s.file).toMatch(new RegExp(`-${String(s.firstIndex).padStart(20, "0")}\\.wal$`));
    await a.wal.close();

    const b = await createRaftWal(dir, { segmentBytes: 1024 });
    expect(plain(b.entries)).toEqual(plain(written));
    expect(b.hardState).toEqual(hs(3, "n1", 55));
    expect(b.tornTail).toBeUndefined();
    expect(b.wal.lastIndex).toBe(60);
    // It keeps working after the restart.
    await b.wal.append(range(61, 62, 3), hs(3, "n1", 60));
    await b.wal.close();
    const c = await createRaftWal(dir);
    expect(c.entries.map((e) => e.index)).toEqual(range(1, 62, 0).map((e) => e.index));
    expect(c.hardState).toEqual(hs(3, "n1", 60));
    await c.wal.close();
  });

  it("hard state alone, and the latest hard state wins", async () => {
    const { wal } = await createRaftWal(dir);
    await wal.append([], hs(1, "", 0));
    await wal.append([], hs(2, "n3", 0));
    await wal.append(range(1, 3, 2));
    await wal.close();
    const r = await createRaftWal(dir);
    expect(r.hardState).toEqual(hs(2, "n3", 0));
    expect(r.entries.length).toBe(3);
    await r.wal.close();
  });

  it("replaces a conflicting suffix, by append at a lower index and by truncate", async () => {
    const { wal } = await createRaftWal(dir, { segmentBytes: 600 });
    await wal.append(range(1, 10, 1));
    await wal.append(range(6, 8, 2)); // entries 6..10 (term 1) are replaced by 6..8 (term 2)
    expect(wal.lastIndex).toBe(8);
    await wal.truncate(8);
    expect(wal.lastIndex).toBe(7);
    await wal.append(range(8, 9, 3));
    await wal.truncate(100); // beyond the end: nothing to do
    await wal.close();
    const r = await createRaftWal(dir, { segmentBytes: 600 });
    expect(plain(r.entries)).toEqual(plain([...range(1, 5, 1), ...range(6, 7, 2), ...range(8, 9, 3)]));
    await r.wal.close();
  });

  it("refuses gaps, non-contiguous batches and writes below the snapshot, and stays usable", async () => {
    const { wal } = await createRaftWal(dir);
    await wal.append(range(1, 3, 1));
    const refused = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRmqError(err, "ILLEGAL_ARGUMENT")).toBe(true);
    };
    await refused(wal.append(range(5, 6, 1)));
    await refused(wal.append([entry(4, 1), entry(6, 1)]));
    await wal.saveSnapshot({ metadata: { index: 2, term: 1, voters: ["n1"] }, data: new Uint8Array([1]) });
    await refused(wal.append(range(2, 4, 2)));
    await refused(wal.truncate(2));
    await refused(wal.compact(3));
    await wal.append(range(4, 4, 1));
    await wal.close();
    const r = await createRaftWal(dir);
    expect(r.entries.map((e) => e.index)).toEqual([3, 4]);
    expect(r.snapshot?.metadata).toEqual({ index: 2, term: 1, voters: ["n1"] });
    await r.wal.close();
    await expect(r.wal.append(range(5, 5, 1))).rejects.toThrow(/closed/);
  });

  it("serialises concurrent calls in call order", async () => {
    const { wal } = await createRaftWal(dir, { segmentBytes: 2048 });
    const pending: Promise<void>[] = [];
    for (let i = 1; i <= 40; i++) pending.push(wal.append([entry(i, 1)], hs(1, "n1", i - 1)));
    await Promise.all(pending);
    await wal.close();
    const r = await createRaftWal(dir);
    expect(r.entries.map((e) => e.index)).toEqual(range(1, 40, 1).map((e) => e.index));
    expect(r.hardState).toEqual(hs(1, "n1", 39));
    await r.wal.close();
  });

  it("compaction drops whole old segments, keeps the hard state and everything after the snapshot", async () => {
    const { wal } = await createRaftWal(dir, { segmentBytes: 500 });
    await wal.append([], hs(7, "n2", 0)); // written once, long before the compaction point
    for (let i = 1; i <= 100; i += 5) await wal.append(range(i, i + 4, 7));
    const before = wal.segments();
    expect(before.length).toBeGreaterThan(8);
    await wal.saveSnapshot({
      metadata: { index: 62, term: 7, voters: ["n1", "n2", "n3"] },
      data: Buffer.from("state@62"),
    });
    const removed = await wal.compact(62);
    const after = wal.segments();
    expect(removed).toBe(before.length - after.length);
    expect(removed).toBeGreaterThan(4);
    // The first kept segment starts at or before 63; every dropped one ended before it.
    expect(after[0]?.firstIndex).toBeLessThanOrEqual(63);
    expect(readdirSync(join(dir, "wal")).sort()).toEqual(after.map((s) => s.file).sort());
    await wal.close();

    const r = await createRaftWal(dir, { segmentBytes: 500 });
    expect(r.hardState).toEqual(hs(7, "n2", 0));
    expect(r.snapshot?.metadata.index).toBe(62);
    expect(Buffer.from(r.snapshot?.data ?? []).toString()).toBe("state@62");
    expect(plain(r.entries)).toEqual(plain(range(63, 100, 7)));
    await r.wal.close();
  });

  it("entries rewritten after the snapshot point never resurface after compaction", async () => {
    // One big segment: 1..60 (term 1), then 55..58 rewritten (term 2): 59 and 60 are gone.
    const { wal } = await createRaftWal(dir, { segmentBytes: 1 << 20 });
    await wal.append(range(1, 60, 1, 8));
    await wal.append(range(55, 58, 2, 8));
    await wal.saveSnapshot({ metadata: { index: 58, term: 2, voters: ["n1"] }, data: Buffer.from("s") });
    await wal.compact(58);
    await wal.close();
    const r = await createRaftWal(dir);
    expect(r.entries).toEqual([]);
    expect(r.wal.lastIndex).toBe(58);
    await r.wal.append(range(59, 59, 2));
    await r.wal.close();
    const r2 = await createRaftWal(dir);
    expect(plain(r2.entries)).toEqual(plain(range(59, 59, 2)));
    await r2.wal.close();
  });

  it("compaction with rewritten suffixes across segments keeps exactly the live log", async () => {
    const { wal } = await createRaftWal(dir, { segmentBytes: 300 });
    for (let i = 1; i <= 40; i += 4) await wal.append(range(i, i + 3, 1, 20));
    await wal.append(range(30, 33, 2, 20)); // rolls (active is full): a segment whose first entry is 30
    await wal.append(range(34, 36, 2, 20));
    await wal.saveSnapshot({ metadata: { index: 31, term: 2, voters: ["n1"] }, data: Buffer.from("s") });
    expect(await wal.compact(31)).toBeGreaterThan(0);
    await wal.close();
    const r = await createRaftWal(dir, { segmentBytes: 300 });
    expect(plain(r.entries)).toEqual(plain(range(32, 36, 2, 20)));
    await r.wal.close();
  });

  it("a snapshot beyond the log moves the next index past it", async () => {
    const { wal } = await createRaftWal(dir);
    await wal.append(range(1, 5, 1));
    await wal.saveSnapshot({
      metadata: { index: 50, term: 4, voters: ["n1"] },
      data: Buffer.from("leader's"),
    });
    expect(wal.lastIndex).toBe(50);
    await wal.append(range(51, 52, 4));
    await wal.compact(50);
    await wal.close();
    const r = await createRaftWal(dir);
    expect(r.snapshot?.metadata.index).toBe(50);
    expect(r.entries.map((e) => e.index)).toEqual([51, 52]);
    await r.wal.close();
  });

  it("snapshot files are atomic, CRC-checked, pruned to two, and a damaged newest one falls back", async () => {
    const { wal } = await createRaftWal(dir);
    await wal.append(range(1, 30, 1));
    for (const index of [10, 20, 30]) {
      await wal.saveSnapshot({
        metadata: { index, term: 1, voters: ["a", "b"] },
        data: Buffer.from(`s${index}`),
      });
    }
    await wal.close();
    const snapDir = join(dir, "snap");
    const files = readdirSync(snapDir).sort();
    expect(files).toEqual([
      `${"20".padStart(20, "0")}-${"1".padStart(20, "0")}.snap`,
      `${"30".padStart(20, "0")}-${"1".padStart(20, "0")}.snap`,
    ]);
    // A leftover temp file from a crash mid-write is ignored and removed.
    writeFileSync(join(snapDir, "x.snap.tmp"), "partial");
    const newest = join(snapDir, files[1] as string);
    const bytes = readFileSync(newest);
    bytes[bytes.length - 6] = (bytes[bytes.length - 6] as number) ^ 1;
    writeFileSync(newest, bytes);
    const r = await createRaftWal(dir);
    expect(r.snapshot?.metadata.index).toBe(20);
    expect(r.skippedSnapshots.map((s) => s.file)).toEqual([files[1]]);
    expect(r.entries[0]?.index).toBe(21);
    expect(readdirSync(snapDir).some((n) => n.endsWith(".tmp"))).toBe(false);
    await r.wal.close();

    const snap = { metadata: { index: 3, term: 2, voters: ["n1"] }, data: Buffer.from([0, 1, 2]) };
    const decoded = decodeSnapshotFile(encodeSnapshotFile(snap));
    expect({ ...decoded, data: Buffer.from(decoded.data) }).toEqual(snap);
  });

  it("damage before the last segment is corruption, not a torn tail", async () => {
    const { wal } = await createRaftWal(dir, { segmentBytes: 300 });
    for (let i = 1; i <= 30; i += 3) await wal.append(range(i, i + 2, 1, 30));
    const first = wal.segments()[0]?.file as string;
    await wal.close();
    const path = join(dir, "wal", first);
    const bytes = readFileSync(path);
    bytes[30] = (bytes[30] as number) ^ 0xff;
    writeFileSync(path, bytes);
    await expect(createRaftWal(dir)).rejects.toThrow(/damaged/);
  });
});

const hasStrace = spawnSync("strace", ["-V"]).status === 0;

describe("RaftWal system calls", () => {
  it.skipIf(!hasStrace)("an append is one write and one fdatasync, hard state included", () => {
    const walModule = fileURLToPath(new URL("./wal.ts", import.meta.url));
    const script = join(dir, "appender.ts");
    writeFileSync(
      script,
      `import { writeSync } from "node:fs";
import { createRaftWal } from ${JSON.stringify(walModule)};
const { wal } = await createRaftWal(${JSON.stringify(join(dir, "log"))}, { segmentBytes: 1 << 20 });
await wal.append([{ index: 1, term: 1, type: 0, data: new Uint8Array(8) }]);
writeSync(2, "MARK-BEGIN\\n");
for (let i = 2; i <= 9; i++) {
  const batch = [0, 1, 2].map((k) => ({ index: i * 3 + k - 4, term: 1, type: 0, data: new Uint8Array(100) }));
  await wal.append(batch, { term: 1, vote: "n1", commit: i });
}
writeSync(2, "MARK-END\\n");
await wal.close();
`,
    );
    const trace = join(dir, "strace.out");
    const r = spawnSync("strace", [
      "-f",
      "-o",
      trace,
      "-e",
      "trace=write,pwrite64,pwritev,pwritev2,writev,fdatasync,fsync",
      process.execPath,
      script,
    ]);
    expect(r.status, r.stderr.toString()).toBe(0);
    const lines = readFileSync(trace, "utf8").split("\n");
    const begin = lines.findIndex((l) => l.includes("MARK-BEGIN"));
    const end = lines.findIndex((l) => l.includes("MARK-END"));
    const calls = lines
      .slice(begin + 1, end)
      .map((l) => /\b(write|pwrite64|pwritev2?|writev|fdatasync|fsync)\((\d+)/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null && m[2] !== "2");
    const syncs = calls.filter((m) => m[1] === "fdatasync");
    expect(syncs.length).toBe(8);
    // Writes to the segment file (the fd that is fdatasync'ed; libuv's own wake-up writes go elsewhere).
    const segmentFd = syncs[0]?.[2];
    expect(calls.filter((m) => m[2] === segmentFd && m[1] !== "fdatasync").length).toBe(8);
    expect(calls.filter((m) => m[1] === "fsync").length).toBe(0);
  });
});
