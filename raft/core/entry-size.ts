// Byte accounting for entries: what maxSizePerMsg / maxBytes limits count.

import type { Entry } from "../types.ts";

/** Fixed per-entry overhead charged on top of the payload (term, index, type, framing). */
export const ENTRY_OVERHEAD_BYTES = 16;

export function entryBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/**
 * Length of the longest prefix of `entries` whose total size stays within maxBytes, but at least 1
 * when entries is non-empty (a single oversized entry must still make progress).
 */
export function prefixWithinBytes(entries: readonly Entry[], maxBytes: number): number {
  if (entries.length === 0) return 0;
  let size = entryBytes(entries[0] as Entry);
  let n = 1;
  while (n < entries.length) {
    size += entryBytes(entries[n] as Entry);
    if (size > maxBytes) break;
    n++;
  }
  return n;
}
