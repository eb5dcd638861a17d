// One controller node: a Raft peer (raft/node-driver.ts over a WAL, raft/transport.ts) whose state
// machine is the ReplicasInfoManager, plus the controller API (proto/rmq/controller/v1), both served
// on the node's own address from controllerDLegerPeers.
//
// Requests:
// - GetMetaData and BrokerHeartbeat are answered by any node from its own memory (heartbeats are kept
//   per node, not replicated, as upstream's DLedger controller: brokers heartbeat every node).
// - Everything else is served by the leader only, once it has applied an entry of its own term.
//   Other nodes answer CONTROLLER_NOT_LEADER with the leader's id and address (no forwarding): the
//   caller retries there (controller/controller-client.ts does).
// - A request is validated against the applied state. If it produces events, they are proposed as
//   one Raft entry and the answer waits until that entry is applied here (upstream's 5 s timeout:
//   then SYSTEM_ERROR, outcome unknown). The events carry the epochs they were validated against, so
//   a concurrent change that commits first makes the apply refuse them; the caller then gets that
//   refusal. A request that produces no events (a read, or a refusal) is answered after a ReadIndex
//   round, so that a deposed leader never answers from a stale state.
// - After a successful election every node pushes the new role to the WatchRoleChange streams of
//   that broker set's alive members connected to it (upstream NOTIFY_BROKER_ROLE_CHANGED is sent by
//   the leader only; here a broker watching any node hears it).
// - The serving leader scans heartbeats every scanNotActiveBrokerInterval (a master that expired →
//   election) and broker sets every scanInactiveMasterInterval (master dead, a replica alive →
//   election); a new leader runs both at once.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { createRpcServer, type RpcServer } from "../common/rpc-server.ts";
import {
  type BrokerHeartbeatRequest,
  type BrokerReplicasInfoSchema,
  ControllerService,
  type ControllerStatus,
  ControllerStatusSchema,
  type EpochEntry,
  EpochEntrySchema,
  type WatchRoleChangeResponse,
  WatchRoleChangeResponseSchema,
} from "../proto/gen/rmq/controller/v1/controller_pb.ts";
import { RaftNodeDriver, type RaftStateMachine } from "../raft/node-driver.ts";
import { createWalStorage } from "../raft/storage/wal-storage.ts";
import { createRaftTransport, type RaftTransport } from "../raft/transport.ts";
import { DEFAULT_ELECTION_PRIORITY } from "./broker-liveness.ts";
import { CONTROLLER_TRIGGERED_BROKER_ID, type ControllerResult } from "./commands.ts";
import type { ControllerConfig, ControllerPeer } from "./controller-config.ts";
import {
  type ControllerMetrics,
  createControllerMetrics,
  ElectionResult,
  RequestHandleStatus,
} from "./controller-metrics.ts";
import { type ControllerEvent, decodeControllerEvents, encodeControllerEvents } from "./events.ts";
import { BrokerHeartbeatManager } from "./heartbeat-manager.ts";
import { type ApplyOutcome, parseBrokerIdsToClean, ReplicasInfoManager } from "./replicas-info.ts";
import { type ControllerErrorCode, ControllerResponseCode } from "./response-code.ts";

/** Upstream ResponseCode.SYSTEM_ERROR: a timeout or an internal failure. */
export const SYSTEM_ERROR = 1;
/** Largest request accepted (Raft snapshots travel on the same server). */
const CONTROLLER_RPC_READ_MAX_BYTES = 64 * 1024 * 1024;
/** How long a stopping leader waits for its chosen follower to take over. */
const LEADERSHIP_HANDOVER_MS = 1500;
/** Notifications queued per watcher before the oldest are dropped (a broker that stopped reading). */
const MAX_QUEUED_NOTIFICATIONS = 64;

type Status = ControllerStatus;

