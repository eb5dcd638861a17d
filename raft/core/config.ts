// Configuration of one Raft node, with defaults and validation.

import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { RaftLogStorage } from "../storage.ts";
import type { NodeId } from "../types.ts";
import { ReadOnlyOption } from "./read-only.ts";

/** Ticks without hearing from a leader before a follower campaigns (etcd-io/raft users: 10). */
export const DEFAULT_ELECTION_TICK = 10;
/** Ticks between leader heartbeats (etcd-io/raft users: 1). */
export const DEFAULT_HEARTBEAT_TICK = 1;
/** Upper bound on the entry bytes in one MsgApp (etcd server: 1 MiB). */
export const DEFAULT_MAX_SIZE_PER_MSG = 1024 * 1024;
/** Appends in flight per follower in Replicate state (etcd server: 512; etcd examples: 256). */
export const DEFAULT_MAX_INFLIGHT_MSGS = 256;

/**
 * Deliberately broken behaviours, ONLY for proving that the simulator's checkers catch bugs
 * (raft/sim/sim.test.ts). Never set outside tests.
 */
export interface UnsafeFlags {
  /** Grant (pre)votes without the §5.4.1 "candidate's log is at least as up to date" check. */
  skipLogUpToDateCheck?: boolean;
  /** Commit any index a quorum stores, including entries of earlier terms (Figure 8 bug). */
  commitPreviousTermEntries?: boolean;
  /** Grant a vote to every candidate, even after voting for another one in the same term. */
  voteTwicePerTerm?: boolean;
  /** Answer ReadIndex at once with the local commit index: no heartbeat round, no current-term commit. */
  readIndexWithoutQuorum?: boolean;
  /**
   * LeaseBased reads served whenever this node believes it leads (CheckQuorum only), with no time
   * bound on the lease — etcd-io/raft's LeaseBased semantics, which the simulator shows unsafe.
   */
  leaseReadsWhileLeader?: boolean;
}

export interface RawNodeConfig {
  id: NodeId;
  /** Voters (including this node). Used when storage knows no voters yet (a fresh log). */
  peers: NodeId[];
  electionTick?: number;
  heartbeatTick?: number;
  storage: RaftLogStorage;
  /** Last index applied to the state machine (after a restart: the index of the snapshot restored). */
  applied?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  /** Upper bound on the committed-entry bytes in one Ready (default: maxSizePerMsg). */
  maxCommittedSizePerReady?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** Uniform in [0, 1). Inject a seeded PRNG; the only source of randomness in the core. */
  random: () => number;
  unsafe?: UnsafeFlags;
}

export interface ResolvedConfig {
  id: NodeId;
  peers: NodeId[];
  electionTick: number;
  heartbeatTick: number;
  storage: RaftLogStorage;
  applied: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  maxCommittedSizePerReady: number;
  preVote: boolean;
  checkQuorum: boolean;
  readOnlyOption: ReadOnlyOption;
  random: () => number;
  unsafe: UnsafeFlags;
}

export function resolveConfig(c: RawNodeConfig): ResolvedConfig {
  const electionTick = c.electionTick ?? DEFAULT_ELECTION_TICK;
  const heartbeatTick = c.heartbeatTick ?? DEFAULT_HEARTBEAT_TICK;
  const maxSizePerMsg = c.maxSizePerMsg ?? DEFAULT_MAX_SIZE_PER_MSG;
  const r: ResolvedConfig = {
    id: c.id,
    peers: [...c.peers],
    electionTick,
    heartbeatTick,
    storage: c.storage,
    applied: c.applied ?? 0,
    maxSizePerMsg,
    maxInflightMsgs: c.maxInflightMsgs ?? DEFAULT_MAX_INFLIGHT_MSGS,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady ?? maxSizePerMsg,
    preVote: c.preVote ?? true,
    checkQuorum: c.checkQuorum ?? true,
    readOnlyOption: c.readOnlyOption ?? ReadOnlyOption.ReadIndex,
    random: c.random,
    unsafe: { ...c.unsafe },
  };
  const bad = (key: string, why: string): never => {
    throw new RmqError(ErrorCode.IllegalConfig, `raft config ${key}: ${why}`);
  };
  if (r.id === "") bad("id", "must not be empty");
  if (!Number.isInteger(r.heartbeatTick) || r.heartbeatTick <= 0)
    bad("heartbeatTick", "must be an integer > 0");
  if (!Number.isInteger(r.electionTick) || r.electionTick <= r.heartbeatTick) {
    bad("electionTick", "must be an integer > heartbeatTick");
  }
  if (!Number.isInteger(r.maxInflightMsgs) || r.maxInflightMsgs <= 0) bad("maxInflightMsgs", "must be > 0");
  if (!(r.maxSizePerMsg > 0)) bad("maxSizePerMsg", "must be > 0");
  if (!(r.maxCommittedSizePerReady > 0)) bad("maxCommittedSizePerReady", "must be > 0");
  if (!Number.isInteger(r.applied) || r.applied < 0) bad("applied", "must be an integer >= 0");
  if (r.readOnlyOption === ReadOnlyOption.LeaseBased && !r.checkQuorum) {
    bad("readOnlyOption", "LeaseBased requires checkQuorum=true");
  }
  if (new Set(r.peers).size !== r.peers.length) bad("peers", "must not contain duplicates");
  return r;
}
