// A binary min-heap ordered by a deadline (epoch ms): the one timer structure behind every in-flight
// message's invisible time. Removal is lazy: callers mark items dead and drop them when they surface
// (and `rebuild` when too many dead ones pile up), so ack and changeInvisibleTime stay O(1).

export class DeadlineHeap<T> {
  private items: T[] = [];
  private readonly deadlineOf: (item: T) => number;

  constructor(deadlineOf: (item: T) => number) {
    this.deadlineOf = deadlineOf;
  }

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    const d = this.deadlineOf(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = a[parent] as T;
      if (this.deadlineOf(p) <= d) break;
      a[i] = p;
      i = parent;
    }
    a[i] = item;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  pop(): T | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const a = this.items;
    const n = a.length;
    const item = a[start] as T;
    const d = this.deadlineOf(item);
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.deadlineOf(a[r] as T) < this.deadlineOf(a[l] as T)) c = r;
      const child = a[c] as T;
      if (this.deadlineOf(child) >= d) break;
      a[i] = child;
      i = c;
    }
    a[i] = item;
  }

  /** Replaces the content with the items `keep` accepts, in O(n). */
  rebuild(keep: (item: T) => boolean): void {
    this.items = this.items.filter(keep);
    for (let i = (this.items.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }
}
