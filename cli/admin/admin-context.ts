// What every `rmq admin` command needs to reach the cluster: the NameServer list (`-n`, else env
// NAMESRV_ADDR, else 127.0.0.1:9876), calls to the first NameServer that answers, broker admin
// clients, and the lookups mqadmin's CommandUtil does (a cluster's masters, a topic's brokers).
// Failures are RmqErrors with one-line messages; rmq prints them and exits 1.

import { type Client, ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import { closeRpcConnections, createRpcClient, parseRpcAddress } from "../../common/rpc-client.ts";
import { BrokerAdminService } from "../../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import {
  type BrokerData,
  type GetBrokerClusterInfoResponse,
  NamesrvService,
  type TopicRouteData,
} from "../../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";

/** Where `rmq admin` looks when neither -n nor NAMESRV_ADDR is given (ours: mqadmin refuses to run without one). */
export const DEFAULT_NAMESRV_ADDR = "127.0.0.1:9876";
/** Deadline of one admin call (upstream DefaultMQAdminExt timeoutMillis, 5000 ms). */
export const ADMIN_CALL_TIMEOUT_MS = 5000;
/** Upstream MixAll.MASTER_ID. */
export const MASTER_ID = "0";

export type AdminBrokerClient = Client<typeof BrokerAdminService>;
type NamesrvClient = Client<typeof NamesrvService>;

/** Splits and checks "h:p;h:p" (-n, NAMESRV_ADDR). Throws RmqError(IllegalArgument) naming the bad entry. */
export function resolveNamesrvAddrs(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const text = flag ?? env.NAMESRV_ADDR ?? DEFAULT_NAMESRV_ADDR;
  const addrs = text
    .split(";")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (addrs.length === 0) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `-n/--namesrvAddr is empty: expected "host:port;host:port"`,
    );
  }
  for (const a of addrs) {
    try {
      parseRpcAddress(a);
    } catch {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        `-n/--namesrvAddr has an illegal address ${JSON.stringify(a)}: expected host:port`,
      );
    }
  }
  return addrs;
}

function unreachable(e: unknown): boolean {
  return isRmqError(e, ErrorCode.RpcUnavailable) || isRmqError(e, ErrorCode.RpcTimeout);
}

/** The transport's own words for a failed call ("connect ECONNREFUSED ..."), without the call's name. */
function reason(e: unknown): string {
  if (e instanceof Error && e.cause instanceof ConnectError) return e.cause.rawMessage;
  return e instanceof Error ? e.message : String(e);
}

/** The address of a broker set to ask: its master, else its lowest-id replica (upstream selectBrokerAddr). */
export function selectBrokerAddr(bd: BrokerData): string | undefined {
  const master = bd.brokerAddrs[MASTER_ID];
  if (master !== undefined) return master;
  const ids = Object.keys(bd.brokerAddrs).sort((a, b) => Number(a) - Number(b));
  return ids.length === 0 ? undefined : bd.brokerAddrs[ids[0] as string];
}

export class AdminContext {
  readonly namesrvAddrs: readonly string[];
  private readonly brokers = new Map<string, AdminBrokerClient>();

  constructor(namesrvFlag: string | undefined) {
    this.namesrvAddrs = resolveNamesrvAddrs(namesrvFlag);
  }

  /** Runs `call` on the first NameServer that can be reached; other failures are not retried. */
  async namesrv<T>(call: (client: NamesrvClient) => Promise<T>): Promise<T> {
    let last: unknown;
    for (const addr of this.namesrvAddrs) {
      try {
        return await call(createRpcClient(NamesrvService, addr, { timeoutMs: ADMIN_CALL_TIMEOUT_MS }));
      } catch (e) {
        if (!unreachable(e)) throw e;
        last = e;
      }
    }
    throw new RmqError(
      ErrorCode.RpcUnavailable,
      `cannot reach the NameServer at ${this.namesrvAddrs.join(";")} (${reason(last)})`,
      { cause: last },
    );
  }

  /** Runs `call` on every NameServer (deletions must reach all of them, as upstream). */
  async everyNamesrv(call: (client: NamesrvClient) => Promise<unknown>): Promise<void> {
    for (const addr of this.namesrvAddrs) {
      try {
        await call(createRpcClient(NamesrvService, addr, { timeoutMs: ADMIN_CALL_TIMEOUT_MS }));
      } catch (e) {
        if (unreachable(e)) {
          throw new RmqError(
            ErrorCode.RpcUnavailable,
            `cannot reach the NameServer at ${addr} (${reason(e)})`,
            { cause: e },
          );
        }
        throw e;
      }
    }
  }

  /** The admin client of the broker at "host:port" (-b), checked for syntax. */
  broker(addr: string): AdminBrokerClient {
    let c = this.brokers.get(addr);
    if (c === undefined) {
      let checked: string;
      try {
        checked = parseRpcAddress(addr);
      } catch {
        throw new RmqError(
          ErrorCode.IllegalArgument,
          `illegal broker address ${JSON.stringify(addr)}: expected host:port`,
        );
      }
      c = createRpcClient(BrokerAdminService, checked, { timeoutMs: ADMIN_CALL_TIMEOUT_MS });
      this.brokers.set(addr, c);
    }
    return c;
  }

