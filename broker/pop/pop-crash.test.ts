import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import type { PoppedMessage } from "./pop-service.ts";
import { bodyText, openTestBroker } from "./test-broker.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CHILD = join(import.meta.dirname, "pop-crash-child.fixture.ts");

/** Runs the child until it prints DONE, then SIGKILLs it; returns its lines. */
function runChildAndKill(args: object): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(args)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let killed = false;
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!killed && out.includes("DONE\n")) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("exit", (code, signal) => {
      if (signal === "SIGKILL" && killed) resolve(out.split("\n").filter((l) => l.length > 0));
      else reject(new Error(`child exited with code ${code} signal ${signal}: ${err}`));
    });
  });
}

it("after SIGKILL, acked messages stay consumed and un-acked ones come back once, with deliveryAttempt 2", async () => {
  const t = tempDir("pop-crash");
  cleanups.push(t.remove);
  const topic = "CrashTopic";
  const group = "GID_crash";
  const count = 30;
  const lines = await runChildAndKill({ dir: t.dir, topic, group, count });
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
