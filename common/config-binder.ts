// Binds string key/values (a .properties file, command-line flags) to a typed schema.
//
// Each key declares its type, default, optional range or allowed values, alternative spellings
// (aliases) and a status saying whether the product acts on it. Later layers override earlier ones
// (defaults < file < command line). An unknown key is reported through `onWarning` (upstream ignores
// it silently); a value that does not fit its key throws RmqError(IllegalConfig) whose message is
// one line naming the key, the value, where it came from and what is allowed.

import { ErrorCode, RmqError } from "./errors.ts";
import { expandHome } from "./properties.ts";

export type ConfigValueType = "string" | "int" | "long" | "bool" | "enum" | "double";

/**
 * - `used`: the value drives behaviour today.
 * - `pending`: accepted and kept; the component that will act on it is not built yet.
 * - `inert`: accepted for compatibility with upstream configs; it has no effect here by design
 *   (for example Java thread-pool sizes).
 * - `ignored`: a spelling or key seen in real configs that upstream itself ignores; the value is
 *   dropped so behaviour matches upstream, and a notice says so.
 */
export type KeyStatus = "used" | "pending" | "inert" | "ignored";

interface KeyDefBase {
  /** Other spellings accepted for this key (e.g. upstream's old `mapedFileSizeCommitLog`). */
  aliases?: readonly string[];
  status?: KeyStatus;
  /** Why the key has its status, or anything an operator should know. */
  note?: string;
}
export interface StringKeyDef extends KeyDefBase {
  type: "string";
  default: string;
  /** Expand `${user.home}` and a leading `~` (see properties.ts). */
  path?: boolean;
}
export interface NumberKeyDef extends KeyDefBase {
  type: "int" | "long" | "double";
  default: number;
  min?: number;
  max?: number;
}
export interface BoolKeyDef extends KeyDefBase {
  type: "bool";
  default: boolean;
}
export interface EnumKeyDef<V extends string = string> extends KeyDefBase {
  type: "enum";
  values: readonly V[];
  default: V;
}
export type KeyDef = StringKeyDef | NumberKeyDef | BoolKeyDef | EnumKeyDef;
export type ConfigSchema = Readonly<Record<string, KeyDef>>;

type ValueOf<D> =
  D extends EnumKeyDef<infer V>
    ? V
    : D extends BoolKeyDef
      ? boolean
      : D extends StringKeyDef
        ? string
        : number;

/** The typed object a schema binds to. */
export type Bound<S extends ConfigSchema> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** Compact constructors for schema entries. */
export const def = {
  string: (d: string, o: KeyDefBase & { path?: boolean } = {}): StringKeyDef => ({
    type: "string",
    default: d,
    ...o,
  }),
  int: (d: number, o: KeyDefBase & { min?: number; max?: number } = {}): NumberKeyDef => ({
    type: "int",
    default: d,
    ...o,
  }),
  long: (d: number, o: KeyDefBase & { min?: number; max?: number } = {}): NumberKeyDef => ({
    type: "long",
    default: d,
    ...o,
  }),
  double: (d: number, o: KeyDefBase & { min?: number; max?: number } = {}): NumberKeyDef => ({
    type: "double",
    default: d,
    ...o,
  }),
  bool: (d: boolean, o: KeyDefBase = {}): BoolKeyDef => ({ type: "bool", default: d, ...o }),
  enum: <const V extends string>(values: readonly V[], d: NoInfer<V>, o: KeyDefBase = {}): EnumKeyDef<V> => ({
    type: "enum",
    values,
    default: d,
    ...o,
  }),
};

export interface ConfigEntry {
  key: string;
  value: string;
  line?: number;
}

/** One source of settings. Entries may be a list (file order, with lines) or a record (flags; undefined = not given). */
export interface ConfigLayer {
  /** "/etc/rmq/broker.conf", "command line", ... */
  source: string;
  entries: Iterable<ConfigEntry> | Readonly<Record<string, string | undefined>>;
}

export type ConfigNoticeKind = "unknown-key" | "ignored-key" | "alias" | "duplicate-key";
export interface ConfigNotice {
  kind: ConfigNoticeKind;
  key: string;
  /** Where, e.g. "/etc/rmq/broker.conf line 7". */
  where: string;
  message: string;
}

