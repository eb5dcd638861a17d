// The NameServer process core: NamesrvService (proto/rmq/namesrv/v1/namesrv.proto) served with
// common/rpc-server.ts over the route tables (route-info-manager.ts) and the kv config
// (kv-config-manager.ts), plus the timer that expires silent brokers every
// scanNotActiveBrokerInterval. The CLI (`rmq namesrv`, `rmq local`) wires config, logging, the
// metrics endpoint and signals around it:
//
//   const namesrv = await createNamesrv({ config: await loadNamesrvConfig(file, { listenPort }), logger });
//   ...
//   await namesrv.close();

import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";
import { createRpcServer } from "../common/rpc-server.ts";
import {
  type BrokerData as BrokerDataMsg,
  BrokerDataSchema,
  type BrokerNameList,
  BrokerNameListSchema,
  type DataVersion as DataVersionMsg,
  NamesrvService,
  type QueueData as QueueDataMsg,
  QueueDataSchema,
  TopicRouteDataSchema,
} from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import {
  createKvConfigManager,
  type KvConfigManager,
  NAMESPACE_ORDER_TOPIC_CONFIG,
} from "./kv-config-manager.ts";
import type { NamesrvConfig } from "./namesrv-config.ts";
import {
  type BrokerData,
  type BrokerLiveInfo,
  type DataVersion,
  MESSAGE_TYPE_ATTRIBUTE,
  type QueueData,
  RouteInfoManager,
} from "./route-info-manager.ts";

export interface NamesrvOptions {
  config: NamesrvConfig;
  logger?: Logger;
  /** Clock in epoch ms for heartbeat expiry and needWaitForService (tests inject one). */
  now?: () => number;
}

export interface Namesrv {
  /** The port actually bound (config.listenPort, or the OS's choice when it is 0). */
  readonly port: number;
  readonly routeInfoManager: RouteInfoManager;
  readonly kvConfigManager: KvConfigManager;
  /** Runs the expiry scan now (the timer also runs it every scanNotActiveBrokerInterval). */
  scanNotActiveBroker(): BrokerLiveInfo[];
  /** Stops the scan and the server (graceful, bounded by shutdownWaitTimeSeconds). Idempotent. */
  close(): Promise<void>;
}

function required(field: string, value: string): string {
  if (value === "") throw new RmqError(ErrorCode.IllegalArgument, `${field} must not be empty`);
  return value;
}

function toBrokerId(field: string, id: bigint): number {
  if (id < 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RmqError(ErrorCode.IllegalArgument, `${field} must be a non-negative integer, got ${id}`);
  }
  return Number(id);
}

function fromDataVersion(v: DataVersionMsg | undefined): DataVersion {
  return {
    stateVersion: Number(v?.stateVersion ?? 0n),
    timestamp: Number(v?.timestamp ?? 0n),
    counter: Number(v?.counter ?? 0n),
  };
}

function idMap(m: ReadonlyMap<number, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, addr] of m) out[String(id)] = addr;
  return out;
}

function toBrokerDataMsg(bd: BrokerData): BrokerDataMsg {
  return create(BrokerDataSchema, {
    cluster: bd.cluster,
    brokerName: bd.brokerName,
    brokerAddrs: idMap(bd.brokerAddrs),
    zoneName: bd.zoneName,
    enableActingMaster: bd.enableActingMaster,
    proxyAddrs: idMap(bd.proxyAddrs),
  });
}

function toQueueDataMsg(qd: QueueData): QueueDataMsg {
  return create(QueueDataSchema, qd);
}

