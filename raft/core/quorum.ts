// Majority-quorum arithmetic over a static voter set (pure functions).

import type { NodeId } from "../types.ts";

export const VoteResult = { Pending: "Pending", Won: "Won", Lost: "Lost" } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has reached: sort the per-voter indexes descending
 * and take the quorum-th. `scratch` is reused to avoid allocating on the commit path.
 */
export function majorityIndex(
  voters: readonly NodeId[],
  indexOf: (id: NodeId) => number,
  scratch: number[],
): number {
  const n = voters.length;
  if (n === 0) return Number.MAX_SAFE_INTEGER;
  scratch.length = n;
  for (let i = 0; i < n; i++) scratch[i] = indexOf(voters[i] as NodeId);
  scratch.sort((a, b) => b - a);
  return scratch[quorumSize(n) - 1] as number;
}

export function tallyVotes(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = quorumSize(voters.length);
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}
