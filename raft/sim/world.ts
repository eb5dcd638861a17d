// What the simulator's parts share: the scheduler, the seeded PRNG, the trace, the checkers and
// the run's parameters (all derived from one seed).

import type { UnsafeFlags } from "../core/config.ts";
import type { ReadOnlyOption } from "../core/read-only.ts";
import type { NodeId } from "../types.ts";
import type { SimClients } from "./clients.ts";
import type { EventQueue } from "./event-queue.ts";
import type { SimNetwork } from "./network.ts";
import type { Prng } from "./prng.ts";
import type { SafetyChecker } from "./safety-checker.ts";
import type { SimNode } from "./sim-node.ts";
import type { Trace } from "./trace.ts";

export interface SimParams {
  nodeIds: NodeId[];
  tickMs: number;
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  readOnlyOption: ReadOnlyOption;
  preVote: boolean;
  checkQuorum: boolean;
  /** Network during chaos phases. */
  dropRate: number;
  dupRate: number;
  /** Probability that a message takes the long path (reordering). */
  reorderRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  longDelayMs: number;
  /** Time between ready() and the end of its fsync. */
  diskMinMs: number;
  diskMaxMs: number;
  /** Mean time between faults during chaos phases. */
  faultEveryMs: number;
  /**
   * Chance that a leader elected during chaos is crashed or cut off within a few ms (a targeted
   * fault, in the spirit of FoundationDB's BUGGIFY: it makes Figure-8-like histories likely).
   */
  leaderChurn: number;
  /** Weights of fault kinds: crash, partition. */
  crashWeight: number;
  partitionWeight: number;
  snapshotEveryMs: number;
  /** Entries kept behind a snapshot when compacting. */
  snapshotKeep: number;
  clients: number;
  keys: string[];
  clientTimeoutMs: number;
  thinkMaxMs: number;
  unsafe: UnsafeFlags;
  unsafeSendBeforeSync: boolean;
}

export interface SimWorld {
  readonly queue: EventQueue;
  readonly prng: Prng;
  readonly trace: Trace;
  readonly checker: SafetyChecker;
  readonly params: SimParams;
  readonly nodes: Map<NodeId, SimNode>;
  readonly network: SimNetwork;
  readonly clients: SimClients;
  nodeIndex(id: NodeId): number;
  /** Called when a node starts acting as leader. */
  onLeaderElected(node: SimNode): void;
}
