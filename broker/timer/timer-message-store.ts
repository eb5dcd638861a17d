// The 5.x timer (upstream TimerMessageStore), run inside the broker over its MessageStore.
//
// Send path: transformTimerMessage (timer-transform.ts) stores a message due later in the timer topic
// rmq_sys_wheel_timer with REAL_TOPIC / REAL_QID / TIMER_OUT_MS. This service then:
//
// - Enqueue: reads the timer topic's ConsumeQueue from its offset and appends one unit per message to
//   the timer log (timer-log.ts), chained into the wheel slot of its delivery time (timer-wheel.ts).
//   A delay beyond the roll window waits in a nearer slot with MAGIC_ROLL; a message whose slot has
//   already been read (stored late, or the broker was down) goes into the first slot not read yet; a
//   recall's delete marker goes into its message's slot with MAGIC_DELETE.
// - Dequeue: once a slot's time is over (slot start + precision <= now) it walks the slot's chain,
//   collects the delete markers, reads every other unit's record from the CommitLog and writes it
//   back to its real topic and queue (or, for a roll, to the timer topic again), in batches.
// - Checkpoint (`config/timercheck`, timer-checkpoint.ts), every timerFlushIntervalMs after the timer
//   log and the wheel are synced: the ConsumeQueue offset enqueued, the timer log position the wheel
//   covers, the first slot not fully delivered, and the CommitLog offset from which the deliveries of
//   that slot on were written.
// - Restart (clean or not): timer log units after the checkpointed position are replayed into the
//   wheel (each unit carries its ConsumeQueue offset, so enqueueing resumes right after the last one);
//   the CommitLog from the checkpointed delivery offset is scanned for records the timer wrote
//   (TIMER_SOURCE_OFFSET), and the slots from the checkpointed read time are walked again skipping
//   those: nothing is lost and nothing is delivered twice. Slots that came due while the broker was
//   down are delivered right after start.
//
// Recall (upstream RecallMessageProcessor): the handle is checked (topic, broker, time), the Index (when
// on) must know the message in the timer topic, then a delete marker (TIMER_DEL_UNIQKEY) is stored in
// the timer topic for the message's slot and the call waits until the worker has enqueued it: it is
// refused as too late when the slot has been read or is being read by then, so a recall that
// succeeds always takes effect.
//
// One worker does all of it, one step at a time (enqueue batch, slot, flush), on a timer every
// 100 ms x precision/1000 (upstream's wait) and when the dispatcher sees a new timer-topic record.
// Memory holds no per-message state for pending messages: units live in the timer log, slots in the
// wheel file behind a bounded block cache; only the slot being delivered is read into memory.
//
// Durability follows the store: deliveries and rolls are written with putMessages, so under
// ASYNC_FLUSH a power loss (not a process crash) can lose the last deliveries as it loses the last
// sends. A slave does not run the dequeue (its store refuses writes) and does not copy the master's
// timer checkpoint: a slave promoted to master walks again from its own checkpoint (what the old
// master delivered since then can be delivered again). As upstream, the wheel spans one turn of
// 7 days x precision; a broker down longer loses what came due before that.

import { join } from "node:path";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { type Logger, silentLogger } from "../../common/logger.ts";
import { PermName, type TopicConfigManager } from "../metadata/topic-config-manager.ts";
import type { Dispatcher, DispatchRequest } from "../store/dispatch.ts";
import type { HostAddress } from "../store/host-address.ts";
import type { StoredMessage } from "../store/message-codec.ts";
import type { MessageStore } from "../store/message-store.ts";
import { GetMessageStatus, type MessageInput } from "../store/message-store-types.ts";
import { decodeRecallHandle } from "./recall-handle.ts";
import {
  readTimerCheckpoint,
  type TimerCheckpointData,
  timerCheckpointPath,
  writeTimerCheckpoint,
} from "./timer-checkpoint.ts";
import {
  DEFAULT_TIMER_CONFIG,
  formatTimeMs,
  rollWindowSlots,
  SLOTS_TOTAL,
  TIMER_BLANK_SLOTS,
  type TimerConfig,
  validateTimerConfig,
} from "./timer-config.ts";
import {
  type DeliveredSources,
  deliveredMessage,
  rolledMessage,
  scanTimerDeliveries,
} from "./timer-delivery.ts";
import {
  isDelete,
  isRoll,
  MAGIC_DEFAULT,
  MAGIC_DELETE,
  MAGIC_ROLL,
  TimerLog,
  type TimerUnit,
} from "./timer-log.ts";
import {
  buildDeleteKey,
  RECALL_MESSAGE_TAG,
  TIMER_QUEUE_ID,
  TIMER_TOPIC,
  TimerProperty,
} from "./timer-properties.ts";
import { isTimerMessage, type TimerTransformResult, transformTimerMessage } from "./timer-transform.ts";
import { TimerWheel } from "./timer-wheel.ts";

