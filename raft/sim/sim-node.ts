// One simulated server: a RawNode, its "disk" (a MemoryStorage that survives crashes), the KV
// state machine, and the Ready loop with a simulated fsync delay:
//
//   ready() ──(disk delay)──► persist snapshot → entries → hardState, THEN send messages,
//                             apply, serve reads, advance()
//
// The core keeps stepping messages and ticking while a Ready is being persisted. A crash during
// that window models a torn write: a random prefix of the batch (snapshot, entries..., hardState)
// reaches the disk and nothing of it was sent — the guarantee the Ready contract gives.

import { ErrorCode, isRmqError } from "../../common/errors.ts";
import { createRawNode, type RawNode } from "../core/raw-node.ts";
import { MemoryStorage } from "../storage/memory-storage.ts";
import type { Message, NodeId, Ready } from "../types.ts";
import { EntryType, StateType } from "../types.ts";
import type { ClientOp } from "./clients.ts";
import { decodeCommand, encodeCommand, KvStateMachine } from "./kv.ts";
import { hashString } from "./trace.ts";
import type { SimWorld } from "./world.ts";

/** The client id reserved for the liveness probe's commands. */
export const PROBE_CLIENT = 0;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class SimNode {
  readonly id: NodeId;
  private readonly world: SimWorld;
  /** Survives crashes. */
  readonly disk = new MemoryStorage();
  raw: RawNode | undefined;
  kv = new KvStateMachine();
  incarnation = 0;
  private inflight: Ready | undefined;
  private sentEarly = false;
  private armedCrash: (() => void) | undefined;
  private readonly pendingWrites = new Map<string, ClientOp>();
  private readonly pendingReads = new Map<string, ClientOp>();
  private waitingReads: Array<{ index: number; op: ClientOp }> = [];
  /** Highest probe sequence applied here (liveness check). */
  probeApplied = 0;
  crashes = 0;
  tornWrites = 0;
  snapshotsTaken = 0;
  snapshotsInstalled = 0;

  constructor(world: SimWorld, id: NodeId) {
    this.world = world;
    this.id = id;
  }

  get up(): boolean {
    return this.raw !== undefined;
  }

  private get index(): number {
    return this.world.nodeIndex(this.id);
  }

  start(): void {
    const { params, prng, queue, trace } = this.world;
    const random = prng.fork();
    const snap = this.disk.snapshot();
    this.kv = KvStateMachine.decode(snap.data, snap.metadata.index);
    this.raw = createRawNode({
      id: this.id,
      peers: params.nodeIds,
      storage: this.disk,
      applied: snap.metadata.index,
      electionTick: params.electionTick,
      heartbeatTick: params.heartbeatTick,
      maxSizePerMsg: params.maxSizePerMsg,
      maxInflightMsgs: params.maxInflightMsgs,
      readOnlyOption: params.readOnlyOption,
      preVote: params.preVote,
      checkQuorum: params.checkQuorum,
      random: () => random.next(),
      unsafe: params.unsafe,
    });
    const inc = this.incarnation;
    trace.add(
      [3, queue.now, this.index, inc],
      () =>
        `${queue.now} start ${this.id} (incarnation ${inc}, disk last=${this.disk.lastIndex()} snap=${snap.metadata.index})`,
    );
    queue.after(prng.int(1, params.tickMs), () => this.tickLoop(inc));
  }

  private tickLoop(inc: number): void {
    if (this.incarnation !== inc || this.raw === undefined) return;
    this.raw.tick();
    this.pump();
    this.world.queue.after(this.world.params.tickMs, () => this.tickLoop(inc));
  }

  /** Crash now: lose memory; if a Ready is being persisted, only a random prefix of it survives. */
  crash(): void {
    if (this.raw === undefined) return;
    const { prng, queue, trace } = this.world;
    let kept = -1;
    const rd = this.inflight;
    if (rd !== undefined) {
      const parts =
        (rd.snapshot !== undefined ? 1 : 0) + rd.entries.length + (rd.hardState !== undefined ? 1 : 0);
      kept = prng.int(0, parts);
      if (kept < parts) this.tornWrites++;
      this.persist(rd, kept);
    }
    this.raw = undefined;
    this.inflight = undefined;
    this.armedCrash = undefined;
    this.incarnation++;
    this.crashes++;
    this.pendingWrites.clear();
    this.pendingReads.clear();
    this.waitingReads = [];
    trace.add(
      [4, queue.now, this.index, kept],
      () => `${queue.now} crash ${this.id}${kept >= 0 ? ` (in-flight write keeps ${kept} parts)` : ""}`,
    );
  }

  /**
   * Crash in the middle of the next disk write (now, if one is in flight): the torn-write case.
   * `onCrashed` runs right after the crash.
   */
  crashDuringWrite(onCrashed: () => void): void {
    if (this.raw === undefined) return;
    if (this.inflight !== undefined) {
      this.crash();
      onCrashed();
      return;
    }
    this.armedCrash = onCrashed;
  }

  disarmCrash(): void {
    this.armedCrash = undefined;
  }

  receive(m: Message): void {
    if (this.raw === undefined) return;
    this.raw.step(m);
    this.pump();
  }

  reportUnreachable(to: NodeId): void {
    if (this.raw === undefined) return;
    this.raw.reportUnreachable(to);
    this.pump();
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    if (this.raw === undefined) return;
    this.raw.reportSnapshot(to, ok);
    this.pump();
  }

  handleClientRequest(op: ClientOp): void {
    const raw = this.raw;
    if (raw === undefined) return; // lost: the client times out
    const { clients } = this.world;
    try {
      if (op.kind === "get") {
        const ctx = `r${op.id}`;
        raw.readIndex(encoder.encode(ctx));
        this.pendingReads.set(ctx, op);
      } else {
        raw.propose(
          encodeCommand({
            client: op.client,
            seq: op.seq,
            op: op.kind,
            key: op.key,
            value: op.value ?? "",
            expected: op.expected,
          }),
        );
        this.pendingWrites.set(`${op.client}:${op.seq}`, op);
      }
    } catch (e) {
      if (!isRmqError(e, ErrorCode.RaftProposalDropped)) throw e;
      clients.respond(op, { failed: true });
    }
    this.pump();
  }

  /** Propose a liveness probe; false if this node knows no leader. */
  proposeProbe(seq: number): boolean {
    const raw = this.raw;
    if (raw === undefined) return false;
    try {
      raw.propose(
        encodeCommand({
          client: PROBE_CLIENT,
          seq,
          op: "probe",
          key: "__probe",
          value: `${seq}`,
          expected: null,
        }),
      );
    } catch (e) {
      if (!isRmqError(e, ErrorCode.RaftProposalDropped)) throw e;
      return false;
    }
    this.pump();
    return true;
  }

  /** Take a snapshot of the applied state and compact the log behind it. */
  maybeSnapshot(): void {
    if (this.raw === undefined) return;
    const { params, queue, trace } = this.world;
    const applied = this.kv.appliedIndex;
    const snapIndex = this.disk.snapshot().metadata.index;
    if (applied <= snapIndex + 2) return;
    this.disk.createSnapshot(applied, params.nodeIds, this.kv.encode());
    const compactTo = applied - params.snapshotKeep;
    if (compactTo >= this.disk.firstIndex()) this.disk.compact(compactTo);
    this.snapshotsTaken++;
    trace.add(
      [5, queue.now, this.index, applied],
      () => `${queue.now} ${this.id} snapshot at ${applied}, compact to ${compactTo}`,
    );
  }

  /** Start handling the next Ready if none is in flight. */
  pump(): void {
    const raw = this.raw;
    if (raw === undefined || this.inflight !== undefined || !raw.hasReady()) return;
    const { queue, prng, params, checker } = this.world;
    const rd = raw.ready();
    this.inflight = rd;
    if (rd.softState?.state === StateType.Leader) {
      const st = raw.status();
      checker.onBecameLeader(this.id, st.term, st.firstIndex, (i) => raw.termAt(i));
      this.world.onLeaderElected(this);
    }
    if (rd.hardState !== undefined) {
      checker.onCommit(this.id, rd.hardState.commit, rd.hardState.term, (i) => raw.termAt(i));
    }
    this.sentEarly = params.unsafeSendBeforeSync;
    if (this.sentEarly) this.sendAll(rd);
    const inc = this.incarnation;
    const diskMs = prng.int(params.diskMinMs, params.diskMaxMs);
    const armed = this.armedCrash;
    if (armed !== undefined) {
      this.armedCrash = undefined;
      // Scheduled first: at equal times it runs before the write completes.
      queue.after(prng.int(0, diskMs), () => {
        if (this.incarnation !== inc) return;
        this.crash();
        armed();
      });
    }
    queue.after(diskMs, () => {
      if (this.incarnation === inc) this.complete(rd);
    });
  }

  private sendAll(rd: Ready): void {
    for (const m of rd.messages) this.world.network.send(m, this.incarnation);
  }

  private complete(rd: Ready): void {
    const raw = this.raw;
    if (raw === undefined) return;
    this.persist(rd, Number.POSITIVE_INFINITY);
    if (!this.sentEarly) this.sendAll(rd);
    this.apply(rd);
    raw.advance(rd);
    this.inflight = undefined;
    this.pump();
  }

  /** Write the first `parts` parts of the batch [snapshot?, ...entries, hardState?] to disk. */
  private persist(rd: Ready, parts: number): void {
    const { checker } = this.world;
    let left = parts;
    if (rd.snapshot !== undefined) {
      if (left <= 0) return;
      this.disk.applySnapshot(rd.snapshot);
      left--;
    }
    if (rd.entries.length > 0) {
      const n = Math.min(left, rd.entries.length);
      if (n <= 0) return;
      const written = n === rd.entries.length ? rd.entries : rd.entries.slice(0, n);
      this.disk.append(written);
      const first = this.disk.firstIndex();
      for (const e of written) {
        if (e.index < first) continue;
        checker.onPersistEntry(this.id, e, this.disk.term(e.index - 1));
      }
      left -= n;
      if (n < rd.entries.length) return;
    }
    if (rd.hardState !== undefined && left > 0) this.disk.setHardState(rd.hardState);
  }

  private apply(rd: Ready): void {
    const { checker, clients } = this.world;
    if (rd.snapshot !== undefined) {
      const s = rd.snapshot;
      this.kv = KvStateMachine.decode(s.data, s.metadata.index);
      this.snapshotsInstalled++;
      checker.onSnapshotInstalled(this.id, s.metadata.index, hashString(this.kv.canonical()));
    }
    for (const e of rd.committedEntries) {
      checker.onApplyOrder(this.id, e.index, this.kv.appliedIndex);
      if (e.type === EntryType.Noop || e.data.byteLength === 0) {
        this.kv.applyNoop(e.index);
      } else {
        const cmd = decodeCommand(e.data);
        const res = this.kv.apply(e.index, cmd);
        if (cmd.client === PROBE_CLIENT) {
          if (res.applied) this.probeApplied = Math.max(this.probeApplied, cmd.seq);
        } else {
          const key = `${cmd.client}:${cmd.seq}`;
          const op = this.pendingWrites.get(key);
          if (op !== undefined && res.applied) {
            this.pendingWrites.delete(key);
            clients.respond(op, { failed: false, ok: res.ok });
          }
        }
      }
      checker.onApply(this.id, e, hashString(this.kv.canonical()));
    }
    for (const rs of rd.readStates) {
      const ctx = decoder.decode(rs.context);
      const op = this.pendingReads.get(ctx);
      if (op === undefined) continue;
      this.pendingReads.delete(ctx);
      this.waitingReads.push({ index: rs.index, op });
    }
    if (this.waitingReads.length > 0) {
      const still: Array<{ index: number; op: ClientOp }> = [];
      for (const w of this.waitingReads) {
        if (w.index <= this.kv.appliedIndex)
          clients.respond(w.op, { failed: false, value: this.kv.get(w.op.key) });
        else still.push(w);
      }
      this.waitingReads = still;
    }
  }
}
