import { statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { SLOTS_TOTAL } from "./timer-config.ts";
import { EMPTY_SLOT, TimerWheel, WHEEL_FILE_SIZE } from "./timer-wheel.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const T0 = 1_700_000_000_000;

describe("TimerWheel", () => {
  it("keeps slots per precision step for two turns, persists them, and sums what is pending", async () => {
    const t = tempDir("wheel");
    cleanups.push(t.remove);
    const file = join(t.dir, "timerwheel");
    const w = await TimerWheel.open(file, 1000);
    expect(statSync(file).size).toBe(WHEEL_FILE_SIZE);
    const times = [T0, T0 + 1000, T0 + 86_400_000, T0 + 2 * SLOTS_TOTAL * 1000];
    await w.load(times);
    expect(w.getSlot(T0)).toEqual(EMPTY_SLOT);
    w.putSlot(T0, 52, 104, 2);
    w.putSlot(T0 + 1000, 0, 0, 1);
    w.putSlot(T0 + 86_400_000, 156, 156, -1);
    expect(w.getSlot(T0 + 999)).toEqual({ timeMs: T0, firstPos: 52, lastPos: 104, num: 2, magic: 0 });
    // The same index two turns later is another time: empty.
    expect(w.getSlot(T0 + 2 * SLOTS_TOTAL * 1000)).toEqual(EMPTY_SLOT);
    await w.flush();
    await w.close();

    const again = await TimerWheel.open(file, 1000);
    cleanups.push(() => again.close());
    await again.load(times);
    expect(again.getSlot(T0 + 1000)).toEqual({
      timeMs: T0 + 1000,
      firstPos: 0,
      lastPos: 0,
      num: 1,
      magic: 0,
    });
    expect(await again.sumNum(T0)).toBe(2);
    expect(await again.sumNum(T0 + 1000)).toBe(0);
    expect(await again.sumNum(T0 + 2000)).toBe(-1);
    // Unflushed changes count too.
    again.putSlot(T0 + 1000, 0, 52, 5);
    expect(await again.sumNum(T0)).toBe(6);
    expect(() => again.getSlot(T0 + 5 * 86_400_000)).toThrow(/before load/);
  });
});
