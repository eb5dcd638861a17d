// The simulator's replicated state machine: a tiny key-value register store (set / get / cas),
// with per-client de-duplication so a proposal duplicated by the network applies at most once.

export interface KvCommand {
  /** Client id and its per-client sequence number (strictly increasing per client). */
  client: number;
  seq: number;
  op: "set" | "cas" | "probe";
  key: string;
  value: string;
  /** cas: the value expected (null: key absent). */
  expected: string | null;
}

export interface KvResult {
  /** False when skipped as a duplicate or an out-of-date retry. */
  applied: boolean;
  /** cas: whether the comparison succeeded; set/probe: true. */
  ok: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(c: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify([c.client, c.seq, c.op, c.key, c.value, c.expected]));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  const [client, seq, op, key, value, expected] = JSON.parse(decoder.decode(data)) as [
    number,
    number,
    KvCommand["op"],
    string,
    string,
    string | null,
  ];
  return { client, seq, op, key, value, expected };
}

export class KvStateMachine {
  private readonly values = new Map<string, string>();
  private readonly lastSeq = new Map<number, number>();
  /** Index of the last entry (or snapshot) applied. */
  appliedIndex = 0;

  get(key: string): string | null {
    return this.values.get(key) ?? null;
  }

  apply(index: number, c: KvCommand): KvResult {
    this.appliedIndex = index;
    if (c.seq <= (this.lastSeq.get(c.client) ?? 0)) return { applied: false, ok: false };
    this.lastSeq.set(c.client, c.seq);
    if (c.op === "cas") {
      if (this.get(c.key) !== c.expected) return { applied: true, ok: false };
    }
    this.values.set(c.key, c.value);
    return { applied: true, ok: true };
  }

  /** An entry with no command (leader no-op). */
  applyNoop(index: number): void {
    this.appliedIndex = index;
  }

  /** Canonical serialization: equal states give equal bytes. */
  encode(): Uint8Array {
    return encoder.encode(this.canonical());
  }

  canonical(): string {
    const kv = [...this.values].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const seqs = [...this.lastSeq].sort((a, b) => a[0] - b[0]);
    return JSON.stringify([kv, seqs]);
  }

  static decode(data: Uint8Array, appliedIndex: number): KvStateMachine {
    const sm = new KvStateMachine();
    sm.appliedIndex = appliedIndex;
    if (data.byteLength === 0) return sm;
    const [kv, seqs] = JSON.parse(decoder.decode(data)) as [Array<[string, string]>, Array<[number, number]>];
    for (const [k, v] of kv) sm.values.set(k, v);
    for (const [c, s] of seqs) sm.lastSeq.set(c, s);
    return sm;
  }
}