/** ConsumeQueue entries read per enqueue step. */
const ENQUEUE_BATCH = 256;
/** Entries enqueued per worker pass before due slots get their turn. */
const ENQUEUE_PER_PASS = 8192;
/** Records read from the CommitLog and written back per delivery step (upstream splits by 2000). */
const DEQUEUE_BATCH = 256;
/** Slots walked per pass before the worker yields to enqueueing again. */
const SLOTS_PER_PASS = 256;
/** Flush early when this much of the timer log is only in memory. */
const MAX_UNFLUSHED_TIMER_LOG_BYTES = 4 * 1024 * 1024;
/** Flush early when this many wheel blocks (4 KiB) are dirty. */
const MAX_DIRTY_WHEEL_BLOCKS = 512;
/** Timer log retention check period (upstream 30 s). */
const TIMER_LOG_CLEAN_INTERVAL_MS = 30_000;
/** Wait after a failed pass. */
const ERROR_BACKOFF_MS = 500;
/** Outcomes of delete markers kept for recalls that have not asked yet. */
const MAX_MARKER_OUTCOMES = 4096;
/** A recall waits this long for its marker to be enqueued. */
const RECALL_ENQUEUE_TIMEOUT_MS = 10_000;
/** Store errors after which the same write is retried later; any other error means the message itself is refused. */
const RETRYABLE_STORE_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.StoreNotWritable,
  ErrorCode.StoreDiskFull,
  ErrorCode.StoreShutdown,
  ErrorCode.FlushDiskTimeout,
  ErrorCode.Internal,
]);

export interface TimerMessageStoreOptions {
  store: MessageStore;
  topics: TopicConfigManager;
  storePathRootDir: string;
  /** broker.conf timer keys; missing ones take upstream's defaults. */
  config?: Partial<TimerConfig>;
  brokerName: string;
  logger?: Logger;
  /** Wall clock for delivery times (tests inject one). */
  clock?: () => number;
  /** Born host of the delete markers a recall writes. */
  storeHost?: HostAddress;
}

export interface TimerMessageStore {
  readonly config: Readonly<TimerConfig>;
  /** The send-path rewrite with this broker's settings and clock (see transformTimerMessage). */
  transform(input: MessageInput): TimerTransformResult | undefined;
  /** Starts the worker and the dispatcher wake-up. */
  start(): void;
  /**
   * Cancels a timer message before it is delivered. Refused with RmqError: TopicNotFound for an
   * unknown topic; IllegalArgument for a handle that does not decode or names another topic, broker
   * or an impossible time; MessageNotFound when the message is already due (delivered or being
   * delivered) or, with the Index on, no such message waits.
   */
  recall(topic: string, recallHandle: string): Promise<{ messageId: string }>;
  /** Messages waiting in the wheel (a recalled one counts -1 from its recall on, as upstream). */
  pendingCount(): number;
  /** One worker pass now (enqueue what is new, deliver what is due); the worker also runs on its own. */
  tick(): Promise<void>;
  /** Makes the timer log, wheel and checkpoint durable now. */
  flush(): Promise<void>;
  /** Stops the worker after its current step, flushes, closes the files. Call before the store's shutdown. */
  shutdown(): Promise<void>;
}

/** A delivery time rounded as the send path rounds it: the slot the message waits in. */
function slotOf(deliverMs: number, precisionMs: number): number {
  return deliverMs % precisionMs === 0 ? deliverMs - precisionMs : formatTimeMs(deliverMs, precisionMs);
}

