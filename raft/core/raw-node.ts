// RawNode: the public, IO-free driver interface of the Raft core (etcd-io/raft's RawNode).
//
//   const node = createRawNode({ id, peers, storage, random });
//   every tick interval:      node.tick();
//   on a message from a peer: node.step(msg);
//   on a client command:      node.propose(data);     // throws RaftProposalDropped without a leader
//   then, while node.hasReady():
//     const rd = node.ready();
//     persist rd.snapshot, rd.entries, rd.hardState (fsync if rd.mustSync)   — raft/storage.ts
//     send rd.messages
//     apply rd.snapshot, then rd.committedEntries, to the state machine; serve rd.readStates
//     node.advance(rd);
//
// step()/tick()/propose() may be called between ready() and advance() (e.g. while an fsync is in
// flight); ready() may not be called again before advance(), and hasReady() is false meanwhile.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { Entry, HardState, Message, NodeId, Ready, SoftState, StateType } from "../types.ts";
import { EntryType, MessageType } from "../types.ts";
import { type RawNodeConfig, resolveConfig } from "./config.ts";
import type { ProgressState } from "./progress.ts";
import { newMessage, Raft } from "./raft.ts";

/** Message types that only the local node may produce; step() drops them from the network. */
const LOCAL_ONLY: ReadonlySet<string> = new Set([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.SnapStatus,
  MessageType.Unreachable,
]);

export interface PeerProgress {
  match: number;
  next: number;
  state: ProgressState;
  inflight: number;
  paused: boolean;
  recentActive: boolean;
  pendingSnapshot: number;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId | "";
  commit: number;
  applied: number;
  lead: NodeId | "";
  state: StateType;
  firstIndex: number;
  lastIndex: number;
  voters: NodeId[];
  leadTransferee: NodeId | "";
  /** Per voter, only on the leader. */
  progress: Map<NodeId, PeerProgress> | undefined;
}

export interface RawNode {
  readonly id: NodeId;
  /** Advance logical time by one tick (elections, heartbeats, CheckQuorum). */
  tick(): void;
  /** Feed a message received from a peer. Local-only message types are ignored. */
  step(msg: Message): void;
  /** Append a command (through the leader). Throws RmqError(RaftProposalDropped) if no leader. */
  propose(data: Uint8Array): void;
  /** Several commands in one append (one MsgProp). */
  proposeBatch(data: readonly Uint8Array[]): void;
  /** Start a pre-election (or election) now. */
  campaign(): void;
  /**
   * Request a linearizable read; a ReadState with the same context appears in a later Ready once
   * leadership is confirmed. Throws RmqError(RaftProposalDropped) if no leader is known.
   */
  readIndex(context: Uint8Array): void;
  /** Ask the leader to hand leadership to `to` (TimeoutNow once `to` is caught up). */
  transferLeader(to: NodeId): void;
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
  /** The transport could not deliver to `id`: stop pipelining to it. */
  reportUnreachable(id: NodeId): void;
  /** Outcome of sending a MsgSnap to `id`. Must be called for every MsgSnap the node emits. */
  reportSnapshot(id: NodeId, ok: boolean): void;
  status(): RaftStatus;
  /** Term of the entry at `index` in this node's log (unstable included), undefined if absent. */
  termAt(index: number): number | undefined;
}

export function createRawNode(config: RawNodeConfig): RawNode {
  return new RawNodeImpl(config);
}

class RawNodeImpl implements RawNode {
  readonly id: NodeId;
  private readonly raft: Raft;
  private readonly maxCommittedSize: number;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding = false;

