// The NameServer's settings: upstream namesrv.conf keys (NamesrvConfig, NettyServerConfig.listenPort
// and friends) with upstream defaults, bound from a .properties file and command-line overrides
// (`-p` = listenPort) through common/config-binder.ts. A bad value throws RmqError(IllegalConfig)
// with one line naming the key, the value, where it came from and what is allowed.
//
// With enableControllerInNamesrv=true upstream also reads the controller's keys from the same file;
// they are accepted here (status pending) so such a file loads without warnings, and the controller
// reads them itself.

import { homedir } from "node:os";
import { join } from "node:path";
import { type Bound, bindConfig, type ConfigLayer, type ConfigNotice, def } from "../common/config-binder.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { type PropertiesDocument, readPropertiesFile } from "../common/properties.ts";

/** Upstream NamesrvStartup's listen port. */
export const DEFAULT_NAMESRV_PORT = 9876;
/** Upstream metricsPromExporterPort default. */
export const DEFAULT_NAMESRV_METRICS_PORT = 5557;

const PORT = { min: 0, max: 65535 } as const;
const POSITIVE = { min: 1 } as const;
const PENDING = { status: "pending" } as const;
const THREADS = {
  status: "inert",
  note: "Node runs handlers on one event loop; Java thread-pool sizes have no effect",
} as const;
const NETTY = {
  status: "inert",
  note: "a Netty socket setting; the HTTP/2 server uses Node's defaults",
} as const;
const CONTROLLER = {
  status: "pending",
  note: "read by the controller started with enableControllerInNamesrv=true",
} as const;

export const NAMESRV_CONFIG_SCHEMA = {
  // ---- server socket (NettyServerConfig)
  listenPort: def.int(DEFAULT_NAMESRV_PORT, { ...PORT, status: "used" }),
  bindAddress: def.string("0.0.0.0", { status: "used" }),
  /** Connections without calls are closed after this many seconds. */
  serverChannelMaxIdleTimeSeconds: def.int(120, { ...POSITIVE, status: "used" }),
  /** How long shutdown waits for in-flight calls. */
  shutdownWaitTimeSeconds: def.int(30, { min: 0, status: "used" }),
  enableShutdownGracefully: def.bool(false, {
    status: "inert",
    note: "shutdown is always graceful (bounded by shutdownWaitTimeSeconds)",
  }),
  serverWorkerThreads: def.int(8, THREADS),
  serverCallbackExecutorThreads: def.int(0, THREADS),
  serverSelectorThreads: def.int(3, THREADS),
  serverOnewaySemaphoreValue: def.int(256, THREADS),
  serverAsyncSemaphoreValue: def.int(64, THREADS),
  serverSocketSndBufSize: def.int(0, NETTY),
  serverSocketRcvBufSize: def.int(0, NETTY),
  writeBufferHighWaterMark: def.int(0, NETTY),
  writeBufferLowWaterMark: def.int(0, NETTY),
  serverSocketBacklog: def.int(1024, NETTY),
  serverPooledByteBufAllocatorEnable: def.bool(true, NETTY),
  serverNettyWorkerGroupEnable: def.bool(true, NETTY),
  useEpollNativeSelector: def.bool(false, NETTY),
  // ---- NamesrvConfig
  rocketmqHome: def.string("", { status: "inert", note: "no install directory is needed" }),
  /** "" = ~/namesrv/kvConfig.json, as upstream. */
  kvConfigPath: def.string("", { path: true, status: "used" }),
  configStorePath: def.string("", {
    path: true,
    status: "inert",
    note: "runtime config updates (updateNamesrvConfig) are not supported, so nothing is stored there",
  }),
  productEnvName: def.string("center", { status: "inert" }),
  clusterTest: def.bool(false, { status: "inert", note: "cluster-test routing is not supported" }),
  orderMessageEnable: def.bool(false, { status: "used" }),
  returnOrderTopicConfigToBroker: def.bool(true, { status: "used" }),
  clientRequestThreadPoolNums: def.int(8, THREADS),
  defaultThreadPoolNums: def.int(16, THREADS),
  clientRequestThreadPoolQueueCapacity: def.int(50_000, THREADS),
  defaultThreadPoolQueueCapacity: def.int(10_000, THREADS),
  /** Period of the scan that expires silent brokers (upstream 5 s). */
  scanNotActiveBrokerInterval: def.long(5000, { ...POSITIVE, status: "used" }),
  unRegisterBrokerQueueCapacity: def.int(3000, {
    ...POSITIVE,
    status: "inert",
    note: "unregistrations are applied at once",
  }),
  supportActingMaster: def.bool(false, { status: "used" }),
  enableAllTopicList: def.bool(true, { status: "used" }),
  enableTopicList: def.bool(true, PENDING),
  notifyMinBrokerIdChanged: def.bool(false, PENDING),
  enableControllerInNamesrv: def.bool(false, {
    status: "used",
    note: "the CLI starts a controller in the same process",
  }),
  needWaitForService: def.bool(false, { status: "used" }),
  waitSecondsForService: def.int(45, { min: 0, status: "used" }),
  deleteTopicWithBrokerRegistration: def.bool(true, {
    status: "used",
    note: "our default is true (upstream false): a broker's registration replaces its topics in the routes",
  }),
  configBlackList: def.string("configBlackList;configStorePath;kvConfigPath", {
    status: "inert",
    note: "runtime config updates are not supported",
  }),
  brokerChannelExpiredTime: def.long(120_000, {
    status: "ignored",
    note: "not an upstream key; brokers expire after 120 s unless they send their own heartbeat timeout",
  }),
  // ---- observability (every role)
  metricsPromExporterPort: def.int(DEFAULT_NAMESRV_METRICS_PORT, { ...PORT, status: "used" }),
  metricsPromExporterHost: def.string("", PENDING),
  // ---- the controller's keys (ControllerConfig), used when enableControllerInNamesrv=true
  controllerType: def.string("DLedger", CONTROLLER),
  controllerDLegerGroup: def.string("", CONTROLLER),
  controllerDLegerPeers: def.string("", CONTROLLER),
  controllerDLegerSelfId: def.string("", CONTROLLER),
  controllerStorePath: def.string("", { ...CONTROLLER, path: true }),
  controllerThreadPoolNums: def.int(16, THREADS),
  controllerRequestThreadPoolQueueCapacity: def.int(50_000, THREADS),
  mappedFileSize: def.int(1024 * 1024 * 1024, CONTROLLER),
  electMasterMaxRetryCount: def.int(3, CONTROLLER),
  enableElectUncleanMaster: def.bool(false, CONTROLLER),
  isProcessReadEvent: def.bool(false, CONTROLLER),
  notifyBrokerRoleChanged: def.bool(true, CONTROLLER),
  scanInactiveMasterInterval: def.long(5000, CONTROLLER),
} as const;

