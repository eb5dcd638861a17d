// The CommitLog's IO pipeline: writes overlap fdatasyncs (SYNC_FLUSH) and each other, complete in any
// order, and write buffers are reused; none of that may ever acknowledge or expose a record before the
// write (ASYNC_FLUSH) or the fdatasync (SYNC_FLUSH) that covers it. The real IO is wrapped to delay
// calls and to record, per CommitLog byte range, when it was written and which sync covered it.
import { readlinkSync } from "node:fs";
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
import { createMessageStore, type MessageStore } from "./message-store.ts";
import type { PutMessageResult } from "./message-store-types.ts";
import { type FileIo, nodeFileIo } from "./store-io.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Real IO with optional delays; tracks, for CommitLog files, the written prefix and what syncs covered. */
class PipelineIo implements FileIo {
  writes = 0;
  syncs = 0;
  syncsInFlight = 0;
  /** Writes that completed while an fdatasync was running (the pipeline at work). */
  writesDuringSync = 0;
  /** A write completed before an earlier-issued one. */
  outOfOrderCompletions = 0;
  /** End of the contiguous written prefix of the log (from `base`). */
  writtenEnd = 0;
  /** Largest end covered by a completed fdatasync (the written prefix when that sync started). */
  syncedEnd = 0;
  /** Completion time of each write, by global start offset. */
  readonly writeDone = new Map<number, number>();
  writeDelay: (start: number, length: number) => number = () => 0;
  syncDelayMs = 0;
  private readonly commitLogDir: string;
  private readonly segmentSize: number;
  private readonly done = new Map<number, number>(); // start -> end of completed writes past writtenEnd
  private issued = 0;
  private lastCompletedSeq = -1;

  constructor(commitLogDir: string, segmentSize: number) {
    this.commitLogDir = commitLogDir;
    this.segmentSize = segmentSize;
  }

  private segmentStart(fd: number): number | undefined {
    const p = readlinkSync(`/proc/self/fd/${fd}`);
    return dirname(p) === this.commitLogDir ? Number(basename(p)) : undefined;
  }

  async writev(fd: number, buffers: Uint8Array[], position: number): Promise<number> {
    const seg = this.segmentStart(fd);
    if (seg === undefined) return nodeFileIo.writev(fd, buffers, position);
    const seq = this.issued++;
    this.writes++;
    let length = 0;
    for (const b of buffers) length += b.length;
    const start = seg + position;
    const delay = this.writeDelay(start, length);
    if (delay > 0) await sleep(delay);
    const n = await nodeFileIo.writev(fd, buffers, position);
    if (seq < this.lastCompletedSeq) this.outOfOrderCompletions++;
    this.lastCompletedSeq = Math.max(this.lastCompletedSeq, seq);
    if (this.syncsInFlight > 0) this.writesDuringSync++;
    this.writeDone.set(start, performance.now());
    this.done.set(start, start + n);
    // Advance the contiguous prefix. Records never cross segments: a write that ends inside a segment
    // and is followed by one at the next segment's start ended with a blank marker for the rest.
    for (;;) {
      let at = this.writtenEnd;
      let end = this.done.get(at);
      if (end === undefined && at % this.segmentSize !== 0) {
        at = (Math.floor(at / this.segmentSize) + 1) * this.segmentSize;
        end = this.done.get(at);
      }
      if (end === undefined) break;
      this.done.delete(at);
      this.writtenEnd = end;
    }
    return n;
  }

  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return nodeFileIo.read(fd, buf, offset, length, position);
  }

  async fdatasync(fd: number): Promise<void> {
    if (this.segmentStart(fd) === undefined) return nodeFileIo.fdatasync(fd);
    this.syncs++;
    this.syncsInFlight++;
    const covers = this.writtenEnd;
    try {
      if (this.syncDelayMs > 0) await sleep(this.syncDelayMs);
      await nodeFileIo.fdatasync(fd);
    } finally {
      this.syncsInFlight--;
    }
    this.syncedEnd = Math.max(this.syncedEnd, covers);
  }

  fsync(fd: number): Promise<void> {
    return nodeFileIo.fsync(fd);
  }
}

