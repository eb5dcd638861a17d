import { closeSync, ftruncateSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../common/logger.ts";
import { STORE_HOST, tempDir, testMessage } from "../../test/fixtures/store-fixtures.ts";
import { CommitLogWriter } from "./commitlog-writer.ts";
import { ipToBytes } from "./host-address.ts";
import { encodeBlank, encodeUnsealedRecord, parseRecord } from "./message-codec.ts";
import { OffsetMsgIdEncoder } from "./message-id.ts";
import { prepareMessage } from "./put-message-prepare.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function readyWriter(): Promise<CommitLogWriter> {
  const w = new CommitLogWriter(silentLogger());
  cleanups.push(() => w.close());
  const deadline = Date.now() + 10_000;
  while (!w.ready) {
    if (Date.now() > deadline) throw new Error("writer thread did not start");
    await new Promise((r) => setTimeout(r, 5));
  }
  return w;
}

const ctx = {
  maxMessageSize: 1 << 20,
  maxRecordSize: 1 << 20,
  storeHost: ipToBytes(STORE_HOST.address),
  storePort: STORE_HOST.port,
  msgIds: new OffsetMsgIdEncoder(STORE_HOST),
};

/** Unsealed records (and a blank marker after the second) at file offsets from 0; returns their offsets. */
function encodeBatch(buf: Buffer): { offsets: number[]; end: number } {
  const offsets: number[] = [];
  let at = 0;
  for (let i = 0; i < 3; i++) {
    const r = prepareMessage(testMessage({ id: i, size: 200 + i * 300, keys: `k-${i}` }), ctx, Date.now());
    r.physicalOffset = at;
    r.queueOffset = i;
    r.storeTimestamp = Date.now();
    encodeUnsealedRecord(buf, at, r.size, r);
    offsets.push(at);
    at += r.size;
    if (i === 1) {
      encodeBlank(buf, at, 8);
      at += 8;
    }
  }
  return { offsets, end: at };
}

describe("CommitLog writer thread", () => {
  it("seals and writes a batch, takes its buffer meanwhile and gives it back", async () => {
    const t = tempDir("commitlog-writer");
    cleanups.push(t.remove);
    const path = join(t.dir, "segment");
    const fd = openSync(path, "w+");
    cleanups.push(() => closeSync(fd));
    ftruncateSync(fd, 64 * 1024);
    const w = await readyWriter();
    const buf = Buffer.allocUnsafeSlow(16 * 1024);
    const { offsets, end } = encodeBatch(buf);
    const done = w.write([buf], [{ fd, position: 0, spans: [{ buf, start: 0, end, encoded: true }] }]);
    expect(buf.length).toBe(0); // moved to the thread
    const back = await done;
    expect(back.map((b) => b.length)).toEqual([16 * 1024]);
    const file = readFileSync(path);
    for (const o of offsets) {
      const res = parseRecord(file, o, file.length, {
        verifyCrc: true,
        segmentRemaining: file.length - o,
        expectedOffset: o,
      });
      expect(res.kind).toBe("record");
    }
    // The bytes written are the bytes in the buffer it gave back: sealed in place.
    expect(file.subarray(0, end).equals((back[0] as Buffer).subarray(0, end))).toBe(true);
  });

  it("fails a job with the IO error of its write, and is not ready once closed", async () => {
    const t = tempDir("commitlog-writer");
    cleanups.push(t.remove);
    const path = join(t.dir, "segment");
    closeSync(openSync(path, "w"));
    const readOnly = openSync(path, "r");
    cleanups.push(() => closeSync(readOnly));
    const w = await readyWriter();
    const buf = Buffer.allocUnsafeSlow(16 * 1024);
    const { end } = encodeBatch(buf);
    await expect(
      w.write([buf], [{ fd: readOnly, position: 0, spans: [{ buf, start: 0, end, encoded: true }] }]),
    ).rejects.toMatchObject({ code: "EBADF" });
    await w.close();
    expect(w.ready).toBe(false);
    await expect(w.write([], [])).rejects.toThrow(/not ready/);
  });
});
