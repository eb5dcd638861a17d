// The positional file IO the store's hot paths use, behind one small interface so tests can observe
// (count, delay, fail) real calls. All of it runs on libuv's thread pool (nothing blocks the loop) except
// writevSync, which an IO may offer for ASYNC_FLUSH appends (commitlog.ts).
import * as fs from "node:fs";

export interface FileIo {
  /** Positional gather write; resolves with the bytes written. */
  writev(fd: number, buffers: Uint8Array[], position: number): Promise<number>;
  /**
   * The same write on the calling thread, returning the bytes written. Optional: where present the
   * CommitLog uses it for ASYNC_FLUSH batches, which only go to the page cache — there a hand-off to the
   * thread pool and back costs more CPU than the copy it moves (measured in bench:store).
   */
  writevSync?(fd: number, buffers: Uint8Array[], position: number): number;
  /** Positional read into `buf[offset, offset+length)`; resolves with the bytes read. */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /**
   * The same read on the calling thread. Optional: where present the CommitLog uses it for records
   * likely in the page cache (accessMessageInMemoryMaxRatio), where it costs a few µs of CPU against
   * tens for a thread-pool read and its callback (measured: 32 KiB 2.8 vs ~15–19 µs).
   */
  readSync?(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number;
  fdatasync(fd: number): Promise<void>;
  /** Full fsync, used for directories (new or removed files). */
  fsync(fd: number): Promise<void>;
}

export const nodeFileIo: FileIo = {
  writev(fd, buffers, position) {
    return new Promise((resolve, reject) => {
      fs.writev(fd, buffers, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  },
  writevSync(fd, buffers, position) {
    return fs.writevSync(fd, buffers, position);
  },
  readSync(fd, buf, offset, length, position) {
    return fs.readSync(fd, buf, offset, length, position);
  },
  read(fd, buf, offset, length, position) {
    return new Promise((resolve, reject) => {
      fs.read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
    });
  },
  fdatasync(fd) {
    return new Promise((resolve, reject) => {
      fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()));
    });
  },
  fsync(fd) {
    return new Promise((resolve, reject) => {
      fs.fsync(fd, (err) => (err ? reject(err) : resolve()));
    });
  },
};

/** What is left of `buffers` after the first `done` bytes (to continue after a short write). */
function remainder(buffers: Uint8Array[], done: number): Uint8Array[] {
  const rest: Uint8Array[] = [];
  let skip = done;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

/** Writes all of `buffers` at `position` with io.writevSync, continuing after short writes. */
export function writeFullySync(
  writevSync: NonNullable<FileIo["writevSync"]>,
  fd: number,
  buffers: Uint8Array[],
  position: number,
): void {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = writevSync(fd, buffers, position);
  while (done < total) {
    const n = writevSync(fd, remainder(buffers, done), position + done);
    if (n <= 0) throw new Error(`write made no progress at ${position + done}`);
    done += n;
  }
}

/** Writes all of `buffers` at `position`, continuing after short writes. */
export async function writeFully(
  io: FileIo,
  fd: number,
  buffers: Uint8Array[],
  position: number,
): Promise<void> {
  let total = 0;
  for (const b of buffers) total += b.length;
  let done = await io.writev(fd, buffers, position);
  while (done < total) {
    // Rare: rebuild the remaining iovec list after a short write.
    const n = await io.writev(fd, remainder(buffers, done), position + done);
    if (n <= 0) throw new Error(`write made no progress at ${position + done}`);
    done += n;
  }
}

/** Reads exactly `length` bytes with io.readSync unless the file ends first; returns the bytes read. */
export function readFullySync(
  readSync: NonNullable<FileIo["readSync"]>,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): number {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Reads exactly `length` bytes unless the file ends first; resolves with the bytes read. */
export async function readFully(
  io: FileIo,
  fd: number,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await io.read(fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** fsync a directory so that files created in or removed from it survive a power loss. */
export async function syncDirectory(io: FileIo, dir: string): Promise<void> {
  const fd = await fs.promises.open(dir, "r");
  try {
    await io.fsync(fd.fd);
  } finally {
    await fd.close();
  }
}
