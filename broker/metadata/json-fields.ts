// Typed reads of fields from a loaded metadata JSON document (topics.json, subscriptionGroup.json,
// consumerOffset.json). A missing field takes its default, as upstream's fastjson binding does; a
// field of the wrong type or out of range is reported as one message naming the file path of the
// value ("topicConfigTable.TopicA.perm"), for corruptFileError.

import type { DataVersion } from "./data-version.ts";

export class FieldError extends Error {}

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function objectAt(parent: JsonObject, key: string, where: string, required = false): JsonObject {
  const v = parent[key];
  if (v === undefined || v === null) {
    if (required) throw new FieldError(`${where}${key} is missing`);
    return {};
  }
  if (!isObject(v)) throw new FieldError(`${where}${key} must be an object`);
  return v;
}

export function intAt(
  o: JsonObject,
  key: string,
  dflt: number,
  where: string,
  min = -(2 ** 53 - 1),
  max = 2 ** 53 - 1,
): number {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new FieldError(`${where}${key}=${JSON.stringify(v)} must be an integer from ${min} to ${max}`);
  }
  return v;
}

export function boolAt(o: JsonObject, key: string, dflt: boolean, where: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean")
    throw new FieldError(`${where}${key}=${JSON.stringify(v)} must be true or false`);
  return v;
}

export function stringAt(o: JsonObject, key: string, dflt: string | undefined, where: string): string {
  const v = o[key];
  if (v === undefined || v === null) {
    if (dflt === undefined) throw new FieldError(`${where}${key} is missing`);
    return dflt;
  }
  if (typeof v !== "string") throw new FieldError(`${where}${key}=${JSON.stringify(v)} must be a string`);
  return v;
}

export function enumAt<V extends string>(
  o: JsonObject,
  key: string,
  values: readonly V[],
  dflt: V,
  where: string,
): V {
  const v = stringAt(o, key, dflt, where);
  if (!(values as readonly string[]).includes(v)) {
    throw new FieldError(`${where}${key}=${JSON.stringify(v)} must be one of ${values.join(", ")}`);
  }
  return v as V;
}

export function stringMapAt(o: JsonObject, key: string, where: string): Record<string, string> {
  const m = objectAt(o, key, where);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== "string")
      throw new FieldError(`${where}${key}.${k}=${JSON.stringify(v)} must be a string`);
    out[k] = v;
  }
  return out;
}

export function dataVersionAt(o: JsonObject, where: string, now: number = Date.now()): DataVersion {
  const d = objectAt(o, "dataVersion", where);
  const w = `${where}dataVersion.`;
  return {
    stateVersion: intAt(d, "stateVersion", 0, w),
    timestamp: intAt(d, "timestamp", now, w),
    counter: intAt(d, "counter", 0, w, 0),
  };
}
