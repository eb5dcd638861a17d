import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { runChildAndKill } from "../../test/fixtures/crash-child.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import type { PoppedMessage } from "./pop-service.ts";
import { bodyText, openTestBroker } from "./test-broker.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CHILD = join(import.meta.dirname, "pop-crash-child.fixture.ts");

it("after SIGKILL, acked messages stay consumed and un-acked ones come back once, with deliveryAttempt 2", async () => {
  const t = tempDir("pop-crash");
  cleanups.push(t.remove);
  const topic = "CrashTopic";
  const group = "GID_crash";
  const count = 30;
  const lines = await runChildAndKill(CHILD, { dir: t.dir, topic, group, count });
  const acked = lines.filter((l) => l.startsWith("ACKED ")).map((l) => l.slice(6));
  const kept = lines.filter((l) => l.startsWith("KEPT ")).map((l) => l.slice(5));
  expect(acked.length + kept.length).toBe(count);
  expect(kept.length).toBe(10);
  // The child never persisted consumer offsets: the restart must recover them from the check points.
  expect(existsSync(join(t.dir, "config", "consumerOffset.json"))).toBe(false);

  // A clock one hour ahead: every invisible time of the child is over.
  const b = await openTestBroker(t.dir, { clock: () => Date.now() + 3_600_000 });
  cleanups.push(() => b.close());
  expect(await b.service.reviveDue()).toBe(kept.length);
  const back: PoppedMessage[] = [];
  for (;;) {
    const got = await b.service.pop(group, topic, { maxMessages: 32, invisibleTimeMs: 60_000 });
    if (got.length === 0) break;
    back.push(...got);
  }
  expect(back.map((m) => bodyText(m.message.body)).sort()).toEqual([...kept].sort());
  expect(back.every((m) => m.deliveryAttempt === 2)).toBe(true);
  expect(
    (
      await b.service.ack(
        group,
        topic,
        back.map((m) => m.receiptHandle),
      )
    ).every((r) => r.ok),
  ).toBe(true);
  expect(await b.service.reviveDue()).toBe(0);
});

it("FIFO: after SIGKILL, acked messages stay consumed (journal) and the rest come back in group order", async () => {
  const t = tempDir("pop-crash-fifo");
  cleanups.push(t.remove);
  const topic = "CrashFifoTopic";
  const group = "GID_crash_fifo";
  const count = 30;
  const lines = await runChildAndKill(CHILD, { dir: t.dir, topic, group, count, fifo: 3 });
  const acked = new Set(lines.filter((l) => l.startsWith("ACKED ")).map((l) => l.slice(6)));
  const kept = new Set(lines.filter((l) => l.startsWith("KEPT ")).map((l) => l.slice(5)));
  // g0 stops at m0, g1 at m7, g2 at m14: everything of a group from there on stays un-acked.
  expect([...acked].sort()).toEqual(["m1", "m11", "m2", "m4", "m5", "m8"].sort());
  // Nothing was persisted but the journal: no snapshot, no consumer offsets.
  expect(existsSync(join(t.dir, "config", "consumerOrderInfo.json"))).toBe(false);
  expect(existsSync(join(t.dir, "config", "consumerOffset.json"))).toBe(false);

  const b = await openTestBroker(t.dir, { clock: () => Date.now() + 3_600_000 });
  cleanups.push(() => b.close());
  const back: PoppedMessage[] = [];
  for (;;) {
    const got = await b.service.pop(group, topic, { maxMessages: 32, invisibleTimeMs: 60_000, fifo: true });
    if (got.length === 0) break;
    back.push(...got);
    const results = await b.service.ack(
      group,
      topic,
      got.map((m) => m.receiptHandle),
    );
    expect(results.every((r) => r.ok)).toBe(true);
  }
  const bodies = back.map((m) => bodyText(m.message.body));
  const all = Array.from({ length: count }, (_, i) => `m${i}`);
  expect([...bodies].sort()).toEqual(all.filter((m) => !acked.has(m)).sort());
  // In send order within each message group.
  for (let g = 0; g < 3; g++) {
    const seq = bodies.map((x) => Number(x.slice(1))).filter((i) => i % 3 === g);
    expect(seq).toEqual([...seq].sort((a, b) => a - b));
  }
  // Attempt counts live in the snapshot only (consumer-order-info.ts), and none was written: what was in
  // flight at the crash is a first delivery again.
  expect(back.every((m) => m.deliveryAttempt === 1)).toBe(true);
  expect(kept.size).toBeGreaterThan(0);
});