  /** One call to a broker; an unreachable broker becomes a one-line error naming it. */
  async onBroker<T>(addr: string, call: (client: AdminBrokerClient) => Promise<T>): Promise<T> {
    const client = this.broker(addr);
    try {
      return await call(client);
    } catch (e) {
      if (unreachable(e)) {
        throw new RmqError((e as RmqError).code, `cannot reach broker ${addr} (${reason(e)})`, { cause: e });
      }
      throw e;
    }
  }

  clusterInfo(): Promise<GetBrokerClusterInfoResponse> {
    return this.namesrv((c) => c.getBrokerClusterInfo({}));
  }

  /** The broker sets of a cluster, sorted by name. Throws CLUSTER_NOT_FOUND for a cluster nobody registered. */
  async brokerSetsOfCluster(cluster: string, info?: GetBrokerClusterInfoResponse): Promise<BrokerData[]> {
    const ci = info ?? (await this.clusterInfo());
    const names = ci.clusterAddrTable[cluster]?.brokerNames;
    if (names === undefined) {
      const known = Object.keys(ci.clusterAddrTable).sort();
      throw new RmqError(
        ErrorCode.ClusterNotFound,
        `cluster ${JSON.stringify(cluster)} is not known to the NameServer at ${this.namesrvAddrs.join(";")}` +
          (known.length > 0 ? ` (known: ${known.join(", ")})` : " (no broker registered)"),
      );
    }
    return [...names]
      .sort()
      .map((n) => ci.brokerAddrTable[n])
      .filter((bd): bd is BrokerData => bd !== undefined);
  }

  /** Upstream CommandUtil.fetchMasterAddrByClusterName: the masters (broker id 0) of a cluster. */
  async masterAddrsOfCluster(cluster: string): Promise<{ brokerName: string; addr: string }[]> {
    const out: { brokerName: string; addr: string }[] = [];
    for (const bd of await this.brokerSetsOfCluster(cluster)) {
      const addr = bd.brokerAddrs[MASTER_ID];
      if (addr !== undefined) out.push({ brokerName: bd.brokerName, addr });
    }
    if (out.length === 0) {
      throw new RmqError(
        ErrorCode.ClusterNotFound,
        `cluster ${JSON.stringify(cluster)} has no live master broker`,
      );
    }
    return out;
  }

  /** Every master of every cluster (or of one), for commands without a topic to route by. */
  async allMasterAddrs(cluster?: string): Promise<{ brokerName: string; addr: string }[]> {
    if (cluster !== undefined) return this.masterAddrsOfCluster(cluster);
    const ci = await this.clusterInfo();
    return Object.values(ci.brokerAddrTable)
      .sort((a, b) => a.brokerName.localeCompare(b.brokerName))
      .flatMap((bd) => {
        const addr = bd.brokerAddrs[MASTER_ID];
        return addr === undefined ? [] : [{ brokerName: bd.brokerName, addr }];
      });
  }

  /** The topic's route; TOPIC_NOT_FOUND (from the NameServer) when no live broker serves it. */
  async route(topic: string): Promise<TopicRouteData> {
    const res = await this.namesrv((c) => c.getRouteInfoByTopic({ topic }));
    if (res.route === undefined) {
      throw new RmqError(ErrorCode.TopicNotFound, `no route for topic ${JSON.stringify(topic)}`);
    }
    return res.route;
  }

  /** The brokers serving a topic, one address per broker set, sorted by broker name. */
  async brokersOfTopic(topic: string): Promise<{ brokerName: string; addr: string }[]> {
    const route = await this.route(topic);
    return [...route.brokerDatas]
      .sort((a, b) => a.brokerName.localeCompare(b.brokerName))
      .flatMap((bd) => {
        const addr = selectBrokerAddr(bd);
        return addr === undefined ? [] : [{ brokerName: bd.brokerName, addr }];
      });
  }
}

/** Runs one admin command, closing the RPC connections afterwards so the process exits promptly. */
export async function runAdmin(
  namesrvFlag: string | undefined,
  run: (ctx: AdminContext) => Promise<void>,
): Promise<void> {
  try {
    await run(new AdminContext(namesrvFlag));
  } finally {
    closeRpcConnections();
  }
}

/** Where a command writes its output lines. */
export type Out = (line: string) => void;

/** Writes one line to stdout. */
export const print: Out = (line) => {
  process.stdout.write(`${line}\n`);
};

/** The option every mqadmin command takes: the NameServer list. */
export function withNamesrvOption(cmd: Command): Command {
  return cmd.option(
    "-n, --namesrvAddr <addresses>",
    'NameServer addresses "host:port;host:port" (default: env NAMESRV_ADDR, else 127.0.0.1:9876)',
  );
}
