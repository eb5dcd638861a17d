// Which broker becomes master (upstream DefaultElectPolicy). Pure: liveness comes in as a view.
//
// Candidates are the alive members of the SyncStateSet; only if none qualifies and unclean election
// is enabled, the alive members of the whole broker set. Within a candidate group:
//   1. the old master, if it is a candidate and no other broker is designated, stays;
//   2. a designated broker wins if it is a candidate, else nobody from this group;
//   3. otherwise the best by (epoch desc, maxOffset desc, electionPriority asc, brokerId asc).
// Step 3's last key makes the choice total and deterministic (upstream's TreeSet merges ties).

import { type BrokerLiveInfo, type BrokerLiveness, DEFAULT_ELECTION_PRIORITY } from "./broker-liveness.ts";

export interface ElectInput {
  clusterName: string;
  brokerName: string;
  syncStateSet: Iterable<number>;
  /** All registered brokers of the set when unclean election is enabled, else null. */
  allReplicas: Iterable<number> | null;
  oldMaster: number | null;
  /** The designated broker (admin re-elect with designateElect), else null. */
  preferBrokerId: number | null;
  liveness: BrokerLiveness;
}

interface Candidate {
  brokerId: number;
  epoch: number;
  maxOffset: number;
  electionPriority: number;
}

/** Orders candidates best first. */
export function compareCandidates(a: Candidate, b: Candidate): number {
  if (a.epoch !== b.epoch) return b.epoch - a.epoch;
  if (a.maxOffset !== b.maxOffset) return b.maxOffset > a.maxOffset ? 1 : -1;
  if (a.electionPriority !== b.electionPriority) return a.electionPriority < b.electionPriority ? -1 : 1;
  return a.brokerId - b.brokerId;
}

function toCandidate(brokerId: number, info: BrokerLiveInfo | undefined): Candidate {
  return {
    brokerId,
    epoch: info?.epoch ?? -1,
    maxOffset: info?.maxOffset ?? -1,
    electionPriority: info?.electionPriority ?? DEFAULT_ELECTION_PRIORITY,
  };
}

function tryElect(input: ElectInput, group: Iterable<number>): number | null {
  const { clusterName, brokerName, liveness, oldMaster, preferBrokerId } = input;
  const alive = [...new Set(group)].filter((id) => liveness.isAlive(clusterName, brokerName, id));
  if (alive.length === 0) return null;
  if (
    oldMaster !== null &&
    alive.includes(oldMaster) &&
    (preferBrokerId === null || preferBrokerId === oldMaster)
  ) {
    return oldMaster;
  }
  if (preferBrokerId !== null) return alive.includes(preferBrokerId) ? preferBrokerId : null;
  const ranked = alive.map((id) => toCandidate(id, liveness.liveInfo(clusterName, brokerName, id)));
  ranked.sort(compareCandidates);
  return (ranked[0] as Candidate).brokerId;
}

/** The broker to be master, or null if nobody qualifies. Returns `oldMaster` when it should stay. */
export function electMasterByPolicy(input: ElectInput): number | null {
  const fromSyncStateSet = tryElect(input, input.syncStateSet);
  if (fromSyncStateSet !== null) return fromSyncStateSet;
  return input.allReplicas === null ? null : tryElect(input, input.allReplicas);
}
