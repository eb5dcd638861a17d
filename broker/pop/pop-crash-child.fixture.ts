// Child of pop-crash.test.ts (not a test): opens a broker in the given directory, sends messages, pops
// them all, acks some, prints what it did, then waits to be SIGKILLed. Consumer offsets are never
// persisted here (no periodic persist, no clean close), so the parent also checks that a restart
// takes what was popped from the revive log's check points. With `fifo`, the group consumes orderly
// and the messages carry message groups; once a group's message is left un-acked, its later ones are
// left too (a FIFO consumer does not skip ahead). Lines go out with synchronous writes so they reach
// the parent before the kill:
//   ACKED <body>   KEPT <body>   DONE
import { writeSync } from "node:fs";
import { bodyText, createTopic, openTestBroker } from "./test-broker.fixture.ts";

interface ChildArgs {
  dir: string;
  topic: string;
  group: string;
  count: number;
  /** Orderly group; messages in `fifo` message groups ("g<k>"). */
  fifo?: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as ChildArgs;

function out(line: string): void {
  writeSync(1, `${line}\n`);
}

const b = await openTestBroker(args.dir);
await createTopic(b, args.topic, 2);
const fifo = args.fifo;
if (fifo !== undefined) await b.groups.createOrUpdate({ groupName: args.group, consumeMessageOrderly: true });
for (let i = 0; i < args.count; i++) {
  const g = fifo === undefined ? undefined : `g${i % fifo}`;
  await b.service.sendMessages({
    topic: args.topic,
    // FIFO: one queue, so queue order is send order for every group.
    ...(g === undefined ? {} : { queueId: 0 }),
    messages: [
      {
        body: Buffer.from(`m${i}`),
        keys: [`k${i}`],
        ...(g === undefined ? {} : { properties: { __SHARDINGKEY: g } }),
      },
    ],
  });
}
// FIFO: groups with a message left un-acked; nothing after it in the group is acked (or popped again).
const stuck = new Set<string>();
for (;;) {
  const got = await b.service.pop(args.group, args.topic, {
    maxMessages: 5,
    invisibleTimeMs: 60_000,
    fifo: fifo !== undefined,
  });
  if (got.length === 0) break;
  const ack = got.filter((m) => {
    const g = m.message.properties.get("__SHARDINGKEY") ?? "";
    if (stuck.has(g)) return false;
    const i = Number(bodyText(m.message.body).slice(1));
    const keep = fifo === undefined ? i % 3 === 0 : i % 7 === 0;
    if (keep && fifo !== undefined) stuck.add(g);
    return !keep;
  });
  const results = await b.service.ack(
    args.group,
    args.topic,
    ack.map((m) => m.receiptHandle),
  );
  for (let i = 0; i < ack.length; i++)
    if (results[i]?.ok === true) out(`ACKED ${bodyText((ack[i] as (typeof ack)[number]).message.body)}`);
  for (const m of got) if (!ack.includes(m)) out(`KEPT ${bodyText(m.message.body)}`);
}
out("DONE");
setInterval(() => {}, 1000);
