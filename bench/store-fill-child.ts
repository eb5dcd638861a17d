// Child process of the store benchmark: opens a store, appends `bytes` of 1 KiB messages as fast as
// it can, prints "filled <maxPhyOffset>" and waits to be killed (SIGKILL: an unclean stop).
import { defaultMessageStoreConfig } from "../broker/store/config.ts";
import { createMessageStore } from "../broker/store/message-store.ts";
import type { MessageInput } from "../broker/store/message-store-types.ts";

const [dir, bytesArg, sizeArg] = process.argv.slice(2);
if (dir === undefined || bytesArg === undefined) {
  console.error("usage: store-fill-child.ts <dir> <bytes> [messageSize]");
  process.exit(2);
}
const target = Number(bytesArg);
const size = Number(sizeArg ?? 1024);
const store = await createMessageStore(defaultMessageStoreConfig(dir), {
  storeHost: { address: "127.0.0.1", port: 10911 },
});
const body = new Uint8Array(size).fill(0x63);
const batch: MessageInput[] = [];
for (let i = 0; i < 256; i++) {
  batch.push({
    topic: "BenchRecovery",
    queueId: i % 8,
    flag: 0,
    body,
    properties: new Map([["KEYS", `k${i}`]]),
    bornTimestamp: Date.now(),
    bornHost: { address: "127.0.0.1", port: 40000 },
    sysFlag: 0,
    reconsumeTimes: 0,
    preparedTransactionOffset: 0,
  });
}
while (store.getMaxPhyOffset() < target) {
  await store.putMessages(batch);
}
process.stdout.write(`filled ${store.getMaxPhyOffset()}\n`);
setInterval(() => {}, 1000);
