// `{storePathRootDir}/config/timercheck` (upstream TimerCheckpoint), how far the timer is durable:
//
//   0  lastReadTimeMs         8  every slot before this one has been delivered
//   8  lastTimerLogFlushPos   8  the wheel file includes every timer log unit before this position
//   16 lastTimerQueueOffset   8  every timer-topic ConsumeQueue entry before this is in the timer log
//   24 masterTimerQueueOffset 8  as upstream (the same value here: no slave timer)
//   32 dequeueScanFrom        8  ours: deliveries of slots >= lastReadTimeMs are all at or after this
//                                CommitLog offset (where the restart looks for what was delivered)
//   40 CRC32 of bytes 0..40   4  ours
//
// Big-endian longs as upstream's first four fields; upstream's data version fields are left out.
// Replaced atomically (temp file + fsync + rename, common/atomic-file.ts); a file whose CRC does not
// match is a startup error, never silently ignored.

import * as fsp from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { corruptFileError, writeFileAtomic } from "../../common/atomic-file.ts";
import { readLong, writeLong } from "../store/message-codec.ts";

const FILE_SIZE = 44;
const CRC_POS = 40;

export interface TimerCheckpointData {
  lastReadTimeMs: number;
  lastTimerLogFlushPos: number;
  lastTimerQueueOffset: number;
  dequeueScanFrom: number;
}

export function timerCheckpointPath(storePathRootDir: string): string {
  return join(storePathRootDir, "config", "timercheck");
}

export function encodeTimerCheckpoint(d: TimerCheckpointData): Buffer {
  const b = Buffer.alloc(FILE_SIZE);
  writeLong(b, 0, d.lastReadTimeMs);
  writeLong(b, 8, d.lastTimerLogFlushPos);
  writeLong(b, 16, d.lastTimerQueueOffset);
  writeLong(b, 24, d.lastTimerQueueOffset);
  writeLong(b, 32, d.dequeueScanFrom);
  b.writeUInt32BE(crc32(b.subarray(0, CRC_POS)), CRC_POS);
  return b;
}

/** Reads the checkpoint; undefined when there is none (first start). */
export async function readTimerCheckpoint(file: string): Promise<TimerCheckpointData | undefined> {
  await fsp.rm(`${file}.tmp`, { force: true });
  let b: Buffer;
  try {
    b = await fsp.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  if (b.length !== FILE_SIZE) throw corruptFileError(file, `${b.length} bytes, expected ${FILE_SIZE}`);
  if (b.readUInt32BE(CRC_POS) !== crc32(b.subarray(0, CRC_POS))) throw corruptFileError(file, "CRC mismatch");
  const d: TimerCheckpointData = {
    lastReadTimeMs: readLong(b, 0),
    lastTimerLogFlushPos: readLong(b, 8),
    lastTimerQueueOffset: readLong(b, 16),
    dequeueScanFrom: readLong(b, 32),
  };
  if (Object.values(d).some((v) => v < 0)) throw corruptFileError(file, "negative field");
  return d;
}

export function writeTimerCheckpoint(file: string, d: TimerCheckpointData): Promise<void> {
  return writeFileAtomic(file, encodeTimerCheckpoint(d));
}
