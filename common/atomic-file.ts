// Crash-safe whole-file replacement for small metadata files (topics.json, consumerOffset.json, ...).
//
// Write: the new content goes to `<file>.tmp`, is fsynced, the current file is hard-linked to
// `<file>.bak` (the previous version, for operators), the temp file is renamed over the file, and the
// directory is fsynced so the rename itself survives power loss. A reader therefore sees either the
// old or the new content, never a mix.
//
// Read: a leftover `<file>.tmp` (a crash before the rename) is ignored and removed. A file that does
// not parse is a startup error naming the file and the `.bak` copy; we do NOT silently fall back to
// the backup (upstream does), because a silent rollback of topics or offsets is worse than a clear
// stop. The operator decides whether to copy the `.bak` over.

import { constants } from "node:fs";
import * as fsp from "node:fs/promises";
import * as path from "node:path";
import { ErrorCode, RmqError } from "./errors.ts";

const TEMP_SUFFIX = ".tmp";
const BACKUP_SUFFIX = ".bak";

/** Writes to the same path are queued so two persists never interleave their temp files. */
const writeQueues = new Map<string, Promise<void>>();

export async function fsyncDirectory(dir: string): Promise<void> {
  const fh = await fsp.open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `file` with `data` atomically and durably (temp + fsync + rename + directory fsync). */
export function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const prev = writeQueues.get(file) ?? Promise.resolve();
  const next = prev.then(
    () => replace(file, data),
    () => replace(file, data),
  );
  const tracked = next.finally(() => {
    if (writeQueues.get(file) === tracked) writeQueues.delete(file);
  });
  writeQueues.set(file, tracked);
  return next;
}

async function replace(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = file + TEMP_SUFFIX;
  const fh = await fsp.open(tmp, "w");
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await keepBackup(file);
  await fsp.rename(tmp, file);
  await fsyncDirectory(dir);
}

/** Makes `<file>.bak` the current version of `file` (a hard link, no copy), if `file` exists. */
async function keepBackup(file: string): Promise<void> {
  const bak = file + BACKUP_SUFFIX;
  try {
    await fsp.rm(bak, { force: true });
    await fsp.link(file, bak);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return; // first write: nothing to back up
    if (code === "EPERM" || code === "ENOTSUP" || code === "EXDEV" || code === "EMLINK") {
      await fsp.copyFile(file, bak); // file systems without hard links
      return;
    }
    throw e;
  }
}

/**
 * Reads `file` as UTF-8, or undefined when it does not exist. A leftover temp file from an
 * interrupted write is removed: it never replaced the file, so its content is not authoritative.
 */
export async function readFileIfExists(file: string): Promise<string | undefined> {
  await fsp.rm(file + TEMP_SUFFIX, { force: true });
  try {
    return await fsp.readFile(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/**
 * Reads and parses a JSON metadata file; undefined when absent. `parse` may be given to accept
 * non-standard JSON (upstream's fastjson output); it must throw on bad input. A file that is empty
 * or does not parse throws RmqError(MetadataCorrupt) with one line naming the file and its backup.
 */
export async function readJsonFile(
  file: string,
  parse: (text: string) => unknown = JSON.parse,
): Promise<unknown | undefined> {
  const text = await readFileIfExists(file);
  if (text === undefined) return undefined;
  try {
    if (text.trim().length === 0) throw new Error("file is empty");
    return parse(text);
  } catch (e) {
    throw corruptFileError(file, (e as Error).message, e);
  }
}

/** The one error every metadata loader throws for a file it cannot use. */
export function corruptFileError(file: string, reason: string, cause?: unknown): RmqError {
  return new RmqError(
    ErrorCode.MetadataCorrupt,
    `metadata file ${file} is unusable (${reason.replace(/\s+/g, " ")}); ` +
      `fix it, or restore the previous version from ${file}${BACKUP_SUFFIX} if present, then restart`,
    { cause },
  );
}
