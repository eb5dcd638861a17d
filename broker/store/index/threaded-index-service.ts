// The Index on a thread of its own: the same DefaultIndexService (index-service.ts), run by
// index-thread.ts, so that indexing each record's keys (random slot-table updates across tens of MiB)
// and the Index's flushes cost the thread that accepts puts almost nothing. Here dispatch only hashes
// the keys (index-keys.ts) and queues the hashes, packed, with the record offsets; they are sent in
// chunks (a message to a thread costs tens of microseconds) and the thread applies them in order. Calls
// (flush, query, truncate, deleteExpired, close) send what is queued first and go down the same
// channel, so each sees every dispatch made before it; they resolve with the thread's answer.
// durableMaxPhyOffset is the value the thread reported with its last answer (flushes it started on its
// own may have moved the real one up since).
//
// If the thread dies, outstanding and later calls fail and dispatches are dropped (recovery
// re-indexes from the last durable point on the next start).
import { Worker } from "node:worker_threads";
import { ErrorCode, RmqError } from "../../../common/errors.ts";
import { type Logger, silentLogger } from "../../../common/logger.ts";
import type { DispatchRequest } from "../dispatch.ts";
import { IndexKeyHasher, NumberList } from "./index-keys.ts";
import type { IndexService, IndexServiceOptions } from "./index-service.ts";

/** What the thread is started with (its logger is rebuilt from the level and bindings). */
export interface IndexThreadInit {
  /** INDEX_THREAD_ROLE: the entry does nothing in any other thread. */
  role: typeof INDEX_THREAD_ROLE;
  dir: string;
  maxHashSlotNum: number;
  maxIndexNum: number;
  maxCachedPages: number | undefined;
  logLevel: string;
  logBindings: Record<string, unknown>;
}

export type IndexCall =
  | { op: "flush"; args: [] }
  | { op: "query"; args: [topic: string, key: string, maxNum: number, begin: number, end: number] }
  | { op: "truncate"; args: [phyOffset: number] }
  | { op: "deleteExpired"; args: [minPhyOffset: number] }
  | { op: "close"; args: [] };

export type ToIndexThread =
  | { kind: "dispatch"; packed: Float64Array }
  | { kind: "call"; id: number; call: IndexCall };

export type FromIndexThread =
  | { kind: "opened"; durable: number }
  | { kind: "openFailed"; message: string }
  | { kind: "dispatchFailed"; message: string }
  | { kind: "result"; id: number; value?: unknown; error?: string; durable: number };

const THREAD_FILE = import.meta.url.endsWith(".ts") ? "./index-thread.ts" : "./index-thread.js";
export const INDEX_THREAD_ROLE = "rmq-index";
/** Queued dispatches are sent once they hold this many numbers (about 1500 records of two keys)... */
const SEND_PACKED_AT = 9000;
/** ...or this long after the first of them was queued. */
const SEND_PACKED_AFTER_MS = 2;

interface PendingCall {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class ThreadedIndexService implements IndexService {
  private readonly worker: Worker;
  private readonly log: Logger;
  private readonly hasher = new IndexKeyHasher();
  private readonly packed = new NumberList();
  private readonly calls = new Map<number, PendingCall>();
  private nextCallId = 0;
  private durable = 0;
  private closed = false;
  private failure: Error | undefined;
  private dispatchFailureLogged = false;
  private sendTimer: NodeJS.Timeout | undefined;

  private constructor(worker: Worker, log: Logger) {
    this.worker = worker;
    this.log = log;
  }

  /** Starts the thread and opens the Index in it (repairing what a crash left behind). */
  static open(opts: IndexServiceOptions): Promise<ThreadedIndexService> {
    const log = opts.logger ?? silentLogger();
    const init: IndexThreadInit = {
      role: INDEX_THREAD_ROLE,
      dir: opts.dir,
      maxHashSlotNum: opts.maxHashSlotNum,
      maxIndexNum: opts.maxIndexNum,
      maxCachedPages: opts.maxCachedPages,
      logLevel: log.level,
      logBindings: log.bindings(),
    };
    const worker = new Worker(new URL(THREAD_FILE, import.meta.url), { workerData: init });
    const service = new ThreadedIndexService(worker, log);
    return new Promise((resolve, reject) => {
      const stopBooting = (): void => {
        worker.off("message", onOpen);
        worker.off("error", onBootError);
        worker.off("exit", onBootExit);
      };
      const fail = (e: Error): void => {
        stopBooting();
        void worker.terminate();
        reject(e);
      };
      const onOpen = (m: FromIndexThread): void => {
        if (m.kind === "opened") {
          stopBooting();
          service.durable = m.durable;
          service.listen();
          worker.unref();
          resolve(service);
        } else if (m.kind === "openFailed") {
          fail(new RmqError(ErrorCode.Internal, `Index could not be opened: ${m.message}`));
        }
      };
      const onBootError = (err: Error): void => fail(err);
      const onBootExit = (code: number): void =>
        fail(new RmqError(ErrorCode.Internal, `Index thread exited with code ${code} while opening`));
      worker.on("message", onOpen);
      worker.on("error", onBootError);
      worker.on("exit", onBootExit);
    });
  }

