// Child of timer-crash.test.ts (not a test): opens a store + timer in the given directory (real clock,
// 100 ms precision), sends three groups of timer messages, then freezes (the event loop blocks in a
// store dispatcher, in the middle of the timer's delivery of the first group) right after printing
// DONE, and waits for the parent's SIGKILL. Lines go out with synchronous writes:
//   SENT <count>   DONE
import { writeSync } from "node:fs";
import type { DispatchRequest } from "../store/dispatch.ts";
import { openTimerBroker } from "./timer-test.fixture.ts";

interface ChildArgs {
  dir: string;
  topic: string;
  /** Messages per group: [due in 1.5 s, due in 2.5 s, due in 5 s]. */
  groups: [number, number, number];
  /** Freeze after this many deliveries to the topic. */
  freezeAfter: number;
  timerFlushIntervalMs: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as ChildArgs;

function out(line: string): void {
  writeSync(1, `${line}\n`);
}

const b = await openTimerBroker(args.dir, {
  timer: { timerPrecisionMs: 100, timerFlushIntervalMs: args.timerFlushIntervalMs },
});
let delivered = 0;
b.store.addDispatcher({
  dispatch(req: DispatchRequest) {
    if (req.topic !== args.topic) return;
    if (++delivered === args.freezeAfter) {
      out("DONE");
      // Freeze here, mid-delivery, until the SIGKILL arrives.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    }
  },
});
const now = Date.now();
const dues = [now + 1500, now + 2500, now + 5000];
let sent = 0;
for (const [g, count] of args.groups.entries()) {
  for (let i = 0; i < count; i++) {
    await b.send(args.topic, `g${g}-${i}`, { TIMER_DELIVER_MS: String(dues[g]) }, i % 2);
    sent++;
  }
}
out(`SENT ${sent}`);
setInterval(() => {}, 1000);
