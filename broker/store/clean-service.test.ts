import { readdirSync, readlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  bodyId,
  STORE_HOST,
  smallStoreConfig,
  tempDir,
  testMessage,
} from "../../test/fixtures/store-fixtures.ts";
import { parseDeleteWhen } from "./clean-service.ts";
import type { MessageStoreConfig } from "./config.ts";
import { createMessageStore, type MessageStore } from "./message-store.ts";
import { type FileIo, nodeFileIo } from "./store-io.ts";

const HOUR = 3600_000;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Env {
  store: MessageStore;
  dir: string;
  clock: { now: number };
  disk: { used: number };
}

async function openWithClock(overrides: Partial<MessageStoreConfig> = {}): Promise<Env> {
  const t = tempDir("retention");
  cleanups.push(t.remove);
  const clock = { now: Date.now() };
  const disk = { used: 40 };
  const store = await createMessageStore(
    smallStoreConfig(t.dir, { mappedFileSizeConsumeQueue: 16 * 20, ...overrides }),
    { storeHost: STORE_HOST, clock: () => clock.now, diskUsedPercent: async () => disk.used },
  );
  cleanups.push(() => store.shutdown());
  return { store, dir: t.dir, clock, disk };
}

async function fill(store: MessageStore, n: number): Promise<void> {
  await store.putMessages(
    Array.from({ length: n }, (_, i) => testMessage({ id: i, queueId: i % 2, size: 4000, keys: `k${i}` })),
  );
  await store.flush();
}

const segments = (dir: string) => readdirSync(join(dir, "commitlog")).sort();

describe("retention", () => {
  it("deletes CommitLog segments older than fileReservedTime (never the newest), then ConsumeQueue files below the new min", async () => {
    const { store, dir, clock } = await openWithClock({ fileReservedTime: 72 });
    await fill(store, 80); // about 5 segments
    const before = segments(dir);
    expect(before.length).toBeGreaterThanOrEqual(5);
    // Young files stay.
    expect((await store.cleanNow()).commitLogFilesDeleted).toBe(0);
    expect(segments(dir)).toEqual(before);
    // 73 hours later they have expired; the newest segment is kept whatever its age.
    clock.now += 73 * HOUR;
    const report = await store.cleanNow();
    expect(report.commitLogFilesDeleted).toBe(before.length - 1);
    expect(segments(dir)).toEqual([before.at(-1)]);
    expect(store.getMinPhyOffset()).toBe(Number(before.at(-1)));
    expect(report.consumeQueueFilesDeleted).toBeGreaterThan(0);
    // Queues now start at the first message whose record still exists; a read below moves up to it.
    for (const q of [0, 1]) {
      const min = store.getMinOffsetInQueue("TopicTest", q);
      expect(min).toBeGreaterThan(0);
      const r = await store.getMessage("TopicTest", q, 0, 1);
      expect(r.messages[0]?.queueOffset).toBe(min);
      expect(r.messages[0]?.commitLogOffset).toBeGreaterThanOrEqual(store.getMinPhyOffset());
    }
    // Lookups of deleted records find nothing rather than failing.
    expect(await store.lookMessageByOffset(0)).toBeUndefined();
    expect(await store.queryMessageByKey("TopicTest", "k0", 5, 0, Number.MAX_SAFE_INTEGER)).toEqual([]);
  });

  it("honours deleteFileBatchMax per run", async () => {
    const { store, dir, clock } = await openWithClock({ deleteFileBatchMax: 2 });
    await fill(store, 80);
    const n = segments(dir).length;
    clock.now += 100 * HOUR;
    expect((await store.cleanNow()).commitLogFilesDeleted).toBe(2);
    expect(segments(dir)).toHaveLength(n - 2);
  });

  it("the periodic run deletes only at the deleteWhen hours", async () => {
    const t0 = new Date();
    t0.setHours(3, 30, 0, 0);
    const { store, dir, clock } = await openWithClock({ deleteWhen: "04;05", cleanResourceInterval: 20 });
    await fill(store, 80);
    const n = segments(dir).length;
    // 03:30, four days on: the files have expired, but it is not a deleteWhen hour.
    clock.now = t0.getTime() + 4 * 24 * HOUR;
    await new Promise((r) => setTimeout(r, 150));
    expect(segments(dir)).toHaveLength(n);
    clock.now += HOUR; // 04:30
    for (let i = 0; i < 100 && segments(dir).length > 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(segments(dir)).toHaveLength(1);
    expect(parseDeleteWhen("04;5;x;24")).toEqual(new Set([4, 5]));
  });

  it("above the warning ratio the store refuses writes and deletes regardless of age; below it writes resume", async () => {
    const { store, dir, disk } = await openWithClock();
    await fill(store, 80);
    const n = segments(dir).length;
    disk.used = 95;
    const full = await store.cleanNow();
    expect(full.diskFull).toBe(true);
    expect(full.forced).toBe(true);
    expect(full.commitLogFilesDeleted).toBe(n - 1); // young files went: the disk comes first
    expect(store.isWritable()).toBe(false);
    await expect(store.putMessage(testMessage({ id: 1 }))).rejects.toMatchObject({ code: "STORE_DISK_FULL" });
    disk.used = 50;
    expect((await store.cleanNow()).diskFull).toBe(false);
    const r = await store.putMessage(testMessage({ id: 999, queueId: 0 }));
    const got = await store.getMessage("TopicTest", 0, r.queueOffset, 1);
    expect(bodyId(got.messages[0]?.body ?? new Uint8Array())).toBe(999);
  });

  it("never deletes what is not yet synced", async () => {
    const t = tempDir("retention-unsynced");
    cleanups.push(t.remove);
    const clock = { now: Date.now() };
    const commitLogDir = join(t.dir, "commitlog");
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let gated = false;
    const io: FileIo = {
      ...nodeFileIo,
      async fdatasync(fd) {
        if (gated && dirname(readlinkSync(`/proc/self/fd/${fd}`)) === commitLogDir) await gate;
        return nodeFileIo.fdatasync(fd);
      },
    };
    const store = await createMessageStore(smallStoreConfig(t.dir), {
      storeHost: STORE_HOST,
      clock: () => clock.now,
      fileIo: io,
    });
    cleanups.push(() => store.shutdown());
    gated = true;
    await store.putMessages(Array.from({ length: 80 }, (_, i) => testMessage({ id: i, size: 4000 })));
    const n = segments(t.dir).length;
    clock.now += 100 * HOUR;
    // Nothing is synced yet, so nothing may go however old it is.
    expect((await store.cleanNow()).commitLogFilesDeleted).toBe(0);
    expect(segments(t.dir)).toHaveLength(n);
    release();
    await store.flush();
    expect((await store.cleanNow()).commitLogFilesDeleted).toBe(n - 1);
  });
});
