// The broker's side of the NameServer contract (upstream BrokerController.registerBrokerAll and
// BrokerOuterAPI): register this replica and its whole topic table to EVERY NameServer in
// `namesrvAddr` at start, again every registerNameServerPeriod (30 s) and whenever registerAll() is
// called after a topic change; unregister from all of them on close().
//
// NameServers are independent: each gets its own call with its own deadline
// (registerBrokerTimeoutMills, 24 s), all in parallel, so one that is down or slow never delays the
// others. A NameServer that fails is logged once when it starts failing and once when it recovers,
// not at every attempt. Registrations never overlap: a registerAll() during a round queues exactly one
// more round after it.
//
//   const registrar = await createNamesrvRegistrar({
//     namesrvAddr: config.namesrvAddr, clusterName, brokerName, brokerId,
//     brokerAddr: `${brokerIP1}:${listenPort}`, haServerAddr: `${brokerIP2}:${haListenPort}`,
//     topics: () => ({ topicConfigs: topicConfigManager.list(), dataVersion: topicConfigManager.dataVersion }),
//     logger,
//   });
//   await registrar.registerAll();   // after a topic change
//   await registrar.close();         // on shutdown

import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { type Logger, silentLogger } from "../common/logger.ts";
import { createRpcClient } from "../common/rpc-client.ts";
import {
  DataVersionSchema,
  NamesrvService,
  type RegisterBrokerRequest,
  RegisterBrokerRequestSchema,
  TopicConfigSchema,
} from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import type { DataVersion } from "./metadata/data-version.ts";
import { isReadable, isWriteable, type TopicConfig } from "./metadata/topic-config-manager.ts";

/** Upstream registerNameServerPeriod: a full registration (also the heartbeat) every 30 s. */
export const DEFAULT_REGISTER_BROKER_TIMER_INTERVAL_MS = 30_000;
/** Upstream registerBrokerTimeoutMills: deadline of one registration call (24 s). */
export const DEFAULT_REGISTER_BROKER_TIMEOUT_MS = 24_000;
/** Deadline of one unregistration call at shutdown (upstream uses 3 s). */
export const UNREGISTER_BROKER_TIMEOUT_MS = 3000;
/** Upstream brokerPermission default: READ | WRITE. */
const PERM_READ_WRITE = 6;

export interface NamesrvRegistrarOptions {
  /** `host:port;host:port` (upstream namesrvAddr) or the addresses themselves. */
  namesrvAddr: string | readonly string[];
  clusterName: string;
  brokerName: string;
  /** 0 = master, > 0 slave. */
  brokerId: number;
  /** brokerIP1:listenPort. */
  brokerAddr: string;
  /** brokerIP2:haListenPort. */
  haServerAddr: string;
  /** A gRPC proxy serving this broker, if any. */
  proxyAddr?: string;
  zoneName?: string;
  enableActingMaster?: boolean;
  /** How long NameServers keep this broker without a registration; undefined = their default (120 s). */
  heartbeatTimeoutMillis?: number;
  /** Period of the timer (registerNameServerPeriod). */
  registerNameServerPeriod?: number;
  /** Deadline of each registration call (registerBrokerTimeoutMills). */
  registerBrokerTimeoutMills?: number;
  /** Upstream brokerPermission (6 = RW): when not RW, each topic registers with `perm & brokerPermission`. */
  brokerPermission?: number;
  /** The topic table and its DataVersion, read at every registration. */
  topics: () => { topicConfigs: Iterable<TopicConfig>; dataVersion: DataVersion };
  /** Called after each round with the first NameServer's answer (a slave learns its master there). */
  onRegistered?: (answer: RegisterAnswer) => void;
  logger?: Logger;
}

export interface RegisterAnswer {
  /** The NameServer that answered. */
  namesrvAddr: string;
  /** This broker set's live master, "" for a master or when unknown. */
  masterAddr: string;
  /** The master's HA address, "" when unknown. */
  haServerAddr: string;
  /** The ORDER_TOPIC_CONFIG kv namespace. */
  kvTable: Record<string, string>;
}

