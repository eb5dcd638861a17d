// Raft messages between the nodes of one group, over our internal RPC (proto/rmq/raft/v1/raft.proto).
//
// Sending: one long-lived client stream per peer. Messages for a peer are queued and written as
// frames of many messages (raft/message-codec.ts), as fast as the stream takes them; a stream ends
// itself every STREAM_LIFETIME_MS and is reopened. When a stream fails (peer down, connection lost)
// the queued messages are dropped, the core is told the peer is Unreachable, and new messages to
// that peer are dropped for a short backoff (Raft retransmits what matters). A queue that grows past
// its bound (the peer stopped reading, e.g. SIGSTOP) drops the newest messages the same way.
// MsgSnap goes by a unary call instead, so its outcome can be reported to the core (reportSnapshot).
//
// Receiving: the RaftService handler decodes frames and hands the messages to `onMessages`. Frames of
// another group, or addressed to another node, are refused (a misconfigured peer list).

import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";
import { createRpcClient } from "../common/rpc-client.ts";
import {
  type RaftFrame,
  RaftFrameSchema,
  RaftService,
  SendSnapshotRequestSchema,
  type StreamRequest,
  StreamRequestSchema,
  type StreamResponse,
} from "../proto/gen/rmq/raft/v1/raft_pb.ts";
import { decodeRaftMessages, encodeRaftMessages, raftMessageBytes } from "./message-codec.ts";
import { type Message, MessageType, type NodeId } from "./types.ts";

/** A stream is closed cleanly and reopened after this long (keeps deadlines finite). */
export const STREAM_LIFETIME_MS = 5 * 60_000;
/** Deadline of one stream call; above the lifetime so that a healthy stream never hits it. */
const STREAM_DEADLINE_MS = STREAM_LIFETIME_MS + 60_000;
/** Bytes of messages in one frame (the server accepts up to its readMaxBytes). */
export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Messages queued for one peer before new ones are dropped. */
export const DEFAULT_MAX_QUEUED_MESSAGES = 8192;
/** Drop window after a failed stream, doubling up to the max. */
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 1000;
/** A stream that has not taken a queued frame for this long is cut and reopened. */
const STALL_TIMEOUT_MS = 3000;
/** Deadline of a SendSnapshot call. */
const SNAPSHOT_TIMEOUT_MS = 30_000;

export interface RaftTransportOptions {
  /** Raft group name (controllerDLegerGroup); both ends must agree. */
  group: string;
  selfId: NodeId;
  /** Every voter's id → "host:port" (this node may be included; it is skipped). */
  peers: ReadonlyMap<NodeId, string>;
  /** Inbound messages, in arrival order per peer. */
  onMessages: (messages: Message[]) => void;
  onUnreachable: (peer: NodeId) => void;
  onSnapshotStatus: (peer: NodeId, ok: boolean) => void;
  logger?: Logger;
  maxFrameBytes?: number;
  maxQueuedMessages?: number;
}

export interface RaftTransportStats {
  framesSent: number;
  messagesSent: number;
  messagesDropped: number;
  framesReceived: number;
  messagesReceived: number;
  streamFailures: number;
}

export interface RaftTransport {
  /** Queues messages for their peers. Never throws, never blocks. */
  send(messages: readonly Message[]): void;
  /** Installs the RaftService handlers on the node's RPC server. */
  routes(router: ConnectRouter): void;
  readonly stats: RaftTransportStats;
  /** Ends the outbound streams. */
  close(): Promise<void>;
}

class PeerSender {
  private readonly t: Transport;
  readonly id: NodeId;
  private readonly address: string;
  private readonly client;
  private queue: Message[] = [];
  private streaming = false;
  private wake: (() => void) | undefined;
  private dropUntil = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private closed = false;
  private current: Promise<void> | undefined;
  private abort: AbortController | undefined;
  /** When the stream last asked for the next frame. */
  private lastPull = 0;

