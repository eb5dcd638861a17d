// How `rmq bench` prints numbers: rates as whole numbers, latencies in ms with 2–3 significant
// digits, error tallies as "CODE=count", and the raw-ceiling comparison as one ratio line.

import { ConnectError, Code as GrpcCode } from "@connectrpc/connect";
import { codeName } from "../../bench/grpc-client.ts";

/** Longer error messages are cut in the report. */
const MAX_REPORTED_MESSAGE_CHARS = 200;

export function formatRate(perSec: number): string {
  return Number.isFinite(perSec) ? String(Math.round(perSec)) : "0";
}

export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

export function formatMb(mbPerSec: number): string {
  return `${(Number.isFinite(mbPerSec) ? mbPerSec : 0).toFixed(1)} MB/s`;
}

export function formatPercentiles(p: { p50Ms: number; p99Ms: number; p999Ms: number }): string {
  return `p50 ${formatMs(p.p50Ms)} p99 ${formatMs(p.p99Ms)} p999 ${formatMs(p.p999Ms)}`;
}

/**
 * Tally of failures by code: v2 status codes as "NAME(number)", transport errors as "grpc <Code>";
 * the first message seen for each code is kept for the report.
 */
export class ErrorTally {
  readonly counts = new Map<string, number>();
  readonly firstMessages = new Map<string, string>();
  add(key: string, n = 1, message?: string): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    if (message !== undefined && message.length > 0 && !this.firstMessages.has(key)) {
      this.firstMessages.set(
        key,
        message.length > MAX_REPORTED_MESSAGE_CHARS
          ? `${message.slice(0, MAX_REPORTED_MESSAGE_CHARS)}…`
          : message,
      );
    }
  }
  addStatus(code: number, n = 1, message?: string): void {
    this.add(codeName(code), n, message);
  }
  addTransport(error: unknown, n = 1): void {
    this.add(transportErrorKey(error), n, error instanceof ConnectError ? error.rawMessage : String(error));
  }
  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }
  toRecord(): Record<string, number> {
    return Object.fromEntries([...this.counts.entries()].sort((a, b) => b[1] - a[1]));
  }
  text(): string {
    const entries = Object.entries(this.toRecord());
    if (entries.length === 0) return "none";
    return entries
      .map(([k, v]) => {
        const first = this.firstMessages.get(k);
        return first === undefined ? `${k}=${v}` : `${k}=${v} (first: ${first})`;
      })
      .join(", ");
  }
}

export function transportErrorKey(error: unknown): string {
  if (error instanceof ConnectError) return `grpc ${GrpcCode[error.code] ?? error.code}`;
  return `error ${error instanceof Error ? error.name : typeof error}`;
}

/** "ratio: <ours> vs <raw> = 87.5 %" */
export function ratioLine(ours: string, oursValue: number, raw: string, rawValue: number): string {
  const ratio = rawValue > 0 ? (oursValue / rawValue) * 100 : Number.NaN;
  return `ratio: ${ours} ${formatRate(oursValue)} vs ${raw} ${formatRate(rawValue)} = ${Number.isFinite(ratio) ? ratio.toFixed(1) : "-"} %`;
}
