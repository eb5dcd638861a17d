import { readFileSync, writeFileSync } from "node:fs";
import { afterEach, expect, it } from "vitest";
import { ErrorCode } from "../../common/errors.ts";
import { tempDir } from "../../test/fixtures/store-fixtures.ts";
import { readTimerCheckpoint, timerCheckpointPath, writeTimerCheckpoint } from "./timer-checkpoint.ts";

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

it("round-trips the timer checkpoint and refuses a damaged one", async () => {
  const t = tempDir("timercheck");
  cleanups.push(t.remove);
  const file = timerCheckpointPath(t.dir);
  expect(file).toBe(`${t.dir}/config/timercheck`);
  expect(await readTimerCheckpoint(file)).toBeUndefined();
  const d = {
    lastReadTimeMs: 1_700_000_000_000,
    lastTimerLogFlushPos: 5_000_000_052,
    lastTimerQueueOffset: 123_456,
    dequeueScanFrom: 9_876_543_210,
  };
  await writeTimerCheckpoint(file, d);
  expect(await readTimerCheckpoint(file)).toEqual(d);
  const b = readFileSync(file);
  expect(b.readBigInt64BE(0)).toBe(1_700_000_000_000n);
  expect(b.readBigInt64BE(24)).toBe(123_456n);
  b.writeUInt8(b.readUInt8(3) ^ 1, 3);
  writeFileSync(file, b);
  await expect(readTimerCheckpoint(file)).rejects.toMatchObject({ code: ErrorCode.MetadataCorrupt });
});
