// The Ready loop around one RawNode: real time, durable storage, a transport, a state machine.
//
//   timer (tickMs) ─► tick()      transport ─► step(msgs)      callers ─► propose(data) / readIndex()
//                         \              |                          /
//                          └──────► pump(): while hasReady():
//                                     rd = ready()
//                                     persist snapshot → entries → hardState (fsync if mustSync)
//                                     send rd.messages
//                                     restore rd.snapshot, apply rd.committedEntries, serve reads
//                                     advance(rd); maybe snapshot + compact
//
// Only one Ready is in flight at a time; ticks, messages and proposals keep flowing into the core
// while its fsync runs, so the next Ready carries everything that arrived meanwhile (group commit).
//
// Proposals: each command is wrapped in an envelope (this incarnation's random nonce + a sequence
// number) so that the driver recognises its own entries when they are applied and resolves the
// caller's promise with what the state machine returned. A proposal fails with
//   RaftNotLeader       — this node is not the leader (or stopped being it before the entry was appended);
//   RaftProposalLost    — its log slot was taken by another leader's entry (it will never apply);
//   RaftProposalTimeout — not applied within proposalTimeoutMs (outcome unknown: it may still apply);
//   RaftNodeStopped     — the driver was stopped.
// Commands queued in the same macrotask go to the core as one proposeBatch.
//
// Reads: readIndex() resolves once this node has applied everything committed when the read was
// issued and a quorum confirmed its leadership (Raft §6.4) — a linearizable read point. Concurrent
// reads share one ReadIndex round.
//
// Snapshots: every `snapshotEntries` applied entries the state machine is serialized, saved (atomic,
// fsynced) and the log is compacted, keeping `keepEntriesAfterSnapshot` entries for slow followers.

