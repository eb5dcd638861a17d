// The keys a dispatched record is indexed under, as the hashes the Index files store: the record's
// unique key and every space-separated token of its KEYS, each as `${topic}#${key}` (upstream
// IndexService.buildKey); ROLLBACK transaction records are not indexed. Also the packed form in which
// records and their key hashes travel to an Index on another thread (index-thread.ts).
import { indexKeyHashOf, javaStringHashCode, javaStringHashCodeFrom } from "./index-file.ts";

/** Upstream MessageSysFlag: transaction type bits 2-3; both set = ROLLBACK. */
const TRANSACTION_TYPE_MASK = 0x0c;
const TRANSACTION_ROLLBACK_TYPE = 0x0c;
/** Upstream MessageConst.KEY_SEPARATOR (" "). */
const KEY_SEPARATOR_CODE = 0x20;
/** Between the topic and the key in an indexed key. */
const TOPIC_KEY_SEPARATOR = "#";

/** What the Index reads from a DispatchRequest. */
export interface IndexedRecord {
  topic: string;
  commitLogOffset: number;
  size: number;
  storeTimestamp: number;
  sysFlag: number;
  keys: string | undefined;
  uniqKey: string | undefined;
}

/**
 * Packed records: per record `commitLogOffset, size, storeTimestamp, keyCount`, then its key hashes.
 * Everything is an integer well inside a double's exact range.
 */
export const PACKED_RECORD_HEADER = 4;

/** A growable list of numbers kept between uses (no allocation once it is large enough). */
export class NumberList {
  data = new Float64Array(256);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = v;
  }
}

/** Hashes keys; remembers the hash of the last topic's `${topic}#` prefix (a batch is mostly one topic). */
export class IndexKeyHasher {
  private lastTopic: string | undefined;
  private lastPrefixHash = 0;

  /** Appends to `out` the hashes of the keys `r` is indexed under; returns how many. */
  collect(r: IndexedRecord, out: NumberList): number {
    if ((r.sysFlag & TRANSACTION_TYPE_MASK) === TRANSACTION_ROLLBACK_TYPE) return 0;
    const uniqKey = r.uniqKey;
    const keys = r.keys;
    const hasUniq = uniqKey !== undefined && uniqKey.length > 0;
    const hasKeys = keys !== undefined && keys.length > 0;
    if (!hasUniq && !hasKeys) return 0;
    const before = out.length;
    // Keys are `${topic}#${key}`; their hash is computed without building that string.
    const prefix = this.prefixHash(r.topic);
    if (hasUniq) out.push(indexKeyHashOf(prefix, uniqKey, 0, uniqKey.length));
    if (hasKeys) {
      // Each non-empty token between KEY_SEPARATORs is a key.
      let from = 0;
      for (let i = 0; i <= keys.length; i++) {
        if (i === keys.length || keys.charCodeAt(i) === KEY_SEPARATOR_CODE) {
          if (i > from) out.push(indexKeyHashOf(prefix, keys, from, i));
          from = i + 1;
        }
      }
    }
    return out.length - before;
  }

  /** Appends `r` in packed form (PACKED_RECORD_HEADER) to `out`. */
  pack(r: IndexedRecord, out: NumberList): void {
    out.push(r.commitLogOffset);
    out.push(r.size);
    out.push(r.storeTimestamp);
    const at = out.length;
    out.push(0);
    const count = this.collect(r, out); // may grow out.data: read it only after
    out.data[at] = count;
  }

  /** Java hash of `${topic}#`. */
  private prefixHash(topic: string): number {
    if (topic !== this.lastTopic) {
      this.lastTopic = topic;
      this.lastPrefixHash = javaStringHashCodeFrom(javaStringHashCode(topic), TOPIC_KEY_SEPARATOR, 0, 1);
    }
    return this.lastPrefixHash;
  }
}
