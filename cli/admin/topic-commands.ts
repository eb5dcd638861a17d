// mqadmin's topic commands: updateTopic, deleteTopic, topicList, topicRoute, topicStatus — same
// names, flags and output lines as upstream's UpdateTopicSubCommand, DeleteTopicSubCommand,
// TopicListSubCommand, TopicRouteSubCommand and TopicStatusSubCommand.

import type { Command } from "commander";
import { parseAttributeModification } from "../../broker/admin-service.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX } from "../../common/topic-validator.ts";
import { NAMESPACE_ORDER_TOPIC_CONFIG } from "../../nameserver/kv-config-manager.ts";
import type { BrokerTopicConfig } from "../../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import type { TopicRouteData } from "../../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { type AdminContext, type Out, print, runAdmin, withNamesrvOption } from "./admin-context.ts";
import { boolFlag, clusterOrBroker, intFlag } from "./flag-values.ts";
import { front, humanTime2, javaDouble, javaMap, left, permText } from "./mqadmin-format.ts";

/** Our bound on -r/-w (the broker's MAX_QUEUE_NUMS). */
const MAX_QUEUE_NUMS_FLAG = 65_535;
/** Dashes under topicRoute -l (upstream prints 158). */
const ROUTE_LIST_RULE_WIDTH = 158;

/** Upstream TopicConfig.toString. */
export function topicConfigText(tc: BrokerTopicConfig): string {
  return (
    `TopicConfig [topicName=${tc.topicName}, readQueueNums=${tc.readQueueNums}, writeQueueNums=${tc.writeQueueNums}, ` +
    `perm=${permText(tc.perm)}, topicFilterType=${tc.topicFilterType}, topicSysFlag=${tc.topicSysFlag}, ` +
    `order=${tc.order}, attributes=${javaMap(tc.attributes)}]`
  );
}

export interface UpdateTopicOptions {
  namesrvAddr?: string;
  topic: string;
  clusterName?: string;
  brokerAddr?: string;
  readQueueNums?: string;
  writeQueueNums?: string;
  perm?: string;
  order?: string;
  attributes?: string;
}

export async function updateTopic(ctx: AdminContext, o: UpdateTopicOptions, out: Out): Promise<void> {
  const target = clusterOrBroker(o);
  const topic = o.topic.trim();
  const attributesModification = o.attributes?.trim() ?? "";
  parseAttributeModification(attributesModification); // a malformed -a fails before anything is contacted
  const order = o.order === undefined ? undefined : boolFlag("-o/--order", o.order);
  const req = {
    topic,
    readQueueNums:
      o.readQueueNums === undefined
        ? undefined
        : intFlag("-r/--readQueueNums", o.readQueueNums, 0, MAX_QUEUE_NUMS_FLAG),
    writeQueueNums:
      o.writeQueueNums === undefined
        ? undefined
        : intFlag("-w/--writeQueueNums", o.writeQueueNums, 0, MAX_QUEUE_NUMS_FLAG),
    perm: o.perm === undefined ? undefined : intFlag("-p/--perm", o.perm, 0, 7),
    order,
    attributesModification,
  };
  const brokers =
    "broker" in target
      ? [{ brokerName: "", addr: target.broker }]
      : await ctx.masterAddrsOfCluster(target.cluster);
  let last: BrokerTopicConfig | undefined;
  const orderConf: string[] = [];
  for (const b of brokers) {
    const res = await ctx.onBroker(b.addr, (c) => c.updateTopic(req));
    last = res.topicConfig;
    out(`create topic to ${b.addr} success.`);
    if (order === true && last !== undefined) {
      const brokerName = b.brokerName !== "" ? b.brokerName : await brokerNameOf(ctx, b.addr);
      orderConf.push(`${brokerName}:${last.writeQueueNums}`);
    }
  }
  if (orderConf.length > 0) {
    const conf = orderConf.join(";");
    await ctx.everyNamesrv((c) =>
      c.putKvConfig({ namespace: NAMESPACE_ORDER_TOPIC_CONFIG, key: topic, value: conf }),
    );
    out(`set ${"broker" in target ? "broker" : "cluster"} orderConf. isOrder=true, orderConf=[${conf}]`);
  }
  if (last !== undefined) out(topicConfigText(last));
}

/** Upstream CommandUtil.fetchBrokerNameByAddr. */
async function brokerNameOf(ctx: AdminContext, addr: string): Promise<string> {
  const ci = await ctx.clusterInfo();
  for (const bd of Object.values(ci.brokerAddrTable)) {
    if (Object.values(bd.brokerAddrs).includes(addr)) return bd.brokerName;
  }
  throw new RmqError(ErrorCode.IllegalArgument, `broker ${addr} is not registered with the NameServer`);
}

