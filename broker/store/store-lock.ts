// `{root}/lock`: one process (and one store instance) per store directory.
//
// Node has no flock, so the lock is a file created with O_EXCL holding the owner's pid and host. A lock
// file left by a process that is gone (kill -9) is taken over: the pid is checked with kill(pid, 0) when
// the lock was written on this host. Inside one process a registry of held roots refuses a second open.
// Limits: the pid check cannot see other PID namespaces (two containers sharing one volume see each
// other's lock as stale only if the pid happens to be free locally), and a takeover race between two
// starters is closed by re-reading the file after writing it.
import * as fs from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { ErrorCode, RmqError } from "../../common/errors.ts";

const heldInProcess = new Set<string>();
const LOCK_FILE = "lock";

export interface StoreLock {
  readonly path: string;
  release(): Promise<void>;
}

interface LockOwner {
  pid: number;
  host: string;
  token: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(fs.readFileSync(path, "utf8")) as Partial<LockOwner>;
    if (typeof o.pid === "number" && typeof o.host === "string" && typeof o.token === "string")
      return o as LockOwner;
  } catch {
    // unreadable or half-written: treated as stale below
  }
  return undefined;
}

export async function acquireStoreLock(root: string): Promise<StoreLock> {
  const key = resolve(root);
  if (heldInProcess.has(key))
    throw new RmqError(ErrorCode.StoreLocked, `store ${root} is already open in this process`);
  const path = join(root, LOCK_FILE);
  const me: LockOwner = {
    pid: process.pid,
    host: hostname(),
    token: `${process.pid}-${Date.now()}-${Math.random()}`,
  };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
      try {
        fs.writeSync(fd, JSON.stringify(me));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      if (readOwner(path)?.token !== me.token) continue; // lost a takeover race
      heldInProcess.add(key);
      let released = false;
      return {
        path,
        async release() {
          if (released) return;
          released = true;
          heldInProcess.delete(key);
          if (readOwner(path)?.token === me.token) await fs.promises.rm(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      const owner = readOwner(path);
      const stale =
        owner === undefined || (owner.host === me.host && (owner.pid === process.pid || !alive(owner.pid)));
      if (!stale) {
        throw new RmqError(
          ErrorCode.StoreLocked,
          `store ${root} is locked by pid ${owner?.pid} on ${owner?.host}`,
        );
      }
      // The owner is gone (or this very process, which the registry says does not hold it): take over.
      fs.rmSync(path, { force: true });
    }
  }
  throw new RmqError(ErrorCode.StoreLocked, `could not take the lock of store ${root}`);
}
