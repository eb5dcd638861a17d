// The run's trace: every event folds into a 64-bit hash (two 32-bit FNV-style lanes), so two runs
// of one seed can be compared cheaply; the readable lines are kept only when asked for.

export class Trace {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193;
  events = 0;
  readonly lines: string[] | undefined;

  constructor(keepLines: boolean) {
    this.lines = keepLines ? [] : undefined;
  }

  /** Fold one event made of small integers; `describe` builds its readable line lazily. */
  add(nums: readonly number[], describe?: () => string): void {
    let a = this.h1;
    let b = this.h2;
    for (const n of nums) {
      const lo = n | 0;
      const hi = (n / 4294967296) | 0;
      a = Math.imul(a ^ lo, 0x01000193);
      a = Math.imul(a ^ hi, 0x01000193);
      b = Math.imul(b ^ lo, 0x5bd1e995);
      b ^= b >>> 15;
      b = Math.imul(b ^ hi, 0x5bd1e995);
    }
    a = Math.imul(a ^ 0xff, 0x01000193);
    this.h1 = a;
    this.h2 = b;
    this.events++;
    if (this.lines !== undefined && describe !== undefined) this.lines.push(describe());
  }

  digest(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, "0") + (this.h2 >>> 0).toString(16).padStart(8, "0");
  }
}

/** FNV-1a over bytes (entry payload fingerprints). */
export function hashBytes(data: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.byteLength; i++) h = Math.imul(h ^ (data[i] as number), 0x01000193);
  return h >>> 0;
}

export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