export interface RegisterRound {
  /** NameServers that accepted the registration. */
  registered: string[];
  /** NameServers that did not, with why. */
  failed: { namesrvAddr: string; error: RmqError }[];
}

export interface NamesrvRegistrar {
  /** The NameServer addresses in use. */
  readonly namesrvAddrs: readonly string[];
  /** Registers to every NameServer now (queued behind a round in flight); never rejects. */
  registerAll(): Promise<RegisterRound>;
  /** Stops the timer, waits for a round in flight, unregisters from every NameServer. Idempotent. */
  close(): Promise<void>;
}

function splitAddrs(v: string | readonly string[]): string[] {
  const list = typeof v === "string" ? v.split(";") : [...v];
  return [...new Set(list.map((s) => s.trim()).filter((s) => s !== ""))];
}

function asRmqError(e: unknown): RmqError {
  return e instanceof RmqError
    ? e
    : new RmqError(ErrorCode.Internal, e instanceof Error ? e.message : String(e), { cause: e });
}

/**
 * Creates the registrar and performs the first registration round (every NameServer once, in
 * parallel); NameServers that fail it are retried by the timer. Rejects only on bad options.
 */
export async function createNamesrvRegistrar(opts: NamesrvRegistrarOptions): Promise<NamesrvRegistrar> {
  const log = opts.logger ?? silentLogger();
  const addrs = splitAddrs(opts.namesrvAddr);
  if (addrs.length === 0) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      "namesrvAddr is empty: the broker needs at least one NameServer (host:port;host:port)",
    );
  }
  const period = opts.registerNameServerPeriod ?? DEFAULT_REGISTER_BROKER_TIMER_INTERVAL_MS;
  const timeoutMs = opts.registerBrokerTimeoutMills ?? DEFAULT_REGISTER_BROKER_TIMEOUT_MS;
  const brokerPermission = opts.brokerPermission ?? PERM_READ_WRITE;
  const clients = new Map<string, Client<typeof NamesrvService>>(
    addrs.map((a) => [a, createRpcClient(NamesrvService, a, { timeoutMs })]),
  );
  /** NameServers currently failing (warned once); absent = fine or never tried. */
  const failing = new Set<string>();
  const everRegistered = new Set<string>();
  const identity = {
    clusterName: opts.clusterName,
    brokerName: opts.brokerName,
    brokerId: opts.brokerId,
    brokerAddr: opts.brokerAddr,
  };

  const buildRequest = (): RegisterBrokerRequest => {
    const { topicConfigs, dataVersion } = opts.topics();
    const restricted = !isReadable(brokerPermission) || !isWriteable(brokerPermission);
    const topics = [];
    for (const tc of topicConfigs) {
      topics.push(
        create(TopicConfigSchema, {
          topicName: tc.topicName,
          readQueueNums: tc.readQueueNums,
          writeQueueNums: tc.writeQueueNums,
          perm: restricted ? tc.perm & brokerPermission : tc.perm,
          topicSysFlag: tc.topicSysFlag,
          order: tc.order,
          attributes: tc.attributes,
        }),
      );
    }
    return create(RegisterBrokerRequestSchema, {
      clusterName: opts.clusterName,
      brokerName: opts.brokerName,
      brokerId: BigInt(opts.brokerId),
      brokerAddr: opts.brokerAddr,
      haServerAddr: opts.haServerAddr,
      proxyAddr: opts.proxyAddr ?? "",
      zoneName: opts.zoneName ?? "",
      enableActingMaster: opts.enableActingMaster ?? false,
      heartbeatTimeoutMillis: BigInt(opts.heartbeatTimeoutMillis ?? 0),
      topicConfigs: topics,
      dataVersion: create(DataVersionSchema, {
        stateVersion: BigInt(dataVersion.stateVersion),
        timestamp: BigInt(dataVersion.timestamp),
        counter: BigInt(dataVersion.counter),
      }),
    });
  };

  const noteFailure = (addr: string, error: RmqError): void => {
    if (failing.has(addr)) return;
    failing.add(addr);
    log.warn(
      { ...identity, namesrvAddr: addr, code: error.code, err: error.message },
      `cannot register to NameServer ${addr}; retrying every ${period} ms, logged again only when it recovers`,
    );
  };

  const noteSuccess = (addr: string): void => {
    if (failing.delete(addr))
      log.info({ ...identity, namesrvAddr: addr }, `registered to NameServer ${addr} again`);
    else if (!everRegistered.has(addr))
      log.info({ ...identity, namesrvAddr: addr }, `registered to NameServer ${addr}`);
    everRegistered.add(addr);
  };

  const round = async (): Promise<RegisterRound> => {
    let req: RegisterBrokerRequest;
    try {
      req = buildRequest();
    } catch (e) {
      const error = asRmqError(e);
      log.error(
        { ...identity, err: error.message },
        "cannot build the registration (topic table unreadable)",
      );
      return { registered: [], failed: addrs.map((namesrvAddr) => ({ namesrvAddr, error })) };
    }
    const outcomes = await Promise.all(
      addrs.map(async (addr) => {
        try {
          const res = await (clients.get(addr) as Client<typeof NamesrvService>).registerBroker(req);
          noteSuccess(addr);
          return { addr, res };
        } catch (e) {
          const error = asRmqError(e);
          noteFailure(addr, error);
          return { addr, error };
        }
      }),
    );
    const result: RegisterRound = { registered: [], failed: [] };
    let first: RegisterAnswer | undefined;
    for (const o of outcomes) {
      if (o.error !== undefined) {
        result.failed.push({ namesrvAddr: o.addr, error: o.error });
        continue;
      }
      result.registered.push(o.addr);
      first ??= {
        namesrvAddr: o.addr,
        masterAddr: o.res.masterAddr,
        haServerAddr: o.res.haServerAddr,
        kvTable: o.res.kvTable,
      };
    }
    if (first !== undefined && opts.onRegistered !== undefined) {
      try {
        opts.onRegistered(first);
      } catch (e) {
        log.error({ err: e }, "onRegistered callback failed");
      }
    }
    return result;
  };

  let closed = false;
  let running: Promise<RegisterRound> | undefined;
  let queued: Promise<RegisterRound> | undefined;
  const registerAll = (): Promise<RegisterRound> => {
    if (closed) return Promise.resolve({ registered: [], failed: [] });
    if (running === undefined) {
      running = round().finally(() => {
        running = undefined;
      });
      return running;
    }
    queued ??= running.then(() => {
      queued = undefined;
      return registerAll();
    });
    return queued;
  };

  await registerAll();
  const timer = setInterval(() => void registerAll(), period).unref();

  let closing: Promise<void> | undefined;
  return {
    namesrvAddrs: addrs,
    registerAll,
    close() {
      closing ??= (async () => {
        clearInterval(timer);
        closed = true;
        await queued;
        await running;
        await Promise.all(
          addrs.map(async (addr) => {
            try {
              await (clients.get(addr) as Client<typeof NamesrvService>).unregisterBroker(
                {
                  clusterName: opts.clusterName,
                  brokerAddr: opts.brokerAddr,
                  brokerName: opts.brokerName,
                  brokerId: BigInt(opts.brokerId),
                },
                { timeoutMs: UNREGISTER_BROKER_TIMEOUT_MS },
              );
              log.info({ ...identity, namesrvAddr: addr }, `unregistered from NameServer ${addr}`);
            } catch (e) {
              const error = asRmqError(e);
              log.warn(
                { ...identity, namesrvAddr: addr, code: error.code, err: error.message },
                `cannot unregister from NameServer ${addr}; it drops this broker when its heartbeat timeout passes`,
              );
            }
          }),
        );
      })();
      return closing;
    },
  };
}
