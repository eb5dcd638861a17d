// Writes CommitLog batches on a thread of their own: the thread seals the batch's records (record-seal.ts:
// the body CRC and the record CRC, the costliest part of an append) and writes them with one positional
// gather write per segment, so neither the checksums nor the system calls run on the thread that
// accepts puts. A batch's write buffers move to the thread with its job (no copy, no shared memory: the
// CommitLog does not touch them meanwhile) and come back when it is done; the CommitLog holds the
// segment files the job writes to until then. Jobs complete in the order they were given.
//
// The CommitLog starts the thread when HelperThreads says so and uses it while it is ready (before,
// and after it died or was closed, the CommitLog writes on its own); it keeps the process alive only
// while a job is outstanding. If it dies, the jobs it still owed fail (their bytes went with them).
import { Worker } from "node:worker_threads";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Logger } from "../../common/logger.ts";
import {
  WRITER_READY,
  WRITER_THREAD_DATA,
  type WriteJob,
  type WriteJobReply,
} from "./commitlog-write-job.ts";

/** Bytes for one segment file: spans of the job's buffers, in order, from `position` in the file. */
export interface WritePiece {
  fd: number;
  position: number;
  spans: ReadonlyArray<{ buf: Buffer; start: number; end: number; encoded: boolean }>;
}

interface Outstanding {
  job: WriteJob;
  resolve: (buffers: Buffer[]) => void;
  reject: (e: Error) => void;
}

const WORKER_FILE = import.meta.url.endsWith(".ts")
  ? "./commitlog-writer-worker.ts"
  : "./commitlog-writer-worker.js";

function replyError(e: NonNullable<WriteJobReply["error"]>): Error {
  return Object.assign(new Error(e.message), e.code === undefined ? {} : { code: e.code });
}

function asBuffers(abs: readonly ArrayBuffer[]): Buffer[] {
  return abs.map((ab) => Buffer.from(ab));
}

export class CommitLogWriter {
  private readonly logger: Logger;
  private worker: Worker | undefined;
  /** The thread said it is ready for jobs. */
  private readyValue = false;
  /** The thread failed or the writer was closed: the CommitLog writes on its own from now on. */
  private local = false;
  private nextId = 0;
  private readonly outstanding: Outstanding[] = [];

  constructor(logger: Logger) {
    this.logger = logger;
    try {
      this.worker = this.start();
    } catch (err) {
      this.local = true;
      this.logger.warn({ err }, "CommitLog writer thread not started; writing on the main thread");
    }
  }

  /** The thread is up: jobs given now do not wait for it to start. */
  get ready(): boolean {
    return this.readyValue && !this.local;
  }

  /**
   * Seals and writes `pieces`, whose spans all lie in `buffers` (each backed by an ArrayBuffer of its
   * own, at offset 0); resolves once the bytes are in the files, with the buffers to reuse. `buffers`
   * are unusable meanwhile.
   */
  write(buffers: readonly Buffer[], pieces: readonly WritePiece[]): Promise<Buffer[]> {
    const job: WriteJob = {
      id: this.nextId++,
      buffers: buffers.map((b) => b.buffer as ArrayBuffer),
      pieces: [],
    };
    const p = job.pieces;
    for (const piece of pieces) {
      p.push(piece.fd, piece.position, piece.spans.length);
      for (const s of piece.spans) {
        const index = buffers.indexOf(s.buf);
        if (index < 0 || s.buf.byteOffset !== 0)
          throw new RmqError(ErrorCode.Internal, "a CommitLog write span lies outside its batch's buffers");
        p.push(index, s.start, s.end, s.encoded ? 1 : 0);
      }
    }
    const w = this.worker;
    if (!this.ready || w === undefined)
      return Promise.reject(new RmqError(ErrorCode.Internal, "CommitLog writer thread is not ready"));
    return new Promise<Buffer[]>((resolve, reject) => {
      const o: Outstanding = { job, resolve, reject };
      if (this.outstanding.length === 0) w.ref();
      this.outstanding.push(o);
      w.postMessage(job, job.buffers);
    });
  }

  private start(): Worker {
    const w = new Worker(new URL(WORKER_FILE, import.meta.url), { workerData: WRITER_THREAD_DATA });
    w.unref();
    w.on("message", (reply: WriteJobReply) => this.onReply(reply));
    w.on("error", (err) => this.onWorkerGone(err));
    w.on("exit", (code) => this.onWorkerGone(new Error(`CommitLog writer thread exited with code ${code}`)));
    this.worker = w;
    return w;
  }

  private onReply(reply: WriteJobReply): void {
    if (reply.id === WRITER_READY) {
      this.readyValue = true;
      return;
    }
    const o = this.outstanding[0];
    if (o === undefined || o.job.id !== reply.id) {
      this.onWorkerGone(new Error(`CommitLog writer thread answered job ${reply.id} out of order`));
      return;
    }
    this.outstanding.shift();
    if (this.outstanding.length === 0) this.worker?.unref();
    if (reply.error === undefined) o.resolve(asBuffers(reply.buffers ?? []));
    else o.reject(replyError(reply.error));
  }

  /** The thread is unusable: what it still owed fails; the CommitLog writes on its own from now on. */
  private onWorkerGone(err: Error): void {
    if (this.local) return;
    this.local = true;
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) void w.terminate().catch(() => {});
    const owed = this.outstanding.splice(0);
    if (owed.length > 0)
      this.logger.error({ err, jobs: owed.length }, "CommitLog writer thread lost with writes outstanding");
    for (const o of owed)
      o.reject(
        new RmqError(ErrorCode.StoreNotWritable, `CommitLog writer thread lost: ${err.message}`, {
          cause: err,
        }),
      );
  }

  /** Stops the thread (the CommitLog has no write outstanding by then). */
  async close(): Promise<void> {
    const w = this.worker;
    this.onWorkerGone(new Error("CommitLog writer closed"));
    if (w !== undefined) await w.terminate().catch(() => {});
  }
}
