// One batch write of the CommitLog as the writer thread runs it (commitlog-writer.ts): seal the records
// encoded into the batch's write buffers (record-seal.ts), then write each segment's part with one
// positional gather write. The job is plain data (numbers and the buffers moved with it).
import * as fs from "node:fs";
import { sealRecords } from "./record-seal.ts";
import { writeFullySync } from "./store-io.ts";

/** The workerData a writer thread is started with (its entry does nothing in any other thread). */
export const WRITER_THREAD_DATA = "rmq-commitlog-writer";

/** The reply id the thread sends once, when it is ready for jobs. */
export const WRITER_READY = -1;

/**
 * A job. `buffers` are the batch's write buffers (moved to the thread and back with the job); `pieces`
 * is flat: per segment piece `fd, position, spanCount`, then per span `buffer index, start, end,
 * encoded` (encoded = 1: records to seal before writing).
 */
export interface WriteJob {
  id: number;
  buffers: ArrayBuffer[];
  pieces: number[];
}

export interface WriteJobReply {
  id: number;
  /** The job's buffers, given back. */
  buffers?: ArrayBuffer[];
  /** Set when the job failed: the error's message and errno code. */
  error?: { message: string; code?: string };
}

/** Seals and writes everything in `job`; throws the first IO error. */
export function runWriteJob(job: WriteJob): void {
  const views = job.buffers.map((b) => new Uint8Array(b));
  const p = job.pieces;
  let i = 0;
  while (i < p.length) {
    const fd = p[i] as number;
    const position = p[i + 1] as number;
    const count = p[i + 2] as number;
    i += 3;
    const bufs: Uint8Array[] = [];
    for (let k = 0; k < count; k++, i += 4) {
      const b = views[p[i] as number] as Uint8Array;
      const start = p[i + 1] as number;
      const end = p[i + 2] as number;
      if (p[i + 3] === 1) sealRecords(b, start, end);
      bufs.push(b.subarray(start, end));
    }
    writeFullySync(fs.writevSync, fd, bufs, position);
  }
}
