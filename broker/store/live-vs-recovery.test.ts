// The live path dispatches each record from the fields its append already had; recovery dispatches it
// from the bytes. Both must build the very same ConsumeQueues and Index: a store is filled live, then
// its CommitLog alone is copied to a fresh directory and reopened (recovery rebuilds everything), and
// the two are compared byte for byte. The live DispatchRequests are also compared field by field with
// the ones parsed back from the CommitLog. One side runs with helper threads (CommitLog writer, Index
// thread), the other without: the bytes must not depend on where the work was done.
import * as fs from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { bodyFor, STORE_HOST, smallStoreConfig, tempDir } from "../../test/fixtures/store-fixtures.ts";
import { FlushDiskType, HelperThreads, type MessageStoreConfig } from "./config.ts";
import type { DispatchRequest } from "./dispatch.ts";
import { parseRecord, viewToDispatchRequest } from "./message-codec.ts";
import { createMessageStore } from "./message-store.ts";
import type { MessageInput } from "./message-store-types.ts";
import { MessageSysFlag } from "./message-sysflag.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const SEGMENT = 64 * 1024;

/** A mix of what the dispatch fields are derived from: tags, keys, ids, hosts, transaction types, text. */
function messages(): MessageInput[] {
  const out: MessageInput[] = [];
  const topics = ["TopicA", "Topic-B", "%RETRY%group_x", "Тема-ü", "T\u{1F600}"];
  const keySets = [undefined, "", "k1", "k1 k2", " lead", "trail ", "a  b", "ключ ключ2", "x\u{1F600}y"];
  const tagSets = [undefined, "", "TagA", "Таг", "a||b"];
  const txTypes = [
    MessageSysFlag.TRANSACTION_NOT_TYPE,
    MessageSysFlag.TRANSACTION_NOT_TYPE,
    MessageSysFlag.TRANSACTION_PREPARED_TYPE,
    MessageSysFlag.TRANSACTION_COMMIT_TYPE,
    MessageSysFlag.TRANSACTION_ROLLBACK_TYPE,
  ];
  for (let i = 0; i < 700; i++) {
    const props = new Map<string, string>();
    const keys = keySets[i % keySets.length];
    const tags = tagSets[(i >> 1) % tagSets.length];
    if (keys !== undefined) props.set("KEYS", keys);
    if (tags !== undefined) props.set("TAGS", tags);
    if (i % 7 === 0) props.set("UNIQ_KEY", `client-id-${i}`);
    if (i % 11 === 0) props.set("UNIQ_KEY", ""); // empty: the store generates one
    if (i % 13 === 0) props.set("KEYS", `lone\uD800surrogate ${i}`); // stored as U+FFFD
    if (i % 17 === 0) props.set("TAGS", `\uDC00tag`);
    if (i % 5 === 0) props.set("user-prop", `välue ${i}`);
    out.push({
      topic: topics[i % topics.length] as string,
      queueId: i % 3,
      flag: i,
      body: bodyFor(i, 50 + ((i * 37) % 3000)),
      properties: props,
      bornTimestamp: 1_700_000_000_000 + i,
      bornHost: i % 4 === 0 ? { address: "::1", port: 50000 + i } : { address: "10.0.0.1", port: 40000 },
      sysFlag: txTypes[Math.floor(i / 3) % txTypes.length] as number,
      reconsumeTimes: i % 3,
      preparedTransactionOffset: i % 5 === 3 ? 1234 + i : 0,
    });
  }
  return out;
}

/** Every file under `dir` (relative path -> bytes), skipping names that `skip` matches. */
function filesUnder(dir: string, skip: (rel: string) => boolean = () => false): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!fs.existsSync(dir)) return out;
  for (const rel of fs.readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, rel);
    if (fs.statSync(p).isFile() && !skip(rel)) out.set(rel, fs.readFileSync(p));
  }
  return out;
}

/** The index files' contents in name (= creation) order; names are creation times, so they differ. */
function indexFiles(root: string): Buffer[] {
  const dir = join(root, "index");
  return fs
    .readdirSync(dir)
    .filter((n) => /^\d{17}$/.test(n))
    .sort()
    .map((n) => fs.readFileSync(join(dir, n)));
}

/** What recovery dispatches: every record of the CommitLog parsed back from its bytes. */
function parsedRequests(commitLogDir: string): DispatchRequest[] {
  const out: DispatchRequest[] = [];
  for (const name of fs.readdirSync(commitLogDir).sort()) {
    const buf = fs.readFileSync(join(commitLogDir, name));
    const base = Number(name);
    let p = 0;
    while (p < buf.length) {
      const r = parseRecord(buf, p, buf.length, {
        verifyCrc: true,
        segmentRemaining: buf.length - p,
        expectedOffset: base + p,
      });
      if (r.kind !== "record") break;
      out.push(viewToDispatchRequest(buf, r.view));
      p += r.view.size;
    }
  }
  return out;
}

