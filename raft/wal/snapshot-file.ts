// Raft snapshot files: written atomically (temp file, fsync, rename, fsync directory), checked by CRC
// when read. Name: `{index:20}-{term:20}.snap`.
// Layout (big-endian): "RSNP" | u8 version | u32 metadata length | metadata JSON {index, term, voters}
//                      | state-machine data | u32 CRC32 of everything before it.

import { readdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Snapshot, SnapshotMetadata } from "../types.ts";
import { fsyncDir } from "./fsync-dir.ts";

const MAGIC = Buffer.from("RSNP", "latin1");
const SNAPSHOT_FORMAT_VERSION = 1;
const FIXED_BYTES = MAGIC.length + 1 + 4;
const SUFFIX = ".snap";
const TEMP_SUFFIX = ".snap.tmp";
const NAME_RE = /^(\d{20})-(\d{20})\.snap$/;

export function snapshotFileName(metadata: SnapshotMetadata): string {
  return `${String(metadata.index).padStart(20, "0")}-${String(metadata.term).padStart(20, "0")}${SUFFIX}`;
}

export function encodeSnapshotFile(snapshot: Snapshot): Buffer {
  const { index, term, voters } = snapshot.metadata;
  const meta = Buffer.from(JSON.stringify({ index, term, voters }), "utf8");
  const buf = Buffer.allocUnsafe(FIXED_BYTES + meta.length + snapshot.data.length + 4);
  MAGIC.copy(buf, 0);
  buf.writeUInt8(SNAPSHOT_FORMAT_VERSION, 4);
  buf.writeUInt32BE(meta.length, 5);
  meta.copy(buf, FIXED_BYTES);
  buf.set(snapshot.data, FIXED_BYTES + meta.length);
  const end = buf.length - 4;
  buf.writeUInt32BE(crc32(buf.subarray(0, end)), end);
  return buf;
}

export function decodeSnapshotFile(buf: Buffer): Snapshot {
  const bad = (why: string) => new RmqError(ErrorCode.CorruptRecord, `snapshot file: ${why}`);
  if (buf.length < FIXED_BYTES + 4 || !buf.subarray(0, 4).equals(MAGIC)) throw bad("bad magic or too short");
  if (crc32(buf.subarray(0, buf.length - 4)) !== buf.readUInt32BE(buf.length - 4)) throw bad("CRC mismatch");
  if (buf.readUInt8(4) !== SNAPSHOT_FORMAT_VERSION) throw bad(`unknown version ${buf.readUInt8(4)}`);
  const metaLen = buf.readUInt32BE(5);
  if (FIXED_BYTES + metaLen > buf.length - 4) throw bad("metadata overruns the file");
  let meta: { index?: unknown; term?: unknown; voters?: unknown };
  try {
    meta = JSON.parse(buf.toString("utf8", FIXED_BYTES, FIXED_BYTES + metaLen));
  } catch (e) {
    throw new RmqError(ErrorCode.CorruptRecord, "snapshot file: metadata is not JSON", { cause: e });
  }
  const { index, term, voters } = meta;
  if (
    !Number.isSafeInteger(index) ||
    !Number.isSafeInteger(term) ||
    !Array.isArray(voters) ||
    !voters.every((v) => typeof v === "string")
  ) {
    throw bad("bad metadata");
  }
  return {
    metadata: { index: index as number, term: term as number, voters: voters as string[] },
    data: buf.subarray(FIXED_BYTES + metaLen, buf.length - 4),
  };
}

/** Writes a snapshot durably; a crash leaves either the old set of files or the new one, never half a file. */
export async function writeSnapshotFile(dir: string, snapshot: Snapshot): Promise<string> {
  const name = snapshotFileName(snapshot.metadata);
  const tmp = join(dir, `${name.slice(0, -SUFFIX.length)}${TEMP_SUFFIX}`);
  await writeFile(tmp, encodeSnapshotFile(snapshot), { flush: true }); // flush: fsync before close
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
  return name;
}

export interface LoadedSnapshot {
  snapshot: Snapshot;
  file: string;
  /** Newer snapshot files that failed their check and were skipped. */
  skipped: Array<{ file: string; reason: string }>;
}

/** Snapshot file names in `dir`, newest (highest index, then term) first. */
export async function listSnapshotFiles(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).filter((n) => NAME_RE.test(n));
  return names.sort().reverse(); // zero-padded: lexical order = numeric order
}

/** The newest snapshot that passes its CRC check, or undefined if there is none. */
export async function loadLatestSnapshot(dir: string): Promise<LoadedSnapshot | undefined> {
  const skipped: LoadedSnapshot["skipped"] = [];
  for (const file of await listSnapshotFiles(dir)) {
    try {
      const snapshot = decodeSnapshotFile(await readFile(join(dir, file)));
      const m = NAME_RE.exec(file) as RegExpExecArray;
      if (Number(m[1]) !== snapshot.metadata.index || Number(m[2]) !== snapshot.metadata.term) {
        throw new RmqError(ErrorCode.CorruptRecord, "snapshot file name does not match its metadata");
      }
      return { snapshot, file, skipped };
    } catch (e) {
      skipped.push({ file, reason: e instanceof Error ? e.message : String(e) });
    }
  }
  return undefined;
}

/** Deletes leftover temp files and all but the newest `keep` snapshots. */
export async function pruneSnapshotFiles(dir: string, keep: number): Promise<void> {
  const all = await readdir(dir);
  const doomed = [
    ...all.filter((n) => n.endsWith(TEMP_SUFFIX)),
    ...(await listSnapshotFiles(dir)).slice(keep),
  ];
  for (const n of doomed) await unlink(join(dir, n));
  if (doomed.length > 0) await fsyncDir(dir);
}