/** What a controller node exposes to its owner (controller-main.ts, tests). */
export interface ControllerServer {
  readonly id: string;
  readonly address: string;
  /** Port the RPC server bound. */
  readonly port: number;
  readonly driver: RaftNodeDriver;
  readonly replicas: ReplicasInfoManager;
  readonly heartbeats: BrokerHeartbeatManager;
  readonly transport: RaftTransport;
  /** A leader is known (this node or another). */
  leaderKnown(): boolean;
  /** Stops serving, fails what is in flight, flushes the WAL. Idempotent. */
  close(): Promise<void>;
}

export interface ControllerServerOptions {
  config: ControllerConfig;
  logger: Logger;
  registry: Registry;
  /** Address to bind (default 0.0.0.0: every interface, as upstream). */
  bindHost?: string;
  /** Called when the Raft loop fails on storage; the process should exit. */
  onFatal?: (err: unknown) => void;
}

interface Watcher {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  queue: WatchRoleChangeResponse[];
  wake: (() => void) | undefined;
}

function status(code: ControllerErrorCode | "SUCCESS", remark = "", leader?: ControllerPeer): Status {
  return create(ControllerStatusSchema, {
    code: ControllerResponseCode[code],
    name: code,
    remark,
    leaderId: leader?.id ?? "",
    leaderAddress: leader?.address ?? "",
  });
}

const OK = (): Status => status("SUCCESS");

function systemError(remark: string): Status {
  return create(ControllerStatusSchema, { code: SYSTEM_ERROR, name: "SYSTEM_ERROR", remark });
}

const toNum = (v: bigint): number => Number(v);
const toBig = (v: number): bigint => BigInt(v);
const optBig = (v: number | null | undefined): bigint | undefined =>
  v === null || v === undefined ? undefined : BigInt(v);

/** Applies committed controller entries; the result of one entry is its events' outcomes. */
class ControllerStateMachine implements RaftStateMachine {
  readonly manager: ReplicasInfoManager;
  private readonly onApplied: (event: ControllerEvent, outcome: ApplyOutcome) => void;
  constructor(
    manager: ReplicasInfoManager,
    onApplied: (event: ControllerEvent, outcome: ApplyOutcome) => void,
  ) {
    this.manager = manager;
    this.onApplied = onApplied;
  }
  apply(data: Uint8Array): ApplyOutcome[] {
    const events = decodeControllerEvents(data);
    const outcomes: ApplyOutcome[] = [];
    for (const e of events) {
      const o = this.manager.apply(e);
      outcomes.push(o);
      this.onApplied(e, o);
    }
    return outcomes;
  }
  snapshot(): Uint8Array {
    return this.manager.snapshot();
  }
  restore(data: Uint8Array): void {
    this.manager.restore(data);
  }
}

export async function createControllerServer(opts: ControllerServerOptions): Promise<ControllerServer> {
  const node = new ControllerNode(opts);
  await node.start();
  return node;
}

class ControllerNode implements ControllerServer {
  readonly id: string;
  readonly address: string;
  readonly replicas: ReplicasInfoManager;
  readonly heartbeats = new BrokerHeartbeatManager();
  private readonly config: ControllerConfig;
  private readonly log: Logger;
  private readonly opts: ControllerServerOptions;
  private readonly peersById: Map<string, ControllerPeer>;
  private readonly epochEntries = new Map<string, EpochEntry[]>();
  private readonly watchers = new Set<Watcher>();
  private readonly metrics: ControllerMetrics;
  private driverRef: RaftNodeDriver | undefined;
  private transportRef: RaftTransport | undefined;
  private server: RpcServer | undefined;
  private timers: NodeJS.Timeout[] = [];
  private closing: Promise<void> | undefined;
  private electing = new Set<string>();
  private readonly startedAt = Date.now();

  constructor(opts: ControllerServerOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.log = opts.logger;
    this.id = opts.config.self.id;
    this.address = opts.config.self.address;
    this.peersById = new Map(opts.config.peers.map((p) => [p.id, p]));
    this.replicas = new ReplicasInfoManager({
      enableElectUncleanMaster: opts.config.enableElectUncleanMaster,
    });
    this.metrics = createControllerMetrics(
      opts.registry,
      { address: this.address, group: opts.config.controllerDLegerGroup, peerId: this.id },
      {
        isLeader: () => this.driverRef?.isLeader ?? false,
        raft: () => {
          const d = this.driverRef;
          if (d === undefined) return { term: 0, commit: 0, applied: 0 };
          return { term: d.currentTerm, commit: d.status().commit, applied: d.applied };
        },
        activeBrokers: () => this.heartbeats.activeBrokersNum(Date.now()),
      },
    );
  }

