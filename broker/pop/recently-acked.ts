// Receipt handles acked lately, so that acking the same handle again answers OK (as upstream, where a
// second ack only writes another ack record) while the message itself is long gone from the
// in-flight table. Bounded: the oldest keys are forgotten first.

export class RecentlyAcked {
  private readonly keys = new Set<string>();
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  add(key: string): void {
    if (this.limit <= 0) return;
    this.keys.delete(key);
    this.keys.add(key);
    while (this.keys.size > this.limit) {
      const oldest = this.keys.values().next();
      if (oldest.done === true) break;
      this.keys.delete(oldest.value);
    }
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }
}
