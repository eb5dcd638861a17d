// The PROPERTIES field of a record: `name\u0001value\u0002` per property, UTF-8.
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR } from "./message-const.ts";

function hasSeparator(s: string): boolean {
  return s.includes(NAME_VALUE_SEPARATOR) || s.includes(PROPERTY_SEPARATOR);
}

/**
 * Encodes properties, plus one extra pair when given (the store adds UNIQ_KEY this way without
 * touching the caller's map). Names and values holding a separator character are rejected, since they
 * would decode as different properties.
 */
export function propertiesToString(
  props: ReadonlyMap<string, string>,
  extraName?: string,
  extraValue?: string,
): string {
  let s = "";
  for (const [k, v] of props) {
    if (hasSeparator(k) || hasSeparator(v)) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `property ${JSON.stringify(k)} holds a separator character`,
      );
    }
    s += k + NAME_VALUE_SEPARATOR + v + PROPERTY_SEPARATOR;
  }
  if (extraName !== undefined && extraValue !== undefined)
    s += extraName + NAME_VALUE_SEPARATOR + extraValue + PROPERTY_SEPARATOR;
  return s;
}

/**
 * The UTF-8 length of a property name or value when it is all ASCII, -1 when it is not (the caller then
 * measures it, after making it well-formed). Throws when it holds a separator character.
 */
export function asciiPropertyLength(s: string): number {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 1 || c === 2) {
      throw new RmqError(
        ErrorCode.IllegalMessageProperty,
        `property ${JSON.stringify(s)} holds a separator character`,
      );
    }
    if (c > 0x7f) ascii = false;
  }
  return ascii ? s.length : -1;
}

/** The properties a [name, value, name, value, ...] list encodes (a later pair wins, as when decoding). */
export function pairsToProperties(pairs: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < pairs.length; i += 2) m.set(pairs[i] as string, pairs[i + 1] as string);
  return m;
}

/** Decodes a PROPERTIES string; pairs without a name/value separator are skipped, as upstream does. */
export function stringToProperties(s: string): Map<string, string> {
  const m = new Map<string, string>();
  let start = 0;
  while (start < s.length) {
    let end = s.indexOf(PROPERTY_SEPARATOR, start);
    if (end < 0) end = s.length;
    const sep = s.indexOf(NAME_VALUE_SEPARATOR, start);
    if (sep >= 0 && sep < end) m.set(s.slice(start, sep), s.slice(sep + 1, end));
    start = end + 1;
  }
  return m;
}