  private listen(): void {
    this.worker.on("message", (m: FromIndexThread) => this.onMessage(m));
    this.worker.on("error", (err) => this.onThreadGone(err));
    this.worker.on("exit", (code) => {
      if (!this.closed || this.calls.size > 0)
        this.onThreadGone(new Error(`Index thread exited with code ${code}`));
    });
  }

  private onMessage(m: FromIndexThread): void {
    if (m.kind === "result") {
      this.durable = m.durable;
      const c = this.calls.get(m.id);
      if (c === undefined) return;
      this.calls.delete(m.id);
      if (this.calls.size === 0) this.worker.unref();
      if (m.error === undefined) c.resolve(m.value);
      else c.reject(new RmqError(ErrorCode.Internal, m.error));
    } else if (m.kind === "dispatchFailed") {
      this.log.error({ reason: m.message }, "index dispatch failed");
    }
  }

  private onThreadGone(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    if (!this.closed) this.log.error({ err }, "Index thread lost; the Index stops until the next start");
    const e = new RmqError(ErrorCode.Internal, `Index thread lost: ${err.message}`, { cause: err });
    for (const c of this.calls.values()) c.reject(e);
    this.calls.clear();
  }

  get durableMaxPhyOffset(): number {
    return this.durable;
  }

  dispatch(req: DispatchRequest): void {
    this.dispatchBatch([req]);
  }

  dispatchBatch(reqs: readonly DispatchRequest[]): void {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "index service is closed");
    if (this.failure !== undefined) {
      if (!this.dispatchFailureLogged)
        this.log.error({ err: this.failure }, "Index thread lost; dispatches dropped");
      this.dispatchFailureLogged = true;
      return;
    }
    const packed = this.packed;
    for (let i = 0; i < reqs.length; i++) this.hasher.pack(reqs[i] as DispatchRequest, packed);
    if (packed.length >= SEND_PACKED_AT) this.sendPacked();
    else if (this.sendTimer === undefined && packed.length > 0) {
      this.sendTimer = setTimeout(() => this.sendPacked(), SEND_PACKED_AFTER_MS);
      this.sendTimer.unref();
    }
  }

  /** Sends the queued dispatches. */
  private sendPacked(): void {
    if (this.sendTimer !== undefined) clearTimeout(this.sendTimer);
    this.sendTimer = undefined;
    const packed = this.packed;
    if (packed.length === 0 || this.failure !== undefined) return;
    const m: ToIndexThread = { kind: "dispatch", packed: packed.data.slice(0, packed.length) };
    packed.length = 0;
    this.worker.postMessage(m, [m.packed.buffer as ArrayBuffer]);
  }

  private call<T>(c: IndexCall): Promise<T> {
    if (this.failure !== undefined)
      return Promise.reject(new RmqError(ErrorCode.Internal, `Index thread lost: ${this.failure.message}`));
    this.sendPacked();
    const id = this.nextCallId++;
    return new Promise<T>((resolve, reject) => {
      if (this.calls.size === 0) this.worker.ref();
      this.calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const m: ToIndexThread = { kind: "call", id, call: c };
      this.worker.postMessage(m);
    });
  }

  flush(): Promise<void> {
    return this.call({ op: "flush", args: [] });
  }

  query(
    topic: string,
    key: string,
    maxNum: number,
    beginTimestamp: number,
    endTimestamp: number,
  ): Promise<number[]> {
    return this.call({ op: "query", args: [topic, key, maxNum, beginTimestamp, endTimestamp] });
  }

  truncate(phyOffset: number): Promise<void> {
    return this.call({ op: "truncate", args: [phyOffset] });
  }

  deleteExpired(minPhyOffset: number): Promise<number> {
    return this.call({ op: "deleteExpired", args: [minPhyOffset] });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.call({ op: "close", args: [] });
    } finally {
      this.closed = true;
      await this.worker.terminate();
    }
  }
}
