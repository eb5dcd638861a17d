// controller.conf: upstream ControllerConfig key names and defaults, bound from a .properties file
// (and command-line overrides) into a typed ControllerConfig. Key statuses as in
// common/config-binder.ts: `used` drives behaviour, `inert` is accepted so upstream files load.
//
// As upstream (DLedger controller type), a node serves Raft AND the controller API on the one
// address its own entry in controllerDLegerPeers names; brokers' controllerAddr lists those
// addresses.

import { homedir } from "node:os";
import { join } from "node:path";
import {
  type Bound,
  bindConfig,
  type ConfigLayer,
  type ConfigNotice,
  def,
  illegalConfig,
} from "../common/config-binder.ts";
import { DEFAULT_METRICS_PORT } from "../common/ops-server.ts";
import { expandHome, readPropertiesFile } from "../common/properties.ts";

const MiB = 1024 * 1024;
const PORT = { min: 0, max: 65535 } as const;
const THREADS = {
  status: "inert",
  note: "Node runs handlers on one event loop; Java thread-pool sizes have no effect",
} as const;

/** Upstream ControllerConfig.scanNotActiveBrokerInterval / scanInactiveMasterInterval. */
export const DEFAULT_SCAN_INTERVAL_MS = 5_000;
/**
 * Heartbeat timeout applied when a broker's heartbeat carries none. Upstream keeps this on the broker
 * (BrokerConfig.controllerHeartBeatTimeoutMills, default 10 s) and the controller falls back to 10 s.
 */
export const DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS = 10_000;
/** WAL segment roll size (upstream's DLedger commitlog files are 1 GiB; the controller log is tiny). */
export const DEFAULT_CONTROLLER_WAL_SEGMENT_BYTES = 64 * MiB;

export const CONTROLLER_CONFIG_SCHEMA = {
  controllerType: def.enum(["DLedger", "jRaft"], "DLedger", {
    status: "inert",
    note: "both types run this project's Raft (raft/) with the DLedger-style peer list",
  }),
  controllerDLegerGroup: def.string("", { status: "used" }),
  controllerDLegerPeers: def.string("", { status: "used" }),
  controllerDLegerSelfId: def.string("", { status: "used" }),
  /** Upstream default ~/DLedgerController. */
  controllerStorePath: def.string(join("~", "DLedgerController"), { path: true, status: "used" }),
  mappedFileSize: def.int(DEFAULT_CONTROLLER_WAL_SEGMENT_BYTES, {
    min: 4096,
    status: "used",
    note: "roll size of the Raft WAL segments (upstream 1 GiB DLedger files; default here 64 MiB)",
  }),
  enableElectUncleanMaster: def.bool(false, { status: "used" }),
  notifyBrokerRoleChanged: def.bool(true, { status: "used" }),
  scanNotActiveBrokerInterval: def.long(DEFAULT_SCAN_INTERVAL_MS, { min: 1, status: "used" }),
  scanInactiveMasterInterval: def.long(DEFAULT_SCAN_INTERVAL_MS, { min: 1, status: "used" }),
  controllerHeartBeatTimeoutMills: def.long(DEFAULT_CONTROLLER_HEARTBEAT_TIMEOUT_MS, {
    min: 1,
    status: "used",
    note: "timeout of a broker heartbeat that carries none (upstream: a broker.conf key)",
  }),
  electMasterMaxRetryCount: def.int(3, { min: 1, status: "used" }),
  isProcessReadEvent: def.bool(false, {
    status: "inert",
    note: "reads are always linearizable here (Raft ReadIndex), never replicated",
  }),
  controllerThreadPoolNums: def.int(16, THREADS),
  controllerRequestThreadPoolQueueCapacity: def.int(50000, THREADS),
  rocketmqHome: def.string("", { status: "inert" }),
  configStorePath: def.string("", { status: "inert", note: "runtime config updates are not persisted" }),
  metricsExporterType: def.enum(["DISABLE", "OTLP_GRPC", "PROM", "LOG"], "DISABLE", {
    status: "inert",
    note: "/metrics is always served on metricsPromExporterPort",
  }),
  metricsPromExporterPort: def.int(DEFAULT_METRICS_PORT, { ...PORT, status: "used" }),
  metricsPromExporterHost: def.string("", { status: "used", note: '"" = all interfaces' }),
  // ---- our own (Raft timing); upstream's jRaft has jRaftElectionTimeoutMs = 1000
  controllerRaftTickMs: def.int(50, {
    min: 1,
    status: "used",
    note: "one Raft tick; elections start after controllerRaftElectionTicks..2x ticks without a leader",
  }),
  controllerRaftElectionTicks: def.int(10, { min: 2, status: "used" }),
  controllerRaftSnapshotEntries: def.int(10_000, {
    min: 1,
    status: "used",
    note: "applied entries between two snapshots of the controller state",
  }),
} as const;