/** Deletes `topic` on every master of `cluster` and in every NameServer; false when no broker had it. */
export async function deleteTopicInCluster(
  ctx: AdminContext,
  cluster: string,
  topic: string,
): Promise<boolean> {
  let existed = false;
  for (const m of await ctx.masterAddrsOfCluster(cluster)) {
    const res = await ctx.onBroker(m.addr, (c) => c.deleteTopic({ topic }));
    existed ||= res.existed;
  }
  await ctx.everyNamesrv((c) => c.deleteTopicInNamesrv({ topic, clusterName: cluster }));
  return existed;
}

export async function deleteTopic(
  ctx: AdminContext,
  o: { topic: string; clusterName: string },
  out: Out,
): Promise<void> {
  const topic = o.topic.trim();
  const cluster = o.clusterName.trim();
  // Refuse an unknown topic before touching anything (mqadmin reports success for anything).
  let present = false;
  for (const m of await ctx.masterAddrsOfCluster(cluster)) {
    const res = await ctx.onBroker(m.addr, (c) => c.getTopicConfig({ topic }));
    present ||= res.topicConfig !== undefined;
  }
  if (!present) {
    throw new RmqError(
      ErrorCode.TopicNotFound,
      `topic ${JSON.stringify(topic)} does not exist in cluster ${cluster}`,
    );
  }
  await deleteTopicInCluster(ctx, cluster, topic);
  out(`delete topic [${topic}] from cluster [${cluster}] success.`);
  out(`delete topic [${topic}] from NameServer success.`);
}

export async function topicList(ctx: AdminContext, o: { clusterModel?: boolean }, out: Out): Promise<void> {
  const { topics } = await ctx.namesrv((c) => c.getAllTopicList({}));
  if (!o.clusterModel) {
    for (const t of topics) out(t);
    return;
  }
  const ci = await ctx.clusterInfo();
  const clusterOf = new Map<string, string>();
  for (const [cluster, names] of Object.entries(ci.clusterAddrTable)) {
    for (const n of names.brokerNames) clusterOf.set(n, cluster);
  }
  // Upstream's header and rows use different widths (48 vs 64); kept as upstream prints them.
  out(`${left("#Cluster Name", 20)}  ${left("#Topic", 48)}  ${left("#Consumer Group", 48)}`);
  for (const topic of topics) {
    if (topic.startsWith(RETRY_GROUP_TOPIC_PREFIX) || topic.startsWith(DLQ_GROUP_TOPIC_PREFIX)) continue;
    let cluster = "";
    let groups: string[] = [];
    try {
      const brokers = await ctx.brokersOfTopic(topic);
      const first = brokers[0];
      if (first !== undefined) {
        cluster = clusterOf.get(first.brokerName) ?? "";
        groups = (await ctx.onBroker(first.addr, (c) => c.getTopicConsumers({ topic }))).groups;
      }
    } catch {
      // As upstream: a topic whose route or consumers cannot be read is listed without them.
    }
    for (const g of groups.length > 0 ? groups : [""]) {
      out(`${left(front(cluster, 20), 20)}  ${left(front(topic, 64), 64)}  ${left(front(g, 64), 64)}`);
    }
  }
}

/** The route as upstream's TopicRouteData.toJson(true): fastjson's alphabetical field order, tab-indented. */
export function routeJson(route: TopicRouteData): string {
  const doc: Record<string, unknown> = {
    brokerDatas: route.brokerDatas.map((bd) => ({
      brokerAddrs: { ...bd.brokerAddrs },
      brokerName: bd.brokerName,
      cluster: bd.cluster,
      enableActingMaster: bd.enableActingMaster,
      ...(bd.zoneName !== "" ? { zoneName: bd.zoneName } : {}),
    })),
    filterServerTable: {},
    ...(route.orderTopicConf !== "" ? { orderTopicConf: route.orderTopicConf } : {}),
    queueDatas: route.queueDatas.map((q) => ({
      brokerName: q.brokerName,
      perm: q.perm,
      readQueueNums: q.readQueueNums,
      topicSysFlag: q.topicSysFlag,
      writeQueueNums: q.writeQueueNums,
    })),
  };
  return JSON.stringify(doc, null, "\t");
}

function routeListRow(cells: [string, string, string, string, string, string]): string {
  const [a, b, c, d, e, f] = cells;
  return `${left(a, 45)} ${left(b, 32)} ${left(c, 50)} ${left(d, 10)} ${left(e, 11)} ${left(f, 5)}`;
}

