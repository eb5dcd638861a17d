// Linearizability checker for one register (Wing & Gong's search with Lowe's memoization, as in
// Knossos/Porcupine). Histories are checked per key (a register store is linearizable iff each
// register is), which keeps every search small.
//
// An operation that never completed (client timeout, crashed node) has ret = Infinity: it may
// take effect at any point after its call, or never (linearizing it last is the same as never).

export type RegisterOpKind = "set" | "get" | "cas";

export interface RegisterOp {
  kind: RegisterOpKind;
  /** set/cas: value written; get: value returned (null: absent). */
  value: string | null;
  /** cas: value expected. */
  expected: string | null;
  /** cas: outcome, if known. */
  ok: boolean | undefined;
  /** Logical invocation and completion times (distinct, increasing along the real history). */
  call: number;
  ret: number;
  /** For failure reports. */
  label?: string;
}

export type LinearizabilityResult =
  | { ok: true; steps: number }
  | { ok: false; reason: "not-linearizable" | "budget-exceeded"; steps: number };

interface ListNode {
  op: number; // index into ops; -1 for the head sentinel
  isCall: boolean;
  match: ListNode | undefined; // call → its return
  prev: ListNode | undefined;
  next: ListNode | undefined;
}

/** Apply op to state: the new state, or undefined if the op's observed outcome is impossible. */
function stepRegister(state: string | null, op: RegisterOp): { state: string | null } | undefined {
  switch (op.kind) {
    case "set":
      return { state: op.value };
    case "get":
      return state === op.value ? { state } : undefined;
    case "cas":
      if (op.ok === true) return state === op.expected ? { state: op.value } : undefined;
      if (op.ok === false) return state !== op.expected ? { state } : undefined;
      return { state: state === op.expected ? op.value : state };
  }
}

/** Default bound on search steps per register history. */
export const DEFAULT_LINEARIZABILITY_BUDGET = 2_000_000;

export function checkRegisterHistory(
  ops: readonly RegisterOp[],
  initial: string | null = null,
  budget = DEFAULT_LINEARIZABILITY_BUDGET,
): LinearizabilityResult {
  // Build the event list sorted by time; a call precedes its own return.
  const events: ListNode[] = [];
  for (let i = 0; i < ops.length; i++) {
    const ret: ListNode = { op: i, isCall: false, match: undefined, prev: undefined, next: undefined };
    const call: ListNode = { op: i, isCall: true, match: ret, prev: undefined, next: undefined };
    events.push(call, ret);
  }
  const time = (n: ListNode): number => {
    const op = ops[n.op] as RegisterOp;
    return n.isCall ? op.call : op.ret;
  };
  events.sort((a, b) => time(a) - time(b) || (a.isCall === b.isCall ? a.op - b.op : a.isCall ? -1 : 1));
  const head: ListNode = { op: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  let prev = head;
  for (const e of events) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }

  const lift = (call: ListNode): void => {
    (call.prev as ListNode).next = call.next;
    if (call.next !== undefined) call.next.prev = call.prev;
    const ret = call.match as ListNode;
    (ret.prev as ListNode).next = ret.next;
    if (ret.next !== undefined) ret.next.prev = ret.prev;
  };
  const unlift = (call: ListNode): void => {
    const ret = call.match as ListNode;
    (ret.prev as ListNode).next = ret;
    if (ret.next !== undefined) ret.next.prev = ret;
    (call.prev as ListNode).next = call;
    if (call.next !== undefined) call.next.prev = call;
  };

  const cache = new Set<string>();
  const stack: Array<{ call: ListNode; state: string | null }> = [];
  let linearized = 0n;
  let state = initial;
  let entry = head.next;
  let steps = 0;
  while (head.next !== undefined) {
    if (++steps > budget) return { ok: false, reason: "budget-exceeded", steps };
    if (entry === undefined) return { ok: false, reason: "not-linearizable", steps };
    if (entry.isCall) {
      const next = stepRegister(state, ops[entry.op] as RegisterOp);
      if (next !== undefined) {
        const bits = linearized | (1n << BigInt(entry.op));
        const key = `${bits.toString(36)}|${next.state === null ? "\u0000" : next.state}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ call: entry, state });
          state = next.state;
          linearized = bits;
          lift(entry);
          entry = head.next;
          continue;
        }
      }
      entry = entry.next;
    } else {
      // A return event: every pending call before it was tried; backtrack.
      const top = stack.pop();
      if (top === undefined) return { ok: false, reason: "not-linearizable", steps };
      state = top.state;
      linearized &= ~(1n << BigInt(top.call.op));
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { ok: true, steps };
}

/**
 * For a history that is not linearizable: the operation whose completion first makes it so — the
 * history cut at that completion (operations still running count as not completed) is not
 * linearizable, the cut just before it is. Where to start reading the trace.
 */
export function firstViolation(
  ops: readonly RegisterOp[],
  budget = DEFAULT_LINEARIZABILITY_BUDGET,
): RegisterOp | undefined {
  const completions = ops.filter((op) => Number.isFinite(op.ret)).sort((a, b) => a.ret - b.ret);
  const bad = (k: number): boolean => {
    // Cut right after the k-th completion.
    const cut = (completions[k - 1] as RegisterOp).ret;
    const prefix: RegisterOp[] = [];
    for (const op of ops) {
      if (op.call > cut) continue;
      if (op.ret <= cut) prefix.push(op);
      else if (op.kind !== "get") prefix.push({ ...op, ok: undefined, ret: Number.POSITIVE_INFINITY });
    }
    const r = checkRegisterHistory(prefix, null, budget);
    return !r.ok && r.reason === "not-linearizable";
  };
  if (completions.length === 0 || !bad(completions.length)) return undefined;
  let lo = 1;
  let hi = completions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bad(mid)) hi = mid;
    else lo = mid + 1;
  }
  return completions[lo - 1];
}