import { randomBytes } from "node:crypto";
import { ErrorCode, isRmqError, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";
import { DEFAULT_ELECTION_TICK, DEFAULT_HEARTBEAT_TICK } from "./core/config.ts";
import { createRawNode, type RaftStatus, type RawNode } from "./core/raw-node.ts";
import type { WalStorage } from "./storage/wal-storage.ts";
import { type Entry, EntryType, type Message, type NodeId, type Ready, StateType } from "./types.ts";

/** Wall-clock length of one Raft tick. With electionTick 10 a follower campaigns after 1–2 s of silence. */
export const DEFAULT_TICK_MS = 100;
/** Upstream DLedgerController waits 5 s for an append to commit. */
export const DEFAULT_PROPOSAL_TIMEOUT_MS = 5_000;
/** Applied entries between two snapshots (etcd: 10 000). */
export const DEFAULT_SNAPSHOT_ENTRIES = 10_000;
/** Entries kept in the log behind a snapshot so a slightly lagging follower needs no snapshot (etcd: 5 000). */
export const DEFAULT_KEEP_ENTRIES_AFTER_SNAPSHOT = 5_000;

const ENVELOPE_VERSION = 1;
/** u8 version, 8-byte nonce, u32 seq high, u32 seq low. */
const ENVELOPE_BYTES = 17;
const TWO_32 = 0x1_0000_0000;

/** What the driver needs from the replicated state machine. */
export interface RaftStateMachine {
  /** Applies one committed command (in log order, once per entry); the result resolves the proposal. */
  apply(data: Uint8Array, index: number): unknown;
  /** Serializes the whole state (taken between two applies). */
  snapshot(): Uint8Array;
  /** Replaces the whole state (a snapshot from disk at start, or from the leader). */
  restore(data: Uint8Array, index: number): void;
}

export interface RoleChange {
  state: StateType;
  /** Current leader, "" if unknown. */
  lead: NodeId | "";
  term: number;
}

export interface RaftNodeDriverOptions {
  id: NodeId;
  /** All voters, this node included (used when the log knows none yet). */
  peers: NodeId[];
  storage: WalStorage;
  stateMachine: RaftStateMachine;
  /** Hands messages to the transport; must not throw and must not block. */
  send: (messages: Message[]) => void;
  tickMs?: number;
  electionTick?: number;
  heartbeatTick?: number;
  proposalTimeoutMs?: number;
  snapshotEntries?: number;
  keepEntriesAfterSnapshot?: number;
  logger?: Logger;
  /** Uniform in [0, 1) for election jitter (default Math.random). */
  random?: () => number;
  /** The role or the known leader changed. */
  onRoleChange?: (change: RoleChange) => void;
  /** This node became leader AND applied its term's first entry: its state is caught up, it may serve. */
  onLeaderServing?: (term: number) => void;
  /** Storage failed: the node stopped and must not continue (the process should exit). */
  onFatal?: (err: unknown) => void;
}

interface PendingProposal {
  seq: number;
  data: Uint8Array;
  deadline: number;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  /** Log slot once the leader appended it. */
  index: number;
}

interface PendingRead {
  deadline: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface DriverStats {
  readies: number;
  syncs: number;
  entriesPersisted: number;
  applied: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
}

export class RaftNodeDriver {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly storage: WalStorage;
  private readonly sm: RaftStateMachine;
  private readonly sendFn: (messages: Message[]) => void;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly proposalTimeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly keepEntries: number;
  private readonly opts: RaftNodeDriverOptions;
  private readonly nonce: Uint8Array;

  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private fatal: unknown;
  private pumping: Promise<void> | undefined;
  private wantPump = false;

  private state: StateType = StateType.Follower;
  private lead: NodeId | "" = "";
  private term = 0;
  /** Term in which this node, as leader, applied its own first entry (0: not serving). */
  private servingTerm = 0;
  private appliedIndex: number;
  private lastSnapshotIndex: number;

  private nextSeq = 1;
  private queued: PendingProposal[] = [];
  private flushScheduled = false;
  private readonly pending = new Map<number, PendingProposal>();
  private readonly bySlot = new Map<number, PendingProposal>();

  private nextReadCtx = 1;
  private readsQueued: PendingRead[] = [];
  private readonly readsInFlight = new Map<string, PendingRead[]>();
  private readsWaitingApply: Array<{ index: number; reads: PendingRead[] }> = [];

  readonly stats: DriverStats = {
    readies: 0,
    syncs: 0,
    entriesPersisted: 0,
    applied: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
  };

  constructor(opts: RaftNodeDriverOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.storage = opts.storage;
    this.sm = opts.stateMachine;
    this.sendFn = opts.send;
    this.log = opts.logger ?? silentLogger();
    this.tickMs = opts.tickMs ?? DEFAULT_TICK_MS;
    this.proposalTimeoutMs = opts.proposalTimeoutMs ?? DEFAULT_PROPOSAL_TIMEOUT_MS;
    this.snapshotEntries = opts.snapshotEntries ?? DEFAULT_SNAPSHOT_ENTRIES;
    this.keepEntries = opts.keepEntriesAfterSnapshot ?? DEFAULT_KEEP_ENTRIES_AFTER_SNAPSHOT;
    this.nonce = new Uint8Array(randomBytes(8));
    const snap = this.storage.snapshot();
    if (snap.metadata.index > 0) this.sm.restore(snap.data, snap.metadata.index);
    this.appliedIndex = snap.metadata.index;
    this.lastSnapshotIndex = snap.metadata.index;
    this.raw = createRawNode({
      id: opts.id,
      peers: opts.peers,
      storage: this.storage,
      applied: snap.metadata.index,
      electionTick: opts.electionTick ?? DEFAULT_ELECTION_TICK,
      heartbeatTick: opts.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK,
      random: opts.random ?? Math.random,
    });
    this.term = this.raw.status().term;
  }

  /** Starts ticking. */
  start(): void {
    if (this.timer !== undefined || this.stopped) return;
    this.timer = setInterval(() => this.onTick(), this.tickMs);
    this.pump();
  }

  get isLeader(): boolean {
    return this.state === StateType.Leader;
  }
  /** Leader whose state machine is caught up with its own term (safe to validate writes against). */
  get isServingLeader(): boolean {
    return this.state === StateType.Leader && this.servingTerm === this.term;
  }
  get leaderId(): NodeId | "" {
    return this.lead;
  }
  get currentTerm(): number {
    return this.term;
  }
  get applied(): number {
    return this.appliedIndex;
  }
  status(): RaftStatus {
    return this.raw.status();
  }

  /** Feeds messages received from peers. */
  step(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of messages) {
      try {
        this.raw.step(m);
      } catch (e) {
        // e.g. a leader's commit beyond our log: this node's disk lost acknowledged entries.
        this.log.error(
          { err: e, type: m.type, from: m.from, term: m.term },
          "raft message refused by the core",
        );
      }
    }
    this.pump();
  }

  reportUnreachable(peer: NodeId): void {
    if (this.stopped) return;
    this.raw.reportUnreachable(peer);
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    if (this.stopped) return;
    this.raw.reportSnapshot(peer, ok);
    this.pump();
  }

  /** Asks the leader to hand leadership over to `to`. */
  transferLeader(to: NodeId): void {
    if (this.stopped) return;
    this.raw.transferLeader(to);
    this.pump();
  }

  /** Starts an election now (tests, operators). */
  campaign(): void {
    if (this.stopped) return;
    this.raw.campaign();
    this.pump();
  }

  /**
   * Replicates `data` and resolves with the state machine's result for it once applied here.
   * Only the leader accepts proposals.
   */
  propose(data: Uint8Array): Promise<unknown> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    if (this.state !== StateType.Leader) return Promise.reject(this.notLeader());
    return new Promise<unknown>((resolve, reject) => {
      const p: PendingProposal = {
        seq: this.nextSeq++,
        data,
        deadline: Date.now() + this.proposalTimeoutMs,
        resolve,
        reject,
        index: 0,
      };
      this.queued.push(p);
      this.scheduleFlush();
    });
  }

  /** Resolves when a linearizable read may be served from this node's applied state. */
  readIndex(): Promise<void> {
    if (this.stopped) return Promise.reject(this.stoppedError());
    if (this.state !== StateType.Leader) return Promise.reject(this.notLeader());
    return new Promise<void>((resolve, reject) => {
      this.readsQueued.push({ deadline: Date.now() + this.proposalTimeoutMs, resolve, reject });
      this.scheduleFlush();
    });
  }

  /** Stops ticking, fails everything pending, waits for the Ready in flight, closes the storage. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    this.failAll(this.stoppedError());
    await this.pumping?.catch(() => undefined);
    await this.storage.close();
  }

  // ---- internals ----

  private stoppedError(): RmqError {
    return new RmqError(ErrorCode.RaftNodeStopped, `raft node ${this.id} is stopped`, { cause: this.fatal });
  }

  private notLeader(): RmqError {
    return new RmqError(
      ErrorCode.RaftNotLeader,
      `raft node ${this.id} is not the leader${this.lead === "" ? " (no leader known)" : `; leader is ${this.lead}`}`,
    );
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.stopped) return;
    const props = this.queued;
    this.queued = [];
    if (props.length > 0) {
      if (this.state !== StateType.Leader) {
        for (const p of props) p.reject(this.notLeader());
      } else {
        const datas = props.map((p) => this.wrap(p));
        try {
          this.raw.proposeBatch(datas);
          for (const p of props) this.pending.set(p.seq, p);
        } catch (e) {
          const err = isRmqError(e, ErrorCode.RaftProposalDropped) ? this.notLeader() : e;
          for (const p of props) p.reject(err);
        }
      }
    }
    const reads = this.readsQueued;
    this.readsQueued = [];
    if (reads.length > 0) {
      const ctxKey = String(this.nextReadCtx++);
      try {
        this.raw.readIndex(new TextEncoder().encode(ctxKey));
        this.readsInFlight.set(ctxKey, reads);
      } catch (e) {
        const err = isRmqError(e, ErrorCode.RaftProposalDropped) ? this.notLeader() : e;
        for (const r of reads) r.reject(err);
      }
    }
    this.pump();
  }

  private wrap(p: PendingProposal): Uint8Array {
    const out = new Uint8Array(ENVELOPE_BYTES + p.data.byteLength);
    const dv = new DataView(out.buffer);
    out[0] = ENVELOPE_VERSION;
    out.set(this.nonce, 1);
    dv.setUint32(9, Math.floor(p.seq / TWO_32));
    dv.setUint32(13, p.seq % TWO_32);
    out.set(p.data, ENVELOPE_BYTES);
    return out;
  }

  /** This incarnation's sequence number if `data` is one of our envelopes, else 0. */
  private ownSeq(data: Uint8Array): number {
    for (let i = 0; i < 8; i++) if (data[1 + i] !== this.nonce[i]) return 0;
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return dv.getUint32(9) * TWO_32 + dv.getUint32(13);
  }

  private onTick(): void {
    if (this.stopped) return;
    this.raw.tick();
    this.expire(Date.now());
    this.pump();
  }

  private expire(now: number): void {
    if (this.pending.size > 0) {
      for (const p of this.pending.values()) {
        if (p.deadline > now) break; // insertion order = deadline order
        this.dropPending(p);
        p.reject(
          new RmqError(
            ErrorCode.RaftProposalTimeout,
            `raft node ${this.id}: proposal not applied within ${this.proposalTimeoutMs} ms (it may still apply)`,
          ),
        );
      }
    }
    const timedOut = (r: PendingRead) => r.deadline <= now;
    const timeoutErr = () =>
      new RmqError(
        ErrorCode.RaftProposalTimeout,
        `raft node ${this.id}: read not confirmed within ${this.proposalTimeoutMs} ms`,
      );
    for (const [ctx, reads] of this.readsInFlight) {
      if (reads.some(timedOut)) {
        this.readsInFlight.delete(ctx);
        for (const r of reads) r.reject(timeoutErr());
      }
    }
    if (this.readsWaitingApply.some((w) => w.reads.some(timedOut))) {
      const keep: Array<{ index: number; reads: PendingRead[] }> = [];
      for (const w of this.readsWaitingApply) {
        if (w.reads.some(timedOut)) for (const r of w.reads) r.reject(timeoutErr());
        else keep.push(w);
      }
      this.readsWaitingApply = keep;
    }
  }

  private dropPending(p: PendingProposal): void {
    this.pending.delete(p.seq);
    if (p.index > 0 && this.bySlot.get(p.index) === p) this.bySlot.delete(p.index);
  }

  private failAll(err: unknown): void {
    for (const p of this.queued) p.reject(err);
    this.queued = [];
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.bySlot.clear();
    this.failReads(err);
  }

  private failReads(err: unknown): void {
    for (const r of this.readsQueued) r.reject(err);
    this.readsQueued = [];
    for (const reads of this.readsInFlight.values()) for (const r of reads) r.reject(err);
    this.readsInFlight.clear();
    for (const w of this.readsWaitingApply) for (const r of w.reads) r.reject(err);
    this.readsWaitingApply = [];
  }

  /** Runs the Ready loop unless it is already running (then it loops once more). */
  private pump(): void {
    if (this.stopped) return;
    if (this.pumping !== undefined) {
      this.wantPump = true;
      return;
    }
    this.pumping = this.loop().finally(() => {
      this.pumping = undefined;
    });
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.wantPump = false;
        while (!this.stopped && this.raw.hasReady()) {
          const rd = this.raw.ready();
          await this.handleReady(rd);
        }
      } while (this.wantPump && !this.stopped);
    } catch (e) {
      this.fatal = e;
      this.log.fatal({ err: e }, "raft Ready loop failed; stopping the node");
      this.stopped = true;
      clearInterval(this.timer);
      this.timer = undefined;
      this.failAll(this.stoppedError());
      this.opts.onFatal?.(e);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    this.stats.readies++;
    if (rd.softState !== undefined) this.onSoftState(rd);
    else if (rd.hardState !== undefined && rd.hardState.term !== this.term) this.term = rd.hardState.term;
    // Our proposals got their log slots (leader only).
    if (this.pending.size > 0) {
      for (const e of rd.entries) {
        if (e.type !== EntryType.Normal || e.data.byteLength < ENVELOPE_BYTES) continue;
        const seq = this.ownSeq(e.data);
        const p = seq === 0 ? undefined : this.pending.get(seq);
        if (p === undefined) continue;
        p.index = e.index;
        const displaced = this.bySlot.get(e.index);
        if (displaced !== undefined && displaced !== p) this.lost(displaced);
        this.bySlot.set(e.index, p);
      }
    }

    // 1. persist
    if (rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined) {
      await this.storage.saveReady(rd);
      if (rd.mustSync) this.stats.syncs++;
      this.stats.entriesPersisted += rd.entries.length;
    }
    // 2. send
    if (rd.messages.length > 0) this.sendFn(rd.messages);
    // 3. apply
    if (rd.snapshot !== undefined && rd.snapshot.metadata.index > this.appliedIndex) {
      const idx = rd.snapshot.metadata.index;
      this.sm.restore(rd.snapshot.data, idx);
      this.appliedIndex = idx;
      this.lastSnapshotIndex = Math.max(this.lastSnapshotIndex, idx);
      this.stats.snapshotsInstalled++;
      for (const [slot, p] of this.bySlot) if (slot <= idx) this.lost(p);
      this.log.info({ index: idx, term: rd.snapshot.metadata.term }, "installed snapshot from leader");
    }
    for (const e of rd.committedEntries) this.applyEntry(e);
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.context);
      const reads = this.readsInFlight.get(ctx);
      if (reads === undefined) continue;
      this.readsInFlight.delete(ctx);
      this.readsWaitingApply.push({ index: rs.index, reads });
    }
    this.releaseReads();
    // 4. advance
    this.raw.advance(rd);
    await this.maybeSnapshot();
  }

  private onSoftState(rd: Ready): void {
    const soft = rd.softState;
    if (soft === undefined) return;
    const wasLeader = this.state === StateType.Leader;
    this.state = soft.state;
    this.lead = soft.lead;
    this.term = rd.hardState?.term ?? this.raw.status().term;
    if (wasLeader && soft.state !== StateType.Leader) {
      this.servingTerm = 0;
      // Not yet appended: will never be. Appended ones may still commit under the next leader; they
      // resolve when applied, fail when displaced, or time out.
      const err = this.notLeader();
      for (const p of this.queued) p.reject(err);
      this.queued = [];
      for (const p of [...this.pending.values()]) {
        if (p.index === 0) {
          this.dropPending(p);
          p.reject(err);
        }
      }
      this.failReads(err);
    }
    this.log.info({ state: soft.state, lead: soft.lead, term: this.term }, "raft role changed");
    this.opts.onRoleChange?.({ state: soft.state, lead: soft.lead, term: this.term });
  }

  private lost(p: PendingProposal): void {
    this.dropPending(p);
    p.reject(
      new RmqError(
        ErrorCode.RaftProposalLost,
        `raft node ${this.id}: log slot ${p.index} was taken by another leader's entry; the proposal will not apply`,
      ),
    );
  }

  private applyEntry(e: Entry): void {
    if (e.index <= this.appliedIndex) return;
    this.appliedIndex = e.index;
    this.stats.applied++;
    const mine = this.bySlot.get(e.index);
    if (e.type === EntryType.Normal && e.data.byteLength >= ENVELOPE_BYTES) {
      if (e.data[0] !== ENVELOPE_VERSION) {
        throw new RmqError(
          ErrorCode.CorruptRecord,
          `entry ${e.index}: unknown envelope version ${e.data[0]}`,
        );
      }
      const result = this.sm.apply(e.data.subarray(ENVELOPE_BYTES), e.index);
      const seq = this.ownSeq(e.data);
      const p = seq === 0 ? undefined : this.pending.get(seq);
      if (p !== undefined) {
        this.dropPending(p);
        p.resolve(result);
      }
      if (mine !== undefined && mine !== p) this.lost(mine);
    } else if (mine !== undefined) {
      this.lost(mine);
    }
    if (this.state === StateType.Leader && e.term === this.term && this.servingTerm !== this.term) {
      this.servingTerm = this.term;
      this.log.info({ term: this.term, index: e.index }, "leader caught up; serving");
      this.opts.onLeaderServing?.(this.term);
    }
  }

  private releaseReads(): void {
    if (this.readsWaitingApply.length === 0) return;
    const keep: Array<{ index: number; reads: PendingRead[] }> = [];
    for (const w of this.readsWaitingApply) {
      if (w.index <= this.appliedIndex) for (const r of w.reads) r.resolve();
      else keep.push(w);
    }
    this.readsWaitingApply = keep;
  }

  private async maybeSnapshot(): Promise<void> {
    const applied = this.appliedIndex;
    if (applied - this.lastSnapshotIndex < this.snapshotEntries) return;
    const data = this.sm.snapshot();
    await this.storage.createSnapshot(applied, this.raw.status().voters, data);
    this.lastSnapshotIndex = applied;
    this.stats.snapshotsTaken++;
    const compactTo = applied - this.keepEntries;
    if (compactTo >= this.storage.firstIndex()) await this.storage.compact(compactTo);
    this.log.debug({ index: applied, compactTo }, "took snapshot");
  }
}
