import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterEach, expect, it } from "vitest";
import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { SystemTopic } from "../../common/topic-validator.ts";
import { runChildAndKill } from "../../test/fixtures/crash-child.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { TransactionProperty } from "./transaction-properties.ts";
import {
  bodyText,
  openTxBroker,
  readAll,
  TestClock,
  TX_GROUP,
  TX_TOPIC,
} from "./transaction-test.fixture.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CHILD = join(import.meta.dirname, "transaction-crash-child.fixture.ts");

interface Tx {
  transactionId: string;
  messageId: string;
  body: string;
}

it("after SIGKILL, ended transactions stay ended, pending ones are checked and commit with their old ids", async () => {
  const t = tempDir("tx-crash");
  cleanups.push(t.remove);
  const start = 1_700_000_000_000;
  const count = 24;
  const lines = await runChildAndKill(CHILD, { dir: t.dir, start, count });
  const of = (kind: string): Tx[] =>
    lines
      .filter((l) => l.startsWith(`${kind} `))
      .map((l) => {
        const [, transactionId, messageId, body] = l.split(" ");
        return { transactionId, messageId, body } as Tx;
      });
  const committed = of("COMMITTED");
  const rolledBack = of("ROLLEDBACK");
  const pending = of("PENDING");
  expect([committed.length, rolledBack.length, pending.length]).toEqual([12, 6, 6]);
  expect(lines).toContain("CHECKS 12");
  expect(existsSync(join(t.dir, "config", "consumerOffset.json"))).toBe(false);

  const clock = new TestClock(start + 7000 + 30_000);
  const b = await openTxBroker(t.dir, { clock });
  cleanups.push(() => b.close());
  const endTx = (tx: Tx, resolution: "COMMIT" | "ROLLBACK") =>
    b.service.endTransaction({
      topic: TX_TOPIC,
      producerGroup: TX_GROUP,
      transactionId: tx.transactionId,
      messageId: tx.messageId,
      resolution,
      fromTransactionCheck: false,
    });
  for (const tx of [...committed, ...rolledBack]) {
    const err = await endTx(tx, "COMMIT").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isRmqError(err, ErrorCode.TransactionNotFound), tx.body).toBe(true);
  }
  // Only the pending transactions are checked, each once, as their second check.
  expect(await b.service.checkNow()).toBe(pending.length);
  expect(b.checks.map((c) => c.messageId).sort()).toEqual(pending.map((p) => p.messageId).sort());
  expect(
    b.checks.every((c) => c.message.properties.get(TransactionProperty.TRANSACTION_CHECK_TIMES) === "2"),
  ).toBe(true);
  const [commitNow, rollBackNow] = [pending.slice(0, 3), pending.slice(3)];
  for (const tx of commitNow) await endTx(tx, "COMMIT");
  for (const tx of rollBackNow) await endTx(tx, "ROLLBACK");
  clock.advance(30_000);
  expect(await b.service.checkNow()).toBe(0);
  expect(await readAll(b, SystemTopic.TRANS_CHECK_MAX_TIME, 1)).toEqual([]);
  const delivered = (await readAll(b, TX_TOPIC)).map((m) => bodyText(m.body)).sort();
  expect(delivered).toEqual([...committed, ...commitNow].map((tx) => tx.body).sort());
});
