import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { runChildAndKill } from "../../test/fixtures/crash-child.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { bodyText, openTimerBroker } from "./timer-test.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CHILD = join(import.meta.dirname, "timer-crash-child.fixture.ts");

const GROUPS: [number, number, number] = [1200, 100, 100];
const TOTAL = GROUPS[0] + GROUPS[1] + GROUPS[2];

for (const [what, timerFlushIntervalMs] of [
  ["no timer checkpoint since start", 3_600_000],
  ["timer checkpoints every 50 ms", 50],
] as const) {
  it(`SIGKILL in the middle of a slot's delivery (${what}): after restart every message arrives exactly once`, async () => {
    const t = tempDir("timer-crash");
    cleanups.push(t.remove);
    const topic = "CrashTimer";
    const lines = await runChildAndKill(CHILD, {
      dir: t.dir,
      topic,
      groups: GROUPS,
      freezeAfter: 300,
      timerFlushIntervalMs,
    });
    expect(lines).toContain(`SENT ${TOTAL}`);

    const b = await openTimerBroker(t.dir, { timer: { timerPrecisionMs: 100 } });
    cleanups.push(() => b.close());
    const all = async () => [...(await b.delivered(topic, 0)), ...(await b.delivered(topic, 1))];
    // Killed mid-slot: part of the first group had been delivered, not all of it.
    const before = await all();
    expect(before.length).toBeGreaterThanOrEqual(300);
    expect(before.length).toBeLessThan(GROUPS[0]);
    const deadline = Date.now() + 20_000;
    let got = before;
    while (got.length < TOTAL && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      got = await all();
    }
    // A little longer: a duplicate would show up now.
    await new Promise((r) => setTimeout(r, 300));
    await b.timer.tick();
    got = await all();
    const names = got.map(bodyText);
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBe(TOTAL);
    expect(b.timer.pendingCount()).toBe(0);
  });
}
