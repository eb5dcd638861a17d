// `npm run bench:store` — the storage engine against this machine's raw disk limits, in one run:
//   1. ASYNC_FLUSH appends of 1 KiB messages vs plain positional writes (one pwrite per message);
//   2. SYNC_FLUSH appends at 1, 64, 256, 1024 in flight vs plain writev + fdatasync group commit at
//      the same concurrency (throughput, p50, p99);
//   3. reads through the ConsumeQueue vs plain positional reads of the same bytes;
//   4. recovery after an unclean stop (SIGKILL) of a large log vs a plain sequential read + CRC32 of it.
// Each line prints the store's number, the raw number and the ratio. Targets (issue 2): ASYNC >= 70 %
// of raw writes; SYNC at 256 in flight >= 70 % of raw group commit with p99 < 15 ms.
//
// Options: --seconds N (per measurement, default 5), --recovery-bytes N (default 2 GiB),
//          --dir PATH (default a temp dir; removed afterwards), --quick (1 s, 64 MiB: a smoke run).

import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { FlushDiskType, defaultMessageStoreConfig, type MessageStoreConfig } from "../broker/store/config.ts";
import { createMessageStore, type MessageStore } from "../broker/store/message-store.ts";
import type { MessageInput } from "../broker/store/message-store-types.ts";
import { rawGroupCommit, rawPositionalWrites } from "./raw-disk.ts";
import { percentile } from "./stats.ts";

const MESSAGE_SIZE = 1024;
const SYNC_INFLIGHT = [1, 64, 256, 1024] as const;
const ASYNC_INFLIGHT = 256;

interface Options {
  seconds: number;
  recoveryBytes: number;
  dir: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { seconds: 5, recoveryBytes: 2 * 1024 * 1024 * 1024, dir: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--seconds") o.seconds = positive(a, next());
    else if (a === "--recovery-bytes") o.recoveryBytes = positive(a, next());
    else if (a === "--dir") o.dir = next();
    else if (a === "--quick") {
      o.seconds = 1;
      o.recoveryBytes = 64 * 1024 * 1024;
    } else throw new Error(`unknown option ${a} (known: --seconds N, --recovery-bytes N, --dir PATH, --quick)`);
  }
  return o;
}

function positive(name: string | undefined, v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
  return n;
}

function message(i: number, body: Uint8Array): MessageInput {
  return {
    topic: "BenchTopic",
    queueId: i % 8,
    flag: 0,
    body,
    properties: new Map([["KEYS", `key-${i}`]]),
    bornTimestamp: Date.now(),
    bornHost: { address: "127.0.0.1", port: 40000 },
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  };
}

async function openStore(dir: string, flush: FlushDiskType): Promise<MessageStore> {
  const config: MessageStoreConfig = { ...defaultMessageStoreConfig(dir), flushDiskType: flush };
  return createMessageStore(config, { storeHost: { address: "127.0.0.1", port: 10911 } });
}

/** `inflight` independent producers, each awaiting its own putMessage before sending the next. */
async function drive(store: MessageStore, inflight: number, seconds: number) {
  const body = new Uint8Array(MESSAGE_SIZE).fill(0x61);
  const latencies: number[] = [];
  let n = 0;
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  const producer = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await store.putMessage(message(n++, body));
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inflight }, producer));
  const secs = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, opsPerSec: latencies.length / secs, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

