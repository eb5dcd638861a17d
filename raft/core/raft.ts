// The Raft state machine: roles, elections, replication, commit, ReadIndex and leader transfer.
// Pure: input is tick() and step(message); output is the `msgs` and `readStates` queues and the
// log, which RawNode turns into Ready batches. No clock, no IO, no Math.random.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type {
  Entry,
  HardState,
  Message,
  MessageType as MessageTypeT,
  NodeId,
  ReadState,
  Snapshot,
} from "../types.ts";
import { EntryType, MessageType, StateType } from "../types.ts";
import type { ResolvedConfig, UnsafeFlags } from "./config.ts";
import { Progress, ProgressState } from "./progress.ts";
import { majorityIndex, quorumSize, tallyVotes, VoteResult } from "./quorum.ts";
import { RaftLog } from "./raft-log.ts";
import {
  decodeHeartbeatContext,
  encodeHeartbeatContext,
  ReadOnlyOption,
  ReadOnlyQueue,
} from "./read-only.ts";

/**
 * Ticks a LeaseBased leader gives up from its lease: one for tick granularity (a follower's lease
 * may end electionTick - 1 intervals after it heard from us), one for tick-rate differences
 * between nodes (about 10% with the default electionTick of 10).
 */
export const LEASE_GUARD_TICKS = 2;

/** Vote context marking an election started by TimeoutNow: it overrides the CheckQuorum lease. */
export const CAMPAIGN_TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode("CampaignTransfer");

const CampaignType = { PreElection: "PreElection", Election: "Election", Transfer: "Transfer" } as const;
type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

export function newMessage(type: MessageTypeT, from: NodeId, to: NodeId, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
  };
}

function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  if (ctx === undefined || ctx.byteLength !== CAMPAIGN_TRANSFER_CONTEXT.byteLength) return false;
  for (let i = 0; i < ctx.byteLength; i++) if (ctx[i] !== CAMPAIGN_TRANSFER_CONTEXT[i]) return false;
  return true;
}