  get driver(): RaftNodeDriver {
    return this.driverRef as RaftNodeDriver;
  }
  get transport(): RaftTransport {
    return this.transportRef as RaftTransport;
  }
  get port(): number {
    return this.server?.port ?? 0;
  }

  leaderKnown(): boolean {
    return (this.driverRef?.leaderId ?? "") !== "";
  }

  async start(): Promise<void> {
    const c = this.config;
    const storage = await createWalStorage(c.controllerStorePath, { segmentBytes: c.mappedFileSize });
    if (storage.recovery.tornTail !== undefined) {
      this.log.warn(
        { tornTail: storage.recovery.tornTail },
        "controller WAL had a torn tail; it was cut off",
      );
    }
    const sm = new ControllerStateMachine(this.replicas, (e, o) => this.onApplied(e, o));
    const transport = createRaftTransport({
      group: c.controllerDLegerGroup,
      selfId: this.id,
      peers: new Map(c.peers.map((p) => [p.id, p.address])),
      onMessages: (m) => this.driverRef?.step(m),
      onUnreachable: (p) => this.driverRef?.reportUnreachable(p),
      onSnapshotStatus: (p, ok) => this.driverRef?.reportSnapshot(p, ok),
      logger: this.log,
    });
    this.transportRef = transport;
    this.driverRef = new RaftNodeDriver({
      id: this.id,
      peers: c.peers.map((p) => p.id),
      storage,
      stateMachine: sm,
      send: (m) => transport.send(m),
      tickMs: c.controllerRaftTickMs,
      electionTick: c.controllerRaftElectionTicks,
      snapshotEntries: c.controllerRaftSnapshotEntries,
      logger: this.log,
      onLeaderServing: (term) => this.onLeaderServing(term),
      onFatal: (e) => this.opts.onFatal?.(e),
    });
    this.server = await createRpcServer({
      host: this.opts.bindHost ?? "0.0.0.0",
      port: c.self.port,
      readMaxBytes: CONTROLLER_RPC_READ_MAX_BYTES,
      logger: this.log,
      shutdownGraceMs: 1000,
      routes: (router) => {
        transport.routes(router);
        this.routes(router);
      },
    });
    this.driver.start();
    this.timers.push(
      setInterval(() => this.scanNotActiveBrokers(), c.scanNotActiveBrokerInterval),
      setInterval(() => this.scanInactiveMasters(), c.scanInactiveMasterInterval),
    );
    this.log.info(
      {
        id: this.id,
        address: this.address,
        port: this.port,
        peers: c.peers.map((p) => `${p.id}-${p.address}`),
        storePath: c.controllerStorePath,
      },
      "controller node started",
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      this.timers = [];
      for (const w of this.watchers) w.wake?.();
      await this.handOverLeadership();
      await this.driverRef?.stop();
      await this.server?.close();
      await this.transportRef?.close();
      this.log.info({ id: this.id }, "controller node stopped");
    })();
    return this.closing;
  }

  /** A leader stopping gracefully hands leadership to its most caught-up follower first (no election gap). */
  private async handOverLeadership(): Promise<void> {
    const d = this.driverRef;
    if (d === undefined || !d.isLeader) return;
    let best: { id: string; match: number } | undefined;
    for (const [id, pr] of d.status().progress ?? []) {
      if (id === this.id || !pr.recentActive) continue;
      if (best === undefined || pr.match > best.match) best = { id, match: pr.match };
    }
    if (best === undefined) return;
    d.transferLeader(best.id);
    const end = Date.now() + LEADERSHIP_HANDOVER_MS;
    while (d.isLeader && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    this.log.info({ to: best.id, handedOver: !d.isLeader }, "leadership handed over before stopping");
  }

  // ---- leader duties ----

  private onLeaderServing(term: number): void {
    this.log.info({ term }, "controller leader is serving");
    this.scanNotActiveBrokers();
    this.scanInactiveMasters();
  }

  private scanNotActiveBrokers(): void {
    if (this.closing !== undefined) return;
    const res = this.heartbeats.scan(Date.now(), (_c, b) => this.replicas.masterOf(_c, b));
    for (const b of res.expired) {
      this.log.info(
        { clusterName: b.clusterName, brokerName: b.brokerName, brokerId: b.brokerId },
        "broker heartbeat expired",
      );
      this.epochEntries.delete(brokerKey(b.brokerName, b.brokerId));
    }
    if (!this.driver.isServingLeader) return;
    for (const set of res.brokerSetsToElect)
      void this.controllerElect(set.clusterName, set.brokerName, "master heartbeat expired");
  }

  private scanInactiveMasters(): void {
    if (this.closing !== undefined || !this.driver.isServingLeader) return;
    // A node that started recently has not heard every alive master yet: absence proves nothing.
    if (Date.now() - this.startedAt < this.config.controllerHeartBeatTimeoutMills) return;
    for (const set of this.replicas.scanNeedReelectBrokerSets(this.heartbeats.view(Date.now()))) {
      void this.controllerElect(set.clusterName, set.brokerName, "master inactive");
    }
  }

  /** Election triggered by the controller (brokerId -1), retried up to electMasterMaxRetryCount. */
  private async controllerElect(clusterName: string, brokerName: string, reason: string): Promise<void> {
    if (this.electing.has(brokerName)) return;
    this.electing.add(brokerName);
    try {
      for (let attempt = 1; attempt <= this.config.electMasterMaxRetryCount; attempt++) {
        if (!this.driver.isServingLeader || this.closing !== undefined) return;
        const req = {
          clusterName,
          brokerName,
          brokerId: CONTROLLER_TRIGGERED_BROKER_ID,
          designateElect: false,
        };
        const result = this.replicas.electMaster(req, this.heartbeats.view(Date.now()));
        const { status: st, response } = await this.commit(result);
        if (st.code === 0) {
          this.metrics.election(ElectionResult.NewMasterElected);
          this.log.info(
            { brokerName, reason, master: response?.masterBrokerId, masterEpoch: response?.masterEpoch },
            "controller elected a new master",
          );
          return;
        }
        if (st.name === "CONTROLLER_MASTER_STILL_EXIST") {
          this.metrics.election(ElectionResult.KeepCurrentMaster);
          return;
        }
        if (st.name === "CONTROLLER_MASTER_NOT_AVAILABLE" || st.name === "CONTROLLER_NOT_LEADER") {
          if (st.name === "CONTROLLER_MASTER_NOT_AVAILABLE")
            this.metrics.election(ElectionResult.NoMasterElected);
          this.log.warn({ brokerName, reason, remark: st.remark }, "controller could not elect a master");
          return;
        }
        this.log.warn(
          { brokerName, reason, attempt, status: st.name, remark: st.remark },
          "controller election attempt failed",
        );
      }
    } finally {
      this.electing.delete(brokerName);
    }
  }

  // ---- applying: role-change notifications ----

  private onApplied(event: ControllerEvent, outcome: ApplyOutcome): void {
    if (!outcome.applied || event.type !== "ElectMaster" || event.newMasterBrokerId === null) return;
    if (!this.config.notifyBrokerRoleChanged || this.watchers.size === 0) return;
    const set = this.replicas.view.brokerSets.get(event.brokerName);
    if (set === undefined) return;
    const masterBrokerId = set.masterBrokerId;
    const note = create(WatchRoleChangeResponseSchema, {
      brokerName: set.brokerName,
      masterBrokerId: optBig(masterBrokerId),
      masterAddress: masterBrokerId === null ? "" : (set.brokers.get(masterBrokerId)?.address ?? ""),
      masterEpoch: set.masterEpoch,
      syncStateSetEpoch: set.syncStateSetEpoch,
      syncStateSet: [...set.syncStateSet].sort((a, b) => a - b).map(toBig),
    });
    const now = Date.now();
    for (const w of this.watchers) {
      if (w.brokerName !== set.brokerName) continue;
      if (!this.heartbeats.isAlive(w.clusterName, w.brokerName, w.brokerId, now)) continue;
      w.queue.push(note);
      if (w.queue.length > MAX_QUEUED_NOTIFICATIONS) w.queue.shift();
      w.wake?.();
    }
  }

  // ---- request plumbing ----

  private leaderPeer(): ControllerPeer | undefined {
    const lead = this.driverRef?.leaderId ?? "";
    return lead === "" ? undefined : this.peersById.get(lead);
  }

  private notLeader(): Status {
    const leader = this.leaderPeer();
    const remark =
      leader === undefined
        ? `controller ${this.id} is not the leader and no leader is known`
        : leader.id === this.id
          ? `controller ${this.id} is the leader but has not caught up yet; retry`
          : `controller ${this.id} is not the leader; the leader is ${leader.id} at ${leader.address}`;
    return status("CONTROLLER_NOT_LEADER", remark, leader?.id === this.id ? undefined : leader);
  }

  /** Status for a failed proposal or read round. */
  private raftFailure(e: unknown): Status {
    if (isRmqError(e, ErrorCode.RaftNotLeader) || isRmqError(e, ErrorCode.RaftProposalLost))
      return this.notLeader();
    if (isRmqError(e, ErrorCode.RaftProposalTimeout)) {
      return systemError(
        `not committed within the timeout; the outcome is unknown (${(e as Error).message})`,
      );
    }
    if (isRmqError(e, ErrorCode.RaftNodeStopped))
      return systemError(`controller ${this.id} is shutting down`);
    this.log.error({ err: e }, "controller request failed");
    return systemError(`internal error: ${String(e)}`);
  }

  /** Proposes a validation's events (if any) and waits for them to apply. */
  private async commit<T>(result: ControllerResult<T>): Promise<{ status: Status; response: T | null }> {
    const asIs = () => ({
      status: result.ok ? OK() : status(result.error.code, result.error.remark),
      response: result.response,
    });
    if (result.events.length === 0) return asIs();
    let outcomes: ApplyOutcome[];
    try {
      outcomes = (await this.driver.propose(encodeControllerEvents(result.events))) as ApplyOutcome[];
    } catch (e) {
      return { status: this.raftFailure(e), response: null };
    }
    const refused = outcomes.find((o) => !o.applied);
    if (refused !== undefined && !refused.applied) {
      return { status: status(refused.error.code, refused.error.remark), response: null };
    }
    return asIs();
  }

  /**
   * Serves a leader-only request: validate → (events? commit : ReadIndex, validate again → commit).
   * Never throws: failures become a status.
   */
  private async leaderOnly<T>(
    type: string,
    validate: () => ControllerResult<T>,
  ): Promise<{ status: Status; response: T | null }> {
    const started = performance.now();
    let out: { status: Status; response: T | null };
    if (!this.driver.isServingLeader) {
      out = { status: this.notLeader(), response: null };
    } else {
      let result = validate();
      if (result.events.length === 0) {
        try {
          await this.driver.readIndex();
          result = validate();
        } catch (e) {
          out = { status: this.raftFailure(e), response: null };
          this.observe(type, out.status, started);
          return out;
        }
      }
      out = await this.commit(result);
    }
    this.observe(type, out.status, started);
    return out;
  }

  private observe(type: string, st: Status, started: number): void {
    const handle =
      st.code === 0
        ? RequestHandleStatus.Success
        : st.code === SYSTEM_ERROR && st.remark.startsWith("not committed")
          ? RequestHandleStatus.Timeout
          : RequestHandleStatus.Failed;
    this.metrics.request(type, handle, Math.round((performance.now() - started) * 1000));
  }

  // ---- the API ----

  private routes(router: ConnectRouter): void {
    router.service(ControllerService, {
      getMetaData: async () => {
        const d = this.driver;
        const leader = this.leaderPeer();
        const st = d.status();
        return {
          status: OK(),
          group: this.config.controllerDLegerGroup,
          leaderId: leader?.id ?? "",
          leaderAddress: leader?.address ?? "",
          isLeader: d.isLeader,
          selfId: this.id,
          selfAddress: this.address,
          peers: this.config.peers.map((p) => ({ id: p.id, address: p.address })),
          term: toBig(st.term),
          commitIndex: toBig(st.commit),
          appliedIndex: toBig(d.applied),
          leaderServing: d.isServingLeader,
        };
      },

      brokerHeartbeat: async (req) => this.onHeartbeat(req),

      getNextBrokerId: async (req) => {
        const { status: st, response } = await this.leaderOnly("CONTROLLER_GET_NEXT_BROKER_ID", () =>
          this.replicas.getNextBrokerId({ clusterName: req.clusterName, brokerName: req.brokerName }),
        );
        return {
          status: st,
          clusterName: req.clusterName,
          brokerName: req.brokerName,
          nextBrokerId: toBig(response?.nextBrokerId ?? 0),
        };
      },

      applyBrokerId: async (req) => {
        const { status: st } = await this.leaderOnly("CONTROLLER_APPLY_BROKER_ID", () =>
          this.replicas.applyBrokerId({
            clusterName: req.clusterName,
            brokerName: req.brokerName,
            appliedBrokerId: toNum(req.appliedBrokerId),
            registerCheckCode: req.registerCheckCode,
          }),
        );
        return { status: st, clusterName: req.clusterName, brokerName: req.brokerName };
      },

      registerBroker: async (req) => {
        const { status: st, response: r } = await this.leaderOnly("CONTROLLER_REGISTER_BROKER", () =>
          this.replicas.registerBroker(
            {
              clusterName: req.clusterName,
              brokerName: req.brokerName,
              brokerId: toNum(req.brokerId),
              brokerAddress: req.brokerAddress,
            },
            this.heartbeats.view(Date.now()),
          ),
        );
        return {
          status: st,
          clusterName: req.clusterName,
          brokerName: req.brokerName,
          masterBrokerId: optBig(r?.masterBrokerId),
          masterAddress: r?.masterAddress ?? "",
          masterEpoch: r?.masterEpoch ?? undefined,
          syncStateSetEpoch: r?.syncStateSetEpoch ?? undefined,
          syncStateSet:
            r === null
              ? undefined
              : {
                  syncStateSet: r.syncStateSet.syncStateSet.map(toBig),
                  syncStateSetEpoch: r.syncStateSet.syncStateSetEpoch,
                },
        };
      },

      alterSyncStateSet: async (req) => {
        const { status: st, response: r } = await this.leaderOnly("CONTROLLER_ALTER_SYNC_STATE_SET", () =>
          this.replicas.alterSyncStateSet(
            {
              brokerName: req.brokerName,
              masterBrokerId: toNum(req.masterBrokerId),
              masterEpoch: req.masterEpoch,
              newSyncStateSet: (req.syncStateSet?.syncStateSet ?? []).map(toNum),
              syncStateSetEpoch: req.syncStateSet?.syncStateSetEpoch ?? 0,
            },
            this.heartbeats.view(Date.now()),
          ),
        );
        return {
          status: st,
          newSyncStateSetEpoch: r?.newSyncStateSetEpoch ?? 0,
          syncStateSet:
            r === null
              ? undefined
              : {
                  syncStateSet: r.syncStateSet.syncStateSet.map(toBig),
                  syncStateSetEpoch: r.syncStateSet.syncStateSetEpoch,
                },
        };
      },

      electMaster: async (req) => {
        const type = "CONTROLLER_ELECT_MASTER";
        const { status: st, response: r } = await this.leaderOnly(type, () =>
          this.replicas.electMaster(
            {
              clusterName: req.clusterName,
              brokerName: req.brokerName,
              brokerId: toNum(req.brokerId),
              designateElect: req.designateElect,
            },
            this.heartbeats.view(Date.now()),
          ),
        );
        if (st.code === 0) this.metrics.election(ElectionResult.NewMasterElected);
        else if (st.name === "CONTROLLER_MASTER_STILL_EXIST")
          this.metrics.election(ElectionResult.KeepCurrentMaster);
        else if (st.name === "CONTROLLER_ELECT_MASTER_FAILED")
          this.metrics.election(ElectionResult.NoMasterElected);
        const group = r?.brokerMemberGroup ?? null;
        return {
          status: st,
          masterBrokerId: optBig(r?.masterBrokerId),
          masterAddress: r?.masterAddress ?? "",
          masterEpoch: r?.masterEpoch ?? 0,
          syncStateSetEpoch: r?.syncStateSetEpoch ?? 0,
          syncStateSet: (r?.syncStateSet ?? []).map(toBig),
          brokerMemberGroup:
            group === null
              ? undefined
              : {
                  clusterName: group.clusterName,
                  brokerName: group.brokerName,
                  brokerAddrs: Object.fromEntries(
                    group.brokerAddrs.map((a) => [String(a.brokerId), a.address]),
                  ),
                },
        };
      },

      getReplicaInfo: async (req) => {
        const { status: st, response: r } = await this.leaderOnly("CONTROLLER_GET_REPLICA_INFO", () =>
          this.replicas.getReplicaInfo({ brokerName: req.brokerName }),
        );
        return {
          status: st,
          masterBrokerId: optBig(r?.masterBrokerId),
          masterAddress: r?.masterAddress ?? "",
          masterEpoch: r?.masterEpoch ?? 0,
          syncStateSet:
            r === null
              ? undefined
              : {
                  syncStateSet: r.syncStateSet.syncStateSet.map(toBig),
                  syncStateSetEpoch: r.syncStateSet.syncStateSetEpoch,
                },
        };
      },

      getSyncStateData: async (req) => {
        const { status: st, response: r } = await this.leaderOnly("CONTROLLER_GET_SYNC_STATE_DATA", () => {
          const names =
            req.brokerNames.length > 0 ? req.brokerNames : [...this.replicas.view.brokerSets.keys()].sort();
          return this.replicas.getSyncStateData(names, this.heartbeats.view(Date.now()));
        });
        const table: Record<string, MessageInitShape<typeof BrokerReplicasInfoSchema>> = {};
        for (const [name, info] of r?.replicasInfoTable ?? []) {
          const replica = (x: {
            brokerName: string;
            brokerId: number;
            brokerAddress: string;
            alive: boolean;
          }) => ({
            brokerName: x.brokerName,
            brokerId: toBig(x.brokerId),
            brokerAddress: x.brokerAddress,
            alive: x.alive,
          });
          table[name] = {
            masterBrokerId: optBig(info.masterBrokerId),
            masterAddress: info.masterAddress ?? "",
            masterEpoch: info.masterEpoch,
            syncStateSetEpoch: info.syncStateSetEpoch,
            inSyncReplicas: info.inSyncReplicas.map(replica),
            notInSyncReplicas: info.notInSyncReplicas.map(replica),
          };
        }
        return { status: st, replicasInfoTable: table };
      },

      getBrokerLiveInfo: async (req) => {
        const now = Date.now();
        const set = this.replicas.view.brokerSets.get(req.brokerName);
        const brokers = [];
        for (const brokerId of [...(set?.brokers.keys() ?? [])].sort((a, b) => a - b)) {
          const cluster = (set as { clusterName: string }).clusterName;
          const info = this.heartbeats.liveInfo(cluster, req.brokerName, brokerId);
          brokers.push({
            clusterName: cluster,
            brokerName: req.brokerName,
            brokerId: toBig(brokerId),
            brokerAddress: info?.brokerAddress ?? set?.brokers.get(brokerId)?.address ?? "",
            alive: this.heartbeats.isAlive(cluster, req.brokerName, brokerId, now),
            lastUpdateTimestamp: toBig(info?.lastUpdateTimestamp ?? 0),
            heartbeatTimeoutMillis: toBig(info?.heartbeatTimeoutMillis ?? 0),
            epoch: info?.epoch ?? -1,
            maxOffset: toBig(info?.maxOffset ?? -1),
            confirmOffset: toBig(info?.confirmOffset ?? -1),
            electionPriority: info?.electionPriority ?? DEFAULT_ELECTION_PRIORITY,
            epochEntries: this.epochEntries.get(brokerKey(req.brokerName, brokerId)) ?? [],
          });
        }
        const st =
          set === undefined
            ? status("CONTROLLER_BROKER_METADATA_NOT_EXIST", `broker set ${req.brokerName} does not exist`)
            : OK();
        return { status: st, brokers };
      },

      cleanBrokerData: async (req) => {
        let cleaned: { clusterName: string; ids: number[] } | undefined;
        const { status: st } = await this.leaderOnly("CLEAN_BROKER_DATA", () => {
          const set = this.replicas.view.brokerSets.get(req.brokerName);
          const ids = parseBrokerIdsToClean(req.brokerControllerIdsToClean);
          if (set !== undefined)
            cleaned = { clusterName: set.clusterName, ids: ids ?? [...set.brokers.keys()] };
          return this.replicas.cleanBrokerData(
            {
              clusterName: req.clusterName,
              brokerName: req.brokerName,
              brokerControllerIdsToClean: req.brokerControllerIdsToClean,
              cleanLivingBroker: req.cleanLivingBroker,
            },
            this.heartbeats.view(Date.now()),
          );
        });
        if (st.code === 0 && cleaned !== undefined) {
          // Forget the cleaned brokers' heartbeats too (on this node), so they stop counting as alive.
          for (const id of cleaned.ids) {
            this.heartbeats.remove(cleaned.clusterName, req.brokerName, id);
            this.epochEntries.delete(brokerKey(req.brokerName, id));
          }
        }
        return { status: st };
      },

      watchRoleChange: (req, ctx) => this.watch(req.clusterName, req.brokerName, toNum(req.brokerId), ctx),
    });
  }

  private onHeartbeat(req: BrokerHeartbeatRequest) {
    const brokerId = toNum(req.brokerId);
    if (req.brokerName === "" || req.clusterName === "" || req.brokerAddress === "" || !(brokerId >= 0)) {
      return {
        status: status(
          "CONTROLLER_INVALID_REQUEST",
          "clusterName, brokerName, brokerAddress and brokerId are required",
        ),
      };
    }
    const timeout = toNum(req.heartbeatTimeoutMillis);
    this.heartbeats.onBrokerHeartbeat(
      {
        clusterName: req.clusterName,
        brokerName: req.brokerName,
        brokerId,
        brokerAddress: req.brokerAddress,
        heartbeatTimeoutMillis: timeout > 0 ? timeout : this.config.controllerHeartBeatTimeoutMills,
        epoch: req.epoch,
        maxOffset: toNum(req.maxOffset),
        confirmOffset: toNum(req.confirmOffset),
        electionPriority: req.electionPriority > 0 ? req.electionPriority : DEFAULT_ELECTION_PRIORITY,
      },
      Date.now(),
    );
    if (req.epochEntries.length > 0) {
      this.epochEntries.set(
        brokerKey(req.brokerName, brokerId),
        req.epochEntries.map((e) =>
          create(EpochEntrySchema, { epoch: e.epoch, startOffset: e.startOffset, endOffset: e.endOffset }),
        ),
      );
    }
    return { status: OK() };
  }

  private async *watch(
    clusterName: string,
    brokerName: string,
    brokerId: number,
    ctx: HandlerContext,
  ): AsyncGenerator<WatchRoleChangeResponse> {
    const w: Watcher = { clusterName, brokerName, brokerId, queue: [], wake: undefined };
    this.watchers.add(w);
    const onAbort = () => w.wake?.();
    ctx.signal.addEventListener("abort", onAbort);
    try {
      while (!ctx.signal.aborted && this.closing === undefined) {
        const next = w.queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => {
          w.wake = resolve;
        });
        w.wake = undefined;
      }
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      this.watchers.delete(w);
    }
  }
}

function brokerKey(brokerName: string, brokerId: number): string {
  return `${brokerName}\u0000${brokerId}`;
}