  constructor(config: RawNodeConfig) {
    const c = resolveConfig(config);
    this.id = c.id;
    this.maxCommittedSize = c.maxCommittedSizePerReady;
    this.raft = new Raft(c);
    this.prevSoft = this.softState();
    this.prevHard = this.raft.hardState();
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, state: this.raft.state };
  }

  tick(): void {
    this.raft.tick();
  }

  step(msg: Message): void {
    if (LOCAL_ONLY.has(msg.type)) return;
    if (msg.to !== this.id) return;
    this.raft.step(msg);
  }

  propose(data: Uint8Array): void {
    this.proposeBatch([data]);
  }

  proposeBatch(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    const m = newMessage(MessageType.Propose, this.id, this.id, 0);
    const ents: Entry[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      ents[i] = { term: 0, index: 0, type: EntryType.Normal, data: data[i] as Uint8Array };
    }
    m.entries = ents;
    if (!this.raft.step(m)) {
      throw new RmqError(ErrorCode.RaftProposalDropped, `raft ${this.id}: no leader to take the proposal`);
    }
  }

  campaign(): void {
    this.raft.step(newMessage(MessageType.Hup, this.id, this.id, 0));
  }

  readIndex(context: Uint8Array): void {
    const m = newMessage(MessageType.ReadIndex, this.id, this.id, 0);
    m.context = context;
    if (!this.raft.step(m)) {
      throw new RmqError(ErrorCode.RaftProposalDropped, `raft ${this.id}: no leader to serve the read`);
    }
  }

  transferLeader(to: NodeId): void {
    // By convention the request names the transferee as its sender.
    this.raft.step(newMessage(MessageType.TransferLeader, to, this.id, 0));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage(MessageType.Unreachable, id, this.id, 0));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    const m = newMessage(MessageType.SnapStatus, id, this.id, 0);
    m.reject = !ok;
    this.raft.step(m);
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    const soft = this.prevSoft;
    if (r.lead !== soft.lead || r.state !== soft.state) return true;
    const hard = this.prevHard;
    if (r.term !== hard.term || r.vote !== hard.vote || r.log.committed !== hard.commit) return true;
    const u = r.log.unstable;
    if (u.snapshot !== undefined || u.entries.length > 0) return true;
    if (r.msgs.length > 0 || r.readStates.length > 0) return true;
    return r.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    if (this.outstanding) {
      throw new RmqError(ErrorCode.RaftInvariantViolated, `raft ${this.id}: ready() called before advance()`);
    }
    this.outstanding = true;
    const r = this.raft;
    const u = r.log.unstable;
    const rd: Ready = {
      entries: u.entries.slice(),
      committedEntries: r.log.nextCommittedEntries(this.maxCommittedSize),
      messages: r.msgs,
      readStates: r.readStates,
      mustSync: false,
    };
    r.msgs = [];
    r.readStates = [];
    const soft = this.softState();
    if (soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state) {
      rd.softState = soft;
      this.prevSoft = soft;
    }
    const hard = r.hardState();
    const prev = this.prevHard;
    if (hard.term !== prev.term || hard.vote !== prev.vote || hard.commit !== prev.commit) {
      rd.hardState = hard;
      if (hard.term !== prev.term || hard.vote !== prev.vote) rd.mustSync = true;
      this.prevHard = hard;
    }
    if (u.snapshot !== undefined) {
      rd.snapshot = u.snapshot;
      rd.mustSync = true;
    }
    if (rd.entries.length > 0) rd.mustSync = true;
    return rd;
  }

  advance(rd: Ready): void {
    if (!this.outstanding) {
      throw new RmqError(ErrorCode.RaftInvariantViolated, `raft ${this.id}: advance() without ready()`);
    }
    this.outstanding = false;
    const log = this.raft.log;
    const last = rd.entries[rd.entries.length - 1];
    if (last !== undefined) log.stableTo(last.index, last.term);
    if (rd.snapshot !== undefined) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      if (rd.snapshot.metadata.index > log.applied) log.applied = rd.snapshot.metadata.index;
    }
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) log.appliedTo(lastCommitted.index);
  }

  status(): RaftStatus {
    const r = this.raft;
    let progress: Map<NodeId, PeerProgress> | undefined;
    if (r.state === "Leader") {
      progress = new Map();
      for (const [id, pr] of r.progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          inflight: pr.inflights.count,
          paused: pr.isPaused(),
          recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot,
        });
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      commit: r.log.committed,
      applied: r.log.applied,
      lead: r.lead,
      state: r.state,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      voters: [...r.voters],
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }
}
