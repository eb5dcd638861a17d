// Reading Java .properties files (broker.conf, namesrv.conf, controller.conf) with the
// `properties-file` package, which follows java.util.Properties.load exactly (continuations,
// `=`/`:`/space separators, `#`/`!` comments, \uXXXX escapes).
//
// Two deliberate differences from Java, both because real-world files (the seeds among them) rely on
// them and Java's behaviour there silently drops the setting:
//   - an inline comment, i.e. whitespace then `#` after a value (`brokerId=0  # master`), is cut off.
//     Java keeps it in the value, which then fails to parse and is ignored without a word;
//   - surrounding whitespace is trimmed from values (Java keeps trailing spaces).
// Pass `{ javaCompatible: true }` to get Java's exact values instead.

import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { Properties, PropertiesNodeType } from "properties-file/parser";

export interface PropertyEntry {
  key: string;
  value: string;
  /** 1-based line where the entry starts. */
  line: number;
}

export interface PropertiesDocument {
  /** Where the entries came from, for messages ("/etc/rmq/broker.conf"). */
  source: string;
  /** Every entry in file order; a key set twice appears twice (the later one wins when bound). */
  entries: PropertyEntry[];
}

export interface ParseOptions {
  /** Keep values exactly as java.util.Properties would (no inline-comment cut, no trim). */
  javaCompatible?: boolean;
}

const INLINE_COMMENT = /\s+#.*$/s;
/** Java's `${user.home}` system-property reference, as RocketMQ configs write it. */
export const USER_HOME_PLACEHOLDER = ["$", "{user.home}"].join("");

export function parseProperties(
  content: string | Buffer,
  source = "<inline>",
  opts: ParseOptions = {},
): PropertiesDocument {
  const parsed = new Properties(content);
  const entries: PropertyEntry[] = [];
  for (const node of parsed.nodes) {
    if (node.type !== PropertiesNodeType.PROPERTY) continue;
    const value = opts.javaCompatible ? node.value : node.value.replace(INLINE_COMMENT, "").trim();
    entries.push({ key: node.key, value, line: node.startingLineNumber });
  }
  return { source, entries };
}

export async function readPropertiesFile(file: string, opts: ParseOptions = {}): Promise<PropertiesDocument> {
  return parseProperties(await readFile(file), file, opts);
}

/** The entries as a plain object, later duplicates winning (java.util.Properties semantics). */
export function toRecord(doc: PropertiesDocument): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of doc.entries) out[e.key] = e.value;
  return out;
}

/**
 * Expands `${user.home}` anywhere and a leading `~` in a path value, as operators write them in
 * RocketMQ configs and logback files. Other `${...}` placeholders are left as they are.
 */
export function expandHome(value: string, home: string = homedir()): string {
  let out = value.replaceAll(USER_HOME_PLACEHOLDER, home);
  if (out === "~" || out.startsWith("~/")) out = home + out.slice(1);
  return out;
}
