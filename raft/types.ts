// Types shared by the pure Raft core (raft/core), its durable storage (raft/storage) and its
// transport (raft/transport). Modelled on etcd-io/raft: the core never does IO; the caller drives it
// with tick()/step(), takes a Ready, persists and sends what it says, then calls advance().

export type NodeId = string;

export const EntryType = { Normal: 0, Noop: 1 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  /** Opaque command bytes for the state machine (empty for Noop). */
  data: Uint8Array;
}

/** What must be on disk before a vote or an append is acknowledged. */
export interface HardState {
  term: number;
  vote: NodeId | "";
  commit: number;
}

export interface SnapshotMetadata {
  index: number;
  term: number;
  /** Voters at the snapshot's index. */
  voters: NodeId[];
}

export interface Snapshot {
  metadata: SnapshotMetadata;
  /** Serialized state machine at metadata.index. */
  data: Uint8Array;
}

export const MessageType = {
  Hup: "Hup", // local: start an election
  Beat: "Beat", // local: leader sends heartbeats
  Propose: "Propose", // local or forwarded: append entries
  PreVote: "PreVote",
  PreVoteResp: "PreVoteResp",
  Vote: "Vote",
  VoteResp: "VoteResp",
  App: "App",
  AppResp: "AppResp",
  Heartbeat: "Heartbeat",
  HeartbeatResp: "HeartbeatResp",
  Snap: "Snap",
  SnapStatus: "SnapStatus", // local: report of a snapshot send
  Unreachable: "Unreachable", // local: transport could not reach a peer
  ReadIndex: "ReadIndex",
  ReadIndexResp: "ReadIndexResp",
  TransferLeader: "TransferLeader",
  TimeoutNow: "TimeoutNow",
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: index of the entry before `entries`; AppResp: the index acknowledged or rejected. */
  index: number;
  /** App: term of the entry at `index`; Vote: last log term of the candidate. */
  logTerm: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp rejection hint: the follower's last index (fast backtracking). */
  rejectHint: number;
  snapshot?: Snapshot;
  /** ReadIndex request context (opaque to Raft, echoed back). */
  context?: Uint8Array;
}

export const StateType = {
  Follower: "Follower",
  PreCandidate: "PreCandidate",
  Candidate: "Candidate",
  Leader: "Leader",
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

export interface SoftState {
  lead: NodeId | "";
  state: StateType;
}

export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * One batch of work for the caller. Order of handling (as etcd-io/raft):
 * 1. persist hardState, entries and snapshot (fsync) — before sending `messages`
 *    (messages to self/peers may depend on them: votes and append acks);
 * 2. send `messages`;
 * 3. apply `committedEntries` (and `snapshot` if set) to the state machine;
 * 4. call advance().
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  readStates: ReadState[];
  /**
   * True when step 1 needs an fsync before step 2: new entries, a snapshot, or a term/vote change.
   * A HardState that differs only in `commit` may be written lazily (commit is recomputed on restart).
   */
  mustSync: boolean;
}
