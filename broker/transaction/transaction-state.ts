// Which transactions are resolved, kept so that a transaction is delivered at most once even when its
// half message was re-appended by checks (upstream can commit such a transaction twice: once through
// the id of the first half record, once through the copy's).
//
// A transaction is named by the half queue offset of its first half record ("origin"). Every
// re-appended copy carries the origin in TRAN_PREPARED_QUEUE_OFFSET, and op records list origins. The
// check loop walks the half queue in order; the walk position W is the committed offset of
// CID_RMQ_SYS_TRANS. A transaction has exactly one live record (its latest copy, or the first record
// when it was never re-appended), and the walk re-appends a transaction only when it passes that live
// record. So:
//
//   resolved(origin) = an op record lists it, or the walk has passed its live record
//                      (passing means: resolved, discarded, or re-appended, and then the copy is live).
//
// Memory: an op entry is kept until the walk passes the transaction's live record, a copy entry until
// the walk passes that copy; both are bounded by the transactions ended or re-appended ahead of W.
// Everything here is rebuilt at start from the op queue (from its committed offset) and the half queue
// (from W).

export class TransactionState {
  /** The walk position: every half record below it has been dealt with. */
  private w: number;
  /** origin -> op queue offset of the op record that lists it. */
  private readonly resolvedBy = new Map<number, number>();
  /** op queue offset -> origins of that record still kept in `resolvedBy`. */
  private readonly opRefs = new Map<number, number>();
  /** origin -> half queue offset of its latest re-appended copy. */
  private readonly latestCopy = new Map<number, number>();
  /** Origins being resolved right now (a commit or rollback, or a discard under way). */
  private readonly claims = new Set<number>();

  constructor(halfOffset: number) {
    this.w = halfOffset;
  }

  get halfOffset(): number {
    return this.w;
  }

  /** Half queue offset of the transaction's live record. */
  liveOffsetOf(origin: number): number {
    return this.latestCopy.get(origin) ?? origin;
  }

  isResolved(origin: number): boolean {
    return this.resolvedBy.has(origin) || this.liveOffsetOf(origin) < this.w;
  }

  /** Listed by an op record (the walk has not passed it yet, else it may have been forgotten). */
  hasOp(origin: number): boolean {
    return this.resolvedBy.has(origin);
  }

  /** An op record at `opOffset` lists `origins`. An origin already listed keeps its first record. */
  addOp(opOffset: number, origins: readonly number[]): void {
    let refs = this.opRefs.get(opOffset) ?? 0;
    for (const o of origins) {
      if (this.resolvedBy.has(o)) continue;
      this.resolvedBy.set(o, opOffset);
      refs++;
    }
    if (refs > 0) this.opRefs.set(opOffset, refs);
  }

  /** The walk re-appended the transaction at `copyOffset` (later copies win). */
  setLatestCopy(origin: number, copyOffset: number): void {
    if ((this.latestCopy.get(origin) ?? -1) < copyOffset) this.latestCopy.set(origin, copyOffset);
  }

  /** Takes the right to resolve `origin`; false when it is resolved or someone else is resolving it. */
  claim(origin: number): boolean {
    if (this.claims.has(origin) || this.isResolved(origin)) return false;
    this.claims.add(origin);
    return true;
  }

  isClaimed(origin: number): boolean {
    return this.claims.has(origin);
  }

  release(origin: number): void {
    this.claims.delete(origin);
  }

  /** Moves the walk position forward (never back). */
  advance(halfOffset: number): void {
    if (halfOffset > this.w) this.w = halfOffset;
  }

  /** Forgets what the walk has passed: op entries whose live record is below W, copies below W. */
  prune(): void {
    for (const [origin, opOffset] of this.resolvedBy) {
      if (this.liveOffsetOf(origin) >= this.w) continue;
      this.resolvedBy.delete(origin);
      const left = (this.opRefs.get(opOffset) ?? 1) - 1;
      if (left > 0) this.opRefs.set(opOffset, left);
      else this.opRefs.delete(opOffset);
    }
    for (const [origin, copy] of this.latestCopy) if (copy < this.w) this.latestCopy.delete(origin);
  }

  /**
   * Lowest op queue offset still needed after a restart: the first op record with an entry kept, or
   * `upTo` (the caller's bound: op records at or above it may not be known here yet).
   */
  opCommitOffset(upTo: number): number {
    let min = upTo;
    for (const o of this.opRefs.keys()) if (o < min) min = o;
    return min;
  }

  /** Sizes, for logs and metrics. */
  stats(): { halfOffset: number; opEntries: number; copies: number; claims: number } {
    return {
      halfOffset: this.w,
      opEntries: this.resolvedBy.size,
      copies: this.latestCopy.size,
      claims: this.claims.size,
    };
  }
}