function parseIntProperty(m: StoredMessage, name: string): number | undefined {
  const v = m.properties.get(name);
  if (v === undefined || !/^-?\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

interface MarkerWaiter {
  resolve: (ok: boolean) => void;
  reject: (e: unknown) => void;
  timer: NodeJS.Timeout;
}

interface Parts {
  o: TimerMessageStoreOptions;
  config: TimerConfig;
  logger: Logger;
  clock: () => number;
  timerLog: TimerLog;
  wheel: TimerWheel;
  checkpointFile: string;
}

class DefaultTimerMessageStore implements TimerMessageStore {
  readonly config: Readonly<TimerConfig>;
  private readonly store: MessageStore;
  private readonly o: TimerMessageStoreOptions;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly timerLog: TimerLog;
  private readonly wheel: TimerWheel;
  private readonly checkpointFile: string;
  private readonly precision: number;
  private readonly rollWindowMs: number;
  private readonly rollWindowSlotCount: number;

  /** Next timer-topic ConsumeQueue offset to enqueue. */
  private currQueueOffset = 0;
  /** First slot not fully delivered. */
  private currReadTimeMs = 0;
  /** The slot being delivered (its walk started), if any. */
  private processingSlot: number | undefined;
  /** CommitLog confirm offset when the processing slot's walk started. */
  private slotScanFrom = 0;
  /** Sources delivered during the processing slot (a slot retried after a failed write skips them). */
  private readonly slotDelivered = new Set<number>();
  /** Sources delivered before a crash, found by the restart scan; cleared once the walk passes the restart time. */
  private recovered: DeliveredSources = new Map();
  private recoveryScanFrom: number | undefined;
  private recoveryHorizonMs = 0;
  private pending = 0;
  private lastCheckpoint: TimerCheckpointData | undefined;
  private lastFlushAt = 0;
  private flushChain: Promise<void> = Promise.resolve();
  private flushRequested = false;
  private lastCleanAt = 0;

  private readonly markerOutcomes = new Map<number, boolean>();
  private readonly markerWaiters = new Map<number, MarkerWaiter[]>();

  private started = false;
  private stopping = false;
  private closed = false;
  private running: Promise<void> | undefined;
  private again = false;
  private lastPassFailed = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly dispatcher: Dispatcher;

  constructor(p: Parts) {
    this.o = p.o;
    this.store = p.o.store;
    this.config = Object.freeze({ ...p.config });
    this.logger = p.logger;
    this.clock = p.clock;
    this.timerLog = p.timerLog;
    this.wheel = p.wheel;
    this.checkpointFile = p.checkpointFile;
    this.precision = p.config.timerPrecisionMs;
    this.rollWindowSlotCount = rollWindowSlots(p.config);
    this.rollWindowMs = this.rollWindowSlotCount * this.precision;
    const wake = () => this.wake();
    this.dispatcher = {
      dispatch(req: DispatchRequest) {
        if (req.topic === TIMER_TOPIC) wake();
      },
      dispatchBatch(reqs: readonly DispatchRequest[]) {
        for (const r of reqs) {
          if (r.topic === TIMER_TOPIC) {
            wake();
            return;
          }
        }
      },
    };
  }

  // ------------------------------------------------------------------ recovery

  async recover(): Promise<void> {
    const cp = await readTimerCheckpoint(this.checkpointFile);
    const now = this.clock();
    let lastUnitQueueOffset = -1;
    let replayed = 0;
    const end = await this.timerLog.recover(cp?.lastTimerLogFlushPos ?? 0, async (units) => {
      await this.wheel.load(units.map((u) => u.delayedTimeMs));
      for (const u of units) {
        const slot = this.wheel.getSlot(u.delayedTimeMs);
        const delta = isDelete(u.magic) ? -1 : 1;
        // The wheel file may already include the unit (written after the checkpoint): positions tell.
        if (slot.timeMs < 0) this.wheel.putSlot(u.delayedTimeMs, u.pos, u.pos, delta);
        else if (u.pos > slot.lastPos)
          this.wheel.putSlot(u.delayedTimeMs, slot.firstPos, u.pos, slot.num + delta);
        lastUnitQueueOffset = Math.max(lastUnitQueueOffset, u.queueOffset);
        replayed++;
      }
    });
    let queueOffset = Math.max(cp?.lastTimerQueueOffset ?? 0, lastUnitQueueOffset + 1);
    const cqMin = this.store.getMinOffsetInQueue(TIMER_TOPIC, TIMER_QUEUE_ID);
    const cqMax = this.store.getMaxOffsetInQueue(TIMER_TOPIC, TIMER_QUEUE_ID);
    if (queueOffset < cqMin) {
      this.logger.warn(
        { queueOffset, cqMin },
        "timer: enqueue offset below the timer queue's first entry; moving up",
      );
      queueOffset = cqMin;
    } else if (queueOffset > cqMax) {
      this.logger.warn(
        { queueOffset, cqMax },
        "timer: enqueue offset above the timer queue's end; moving down",
      );
      queueOffset = cqMax;
    }
    this.currQueueOffset = queueOffset;
    // As upstream: the wheel holds one turn; a read time older than that is moved up (messages due
    // before it were lost with the turn).
    let readTime = cp?.lastReadTimeMs ?? formatTimeMs(now, this.precision);
    const oldest = formatTimeMs(now, this.precision) - (SLOTS_TOTAL - TIMER_BLANK_SLOTS) * this.precision;
    if (readTime < oldest) {
      this.logger.warn({ readTime, oldest }, "timer: last read time is older than the wheel; moving up");
      readTime = oldest;
    }
    this.currReadTimeMs = readTime;
    if (cp !== undefined) {
      this.recovered = await scanTimerDeliveries(this.store, cp.dequeueScanFrom, this.logger);
      if (this.recovered.size > 0) {
        this.recoveryScanFrom = cp.dequeueScanFrom;
        // A slot delivered before the restart started before now.
        this.recoveryHorizonMs = formatTimeMs(now, this.precision);
      }
    }
    this.pending = await this.wheel.sumNum(this.currReadTimeMs);
    await this.flushNow();
    this.logger.info(
      {
        readTime: this.currReadTimeMs,
        queueOffset: this.currQueueOffset,
        timerLogEnd: end,
        replayedUnits: replayed,
        deliveredBeforeRestart: this.recovered.size,
        pending: this.pending,
      },
      "timer recovered",
    );
  }

  // ------------------------------------------------------------------ worker

  transform(input: MessageInput): TimerTransformResult | undefined {
    // Every send asks: answer a plain message without building the settings or reading the clock.
    if (!isTimerMessage(input)) return undefined;
    return transformTimerMessage(
      input,
      {
        timerPrecisionMs: this.config.timerPrecisionMs,
        timerMaxDelaySec: this.config.timerMaxDelaySec,
        brokerName: this.o.brokerName,
      },
      this.clock(),
    );
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.store.addDispatcher(this.dispatcher);
    this.schedule(0);
  }

  private wake(): void {
    if (!this.started || this.stopping) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (!this.started || this.stopping) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runPass();
    }, delayMs);
    this.timer.unref();
  }

  /** Until the next slot is over, at most upstream's poll wait (100 ms at 1 s precision). */
  private nextDelay(): number {
    if (this.lastPassFailed) return ERROR_BACKOFF_MS;
    const poll = Math.max(10, Math.floor((100 * this.precision) / 1000));
    if (!this.store.isWritable()) return poll;
    const untilDue = this.currReadTimeMs + this.precision - this.clock();
    return Math.max(0, Math.min(poll, untilDue + 1));
  }

  tick(): Promise<void> {
    if (this.closed) return Promise.reject(new RmqError(ErrorCode.StoreShutdown, "the timer is shut down"));
    return this.runPass();
  }

  private runPass(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    const p = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopping);
        this.lastPassFailed = false;
      } catch (err) {
        this.lastPassFailed = true;
        this.logger.error({ err }, "timer pass failed; will retry");
      } finally {
        this.running = undefined;
        this.schedule(this.nextDelay());
      }
    })();
    this.running = p;
    return p;
  }

  private async pass(): Promise<void> {
    if (this.closed || this.stopping) return;
    if (!(await this.enqueue())) this.again = true;
    let slots = 0;
    while (!this.stopping && this.currReadTimeMs < formatTimeMs(this.clock(), this.precision)) {
      if (!this.store.isWritable()) break;
      if (!(await this.dequeueSlot(this.currReadTimeMs))) break;
      await this.maybeFlush();
      if (++slots >= SLOTS_PER_PASS) {
        this.again = true;
        break;
      }
    }
    await this.maybeFlush();
    await this.maybeClean();
  }

  // ------------------------------------------------------------------ enqueue

  /** Enqueues what the timer topic has beyond the offset; false when it stopped at the per-pass bound. */
  private async enqueue(): Promise<boolean> {
    let done = 0;
    while (!this.stopping) {
      if (done >= ENQUEUE_PER_PASS) return false;
      const offset = this.currQueueOffset;
      const r = await this.store.getMessage(TIMER_TOPIC, TIMER_QUEUE_ID, offset, ENQUEUE_BATCH);
      if (r.status === GetMessageStatus.FOUND) {
        await this.enqueueBatch(r.messages);
        done += r.messages.length;
      } else if (
        r.status === GetMessageStatus.NO_MATCHED_LOGIC_QUEUE ||
        r.status === GetMessageStatus.NO_MESSAGE_IN_QUEUE ||
        r.status === GetMessageStatus.OFFSET_OVERFLOW_ONE
      ) {
        return true;
      } else if (r.status === GetMessageStatus.OFFSET_OVERFLOW_BADLY) {
        // The queue was cut back (truncation after a failover, a lost CommitLog tail).
        this.logger.warn(
          { from: offset, to: r.nextBeginOffset },
          "timer: enqueue offset beyond the timer queue; moving back",
        );
        this.currQueueOffset = r.nextBeginOffset;
        return true;
      } else if (r.nextBeginOffset <= offset) {
        return true;
      } else {
        this.logger.warn(
          { status: r.status, from: offset, to: r.nextBeginOffset },
          "timer: timer-topic entries skipped (removed or unreadable)",
        );
      }
      this.currQueueOffset = r.nextBeginOffset;
      await this.maybeFlush();
    }
    return true;
  }

  private async enqueueBatch(msgs: StoredMessage[]): Promise<void> {
    const writeTime = formatTimeMs(this.clock(), this.precision);
    const open = this.currReadTimeMs;
    const plans: Array<{ m: StoredMessage; slot: number; magic: number } | undefined> = [];
    for (const m of msgs) {
      const outMs = parseIntProperty(m, TimerProperty.TIMER_OUT_MS);
      if (outMs === undefined || !m.properties.has(TimerProperty.REAL_TOPIC)) {
        this.logger.warn(
          { queueOffset: m.queueOffset, commitLogOffset: m.commitLogOffset },
          "timer: timer-topic record without TIMER_OUT_MS / REAL_TOPIC skipped",
        );
        plans.push(undefined);
        continue;
      }
      const del = m.properties.has(TimerProperty.TIMER_DEL_UNIQKEY);
      let magic = MAGIC_DEFAULT | (del ? MAGIC_DELETE : 0);
      let slot = formatTimeMs(outMs, this.precision);
      if (slot - writeTime >= this.rollWindowMs) {
        // As upstream: wait in a nearer slot; half a window ahead when the rest would be short.
        magic |= MAGIC_ROLL;
        const w = this.rollWindowSlotCount;
        slot =
          slot - writeTime - this.rollWindowMs < Math.floor(w / 3) * this.precision
            ? writeTime + Math.floor(w / 2) * this.precision
            : writeTime + this.rollWindowMs;
      }
      if (slot < open || (del && slot === this.processingSlot)) {
        if (del && !isRoll(magic)) {
          // Its message's slot has been read: the recall came too late (upstream drops it too).
          this.markerOutcome(m.queueOffset, false);
          plans.push(undefined);
          continue;
        }
        slot = Math.max(open, slot);
      }
      plans.push({ m, slot, magic });
    }
    await this.wheel.load(plans.flatMap((p) => (p === undefined ? [] : [p.slot])));
    for (const p of plans) {
      if (p === undefined) continue;
      const { m, slot, magic } = p;
      const s = this.wheel.getSlot(slot);
      const pos = this.timerLog.append({
        prevPos: s.lastPos,
        magic,
        enqueueTimeMs: writeTime,
        delayedTimeMs: slot,
        offsetPy: m.commitLogOffset,
        sizePy: m.storeSize,
        queueOffset: m.queueOffset,
      });
      const delta = isDelete(magic) ? -1 : 1;
      this.wheel.putSlot(slot, s.firstPos < 0 ? pos : s.firstPos, pos, s.num + delta);
      this.pending += delta;
      if (isDelete(magic)) this.markerOutcome(m.queueOffset, true);
    }
    const last = msgs[msgs.length - 1];
    if (last !== undefined) this.currQueueOffset = Math.max(this.currQueueOffset, last.queueOffset + 1);
  }

  // ------------------------------------------------------------------ dequeue

  /** Delivers slot `t`; false when it stopped early (shutdown, store not writable), to be walked again. */
  private async dequeueSlot(t: number): Promise<boolean> {
    await this.wheel.load([t]);
    const slot = this.wheel.getSlot(t);
    if (slot.timeMs < 0) {
      this.slotDone(t, 0);
      return true;
    }
    if (this.processingSlot !== t) {
      this.processingSlot = t;
      this.slotScanFrom = this.store.getConfirmOffset();
      this.slotDelivered.clear();
    }
    const units = await this.walk(t, slot.lastPos);
    const deleteKeys = new Set<string>();
    const normal: TimerUnit[] = [];
    const markers: TimerUnit[] = [];
    for (const u of units) (isDelete(u.magic) && !isRoll(u.magic) ? markers : normal).push(u);
    for (let i = 0; i < markers.length; i += DEQUEUE_BATCH) {
      const batch = markers.slice(i, i + DEQUEUE_BATCH);
      const msgs = await Promise.all(batch.map((u) => this.store.lookMessageByOffset(u.offsetPy)));
      for (let j = 0; j < batch.length; j++) {
        const key = this.sourceRecord(msgs[j], batch[j] as TimerUnit)?.properties.get(
          TimerProperty.TIMER_DEL_UNIQKEY,
        );
        if (key !== undefined) deleteKeys.add(key);
      }
    }
    for (let i = 0; i < normal.length; i += DEQUEUE_BATCH) {
      if (this.stopping || !this.store.isWritable()) return false;
      await this.deliverBatch(normal.slice(i, i + DEQUEUE_BATCH), deleteKeys);
      if (i + DEQUEUE_BATCH < normal.length) await this.maybeFlush();
    }
    this.slotDone(t, slot.num);
    return true;
  }

  private slotDone(t: number, num: number): void {
    this.pending -= num;
    this.processingSlot = undefined;
    this.slotDelivered.clear();
    this.currReadTimeMs = t + this.precision;
    if (this.recoveryScanFrom !== undefined && this.currReadTimeMs > this.recoveryHorizonMs) {
      this.recovered.clear();
      this.recoveryScanFrom = undefined;
    }
  }

  /** The slot's units, oldest first (the chain runs newest to oldest). */
  private async walk(t: number, lastPos: number): Promise<TimerUnit[]> {
    const units: TimerUnit[] = [];
    let pos = lastPos;
    while (pos >= 0) {
      const u = await this.timerLog.read(pos);
      if (u === undefined || u.delayedTimeMs !== t) {
        this.logger.error(
          { slot: t, pos, found: u === undefined ? "nothing" : `a unit of slot ${u.delayedTimeMs}` },
          "timer: slot chain broken (timer log removed or damaged); the rest of the slot is lost",
        );
        break;
      }
      units.push(u);
      if (u.prevPos >= pos) {
        this.logger.error(
          { slot: t, pos, prevPos: u.prevPos },
          "timer: slot chain does not go backwards; stopped",
        );
        break;
      }
      pos = u.prevPos;
    }
    return units.reverse();
  }

  /** The timer-topic record a unit names, if it is still there. */
  private sourceRecord(m: StoredMessage | undefined, u: TimerUnit): StoredMessage | undefined {
    if (m === undefined || m.topic !== TIMER_TOPIC || m.commitLogOffset !== u.offsetPy) {
      this.logger.warn(
        { offsetPy: u.offsetPy, sizePy: u.sizePy },
        "timer: message of a unit can no longer be read (removed by retention?); dropped",
      );
      return undefined;
    }
    return m;
  }

  private deliveredBefore(m: StoredMessage, u: TimerUnit): boolean {
    if (this.slotDelivered.has(u.offsetPy)) return true;
    const r = this.recovered.get(u.offsetPy);
    if (r === undefined) return false;
    const uniqKey = m.properties.get(TimerProperty.UNIQ_KEY);
    const topic = isRoll(u.magic) ? TIMER_TOPIC : m.properties.get(TimerProperty.REAL_TOPIC);
    if (r.uniqKey !== uniqKey || r.topic !== topic) return false;
    this.recovered.delete(u.offsetPy);
    return true;
  }

  private async deliverBatch(units: TimerUnit[], deleteKeys: ReadonlySet<string>): Promise<void> {
    const msgs = await Promise.all(units.map((u) => this.store.lookMessageByOffset(u.offsetPy)));
    const out: MessageInput[] = [];
    const sources: number[] = [];
    for (let i = 0; i < units.length; i++) {
      const u = units[i] as TimerUnit;
      const m = this.sourceRecord(msgs[i], u);
      if (m === undefined || this.deliveredBefore(m, u)) continue;
      if (isRoll(u.magic)) {
        out.push(rolledMessage(m));
        sources.push(u.offsetPy);
        continue;
      }
      const realTopic = m.properties.get(TimerProperty.REAL_TOPIC) ?? "";
      const uniqKey = m.properties.get(TimerProperty.UNIQ_KEY);
      if (uniqKey !== undefined && deleteKeys.has(buildDeleteKey(realTopic, uniqKey))) {
        this.logger.debug({ topic: realTopic, uniqKey }, "timer: recalled message not delivered");
        continue;
      }
      const d = deliveredMessage(m);
      if (d === undefined) {
        this.logger.warn({ offsetPy: u.offsetPy }, "timer: record names no real topic/queue; dropped");
        continue;
      }
      out.push(d);
      sources.push(u.offsetPy);
    }
    await this.put(out, sources);
  }

  /** Writes the batch; a message the store refuses as such is logged and dropped (as upstream's PUT_NO_RETRY). */
  private async put(out: MessageInput[], sources: number[]): Promise<void> {
    if (out.length === 0) return;
    try {
      await this.store.putMessages(out);
      for (const s of sources) this.slotDelivered.add(s);
      return;
    } catch (e) {
      if (!isRmqError(e) || RETRYABLE_STORE_CODES.has(e.code)) throw e;
    }
    for (let i = 0; i < out.length; i++) {
      const m = out[i] as MessageInput;
      try {
        await this.store.putMessage(m);
      } catch (err) {
        if (!isRmqError(err) || RETRYABLE_STORE_CODES.has(err.code)) throw err;
        this.logger.error({ err, topic: m.topic }, "timer: the store refused a due message; dropped");
      }
      this.slotDelivered.add(sources[i] as number);
    }
  }

  // ------------------------------------------------------------------ flush and retention

  private async maybeFlush(): Promise<void> {
    const due = performance.now() - this.lastFlushAt >= this.config.timerFlushIntervalMs;
    if (
      this.flushRequested ||
      due ||
      this.timerLog.unflushedBytes >= MAX_UNFLUSHED_TIMER_LOG_BYTES ||
      this.wheel.dirtyBlocks >= MAX_DIRTY_WHEEL_BLOCKS
    )
      await this.flushNow();
  }

  /** Flushes one at a time (recovery, the worker and shutdown each flush; never two at once). */
  private flushNow(): Promise<void> {
    const run = () => this.flushOnce();
    const p = this.flushChain.then(run, run);
    this.flushChain = p.catch(() => {});
    return p;
  }

  private async flushOnce(): Promise<void> {
    this.lastFlushAt = performance.now();
    this.flushRequested = false;
    // Taken together, before any await: the queue offset matches the units appended so far.
    const queueOffset = this.currQueueOffset;
    const readTime = this.currReadTimeMs;
    let scanFrom = this.processingSlot !== undefined ? this.slotScanFrom : this.store.getConfirmOffset();
    if (this.recoveryScanFrom !== undefined) scanFrom = Math.min(scanFrom, this.recoveryScanFrom);
    const flushPos = await this.timerLog.flush();
    await this.wheel.flush();
    const cp: TimerCheckpointData = {
      lastReadTimeMs: readTime,
      lastTimerLogFlushPos: flushPos,
      lastTimerQueueOffset: queueOffset,
      dequeueScanFrom: scanFrom,
    };
    const prev = this.lastCheckpoint;
    if (
      prev === undefined ||
      prev.lastReadTimeMs !== cp.lastReadTimeMs ||
      prev.lastTimerLogFlushPos !== cp.lastTimerLogFlushPos ||
      prev.lastTimerQueueOffset !== cp.lastTimerQueueOffset ||
      prev.dequeueScanFrom !== cp.dequeueScanFrom
    ) {
      await writeTimerCheckpoint(this.checkpointFile, cp);
      this.lastCheckpoint = cp;
    }
  }

  private async maybeClean(): Promise<void> {
    const now = performance.now();
    if (now - this.lastCleanAt < TIMER_LOG_CLEAN_INTERVAL_MS) return;
    this.lastCleanAt = now;
    const removed = await this.timerLog.deleteExpired(this.store.getMinPhyOffset());
    if (removed.length > 0)
      this.logger.info({ removed }, "timer log segments removed (their messages are gone)");
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.resolve();
    // Through the worker: a flush must never run while an enqueue step is between appending units
    // and updating their slots, or the wheel could reach the disk ahead of the units it points at.
    this.flushRequested = true;
    return this.runPass();
  }

  // ------------------------------------------------------------------ recall

  private markerOutcome(queueOffset: number, ok: boolean): void {
    const waiters = this.markerWaiters.get(queueOffset);
    if (waiters !== undefined) {
      this.markerWaiters.delete(queueOffset);
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.resolve(ok);
      }
      return;
    }
    this.markerOutcomes.set(queueOffset, ok);
    if (this.markerOutcomes.size > MAX_MARKER_OUTCOMES) {
      const oldest = this.markerOutcomes.keys().next().value as number;
      this.markerOutcomes.delete(oldest);
    }
  }

  /** Waits until the worker has enqueued the marker at `queueOffset`; true when it went into its slot. */
  private awaitMarker(queueOffset: number): Promise<boolean> {
    const known = this.markerOutcomes.get(queueOffset);
    if (known !== undefined) {
      this.markerOutcomes.delete(queueOffset);
      return Promise.resolve(known);
    }
    if (queueOffset < this.currQueueOffset) return Promise.resolve(false);
    return new Promise((resolve, reject) => {
      const w: MarkerWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const list = this.markerWaiters.get(queueOffset);
          if (list !== undefined) {
            const rest = list.filter((x) => x !== w);
            if (rest.length > 0) this.markerWaiters.set(queueOffset, rest);
            else this.markerWaiters.delete(queueOffset);
          }
          reject(
            new RmqError(
              ErrorCode.Internal,
              `recall: the timer did not take the delete marker within ${RECALL_ENQUEUE_TIMEOUT_MS} ms; it takes effect if enqueued before the message is due`,
            ),
          );
        }, RECALL_ENQUEUE_TIMEOUT_MS),
      };
      w.timer.unref();
      const list = this.markerWaiters.get(queueOffset);
      if (list === undefined) this.markerWaiters.set(queueOffset, [w]);
      else list.push(w);
      this.wake();
    });
  }

  async recall(topic: string, recallHandle: string): Promise<{ messageId: string }> {
    if (this.closed || this.stopping) throw new RmqError(ErrorCode.StoreShutdown, "the timer is shut down");
    if (!this.started) throw new RmqError(ErrorCode.StoreNotWritable, "the timer is not running");
    if (!this.o.topics.has(topic)) {
      throw new RmqError(
        ErrorCode.TopicNotFound,
        `recall failed: topic ${JSON.stringify(topic)} does not exist`,
      );
    }
    const h = decodeRecallHandle(recallHandle);
    if (h.topic !== topic) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `recall failed: the handle is for topic ${JSON.stringify(h.topic)}, not ${JSON.stringify(topic)}`,
      );
    }
    if (h.brokerName !== this.o.brokerName) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `recall failed: the handle is for broker ${JSON.stringify(h.brokerName)}, this is ${JSON.stringify(this.o.brokerName)}`,
      );
    }
    const timeLeft = h.timestampMs - this.clock();
    if (timeLeft >= this.config.timerMaxDelaySec * 1000) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        "recall failed: the handle's time is beyond timerMaxDelaySec",
      );
    }
    const slot = slotOf(h.timestampMs, this.precision);
    const tooLate = () =>
      new RmqError(
        ErrorCode.MessageNotFound,
        `recall failed: message ${h.messageId} is already due (delivered or being delivered)`,
      );
    if (timeLeft <= 0 || slot < this.currReadTimeMs || slot === this.processingSlot) throw tooLate();
    if (this.store.config.messageIndexEnable) {
      // The timer-topic record (or an earlier recall's marker) carries the id, topic and slot.
      const m = await this.store.queryMessageByUniqKey(TIMER_TOPIC, h.messageId);
      if (
        m === undefined ||
        m.properties.get(TimerProperty.REAL_TOPIC) !== topic ||
        parseIntProperty(m, TimerProperty.TIMER_OUT_MS) !== slot
      ) {
        throw new RmqError(
          ErrorCode.MessageNotFound,
          `recall failed: no delay message ${h.messageId} of topic ${JSON.stringify(topic)} waits on broker ${this.o.brokerName}`,
        );
      }
    }
    const now = this.clock();
    const marker: MessageInput = {
      topic: TIMER_TOPIC,
      queueId: TIMER_QUEUE_ID,
      flag: 0,
      body: Buffer.from("0"),
      properties: new Map([
        [TimerProperty.TIMER_DEL_UNIQKEY, buildDeleteKey(topic, h.messageId)],
        [TimerProperty.UNIQ_KEY, h.messageId],
        [TimerProperty.TIMER_DELIVER_MS, String(h.timestampMs)],
        [TimerProperty.TIMER_OUT_MS, String(slot)],
        [TimerProperty.REAL_TOPIC, topic],
        [TimerProperty.REAL_QID, "0"],
        [TimerProperty.TAGS, RECALL_MESSAGE_TAG],
      ]),
      bornTimestamp: now,
      bornHost: this.o.storeHost ?? { address: "127.0.0.1", port: 0 },
      sysFlag: 0,
      reconsumeTimes: 0,
      preparedTransactionOffset: 0,
    };
    const r = await this.store.putMessage(marker);
    if (!(await this.awaitMarker(r.queueOffset))) throw tooLate();
    return { messageId: h.messageId };
  }

  pendingCount(): number {
    return Math.max(0, this.pending);
  }

  // ------------------------------------------------------------------ shutdown

  async shutdown(): Promise<void> {
    if (this.closed || this.stopping) return;
    this.stopping = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => {});
    for (const [, list] of this.markerWaiters) {
      for (const w of list) {
        clearTimeout(w.timer);
        w.reject(new RmqError(ErrorCode.StoreShutdown, "the timer is shutting down"));
      }
    }
    this.markerWaiters.clear();
    try {
      await this.flushNow();
    } catch (err) {
      this.logger.error({ err }, "timer flush at shutdown failed");
    }
    this.closed = true;
    await this.timerLog.close();
    await this.wheel.close();
    this.logger.info(
      { readTime: this.currReadTimeMs, queueOffset: this.currQueueOffset, pending: this.pending },
      "timer shut down",
    );
  }
}

