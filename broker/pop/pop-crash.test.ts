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
