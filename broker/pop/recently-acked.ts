// Receipt handles acked lately, so that acking the same handle again answers OK (as upstream, where a
// second ack only writes another ack record) while the message itself is long gone from the
// in-flight table. Bounded: the oldest are forgotten first, half of the limit at a time.
//
// A handle is remembered as a bit of its check point: one entry per (revive queue, CK offset, 32
// indexes) holds the acked indexes as a bit mask, so acking a batch of 32 messages of one CK touches
// one entry instead of 32 string keys. Two generations instead of one insertion-ordered collection:
// evicting the oldest entry one by one (values().next() then delete) leaves holes at the front that
// every later eviction walks over again until the table is rehashed (O(limit) per ack once full).

/** Indexes per bit mask entry (a 32-bit integer). */
const BITS = 32;

export class RecentlyAcked {
  /** CK words touched since the last rotation: `reviveQid:ckOffset:word` → acked index bits. */
  private young = new Map<string, number>();
  /** The generation before; dropped whole at the next rotation. */
  private old = new Map<string, number>();
  /** Entries per generation: the two together hold at most `limit` (each up to 32 handles). */
  private readonly generationSize: number;

  constructor(limit: number) {
    this.generationSize = limit <= 0 ? 0 : Math.max(1, Math.floor(limit / 2));
  }

  /** Remembers `indexes` of the CK at `ckOffset` in revive queue `reviveQid` as acked. */
  add(reviveQid: number, ckOffset: number, indexes: readonly number[]): void {
    if (this.generationSize === 0) return;
    let word = -1;
    let bits = 0;
    for (const index of indexes) {
      const w = Math.floor(index / BITS);
      if (w !== word) {
        if (word >= 0) this.merge(reviveQid, ckOffset, word, bits);
        word = w;
        bits = 0;
      }
      bits |= 1 << (index % BITS);
    }
    if (word >= 0) this.merge(reviveQid, ckOffset, word, bits);
  }

  has(reviveQid: number, ckOffset: number, index: number): boolean {
    const key = `${reviveQid}:${ckOffset}:${Math.floor(index / BITS)}`;
    const bit = 1 << (index % BITS);
    return (((this.young.get(key) ?? 0) | (this.old.get(key) ?? 0)) & bit) !== 0;
  }

  private merge(reviveQid: number, ckOffset: number, word: number, bits: number): void {
    const key = `${reviveQid}:${ckOffset}:${word}`;
    this.young.set(key, (this.young.get(key) ?? 0) | bits);
    if (this.young.size >= this.generationSize) {
      this.old = this.young;
      this.young = new Map();
    }
  }
}