/**
 * The timer topic exists, with one queue, and is write-only: nothing consumes it but the timer
 * (which reads it through the store), so a pop of it is refused.
 */
export async function ensureTimerTopic(topics: TopicConfigManager): Promise<void> {
  const tc = await topics.createIfAbsent({
    topicName: TIMER_TOPIC,
    readQueueNums: 1,
    writeQueueNums: 1,
    perm: PermName.PERM_WRITE,
  });
  if ((tc.perm & PermName.PERM_READ) !== 0 || tc.writeQueueNums < 1) {
    await topics.createOrUpdate(
      {
        topicName: TIMER_TOPIC,
        readQueueNums: Math.max(1, tc.readQueueNums),
        writeQueueNums: Math.max(1, tc.writeQueueNums),
        perm: tc.perm & ~PermName.PERM_READ,
      },
      { allowSystemTopic: true },
    );
  }
}

/**
 * Opens the timer over an opened (recovered) store: loads the timer log, wheel and checkpoint, replays
 * what the checkpoint does not cover and finds what was delivered before a crash. Call start() to run.
 */
export async function createTimerMessageStore(o: TimerMessageStoreOptions): Promise<TimerMessageStore> {
  const config: TimerConfig = { ...DEFAULT_TIMER_CONFIG, ...o.config };
  validateTimerConfig(config);
  const logger = o.logger ?? silentLogger();
  await ensureTimerTopic(o.topics);
  const timerLog = await TimerLog.open(
    join(o.storePathRootDir, "timerlog"),
    config.mappedFileSizeTimerLog,
    logger,
  );
  let wheel: TimerWheel | undefined;
  try {
    wheel = await TimerWheel.open(join(o.storePathRootDir, "timerwheel"), config.timerPrecisionMs);
    const t = new DefaultTimerMessageStore({
      o,
      config,
      logger,
      clock: o.clock ?? Date.now,
      timerLog,
      wheel,
      checkpointFile: timerCheckpointPath(o.storePathRootDir),
    });
    await t.recover();
    return t;
  } catch (e) {
    await timerLog.close().catch(() => {});
    await wheel?.close().catch(() => {});
    throw e;
  }
}
