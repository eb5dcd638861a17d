// The timer's settings (broker.conf keys of upstream MessageStoreConfig) and the wheel geometry they
// imply.

import { ErrorCode, RmqError } from "../../common/errors.ts";

export interface TimerConfig {
  /** Slot width: delivery times are rounded down to a multiple of this (1000). */
  timerPrecisionMs: number;
  /** Longest delay a timer message may ask for, in seconds (259200 = 3 days). */
  timerMaxDelaySec: number;
  /** How often the timer log, wheel and checkpoint are made durable (1000). */
  timerFlushIntervalMs: number;
  /** Delays longer than this many slots wait in a nearer slot first and are re-enqueued from there (172800 = 2 days at 1 s). */
  timerRollWindowSlot: number;
  /** Timer log segment size in bytes (100 MiB). */
  mappedFileSizeTimerLog: number;
}

export const DEFAULT_TIMER_CONFIG: Readonly<TimerConfig> = Object.freeze({
  timerPrecisionMs: 1000,
  timerMaxDelaySec: 3 * 24 * 3600,
  timerFlushIntervalMs: 1000,
  timerRollWindowSlot: 2 * 24 * 3600,
  mappedFileSizeTimerLog: 100 * 1024 * 1024,
});

/** Days the wheel spans at 1 s precision (upstream TIMER_WHEEL_TTL_DAY): slotsTotal = 7 x 86400. */
const TIMER_WHEEL_TTL_DAY = 7;
const DAY_SECS = 24 * 3600;
/** Slots of one wheel turn, whatever the precision (upstream slotsTotal, 604800). */
export const SLOTS_TOTAL = TIMER_WHEEL_TTL_DAY * DAY_SECS;
/** Slots kept clear between the read position and the far end of the wheel (upstream TIMER_BLANK_SLOTS, 60). */
export const TIMER_BLANK_SLOTS = 60;
/** Smallest timer log segment accepted (tests use small ones). */
const MIN_TIMER_LOG_FILE_SIZE = 4096;

export function validateTimerConfig(c: TimerConfig): void {
  const bad = (key: string, why: string): never => {
    throw new RmqError(ErrorCode.IllegalConfig, `${key}: ${why}`);
  };
  for (const k of [
    "timerPrecisionMs",
    "timerMaxDelaySec",
    "timerFlushIntervalMs",
    "timerRollWindowSlot",
  ] as const) {
    if (!Number.isSafeInteger(c[k]) || c[k] <= 0) bad(k, "must be a positive integer");
  }
  if (!Number.isSafeInteger(c.mappedFileSizeTimerLog) || c.mappedFileSizeTimerLog < MIN_TIMER_LOG_FILE_SIZE)
    bad("mappedFileSizeTimerLog", `must be an integer >= ${MIN_TIMER_LOG_FILE_SIZE}`);
  // A unit's delay is stored as a 32-bit signed ms delta, so the wheel must fit in it.
  if (SLOTS_TOTAL * c.timerPrecisionMs > 0x7fffffff)
    bad("timerPrecisionMs", `the wheel (${SLOTS_TOTAL} slots) must span less than 2^31 ms`);
}

/**
 * The roll window in slots, as upstream: a setting above slotsTotal - TIMER_BLANK_SLOTS or below 2
 * means slotsTotal - TIMER_BLANK_SLOTS.
 */
export function rollWindowSlots(c: TimerConfig): number {
  const s = c.timerRollWindowSlot;
  return s > SLOTS_TOTAL - TIMER_BLANK_SLOTS || s < 2 ? SLOTS_TOTAL - TIMER_BLANK_SLOTS : s;
}

/** `timeMs` rounded down to the precision (upstream formatTimeMs). */
export function formatTimeMs(timeMs: number, precisionMs: number): number {
  return Math.floor(timeMs / precisionMs) * precisionMs;
}