async function open(
  flushDiskType: FlushDiskType,
  overrides: Partial<MessageStoreConfig> = {},
): Promise<{ store: MessageStore; io: PipelineIo }> {
  const t = tempDir("pipeline");
  cleanups.push(t.remove);
  const cfg = smallStoreConfig(t.dir, {
    messageIndexEnable: false,
    flushDiskType,
    mappedFileSizeCommitLog: 8 * 1024 * 1024,
    ...overrides,
  });
  const io = new PipelineIo(join(t.dir, "commitlog"), cfg.mappedFileSizeCommitLog);
  const store = await createMessageStore(cfg, { storeHost: STORE_HOST, fileIo: io });
  cleanups.push(() => store.shutdown());
  return { store, io };
}

async function readAll(store: MessageStore, queues: number): Promise<number[][]> {
  const out: number[][] = [];
  for (let q = 0; q < queues; q++) {
    const ids: number[] = [];
    let next = 0;
    while (next < store.getMaxOffsetInQueue("TopicTest", q)) {
      const r = await store.getMessage("TopicTest", q, next, 256);
      for (const m of r.messages) ids.push(bodyId(m.body) ?? -1);
      if (r.nextBeginOffset <= next) break;
      next = r.nextBeginOffset;
    }
    out.push(ids);
  }
  return out;
}