function ratio(a: number, b: number): string {
  return `${((a / b) * 100).toFixed(1)} %`;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const root = opts.dir ?? mkdtempSync(join(tmpdir(), "rmq-bench-store-"));
  const ms = opts.seconds * 1000;
  console.log(`store benchmark: ${MESSAGE_SIZE} B messages, ${opts.seconds} s per measurement, dir ${root}`);
  const verdicts: string[] = [];
  try {
    // 1. ASYNC_FLUSH vs raw positional writes.
    const raw = rawPositionalWrites(root, MESSAGE_SIZE, ms);
    const asyncDir = join(root, "async");
    const asyncStore = await openStore(asyncDir, FlushDiskType.ASYNC_FLUSH);
    const a = await drive(asyncStore, ASYNC_INFLIGHT, opts.seconds);
    await asyncStore.shutdown();
    console.log(
      `ASYNC_FLUSH append (${ASYNC_INFLIGHT} in flight): ${fmt(a.opsPerSec)} msg/s, p50 ${a.p50Ms.toFixed(2)} ms, p99 ${a.p99Ms.toFixed(2)} ms | raw pwrite ${fmt(raw.opsPerSec)} ops/s | ratio ${ratio(a.opsPerSec, raw.opsPerSec)} (target >= 70 %)`,
    );
    verdicts.push(`ASYNC append ${ratio(a.opsPerSec, raw.opsPerSec)} of raw writes: ${a.opsPerSec >= 0.7 * raw.opsPerSec ? "MET" : "NOT MET"}`);

    // 2. SYNC_FLUSH vs raw group commit, same in-flight counts.
    for (const inflight of SYNC_INFLIGHT) {
      const rawG = await rawGroupCommit(root, MESSAGE_SIZE, inflight, ms);
      const dir = join(root, `sync-${inflight}`);
      const store = await openStore(dir, FlushDiskType.SYNC_FLUSH);
      const s = await drive(store, inflight, opts.seconds);
      await store.shutdown();
      rmSync(dir, { recursive: true, force: true });
      console.log(
        `SYNC_FLUSH append, ${String(inflight).padStart(4)} in flight: ${fmt(s.opsPerSec)} msg/s, p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms | raw group commit ${fmt(rawG.opsPerSec)} msg/s, p50 ${rawG.p50Ms.toFixed(2)} ms, p99 ${rawG.p99Ms.toFixed(2)} ms | ratio ${ratio(s.opsPerSec, rawG.opsPerSec)}`,
      );
      if (inflight === 256) {
        const met = s.opsPerSec >= 0.7 * rawG.opsPerSec && s.p99Ms < 15;
        verdicts.push(`SYNC@256 ${ratio(s.opsPerSec, rawG.opsPerSec)} of raw group commit, p99 ${s.p99Ms.toFixed(2)} ms: ${met ? "MET" : "NOT MET"}`);
      }
    }

    // 3. Reads through the ConsumeQueue (the ASYNC run's data) vs raw positional reads.
    const readStore = await openStore(asyncDir, FlushDiskType.ASYNC_FLUSH);
    let read = 0;
    const rStart = performance.now();
    for (let q = 0; q < 8; q++) {
      let offset = readStore.getMinOffsetInQueue("BenchTopic", q);
      const max = readStore.getMaxOffsetInQueue("BenchTopic", q);
      while (offset < max) {
        const r = await readStore.getMessage("BenchTopic", q, offset, 32);
        if (r.messages.length === 0) break;
        read += r.messages.length;
        offset = r.nextBeginOffset;
      }
    }
    const rSecs = (performance.now() - rStart) / 1000;
    await readStore.shutdown();
    const rawRead = rawPositionalReads(join(root, "raw-positional.bin"), MESSAGE_SIZE + 150, read);
    console.log(
      `ConsumeQueue reads (batches of 32): ${fmt(read / rSecs)} msg/s over ${fmt(read)} messages | raw pread ${fmt(rawRead)} ops/s | ratio ${ratio(read / rSecs, rawRead)}`,
    );
    rmSync(asyncDir, { recursive: true, force: true });

    // 4. Recovery after SIGKILL of a large log.
    const recDir = join(root, "recovery");
    const filled = await fillAndKill(recDir, opts.recoveryBytes);
    const t0 = performance.now();
    const recovered = await openStore(recDir, FlushDiskType.ASYNC_FLUSH);
    const recSecs = (performance.now() - t0) / 1000;
    const report = recovered.recoveryReport;
    await recovered.shutdown();
    const rawScan = rawScanCrc(join(recDir, "commitlog"), filled);
    console.log(
      `recovery after SIGKILL of a ${(filled / 2 ** 30).toFixed(2)} GiB log: ${recSecs.toFixed(2)} s (${JSON.stringify(report).slice(0, 200)}) | raw sequential read + CRC32 ${rawScan.toFixed(2)} s | ratio (raw/ours) ${ratio(rawScan, recSecs)}`,
    );
  } finally {
    if (opts.dir === undefined) rmSync(root, { recursive: true, force: true });
  }
  console.log("summary:");
  for (const v of verdicts) console.log(`  ${v}`);
}

function rawPositionalReads(path: string, size: number, count: number): number {
  const fd = openSync(path, "r");
  const buf = Buffer.alloc(size);
  const start = performance.now();
  let pos = 0;
  for (let i = 0; i < count; i++) {
    readSync(fd, buf, 0, size, pos);
    pos += size;
    if (pos > 512 * 1024 * 1024) pos = 0;
  }
  closeSync(fd);
  return count / ((performance.now() - start) / 1000);
}

function rawScanCrc(dir: string, bytes: number): number {
  const files = readdirSync(dir).sort();
  const buf = Buffer.alloc(4 * 1024 * 1024);
  let left = bytes;
  let crc = 0;
  const start = performance.now();
  for (const f of files) {
    const fd = openSync(join(dir, f), "r");
    let pos = 0;
    while (left > 0) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, left), pos);
      if (n <= 0) break;
      crc = crc32(buf.subarray(0, n), crc);
      pos += n;
      left -= n;
    }
    closeSync(fd);
    if (left <= 0) break;
  }
  return (performance.now() - start) / 1000;
}

async function fillAndKill(dir: string, bytes: number): Promise<number> {
  const child = spawn(process.execPath, [join(import.meta.dirname, "store-fill-child.ts"), dir, String(bytes)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const filled = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /filled (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`fill child exited early with ${code}`)));
  });
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  return filled;
}

await main();
