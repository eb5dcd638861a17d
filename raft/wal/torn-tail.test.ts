// Property: whatever happens to the tail of the last segment (cut at any byte, a byte flipped, the rest
// zeroed, garbage appended), reopening yields the state after some prefix of the operations — the
// operation hit by the damage counts at most partially (a prefix of its entries), and nothing that was
// never written is ever served.

import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Entry, EntryType, type HardState } from "../types.ts";
import { createRaftWal, type RaftWal } from "./wal.ts";

type Op =
  | { k: "append"; back: number; n: number; newTerm: boolean; size: number; withHs: boolean }
  | { k: "truncate"; back: number }
  | { k: "hs"; commit: number };

interface ModelState {
  log: Entry[]; // entries 1..last
  hs: HardState | undefined;
}

function dataFor(index: number, term: number, size: number): Uint8Array {
  const d = Buffer.alloc(size);
  for (let i = 0; i < size; i++) d[i] = (index * 31 + term * 7 + i * 13 + 1) & 0xff;
  return d;
}

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant("append" as const),
      back: fc.constantFrom(0, 0, 0, 1, 3),
      n: fc.integer({ min: 1, max: 6 }),
      newTerm: fc.boolean(),
      size: fc.integer({ min: 0, max: 120 }),
      withHs: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("truncate" as const), back: fc.integer({ min: 0, max: 3 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("hs" as const), commit: fc.integer({ min: 0, max: 5 }) }),
  },
);

type Damage =
  | { k: "cut"; at: number }
  | { k: "flip"; at: number; mask: number }
  | { k: "zero"; at: number }
  | { k: "garbage"; bytes: Uint8Array };
const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({
    k: fc.constant("cut" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  }),
  fc.record({
    k: fc.constant("flip" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
    mask: fc.integer({ min: 1, max: 255 }),
  }),
  fc.record({
    k: fc.constant("zero" as const),
    at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
  }),
  fc.record({ k: fc.constant("garbage" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
);

function key(s: ModelState): string {
  return JSON.stringify({
    log: s.log.map((e) => [e.index, e.term, e.type, Buffer.from(e.data).toString("hex")]),
    hs: s.hs === undefined ? null : [s.hs.term, s.hs.vote, s.hs.commit],
  });
}

describe("WAL torn tail", () => {
  it("reopening after tail damage at a random byte yields a prefix of the history", async () => {
    let hits = 0;
    let torn = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { minLength: 1, maxLength: 14, size: "max" }),
        damageArb,
        async (ops, damage) => {
          const dir = mkdtempSync(join(tmpdir(), "raft-wal-torn-"));
          const open: RaftWal[] = [];
          const reopen = async () => {
            const o = await createRaftWal(dir, { segmentBytes: 400 });
            open.push(o.wal);
            return o;
          };
          try {
            const opened = await reopen();
            const wal = opened.wal;
            let state: ModelState = { log: [], hs: undefined };
            let term = 1;
            // Per operation: the states it may leave behind if damaged, and where its bytes went.
            const history: Array<{
              candidates: string[];
              file: string;
              start: number;
              end: number;
              after: string;
            }> = [];
            for (const op of ops) {
              const before = state;
              const segBefore = wal.segments().at(-1);
              const candidates = [key(before)];
              if (op.k === "append") {
                const first = Math.max(1, before.log.length + 1 - op.back);
                if (op.newTerm) term++;
                const entries: Entry[] = [];
                for (let i = 0; i < op.n; i++) {
                  const index = first + i;
                  entries.push({
                    index,
                    term,
                    type: index % 5 === 0 ? EntryType.Noop : EntryType.Normal,
                    data: dataFor(index, term, op.size),
                  });
                }
                const newHs = op.withHs
                  ? { term, vote: "n1", commit: Math.min(first - 1, before.log.length) }
                  : undefined;
                await wal.append(entries, newHs);
                for (let j = 1; j <= entries.length; j++) {
                  candidates.push(
                    key({ log: [...before.log.slice(0, first - 1), ...entries.slice(0, j)], hs: before.hs }),
                  );
                }
                state = { log: [...before.log.slice(0, first - 1), ...entries], hs: newHs ?? before.hs };
              } else if (op.k === "truncate") {
                const from = Math.max(1, before.log.length + 1 - op.back);
                await wal.truncate(from);
                state = { log: before.log.slice(0, from - 1), hs: before.hs };
              } else {
                const newHs = { term, vote: "", commit: Math.min(op.commit, before.log.length) };
                await wal.append([], newHs);
                state = { log: before.log, hs: newHs };
              }
              candidates.push(key(state));
              const segAfter = wal.segments().at(-1);
              const file = segAfter?.file ?? "";
              const start = segBefore?.file === file ? (segBefore?.bytes ?? 0) : 0;
              history.push({ candidates, file, start, end: segAfter?.bytes ?? 0, after: key(state) });
            }
            await wal.close();

            const last = wal.segments().at(-1);
            if (last === undefined) return; // nothing was written
            const path = join(dir, "wal", last.file);
            const size = readFileSync(path).length;
            const original = readFileSync(path);
            let pos: number;
            if (damage.k === "garbage") {
              writeFileSync(path, Buffer.concat([readFileSync(path), damage.bytes]));
              pos = size;
            } else {
              pos = Math.floor(damage.at * size);
              if (damage.k === "cut") truncateSync(path, pos);
              else {
                const bytes = readFileSync(path);
                if (damage.k === "flip") bytes[pos] = (bytes[pos] as number) ^ damage.mask;
                else bytes.fill(0, pos);
                writeFileSync(path, bytes);
              }
            }

            const changed = !readFileSync(path).equals(original);
            const r = await reopen();
            const got = key({ log: r.entries, hs: r.hardState });
            // The operation whose bytes contain `pos` (if any) may be partial; all before it are whole.
            const hit = history.findIndex((h) => h.file === last.file && h.start <= pos && pos < h.end);
            if (hit !== -1) hits++;
            if (r.tornTail !== undefined) torn++;
            if (hit === -1) {
              expect(got).toBe(key(state)); // garbage after the end, or damage that changed nothing
            } else {
              expect(history[hit]?.candidates).toContain(got);
            }
            if (damage.k === "garbage") expect(r.tornTail).toMatchObject({ offset: size });
            if (damage.k === "flip" || (damage.k === "zero" && changed)) expect(r.tornTail).toBeDefined();
            if (r.tornTail !== undefined) {
              expect(r.tornTail.segment).toBe(last.file);
              expect(r.tornTail.offset).toBeLessThanOrEqual(pos);
              expect(readFileSync(path).length).toBe(r.tornTail.offset); // cut off the file
            }
            // The repaired log accepts new entries and survives another restart.
            const next = r.wal.lastIndex + 1;
            await r.wal.append([
              { index: next, term: 99, type: EntryType.Normal, data: dataFor(next, 99, 3) },
            ]);
            await r.wal.close();
            const again = await reopen();
            expect(again.tornTail).toBeUndefined();
            expect(again.entries.at(-1)?.term).toBe(99);
            expect(key({ log: again.entries.slice(0, -1), hs: again.hardState })).toBe(got);
            await again.wal.close();
          } finally {
            for (const w of open) await w.close();
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
    // Not vacuous: most runs hit a written operation, and many left a torn record to cut.
    expect(hits).toBeGreaterThan(30);
    expect(torn).toBeGreaterThan(20);
  });
});
