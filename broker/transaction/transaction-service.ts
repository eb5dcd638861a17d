// Transactional messages, broker side (upstream TransactionalMessageServiceImpl, EndTransactionProcessor
// and TransactionalMessageCheckService, our design where noted):
//
// - The send path stores toHalfMessage(input) and returns transactionIdOf(result).
// - endTransaction reads the first half record by the CommitLog offset the id carries, validates it,
//   and stores in one batch the real message (commit only) and the op record that marks the transaction
//   done. Concurrent ends are grouped into one write. A transaction is ended at most once: a second end
//   is refused with TRANSACTION_NOT_FOUND, whichever id or copy it comes through (transaction-state.ts).
// - The check loop runs every transactionCheckInterval: it walks the half queue from the committed
//   offset of CID_RMQ_SYS_TRANS; each unresolved half message older than transactionTimeOut (or its
//   CHECK_IMMUNITY_TIME_IN_SECONDS) is re-appended with TRANSACTION_CHECK_TIMES + 1 and `onCheck` is
//   called with it; one checked transactionCheckMax times is moved to TRANS_CHECK_MAX_TIME_TOPIC.
//
// Everything lives in the half and op topics plus two committed offsets, so a restart (clean or not)
// rebuilds the state by reading the op queue from its committed offset and the half queue from its own.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import { SystemTopic } from "../../common/topic-validator.ts";
import type { ConsumerOffsetManager } from "../metadata/consumer-offset-manager.ts";
import { PermName, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { HostAddress } from "../store/host-address.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import type { MessageInput, PutMessageResult } from "../store/message-store-types.ts";
import {
  checkTimesOf,
  discardMessageOf,
  type HalfOrigin,
  halfCopyOf,
  halfOriginOf,
  isHalfCopy,
  messageIdOf,
  realMessageOf,
  realQueueOf,
} from "./half-message.ts";
import { isRemoveOp, opBody, opMessage, parseOpBody, splitOpOffsets } from "./op-record.ts";
import { decodeTransactionId, encodeTransactionId, transactionIdMatches } from "./transaction-id.ts";
import {
  CHECK_MAX_TIME_QUEUE_NUMS,
  HALF_QUEUE_ID,
  HALF_QUEUE_NUMS,
  TRANSACTION_SYS_GROUP,
  TransactionProperty,
} from "./transaction-properties.ts";
import { TransactionState } from "./transaction-state.ts";

/** Half messages read per step of the check loop (upstream reads 1 at a time, and op records 32). */
export const HALF_READ_BATCH = 32;
/** Records read per step when rebuilding the state at start. */
export const REBUILD_READ_BATCH = 256;
/** Bytes read per step (the batch stops earlier when its records are larger). */
const READ_MAX_BYTES = 4 * 1024 * 1024;
/** Longest check pass (upstream MAX_PROCESS_TIME_LIMIT, 60 s per half queue). */
export const MAX_CHECK_PASS_MS = 60_000;
/** Ends grouped into one store write (ours). */
export const MAX_END_BATCH = 256;
const HOUR_MS = 3_600_000;
const DEFAULT_STORE_HOST: HostAddress = { address: "127.0.0.1", port: 0 };

/** The broker.conf keys the service follows (names and defaults as upstream BrokerConfig / MessageStoreConfig). */
export interface TransactionConfig {
  /** A half message is checked once it is older than this (6000 ms). */
  transactionTimeOut: number;
  /** Time between check passes (30000 ms). */
  transactionCheckInterval: number;
  /** Checks before a half message is discarded to TRANS_CHECK_MAX_TIME_TOPIC (15). */
  transactionCheckMax: number;
  /** Hours; a half message born longer ago is discarded unchecked (72). Left out: never. */
  fileReservedTime?: number;
}

/** Upstream BrokerConfig defaults of the transaction keys. */
export const DEFAULT_TRANSACTION_CONFIG: Readonly<TransactionConfig> = Object.freeze({
  transactionTimeOut: 6000,
  transactionCheckInterval: 30_000,
  transactionCheckMax: 15,
  fileReservedTime: 72,
});

/** What the broker asks a producer of the half message's group: commit or roll back? */
export interface TransactionCheckRequest {
  /** The real topic. */
  topic: string;
  producerGroup: string;
  /** The id the send returned; EndTransaction quotes it. */
  transactionId: string;
  /** UNIQ_KEY. */
  messageId: string;
  /** The half message as re-appended, shown with its real topic and queue (properties as stored). */
  message: StoredMessage;
}

export type TransactionResolution = "COMMIT" | "ROLLBACK";

export interface EndTransactionRequest {
  /** The real topic the producer sent to. */
  topic: string;
  producerGroup: string;
  transactionId: string;
  messageId: string;
  resolution: TransactionResolution;
  /** The producer answers a check (logged; both sources are handled alike). */
  fromTransactionCheck: boolean;
}

export interface TransactionServiceOptions {
  store: MessageStore;
  topics: TopicConfigManager;
  offsets: ConsumerOffsetManager;
  brokerName: string;
  config: TransactionConfig;
  /**
   * Relays a check to a producer of the group; returns false when none is reachable. Called after the
   * half message was re-appended, so a check counts whether or not it was delivered (as upstream).
   */
  onCheck: (check: TransactionCheckRequest) => boolean;
  logger?: Logger;
  /** Wall clock (ms): ages of half messages. */
  clock?: () => number;
  /** Born host of the op records the broker writes. */
  storeHost?: HostAddress;
}

export interface TransactionStats {
  /** Committed-to-be offset of the half queue walk. */
  halfOffset: number;
  halfMaxOffset: number;
  /** Transactions ended whose live half record the walk has not passed yet. */
  opEntries: number;
  /** Transactions re-appended and not passed yet (pending checks, mostly). */
  copies: number;
}

export interface TransactionService {
  /** Rebuilds the state from the half and op queues, then starts the check timer. */
  start(): Promise<void>;
  /** The transaction id of a half message the send path stored. */
  transactionIdOf(result: PutMessageResult): string;
  /**
   * Commits or rolls back. Rejects INVALID_TRANSACTION_ID (malformed, another broker's, another
   * message's, wrong producer group or topic) or TRANSACTION_NOT_FOUND (already ended or discarded,
   * being ended right now, or its half message is gone).
   */
  endTransaction(request: EndTransactionRequest): Promise<void>;
  /** One check pass now (a pass under way is joined); resolves with the checks sent. */
  checkNow(): Promise<number>;
  stats(): TransactionStats;
  /** Stops the timer, waits for the pass and the ends under way, commits the offsets. */
  shutdown(): Promise<void>;
}

interface PendingEnd {
  origin: number;
  real: MessageInput | undefined;
  resolve: () => void;
  reject: (err: unknown) => void;
}

type Step =
  | { kind: "skip"; msg: StoredMessage }
  | {
      kind: "copy";
      msg: StoredMessage;
      origin: HalfOrigin;
      checkTimes: number;
      check: boolean;
      index: number;
    }
  | { kind: "discard"; msg: StoredMessage; origin: HalfOrigin; reason: string };

function notFound(id: string, why: string): RmqError {
  return new RmqError(ErrorCode.TransactionNotFound, `transaction ${id}: ${why}`);
}

function invalidId(id: string, why: string): RmqError {
  return new RmqError(ErrorCode.InvalidTransactionId, `transaction ${id}: ${why}`);
}

/**
 * The wait before the first check a producer asked for (upstream TransactionalMessageUtil
 * getImmunityTime): CHECK_IMMUNITY_TIME_IN_SECONDS in ms, never below transactionTimeOut.
 */
export function immunityTimeMs(value: string, transactionTimeOut: number): number {
  const seconds = /^-?\d{1,12}$/.test(value) ? Number(value) : 0;
  return Math.max(seconds * 1000, transactionTimeOut);
}

function validateConfig(c: TransactionConfig): void {
  const bad = (key: string, why: string): never => {
    throw new RmqError(ErrorCode.IllegalConfig, `${key}: ${why}`);
  };
  if (!(c.transactionTimeOut > 0)) bad("transactionTimeOut", "must be > 0");
  if (!(c.transactionCheckInterval > 0)) bad("transactionCheckInterval", "must be > 0");
  if (!Number.isInteger(c.transactionCheckMax) || c.transactionCheckMax < 1)
    bad("transactionCheckMax", "must be an integer >= 1");
  if (c.fileReservedTime !== undefined && !(c.fileReservedTime > 0))
    bad("fileReservedTime", "must be > 0 hours");
}

class DefaultTransactionService implements TransactionService {
  private readonly o: TransactionServiceOptions;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly storeHost: HostAddress;
  private state: TransactionState | undefined;
  private starting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private closed = false;
  /** Ends waiting for the next grouped write. */
  private endQueue: PendingEnd[] = [];
  private draining: Promise<void> | undefined;
  /** endTransaction calls under way (shutdown waits for them). */
  private readonly activeEnds = new Set<Promise<unknown>>();
  /**
   * One entry per store write under way that holds op records: the op queue's max offset when it
   * started, which is at or below the offsets those records get. The op offset is never committed
   * past one (the records' entries reach the state only when the write resolves).
   */
  private readonly opWriteFloors = new Set<{ floor: number }>();

  constructor(o: TransactionServiceOptions) {
    this.o = o;
    this.logger = o.logger ?? silentLogger();
    this.clock = o.clock ?? Date.now;
    this.storeHost = o.storeHost ?? DEFAULT_STORE_HOST;
  }

  // ------------------------------------------------------------------ start

  start(): Promise<void> {
    this.starting ??= this.rebuild().then(() => {
      if (this.closed) return;
      this.timer = setInterval(() => {
        this.checkNow().catch((err: unknown) => this.logger.error({ err }, "transaction check pass failed"));
      }, this.o.config.transactionCheckInterval);
      this.timer.unref();
    });
    return this.starting;
  }

  private async rebuild(): Promise<void> {
    const { topics } = this.o;
    // The half and op topics are system topics of every broker; TRANS_CHECK_MAX_TIME_TOPIC is made here
    // rather than at the first discard (upstream), so it is in the topic table from the start.
    const rw = PermName.PERM_READ | PermName.PERM_WRITE;
    for (const [topicName, queueNums] of [
      [SystemTopic.TRANS_HALF, HALF_QUEUE_NUMS],
      [SystemTopic.TRANS_OP_HALF, HALF_QUEUE_NUMS],
      [SystemTopic.TRANS_CHECK_MAX_TIME, CHECK_MAX_TIME_QUEUE_NUMS],
    ] as const) {
      await topics.createIfAbsent({
        topicName,
        readQueueNums: queueNums,
        writeQueueNums: queueNums,
        perm: rw,
      });
    }
    const halfFrom = this.startOffset(SystemTopic.TRANS_HALF);
    const opFrom = this.startOffset(SystemTopic.TRANS_OP_HALF);
    const state = new TransactionState(halfFrom);
    let ops = 0;
    await this.readQueue(SystemTopic.TRANS_OP_HALF, opFrom, (m) => {
      if (!isRemoveOp(m.properties)) return;
      state.addOp(m.queueOffset, parseOpBody(m.body));
      ops++;
    });
    let copies = 0;
    await this.readQueue(SystemTopic.TRANS_HALF, halfFrom, (m) => {
      const origin = halfOriginOf(m);
      if (origin.queueOffset === m.queueOffset) return;
      state.setLatestCopy(origin.queueOffset, m.queueOffset);
      copies++;
    });
    state.prune();
    this.state = state;
    this.logger.info(
      { opOffset: opFrom, opRecords: ops, halfCopies: copies, ...state.stats() },
      "transaction state rebuilt",
    );
  }

  /**
   * Where processing of queue 0 of `topic` resumes: the committed offset of CID_RMQ_SYS_TRANS, the
   * queue's first offset when there is none, and never past its end (a store cut back by truncation).
   */
  private startOffset(topic: string): number {
    const { store, offsets } = this.o;
    const committed = offsets.query(TRANSACTION_SYS_GROUP, topic, HALF_QUEUE_ID);
    const max = store.getMaxOffsetInQueue(topic, HALF_QUEUE_ID);
    if (committed < 0) return store.getMinOffsetInQueue(topic, HALF_QUEUE_ID);
    if (committed <= max) return committed;
    this.logger.warn({ topic, committed, max }, "committed transaction offset beyond the queue end; reset");
    offsets.reset(TRANSACTION_SYS_GROUP, topic, HALF_QUEUE_ID, max);
    return max;
  }

  /** Calls `fn` for every readable record of queue 0 of `topic` from `from` to its current end. */
  private async readQueue(topic: string, from: number, fn: (m: StoredMessage) => void): Promise<void> {
    const end = this.o.store.getMaxOffsetInQueue(topic, HALF_QUEUE_ID);
    let next = from;
    while (next < end) {
      const res = await this.o.store.getMessage(
        topic,
        HALF_QUEUE_ID,
        next,
        Math.min(REBUILD_READ_BATCH, end - next),
        READ_MAX_BYTES,
      );
      for (const m of res.messages) if (m.queueOffset < end) fn(m);
      if (res.nextBeginOffset <= next) break;
      next = res.nextBeginOffset;
    }
  }

  private ready(): TransactionState {
    if (this.closed) throw new RmqError(ErrorCode.StoreShutdown, "the transaction service is shut down");
    if (this.state === undefined)
      throw new RmqError(ErrorCode.StoreNotWritable, "the transaction service is not started yet");
    return this.state;
  }

  transactionIdOf(result: PutMessageResult): string {
    return encodeTransactionId(
      {
        brokerName: this.o.brokerName,
        commitLogOffset: result.commitLogOffset,
        queueOffset: result.queueOffset,
      },
      result.uniqKey,
    );
  }

  stats(): TransactionStats {
    const s = this.state?.stats();
    return {
      halfOffset: s?.halfOffset ?? 0,
      halfMaxOffset: this.o.store.getMaxOffsetInQueue(SystemTopic.TRANS_HALF, HALF_QUEUE_ID),
      opEntries: s?.opEntries ?? 0,
      copies: s?.copies ?? 0,
    };
  }

  // ------------------------------------------------------------------ writes

  /**
   * putMessages, with `apply` run on the results before the write counts as finished (so the op
   * offset is never committed between the records landing and the state learning about them).
   */
  private async put(batch: MessageInput[], apply: (results: PutMessageResult[]) => void): Promise<void> {
    const token = {
      floor: this.o.store.getMaxOffsetInQueue(SystemTopic.TRANS_OP_HALF, HALF_QUEUE_ID),
    };
    this.opWriteFloors.add(token);
    try {
      apply(await this.o.store.putMessages(batch));
    } finally {
      this.opWriteFloors.delete(token);
    }
  }

  /** Op records listing `origins` (grouped within the op body limit). */
  private opRecords(origins: readonly number[]): { groups: number[][]; messages: MessageInput[] } {
    const groups = splitOpOffsets(origins);
    const now = this.clock();
    return { groups, messages: groups.map((g) => opMessage(opBody(g), now, this.storeHost)) };
  }

  private submitEnd(origin: number, real: MessageInput | undefined): Promise<void> {
    return new Promise((resolve, reject) => {
      this.endQueue.push({ origin, real, resolve, reject });
      this.draining ??= this.drainEnds();
    });
  }

  /** Writes queued ends, many per write: their real messages first, then the op records. */
  private async drainEnds(): Promise<void> {
    try {
      while (this.endQueue.length > 0) {
        const take = this.endQueue.splice(0, MAX_END_BATCH);
        const state = this.state as TransactionState;
        const reals: MessageInput[] = [];
        for (const e of take) if (e.real !== undefined) reals.push(e.real);
        const ops = this.opRecords(take.map((e) => e.origin));
        try {
          await this.put([...reals, ...ops.messages], (results) => {
            ops.groups.forEach((g, i) => {
              state.addOp((results[reals.length + i] as PutMessageResult).queueOffset, g);
            });
          });
        } catch (err) {
          for (const e of take) e.reject(err);
          continue;
        }
        for (const e of take) e.resolve();
      }
    } finally {
      this.draining = undefined;
    }
  }

  // ------------------------------------------------------------------ end transaction

  endTransaction(request: EndTransactionRequest): Promise<void> {
    const p = this.end(request);
    this.activeEnds.add(p);
    const forget = () => this.activeEnds.delete(p);
    p.then(forget, forget);
    return p;
  }

  private async end(r: EndTransactionRequest): Promise<void> {
    if (this.starting !== undefined) await this.starting;
    const state = this.ready();
    const tid = r.transactionId;
    const id = decodeTransactionId(tid);
    if (id.brokerName !== this.o.brokerName)
      throw invalidId(
        tid,
        `it was issued by broker ${JSON.stringify(id.brokerName)}, not ${this.o.brokerName}`,
      );
    if (!transactionIdMatches(id, r.messageId))
      throw invalidId(tid, `it was not issued for message id ${JSON.stringify(r.messageId)}`);
    const origin = id.queueOffset;
    if (!state.claim(origin)) {
      throw notFound(
        tid,
        state.isClaimed(origin)
          ? "it is being committed, rolled back or discarded right now"
          : "it is already committed, rolled back or discarded",
      );
    }
    try {
      const half = await this.o.store.lookMessageByOffset(id.commitLogOffset);
      if (half === undefined) throw notFound(tid, "its half message is no longer in the store");
      if (
        half.topic !== SystemTopic.TRANS_HALF ||
        half.queueId !== HALF_QUEUE_ID ||
        half.queueOffset !== origin ||
        isHalfCopy(half)
      ) {
        throw invalidId(tid, "it does not name a half message");
      }
      if (messageIdOf(half) !== r.messageId)
        throw invalidId(tid, `its half message has message id ${JSON.stringify(messageIdOf(half))}`);
      const group = half.properties.get(TransactionProperty.PRODUCER_GROUP);
      if (group !== r.producerGroup)
        throw invalidId(
          tid,
          `it belongs to producer group ${JSON.stringify(group ?? "")}, not ${JSON.stringify(r.producerGroup)}`,
        );
      const real = realQueueOf(half);
      if (real !== undefined && real.topic !== r.topic)
        throw invalidId(
          tid,
          `it belongs to topic ${JSON.stringify(real.topic)}, not ${JSON.stringify(r.topic)}`,
        );
      const realMessage = r.resolution === "COMMIT" ? realMessageOf(half) : undefined;
      await this.submitEnd(origin, realMessage);
      this.logger.debug(
        {
          topic: r.topic,
          producerGroup: r.producerGroup,
          messageId: r.messageId,
          resolution: r.resolution,
          fromTransactionCheck: r.fromTransactionCheck,
          halfOffset: origin,
        },
        "transaction ended",
      );
    } finally {
      state.release(origin);
    }
  }

  // ------------------------------------------------------------------ check loop

  checkNow(): Promise<number> {
    if (this.running !== undefined) return this.running;
    let p: Promise<number>;
    try {
      this.ready();
      p = this.pass();
    } catch (e) {
      return Promise.reject(e);
    }
    this.running = p.finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { store } = this.o;
    const state = this.state as TransactionState;
    // A replica (or a store refusing writes) neither re-appends nor discards: the master does.
    if (!store.isWritable()) return 0;
    const now = this.clock();
    const started = performance.now();
    // Records appended from here on (new sends, this pass's own copies) wait for the next pass.
    const end = store.getMaxOffsetInQueue(SystemTopic.TRANS_HALF, HALF_QUEUE_ID);
    let checks = 0;
    try {
      while (!this.closed && state.halfOffset < end) {
        if (performance.now() - started > MAX_CHECK_PASS_MS) {
          this.logger.info(
            { halfOffset: state.halfOffset, end },
            "transaction check pass hit its time limit",
          );
          break;
        }
        const from = state.halfOffset;
        const res = await store.getMessage(
          SystemTopic.TRANS_HALF,
          HALF_QUEUE_ID,
          from,
          Math.min(HALF_READ_BATCH, end - from),
          READ_MAX_BYTES,
        );
        if (res.messages.length === 0) {
          // Nothing readable at `from` (removed by retention, or damaged): go where the store says.
          const next = Math.min(res.nextBeginOffset, end);
          if (next <= from) break;
          this.logger.warn({ from, next, status: res.status }, "half messages unreadable; skipped");
          state.advance(next);
          continue;
        }
        const r = await this.checkBatch(state, res.messages, end, now);
        checks += r.checks;
        this.commitHalfOffset(state);
        if (r.stopped) break;
        state.advance(Math.min(res.nextBeginOffset, end));
      }
    } finally {
      state.prune();
      this.commitOffsets(state);
    }
    if (checks > 0) this.logger.info({ checks, ...state.stats() }, "transaction check pass done");
    return checks;
  }

  /** What to do with the half record `m` now; undefined means stop the pass here (it is too young). */
  private decide(state: TransactionState, m: StoredMessage, now: number): Step | undefined {
    const { config } = this.o;
    const origin = halfOriginOf(m);
    const o = origin.queueOffset;
    // A record re-appended since, or a transaction ended: nothing to do.
    if (state.liveOffsetOf(o) !== m.queueOffset || state.hasOp(o)) return { kind: "skip", msg: m };
    const checkTimes = checkTimesOf(m);
    // Being committed or rolled back right now: carry it forward unchecked; the op record settles it.
    if (state.isClaimed(o)) return { kind: "copy", msg: m, origin, checkTimes, check: false, index: -1 };
    if (realQueueOf(m) === undefined)
      return { kind: "discard", msg: m, origin, reason: "no REAL_TOPIC / REAL_QID" };
    if (checkTimes >= config.transactionCheckMax)
      return { kind: "discard", msg: m, origin, reason: `checked ${checkTimes} times` };
    const age = now - m.bornTimestamp;
    if (config.fileReservedTime !== undefined && age > config.fileReservedTime * HOUR_MS)
      return { kind: "discard", msg: m, origin, reason: "older than fileReservedTime" };
    const immunity = m.properties.get(TransactionProperty.CHECK_IMMUNITY_TIME_IN_SECONDS);
    if (immunity !== undefined) {
      // Upstream carries such a message forward unchecked, so it does not hold up the walk.
      if (age <= immunityTimeMs(immunity, config.transactionTimeOut))
        return { kind: "copy", msg: m, origin, checkTimes, check: false, index: -1 };
    } else if (age >= 0 && age <= config.transactionTimeOut) {
      return undefined; // the ones behind it are younger still (upstream stops here too)
    }
    // A negative age (producer clock ahead) is checked at once, as upstream.
    return { kind: "copy", msg: m, origin, checkTimes: checkTimes + 1, check: true, index: -1 };
  }

  private async checkBatch(
    state: TransactionState,
    messages: readonly StoredMessage[],
    end: number,
    now: number,
  ): Promise<{ checks: number; stopped: boolean }> {
    const steps: Step[] = [];
    const batch: MessageInput[] = [];
    const discarded: number[] = [];
    let stopped = false;
    for (const m of messages) {
      let step = m.queueOffset < end ? this.decide(state, m, now) : undefined;
      if (step === undefined) {
        stopped = true;
        break;
      }
      // A discard holds a claim until its op record is written, so no commit slips in between.
      if (step.kind === "discard" && !state.claim(step.origin.queueOffset)) {
        const { origin } = step;
        step = { kind: "copy", msg: m, origin, checkTimes: checkTimesOf(m), check: false, index: -1 };
      }
      if (step.kind === "copy") {
        step.index = batch.length;
        batch.push(halfCopyOf(m, step.origin, step.checkTimes));
      } else if (step.kind === "discard") {
        batch.push(discardMessageOf(m));
        discarded.push(step.origin.queueOffset);
      }
      steps.push(step);
    }
    const last = steps.at(-1);
    if (last === undefined) return { checks: 0, stopped };
    const ops = this.opRecords(discarded);
    const opsAt = batch.length;
    batch.push(...ops.messages);
    const results: PutMessageResult[] = [];
    try {
      const apply = (rs: PutMessageResult[]) => {
        results.push(...rs);
        ops.groups.forEach((g, i) => {
          state.addOp((rs[opsAt + i] as PutMessageResult).queueOffset, g);
        });
        for (const s of steps) {
          if (s.kind === "copy")
            state.setLatestCopy(s.origin.queueOffset, (rs[s.index] as PutMessageResult).queueOffset);
        }
        state.advance(last.msg.queueOffset + 1);
      };
      if (batch.length === 0) apply([]);
      else await this.put(batch, apply);
    } catch (err) {
      this.logger.error({ err, halfOffset: state.halfOffset }, "transaction check write failed; will retry");
      return { checks: 0, stopped: true };
    } finally {
      for (const o of discarded) state.release(o);
    }
    let checks = 0;
    for (const s of steps) {
      if (s.kind === "discard") {
        this.logger.warn(
          {
            topic: s.msg.properties.get(TransactionProperty.REAL_TOPIC),
            messageId: messageIdOf(s.msg),
            halfOffset: s.origin.queueOffset,
            reason: s.reason,
          },
          `half message discarded to ${SystemTopic.TRANS_CHECK_MAX_TIME}`,
        );
      } else if (s.kind === "copy" && s.check) {
        this.sendCheck(s.msg, s.origin, batch[s.index] as MessageInput, results[s.index] as PutMessageResult);
        checks++;
      }
    }
    return { checks, stopped };
  }

  private sendCheck(
    m: StoredMessage,
    origin: HalfOrigin,
    copy: MessageInput,
    stored: PutMessageResult,
  ): void {
    const real = realQueueOf(m) as { topic: string; queueId: number };
    const messageId = messageIdOf(m);
    const check: TransactionCheckRequest = {
      topic: real.topic,
      producerGroup: m.properties.get(TransactionProperty.PRODUCER_GROUP) ?? "",
      transactionId: encodeTransactionId({ brokerName: this.o.brokerName, ...origin }, messageId),
      messageId,
      message: {
        ...m,
        topic: real.topic,
        queueId: real.queueId,
        queueOffset: stored.queueOffset,
        commitLogOffset: stored.commitLogOffset,
        storeSize: stored.size,
        storeTimestamp: stored.storeTimestamp,
        msgId: stored.msgId,
        properties: new Map(copy.properties),
      },
    };
    try {
      if (!this.o.onCheck(check)) {
        this.logger.warn(
          { producerGroup: check.producerGroup, topic: check.topic, messageId },
          "no producer of the group to check the transaction with",
        );
      }
    } catch (err) {
      this.logger.error({ err, messageId }, "transaction check callback failed");
    }
  }

  private commitHalfOffset(state: TransactionState): void {
    this.o.offsets.commit(TRANSACTION_SYS_GROUP, SystemTopic.TRANS_HALF, HALF_QUEUE_ID, state.halfOffset);
  }

  private commitOffsets(state: TransactionState): void {
    this.commitHalfOffset(state);
    let upTo = this.o.store.getMaxOffsetInQueue(SystemTopic.TRANS_OP_HALF, HALF_QUEUE_ID);
    for (const t of this.opWriteFloors) if (t.floor < upTo) upTo = t.floor;
    this.o.offsets.commit(
      TRANSACTION_SYS_GROUP,
      SystemTopic.TRANS_OP_HALF,
      HALF_QUEUE_ID,
      state.opCommitOffset(upTo),
    );
  }

  // ------------------------------------------------------------------ shutdown

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.starting?.catch(() => {});
    await this.running?.catch(() => 0);
    await Promise.allSettled([...this.activeEnds]);
    await this.draining;
    const state = this.state;
    if (state !== undefined) {
      state.prune();
      this.commitOffsets(state);
    }
  }
}

/** Builds the service; call start() once the store and the metadata managers are loaded. */
export function createTransactionService(o: TransactionServiceOptions): TransactionService {
  validateConfig(o.config);
  return new DefaultTransactionService(o);
}
