// The broker's settings: upstream broker.conf key names and defaults (BrokerConfig, BrokerIdentity,
// NettyServerConfig.listenPort, MessageStoreConfig), bound from a .properties file and command-line
// overrides into a typed BrokerConfig whose store fields form the store's MessageStoreConfig.
//
// Every key carries a status (see common/config-binder.ts): `used` keys drive behaviour now,
// `pending` keys are kept for a component not built yet, `inert` keys are accepted so upstream
// configs load but have no effect here (Java thread pools, mmap tuning), `ignored` keys are known
// misspellings or invented keys seen in real configs that upstream drops too.

import { availableParallelism, homedir, hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import {
  type Bound,
  bindConfig,
  type ConfigLayer,
  type ConfigNotice,
  def,
  illegalConfig,
} from "../common/config-binder.ts";
import { readPropertiesFile } from "../common/properties.ts";
import {
  BrokerRole,
  defaultMessageStoreConfig,
  FlushDiskType,
  type MessageStoreConfig,
} from "./store/config.ts";

const PROCESSORS = availableParallelism();
const INT_MAX = 2147483647;
const PORT = { min: 0, max: 65535 } as const;
const RATIO = { min: 0, max: 100 } as const;
const NON_NEGATIVE = { min: 0 } as const;
const POSITIVE = { min: 1 } as const;
const THREADS = {
  status: "inert",
  note: "Node runs handlers on one event loop; Java thread-pool sizes have no effect",
} as const;
const QUEUE = {
  status: "inert",
  note: "no Java executor queues here; backpressure is per connection",
} as const;
const NO_MMAP = { status: "inert", note: "the store uses positional file IO, not mmap" } as const;
const PENDING = { status: "pending" } as const;
const PROXY_KEY = "upstream ProxyConfig key, read by the proxy of rmq local";

/** Default ports (upstream BrokerStartup / MessageStoreConfig / BrokerConfig / ProxyConfig). */
export const DEFAULT_LISTEN_PORT = 10911;
export const DEFAULT_GRPC_SERVER_PORT = 8081;
export const DEFAULT_METRICS_PROM_EXPORTER_PORT = 5557;
export const DEFAULT_CLUSTER_NAME = "DefaultCluster";
/** Upstream messageDelayLevel: the 18 legacy delay levels. */
export const DEFAULT_MESSAGE_DELAY_LEVEL = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

export const BROKER_CONFIG_SCHEMA = {
  // ---- identity and addresses (BrokerIdentity, BrokerConfig, NettyServerConfig)
  brokerClusterName: def.string(DEFAULT_CLUSTER_NAME, { status: "used" }),
  /** "" = the host name, as upstream. */
  brokerName: def.string("", { status: "used" }),
  /** 0 = master, > 0 slave; -1 in controller/DLedger mode (assigned there). */
  brokerId: def.long(0, { min: -1, status: "used" }),
  /** "" = the first non-loopback IPv4 address. Store host of records and the address registered to NameServers. */
  brokerIP1: def.string("", { status: "used" }),
  /** "" = brokerIP1. Address slaves use for HA. */
  brokerIP2: def.string("", PENDING),
  /** `host:port;host:port`; "" = env NAMESRV_ADDR. */
  namesrvAddr: def.string("", { status: "used" }),
  /** The broker's internal RPC port; 0 = chosen by the OS. */
  listenPort: def.int(DEFAULT_LISTEN_PORT, { ...PORT, status: "used" }),
  /** 0 = listenPort + 1, as upstream. */
  haListenPort: def.int(0, { ...PORT, ...PENDING }),
  /** PERM_READ 4 | PERM_WRITE 2 (| PERM_INHERIT 1). */
  brokerPermission: def.int(6, { min: 0, max: 7, status: "used" }),
  rocketmqHome: def.string("", { status: "inert", note: "no install directory is needed" }),
  isolateLogEnable: def.bool(false, { status: "inert", note: "logs go to stdout as JSON" }),
  // ---- roles and flushing (MessageStoreConfig)
  brokerRole: def.enum(
    [BrokerRole.ASYNC_MASTER, BrokerRole.SYNC_MASTER, BrokerRole.SLAVE],
    BrokerRole.ASYNC_MASTER,
    {
      status: "used",
    },
  ),
  flushDiskType: def.enum([FlushDiskType.ASYNC_FLUSH, FlushDiskType.SYNC_FLUSH], FlushDiskType.ASYNC_FLUSH, {
    status: "used",
  }),
  flushDiskTyp: def.string("", {
    status: "ignored",
    note: "a misspelling of flushDiskType found in published DLedger configs; upstream ignores it, so flushDiskType keeps its own value",
  }),
  flushIntervalCommitLog: def.int(500, { ...POSITIVE, status: "used" }),
  flushCommitLogLeastPages: def.int(4, { ...NON_NEGATIVE, status: "used" }),
  flushCommitLogThoroughInterval: def.int(10_000, { ...POSITIVE, status: "used" }),
  flushCommitLogTimed: def.bool(true, {
    status: "inert",
    note: "the flush loop always sleeps a fixed interval",
  }),
  flushIntervalConsumeQueue: def.int(1000, { ...POSITIVE, status: "used" }),
  flushConsumeQueueLeastPages: def.int(2, { ...NON_NEGATIVE, status: "used" }),
  flushConsumeQueueThoroughInterval: def.int(60_000, { ...POSITIVE, status: "used" }),
  syncFlushTimeout: def.int(5000, { ...POSITIVE, status: "used" }),
  putMessageTimeout: def.int(8000, { ...POSITIVE, ...PENDING }),
  slaveTimeout: def.int(3000, { ...POSITIVE, ...PENDING }),
  checkCRCOnRecover: def.bool(true, { status: "used" }),
  transientStorePoolEnable: def.bool(false, NO_MMAP),
  transientStorePoolSize: def.int(5, { ...NON_NEGATIVE, ...NO_MMAP }),
  commitIntervalCommitLog: def.int(200, { ...POSITIVE, ...NO_MMAP }),
  commitCommitLogLeastPages: def.int(4, { ...NON_NEGATIVE, ...NO_MMAP }),
  commitCommitLogThoroughInterval: def.int(200, { ...POSITIVE, ...NO_MMAP }),
  writeWithoutMmap: def.bool(false, NO_MMAP),
  warmMapedFileEnable: def.bool(false, NO_MMAP),
  flushLeastPagesWhenWarmMapedFile: def.int(4096, { ...NON_NEGATIVE, ...NO_MMAP }),
  mappedFileSwapEnable: def.bool(true, NO_MMAP),
  // ---- paths (MessageStoreConfig; the 3.x-era keys storePathConsumeQueue.. are read too, as the seeds set them)
  /** "" = ~/store. */
  storePathRootDir: def.string("", { path: true, status: "used" }),
  /** "" = {storePathRootDir}/commitlog. */
  storePathCommitLog: def.string("", { path: true, status: "used" }),
  /** "" = {storePathRootDir}/consumequeue. */
  storePathConsumeQueue: def.string("", { path: true, ...PENDING }),
  /** "" = {storePathRootDir}/index. */
  storePathIndex: def.string("", { path: true, ...PENDING }),
  /** "" = {storePathRootDir}/checkpoint. */
  storeCheckpoint: def.string("", { path: true, ...PENDING }),
  /** "" = {storePathRootDir}/abort. */
  abortFile: def.string("", { path: true, ...PENDING }),
  /** "" = {storePathRootDir}/dledger_commitlog (DLedger mode). */
  storePathDLedgerCommitLog: def.string("", { path: true, ...PENDING }),
  /** "" = {storePathRootDir}/epochFileCheckpoint (controller mode). */
  storePathEpochFile: def.string("", { path: true, ...PENDING }),
  storeType: def.enum(["default"], "default", {
    status: "used",
    note: "only the file store exists (upstream also offers defaultRocksDB)",
  }),
  // ---- segment sizes (both spellings occur in the wild: `maped` is the 3.x/4.0 spelling)
  mappedFileSizeCommitLog: def.int(1024 * 1024 * 1024, {
    min: 4096,
    aliases: ["mapedFileSizeCommitLog"],
    status: "used",
  }),
  /** Rounded up to a multiple of 20 bytes (one ConsumeQueue unit), as upstream. */
  mappedFileSizeConsumeQueue: def.int(300_000 * 20, {
    min: 20,
    aliases: ["mapedFileSizeConsumeQueue"],
    status: "used",
  }),
  enableConsumeQueueExt: def.bool(false, { status: "inert", note: "no ConsumeQueue extension file" }),
  maxMessageSize: def.int(4 * 1024 * 1024, { ...POSITIVE, status: "used" }),
  maxFilterMessageSize: def.int(16_000, { ...POSITIVE, ...PENDING }),
  accessMessageInMemoryMaxRatio: def.int(40, { ...RATIO, status: "used" }),
  // ---- retention
  deleteWhen: def.string("04", { status: "used" }),
  fileReservedTime: def.int(72, { ...NON_NEGATIVE, status: "used" }),
  diskMaxUsedSpaceRatio: def.int(75, { ...RATIO, status: "used" }),
  diskSpaceCleanForciblyRatio: def.int(85, { ...RATIO, status: "used" }),
  diskSpaceWarningLevelRatio: def.int(90, { ...RATIO, status: "used" }),
  cleanResourceInterval: def.int(10_000, { ...POSITIVE, status: "used" }),
  deleteFileBatchMax: def.int(10, { ...POSITIVE, status: "used" }),
  deleteCommitLogFilesInterval: def.int(100, { ...NON_NEGATIVE, ...PENDING }),
  deleteConsumeQueueFilesInterval: def.int(100, { ...NON_NEGATIVE, ...PENDING }),
  destroyMapedFileIntervalForcibly: def.int(120_000, { ...NON_NEGATIVE, ...NO_MMAP }),
  redeleteHangedFileInterval: def.int(120_000, { ...NON_NEGATIVE, ...NO_MMAP }),
  cleanFileForciblyEnable: def.bool(true, PENDING),
  // ---- index
  messageIndexEnable: def.bool(true, { status: "used" }),
  maxHashSlotNum: def.int(5_000_000, { ...POSITIVE, status: "used" }),
  maxIndexNum: def.int(20_000_000, { min: 2, status: "used" }),
  messageIndexSafe: def.bool(false, { status: "inert", note: "the index keeps its own durable point" }),
  maxMsgsNumBatch: def.int(64, { ...POSITIVE, ...PENDING }),
  defaultQueryMaxNum: def.int(32, { ...POSITIVE, ...PENDING }),
  // ---- topics and groups (BrokerConfig)
  autoCreateTopicEnable: def.bool(true, { status: "used" }),
  defaultTopicQueueNums: def.int(8, { ...POSITIVE, status: "used" }),
  clusterTopicEnable: def.bool(true, { status: "used" }),
  brokerTopicEnable: def.bool(true, { status: "used" }),
  traceTopicEnable: def.bool(false, { status: "used" }),
  msgTraceTopicName: def.string("RMQ_SYS_TRACE_TOPIC", { status: "used" }),
  autoCreateSubscriptionGroup: def.bool(true, { status: "used" }),
  enableCreateSysGroup: def.bool(true, PENDING),
  validateSystemTopicWhenUpdateTopic: def.bool(true, PENDING),
  reviveQueueNum: def.int(8, { ...POSITIVE, status: "used" }),
  flushConsumerOffsetInterval: def.int(5000, { ...POSITIVE, status: "used" }),
  flushConsumerOffsetHistoryInterval: def.int(60_000, {
    ...POSITIVE,
    status: "inert",
    note: "no offset history file",
  }),
  useServerSideResetOffset: def.bool(true, PENDING),
  notifyConsumerIdsChangedEnable: def.bool(true, PENDING),
  // ---- request handling (Java executors: accepted, no effect)
  sendMessageThreadPoolNums: def.int(Math.min(PROCESSORS, 4), { ...POSITIVE, ...THREADS }),
  putMessageFutureThreadPoolNums: def.int(Math.min(PROCESSORS, 4), { ...POSITIVE, ...THREADS }),
  pullMessageThreadPoolNums: def.int(16 + PROCESSORS * 2, { ...POSITIVE, ...THREADS }),
  litePullMessageThreadPoolNums: def.int(16 + PROCESSORS * 2, { ...POSITIVE, ...THREADS }),
  ackMessageThreadPoolNums: def.int(16, { ...POSITIVE, ...THREADS }),
  processReplyMessageThreadPoolNums: def.int(16 + PROCESSORS * 2, { ...POSITIVE, ...THREADS }),
  queryMessageThreadPoolNums: def.int(8 + PROCESSORS, { ...POSITIVE, ...THREADS }),
  adminBrokerThreadPoolNums: def.int(16, { ...POSITIVE, ...THREADS }),
  clientManageThreadPoolNums: def.int(32, { ...POSITIVE, ...THREADS }),
  consumerManageThreadPoolNums: def.int(32, { ...POSITIVE, ...THREADS }),
  heartbeatThreadPoolNums: def.int(Math.min(32, PROCESSORS), { ...POSITIVE, ...THREADS }),
  endTransactionThreadPoolNums: def.int(Math.max(8 + PROCESSORS * 2, 16), { ...POSITIVE, ...THREADS }),
  recoverThreadPoolNums: def.int(32, { ...POSITIVE, ...THREADS }),
  sendThreadPoolQueueCapacity: def.int(10_000, { ...POSITIVE, ...QUEUE }),
  putThreadPoolQueueCapacity: def.int(10_000, { ...POSITIVE, ...QUEUE }),
  pullThreadPoolQueueCapacity: def.int(100_000, { ...POSITIVE, ...QUEUE }),
  ackThreadPoolQueueCapacity: def.int(100_000, { ...POSITIVE, ...QUEUE }),
  queryThreadPoolQueueCapacity: def.int(20_000, { ...POSITIVE, ...QUEUE }),
  heartbeatThreadPoolQueueCapacity: def.int(50_000, { ...POSITIVE, ...QUEUE }),
  endTransactionPoolQueueCapacity: def.int(100_000, { ...POSITIVE, ...QUEUE }),
  brokerFastFailureEnable: def.bool(true, PENDING),
  waitTimeMillsInSendQueue: def.long(200, { ...NON_NEGATIVE, ...PENDING }),
  waitTimeMillsInPullQueue: def.long(5000, { ...NON_NEGATIVE, ...PENDING }),
  longPollingEnable: def.bool(true, PENDING),
  shortPollingTimeMills: def.long(1000, { ...NON_NEGATIVE, ...PENDING }),
  transferMsgByHeap: def.bool(true, { status: "inert", note: "messages are always sent from Buffers" }),
  // ---- NameServer registration
  registerBrokerTimeoutMills: def.int(24_000, { ...POSITIVE, status: "used" }),
  registerNameServerPeriod: def.int(30_000, { min: 10_000, max: 60_000, status: "used" }),
  forceRegister: def.bool(true, PENDING),
  fetchNamesrvAddrByAddressServer: def.bool(false, { status: "inert", note: "no address server support" }),
  // ---- replication (classic HA)
  slaveReadEnable: def.bool(false, PENDING),
  haMasterAddress: def.string("", PENDING),
  haSendHeartbeatInterval: def.int(5000, { ...POSITIVE, ...PENDING }),
  haHousekeepingInterval: def.int(20_000, { ...POSITIVE, ...PENDING }),
  haTransferBatchSize: def.int(32 * 1024, { ...POSITIVE, ...PENDING }),
  haMaxGapNotInSync: def.int(256 * 1024 * 1024, { ...POSITIVE, ...PENDING }),
  haMaxTimeSlaveNotCatchup: def.long(15_000, { ...POSITIVE, ...PENDING }),
  enableSlaveActingMaster: def.bool(false, PENDING),
  duplicationEnable: def.bool(false, PENDING),
  // ---- controller mode (RIP-44)
  enableControllerMode: def.bool(false, PENDING),
  /** `host:port;host:port` of the controllers. */
  controllerAddr: def.string("", PENDING),
  syncBrokerMetadataPeriod: def.long(5000, { ...POSITIVE, ...PENDING }),
  checkSyncStateSetPeriod: def.long(5000, { ...POSITIVE, ...PENDING }),
  syncControllerMetadataPeriod: def.long(10_000, { ...POSITIVE, ...PENDING }),
  controllerHeartBeatTimeoutMills: def.long(10_000, { ...POSITIVE, ...PENDING }),
  brokerElectionPriority: def.int(INT_MAX, PENDING),
  allAckInSyncStateSet: def.bool(false, PENDING),
  enableAutoInSyncReplicas: def.bool(false, PENDING),
  totalReplicas: def.int(1, { ...POSITIVE, ...PENDING }),
  inSyncReplicas: def.int(1, { ...POSITIVE, ...PENDING }),
  minInSyncReplicas: def.int(1, { ...POSITIVE, ...PENDING }),
  // ---- DLedger mode (upstream spells it "DLeger"; the "DLedger" spelling is common in articles and the seeds)
  enableDLegerCommitLog: def.bool(false, { aliases: ["enableDLedgerCommitLog"], ...PENDING }),
  dLegerGroup: def.string("", { aliases: ["dLedgerGroup"], ...PENDING }),
  /** `n0-host:port;n1-host:port;...` */
  dLegerPeers: def.string("", { aliases: ["dLedgerPeers"], ...PENDING }),
  dLegerSelfId: def.string("", { aliases: ["dLedgerSelfId"], ...PENDING }),
  preferredLeaderId: def.string("", PENDING),
  enableBatchPush: def.bool(false, PENDING),
  heartBeatTimeIntervalMs: def.int(2000, {
    status: "ignored",
    note: "a DLedger library setting the broker never reads from broker.conf; our Raft timing has its own defaults",
  }),
  minElectTimeIntervalMs: def.int(300, {
    status: "ignored",
    note: "not a RocketMQ or DLedger key (DLedger has minVoteIntervalMs); upstream ignores it",
  }),
  maxElectTimeIntervalMs: def.int(1000, {
    status: "ignored",
    note: "not a RocketMQ or DLedger key (DLedger has maxVoteIntervalMs); upstream ignores it",
  }),
  maxPushTimeOutMillis: def.int(1000, {
    status: "ignored",
    note: "not a RocketMQ or DLedger key (DLedger has maxPushTimeOutMs); upstream ignores it",
  }),
  // ---- delay and timer messages
  messageDelayLevel: def.string(DEFAULT_MESSAGE_DELAY_LEVEL, PENDING),
  timerWheelEnable: def.bool(true, { status: "used" }),
  /** Longest delay a timer message may ask for (3 days). */
  timerMaxDelaySec: def.int(3 * 24 * 3600, { ...POSITIVE, status: "used" }),
  timerPrecisionMs: def.int(1000, { ...POSITIVE, status: "used" }),
  timerFlushIntervalMs: def.int(1000, { ...POSITIVE, status: "used" }),
  timerRollWindowSlot: def.int(2 * 24 * 3600, { ...POSITIVE, status: "used" }),
  mappedFileSizeTimerLog: def.int(100 * 1024 * 1024, { min: 4096, status: "used" }),
  // ---- transactions
  transactionTimeOut: def.long(6000, { ...POSITIVE, status: "used" }),
  transactionCheckInterval: def.long(30_000, { ...POSITIVE, status: "used" }),
  transactionCheckMax: def.int(15, { ...POSITIVE, status: "used" }),
  rejectTransactionMessage: def.bool(false, { status: "used" }),
  // ---- lite topics
  /** Lite topics (LMQ ConsumeQueues) the broker keeps at most; a send to a new one beyond is LITE_TOPIC_QUOTA_EXCEEDED. */
  maxLmqConsumeQueueNum: def.int(20_000, { ...POSITIVE, status: "used" }),
  // ---- message types, filters, misc features
  enableTopicMessageTypeCheck: def.bool(true, {
    status: "used",
    note: "upstream ProxyConfig key, read here for local mode",
  }),
  enableMixedMessageType: def.bool(false, PENDING),
  /** SQL92 filters; `rmq local` and `rmq proxy --mode local` turn it on unless the file says otherwise. */
  enablePropertyFilter: def.bool(false, { status: "used" }),
  filterSupportRetry: def.bool(false, PENDING),
  storeReplyMessageEnable: def.bool(true, PENDING),
  recallMessageEnable: def.bool(false, { status: "used" }),
  readUnCommitted: def.bool(false, PENDING),
  aclEnable: def.bool(false, { status: "inert", note: "ACL is not implemented" }),
  traceOn: def.bool(true, { status: "inert", note: "message tracing is not implemented" }),
  enableLmq: def.bool(false, { status: "inert", note: "light message queues are not implemented" }),
  enableMultiDispatch: def.bool(false, { status: "inert", note: "light message queues are not implemented" }),
  // ---- metrics (upstream exports nothing by default; every process here serves Prometheus on this port)
  metricsExporterType: def.enum(["DISABLE", "OTLP_GRPC", "PROM", "LOG"], "DISABLE", {
    status: "inert",
    note: "/metrics is always served on metricsPromExporterPort",
  }),
  /** /metrics, /healthz and /readyz; 0 = chosen by the OS. */
  metricsPromExporterPort: def.int(DEFAULT_METRICS_PROM_EXPORTER_PORT, { ...PORT, status: "used" }),
  metricsPromExporterHost: def.string("", PENDING),
  // ---- proxy keys (upstream ProxyConfig), read from broker.conf by `rmq local`, whose proxy has no file of its own
  /** The gRPC proxy port; 0 = chosen by the OS. */
  grpcServerPort: def.int(DEFAULT_GRPC_SERVER_PORT, { ...PORT, status: "used", note: PROXY_KEY }),
  /** Shortest invisible duration a ReceiveMessage may ask for (10 s). */
  minInvisibleTimeMillsForRecv: def.long(10_000, { ...NON_NEGATIVE, status: "used", note: PROXY_KEY }),
  /** Shortest long poll a ReceiveMessage is held for (5 s). */
  grpcClientConsumerMinLongPollingTimeoutMillis: def.long(5000, {
    ...NON_NEGATIVE,
    status: "used",
    note: PROXY_KEY,
  }),
  /** Longest long poll a ReceiveMessage is held for (20 s); also what push consumers are told. */
  grpcClientConsumerMaxLongPollingTimeoutMillis: def.long(20_000, {
    ...NON_NEGATIVE,
    status: "used",
    note: PROXY_KEY,
  }),
} as const;

export type BrokerConfigSchema = typeof BROKER_CONFIG_SCHEMA;
export type BrokerConfigValues = Bound<BrokerConfigSchema>;

export interface HostPort {
  host: string;
  port: number;
}
export interface DLedgerPeer extends HostPort {
  id: string;
}

/** The bound, defaulted and checked broker settings. */
export interface BrokerConfig extends BrokerConfigValues {
  /** The store's settings, taken from the same keys. */
  store: MessageStoreConfig;
  /** namesrvAddr split on `;`. */
  namesrvAddrList: HostPort[];
  /** controllerAddr split on `;` (controller mode). */
  controllerAddrList: HostPort[];
  /** dLegerPeers parsed (DLedger mode). */
  dLegerPeerList: DLedgerPeer[];
}

export interface BrokerConfigOptions {
  /** Unknown keys. */
  onWarning?: (w: ConfigNotice) => void;
  /** Ignored keys, alias spellings, duplicate keys. */
  onNotice?: (n: ConfigNotice) => void;
  /** Environment for NAMESRV_ADDR (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Home directory for `~` and `${user.home}` (default os.homedir()). */
  home?: string;
  /** Host name for the default brokerName (default os.hostname()). */
  hostName?: string;
  /** Address for the default brokerIP1 (default: first non-loopback IPv4). */
  localAddress?: string;
}

/** The first non-internal IPv4 address, as upstream NetworkUtil.getLocalAddress prefers; 127.0.0.1 if none. */
export function localIPv4Address(): string {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family === "IPv4" && !a.internal) return a.address;
    }
  }
  return "127.0.0.1";
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^\s:;]+):(\d{1,5})$/;

