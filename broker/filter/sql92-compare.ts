// Runtime values of the SQL92 evaluator and upstream's rules for comparing them.
//
// Upstream (filter/expression/ComparisonExpression.__compare, with string conversion switched on as
// SelectorParser always does) compares two non-null values like this:
// - same type: natural order (String.compareTo, Boolean false < true, Integer/Long, Double.compareTo);
// - a string against a number literal: the string is converted to the literal's Java type with
//   Integer.valueOf / Long.valueOf / Double.valueOf, then compared; a string that does not convert
//   (e.g. "abc", "1.5" against an int literal, "3000000000" against an int literal) makes the
//   whole evaluation fail, which the broker treats as "no match";
// - a string against TRUE/FALSE: Boolean.valueOf(string) ("true" in any case, else false);
//   TRUE/FALSE against a string fails (upstream casts the boolean to String: ClassCastException);
// - numbers of different types are widened: int -> long -> double;
// - any other mix (a number against a boolean, ...) compares as "less than", so `=` is FALSE.
// For `>`, `>=`, `<`, `<=` on two strings (e.g. two properties), both are parsed as doubles first;
// see sql92-evaluator.ts. Double comparisons use Java's Double.compareTo: -0.0 < 0.0 and NaN is
// equal to itself and greater than everything, +Infinity included.

import { parseJavaBoolean, parseJavaDouble, parseJavaInt, parseJavaLong } from "./java-number-parse.ts";

export const NumberKind = { Int: 0, Long: 1, Double: 2 } as const;
export type NumberKind = (typeof NumberKind)[keyof typeof NumberKind];

/** A number with its Java type. Longs are a number when safe, otherwise a bigint. */
export class SqlNumber {
  readonly kind: NumberKind;
  readonly value: number | bigint;
  constructor(kind: NumberKind, value: number | bigint) {
    this.kind = kind;
    this.value = value;
  }
}

/** A value during evaluation: null is SQL NULL (a missing property, the NULL literal, UNKNOWN). */
export type SqlValue = null | boolean | string | SqlNumber;

/** Thrown (one shared instance, no stack capture per throw) when upstream would throw while evaluating. */
export const EVALUATION_FAILED: Error = new Error(
  "SQL92 evaluation failed (upstream raises an exception here)",
);

/** Java Double.compare. */
export function javaDoubleCompare(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  const aNaN = Number.isNaN(a);
  const bNaN = Number.isNaN(b);
  if (aNaN || bNaN) return aNaN === bNaN ? 0 : aNaN ? 1 : -1;
  if (a === 0) {
    const aNegative = Object.is(a, -0);
    const bNegative = Object.is(b, -0);
    return aNegative === bNegative ? 0 : aNegative ? -1 : 1;
  }
  return 0;
}

/** Two numbers after Java's widening: both to double when either is a double, else exact integers. */
export function compareNumbers(
  aKind: NumberKind,
  a: number | bigint,
  bKind: NumberKind,
  b: number | bigint,
): number {
  if (aKind === NumberKind.Double || bKind === NumberKind.Double)
    return javaDoubleCompare(Number(a), Number(b));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A string converted to a number of the given Java type; throws EVALUATION_FAILED if Java would. */
export function convertString(kind: NumberKind, s: string): number | bigint {
  const v =
    kind === NumberKind.Int
      ? parseJavaInt(s)
      : kind === NumberKind.Long
        ? parseJavaLong(s)
        : parseJavaDouble(s);
  if (v === undefined) throw EVALUATION_FAILED;
  return v;
}

/** Upstream __compare for two non-null values; the sign of the result is what matters. */
export function compareValues(left: Exclude<SqlValue, null>, right: Exclude<SqlValue, null>): number {
  if (typeof left === "string") {
    if (typeof right === "string") return left === right ? 0 : left < right ? -1 : 1;
    if (typeof right === "boolean") return compareBooleans(parseJavaBoolean(left), right);
    return compareNumbers(right.kind, convertString(right.kind, left), right.kind, right.value);
  }
  if (typeof left === "boolean") {
    if (typeof right === "boolean") return compareBooleans(left, right);
    if (typeof right === "string") throw EVALUATION_FAILED;
    return -1;
  }
  if (typeof right === "string")
    return compareNumbers(left.kind, left.value, left.kind, convertString(left.kind, right));
  if (typeof right === "boolean") return -1;
  return compareNumbers(left.kind, left.value, right.kind, right.value);
}

function compareBooleans(a: boolean, b: boolean): number {
  return a === b ? 0 : a ? 1 : -1;
}
