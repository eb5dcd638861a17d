import { readFileSync, readlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  bodyFor,
  bodyId,
  STORE_HOST,
  smallStoreConfig,
  tempDir,
  testMessage,
} from "../../test/fixtures/store-fixtures.ts";
import { FlushDiskType, type MessageStoreConfig } from "./config.ts";
import { BLANK_MAGIC_CODE, parseRecord } from "./message-codec.ts";
import { createMessageStore, type MessageStore } from "./message-store.ts";
import { GetMessageStatus, PutMessageStatus } from "./message-store-types.ts";
import { type FileIo, nodeFileIo } from "./store-io.ts";

const SEGMENT = 64 * 1024;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function openStore(
  overrides: Partial<MessageStoreConfig> = {},
  fileIo?: FileIo,
): Promise<{ store: MessageStore; dir: string }> {
  const t = tempDir("commitlog");
  cleanups.push(t.remove);
  const store = await createMessageStore(
    smallStoreConfig(t.dir, { messageIndexEnable: false, ...overrides }),
    { storeHost: STORE_HOST, fileIo },
  );
  cleanups.push(() => store.shutdown());
  return { store, dir: t.dir };
}

/** Wraps the real IO and records, for CommitLog files only, what was written and what each fdatasync covered. */
class ObservedIo implements FileIo {
  writevCalls = 0;
  syncCalls = 0;
  syncsDone = 0;
  /** Global CommitLog end of the bytes whose write completed. */
  writtenEnd = 0;
  /** Global CommitLog end covered by a completed fdatasync (it started after those writes completed). */
  syncedEnd = 0;
  syncDelayMs = 0;
  failNextWrite = false;
  private readonly commitLogDir: string;

  constructor(commitLogDir: string) {
    this.commitLogDir = commitLogDir;
  }

  private segmentStart(fd: number): number | undefined {
    const p = readlinkSync(`/proc/self/fd/${fd}`);
    return dirname(p) === this.commitLogDir ? Number(basename(p)) : undefined;
  }

  async writev(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
    const start = this.segmentStart(fd);
    if (start !== undefined) {
      this.writevCalls++;
      if (this.failNextWrite) {
        this.failNextWrite = false;
        throw Object.assign(new Error("EIO: injected write failure"), { code: "EIO" });
      }
    }
    const n = await nodeFileIo.writev(fd, buffers, position);
    if (start !== undefined) this.writtenEnd = Math.max(this.writtenEnd, start + position + n);
    return n;
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return nodeFileIo.read(fd, buf, offset, length, position);
  }

  async fdatasync(fd: number): Promise<void> {
    if (this.segmentStart(fd) === undefined) return nodeFileIo.fdatasync(fd);
    this.syncCalls++;
    const covers = this.writtenEnd;
    if (this.syncDelayMs > 0) await new Promise((r) => setTimeout(r, this.syncDelayMs));
    await nodeFileIo.fdatasync(fd);
    this.syncsDone++;
    this.syncedEnd = Math.max(this.syncedEnd, covers);
  }

  fsync(fd: number): Promise<void> {
    return nodeFileIo.fsync(fd);
  }
}

