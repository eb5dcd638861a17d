import { closeSync, openSync, readdirSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../common/logger.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { MAGIC_DEFAULT, MAGIC_DELETE, MAGIC_ROLL, TimerLog, type TimerUnit, UNIT_SIZE } from "./timer-log.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const FILE_SIZE = 4096; // 78 units per segment
const PER_FILE = Math.floor(FILE_SIZE / UNIT_SIZE);

async function open(dir: string): Promise<TimerLog> {
  const log = await TimerLog.open(dir, FILE_SIZE, silentLogger());
  cleanups.push(() => log.close());
  return log;
}

function unit(i: number, prevPos: number): Omit<TimerUnit, "pos"> {
  return {
    prevPos,
    magic: MAGIC_DEFAULT | (i % 3 === 0 ? MAGIC_ROLL : 0) | (i % 5 === 0 ? MAGIC_DELETE : 0),
    enqueueTimeMs: 1_700_000_000_000 + i,
    delayedTimeMs: 1_700_000_000_000 + i * 1000,
    offsetPy: i * 300,
    sizePy: 200 + i,
    queueOffset: i,
  };
}

async function collect(log: TimerLog, from: number): Promise<TimerUnit[]> {
  const out: TimerUnit[] = [];
  await log.recover(from, async (us) => {
    out.push(...us);
  });
  return out;
}

describe("TimerLog", () => {
  it("appends across segments, reads from the tail and from the files, and recovers every flushed unit", async () => {
    const t = tempDir("timerlog");
    cleanups.push(t.remove);
    const log = await open(t.dir);
    expect(await collect(log, 0)).toEqual([]);
    const positions: number[] = [];
    let prev = -1;
    for (let i = 0; i < 200; i++) {
      prev = log.append(unit(i, prev));
      positions.push(prev);
    }
    // Positions skip the tail of each segment that cannot hold a whole unit.
    expect(positions[PER_FILE]).toBe(FILE_SIZE);
    expect(await log.read(positions[150] as number)).toMatchObject({
      ...unit(150, positions[149] as number),
    });
    await log.flush();
    expect(readdirSync(t.dir).sort()).toEqual([
      "00000000000000000000",
      "00000000000000004096",
      "00000000000000008192",
    ]);
    // Walk the chain backwards through the files.
    let pos = positions[199] as number;
    let n = 0;
    while (pos >= 0) {
      const u = await log.read(pos);
      expect(u?.queueOffset).toBe(199 - n);
      pos = u?.prevPos ?? -2;
      n++;
    }
    expect(n).toBe(200);
    await log.close();

    const again = await open(t.dir);
    const units = await collect(again, 0);
    expect(units.map((u) => u.queueOffset)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(units[7]).toEqual({ pos: positions[7], ...unit(7, positions[6] as number) });
    expect(again.appendPos).toBe(log.appendPos);
  });

  it("stops recovery at a torn unit and cuts the log there", async () => {
    const t = tempDir("timerlog-torn");
    cleanups.push(t.remove);
    const log = await open(t.dir);
    for (let i = 0; i < 100; i++) log.append(unit(i, -1));
    await log.flush();
    await log.close();
    // Flip a byte inside unit 90 (segment 1, unit 12).
    const fd = openSync(join(t.dir, "00000000000000004096"), "r+");
    writeSync(fd, Buffer.from([0xff]), 0, 1, 12 * UNIT_SIZE + 30);
    closeSync(fd);
    const again = await open(t.dir);
    const units = await collect(again, 0);
    expect(units.map((u) => u.queueOffset)).toEqual(Array.from({ length: PER_FILE + 12 }, (_, i) => i));
    expect(again.appendPos).toBe(FILE_SIZE + 12 * UNIT_SIZE);
    // Appends continue where the intact units end; what followed the torn unit is gone.
    const p = again.append(unit(500, -1));
    expect(p).toBe(FILE_SIZE + 12 * UNIT_SIZE);
    await again.flush();
    expect(await again.read(p + UNIT_SIZE)).toBeUndefined();
    expect((await again.read(p))?.queueOffset).toBe(500);
  });

  it("recovers from a position and removes segments whose messages are gone", async () => {
    const t = tempDir("timerlog-clean");
    cleanups.push(t.remove);
    const log = await open(t.dir);
    for (let i = 0; i < 3 * PER_FILE; i++) log.append(unit(i, -1));
    await log.flush();
    const from = FILE_SIZE + 10 * UNIT_SIZE;
    await log.close();
    const again = await open(t.dir);
    expect((await collect(again, from)).map((u) => u.queueOffset)[0]).toBe(PER_FILE + 10);
    // Segment 0's last unit refers to offset (PER_FILE-1)*300: below 30000 it is gone, segment 1's is not.
    expect(await again.deleteExpired(PER_FILE * 300)).toHaveLength(1);
    expect(again.minPos).toBe(FILE_SIZE);
    expect(await again.read(0)).toBeUndefined();
    expect(await again.deleteExpired(Number.MAX_SAFE_INTEGER)).toHaveLength(1);
    // The segment being appended to stays.
    expect(readdirSync(t.dir)).toEqual(["00000000000000008192"]);
  });
});
