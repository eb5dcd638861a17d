// The leader's sliding window of appends in flight to one follower (pipelining): a ring buffer of
// the last index carried by each unacknowledged MsgApp.

export class Inflights {
  readonly capacity: number;
  private readonly buffer: number[];
  private start = 0;
  private n = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.n;
  }

  full(): boolean {
    return this.n === this.capacity;
  }

  /** Record an append whose last entry is `lastIndex` (must increase with every call). */
  add(lastIndex: number): void {
    if (this.full()) return;
    let slot = this.start + this.n;
    if (slot >= this.capacity) slot -= this.capacity;
    this.buffer[slot] = lastIndex;
    this.n++;
  }

  /** Release every append whose last index is <= `to` (acknowledged). */
  freeLE(to: number): void {
    while (this.n > 0 && (this.buffer[this.start] as number) <= to) {
      this.start++;
      if (this.start === this.capacity) this.start = 0;
      this.n--;
    }
    if (this.n === 0) this.start = 0;
  }

  reset(): void {
    this.start = 0;
    this.n = 0;
  }
}