export interface BindOptions {
  /** Unknown keys (upstream ignores them silently; we say so). */
  onWarning?: (w: ConfigNotice) => void;
  /** Informational: an ignored key, an alias spelling, a key set twice in one source. */
  onNotice?: (n: ConfigNotice) => void;
  /** Home directory for `path` keys (tests). */
  home?: string;
  /** Filled with key -> where its value came from ("broker.conf line 7"), for later cross-key checks. */
  origins?: Map<string, string>;
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const INTEGER_TEXT = /^[+-]?\d+$/;
const DECIMAL_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const BOOL_TEXT = /^(true|false)$/i;

function where(source: string, line: number | undefined): string {
  return line === undefined ? source : `${source} line ${line}`;
}

function oneLine(s: string): string {
  return /[\r\n]/.test(s) ? JSON.stringify(s) : s;
}

/** The IllegalConfig error: one line with key, value, origin and what is allowed. */
export function illegalConfig(key: string, value: string, origin: string, allowed: string): RmqError {
  return new RmqError(
    ErrorCode.IllegalConfig,
    `illegal config ${key}=${oneLine(value)} (${origin}): ${allowed}`,
  );
}

function describeAllowed(d: KeyDef): string {
  switch (d.type) {
    case "enum":
      return `allowed values are ${d.values.join(", ")}`;
    case "bool":
      return "allowed values are true, false";
    case "string":
      return "any string";
    default: {
      const kind = d.type === "double" ? "a number" : d.type === "int" ? "an integer" : "a (long) integer";
      const lo = d.min ?? (d.type === "int" ? INT_MIN : undefined);
      const hi = d.max ?? (d.type === "int" ? INT_MAX : undefined);
      if (lo !== undefined && hi !== undefined) return `expected ${kind} from ${lo} to ${hi}`;
      if (lo !== undefined) return `expected ${kind} >= ${lo}`;
      if (hi !== undefined) return `expected ${kind} <= ${hi}`;
      return `expected ${kind}`;
    }
  }
}

/** Parses one value for `d`, or undefined when it does not fit. */
function parseValue(d: KeyDef, raw: string, home: string | undefined): string | number | boolean | undefined {
  switch (d.type) {
    case "string":
      if (!d.path) return raw;
      return home === undefined ? expandHome(raw) : expandHome(raw, home);
    case "bool":
      return BOOL_TEXT.test(raw) ? raw.toLowerCase() === "true" : undefined;
    case "enum":
      return d.values.includes(raw) ? raw : undefined;
    case "int":
    case "long": {
      if (!INTEGER_TEXT.test(raw)) return undefined;
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return undefined;
      if (d.type === "int" && (n < INT_MIN || n > INT_MAX)) return undefined;
      if ((d.min !== undefined && n < d.min) || (d.max !== undefined && n > d.max)) return undefined;
      return n;
    }
    case "double": {
      if (!DECIMAL_TEXT.test(raw)) return undefined;
      const n = Number(raw);
      if (!Number.isFinite(n)) return undefined;
      if ((d.min !== undefined && n < d.min) || (d.max !== undefined && n > d.max)) return undefined;
      return n;
    }
  }
}

function* layerEntries(layer: ConfigLayer): Generator<ConfigEntry> {
  const e = layer.entries;
  if (typeof (e as Iterable<ConfigEntry>)[Symbol.iterator] === "function") {
    yield* e as Iterable<ConfigEntry>;
    return;
  }
  for (const [key, value] of Object.entries(e as Record<string, string | undefined>)) {
    if (value !== undefined) yield { key, value };
  }
}

/** Case-insensitive match or edit distance <= 2, for "did you mean" hints. */
function suggest(key: string, known: Iterable<string>): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = 3;
  for (const k of known) {
    if (k.toLowerCase() === lower) return k;
    const dist = editDistance(lower, k.toLowerCase(), bestDistance);
    if (dist < bestDistance) {
      bestDistance = dist;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(
        (prev[j] ?? 0) + 1,
        (cur[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      cur.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin >= cap) return cap;
    prev = cur;
  }
  return prev[b.length] ?? cap;
}

/**
 * Binds `layers` (lowest precedence first: file, then command line) onto `schema`. Returns every
 * key of the schema, defaulted where no layer set it.
 */
export function bindConfig<S extends ConfigSchema>(
  schema: S,
  layers: readonly ConfigLayer[],
  opts: BindOptions = {},
): Bound<S> {
  const canonical = new Map<string, string>(); // spelling -> schema key
  for (const [k, d] of Object.entries(schema)) {
    canonical.set(k, k);
    for (const a of d.aliases ?? []) canonical.set(a, k);
  }
  const out: Record<string, unknown> = {};
  for (const [k, d] of Object.entries(schema)) out[k] = d.default;

  for (const layer of layers) {
    // key -> the spelling and origin that set it in this layer, to catch conflicting aliases.
    const setHere = new Map<string, { spelling: string; value: string; origin: string }>();
    for (const entry of layerEntries(layer)) {
      const origin = where(layer.source, entry.line);
      const key = canonical.get(entry.key);
      if (key === undefined) {
        const hint = suggest(entry.key, canonical.keys());
        opts.onWarning?.({
          kind: "unknown-key",
          key: entry.key,
          where: origin,
          message: `unknown config key ${entry.key} (${origin}) is ignored${hint ? `; did you mean ${hint}?` : ""}`,
        });
        continue;
      }
      const d = schema[key] as KeyDef;
      if (d.status === "ignored") {
        opts.onNotice?.({
          kind: "ignored-key",
          key: entry.key,
          where: origin,
          message: `config key ${entry.key} (${origin}) is ignored${d.note ? `: ${d.note}` : ""}`,
        });
        continue;
      }
      if (entry.key !== key) {
        opts.onNotice?.({
          kind: "alias",
          key: entry.key,
          where: origin,
          message: `config key ${entry.key} (${origin}) is read as ${key}`,
        });
      }
      const prev = setHere.get(key);
      if (prev !== undefined) {
        if (prev.spelling !== entry.key && prev.value !== entry.value) {
          throw illegalConfig(
            entry.key,
            entry.value,
            origin,
            `conflicts with ${prev.spelling}=${oneLine(prev.value)} (${prev.origin}), another spelling of ${key}; set only one`,
          );
        }
        opts.onNotice?.({
          kind: "duplicate-key",
          key: entry.key,
          where: origin,
          message: `config key ${entry.key} is set again (${origin}); the later value ${oneLine(entry.value)} wins over ${oneLine(prev.value)} (${prev.origin})`,
        });
      }
      setHere.set(key, { spelling: entry.key, value: entry.value, origin });
      const parsed = parseValue(d, entry.value, opts.home);
      if (parsed === undefined) throw illegalConfig(entry.key, entry.value, origin, describeAllowed(d));
      out[key] = parsed;
      opts.origins?.set(key, origin);
    }
  }
  return out as Bound<S>;
}

/** Every spelling a schema accepts (keys and aliases), e.g. to check a file for unknown keys. */
export function knownKeys(schema: ConfigSchema): Set<string> {
  const s = new Set<string>();
  for (const [k, d] of Object.entries(schema)) {
    s.add(k);
    for (const a of d.aliases ?? []) s.add(a);
  }
  return s;
}
