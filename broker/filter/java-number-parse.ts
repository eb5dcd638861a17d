// String -> number/boolean conversions with the exact acceptance rules of the Java library calls the
// upstream SQL92 filter makes on message property values (Integer.valueOf, Long.valueOf,
// Double.valueOf, Boolean.valueOf). Property values are always strings in a RocketMQ message, so
// these decide whether `price > 10` can compare at all. A string Java would reject yields
// `undefined`; the caller turns that into the evaluation error upstream raises.

import { javaTrim } from "./java-trim.ts";

const INT_MAX = 2_147_483_647;
const INT_MIN_MAGNITUDE = 2_147_483_648;
const LONG_MAX = 9_223_372_036_854_775_807n;
const LONG_MIN_MAGNITUDE = 9_223_372_036_854_775_808n;
/** Below this the decimal accumulator can take one more digit and stay an exact double. */
const EXACT_ACCUMULATOR_LIMIT = 9e14;

const UNICODE_DECIMAL_DIGIT = /\p{Nd}/u;

/**
 * Value of one UTF-16 code unit as Java's `Character.digit(ch, 10)` sees it, or -1. Java accepts
 * every BMP character of category Nd (Arabic-Indic, Devanagari, fullwidth digits, ...), not only
 * 0-9; supplementary-plane digits arrive as two surrogates and are rejected, as in Java.
 */
function decimalDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c < 0x80 || (c >= 0xd800 && c <= 0xdfff)) return -1;
  if (!UNICODE_DECIMAL_DIGIT.test(String.fromCharCode(c))) return -1;
  // Nd characters come in runs that start at the digit zero; find the start of this run.
  let zero = c;
  while (zero > 0x80 && UNICODE_DECIMAL_DIGIT.test(String.fromCharCode(zero - 1))) zero--;
  return (c - zero) % 10;
}

/** Java `Integer.valueOf(s)`: optional +/-, one or more decimal digits, 32-bit range. */
export function parseJavaInt(s: string): number | undefined {
  const n = s.length;
  if (n === 0) return undefined;
  let i = 0;
  let negative = false;
  const first = s.charCodeAt(0);
  if (first === 0x2d) {
    negative = true;
    i = 1;
  } else if (first === 0x2b) {
    i = 1;
  }
  if (i === n) return undefined;
  let magnitude = 0;
  for (; i < n; i++) {
    const d = decimalDigit(s.charCodeAt(i));
    if (d < 0) return undefined;
    magnitude = magnitude * 10 + d;
    if (magnitude > INT_MIN_MAGNITUDE) return undefined;
  }
  if (negative) return magnitude === 0 ? 0 : -magnitude; // never -0: Java ints have one zero
  return magnitude > INT_MAX ? undefined : magnitude;
}

/**
 * Java `Long.valueOf(s)`: optional +/-, one or more decimal digits, 64-bit range. Returns a number
 * while the value is a safe integer and a bigint beyond that; both compare exactly with `<`/`>`.
 */
export function parseJavaLong(s: string): number | bigint | undefined {
  const n = s.length;
  if (n === 0) return undefined;
  let i = 0;
  let negative = false;
  const first = s.charCodeAt(0);
  if (first === 0x2d) {
    negative = true;
    i = 1;
  } else if (first === 0x2b) {
    i = 1;
  }
  if (i === n) return undefined;
  let magnitude = 0;
  let big: bigint | undefined;
  for (; i < n; i++) {
    const d = decimalDigit(s.charCodeAt(i));
    if (d < 0) return undefined;
    if (big === undefined && magnitude < EXACT_ACCUMULATOR_LIMIT) {
      magnitude = magnitude * 10 + d;
    } else {
      big = (big ?? BigInt(magnitude)) * 10n + BigInt(d);
      if (big > LONG_MIN_MAGNITUDE) return undefined;
    }
  }
  if (big === undefined) return negative ? (magnitude === 0 ? 0 : -magnitude) : magnitude;
  if (negative) return -big;
  return big > LONG_MAX ? undefined : big;
}

// Java's FloatingDecimal grammar after trim(): decimal with optional fraction/exponent and an
// optional single f/F/d/D suffix; "NaN"/"Infinity" with an optional sign; or a hexadecimal
// floating literal with a mandatory binary exponent. Digits are ASCII only here (unlike ints).
const DECIMAL_FLOAT = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?$/;
const NAN = /^[+-]?NaN$/;
const INFINITY = /^([+-]?)Infinity$/;
const HEX_FLOAT =
  /^([+-]?)0[xX](?:([0-9a-fA-F]+)\.?|([0-9a-fA-F]*)\.([0-9a-fA-F]+))[pP]([+-]?[0-9]+)[fFdD]?$/;
/** Clamp for absurd binary exponents: anything beyond this is already 0 or Infinity. */
const HEX_EXPONENT_CLAMP = 100_000;

/** Java `Double.valueOf(s)`. */
export function parseJavaDouble(s: string): number | undefined {
  const t = javaTrim(s);
  if (t.length === 0) return undefined;
  if (DECIMAL_FLOAT.test(t)) {
    const last = t.charCodeAt(t.length - 1);
    // Strip a trailing f/F/d/D type suffix; JS Number() parses the rest with the same rounding.
    const hasSuffix = last === 0x66 || last === 0x46 || last === 0x64 || last === 0x44;
    return Number(hasSuffix ? t.substring(0, t.length - 1) : t);
  }
  if (NAN.test(t)) return Number.NaN;
  const inf = INFINITY.exec(t);
  if (inf !== null) return inf[1] === "-" ? -Infinity : Infinity;
  const hex = HEX_FLOAT.exec(t);
  if (hex !== null) return hexFloatValue(hex);
  return undefined;
}

/**
 * Value of a hexadecimal floating literal: mantissa digits x 2^(exponent - 4 * fraction digits).
 * Correctly rounded except for results in the subnormal range (rounded twice there), which no
 * message property is realistically going to hold.
 */
function hexFloatValue(m: RegExpExecArray): number {
  const negative = m[1] === "-";
  const intDigits = m[2] ?? m[3] ?? "";
  const fracDigits = m[4] ?? "";
  let mantissa = BigInt(`0x${intDigits}${fracDigits}`);
  const rawExponent = Number.parseInt(m[5] ?? "0", 10);
  let exponent =
    Math.max(-HEX_EXPONENT_CLAMP, Math.min(HEX_EXPONENT_CLAMP, rawExponent)) - 4 * fracDigits.length;
  if (mantissa === 0n) return negative ? -0 : 0;
  // Keep 64 significant bits plus a sticky bit so Number() rounds to nearest-even correctly.
  const bits = mantissa.toString(2).length;
  if (bits > 64) {
    const shift = BigInt(bits - 64);
    const dropped = mantissa & ((1n << shift) - 1n);
    mantissa = (mantissa >> shift) | (dropped === 0n ? 0n : 1n);
    exponent += bits - 64;
  }
  let value = Number(mantissa);
  while (exponent > 1000 && value !== Infinity) {
    value *= 2 ** 1000;
    exponent -= 1000;
  }
  while (exponent < -1000 && value !== 0) {
    value *= 2 ** -1000;
    exponent += 1000;
  }
  value *= 2 ** exponent;
  return negative ? -value : value;
}

/** Java `Boolean.valueOf(s)`: true exactly when s equals "true" ignoring case; never fails. */
export function parseJavaBoolean(s: string): boolean {
  return s.length === 4 && s.toLowerCase() === "true";
}
