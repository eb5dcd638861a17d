// Simulated clients: each issues one operation at a time (set / get / cas on a few keys) to a
// random node, with random think times, and records the history the linearizability checker
// reads. Writes go through the log (propose); gets are linearizable reads (ReadIndex).

import type { NodeId } from "../types.ts";
import type { RegisterOp } from "./linearizability.ts";
import type { SimWorld } from "./world.ts";

export const OpStatus = { Pending: "pending", Ok: "ok", Failed: "failed", TimedOut: "timeout" } as const;
export type OpStatus = (typeof OpStatus)[keyof typeof OpStatus];

export type OpKind = "set" | "get" | "cas";

export interface ClientOp {
  id: number;
  client: number;
  seq: number;
  kind: OpKind;
  key: string;
  /** set/cas: value to write; get: value read once completed. */
  value: string | null;
  /** cas: value expected. */
  expected: string | null;
  node: NodeId;
  /** Logical time of invocation / completion (a global counter over history events). */
  call: number;
  ret: number;
  status: OpStatus;
  /** cas outcome. */
  ok: boolean | undefined;
}

/** What a node answers: failed = definitely not executed (no leader to take it). */
export interface ClientReply {
  failed: boolean;
  ok?: boolean;
  value?: string | null;
}

export class SimClients {
  readonly ops: ClientOp[] = [];
  private readonly world: SimWorld;
  private logical = 0;
  private running = false;
  private readonly seqs: number[] = [];
  private readonly lastSeen: Array<Map<string, string | null>> = [];

  constructor(world: SimWorld) {
    this.world = world;
  }

  start(): void {
    this.running = true;
    const { params, queue, prng } = this.world;
    for (let c = 1; c <= params.clients; c++) {
      this.seqs[c] = 0;
      this.lastSeen[c] = new Map();
      queue.after(prng.int(0, params.thinkMaxMs), () => this.issue(c));
    }
  }

  stop(): void {
    this.running = false;
  }

  pending(): number {
    let n = 0;
    for (const op of this.ops) if (op.status === OpStatus.Pending) n++;
    return n;
  }

  private issue(client: number): void {
    if (!this.running) return;
    const { params, prng, queue, trace } = this.world;
    const key = prng.pick(params.keys);
    const roll = prng.next();
    const kind: OpKind = roll < 0.45 ? "set" : roll < 0.8 ? "get" : "cas";
    const seq = ++(this.seqs[client] as number);
    const seen = (this.lastSeen[client] as Map<string, string | null>).get(key) ?? null;
    const op: ClientOp = {
      id: this.ops.length,
      client,
      seq,
      kind,
      key,
      value: kind === "get" ? null : `c${client}.${seq}`,
      expected: kind === "cas" ? seen : null,
      node: prng.pick(params.nodeIds),
      call: ++this.logical,
      ret: Number.POSITIVE_INFINITY,
      status: OpStatus.Pending,
      ok: undefined,
    };
    this.ops.push(op);
    trace.add([7, queue.now, op.id, client, this.world.nodeIndex(op.node)], () => {
      return `${queue.now} client ${client} invokes #${op.id} ${kind}(${key}${op.expected !== null ? `, ${op.expected}` : ""}${op.value !== null ? `, ${op.value}` : ""}) at ${op.node}`;
    });
    queue.after(prng.int(1, 3), () => this.world.nodes.get(op.node)?.handleClientRequest(op));
    queue.after(params.clientTimeoutMs, () => this.timeout(op));
  }

  /** A node answers `op`; the answer reaches the client after a short delay. */
  respond(op: ClientOp, reply: ClientReply): void {
    const { queue, prng } = this.world;
    queue.after(prng.int(1, 3), () => this.complete(op, reply));
  }

  private complete(op: ClientOp, reply: ClientReply): void {
    if (op.status !== OpStatus.Pending) return; // the client gave up already
    const { queue, trace, prng, params } = this.world;
    op.ret = ++this.logical;
    if (reply.failed) {
      op.status = OpStatus.Failed;
    } else {
      op.status = OpStatus.Ok;
      if (op.kind === "get") op.value = reply.value ?? null;
      if (op.kind === "cas") op.ok = reply.ok;
      const seen = this.lastSeen[op.client] as Map<string, string | null>;
      if (op.kind === "get" || op.kind === "set" || op.ok === true) seen.set(op.key, op.value);
    }
    trace.add([8, queue.now, op.id, op.status === OpStatus.Ok ? 1 : 0], () => {
      return `${queue.now} client ${op.client} #${op.id} -> ${op.status}${op.kind === "get" ? ` ${op.value}` : ""}${op.kind === "cas" ? ` ${op.ok}` : ""}`;
    });
    queue.after(prng.int(0, params.thinkMaxMs), () => this.issue(op.client));
  }

  private timeout(op: ClientOp): void {
    if (op.status !== OpStatus.Pending) return;
    const { queue, trace, prng, params } = this.world;
    op.status = OpStatus.TimedOut;
    trace.add([9, queue.now, op.id], () => `${queue.now} client ${op.client} #${op.id} timed out`);
    queue.after(prng.int(0, params.thinkMaxMs), () => this.issue(op.client));
  }

  /**
   * Per-key register histories for the linearizability checker: completed operations, plus
   * writes of unknown outcome (they may have taken effect at any time after their call).
   */
  histories(): Map<string, RegisterOp[]> {
    const out = new Map<string, RegisterOp[]>();
    for (const op of this.ops) {
      if (op.status === OpStatus.Failed) continue;
      const unknown = op.status !== OpStatus.Ok;
      if (unknown && op.kind === "get") continue;
      let list = out.get(op.key);
      if (list === undefined) {
        list = [];
        out.set(op.key, list);
      }
      list.push({
        kind: op.kind,
        value: op.value,
        expected: op.expected,
        ok: unknown ? undefined : op.kind === "cas" ? op.ok : true,
        call: op.call,
        ret: unknown ? Number.POSITIVE_INFINITY : op.ret,
        label: describeOp(op),
      });
    }
    return out;
  }
}

export function describeOp(op: ClientOp): string {
  const args = [
    op.key,
    ...(op.kind === "cas" ? [String(op.expected)] : []),
    ...(op.kind !== "get" ? [String(op.value)] : []),
  ];
  let out = "";
  if (op.status === OpStatus.Ok)
    out = op.kind === "get" ? ` -> ${op.value}` : op.kind === "cas" ? ` -> ${op.ok}` : " -> ok";
  else out = ` -> ${op.status}`;
  return `#${op.id} client ${op.client} ${op.kind}(${args.join(", ")})${out} at ${op.node}`;
}
