// Strict parsing of `rmq admin` option values: a bad value is refused before anything is contacted,
// with one line naming the flag, the value and what is allowed (mqadmin would throw a Java
// NumberFormatException, or silently read a non-"true" boolean as false).

import { ErrorCode, RmqError } from "../../common/errors.ts";

function bad(flag: string, value: string, allowed: string): RmqError {
  return new RmqError(ErrorCode.IllegalArgument, `${flag} ${JSON.stringify(value)} is illegal: ${allowed}`);
}

/** An integer flag in [min, max]. */
export function intFlag(
  flag: string,
  value: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  const t = value.trim();
  if (!/^[-+]?\d+$/.test(t)) throw bad(flag, value, `expected an integer from ${min} to ${max}`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw bad(flag, value, `expected an integer from ${min} to ${max}`);
  return n;
}

/** A true|false flag (case-insensitive, as Java Boolean.parseBoolean reads "true"). */
export function boolFlag(flag: string, value: string): boolean {
  const t = value.trim().toLowerCase();
  if (t === "true") return true;
  if (t === "false") return false;
  throw bad(flag, value, "expected true or false");
}

/** A time in ms since the epoch (queryMsgByKey -b/-e). */
export function timestampFlag(flag: string, value: string): number {
  return intFlag(flag, value, 0);
}

/** mqadmin's `-c cluster | -b broker` option group: exactly one of them. */
export function clusterOrBroker(o: {
  clusterName?: string;
  brokerAddr?: string;
}): { cluster: string } | { broker: string } {
  const c = o.clusterName?.trim();
  const b = o.brokerAddr?.trim();
  if (c !== undefined && b !== undefined) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      "give either -c/--clusterName or -b/--brokerAddr, not both",
    );
  }
  if (c !== undefined && c !== "") return { cluster: c };
  if (b !== undefined && b !== "") return { broker: b };
  throw new RmqError(ErrorCode.IllegalArgument, "one of -c/--clusterName or -b/--brokerAddr is required");
}