function comparable(r: DispatchRequest): object {
  return {
    topic: r.topic,
    queueId: r.queueId,
    queueOffset: r.queueOffset,
    commitLogOffset: r.commitLogOffset,
    size: r.size,
    tagsCode: r.tagsCode,
    storeTimestamp: r.storeTimestamp,
    bornTimestamp: r.bornTimestamp,
    sysFlag: r.sysFlag,
    keys: r.keys,
    uniqKey: r.uniqKey,
    preparedTransactionOffset: r.preparedTransactionOffset,
    properties: [...r.properties],
  };
}

async function fillLive(cfg: MessageStoreConfig, helperThreads: HelperThreads): Promise<DispatchRequest[]> {
  const live: DispatchRequest[] = [];
  const store = await createMessageStore(cfg, { storeHost: STORE_HOST, helperThreads });
  store.addDispatcher({ dispatch: (r) => live.push(r) });
  const msgs = messages();
  // Single puts (several per tick) and batches, so batches of every shape get confirmed.
  for (let i = 0; i < msgs.length; ) {
    if (i % 3 === 0) {
      await store.putMessages(msgs.slice(i, i + 25));
      i += 25;
    } else {
      await Promise.all(msgs.slice(i, i + 9).map((m) => store.putMessage(m)));
      i += 9;
    }
  }
  await store.shutdown();
  return live;
}

describe("live dispatch vs recovery", () => {
  const modes = [
    { live: HelperThreads.ALWAYS, rebuilt: HelperThreads.NEVER },
    { live: HelperThreads.NEVER, rebuilt: HelperThreads.ALWAYS },
  ];
  for (const flushDiskType of [FlushDiskType.ASYNC_FLUSH, FlushDiskType.SYNC_FLUSH])
    for (const mode of modes)
      it(`${flushDiskType}, helper threads ${mode.live} live / ${mode.rebuilt} rebuilt: a recovery-rebuilt ConsumeQueue and Index equal the live-built ones byte for byte`, async () => {
        const a = tempDir("live");
        const b = tempDir("rebuilt");
        cleanups.push(a.remove, b.remove);
        // Small files so that CommitLog segments, ConsumeQueue files and Index files all roll.
        const overrides: Partial<MessageStoreConfig> = {
          flushDiskType,
          mappedFileSizeCommitLog: SEGMENT,
          mappedFileSizeConsumeQueue: 16 * 20,
          maxHashSlotNum: 97,
          maxIndexNum: 300,
        };
        const live = await fillLive(smallStoreConfig(a.dir, overrides), mode.live);
        expect(fs.readdirSync(join(a.dir, "commitlog")).length).toBeGreaterThan(3);
        expect(indexFiles(a.dir).length).toBeGreaterThan(2);

        // The live requests are exactly what parsing the bytes yields.
        const parsed = parsedRequests(join(a.dir, "commitlog"));
        expect(parsed.length).toBe(700);
        expect(live.map(comparable)).toEqual(parsed.map(comparable));

        // Only the CommitLog goes over: recovery rebuilds ConsumeQueues and Index from it.
        fs.cpSync(join(a.dir, "commitlog"), join(b.dir, "commitlog"), { recursive: true });
        const rebuilt = await createMessageStore(smallStoreConfig(b.dir, overrides), {
          storeHost: STORE_HOST,
          helperThreads: mode.rebuilt,
        });
        expect(rebuilt.recoveryReport.recordsDispatched).toBe(700);
        await rebuilt.shutdown();

        const cqA = filesUnder(join(a.dir, "consumequeue"));
        const cqB = filesUnder(join(b.dir, "consumequeue"));
        expect([...cqB.keys()].sort()).toEqual([...cqA.keys()].sort());
        expect(cqA.size).toBeGreaterThan(20);
        for (const [rel, bytes] of cqA) expect(cqB.get(rel)?.equals(bytes), rel).toBe(true);
        const idxA = indexFiles(a.dir);
        const idxB = indexFiles(b.dir);
        expect(idxB.length).toBe(idxA.length);
        idxA.forEach((bytes, i) => {
          expect(idxB[i]?.equals(bytes), `index file ${i}`).toBe(true);
        });
      });

  it("refuses a topic that is not well-formed UTF-16 (it would be stored as another topic)", async () => {
    const t = tempDir("topic");
    cleanups.push(t.remove);
    const store = await createMessageStore(smallStoreConfig(t.dir), { storeHost: STORE_HOST });
    cleanups.push(() => store.shutdown());
    const msg = messages()[1] as MessageInput;
    await expect(store.putMessage({ ...msg, topic: "bad\uD800" })).rejects.toMatchObject({
      code: "ILLEGAL_TOPIC",
    });
  });
});