export async function topicRoute(
  ctx: AdminContext,
  o: { topic: string; list?: boolean },
  out: Out,
): Promise<void> {
  const route = await ctx.route(o.topic.trim());
  if (!o.list) {
    out(routeJson(route));
    return;
  }
  const queues = new Map(route.queueDatas.map((q) => [q.brokerName, q]));
  out(routeListRow(["#ClusterName", "#BrokerName", "#BrokerAddrs", "#ReadQueue", "#WriteQueue", "#Perm"]));
  let totalRead = 0;
  let totalWrite = 0;
  for (const bd of [...route.brokerDatas].sort((a, b) => a.brokerName.localeCompare(b.brokerName))) {
    const q = queues.get(bd.brokerName);
    totalRead += q?.readQueueNums ?? 0;
    totalWrite += q?.writeQueueNums ?? 0;
    out(
      routeListRow([
        bd.cluster,
        bd.brokerName,
        javaMap(bd.brokerAddrs),
        String(q?.readQueueNums ?? 0),
        String(q?.writeQueueNums ?? 0),
        String(q?.perm ?? 0),
      ]),
    );
  }
  out("-".repeat(ROUTE_LIST_RULE_WIDTH));
  out(routeListRow(["Total:", String(queues.size), "", String(totalRead), String(totalWrite), ""]));
}

export async function topicStatus(
  ctx: AdminContext,
  o: { topic: string; cluster?: string },
  out: Out,
): Promise<void> {
  const topic = o.topic.trim();
  const brokers =
    o.cluster === undefined
      ? await ctx.brokersOfTopic(topic)
      : await ctx.masterAddrsOfCluster(o.cluster.trim());
  const rows: { brokerName: string; queueId: number; min: bigint; max: bigint; last: bigint }[] = [];
  let putTps = 0;
  for (const b of brokers) {
    const stats = await ctx.onBroker(b.addr, (c) => c.getTopicStats({ topic }));
    putTps += stats.putTps;
    for (const q of stats.queues) {
      rows.push({
        brokerName: stats.brokerName,
        queueId: q.queueId,
        min: q.minOffset,
        max: q.maxOffset,
        last: q.lastUpdateTimestamp,
      });
    }
  }
  rows.sort((a, b) => a.brokerName.localeCompare(b.brokerName) || a.queueId - b.queueId);
  out(
    `${left("#Broker Name", 32)}  ${left("#QID", 4)}  ${left("#Min Offset", 20)}  ${left("#Max Offset", 20)}    #Last Updated`,
  );
  for (const r of rows) {
    const when = r.last > 0n ? humanTime2(Number(r.last)) : "";
    out(
      `${left(front(r.brokerName, 32), 32)}  ${left(r.queueId, 4)}  ${left(r.min, 20)}  ${left(r.max, 20)}    ${when}`,
    );
  }
  out("");
  out(`Topic Put TPS: ${javaDouble(putTps)}`);
}

export function registerTopicCommands(admin: Command): void {
  withNamesrvOption(admin.command("updateTopic"))
    .description("update or create a topic")
    .requiredOption("-t, --topic <topic>", "topic name")
    .option("-c, --clusterName <cluster>", "create the topic on every master of this cluster")
    .option("-b, --brokerAddr <host:port>", "create the topic on this broker")
    .option("-r, --readQueueNums <n>", "read queue nums (new topics: 8)")
    .option("-w, --writeQueueNums <n>", "write queue nums (new topics: 8)")
    .option("-p, --perm <perm>", "permission 2 W, 4 R, 6 RW (new topics: 6)")
    .option("-o, --order <true|false>", "ordered topic: also set the NameServer's orderConf")
    .option("-a, --attributes <mods>", "attributes +a=b,+c=d,-e e.g. +message.type=FIFO")
    .action((o: UpdateTopicOptions) => runAdmin(o.namesrvAddr, (ctx) => updateTopic(ctx, o, print)));

  withNamesrvOption(admin.command("deleteTopic"))
    .description("delete a topic from a cluster's brokers and the NameServer")
    .requiredOption("-t, --topic <topic>", "topic name")
    .requiredOption("-c, --clusterName <cluster>", "delete the topic from this cluster")
    .action((o: { namesrvAddr?: string; topic: string; clusterName: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => deleteTopic(ctx, o, print)),
    );

  withNamesrvOption(admin.command("topicList"))
    .description("list the topics the NameServer knows")
    .option("-c, --clusterModel", "also print each topic's cluster and consumer groups")
    .action((o: { namesrvAddr?: string; clusterModel?: boolean }) =>
      runAdmin(o.namesrvAddr, (ctx) => topicList(ctx, o, print)),
    );

  withNamesrvOption(admin.command("topicRoute"))
    .description("print a topic's route (JSON, or a table with -l)")
    .requiredOption("-t, --topic <topic>", "topic name")
    .option("-l, --list", "print the route as a table")
    .action((o: { namesrvAddr?: string; topic: string; list?: boolean }) =>
      runAdmin(o.namesrvAddr, (ctx) => topicRoute(ctx, o, print)),
    );

  withNamesrvOption(admin.command("topicStatus"))
    .description("print each queue's min/max offset and last update time")
    .requiredOption("-t, --topic <topic>", "topic name")
    .option("-c, --cluster <cluster>", "ask this cluster's masters instead of the topic's route")
    .action((o: { namesrvAddr?: string; topic: string; cluster?: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => topicStatus(ctx, o, print)),
    );
}
