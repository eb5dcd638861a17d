import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../../common/errors.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { ConsumerOrderInfoManager, ORDER_INFO_FILE } from "./consumer-order-info.ts";
import { ConsumerOrderJournal, ORDER_JOURNAL_PREFIX } from "./consumer-order-journal.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function dir(): string {
  const t = tempDir("order-journal");
  cleanups.push(t.remove);
  return t.dir;
}

const journals = (d: string) =>
  readdirSync(d)
    .filter((n) => n.startsWith(ORDER_JOURNAL_PREFIX))
    .sort();

describe("ConsumerOrderJournal", () => {
  it("replays what was flushed, in order; the next run writes to a later file", async () => {
    const d = dir();
    const a = new ConsumerOrderJournal(d, false);
    expect(a.replay().records).toEqual([]);
    a.append(["d", "T@G", 0, 5]);
    a.append(["r", "T@G", 1]);
    expect(journals(d)).toEqual([]); // nothing written before flush
    await a.flush();
    a.append(["g", "G"]);
    await a.flush();
    // no close: the process "dies" here
    const b = new ConsumerOrderJournal(d, true);
    const r = b.replay();
    expect(r.records).toEqual([
      ["d", "T@G", 0, 5],
      ["r", "T@G", 1],
      ["g", "G"],
    ]);
    expect(r.tornTail).toBe(false);
    b.append(["d", "T@G", 0, 6]);
    await b.flush(); // SYNC_FLUSH: after an fdatasync
    b.close();
    expect(journals(d)).toEqual([`${ORDER_JOURNAL_PREFIX}1`, `${ORDER_JOURNAL_PREFIX}2`]);
    expect(new ConsumerOrderJournal(d, false).replay().records).toHaveLength(4);
  });

  it("ignores a torn last line, refuses a torn line in an earlier file and an unreadable line", () => {
    const d = dir();
    writeFileSync(join(d, `${ORDER_JOURNAL_PREFIX}1`), '["d","T@G",0,1]\n["d","T@G",0,2]\n');
    writeFileSync(join(d, `${ORDER_JOURNAL_PREFIX}2`), '["d","T@G",0,3]\n["d","T@G",0');
    const r = new ConsumerOrderJournal(d, false).replay();
    expect(r.records.map((x) => x[3])).toEqual([1, 2, 3]);
    expect(r.tornTail).toBe(true);

    writeFileSync(join(d, `${ORDER_JOURNAL_PREFIX}3`), '["d","T@G",0,4]\n');
    expect(() => new ConsumerOrderJournal(d, false).replay()).toThrow(/consumerOrderInfo\.journal\.2/);

    const e = dir();
    writeFileSync(join(e, `${ORDER_JOURNAL_PREFIX}1`), '["d","T@G",-1,4]\n');
    let err: RmqError | undefined;
    try {
      new ConsumerOrderJournal(e, false).replay();
    } catch (x) {
      err = x as RmqError;
    }
    expect(err?.code).toBe(ErrorCode.MetadataCorrupt);
    expect(err?.message).toMatch(/unreadable line/);
  });

  it("rotate starts a new file; dropUpTo deletes only the files a snapshot covers", async () => {
    const d = dir();
    const j = new ConsumerOrderJournal(d, false);
    j.replay();
    j.append(["d", "T@G", 0, 1]);
    await j.flush();
    const upTo = await j.rotate();
    j.append(["d", "T@G", 0, 2]);
    await j.flush();
    expect(journals(d)).toHaveLength(2);
    j.dropUpTo(upTo);
    expect(journals(d)).toEqual([`${ORDER_JOURNAL_PREFIX}${upTo + 1}`]);
    expect(readFileSync(join(d, `${ORDER_JOURNAL_PREFIX}${upTo + 1}`), "utf8")).toBe('["d","T@G",0,2]\n');
    j.close();
  });
});

describe("ConsumerOrderInfoManager with its journal", () => {
  function manager(root: string, persisted: string[] = []): ConsumerOrderInfoManager {
    return new ConsumerOrderInfoManager(root, {
      syncFlush: false,
      persistOffsets: async () => {
        persisted.push("offsets");
      },
    });
  }

  it("restores settled offsets, queue resets and dropped groups from the journal after a crash", async () => {
    const root = dir();
    const m = manager(root);
    await m.load();
    const s0 = m.get("G", "T", 0);
    m.markDone("G", "T", 0, s0, 10);
    m.markDone("G", "T", 0, s0, 12);
    m.markDone("G", "T", 1, m.get("G", "T", 1), 3);
    m.resetQueue("G", "T", 1);
    m.markDone("H", "T", 0, m.get("H", "T", 0), 7);
    m.removeGroup("H");
    await m.flushJournal();
    // crash: no persist, no close
    const again = manager(root);
    const replay = await again.load();
    expect(replay.records).toHaveLength(6);
    expect([...(again.peek("G", "T", 0)?.done ?? [])].sort()).toEqual([10, 12]);
    expect(again.peek("G", "T", 1)?.done.size).toBe(0);
    expect(again.peek("H", "T", 0)).toBeUndefined();
    expect(existsSync(join(root, "config", ORDER_INFO_FILE))).toBe(false);
  });

  it("a snapshot persists the offsets first, then replaces the journals it covers", async () => {
    const root = dir();
    const calls: string[] = [];
    const m = manager(root, calls);
    await m.load();
    m.markDone("G", "T", 0, m.get("G", "T", 0), 4);
    await m.flushJournal();
    await m.persist();
    expect(calls).toEqual(["offsets"]);
    expect(journals(join(root, "config"))).toEqual([]);
    m.markDone("G", "T", 0, m.get("G", "T", 0), 5);
    await m.flushJournal();
    const again = manager(root);
    await again.load();
    expect([...(again.peek("G", "T", 0)?.done ?? [])].sort()).toEqual([4, 5]);
    await m.close();
    expect(journals(join(root, "config"))).toEqual([]);
  });
});
