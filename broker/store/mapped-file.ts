// One segment file (CommitLog or ConsumeQueue), named by its 20-digit start offset and preallocated to
// its full size with ftruncate (sparse). Node has no mmap, so it is an fd used with positional IO.
// Reads and writes hold a reference; destroy/close wait until the last holder is gone, so an fd number
// is never closed (and possibly reused by another open) under an in-flight operation.
import * as fs from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const openAsync = promisify(fs.open);
const fstatAsync = promisify(fs.fstat);
const ftruncateAsync = promisify(fs.ftruncate);

/** File name of a segment starting at `offset` (upstream UtilAll.offset2FileName). */
export function offset2FileName(offset: number): string {
  return String(offset).padStart(20, "0");
}

const FILE_NAME_PATTERN = /^\d{20}$/;

/** Start offset named by a segment file name, or undefined when the name is not one. */
export function fileName2Offset(name: string): number | undefined {
  if (!FILE_NAME_PATTERN.test(name)) return undefined;
  const v = Number(name);
  return Number.isSafeInteger(v) ? v : undefined;
}

export class MappedFile {
  readonly fileFromOffset: number;
  readonly fileSize: number;
  readonly path: string;
  readonly fd: number;
  private refs = 1;
  private alive = true;
  private closed: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;

  constructor(path: string, fd: number, fileFromOffset: number, fileSize: number) {
    this.path = path;
    this.fd = fd;
    this.fileFromOffset = fileFromOffset;
    this.fileSize = fileSize;
  }

  /** Creates (or opens) the segment synchronously: used inside the CommitLog's append section when it rolls. */
  static createSync(dir: string, fromOffset: number, fileSize: number): MappedFile {
    const path = join(dir, offset2FileName(fromOffset));
    const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      if (fs.fstatSync(fd).size < fileSize) fs.ftruncateSync(fd, fileSize);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new MappedFile(path, fd, fromOffset, fileSize);
  }

  /** Opens (creating if needed) a segment; a file shorter than `fileSize` is extended with zeros. */
  static async open(dir: string, fromOffset: number, fileSize: number): Promise<MappedFile> {
    const path = join(dir, offset2FileName(fromOffset));
    const fd = await openAsync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
    try {
      const st = await fstatAsync(fd);
      if (st.size < fileSize) await ftruncateAsync(fd, fileSize);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    return new MappedFile(path, fd, fromOffset, fileSize);
  }

  get fileEnd(): number {
    return this.fileFromOffset + this.fileSize;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** Takes a reference for one IO; false when the file is being closed or deleted. */
  hold(): boolean {
    if (!this.alive) return false;
    this.refs++;
    return true;
  }

  release(): void {
    this.refs--;
    if (this.refs === 0) {
      fs.close(this.fd, () => this.closedResolve?.());
    }
  }

  /** Stops new IO, waits for in-flight IO, closes the fd. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.alive = false;
    this.closed = new Promise<void>((resolve) => {
      this.closedResolve = resolve;
    });
    this.release();
    return this.closed;
  }

  /** close() then remove the file. */
  async destroy(): Promise<void> {
    await this.close();
    await fs.promises.rm(this.path, { force: true });
  }

  /**
   * Zeroes the file from `position` (relative) to its end by cutting it there and growing it back, so the
   * kernel drops the old bytes (they read back as zeros, and the tail becomes sparse). Caller holds IO off.
   */
  async zeroFrom(position: number): Promise<void> {
    await ftruncateAsync(this.fd, position);
    await ftruncateAsync(this.fd, this.fileSize);
  }

  /** Last modification time of the file (ms). */
  async lastModified(): Promise<number> {
    const st = await fs.promises.stat(this.path);
    return st.mtimeMs;
  }
}