export type NamesrvConfigValues = Bound<typeof NAMESRV_CONFIG_SCHEMA>;
/** The bound and defaulted NameServer settings. */
export type NamesrvConfig = NamesrvConfigValues;

export interface NamesrvConfigOptions {
  /** Unknown keys. */
  onWarning?: (w: ConfigNotice) => void;
  /** Ignored keys, alias spellings, duplicate keys. */
  onNotice?: (n: ConfigNotice) => void;
  /** Home directory for `~`, `${user.home}` and the default kvConfigPath (default os.homedir()). */
  home?: string;
}

/** Binds `layers` (lowest precedence first) and fills derived defaults. Throws RmqError(IllegalConfig). */
export function buildNamesrvConfig(
  layers: readonly ConfigLayer[],
  opts: NamesrvConfigOptions = {},
): NamesrvConfig {
  const home = opts.home ?? homedir();
  const v = bindConfig(NAMESRV_CONFIG_SCHEMA, layers, {
    onWarning: opts.onWarning,
    onNotice: opts.onNotice,
    home,
  });
  if (v.kvConfigPath === "") v.kvConfigPath = join(home, "namesrv", "kvConfig.json");
  if (v.configStorePath === "") v.configStorePath = join(home, "namesrv", "namesrv.properties");
  return v;
}

/**
 * Reads namesrv.conf at `path` (undefined = defaults only), then applies `overrides` (command-line
 * values by key, e.g. `{ listenPort: "9877" }` for `-p 9877`; undefined values are skipped).
 */
export async function loadNamesrvConfig(
  path: string | undefined,
  overrides: Readonly<Record<string, string | undefined>> = {},
  opts: NamesrvConfigOptions = {},
): Promise<NamesrvConfig> {
  const layers: ConfigLayer[] = [];
  if (path !== undefined) {
    let doc: PropertiesDocument;
    try {
      doc = await readPropertiesFile(path);
    } catch (e) {
      throw new RmqError(
        ErrorCode.IllegalConfig,
        `cannot read namesrv config ${path}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    layers.push({ source: doc.source, entries: doc.entries });
  }
  layers.push({ source: "command line", entries: overrides });
  return buildNamesrvConfig(layers, opts);
}