export type ControllerConfigSchema = typeof CONTROLLER_CONFIG_SCHEMA;
export type ControllerConfigValues = Bound<ControllerConfigSchema>;

export interface ControllerPeer {
  id: string;
  host: string;
  port: number;
  /** "host:port" */
  address: string;
}

export interface ControllerConfig extends ControllerConfigValues {
  /** controllerDLegerPeers parsed, in file order. */
  peers: ControllerPeer[];
  /** This node's own entry. */
  self: ControllerPeer;
}

export interface ControllerConfigOptions {
  onWarning?: (w: ConfigNotice) => void;
  onNotice?: (n: ConfigNotice) => void;
  /** Home directory for `~` and `${user.home}` (default os.homedir()). */
  home?: string;
}

const PEER = /^([^\s;-]+)-(\[[0-9a-fA-F:.]+\]|[^\s:;]+):(\d{1,5})$/;
const PEERS_ALLOWED =
  "expected id-host:port entries separated by ';', e.g. n0-127.0.0.1:9878;n1-127.0.0.1:9879;n2-127.0.0.1:9880";

/** Parses upstream's `controllerDLegerPeers`. Throws RmqError(IllegalConfig). */
export function parseControllerPeers(raw: string, origin = "controllerDLegerPeers"): ControllerPeer[] {
  const peers: ControllerPeer[] = [];
  for (const part of raw.split(";")) {
    const p = part.trim();
    if (p === "") continue;
    const m = PEER.exec(p);
    const port = Number(m?.[3]);
    if (!m || port < 1 || port > 65535)
      throw illegalConfig("controllerDLegerPeers", raw, origin, PEERS_ALLOWED);
    const id = m[1] as string;
    const host = m[2] as string;
    if (peers.some((x) => x.id === id)) {
      throw illegalConfig(
        "controllerDLegerPeers",
        raw,
        origin,
        `peer id ${id} appears twice; ids must be unique`,
      );
    }
    peers.push({ id, host, port, address: `${host}:${port}` });
  }
  if (peers.length === 0) throw illegalConfig("controllerDLegerPeers", raw, origin, PEERS_ALLOWED);
  return peers;
}

/** Binds layers (file, then overrides) and checks the peer list. Throws RmqError(IllegalConfig). */
export function buildControllerConfig(
  layers: readonly ConfigLayer[],
  opts: ControllerConfigOptions = {},
): ControllerConfig {
  const origins = new Map<string, string>();
  const v = bindConfig(CONTROLLER_CONFIG_SCHEMA, layers, {
    onWarning: opts.onWarning,
    onNotice: opts.onNotice,
    home: opts.home ?? homedir(),
    origins,
  });
  const from = (key: string) => origins.get(key) ?? "default";
  if (!origins.has("controllerStorePath"))
    v.controllerStorePath = expandHome(v.controllerStorePath, opts.home ?? homedir());
  if (v.controllerDLegerGroup.trim() === "") {
    throw illegalConfig(
      "controllerDLegerGroup",
      v.controllerDLegerGroup,
      from("controllerDLegerGroup"),
      "a Raft group name is required, e.g. group1",
    );
  }
  const peers = parseControllerPeers(v.controllerDLegerPeers, from("controllerDLegerPeers"));
  const self = peers.find((p) => p.id === v.controllerDLegerSelfId);
  if (self === undefined) {
    throw illegalConfig(
      "controllerDLegerSelfId",
      v.controllerDLegerSelfId,
      from("controllerDLegerSelfId"),
      `allowed values are the peer ids in controllerDLegerPeers: ${peers.map((p) => p.id).join(", ")}`,
    );
  }
  return { ...v, peers, self };
}

export interface LoadControllerConfigOptions extends ControllerConfigOptions {
  /** controller.conf path (-c). */
  file?: string;
  /** Overrides by key (command line). */
  cli?: Readonly<Record<string, string | undefined>>;
}

/** Reads `file` (if any), then applies `cli` on top. */
export async function loadControllerConfig(
  opts: LoadControllerConfigOptions = {},
): Promise<ControllerConfig> {
  const layers: ConfigLayer[] = [];
  if (opts.file !== undefined) {
    const doc = await readPropertiesFile(opts.file);
    layers.push({ source: doc.source, entries: doc.entries });
  }
  if (opts.cli !== undefined) layers.push({ source: "command line", entries: opts.cli });
  return buildControllerConfig(layers, opts);
}
