// Child process of crash.test.ts: opens the WAL in argv[2] and mutates it forever with a workload
// seeded by argv[3] — appends (some replacing a suffix), truncations, hard states, snapshots and
// compactions. Before each operation it prints the operation as one JSON line; after the operation
// is durable it prints {"ack":seq}. The parent SIGKILLs it at a random moment.

import { writeSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Entry, EntryType } from "../types.ts";
import { createRaftWal } from "./wal.ts";

export const CRASH_SEGMENT_BYTES = 4096;

/** Entry payload derived from (index, term), so the parent can check every byte it gets back. */
export function entryData(index: number, term: number): Uint8Array {
  const size = 20 + ((index * 37 + term * 11) % 180);
  const d = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) d[i] = (index * 131 + term * 17 + i) & 0xff;
  return d;
}

export type CrashOp =
  | {
      seq: number;
      op: "append";
      first: number;
      n: number;
      term: number;
      hs: { term: number; vote: string; commit: number } | null;
    }
  | { seq: number; op: "truncate"; from: number }
  | { seq: number; op: "hs"; hs: { term: number; vote: string; commit: number } }
  | { seq: number; op: "snapshot"; index: number; term: number }
  | { seq: number; op: "compact"; index: number };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function main(dir: string, seed: number): Promise<void> {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const opened = await createRaftWal(dir, { segmentBytes: CRASH_SEGMENT_BYTES });
  const { wal } = opened;
  const terms = new Map<number, number>();
  for (const e of opened.entries) terms.set(e.index, e.term);
  let snapIndex = opened.snapshot?.metadata.index ?? 0;
  if (opened.snapshot !== undefined) terms.set(snapIndex, opened.snapshot.metadata.term);
  let last = wal.lastIndex;
  let term = Math.max(1, opened.hardState?.term ?? 1, terms.get(last) ?? 1);
  // Synchronous write to fd 1: the line is in the pipe before the next statement runs.
  const say = (x: unknown) => writeSync(1, `${JSON.stringify(x)}\n`);
  say({ open: last });
  for (let seq = 1; ; seq++) {
    const r = rnd();
    let op: CrashOp;
    if (r < 0.7 || last === snapIndex) {
      op = {
        seq,
        op: "append",
        first: last + 1,
        n: int(1, 16),
        term,
        hs: { term, vote: "n1", commit: Math.max(snapIndex, last - 2) },
      };
    } else if (r < 0.8) {
      term++;
      const first = Math.max(snapIndex + 1, last + 1 - int(1, 4));
      op = {
        seq,
        op: "append",
        first,
        n: int(1, 6),
        term,
        hs: rnd() < 0.5 ? null : { term, vote: "n2", commit: first - 1 },
      };
    } else if (r < 0.85) {
      op = { seq, op: "truncate", from: Math.max(snapIndex + 1, last + 1 - int(1, 3)) };
    } else if (r < 0.9) {
      op = { seq, op: "hs", hs: { term, vote: "n3", commit: Math.max(snapIndex, last - 1) } };
    } else {
      const index = Math.max(snapIndex + 1, last - int(0, 5));
      op = { seq, op: "snapshot", index, term: terms.get(index) as number };
    }
    say(op);
    switch (op.op) {
      case "append": {
        const entries: Entry[] = [];
        for (let i = 0; i < op.n; i++) {
          const index = op.first + i;
          entries.push({ index, term: op.term, type: EntryType.Normal, data: entryData(index, op.term) });
        }
        await wal.append(entries, op.hs ?? undefined);
        for (let i = op.first; i <= last; i++) terms.delete(i);
        for (const e of entries) terms.set(e.index, e.term);
        last = op.first + op.n - 1;
        break;
      }
      case "truncate":
        await wal.truncate(op.from);
        for (let i = op.from; i <= last; i++) terms.delete(i);
        last = op.from - 1;
        break;
      case "hs":
        await wal.append([], op.hs);
        break;
      case "snapshot": {
        await wal.saveSnapshot({
          metadata: { index: op.index, term: op.term, voters: ["n1", "n2", "n3"] },
          data: Buffer.from(`state@${op.index}/${op.term}`),
        });
        snapIndex = op.index;
        say({ ack: seq });
        seq++;
        const compact: CrashOp = { seq, op: "compact", index: snapIndex };
        say(compact);
        await wal.compact(snapIndex);
        break;
      }
    }
    say({ ack: seq });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(process.argv[2] as string, Number(process.argv[3]));
}
