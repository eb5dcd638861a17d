// Linearizable reads (Raft thesis §6.4).
//
// ReadIndex: the leader records its commit index for each read, then proves it is still leader
// with one heartbeat round; once a quorum has answered a heartbeat sent after the read arrived, the
// read may be served at that index. Reads are numbered in arrival order; heartbeats carry the
// number of the newest read and followers echo it back. When a quorum has echoed n, every read
// numbered <= n is confirmed.
//
// LeaseBased: heartbeats also carry the leader's tick count; followers echo it. A follower that
// heard from the leader refuses to vote for anyone else for an election timeout (the CheckQuorum
// lease), so while a quorum acknowledged a heartbeat sent at tick t, no other leader can exist
// before t + electionTimeout (minus a guard for tick granularity and clock rate differences): the
// leader serves reads at once. Outside its lease it falls back to a ReadIndex round.
//
// Heartbeat context layout: 8 bytes read number (0: none), then, in LeaseBased mode, 8 bytes
// send tick; little endian.

import type { Message, NodeId } from "../types.ts";
import { quorumSize } from "./quorum.ts";

export const ReadOnlyOption = {
  /** Confirm leadership with a heartbeat round for every batch of reads (default). */
  ReadIndex: "ReadIndex",
  /**
   * Serve at the commit index while the leader holds its lease (see above): no round trip per
   * read. Correct only while tick rates of the nodes differ by less than the lease guard.
   * Requires checkQuorum.
   */
  LeaseBased: "LeaseBased",
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

export interface ReadIndexRequest {
  /** The ReadIndex message (from a follower, or local with from === self). */
  req: Message;
  /** Commit index when the read arrived. */
  index: number;
  seq: number;
}

export class ReadOnlyQueue {
  private pending: ReadIndexRequest[] = [];
  private nextSeq = 1;
  private confirmed = 0;
  private readonly acks = new Map<NodeId, number>();
  private readonly scratch: number[] = [];

  get size(): number {
    return this.pending.length;
  }

  add(req: Message, index: number): void {
    this.pending.push({ req, index, seq: this.nextSeq++ });
  }

  /** Number of the newest read waiting for confirmation, 0 when none. */
  newestSeq(): number {
    const last = this.pending[this.pending.length - 1];
    return last === undefined ? 0 : last.seq;
  }

  recvAck(from: NodeId, seq: number): void {
    if (seq > (this.acks.get(from) ?? 0)) this.acks.set(from, seq);
  }

  /** Reads confirmed by a quorum of acks, in arrival order (removed from the queue). */
  advance(voters: readonly NodeId[]): ReadIndexRequest[] {
    const n = voters.length;
    this.scratch.length = n;
    for (let i = 0; i < n; i++) this.scratch[i] = this.acks.get(voters[i] as NodeId) ?? 0;
    this.scratch.sort((a, b) => b - a);
    const quorumSeq = this.scratch[quorumSize(n) - 1] ?? 0;
    if (quorumSeq <= this.confirmed) return [];
    this.confirmed = quorumSeq;
    let k = 0;
    while (k < this.pending.length && (this.pending[k] as ReadIndexRequest).seq <= quorumSeq) k++;
    if (k === 0) return [];
    const done = this.pending.slice(0, k);
    this.pending = this.pending.slice(k);
    return done;
  }
}

/** Heartbeat context: the newest read number and, for leases, the send tick. */
export function encodeHeartbeatContext(seq: number, tick: number | undefined): Uint8Array {
  const b = new Uint8Array(tick === undefined ? 8 : 16);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(seq), true);
  if (tick !== undefined) v.setBigUint64(8, BigInt(tick), true);
  return b;
}

export function decodeHeartbeatContext(b: Uint8Array | undefined): { seq: number; tick: number | undefined } {
  if (b === undefined || b.byteLength < 8) return { seq: 0, tick: undefined };
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const seq = Number(v.getBigUint64(0, true));
  const tick = b.byteLength >= 16 ? Number(v.getBigUint64(8, true)) : undefined;
  return { seq, tick };
}