  constructor(t: Transport, id: NodeId, address: string) {
    this.t = t;
    this.id = id;
    this.address = address;
    this.client = createRpcClient(RaftService, address, { timeoutMs: STREAM_DEADLINE_MS });
  }

  enqueue(messages: Message[]): void {
    if (this.closed) return;
    const stats = this.t.stats;
    if (Date.now() < this.dropUntil) {
      stats.messagesDropped += messages.length;
      this.t.opts.onUnreachable(this.id);
      // The core waits for the outcome of every MsgSnap it emits.
      for (const m of messages) if (m.type === MessageType.Snap) this.t.opts.onSnapshotStatus(this.id, false);
      return;
    }
    for (const m of messages) {
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(m);
        continue;
      }
      if (this.queue.length >= this.t.maxQueued) {
        stats.messagesDropped++;
        this.t.opts.onUnreachable(this.id);
        continue;
      }
      this.queue.push(m);
    }
    if (this.queue.length === 0) return;
    if (!this.streaming) this.open();
    else this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private open(): void {
    this.streaming = true;
    const abort = new AbortController();
    this.abort = abort;
    this.lastPull = Date.now();
    this.current = this.run(abort).finally(() => {
      abort.abort();
      this.wakeUp();
      this.streaming = false;
      this.abort = undefined;
      this.current = undefined;
      if (!this.closed && this.queue.length > 0 && Date.now() >= this.dropUntil) this.open();
    });
  }

  private async run(abort: AbortController): Promise<void> {
    try {
      // The receiver never answers; the response stream only ends (or fails) when the stream does.
      for await (const _ of this.client.stream(this.frames(abort.signal), { signal: abort.signal })) {
        // nothing is sent back
      }
      if (this.closed || abort.signal.aborted) return;
      this.backoffMs = BACKOFF_MIN_MS;
    } catch (e) {
      if (this.closed) return;
      this.failed(e);
    }
  }

  /** Aborts a stream whose writes have not drained for STALL_TIMEOUT_MS (the peer stopped reading). */
  checkStalled(now: number): void {
    if (this.abort === undefined || this.queue.length === 0) return;
    if (now - this.lastPull < STALL_TIMEOUT_MS) return;
    this.t.log.debug({ peer: this.id }, "raft stream to peer stalled; reconnecting");
    this.abort.abort(new RmqError(ErrorCode.RpcTimeout, `raft stream to ${this.id} stalled`));
  }

  private failed(e: unknown): void {
    const stats = this.t.stats;
    stats.streamFailures++;
    stats.messagesDropped += this.queue.length;
    this.queue = [];
    this.dropUntil = Date.now() + this.backoffMs;
    this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
    this.t.log.debug({ peer: this.id, address: this.address, err: String(e) }, "raft stream to peer failed");
    this.t.opts.onUnreachable(this.id);
  }

  private async *frames(signal: AbortSignal): AsyncGenerator<StreamRequest> {
    const started = Date.now();
    while (!this.closed && !signal.aborted) {
      this.lastPull = Date.now();
      if (this.queue.length === 0) {
        if (Date.now() - started >= STREAM_LIFETIME_MS) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        continue;
      }
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length) {
        const size = raftMessageBytes(this.queue[n] as Message);
        if (n > 0 && bytes + size > this.t.maxFrameBytes) break;
        bytes += size;
        n++;
      }
      const batch = this.queue.length === n ? this.queue : this.queue.slice(0, n);
      this.queue = this.queue.length === n ? [] : this.queue.slice(n);
      this.t.stats.framesSent++;
      this.t.stats.messagesSent += batch.length;
      yield create(StreamRequestSchema, { frame: this.t.frame(this.id, encodeRaftMessages(batch)) });
    }
  }

  private sendSnapshot(m: Message): void {
    const req = create(SendSnapshotRequestSchema, { frame: this.t.frame(this.id, encodeRaftMessages([m])) });
    this.client.sendSnapshot(req, { timeoutMs: SNAPSHOT_TIMEOUT_MS }).then(
      () => this.t.opts.onSnapshotStatus(this.id, true),
      (e: unknown) => {
        this.t.log.warn({ peer: this.id, err: String(e) }, "sending a snapshot to peer failed");
        this.t.opts.onSnapshotStatus(this.id, false);
        this.t.opts.onUnreachable(this.id);
      },
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.wakeUp();
    this.abort?.abort();
    await this.current;
  }
}

