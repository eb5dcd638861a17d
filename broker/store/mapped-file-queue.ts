// The ordered list of segment files in one directory (upstream MappedFileQueue): the CommitLog's, and
// each ConsumeQueue's. Knows which file holds an offset, creates the next file, cuts and deletes files.
import * as fs from "node:fs";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { fileName2Offset, MappedFile } from "./mapped-file.ts";
import { type FileIo, syncDirectory } from "./store-io.ts";

export class MappedFileQueue {
  readonly dir: string;
  readonly fileSize: number;
  readonly files: MappedFile[] = [];
  /** A file was created or removed since the directory was last fsynced. */
  dirDirty = false;

  constructor(dir: string, fileSize: number) {
    this.dir = dir;
    this.fileSize = fileSize;
  }

  /**
   * Opens every segment in `dir` (creating the directory if needed). Names that are not 20-digit offsets
   * are left alone and listed in `ignored`. Short files are extended with zeros; a file longer than the
   * configured size means the size setting changed under an existing store, which is refused.
   */
  static async load(dir: string, fileSize: number): Promise<{ queue: MappedFileQueue; ignored: string[] }> {
    await fs.promises.mkdir(dir, { recursive: true });
    const q = new MappedFileQueue(dir, fileSize);
    const ignored: string[] = [];
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    const offsets: number[] = [];
    for (const e of entries) {
      const off = e.isFile() ? fileName2Offset(e.name) : undefined;
      if (off === undefined) ignored.push(e.name);
      else offsets.push(off);
    }
    offsets.sort((a, b) => a - b);
    for (const off of offsets) {
      const st = await fs.promises.stat(`${dir}/${String(off).padStart(20, "0")}`);
      if (st.size > fileSize) {
        await q.closeAll();
        throw new RmqError(
          ErrorCode.IllegalConfig,
          `segment ${dir}/${off} is ${st.size} bytes, larger than the configured ${fileSize}; the segment size of an existing store cannot change`,
        );
      }
      q.files.push(await MappedFile.open(dir, off, fileSize));
    }
    return { queue: q, ignored };
  }

  get first(): MappedFile | undefined {
    return this.files[0];
  }

  get last(): MappedFile | undefined {
    return this.files[this.files.length - 1];
  }

  /** Start offset of the first file (0 when there is none). */
  get minOffset(): number {
    return this.files[0]?.fileFromOffset ?? 0;
  }

  /** The file whose range holds `offset`. */
  findFile(offset: number): MappedFile | undefined {
    const files = this.files;
    let lo = 0;
    let hi = files.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = files[mid];
      if (f === undefined) return undefined;
      if (offset < f.fileFromOffset) hi = mid - 1;
      else if (offset >= f.fileEnd) lo = mid + 1;
      else return f;
    }
    return undefined;
  }

  /** Creates the next file synchronously (the CommitLog's append section). */
  createFileSync(fromOffset: number): MappedFile {
    this.checkNext(fromOffset);
    const f = MappedFile.createSync(this.dir, fromOffset, this.fileSize);
    this.files.push(f);
    this.dirDirty = true;
    return f;
  }

  async createFile(fromOffset: number): Promise<MappedFile> {
    this.checkNext(fromOffset);
    const f = await MappedFile.open(this.dir, fromOffset, this.fileSize);
    this.checkNext(fromOffset); // nobody else appended meanwhile
    this.files.push(f);
    this.dirDirty = true;
    return f;
  }

  private checkNext(fromOffset: number): void {
    const last = this.last;
    if (fromOffset % this.fileSize !== 0 || (last !== undefined && fromOffset !== last.fileEnd)) {
      throw new RmqError(
        ErrorCode.Internal,
        `cannot create segment at ${fromOffset} in ${this.dir} (last ends at ${last?.fileEnd})`,
      );
    }
  }

  /** Removes (and deletes) one file; files are only removed from the front or the back. */
  async removeFile(f: MappedFile): Promise<void> {
    const i = this.files.indexOf(f);
    if (i >= 0) this.files.splice(i, 1);
    this.dirDirty = true;
    await f.destroy();
  }

  /**
   * Cuts the queue at `offset`: files starting after it are deleted, the file holding it is zeroed from
   * there on. Returns the names of the deleted files.
   */
  async truncateFrom(offset: number): Promise<string[]> {
    const deleted: string[] = [];
    while (true) {
      const last = this.last;
      if (last === undefined || last.fileFromOffset <= offset) break;
      deleted.push(last.path);
      await this.removeFile(last);
    }
    const f = this.findFile(offset);
    if (f?.hold()) {
      try {
        await f.zeroFrom(offset - f.fileFromOffset);
      } finally {
        f.release();
      }
    }
    return deleted;
  }

  async syncDir(io: FileIo): Promise<void> {
    if (!this.dirDirty) return;
    this.dirDirty = false;
    await syncDirectory(io, this.dir);
  }

  async closeAll(): Promise<void> {
    const files = this.files.splice(0, this.files.length);
    await Promise.all(files.map((f) => f.close()));
  }
}
