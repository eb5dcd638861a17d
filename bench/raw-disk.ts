// Raw disk limits of this machine, measured with nothing but node:fs, so a store benchmark can print
// the ratio of what it achieved to what the box can do in the same run.

import { closeSync, ftruncateSync, openSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { percentile } from "./stats.ts";

export interface RateResult {
  ops: number;
  seconds: number;
  opsPerSec: number;
}

export interface LatencyRateResult extends RateResult {
  p50Ms: number;
  p99Ms: number;
  fsyncs: number;
}

/** Size of each file the raw positional writes fill (the store's default CommitLog segment size). */
const RAW_FILE_SIZE = 1024 * 1024 * 1024;

/**
 * Plain positional writes: one pwrite per record of `size` bytes, sequentially into preallocated files
 * (a new one when a file is full, as a log rolls segments), no framing, no checksum, no index. The
 * ceiling for an ASYNC_FLUSH append path that writes to the page cache. Every write lands on bytes
 * never written before, as an append does: going back to the start of a file would rewrite pages
 * already in the page cache, a cheaper operation than the append it is compared with (measured: a
 * 5 s run wrapping a 1 GiB file gave ~500k ops/s where 1 s runs that never wrap gave 200–340k).
 * The first file is `raw-positional.bin` (the read section reads it back); the others are deleted.
 */
export function rawPositionalWrites(dir: string, size: number, durationMs: number): RateResult {
  const paths = [join(dir, "raw-positional.bin")];
  const openFile = (path: string): number => {
    // A new file, not a truncated old one: writes after truncating a large file with cached pages
    // measured 175–235k ops/s here against 300–410k into a fresh file.
    rmSync(path, { force: true });
    const fd = openSync(path, "w+");
    ftruncateSync(fd, RAW_FILE_SIZE);
    return fd;
  };
  let fd = openFile(paths[0] as string);
  const buf = Buffer.alloc(size, 0x61);
  let pos = 0;
  let ops = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  try {
    while (true) {
      for (let i = 0; i < 256; i++) {
        if (pos + size > RAW_FILE_SIZE) {
          closeSync(fd);
          const next = join(dir, `raw-positional-${paths.length}.bin`);
          paths.push(next);
          fd = openFile(next);
          pos = 0;
        }
        writeSync(fd, buf, 0, size, pos);
        pos += size;
      }
      ops += 256;
      if (performance.now() >= deadline) break;
    }
  } finally {
    closeSync(fd);
  }
  const seconds = (performance.now() - start) / 1000;
  for (const p of paths.slice(1)) rmSync(p, { force: true });
  return { ops, seconds, opsPerSec: ops / seconds };
}

/**
 * Plain group commit: `inflight` concurrent writers each submit a record and wait for it to be
 * durable; one loop gathers everything pending into one writev + one fdatasync. The ceiling for a
 * SYNC_FLUSH append path.
 */
export async function rawGroupCommit(
  dir: string,
  size: number,
  inflight: number,
  durationMs: number,
): Promise<LatencyRateResult> {
  const path = join(dir, `raw-group-${inflight}.bin`);
  rmSync(path, { force: true }); // a new file each time, as for the positional writes
  const fh = await open(path, "w+");
  const record = Buffer.alloc(size, 0x62);
  let pending: { buf: Buffer; t0: number; resolve: () => void }[] = [];
  let wake: (() => void) | undefined;
  let stopped = false;
  let position = 0;
  let fsyncs = 0;

  const writer = (async () => {
    while (!stopped || pending.length > 0) {
      if (pending.length === 0) {
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
        continue;
      }
      const batch = pending;
      pending = [];
      const bufs = batch.map((p) => p.buf);
      await fh.writev(bufs, position);
      position += bufs.length * size;
      await fh.datasync();
      fsyncs++;
      for (const p of batch) p.resolve();
    }
  })();

  const latencies: number[] = [];
  let ops = 0;
  const start = performance.now();
  const deadline = start + durationMs;
  const client = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        pending.push({ buf: record, t0, resolve });
        wake?.();
      });
      latencies.push(performance.now() - t0);
      ops++;
    }
  };
  await Promise.all(Array.from({ length: inflight }, client));
  const seconds = (performance.now() - start) / 1000;
  stopped = true;
  wake?.();
  await writer;
  await fh.close();
  rmSync(path, { force: true });
  latencies.sort((a, b) => a - b);
  return {
    ops,
    seconds,
    opsPerSec: ops / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    fsyncs,
  };
}
