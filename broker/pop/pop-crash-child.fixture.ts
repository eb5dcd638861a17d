// Child of pop-crash.test.ts (not a test): opens a broker in the given directory, sends messages, pops
// them all, acks some, prints what it did, then waits to be SIGKILLed. Consumer offsets are never
// persisted here (no periodic persist, no clean close), so the parent also checks that a restart
// takes what was popped from the revive log's check points. Lines go out with synchronous writes so
// they reach the parent before the kill:
//   ACKED <body>   KEPT <body>   DONE
import { writeSync } from "node:fs";
import { bodyText, createTopic, openTestBroker } from "./test-broker.fixture.ts";

interface ChildArgs {
  dir: string;
  topic: string;
  group: string;
  count: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as ChildArgs;

function out(line: string): void {
  writeSync(1, `${line}\n`);
}

const b = await openTestBroker(args.dir);
await createTopic(b, args.topic, 2);
for (let i = 0; i < args.count; i++) {
  await b.service.sendMessages({
    topic: args.topic,
    messages: [{ body: Buffer.from(`m${i}`), keys: [`k${i}`] }],
  });
}
for (;;) {
  const got = await b.service.pop(args.group, args.topic, { maxMessages: 5, invisibleTimeMs: 60_000 });
  if (got.length === 0) break;
  const ack = got.filter((m) => Number(bodyText(m.message.body).slice(1)) % 3 !== 0);
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
