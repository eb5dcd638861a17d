// The broker process (upstream BrokerController): opens (and locks) the store, loads the topic,
// subscription-group and consumer-offset tables, builds the message service, serves the broker's
// internal RPC on listenPort, registers with the NameServers, and stops all of it in order.
//
//   const broker = await createBrokerController({ config, logger, metrics: registry,
//     extraRoutes: [(router, broker) => router.service(BrokerAdminService, adminImpl(broker))] });
//   broker.messageService.sendMessages(...);   // in-process callers (local proxy)
//   await broker.shutdown();                     // unregister, end long polls, persist, close the store
//
// Other services are mounted on the RPC server through `extraRoutes`, which run before it listens.
// Topic changes (auto-created topics, admin updates) reach the NameServers within
// TOPIC_CHANGE_CHECK_INTERVAL_MS, or at once through registerTopicsIfChanged().

import type { ConnectRouter } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { ErrorCode, RmqError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { createRpcServer, type RpcServer } from "../common/rpc-server.ts";
import type { BrokerConfig } from "./broker-config.ts";
import { createBrokerMetrics, instrumentMessageService } from "./broker-metrics.ts";
import { type ClientConnections, createClientConnections } from "./client-connections.ts";
import { type BrokerMessageService, createBrokerMessageService } from "./message-service.ts";
import {
  type ConsumerOffsetManager,
  createConsumerOffsetManager,
} from "./metadata/consumer-offset-manager.ts";
import {
  createSubscriptionGroupManager,
  type SubscriptionGroupManager,
} from "./metadata/subscription-group-manager.ts";
import { createTopicConfigManager, type TopicConfigManager } from "./metadata/topic-config-manager.ts";
import { createNamesrvRegistrar, type NamesrvRegistrar } from "./namesrv-registrar.ts";
import type { HostAddress } from "./store/host-address.ts";
import { createMessageStore, type MessageStore } from "./store/message-store.ts";
import { createTimerMessageStore } from "./timer/timer-message-store.ts";

/** How often the topic table is checked for changes the NameServers have not seen yet (ours; upstream registers inline). */
export const TOPIC_CHANGE_CHECK_INTERVAL_MS = 1000;

/** Mounts services on the broker's internal RPC server. */
export type BrokerRoutes = (router: ConnectRouter, broker: BrokerController) => void;

export interface BrokerControllerOptions {
  config: BrokerConfig;
  logger: Logger;
  /** Registry the broker's series go to (their static labels are the registry's default labels). */
  metrics?: Registry;
  /** NameServers to register with, instead of config.namesrvAddr ("" = none). */
  namesrvAddr?: string;
  /** A gRPC proxy serving this broker, advertised in the registration (local mode). */
  proxyAddr?: string;
  /** Interface the internal RPC server binds (default 0.0.0.0). */
  host?: string;
  /** Services mounted on the internal RPC server before it listens (admin service, ...). */
  extraRoutes?: readonly BrokerRoutes[];
}

export interface BrokerController {
  readonly config: BrokerConfig;
  readonly brokerName: string;
  readonly clusterName: string;
  readonly store: MessageStore;
  readonly topics: TopicConfigManager;
  readonly groups: SubscriptionGroupManager;
  readonly offsets: ConsumerOffsetManager;
  /** The message service, its traffic counted in the broker's metrics. */
  readonly messageService: BrokerMessageService;
  /** Clients connected through proxies, by consumer and producer group (consumerConnection). */
  readonly clients: ClientConnections;
  /** The port the internal RPC server listens on (config.listenPort, or the OS's choice for 0). */
  readonly listenPort: number;
  /** brokerIP1:listenPort, as registered with NameServers. */
  readonly brokerAddr: string;
  /** Undefined when no NameServer is configured. */
  readonly registrar: NamesrvRegistrar | undefined;
  /** Registers with every NameServer now when the topic table changed since the last registration. */
  registerTopicsIfChanged(): void;
  /** Why the broker cannot serve right now, or undefined when it can. */
  readyReason(): string | undefined;
  /** Unregisters, stops RPC, ends held polls, persists offsets and closes the store. Idempotent. */
  shutdown(): Promise<void>;
}

export async function createBrokerController(o: BrokerControllerOptions): Promise<BrokerController> {
  const { config } = o;
  const logger = o.logger;
  const storeHost: HostAddress = { address: config.brokerIP1, port: config.listenPort };
  const undo: Array<() => Promise<void>> = [];
  try {
    const store = await createMessageStore(config.store, {
      storeHost,
      logger: logger.child({ component: "store" }),
    });
    undo.push(() => store.shutdown());
    const root = config.storePathRootDir;
    const topics = await createTopicConfigManager({
      storePathRootDir: root,
      brokerClusterName: config.brokerClusterName,
      brokerName: config.brokerName,
      autoCreateTopicEnable: config.autoCreateTopicEnable,
      defaultTopicQueueNums: config.defaultTopicQueueNums,
      clusterTopicEnable: config.clusterTopicEnable,
      brokerTopicEnable: config.brokerTopicEnable,
      traceTopicEnable: config.traceTopicEnable,
      msgTraceTopicName: config.msgTraceTopicName,
      reviveQueueNum: config.reviveQueueNum,
      timerWheelEnable: config.timerWheelEnable,
      enableMixedMessageType: config.enableMixedMessageType,
      validateSystemTopicWhenUpdateTopic: config.validateSystemTopicWhenUpdateTopic,
      logger,
    });
    const groups = await createSubscriptionGroupManager({
      storePathRootDir: root,
      autoCreateSubscriptionGroup: config.autoCreateSubscriptionGroup,
      logger,
    });
    const offsets = await createConsumerOffsetManager({ storePathRootDir: root, logger });
    offsets.startPeriodicPersist(config.flushConsumerOffsetInterval);
    undo.push(() => offsets.close());
    const timer = config.timerWheelEnable
      ? await createTimerMessageStore({
          store,
          topics,
          storePathRootDir: root,
          brokerName: config.brokerName,
          storeHost,
          logger: logger.child({ component: "timer" }),
          config: {
            timerPrecisionMs: config.timerPrecisionMs,
            timerMaxDelaySec: config.timerMaxDelaySec,
            timerFlushIntervalMs: config.timerFlushIntervalMs,
            timerRollWindowSlot: config.timerRollWindowSlot,
            mappedFileSizeTimerLog: config.mappedFileSizeTimerLog,
          },
        })
      : undefined;
    if (timer !== undefined) undo.push(() => timer.shutdown());
    const service = await createBrokerMessageService({
      store,
      topics,
      groups,
      offsets,
      brokerName: config.brokerName,
      clusterName: config.brokerClusterName,
      storeHost,
      timer,
      logger: logger.child({ component: "message-service" }),
      config: {
        autoCreateTopicEnable: config.autoCreateTopicEnable,
        defaultTopicQueueNums: config.defaultTopicQueueNums,
        autoCreateSubscriptionGroup: config.autoCreateSubscriptionGroup,
        reviveQueueNum: config.reviveQueueNum,
        enablePropertyFilter: config.enablePropertyFilter,
        rejectTransactionMessage: config.rejectTransactionMessage,
        recallMessageEnable: config.recallMessageEnable,
        maxLmqConsumeQueueNum: config.maxLmqConsumeQueueNum,
        transaction: {
          transactionTimeOut: config.transactionTimeOut,
          transactionCheckInterval: config.transactionCheckInterval,
          transactionCheckMax: config.transactionCheckMax,
          fileReservedTime: config.fileReservedTime,
        },
      },
    });
    undo.push(() => service.shutdown());
    timer?.start();
    const metrics = createBrokerMetrics({
      registry: o.metrics,
      topics,
      groups,
      brokerPermission: () => config.brokerPermission,
      consumerProgress: (group, topic) => service.consumerProgress(group, topic),
      // Groups without offsets yield no queues, so every subscription group can be visited.
      consumerGroups: () => groups.list().map((g) => g.groupName),
    });
    const messageService = instrumentMessageService(service, metrics);

    // The RPC server's routes need the controller object; it is complete once the server is up.
    let rpc: RpcServer | undefined;
    let registrar: NamesrvRegistrar | undefined;
    let closing: Promise<void> | undefined;
    let registeredTopicsVersion = -1;
    const registerTopicsIfChanged = (): void => {
      const counter = topics.dataVersion.counter;
      if (registrar === undefined || closing !== undefined || counter === registeredTopicsVersion) return;
      registeredTopicsVersion = counter;
      void registrar.registerAll();
    };
    const clients = createClientConnections();
    const controller: BrokerController = {
      config,
      brokerName: config.brokerName,
      clusterName: config.brokerClusterName,
      store,
      topics,
      groups,
      offsets,
      messageService,
      clients,
      get listenPort() {
        return rpc?.port ?? config.listenPort;
      },
      get brokerAddr() {
        return `${config.brokerIP1}:${rpc?.port ?? config.listenPort}`;
      },
      get registrar() {
        return registrar;
      },
      registerTopicsIfChanged,
      readyReason() {
        if (closing !== undefined) return "broker is shutting down";
        if (rpc === undefined) return "broker is starting";
        if (!store.isWritable())
          return "the store refuses writes (disk full, a failed write or shutting down)";
        return undefined;
      },
      shutdown() {
        closing ??= shutdownInOrder();
        return closing;
      },
    };

    const extraRoutes = o.extraRoutes ?? [];
    rpc = await createRpcServer({
      host: o.host ?? "0.0.0.0",
      port: config.listenPort,
      routes: (router) => {
        for (const add of extraRoutes) add(router, controller);
      },
      logger: logger.child({ component: "broker-rpc" }),
    });
    const server = rpc;
    undo.push(() => server.close());

    const namesrvAddr = o.namesrvAddr ?? config.namesrvAddr;
    if (namesrvAddr.trim() !== "") {
      registeredTopicsVersion = topics.dataVersion.counter;
      registrar = await createNamesrvRegistrar({
        namesrvAddr,
        clusterName: config.brokerClusterName,
        brokerName: config.brokerName,
        brokerId: config.brokerId,
        brokerAddr: controller.brokerAddr,
        haServerAddr: `${config.brokerIP2}:${config.haListenPort}`,
        proxyAddr: o.proxyAddr,
        registerNameServerPeriod: config.registerNameServerPeriod,
        registerBrokerTimeoutMills: config.registerBrokerTimeoutMills,
        brokerPermission: config.brokerPermission,
        topics: () => ({ topicConfigs: topics.list(), dataVersion: topics.dataVersion }),
        logger: logger.child({ component: "namesrv-registrar" }),
      });
    } else {
      logger.warn("namesrvAddr is empty: the broker registers with no NameServer");
    }
    const topicCheck = setInterval(registerTopicsIfChanged, TOPIC_CHANGE_CHECK_INTERVAL_MS).unref();

    async function shutdownInOrder(): Promise<void> {
      clearInterval(topicCheck);
      const steps: Array<[string, () => Promise<void>]> = [
        // Clients stop being routed here before anything stops answering.
        ["unregister from NameServers", async () => registrar?.close()],
        ["stop the internal RPC server", () => server.close()],
        // Ends held polls, waits for pop/ack writes under way, persists consumer offsets.
        ["stop the message service", () => service.shutdown()],
        // The timer writes due messages to the store: it stops before the store does.
        ["stop the timer", async () => timer?.shutdown()],
        ["persist consumer offsets", () => offsets.close()],
        ["shut the store down", () => store.shutdown()],
      ];
      let failed: unknown;
      for (const [what, step] of steps) {
        try {
          await step();
        } catch (err) {
          failed ??= err;
          logger.error({ err }, `broker shutdown: cannot ${what}`);
        }
      }
      if (failed !== undefined) {
        throw failed instanceof RmqError
          ? failed
          : new RmqError(ErrorCode.Internal, `broker shutdown failed: ${String(failed)}`, { cause: failed });
      }
      logger.info({ brokerName: config.brokerName }, "broker stopped");
    }

    logger.info(
      {
        brokerName: config.brokerName,
        cluster: config.brokerClusterName,
        brokerAddr: controller.brokerAddr,
        storePathRootDir: root,
        recovery: store.recoveryReport,
      },
      `broker ${config.brokerName} listening on ${controller.listenPort}`,
    );
    return controller;
  } catch (err) {
    for (const step of undo.reverse()) await step().catch(() => {});
    throw err;
  }
}
