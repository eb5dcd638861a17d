// `{root}/abort`: created when the store starts, removed on a clean shutdown. Present at open means the
// last run ended without shutdown (crash, kill -9, power loss).
import * as fs from "node:fs";
import { join } from "node:path";
import { type FileIo, syncDirectory } from "./store-io.ts";

const ABORT_FILE = "abort";

export function abortFileExists(root: string): boolean {
  return fs.existsSync(join(root, ABORT_FILE));
}

export async function createAbortFile(root: string, io: FileIo): Promise<void> {
  await fs.promises.writeFile(join(root, ABORT_FILE), "");
  await syncDirectory(io, root);
}

export async function removeAbortFile(root: string, io: FileIo): Promise<void> {
  await fs.promises.rm(join(root, ABORT_FILE), { force: true });
  await syncDirectory(io, root);
}