class Transport implements RaftTransport {
  readonly opts: RaftTransportOptions;
  readonly log: Logger;
  readonly maxFrameBytes: number;
  readonly maxQueued: number;
  private readonly senders = new Map<NodeId, PeerSender>();
  private readonly watchdog: NodeJS.Timeout;
  readonly stats: RaftTransportStats = {
    framesSent: 0,
    messagesSent: 0,
    messagesDropped: 0,
    framesReceived: 0,
    messagesReceived: 0,
    streamFailures: 0,
  };

  constructor(opts: RaftTransportOptions) {
    this.opts = opts;
    this.log = opts.logger ?? silentLogger();
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxQueued = opts.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES;
    for (const [id, address] of opts.peers) {
      if (id !== opts.selfId) this.senders.set(id, new PeerSender(this, id, address));
    }
    this.watchdog = setInterval(() => {
      const now = Date.now();
      for (const s of this.senders.values()) s.checkStalled(now);
    }, STALL_TIMEOUT_MS / 3);
    this.watchdog.unref();
  }

  frame(to: NodeId, messages: Uint8Array): RaftFrame {
    return create(RaftFrameSchema, { group: this.opts.group, from: this.opts.selfId, to, messages });
  }

  send(messages: readonly Message[]): void {
    if (messages.length === 1) {
      const m = messages[0] as Message;
      this.senders.get(m.to)?.enqueue([m]);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of messages) {
      let list = byPeer.get(m.to);
      if (list === undefined) {
        list = [];
        byPeer.set(m.to, list);
      }
      list.push(m);
    }
    for (const [to, list] of byPeer) this.senders.get(to)?.enqueue(list);
  }

  private receive(frame: RaftFrame | undefined): void {
    if (frame === undefined) throw new RmqError(ErrorCode.IllegalArgument, "raft frame missing");
    if (frame.group !== this.opts.group) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `raft frame of group ${frame.group}, this node is in ${this.opts.group}`,
      );
    }
    if (frame.to !== this.opts.selfId) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `raft frame for node ${frame.to} reached node ${this.opts.selfId}`,
      );
    }
    const messages = decodeRaftMessages(frame.messages);
    this.stats.framesReceived++;
    this.stats.messagesReceived += messages.length;
    if (messages.length > 0) this.opts.onMessages(messages);
  }

  /** Server side of one peer's stream: hands over every frame; answers nothing. */
  // biome-ignore lint/correctness/useYield: the receiver never answers; its stream ends with the sender's
  private async *drain(requests: AsyncIterable<StreamRequest>): AsyncGenerator<StreamResponse> {
    const it = requests[Symbol.asyncIterator]();
    for (;;) {
      let next: IteratorResult<StreamRequest>;
      try {
        next = await it.next();
      } catch {
        return; // the sender went away (closed, crashed, cut its stream): nothing to report
      }
      if (next.done) return;
      this.receive(next.value.frame);
    }
  }

  routes(router: ConnectRouter): void {
    router.service(RaftService, {
      stream: (requests) => this.drain(requests),
      sendSnapshot: async (req) => {
        this.receive(req.frame);
        return {};
      },
    });
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    await Promise.all([...this.senders.values()].map((s) => s.close()));
  }
}

export function createRaftTransport(opts: RaftTransportOptions): RaftTransport {
  return new Transport(opts);
}
