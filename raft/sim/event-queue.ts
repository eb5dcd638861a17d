// The simulator's scheduler: a binary min-heap of callbacks ordered by (virtual time, insertion
// order), so events at the same instant run in the order they were scheduled — deterministic.

interface Item {
  time: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private readonly heap: Item[] = [];
  private seq = 0;
  /** Current virtual time (ms): the time of the event being run. */
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  at(time: number, run: () => void): void {
    const item: Item = { time: Math.max(time, this.now), seq: this.seq++, run };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(item, h[p] as Item)) break;
      h[i] = h[p] as Item;
      i = p;
    }
    h[i] = item;
  }

  after(delay: number, run: () => void): void {
    this.at(this.now + delay, run);
  }

  /** Run the next event; false when the queue is empty or the next event is past `until`. */
  runNext(until: number): boolean {
    const h = this.heap;
    const top = h[0];
    if (top === undefined || top.time > until) return false;
    const last = h.pop() as Item;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r] as Item, h[l] as Item) ? r : l;
        if (!before(h[c] as Item, last)) break;
        h[i] = h[c] as Item;
        i = c;
      }
      h[i] = last;
    }
    this.now = top.time;
    top.run();
    return true;
  }
}

function before(a: Item, b: Item): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