describe("CommitLog IO pipeline", () => {
  it("SYNC_FLUSH: writes proceed while an fdatasync runs, yet every put resolves only after a sync that started after its write", async () => {
    const { store, io } = await open(FlushDiskType.SYNC_FLUSH);
    io.syncDelayMs = 8;
    io.writeDelay = () => Math.floor(Math.random() * 3);
    const w0 = io.writes;
    const s0 = io.syncs;
    const violations: string[] = [];
    const check = (r: PutMessageResult): void => {
      if (r.commitLogOffset + r.size > io.syncedEnd)
        violations.push(`put at ${r.commitLogOffset} resolved, synced only up to ${io.syncedEnd}`);
      if (store.getConfirmOffset() > io.syncedEnd)
        violations.push(`confirm offset ${store.getConfirmOffset()} beyond the synced ${io.syncedEnd}`);
    };
    // More producers than one acknowledgement slice (ACK_SLICE): batches are acknowledged in slices.
    const producers = 300;
    const perProducer = 4;
    let id = 0;
    await Promise.all(
      Array.from({ length: producers }, async (_, p) => {
        for (let k = 0; k < perProducer; k++) {
          // Producers out of step, so that appends keep arriving while a sync runs.
          if (Math.random() < 0.5) await sleep(Math.floor(Math.random() * 6));
          const n = id++;
          check(await store.putMessage(testMessage({ id: n, queueId: p % 4, size: 200 + (n % 7) * 300 })));
        }
      }),
    );
    expect(violations).toEqual([]);
    const writes = io.writes - w0;
    const syncs = io.syncs - s0;
    // The pipeline really overlapped writes with syncs, and group commit held: at most one sync per
    // batch write, and far fewer syncs than puts.
    expect(io.writesDuringSync).toBeGreaterThan(0);
    expect(syncs).toBeLessThanOrEqual(writes);
    expect(syncs).toBeLessThan((producers * perProducer) / 4);
    expect(store.getConfirmOffset()).toBe(store.getMaxPhyOffset());
    const ids = (await readAll(store, 4)).flat().sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: producers * perProducer }, (_, i) => i));
  });

  it("SYNC_FLUSH: WAIT=false puts resolve after their write, never before it", async () => {
    const { store, io } = await open(FlushDiskType.SYNC_FLUSH);
    io.syncDelayMs = 30;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.putMessage(testMessage({ id: i, properties: { WAIT: "false" } })).then((r) => {
          expect(r.commitLogOffset + r.size).toBeLessThanOrEqual(io.writtenEnd);
          return r;
        }),
      ),
    );
    expect(results).toHaveLength(20);
    // Resolved while the sync was still running.
    expect(io.syncedEnd).toBeLessThan((results.at(-1)?.commitLogOffset ?? 0) + 1);
  });

  it("ASYNC_FLUSH: a batch written before an earlier one is acknowledged and dispatched only after the earlier write", async () => {
    const { store, io } = await open(FlushDiskType.ASYNC_FLUSH);
    const base = store.getMaxPhyOffset();
    let slowStart = -1;
    io.writeDelay = (start) => {
      if (slowStart < 0) {
        slowStart = start;
        return 60;
      }
      return 0;
    };
    // ~330 KiB in one tick: the first 256 KiB are written at once (and held up), the rest at the end of the tick.
    const resolvedAt: number[] = [];
    const puts = Array.from({ length: 300 }, (_, i) =>
      store.putMessage(testMessage({ id: i, queueId: i % 2, size: 1000 })).then((r) => {
        resolvedAt.push(performance.now());
        return r;
      }),
    );
    await sleep(25);
    // The second batch is in the file by now, the first is not: nothing may be confirmed or acknowledged.
    expect([...io.writeDone.keys()].filter((k) => k !== slowStart)).toHaveLength(1);
    expect(io.writeDone.has(slowStart)).toBe(false);
    expect(resolvedAt).toEqual([]);
    expect(store.getConfirmOffset()).toBe(base);
    expect(store.getMaxPhyOffset()).toBe(base);
    expect((await store.getMessage("TopicTest", 0, 0, 10)).messages).toEqual([]);
    const results = await Promise.all(puts);
    expect(io.outOfOrderCompletions).toBe(1);
    const firstDone = io.writeDone.get(slowStart) ?? Number.POSITIVE_INFINITY;
    expect(Math.min(...resolvedAt)).toBeGreaterThanOrEqual(firstDone);
    expect(results.map((r) => r.queueOffset)).toEqual(
      Array.from({ length: 300 }, (_, i) => Math.floor(i / 2)),
    );
    const ids = await readAll(store, 2);
    expect(ids[0]).toEqual(Array.from({ length: 150 }, (_, i) => i * 2));
    expect(ids[1]).toEqual(Array.from({ length: 150 }, (_, i) => i * 2 + 1));
  });

  for (const flushDiskType of [FlushDiskType.ASYNC_FLUSH, FlushDiskType.SYNC_FLUSH]) {
    it(`${flushDiskType}: write buffers are reused only once their bytes are written (slow, out-of-order writes)`, async () => {
      // 1 MiB segments: rolls too. Up to ~6 MiB in flight while writes are held up, many 512 KiB write
      // buffers: a buffer handed out again before its bytes were written would corrupt records.
      const { store, io } = await open(flushDiskType, { mappedFileSizeCommitLog: 1024 * 1024 });
      io.writeDelay = () => (Math.random() < 0.3 ? 10 + Math.floor(Math.random() * 20) : 0);
      let id = 0;
      const perBatch = 150;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let round = 0; round < 4; round++) {
            const batch = Array.from({ length: perBatch }, () => {
              const n = id++;
              return testMessage({ id: n, queueId: n % 3, body: bodyFor(n, 2000 + (n % 11) * 100) });
            });
            await store.putMessages(batch);
          }
        }),
      );
      expect(store.getMaxPhyOffset()).toBeGreaterThan(20 * 1024 * 1024);
      const ids = (await readAll(store, 3)).flat();
      // Every record reads back intact (bodyId checks every body byte; reads verify every record CRC).
      expect(ids.includes(-1)).toBe(false);
      expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: id }, (_, i) => i));
    });
  }
});