function parseHostPortList(key: string, raw: string, origin: string): HostPort[] {
  if (raw.trim() === "") return [];
  return raw
    .split(";")
    .filter((s) => s.trim() !== "")
    .map((part) => {
      const m = HOST_PORT.exec(part.trim());
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65535) {
        throw illegalConfig(
          key,
          raw,
          origin,
          `expected host:port entries separated by ';', e.g. 127.0.0.1:9876;192.168.0.1:9876`,
        );
      }
      return { host: m[1] as string, port };
    });
}

const DLEDGER_PEER = /^([^\s;-]+)-(\[[0-9a-fA-F:.]+\]|[^\s:;]+):(\d{1,5})$/;

function parseDLedgerPeers(raw: string, origin: string): DLedgerPeer[] {
  return raw
    .split(";")
    .filter((s) => s.trim() !== "")
    .map((part) => {
      const m = DLEDGER_PEER.exec(part.trim());
      const port = Number(m?.[3]);
      if (!m || port < 1 || port > 65535) {
        throw illegalConfig(
          "dLegerPeers",
          raw,
          origin,
          "expected id-host:port entries separated by ';', e.g. n0-10.0.0.1:40911;n1-10.0.0.2:40911",
        );
      }
      return { id: m[1] as string, host: m[2] as string, port };
    });
}

