// A small synchronous in-test network for the core's unit tests: each node is a RawNode over a
// MemoryStorage; the Ready loop persists, queues messages and records applied entries. Messages
// are delivered in FIFO order until the cluster is quiet, through optional drop rules.

import { Prng } from "../sim/prng.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Entry, Message, NodeId, ReadState, Ready, SoftState } from "../types.ts";
import type { RawNodeConfig } from "./config.ts";
import { createRawNode, type RawNode } from "./raw-node.ts";

export interface TestNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Entries applied to the "state machine", in order (snapshots reset it to a marker). */
  applied: Entry[];
  readStates: ReadState[];
  soft: SoftState;
}

/** Returns the message to deliver (possibly rewritten), or undefined to drop it. */
export type MessageInterceptor = (m: Message) => Message | undefined;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export function text(b: Uint8Array): string {
  return decoder.decode(b);
}

export interface TestNetworkOptions {
  /** Per-node config overrides. */
  config?: (id: NodeId) => Partial<RawNodeConfig>;
  /** Per-node initial storage (default: empty). */
  storage?: (id: NodeId) => MemoryStorage;
  seed?: number;
}

/** A storage holding entries with the given terms at indexes 1..n, and `term` as current term. */
export function storageWithTerms(terms: number[], hardTerm = terms[terms.length - 1] ?? 0): MemoryStorage {
  const st = new MemoryStorage();
  st.append(terms.map((term, i) => ({ term, index: i + 1, type: 0, data: bytes(`t${term}i${i + 1}`) })));
  st.setHardState({ term: hardTerm, vote: "", commit: 0 });
  return st;
}

export class TestNetwork {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly ids: NodeId[];
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  /** Every message ever sent, in order (for assertions). */
  readonly sent: Message[] = [];
  private readonly cut = new Set<string>();
  private readonly down = new Set<NodeId>();
  /** Rewrite or drop rules, applied in order at delivery. */
  readonly interceptors: MessageInterceptor[] = [];
  private readonly overrides: (id: NodeId) => Partial<RawNodeConfig>;
  private readonly seed: number;

  constructor(ids: NodeId[], options: TestNetworkOptions = {}) {
    this.ids = ids;
    this.overrides = options.config ?? (() => ({}));
    this.seed = options.seed ?? 1;
    for (const id of ids) this.start(id, options.storage?.(id) ?? new MemoryStorage(), 0);
  }

  /** (Re)start node `id` on `storage` (a restart keeps the storage: the "disk"). */
  start(id: NodeId, storage: MemoryStorage, applied: number): TestNode {
    const prng = new Prng(this.seed * 1000 + this.ids.indexOf(id) + this.nodes.size);
    const raw = createRawNode({
      id,
      peers: this.ids,
      storage,
      applied,
      random: () => prng.next(),
      ...this.overrides(id),
    });
    const node: TestNode = {
      id,
      raw,
      storage,
      applied: [],
      readStates: [],
      soft: { lead: "", state: "Follower" },
    };
    this.nodes.set(id, node);
    this.down.delete(id);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Crash a node: it keeps its storage; messages to it are dropped until restart(). */
  crash(id: NodeId): void {
    this.down.add(id);
  }

  restart(id: NodeId): TestNode {
    const old = this.node(id);
    return this.start(id, old.storage, old.storage.snapshot().metadata.index);
  }

  /** Cut the links between two groups (both directions). */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  isolate(id: NodeId): void {
    this.partition(
      [id],
      this.ids.filter((x) => x !== id),
    );
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.interceptors.length = 0;
  }

  /** Run every node's Ready loop once: persist, queue messages, apply. */
  flushReady(id: NodeId): Ready[] {
    const n = this.node(id);
    const out: Ready[] = [];
    if (this.down.has(id)) return out;
    while (n.raw.hasReady()) {
      const rd = n.raw.ready();
      out.push(rd);
      if (rd.softState !== undefined) n.soft = rd.softState;
      if (rd.snapshot !== undefined) {
        n.storage.applySnapshot(rd.snapshot);
        n.applied = [];
      }
      n.storage.append(rd.entries);
      if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
      for (const m of rd.messages) {
        this.sent.push(m);
        this.queue.push(m);
      }
      for (const e of rd.committedEntries) n.applied.push(e);
      for (const rs of rd.readStates) n.readStates.push(rs);
      n.raw.advance(rd);
    }
    return out;
  }

  flushAll(): void {
    for (const id of this.ids) this.flushReady(id);
  }

  /** The message as it would arrive, or undefined if it would be lost. */
  deliverable(m: Message): Message | undefined {
    if (this.down.has(m.to) || this.down.has(m.from)) return undefined;
    if (this.cut.has(`${m.from}>${m.to}`)) return undefined;
    let out: Message | undefined = m;
    for (const f of this.interceptors) {
      out = f(out);
      if (out === undefined) return undefined;
    }
    return out;
  }

  /** Deliver queued messages (and the messages they cause) until nothing is left. */
  stabilize(maxSteps = 100_000): void {
    this.flushAll();
    let steps = 0;
    while (this.queue.length > 0) {
      if (++steps > maxSteps) throw new Error("network did not stabilize");
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliver(m);
      this.flushAll();
    }
  }

  private deliver(m: Message): void {
    const d = this.deliverable(m);
    if (d !== undefined) this.node(d.to).raw.step(d);
    // The transport reports every snapshot send's outcome to the sender.
    if (m.type === "Snap" && !this.down.has(m.from))
      this.node(m.from).raw.reportSnapshot(m.to, d !== undefined);
  }

  /** Deliver at most `rounds` rounds of queued messages (for scenarios that never go quiet). */
  deliverRounds(rounds: number): void {
    this.flushAll();
    for (let r = 0; r < rounds && this.queue.length > 0; r++) {
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliver(m);
      this.flushAll();
    }
  }

  /** Drop everything queued (e.g. to set up a precise scenario). */
  dropQueued(): void {
    this.queue = [];
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).raw.tick();
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.ids) if (!this.down.has(id)) this.node(id).raw.tick();
      this.stabilize();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
  }

  propose(id: NodeId, data: string): void {
    this.node(id).raw.propose(bytes(data));
    this.stabilize();
  }

  leader(): NodeId | undefined {
    let found: NodeId | undefined;
    for (const id of this.ids) {
      if (this.down.has(id)) continue;
      const st = this.node(id).raw.status();
      if (st.state === "Leader") {
        if (found !== undefined && this.node(found).raw.status().term === st.term) {
          throw new Error(`two leaders in term ${st.term}`);
        }
        if (found === undefined || this.node(found).raw.status().term < st.term) found = id;
      }
    }
    return found;
  }

  /** The data of normal entries applied on `id`, as strings. */
  appliedData(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.type === 0)
      .map((e) => text(e.data));
  }
}