export async function createNamesrv(opts: NamesrvOptions): Promise<Namesrv> {
  const { config } = opts;
  const log = opts.logger ?? silentLogger();
  const now = opts.now ?? Date.now;
  const routes = new RouteInfoManager({
    supportActingMaster: config.supportActingMaster,
    deleteTopicWithBrokerRegistration: config.deleteTopicWithBrokerRegistration,
    now,
    logger: log,
  });
  const kv = await createKvConfigManager(config.kvConfigPath, log);
  const startedAt = now();

  const checkReady = (): void => {
    if (config.needWaitForService && now() - startedAt < config.waitSecondsForService * 1000) {
      throw new RmqError(
        ErrorCode.RpcUnavailable,
        "name server not ready: waiting for brokers to register (needWaitForService)",
      );
    }
  };

  const impl: ServiceImpl<typeof NamesrvService> = {
    registerBroker(req) {
      const result = routes.registerBroker({
        clusterName: required("clusterName", req.clusterName),
        brokerName: required("brokerName", req.brokerName),
        brokerId: toBrokerId("brokerId", req.brokerId),
        brokerAddr: required("brokerAddr", req.brokerAddr),
        haServerAddr: req.haServerAddr,
        proxyAddr: req.proxyAddr,
        zoneName: req.zoneName,
        enableActingMaster: req.enableActingMaster,
        heartbeatTimeoutMillis: Number(req.heartbeatTimeoutMillis),
        dataVersion: fromDataVersion(req.dataVersion),
        topicConfigs: req.topicConfigs.map((t) => ({
          topicName: t.topicName,
          readQueueNums: t.readQueueNums,
          writeQueueNums: t.writeQueueNums,
          perm: t.perm,
          topicSysFlag: t.topicSysFlag,
          messageType: t.attributes[MESSAGE_TYPE_ATTRIBUTE] ?? "",
        })),
      });
      const kvTable = config.returnOrderTopicConfigToBroker
        ? Object.fromEntries(kv.list(NAMESPACE_ORDER_TOPIC_CONFIG))
        : {};
      return { masterAddr: result.masterAddr, haServerAddr: result.haServerAddr, kvTable };
    },
    unregisterBroker(req) {
      routes.unregisterBroker({
        clusterName: required("clusterName", req.clusterName),
        brokerAddr: required("brokerAddr", req.brokerAddr),
        brokerName: required("brokerName", req.brokerName),
        brokerId: toBrokerId("brokerId", req.brokerId),
      });
      return {};
    },
    getRouteInfoByTopic(req) {
      checkReady();
      const route = routes.pickupTopicRouteData(required("topic", req.topic));
      const orderTopicConf = config.orderMessageEnable
        ? (kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, req.topic) ?? "")
        : "";
      return {
        route: create(TopicRouteDataSchema, {
          orderTopicConf,
          queueDatas: route.queueDatas.map(toQueueDataMsg),
          brokerDatas: route.brokerDatas.map(toBrokerDataMsg),
        }),
      };
    },
    getBrokerClusterInfo() {
      const info = routes.getAllClusterInfo();
      const brokerAddrTable: Record<string, BrokerDataMsg> = {};
      for (const [name, bd] of info.brokerAddrTable) brokerAddrTable[name] = toBrokerDataMsg(bd);
      const clusterAddrTable: Record<string, BrokerNameList> = {};
      for (const [cluster, names] of info.clusterAddrTable) {
        clusterAddrTable[cluster] = create(BrokerNameListSchema, { brokerNames: names });
      }
      return { brokerAddrTable, clusterAddrTable };
    },
    getAllTopicList() {
      if (!config.enableAllTopicList) {
        throw new RmqError(
          ErrorCode.Forbidden,
          "listing all topics is disabled on this NameServer (enableAllTopicList=false)",
        );
      }
      return { topics: routes.getAllTopicList() };
    },
    deleteTopicInNamesrv(req) {
      routes.deleteTopic(required("topic", req.topic), req.clusterName);
      log.info({ topic: req.topic, clusterName: req.clusterName }, "topic deleted from routes");
      return {};
    },
    async putKvConfig(req) {
      await kv.put(req.namespace, req.key, req.value);
      return {};
    },
    getKvConfig(req) {
      return { value: kv.get(req.namespace, req.key) };
    },
    async deleteKvConfig(req) {
      await kv.delete(req.namespace, req.key);
      return {};
    },
    getKvListByNamespace(req) {
      return { table: Object.fromEntries(kv.list(req.namespace)) };
    },
  };

  const server = await createRpcServer({
    host: config.bindAddress,
    port: config.listenPort,
    routes: (router) => router.service(NamesrvService, impl),
    logger: log,
    idleTimeoutMs: config.serverChannelMaxIdleTimeSeconds * 1000,
    shutdownGraceMs: config.shutdownWaitTimeSeconds * 1000,
  });

  const scan = (): BrokerLiveInfo[] => routes.scanNotActiveBroker();
  const timer = setInterval(scan, config.scanNotActiveBrokerInterval).unref();
  log.info(
    { address: `${config.bindAddress}:${server.port}`, kvConfigPath: config.kvConfigPath },
    "NameServer started",
  );

  let closing: Promise<void> | undefined;
  return {
    port: server.port,
    routeInfoManager: routes,
    kvConfigManager: kv,
    scanNotActiveBroker: scan,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        await server.close();
        log.info("NameServer stopped");
      })();
      return closing;
    },
  };
}