const DELETE_WHEN = /^(\d{1,2})(;\d{1,2})*$/;

function checkDeleteWhen(raw: string, origin: string): void {
  const ok = DELETE_WHEN.test(raw) && raw.split(";").every((h) => Number(h) <= 23);
  if (!ok)
    throw illegalConfig(
      "deleteWhen",
      raw,
      origin,
      "expected hours of day 00-23 separated by ';', e.g. 04 or 04;16",
    );
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}

/**
 * Binds layers (lowest precedence first: the file, then command-line overrides) to the broker
 * schema, fills derived defaults and checks cross-key rules. Throws RmqError(IllegalConfig).
 */
export function buildBrokerConfig(
  layers: readonly ConfigLayer[],
  opts: BrokerConfigOptions = {},
): BrokerConfig {
  const origins = new Map<string, string>();
  const home = opts.home ?? homedir();
  const v = bindConfig(BROKER_CONFIG_SCHEMA, layers, {
    onWarning: opts.onWarning,
    onNotice: opts.onNotice,
    home,
    origins,
  });
  const from = (key: string) => origins.get(key) ?? "default";

  // Derived defaults, as upstream fills them.
  if (v.brokerName === "") v.brokerName = opts.hostName ?? (hostname() || "DEFAULT_BROKER");
  if (v.brokerIP1 === "") v.brokerIP1 = opts.localAddress ?? localIPv4Address();
  if (v.brokerIP2 === "") v.brokerIP2 = v.brokerIP1;
  if (v.namesrvAddr === "") v.namesrvAddr = (opts.env ?? process.env).NAMESRV_ADDR ?? "";
  if (v.haListenPort === 0) v.haListenPort = v.listenPort + 1;
  if (v.storePathRootDir === "") v.storePathRootDir = join(home, "store");
  const root = v.storePathRootDir;
  if (v.storePathCommitLog === "") v.storePathCommitLog = join(root, "commitlog");
  if (v.storePathConsumeQueue === "") v.storePathConsumeQueue = join(root, "consumequeue");
  if (v.storePathIndex === "") v.storePathIndex = join(root, "index");
  if (v.storeCheckpoint === "") v.storeCheckpoint = join(root, "checkpoint");
  if (v.abortFile === "") v.abortFile = join(root, "abort");
  if (v.storePathDLedgerCommitLog === "") v.storePathDLedgerCommitLog = join(root, "dledger_commitlog");
  if (v.storePathEpochFile === "") v.storePathEpochFile = join(root, "epochFileCheckpoint");
  v.mappedFileSizeConsumeQueue = Math.ceil(v.mappedFileSizeConsumeQueue / 20) * 20;

  // Cross-key rules (upstream BrokerStartup and our own).
  checkDeleteWhen(v.deleteWhen, from("deleteWhen"));
  const namesrvAddrList = parseHostPortList("namesrvAddr", v.namesrvAddr, from("namesrvAddr"));
  const controllerAddrList = parseHostPortList("controllerAddr", v.controllerAddr, from("controllerAddr"));
  if (v.enableControllerMode && v.enableDLegerCommitLog) {
    throw illegalConfig(
      "enableDLegerCommitLog",
      "true",
      from("enableDLegerCommitLog"),
      "controller mode (enableControllerMode=true) and DLedger mode cannot both be enabled",
    );
  }
  if (v.enableControllerMode && controllerAddrList.length === 0) {
    throw illegalConfig(
      "controllerAddr",
      v.controllerAddr,
      from("controllerAddr"),
      "controller mode needs the controllers' host:port list",
    );
  }
  let dLegerPeerList: DLedgerPeer[] = [];
  if (v.enableDLegerCommitLog) {
    if (v.dLegerGroup === "") {
      throw illegalConfig(
        "dLegerGroup",
        "",
        from("dLegerGroup"),
        "DLedger mode needs a group name (usually the brokerName)",
      );
    }
    dLegerPeerList = parseDLedgerPeers(v.dLegerPeers, from("dLegerPeers"));
    if (dLegerPeerList.length === 0) {
      throw illegalConfig(
        "dLegerPeers",
        v.dLegerPeers,
        from("dLegerPeers"),
        "DLedger mode needs id-host:port peers separated by ';'",
      );
    }
    const ids = dLegerPeerList.map((p) => p.id);
    if (!ids.includes(v.dLegerSelfId)) {
      throw illegalConfig(
        "dLegerSelfId",
        v.dLegerSelfId,
        from("dLegerSelfId"),
        `allowed values are the peer ids in dLegerPeers: ${ids.join(", ")}`,
      );
    }
    v.brokerId = -1; // as upstream: the Raft leader is the master, ids are not configured
  } else if (!v.enableControllerMode) {
    if (v.brokerRole === BrokerRole.SLAVE) {
      if (v.brokerId <= 0) {
        throw illegalConfig(
          "brokerId",
          String(v.brokerId),
          from("brokerId"),
          "a SLAVE needs brokerId > 0 (0 is the master)",
        );
      }
    } else {
      v.brokerId = 0; // as upstream: a master's id is always 0
    }
  }

  const store: MessageStoreConfig = defaultMessageStoreConfig(root);
  const storeRecord = store as unknown as Record<string, unknown>;
  const values = v as unknown as Record<string, unknown>;
  for (const k of Object.keys(storeRecord)) {
    if (k in values) storeRecord[k] = values[k];
  }
  store.diskMaxUsedSpaceRatio = clamp(v.diskMaxUsedSpaceRatio, 10, 95);
  store.diskSpaceCleanForciblyRatio = clamp(v.diskSpaceCleanForciblyRatio, 30, 85);
  store.diskSpaceWarningLevelRatio = clamp(v.diskSpaceWarningLevelRatio, 35, 90);

  return { ...v, store, namesrvAddrList, controllerAddrList, dLegerPeerList };
}

export interface LoadBrokerConfigOptions extends BrokerConfigOptions {
  /** broker.conf path (-c). */
  file?: string;
  /** Command-line overrides by key, e.g. `{ namesrvAddr: "127.0.0.1:9876" }` for `-n`. */
  cli?: Readonly<Record<string, string | undefined>>;
}

/** Reads `file` (if any), then applies `cli` on top: CLI overrides > file > defaults. */
export async function loadBrokerConfig(opts: LoadBrokerConfigOptions = {}): Promise<BrokerConfig> {
  const layers: ConfigLayer[] = [];
  if (opts.file !== undefined) {
    const doc = await readPropertiesFile(opts.file);
    layers.push({ source: doc.source, entries: doc.entries });
  }
  if (opts.cli !== undefined) layers.push({ source: "command line", entries: opts.cli });
  return buildBrokerConfig(layers, opts);
}