describe("CommitLog", () => {
  it("rolls to a new segment with a blank marker when a record does not fit", async () => {
    const { store, dir } = await openStore();
    const results = [];
    for (let i = 0; i < 60; i++)
      results.push(await store.putMessage(testMessage({ id: i, size: 3000, queueId: i % 2 })));
    await store.flush();
    // Records never cross a segment: each lies wholly inside one 64 KiB file.
    for (const r of results)
      expect(Math.floor(r.commitLogOffset / SEGMENT)).toBe(
        Math.floor((r.commitLogOffset + r.size - 1) / SEGMENT),
      );
    const firstInSecond = results.find((r) => r.commitLogOffset >= SEGMENT);
    expect(firstInSecond?.commitLogOffset).toBe(SEGMENT);
    const lastInFirst = results.filter((r) => r.commitLogOffset < SEGMENT).at(-1);
    if (lastInFirst === undefined) throw new Error("no record in the first segment");
    const seg0 = readFileSync(join(dir, "commitlog", "00000000000000000000"));
    expect(seg0.length).toBe(SEGMENT);
    const blankAt = lastInFirst.commitLogOffset + lastInFirst.size;
    expect(seg0.readInt32BE(blankAt + 4)).toBe(BLANK_MAGIC_CODE);
    expect(seg0.readInt32BE(blankAt)).toBe(SEGMENT - blankAt);
    expect(
      parseRecord(seg0, blankAt, seg0.length, { verifyCrc: true, segmentRemaining: SEGMENT - blankAt }).kind,
    ).toBe("blank");
    // Every message reads back by queue offset, across the segment boundary.
    for (const q of [0, 1]) {
      const got = await store.getMessage("TopicTest", q, 0, 100);
      expect(got.messages.map((m) => bodyId(m.body))).toEqual(
        results.map((_, i) => i).filter((i) => i % 2 === q),
      );
    }
  });

  it("SYNC_FLUSH group commit: one writev + one fdatasync per group, each put resolves after the fdatasync covering it", async () => {
    const t = tempDir("commitlog-sync");
    cleanups.push(t.remove);
    const io = new ObservedIo(join(t.dir, "commitlog"));
    const store = await createMessageStore(
      smallStoreConfig(t.dir, {
        messageIndexEnable: false,
        flushDiskType: FlushDiskType.SYNC_FLUSH,
        mappedFileSizeCommitLog: 1024 * 1024,
      }),
      { storeHost: STORE_HOST, fileIo: io },
    );
    cleanups.push(() => store.shutdown());
    const w0 = io.writevCalls;
    const s0 = io.syncCalls;
    // Long enough that wave 2 surely arrives while wave 1's fdatasync runs, even on a loaded machine.
    io.syncDelayMs = 300;
    const violations: string[] = [];
    const check = <R extends { commitLogOffset: number; size: number }>(r: R): R => {
      if (r.commitLogOffset + r.size > io.syncedEnd)
        violations.push(`resolved at ${r.commitLogOffset} before sync (${io.syncedEnd})`);
      return r;
    };
    // Wave 1: 50 puts in one tick form one group.
    const wave1 = Array.from({ length: 50 }, (_, i) =>
      store.putMessage(testMessage({ id: i, queueId: i % 3 })).then(check),
    );
    // Wave 2 arrives while wave 1's fdatasync is running: it must wait for the next one.
    const deadline = Date.now() + 5000;
    while (io.syncCalls - s0 < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(io.syncCalls - s0).toBe(1);
    expect(io.syncsDone).toBe(s0);
    const wave2 = Array.from({ length: 50 }, (_, i) =>
      store.putMessage(testMessage({ id: 50 + i, queueId: i % 3 })).then(check),
    );
    const all = await Promise.all([...wave1, ...wave2]);
    expect(violations).toEqual([]);
    expect(all.every((r) => r.status === PutMessageStatus.PUT_OK)).toBe(true);
    expect(io.writevCalls - w0).toBe(2);
    expect(io.syncCalls - s0).toBe(2);
    // Confirmed means synced in SYNC_FLUSH: everything is visible now.
    expect(store.getConfirmOffset()).toBe(store.getMaxPhyOffset());
    expect(
      store.getMaxOffsetInQueue("TopicTest", 0) +
        store.getMaxOffsetInQueue("TopicTest", 1) +
        store.getMaxOffsetInQueue("TopicTest", 2),
    ).toBe(100);
  });

  it("SYNC_FLUSH: a put whose fdatasync outlasts syncFlushTimeout resolves FLUSH_DISK_TIMEOUT; WAIT=false resolves after the write", async () => {
    const t = tempDir("commitlog-timeout");
    cleanups.push(t.remove);
    const io = new ObservedIo(join(t.dir, "commitlog"));
    const store = await createMessageStore(
      smallStoreConfig(t.dir, {
        messageIndexEnable: false,
        flushDiskType: FlushDiskType.SYNC_FLUSH,
        syncFlushTimeout: 50,
      }),
      { storeHost: STORE_HOST, fileIo: io },
    );
    cleanups.push(() => store.shutdown());
    io.syncDelayMs = 300;
    const before = io.syncsDone;
    const noWait = await store.putMessage(testMessage({ id: 1, properties: { WAIT: "false" } }));
    expect(noWait.status).toBe(PutMessageStatus.PUT_OK);
    expect(io.syncsDone).toBe(before); // resolved before any fdatasync completed
    const slow = await store.putMessage(testMessage({ id: 2 }));
    expect(slow.status).toBe(PutMessageStatus.FLUSH_DISK_TIMEOUT);
    // The record is still written and becomes visible once the sync completes.
    io.syncDelayMs = 0;
    await store.flush();
    const got = await store.getMessage("TopicTest", 0, 0, 10);
    expect(got.messages.map((m) => bodyId(m.body))).toEqual([1, 2]);
  });

  it("a failed write fails the puts in flight and makes the store refuse writes", async () => {
    const t = tempDir("commitlog-eio");
    cleanups.push(t.remove);
    const io = new ObservedIo(join(t.dir, "commitlog"));
    const cfg = smallStoreConfig(t.dir, { messageIndexEnable: false });
    const store = await createMessageStore(cfg, { storeHost: STORE_HOST, fileIo: io });
    await store.putMessage(testMessage({ id: 1 }));
    io.failNextWrite = true;
    await expect(store.putMessage(testMessage({ id: 2 }))).rejects.toMatchObject({
      code: "STORE_NOT_WRITABLE",
    });
    expect(store.isWritable()).toBe(false);
    await expect(store.putMessage(testMessage({ id: 3 }))).rejects.toMatchObject({
      code: "STORE_NOT_WRITABLE",
    });
    await store.shutdown();
    // The next open recovers what was acknowledged.
    const again = await createMessageStore(cfg, { storeHost: STORE_HOST });
    cleanups.push(() => again.shutdown());
    expect(again.recoveryReport.cleanShutdown).toBe(false);
    const got = await again.getMessage("TopicTest", 0, 0, 10);
    expect(got.messages.map((m) => bodyId(m.body))).toEqual([1]);
  });

  it("ASYNC_FLUSH acknowledges after the write and the background flusher syncs dirty pages", async () => {
    const t = tempDir("commitlog-async");
    cleanups.push(t.remove);
    const io = new ObservedIo(join(t.dir, "commitlog"));
    const store = await createMessageStore(
      smallStoreConfig(t.dir, { messageIndexEnable: false, flushIntervalCommitLog: 10 }),
      {
        storeHost: STORE_HOST,
        fileIo: io,
      },
    );
    cleanups.push(() => store.shutdown());
    const before = io.syncsDone;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => store.putMessage(testMessage({ id: i, size: 1000 }))),
    );
    const last = results.at(-1);
    expect(last?.status).toBe(PutMessageStatus.PUT_OK);
    // Visible right away: in ASYNC_FLUSH the confirm point is the written end.
    expect(store.getConfirmOffset()).toBe(store.getMaxPhyOffset());
    const got = await store.getMessage("TopicTest", 0, 39, 1);
    expect(got.status).toBe(GetMessageStatus.FOUND);
    // More than flushCommitLogLeastPages (4) pages are dirty: the flusher syncs them soon.
    for (let i = 0; i < 100 && io.syncedEnd < (last?.commitLogOffset ?? 0); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(io.syncsDone).toBeGreaterThan(before);
    expect(io.syncedEnd).toBeGreaterThanOrEqual((last?.commitLogOffset ?? 0) + (last?.size ?? 0));
  });

  it("ASYNC_FLUSH writes on the appending thread when the IO can, and through the thread pool for a while after a stalled write", async () => {
    const t = tempDir("commitlog-async-sync");
    cleanups.push(t.remove);
    const commitLogDir = join(t.dir, "commitlog");
    const isCommitLog = (fd: number) => dirname(readlinkSync(`/proc/self/fd/${fd}`)) === commitLogDir;
    let syncWrites = 0;
    let asyncWrites = 0;
    let stallNext = false;
    const io: FileIo = {
      ...nodeFileIo,
      writev(fd, buffers, position) {
        if (isCommitLog(fd)) asyncWrites++;
        return nodeFileIo.writev(fd, buffers, position);
      },
      writevSync(fd, buffers, position) {
        if (isCommitLog(fd)) {
          syncWrites++;
          if (stallNext) {
            // What a writer held back by the kernel sees: the call takes long.
            stallNext = false;
            const until = performance.now() + 40;
            while (performance.now() < until) {}
          }
        }
        return nodeFileIo.writevSync?.(fd, buffers, position) as number;
      },
    };
    const store = await createMessageStore(smallStoreConfig(t.dir, { messageIndexEnable: false }), {
      storeHost: STORE_HOST,
      fileIo: io,
    });
    cleanups.push(() => store.shutdown());
    await store.putMessage(testMessage({ id: 0, size: 100 }));
    expect([syncWrites, asyncWrites]).toEqual([1, 0]);
    stallNext = true;
    await store.putMessage(testMessage({ id: 1, size: 100 }));
    expect([syncWrites, asyncWrites]).toEqual([2, 0]);
    // That write took 40 ms: the next ones go through the thread pool.
    await store.putMessage(testMessage({ id: 2, size: 100 }));
    await store.putMessage(testMessage({ id: 3, size: 100 }));
    expect([syncWrites, asyncWrites]).toEqual([2, 2]);
    const got = await store.getMessage("TopicTest", 0, 0, 10);
    expect(got.messages.map((m) => bodyId(m.body))).toEqual([0, 1, 2, 3]);
  });

  it("putMessages appends a batch with one writev and consecutive queue offsets", async () => {
    const t = tempDir("commitlog-batch");
    cleanups.push(t.remove);
    const io = new ObservedIo(join(t.dir, "commitlog"));
    const store = await createMessageStore(
      smallStoreConfig(t.dir, { messageIndexEnable: false, mappedFileSizeCommitLog: 1024 * 1024 }),
      {
        storeHost: STORE_HOST,
        fileIo: io,
      },
    );
    cleanups.push(() => store.shutdown());
    const w0 = io.writevCalls;
    const rs = await store.putMessages(
      Array.from({ length: 100 }, (_, i) => testMessage({ id: i, body: bodyFor(i, 200) })),
    );
    expect(io.writevCalls - w0).toBe(1);
    expect(rs.map((r) => r.queueOffset)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    for (let i = 1; i < rs.length; i++) {
      const prev = rs[i - 1];
      expect(rs[i]?.commitLogOffset).toBe((prev?.commitLogOffset ?? 0) + (prev?.size ?? 0));
    }
  });
});
