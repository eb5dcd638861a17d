// Child of transaction-crash.test.ts (not a test): opens a transaction broker in the given directory,
// sends half messages, commits some, rolls back some, runs a check pass, answers some checks, prints
// what it did, then waits to be SIGKILLed. Consumer offsets are never persisted here, so the parent
// also checks the rebuild from the half and op queues alone. Lines go out with synchronous writes:
//   COMMITTED|ROLLEDBACK|PENDING <transactionId> <messageId> <body>   CHECKS <n>   DONE
import { writeSync } from "node:fs";
import {
  openTxBroker,
  type SentHalf,
  sendHalf,
  TestClock,
  TX_GROUP,
  TX_TOPIC,
} from "./transaction-test.fixture.ts";

const args = JSON.parse(process.argv[2] ?? "{}") as { dir: string; start: number; count: number };

function out(line: string): void {
  writeSync(1, `${line}\n`);
}

function print(kind: string, tx: SentHalf): void {
  out(`${kind} ${tx.transactionId} ${tx.messageId} ${tx.body}`);
}

const clock = new TestClock(args.start);
const b = await openTxBroker(args.dir, { clock });
const txs: SentHalf[] = [];
for (let i = 0; i < args.count; i++) txs.push(await sendHalf(b, clock, { body: `m${i}`, queueId: i % 4 }));
const endTx = (tx: SentHalf, resolution: "COMMIT" | "ROLLBACK", fromTransactionCheck: boolean) =>
  b.service.endTransaction({
    topic: TX_TOPIC,
    producerGroup: TX_GROUP,
    transactionId: tx.transactionId,
    messageId: tx.messageId,
    resolution,
    fromTransactionCheck,
  });
for (const [i, tx] of txs.entries()) {
  if (i % 4 === 0) {
    await endTx(tx, "COMMIT", false);
    print("COMMITTED", tx);
  } else if (i % 4 === 1) {
    await endTx(tx, "ROLLBACK", false);
    print("ROLLEDBACK", tx);
  }
}
clock.advance(7000);
out(`CHECKS ${await b.service.checkNow()}`);
for (const [i, tx] of txs.entries()) {
  if (i % 4 === 2) {
    await endTx(tx, "COMMIT", true);
    print("COMMITTED", tx);
  } else if (i % 4 === 3) {
    print("PENDING", tx);
  }
}
out("DONE");
setInterval(() => {}, 1000);
