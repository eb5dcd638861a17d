// The simulated network: seeded loss, duplication, delay and reordering, plus partitions as a set
// of blocked directed links (symmetric or asymmetric), checked when a message would arrive.
// Snapshot sends are reported back to the sender (RawNode.reportSnapshot) with their fate.

import type { Message, NodeId } from "../types.ts";
import { MessageType } from "../types.ts";
import type { SimWorld } from "./world.ts";

const TYPE_CODE: Record<string, number> = {};
Object.values(MessageType).forEach((t, i) => {
  TYPE_CODE[t] = i;
});

export class SimNetwork {
  private readonly world: SimWorld;
  private readonly blocked = new Set<string>();
  /** Chaos on: loss, duplication and long delays apply. */
  faulty = false;
  sent = 0;
  dropped = 0;
  duplicated = 0;

  constructor(world: SimWorld) {
    this.world = world;
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  blockBoth(a: NodeId, b: NodeId): void {
    this.block(a, b);
    this.block(b, a);
  }

  healAll(): void {
    this.blocked.clear();
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  describePartition(): string {
    return [...this.blocked].sort().join(" ");
  }

  send(m: Message, senderIncarnation: number): void {
    const { prng, params, queue, trace, checker } = this.world;
    this.sent++;
    if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
      checker.onLeader(m.from, m.term);
    }
    const fi = this.world.nodeIndex(m.from);
    const ti = this.world.nodeIndex(m.to);
    const code = TYPE_CODE[m.type] ?? -1;
    if (this.faulty && prng.chance(params.dropRate)) {
      this.dropped++;
      trace.add([1, queue.now, code, fi, ti, m.term, m.index], () => `${queue.now} drop ${describe(m)}`);
      if (m.type === MessageType.Snap) {
        queue.after(params.minDelayMs, () => this.reportSnapshot(m, senderIncarnation, false));
      }
      return;
    }
    let copies = 1;
    if (this.faulty && prng.chance(params.dupRate)) {
      copies = 2;
      this.duplicated++;
    }
    for (let c = 0; c < copies; c++) {
      let delay = prng.int(params.minDelayMs, params.maxDelayMs);
      if (this.faulty && prng.chance(params.reorderRate)) delay += prng.int(1, params.longDelayMs);
      const reportSnap = m.type === MessageType.Snap && c === 0;
      queue.after(delay, () => this.deliver(m, senderIncarnation, reportSnap));
    }
  }

  private deliver(m: Message, senderIncarnation: number, reportSnap: boolean): void {
    const { queue, trace } = this.world;
    const to = this.world.nodes.get(m.to);
    const ok = to?.up === true && !this.blocked.has(`${m.from}>${m.to}`);
    const code = TYPE_CODE[m.type] ?? -1;
    trace.add(
      [
        2,
        queue.now,
        code,
        this.world.nodeIndex(m.from),
        this.world.nodeIndex(m.to),
        m.term,
        m.index,
        m.logTerm,
        m.entries.length,
        m.commit,
        m.reject ? 1 : 0,
        ok ? 1 : 0,
      ],
      () => `${queue.now} ${ok ? "recv" : "lost"} ${describe(m)}`,
    );
    if (ok) to?.receive(m);
    if (reportSnap) this.reportSnapshot(m, senderIncarnation, ok);
    // A real transport notices some failed sends (connection refused, reset) and says so.
    else if (!ok && this.world.prng.chance(0.3)) this.reportUnreachable(m, senderIncarnation);
  }

  private reportUnreachable(m: Message, senderIncarnation: number): void {
    const from = this.world.nodes.get(m.from);
    if (from === undefined || !from.up || from.incarnation !== senderIncarnation) return;
    from.reportUnreachable(m.to);
  }

  private reportSnapshot(m: Message, senderIncarnation: number, ok: boolean): void {
    const from = this.world.nodes.get(m.from);
    if (from === undefined || !from.up || from.incarnation !== senderIncarnation) return;
    from.reportSnapshot(m.to, ok);
  }
}

export function describe(m: Message): string {
  let s = `${m.type} ${m.from}->${m.to} t${m.term}`;
  if (m.type === MessageType.App)
    s += ` prev=${m.index}/${m.logTerm} n=${m.entries.length} commit=${m.commit}`;
  else if (m.type === MessageType.AppResp)
    s += ` idx=${m.index}${m.reject ? ` reject hint=${m.rejectHint}/${m.logTerm}` : ""}`;
  else if (m.type === MessageType.Vote || m.type === MessageType.PreVote)
    s += ` last=${m.index}/${m.logTerm}`;
  else if (m.type === MessageType.VoteResp || m.type === MessageType.PreVoteResp)
    s += m.reject ? " reject" : " grant";
  else if (m.type === MessageType.Heartbeat) s += ` commit=${m.commit}`;
  else if (m.type === MessageType.Snap)
    s += ` snap=${m.snapshot?.metadata.index}/${m.snapshot?.metadata.term}`;
  else if (m.type === MessageType.ReadIndexResp) s += ` idx=${m.index}`;
  return s;
}