function voteRespType(t: MessageTypeT): MessageTypeT {
  return t === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId | "" = "";
  lead: NodeId | "" = "";
  state: StateType = StateType.Follower;
  readonly log: RaftLog;
  voters: NodeId[];
  progress = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();
  /** Outgoing messages, taken by RawNode.ready(). */
  msgs: Message[] = [];
  /** Confirmed reads, taken by RawNode.ready(). */
  readStates: ReadState[] = [];

  private electionElapsed = 0;
  /** Ticks since start (the leader's lease clock). */
  private ticks = 0;
  /**
   * LeaseBased only: after a restart, refuse votes for an election timeout, since the lease this
   * node may have promised to a leader before crashing is not remembered.
   */
  private votingDelay = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  private readonly checkQuorum: boolean;
  private readonly preVote: boolean;
  private readonly readOnlyOption: ReadOnlyOption;
  private readOnly = new ReadOnlyQueue();
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  private pendingReadIndex: Message[] = [];
  leadTransferee: NodeId | "" = "";
  private readonly maxMsgSize: number;
  private readonly maxInflight: number;
  private readonly random: () => number;
  private readonly unsafe: UnsafeFlags;
  private readonly scratch: number[] = [];

  constructor(c: ResolvedConfig) {
    this.id = c.id;
    this.log = new RaftLog(c.storage);
    const init = c.storage.initialState();
    this.voters = init.voters.length > 0 ? [...init.voters] : [...c.peers];
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum;
    this.preVote = c.preVote;
    this.readOnlyOption = c.readOnlyOption;
    this.maxMsgSize = c.maxSizePerMsg;
    this.maxInflight = c.maxInflightMsgs;
    this.random = c.random;
    this.unsafe = c.unsafe;
    this.loadHardState(init.hardState);
    if (this.readOnlyOption === ReadOnlyOption.LeaseBased && (this.term > 0 || this.log.lastIndex() > 0)) {
      this.votingDelay = this.electionTimeout;
    }
    if (c.applied > 0) {
      const applied = Math.max(c.applied, this.log.applied);
      if (applied > this.log.committed) {
        throw new RmqError(
          ErrorCode.RaftInvariantViolated,
          `applied ${c.applied} is beyond the persisted commit index ${this.log.committed}`,
        );
      }
      this.log.applied = applied;
    }
    this.becomeFollower(this.term, "");
  }

  private loadHardState(hs: HardState): void {
    // A lazily written commit may lag behind the snapshot; never go below it.
    const commit = Math.max(hs.commit, this.log.committed);
    if (commit > this.log.lastIndex()) {
      throw new RmqError(
        ErrorCode.RaftInvariantViolated,
        `persisted commit ${hs.commit} is beyond the last persisted index ${this.log.lastIndex()}`,
      );
    }
    this.log.committed = commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // ---- sending ----

  private send(m: Message): void {
    this.msgs.push(m);
  }

  private msg(type: MessageTypeT, to: NodeId): Message {
    return newMessage(type, this.id, to, this.term);
  }

  /** Pass a local request (proposal, read, transfer) on to the leader, keeping its origin. */
  private forward(m: Message, to: NodeId): void {
    const keepTerm = m.type === MessageType.TransferLeader ? this.term : 0;
    this.send({ ...m, to, term: keepTerm });
  }

  // ---- role transitions ----

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = "";
    }
    this.lead = "";
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + Math.floor(this.random() * this.electionTimeout);
    this.leadTransferee = "";
    this.votes = new Map();
    const last = this.log.lastIndex();
    this.progress = new Map();
    for (const id of this.voters) {
      const pr = new Progress(last + 1, this.maxInflight);
      if (id === this.id) pr.match = last;
      this.progress.set(id, pr);
    }
    this.readOnly = new ReadOnlyQueue();
    this.pendingReadIndex = [];
  }

  becomeFollower(term: number, lead: NodeId | ""): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomePreCandidate(): void {
    // Neither the term nor the vote changes: a pre-election cannot disrupt anyone.
    this.votes = new Map();
    this.lead = "";
    this.state = StateType.PreCandidate;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // An entry of the new term: committing it commits everything before it (§5.4.2).
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Noop, data: new Uint8Array(0) }]);
  }

  /** May this node campaign? A voter with no snapshot waiting to be persisted. */
  promotable(): boolean {
    return this.voters.includes(this.id) && this.log.unstable.snapshot === undefined;
  }

  // ---- ticks ----

  tick(): void {
    this.ticks++;
    if (this.votingDelay > 0) this.votingDelay--;
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.checkQuorumActive();
      if (this.state === StateType.Leader && this.leadTransferee !== "") this.leadTransferee = "";
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat();
    }
  }

  /** CheckQuorum: step down unless a quorum was heard from during the last election timeout. */
  private checkQuorumActive(): void {
    let active = 0;
    for (const id of this.voters) {
      const pr = this.progress.get(id);
      if (id === this.id || pr?.recentActive === true) active++;
    }
    if (active < quorumSize(this.voters.length)) this.becomeFollower(this.term, "");
    for (const [id, pr] of this.progress) if (id !== this.id) pr.recentActive = false;
  }

  // ---- elections ----

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) return;
    if (!this.promotable()) return;
    this.campaign(t);
  }

  private campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageTypeT;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter cluster wins at once.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters) {
      if (id === this.id) continue;
      const m = newMessage(voteMsg, this.id, id, term);
      m.index = lastIndex;
      m.logTerm = lastTerm;
      if (t === CampaignType.Transfer) m.context = CAMPAIGN_TRANSFER_CONTEXT;
      this.send(m);
    }
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return tallyVotes(this.voters, this.votes);
  }

  // ---- step ----

  /**
   * Process one message. Returns false when a local request (proposal, read) had to be dropped
   * because there is no leader to take it (or a leader transfer is in progress).
   */
  step(m: Message): boolean {
    if (m.term === 0) {
      // local message, or a forwarded proposal / read
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isCampaignTransfer(m.context);
        const inLease =
          this.checkQuorum &&
          ((this.lead !== "" && this.electionElapsed < this.electionTimeout) || this.votingDelay > 0);
        // Heard from a leader within the minimum election timeout: do not update the term or
        // vote, so a partitioned node coming back cannot depose a healthy leader (§6 of the thesis).
        if (!force && inLease) return true;
      }
      if (m.type === MessageType.PreVote) {
        // Never change term because of a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we will campaign in; counted below.
      } else if (
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, "");
      }
    } else if (m.term < this.term) {
      if (
        (this.checkQuorum || this.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (or one cut off while we moved on): tell it our term so it steps down.
        this.send(this.msg(MessageType.AppResp, m.from));
      } else if (m.type === MessageType.PreVote) {
        const r = this.msg(MessageType.PreVoteResp, m.from);
        r.reject = true;
        this.send(r);
      }
      return true;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        return true;
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return true;
      default:
        if (this.state === StateType.Leader) return this.stepLeader(m);
        if (this.state === StateType.Follower) return this.stepFollower(m);
        return this.stepCandidate(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === "" && this.lead === "") ||
      (m.type === MessageType.PreVote && m.term > this.term) ||
      (this.unsafe.voteTwicePerTerm === true && m.type === MessageType.Vote);
    const upToDate = this.unsafe.skipLogUpToDateCheck === true || this.log.isUpToDate(m.index, m.logTerm);
    if (canVote && upToDate) {
      // Answer with the request's term: for a pre-vote it is ahead of ours, and the candidate
      // ignores answers from older terms.
      this.send(newMessage(voteRespType(m.type), this.id, m.from, m.term));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      const r = this.msg(voteRespType(m.type), m.from);
      r.reject = true;
      this.send(r);
    }
  }

  private stepLeader(m: Message): boolean {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return true;
      case MessageType.Propose:
        if (this.leadTransferee !== "" || !this.progress.has(this.id)) return false;
        this.appendEntries(m.entries);
        this.bcastAppend();
        return true;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return true;
      default:
        break;
    }
    const pr = this.progress.get(m.from);
    if (pr === undefined) return true;
    switch (m.type) {
      case MessageType.AppResp:
        this.handleAppResp(m, pr);
        break;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Also recovers a follower whose appends were all lost (full inflights): sends one, maybe empty.
        if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (m.context === undefined) break;
        {
          const { seq, tick } = decodeHeartbeatContext(m.context);
          if (tick !== undefined && tick > pr.leaseAckTick) pr.leaseAckTick = tick;
          if (seq > 0) {
            this.readOnly.recvAck(m.from, seq);
            for (const rs of this.readOnly.advance(this.voters)) this.respondToReadIndex(rs.req, rs.index);
          }
        }
        break;
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) break;
        if (m.reject) pr.pendingSnapshot = 0;
        pr.becomeProbe();
        // Wait for the next heartbeat response before probing again.
        pr.msgAppFlowPaused = true;
        break;
      case MessageType.Unreachable:
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        break;
      case MessageType.TransferLeader:
        this.handleTransferLeader(m.from, pr);
        break;
      default:
        break;
    }
    return true;
  }

  private handleAppResp(m: Message, pr: Progress): void {
    pr.recentActive = true;
    if (m.reject) {
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    if (!(pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe))) return;
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.log.firstIndex()) {
      // The follower caught up (the snapshot, or another path, brought it past our compaction).
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === ProgressState.Replicate) {
      pr.inflights.freeLE(m.index);
    }
    if (this.maybeCommit()) {
      this.releasePendingReadIndex();
      this.bcastCommit();
    } else if (m.from !== this.id && pr.canBumpCommit(this.log.committed)) {
      this.sendAppend(m.from);
    }
    while (this.maybeSendAppend(m.from, false)) {
      // keep the pipeline full
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.send(this.msg(MessageType.TimeoutNow, m.from));
    }
  }

  private handleTransferLeader(transferee: NodeId, pr: Progress): void {
    if (this.leadTransferee !== "") {
      if (this.leadTransferee === transferee) return;
      this.leadTransferee = "";
    }
    if (transferee === this.id) return;
    this.electionElapsed = 0;
    this.leadTransferee = transferee;
    if (pr.match === this.log.lastIndex()) this.send(this.msg(MessageType.TimeoutNow, transferee));
    else this.sendAppend(transferee);
  }

  private stepCandidate(m: Message): boolean {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Propose:
      case MessageType.ReadIndex:
        return false;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return true;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return true;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return true;
      case myVoteResp: {
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (res === VoteResult.Lost) {
          this.becomeFollower(this.term, "");
        }
        return true;
      }
      default:
        return true;
    }
  }

  private stepFollower(m: Message): boolean {
    switch (m.type) {
      case MessageType.Propose:
      case MessageType.ReadIndex:
        if (this.lead === "") return false;
        this.forward(m, this.lead);
        return true;
      case MessageType.TransferLeader:
        if (this.lead === "") return false;
        this.forward(m, this.lead);
        return true;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return true;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return true;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return true;
      case MessageType.TimeoutNow:
        // The leader asks us to take over now: skip the pre-vote and override the lease.
        this.hup(CampaignType.Transfer);
        return true;
      case MessageType.ReadIndexResp:
        this.readStates.push({ index: m.index, context: m.context ?? new Uint8Array(0) });
        return true;
      default:
        return true;
    }
  }

  // ---- replication ----

  /** Leader: give entries the current term and the next indexes, append, count our own copy. */
  private appendEntries(es: readonly Entry[]): void {
    let li = this.log.lastIndex();
    const ents: Entry[] = new Array(es.length);
    for (let i = 0; i < es.length; i++) {
      const e = es[i] as Entry;
      ents[i] = { term: this.term, index: ++li, type: e.type, data: e.data };
    }
    li = this.log.append(ents);
    this.progress.get(this.id)?.maybeUpdate(li);
    // A single-voter cluster commits at once; otherwise a no-op.
    if (this.maybeCommit()) this.releasePendingReadIndex();
  }

  private maybeCommit(): boolean {
    const mci = majorityIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0, this.scratch);
    return this.log.maybeCommit(mci, this.term, this.unsafe.commitPreviousTermEntries === true);
  }

  private bcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  /** After the commit index moved: tell every follower that can use it (with entries if any). */
  private bcastCommit(): void {
    const committed = this.log.committed;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      if (!this.maybeSendAppend(id, false) && pr.canBumpCommit(committed)) this.maybeSendAppend(id, true);
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Send the next append to `to` if its flow control allows. With sendIfEmpty=false nothing is sent
   * when there are no new entries. Falls back to a snapshot when the entries are compacted.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.maybeSendSnapshot(to, pr);
    let ents: Entry[] = [];
    // A throttled Replicate follower gets only empty appends (they carry commit, and their answer
    // frees the window if the earlier appends were lost).
    if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
      ents = this.log.entriesFrom(pr.next, this.maxMsgSize);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    const m = this.msg(MessageType.App, to);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = ents;
    m.commit = this.log.committed;
    this.send(m);
    pr.sentEntries(ents.length);
    pr.sentCommit = this.log.committed;
    return true;
  }

  private maybeSendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    let snap: Snapshot;
    try {
      snap = this.log.snapshot();
    } catch (e) {
      if (e instanceof RmqError && e.code === ErrorCode.RaftSnapshotTemporarilyUnavailable) return false;
      throw e;
    }
    if (snap.metadata.index === 0) {
      throw new RmqError(ErrorCode.RaftInvariantViolated, `need a snapshot for ${to} but storage has none`);
    }
    pr.becomeSnapshot(snap.metadata.index);
    const m = this.msg(MessageType.Snap, to);
    m.snapshot = snap;
    this.send(m);
    return true;
  }

  private bcastHeartbeat(): void {
    const seq = this.readOnly.newestSeq();
    const lease = this.readOnlyOption === ReadOnlyOption.LeaseBased;
    const ctx = seq > 0 || lease ? encodeHeartbeatContext(seq, lease ? this.ticks : undefined) : undefined;
    for (const [id, pr] of this.progress) {
      if (id === this.id) continue;
      const m = this.msg(MessageType.Heartbeat, id);
      // Never claim commit beyond what the follower is known to hold.
      m.commit = Math.min(pr.match, this.log.committed);
      pr.sentCommit = Math.max(pr.sentCommit, m.commit);
      if (ctx !== undefined) m.context = ctx;
      this.send(m);
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      const r = this.msg(MessageType.AppResp, m.from);
      r.index = this.log.committed;
      this.send(r);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    const r = this.msg(MessageType.AppResp, m.from);
    if (lastNew !== undefined) {
      r.index = lastNew;
    } else {
      // Fast backtracking: point the leader at our last entry that can possibly match.
      const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      r.index = m.index;
      r.reject = true;
      r.rejectHint = hint.index;
      r.logTerm = hint.term;
    }
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(m.commit);
    const r = this.msg(MessageType.HeartbeatResp, m.from);
    if (m.context !== undefined) r.context = m.context;
    this.send(r);
  }

  private handleSnapshot(m: Message): void {
    const r = this.msg(MessageType.AppResp, m.from);
    r.index =
      m.snapshot !== undefined && this.restore(m.snapshot) ? this.log.lastIndex() : this.log.committed;
    this.send(r);
  }

  /** Install a leader's snapshot. False if it is not newer than what we know is committed. */
  private restore(s: Snapshot): boolean {
    const { index, term, voters } = s.metadata;
    if (index <= this.log.committed) return false;
    if (this.state !== StateType.Follower) {
      this.becomeFollower(this.term + 1, "");
      return false;
    }
    if (!voters.includes(this.id)) return false;
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(s);
    this.voters = [...voters];
    const last = this.log.lastIndex();
    this.progress = new Map();
    for (const id of this.voters) this.progress.set(id, new Progress(last + 1, this.maxInflight));
    return true;
  }

  // ---- reads ----

  private committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  private leaderReadIndex(m: Message): void {
    if (this.unsafe.readIndexWithoutQuorum === true || this.voters.length === 1) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    // Until an entry of this term commits, our commit index may lag the previous leader's.
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndex.push(m);
      return;
    }
    this.readIndexConfirm(m);
  }

  private readIndexConfirm(m: Message): void {
    if (this.readOnlyOption === ReadOnlyOption.LeaseBased && this.holdsLease()) {
      this.respondToReadIndex(m, this.log.committed);
      return;
    }
    this.readOnly.add(m, this.log.committed);
    this.readOnly.recvAck(this.id, this.readOnly.newestSeq());
    this.bcastHeartbeat();
  }

  /**
   * LeaseBased: a quorum acknowledged heartbeats sent at or after tick t, so no other leader can be
   * elected before t + electionTimeout (their vote lease); keep a guard. Not during a transfer
   * (the transferee campaigns through the lease).
   */
  private holdsLease(): boolean {
    if (this.unsafe.leaseReadsWhileLeader === true) return true;
    if (this.leadTransferee !== "") return false;
    const n = this.voters.length;
    const acks = this.scratch;
    acks.length = n;
    for (let i = 0; i < n; i++) {
      const id = this.voters[i] as NodeId;
      acks[i] = id === this.id ? this.ticks : (this.progress.get(id)?.leaseAckTick ?? -1);
    }
    acks.sort((a, b) => b - a);
    const quorumTick = acks[quorumSize(n) - 1] as number;
    return quorumTick >= 0 && this.ticks < quorumTick + this.electionTimeout - LEASE_GUARD_TICKS;
  }

  private releasePendingReadIndex(): void {
    if (this.pendingReadIndex.length === 0 || !this.committedEntryInCurrentTerm()) return;
    const waiting = this.pendingReadIndex;
    this.pendingReadIndex = [];
    for (const m of waiting) this.readIndexConfirm(m);
  }

  private respondToReadIndex(req: Message, index: number): void {
    if (req.from === this.id) {
      this.readStates.push({ index, context: req.context ?? new Uint8Array(0) });
      return;
    }
    const r = this.msg(MessageType.ReadIndexResp, req.from);
    r.index = index;
    if (req.context !== undefined) r.context = req.context;
    this.send(r);
  }
}
