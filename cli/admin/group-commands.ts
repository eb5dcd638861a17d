// mqadmin's consumer-group commands: updateSubGroup, deleteSubGroup, consumerProgress — names,
// flags and output as upstream's UpdateSubGroupSubCommand, DeleteSubscriptionGroupCommand and
// ConsumerProgressSubCommand.
//
// Differences on purpose: updateSubGroup changes only the fields given (mqadmin resets every field
// it is not given to its own defaults); consumerProgress without -t asks every master (our pop retry
// topics are per topic, so upstream's route of %RETRY%group does not name the brokers).

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Command } from "commander";
import { parseAttributeModification } from "../../broker/admin-service.ts";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import { isSystemGroup, SystemGroup } from "../../common/group-validator.ts";
import { dlqTopicOf, retryTopicOf } from "../../common/topic-validator.ts";
import type {
  GroupRetryPolicy,
  GroupRetryPolicySchema,
  QueueConsumeProgress,
  SubscriptionGroupConfig,
} from "../../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import { type AdminContext, type Out, print, runAdmin, withNamesrvOption } from "./admin-context.ts";
import { boolFlag, clusterOrBroker, intFlag } from "./flag-values.ts";
import { fixed, formatDate, front, javaMap, left } from "./mqadmin-format.ts";
import { deleteTopicInCluster } from "./topic-commands.ts";

const BUILT_IN_GROUPS: ReadonlySet<string> = new Set(Object.values(SystemGroup));

function retryPolicyText(p: GroupRetryPolicy | undefined): string {
  if (p === undefined) return "null";
  const e = p.exponentialRetryPolicy;
  const c = p.customizedRetryPolicy;
  const exp =
    e === undefined
      ? "null"
      : `ExponentialRetryPolicy{initial=${e.initial}, max=${e.max}, multiplier=${e.multiplier}}`;
  const cus = c === undefined ? "null" : `CustomizedRetryPolicy{next=[${c.next.join(", ")}]}`;
  return `GroupRetryPolicy{type=${p.type}, exponentialRetryPolicy=${exp}, customizedRetryPolicy=${cus}}`;
}

/** Upstream SubscriptionGroupConfig.toString (Guava toStringHelper). */
export function subscriptionGroupText(g: SubscriptionGroupConfig): string {
  return (
    `SubscriptionGroupConfig{groupName=${g.groupName}, consumeEnable=${g.consumeEnable}, ` +
    `consumeFromMinEnable=${g.consumeFromMinEnable}, consumeBroadcastEnable=${g.consumeBroadcastEnable}, ` +
    `consumeMessageOrderly=${g.consumeMessageOrderly}, retryQueueNums=${g.retryQueueNums}, ` +
    `retryMaxTimes=${g.retryMaxTimes}, groupRetryPolicy=${retryPolicyText(g.groupRetryPolicy)}, ` +
    `brokerId=${g.brokerId}, whichBrokerWhenConsumeSlowly=${g.whichBrokerWhenConsumeSlowly}, ` +
    `notifyConsumerIdsChangedEnable=${g.notifyConsumerIdsChangedEnable}, groupSysFlag=${g.groupSysFlag}, ` +
    `consumeTimeoutMinute=${g.consumeTimeoutMinute}, subscriptionDataSet=null, attributes=${javaMap(g.attributes)}}`
  );
}

function jsonInt(v: unknown, what: string): bigint {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) {
    throw new RmqError(ErrorCode.IllegalArgument, `-p/--groupRetryPolicy: ${what} must be an integer`);
  }
  return BigInt(v);
}

/** Parses -p's JSON (upstream GroupRetryPolicy as fastjson reads it). */
export function parseRetryPolicyJson(text: string): MessageInitShape<typeof GroupRetryPolicySchema> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `-p/--groupRetryPolicy is not JSON: ${(e as Error).message}`,
    );
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new RmqError(ErrorCode.IllegalArgument, "-p/--groupRetryPolicy must be a JSON object");
  }
  const d = doc as Record<string, unknown>;
  const type = d.type ?? "CUSTOMIZED";
  if (typeof type !== "string")
    throw new RmqError(ErrorCode.IllegalArgument, "-p/--groupRetryPolicy: type must be a string");
  const policy: MessageInitShape<typeof GroupRetryPolicySchema> = { type };
  const e = d.exponentialRetryPolicy;
  if (typeof e === "object" && e !== null) {
    const x = e as Record<string, unknown>;
    policy.exponentialRetryPolicy = {
      initial: jsonInt(x.initial ?? 5000, "exponentialRetryPolicy.initial"),
      max: jsonInt(x.max ?? 7_200_000, "exponentialRetryPolicy.max"),
      multiplier: jsonInt(x.multiplier ?? 2, "exponentialRetryPolicy.multiplier"),
    };
  }
  const c = d.customizedRetryPolicy;
  if (typeof c === "object" && c !== null) {
    const next = (c as Record<string, unknown>).next;
    if (!Array.isArray(next)) {
      throw new RmqError(
        ErrorCode.IllegalArgument,
        "-p/--groupRetryPolicy: customizedRetryPolicy.next must be a list",
      );
    }
    policy.customizedRetryPolicy = {
      next: next.map((v, i) => jsonInt(v, `customizedRetryPolicy.next[${i}]`)),
    };
  }
  return policy;
}

export interface UpdateSubGroupOptions {
  groupName: string;
  clusterName?: string;
  brokerAddr?: string;
  consumeEnable?: string;
  consumeFromMinEnable?: string;
  consumeBroadcastEnable?: string;
  consumeMessageOrderly?: string;
  retryQueueNums?: string;
  retryMaxTimes?: string;
  groupRetryPolicy?: string;
  brokerId?: string;
  whichBrokerWhenConsumeSlowly?: string;
  notifyConsumerIdsChanged?: string;
  attributes?: string;
}

export async function updateSubGroup(ctx: AdminContext, o: UpdateSubGroupOptions, out: Out): Promise<void> {
  const target = clusterOrBroker(o);
  const bool = (flag: string, v: string | undefined) => (v === undefined ? undefined : boolFlag(flag, v));
  const attributesModification = o.attributes?.trim() ?? "";
  parseAttributeModification(attributesModification);
  const req = {
    groupName: o.groupName.trim(),
    consumeEnable: bool("-s/--consumeEnable", o.consumeEnable),
    consumeFromMinEnable: bool("-m/--consumeFromMinEnable", o.consumeFromMinEnable),
    consumeBroadcastEnable: bool("-d/--consumeBroadcastEnable", o.consumeBroadcastEnable),
    consumeMessageOrderly: bool("-o/--consumeMessageOrderly", o.consumeMessageOrderly),
    retryQueueNums:
      o.retryQueueNums === undefined ? undefined : intFlag("-q/--retryQueueNums", o.retryQueueNums, 0),
    retryMaxTimes:
      o.retryMaxTimes === undefined ? undefined : intFlag("-r/--retryMaxTimes", o.retryMaxTimes, -1),
    groupRetryPolicy: o.groupRetryPolicy === undefined ? undefined : parseRetryPolicyJson(o.groupRetryPolicy),
    brokerId: o.brokerId === undefined ? undefined : BigInt(intFlag("-i/--brokerId", o.brokerId, 0)),
    whichBrokerWhenConsumeSlowly:
      o.whichBrokerWhenConsumeSlowly === undefined
        ? undefined
        : BigInt(intFlag("-w/--whichBrokerWhenConsumeSlowly", o.whichBrokerWhenConsumeSlowly, 0)),
    notifyConsumerIdsChangedEnable: bool("-a/--notifyConsumerIdsChanged", o.notifyConsumerIdsChanged),
    attributesModification,
  };
  const addrs =
    "broker" in target
      ? [target.broker]
      : (await ctx.masterAddrsOfCluster(target.cluster)).map((m) => m.addr);
  let last: SubscriptionGroupConfig | undefined;
  for (const addr of addrs) {
    last = (await ctx.onBroker(addr, (c) => c.updateSubscriptionGroup(req))).config;
    out(`create subscription group to ${addr} success.`);
  }
  if (last !== undefined) out(subscriptionGroupText(last));
}

export async function deleteSubGroup(
  ctx: AdminContext,
  o: { groupName: string; clusterName?: string; brokerAddr?: string; removeOffset?: string },
  out: Out,
): Promise<void> {
  const target = clusterOrBroker(o);
  const group = o.groupName.trim();
  const cleanOffset = o.removeOffset === undefined ? false : boolFlag("-r/--removeOffset", o.removeOffset);
  const addrs =
    "broker" in target
      ? [target.broker]
      : (await ctx.masterAddrsOfCluster(target.cluster)).map((m) => m.addr);
  const lines: string[] = [];
  let existed = false;
  for (const addr of addrs) {
    const res = await ctx.onBroker(addr, (c) => c.deleteSubscriptionGroup({ groupName: group, cleanOffset }));
    existed ||= res.existed;
    lines.push(
      "broker" in target
        ? `delete subscription group [${group}] from broker [${addr}] success.`
        : `delete subscription group [${group}] from broker [${addr}] in cluster [${target.cluster}] success.`,
    );
  }
  if (!existed) {
    throw new RmqError(
      ErrorCode.ConsumerGroupNotFound,
      `subscription group ${JSON.stringify(group)} does not exist on ${"broker" in target ? `broker ${target.broker}` : `cluster ${target.cluster}`}`,
    );
  }
  for (const l of lines) out(l);
  if ("cluster" in target) {
    // As upstream: the group's retry and dead-letter topics go too.
    for (const topic of [retryTopicOf(group), dlqTopicOf(group)]) {
      await deleteTopicInCluster(ctx, target.cluster, topic);
    }
  }
}

interface ProgressRow extends QueueConsumeProgress {
  brokerName: string;
}

async function collectProgress(
  ctx: AdminContext,
  group: string,
  topic: string,
  cluster: string | undefined,
): Promise<{ rows: ProgressRow[]; tps: number }> {
  const brokers =
    topic !== "" && cluster === undefined
      ? await ctx.brokersOfTopic(topic)
      : await ctx.allMasterAddrs(cluster);
  const rows: ProgressRow[] = [];
  let tps = 0;
  for (const b of brokers) {
    const res = await ctx.onBroker(b.addr, (c) => c.getConsumerProgress({ group, topic }));
    tps += res.consumeTps;
    for (const q of res.queues) rows.push({ ...q, brokerName: res.brokerName });
  }
  rows.sort(
    (a, b) =>
      a.topic.localeCompare(b.topic) || a.brokerName.localeCompare(b.brokerName) || a.queueId - b.queueId,
  );
  return { rows, tps };
}

export async function consumerProgress(
  ctx: AdminContext,
  o: { groupName?: string; topicName?: string; showClientIP?: string; cluster?: string },
  out: Out,
): Promise<void> {
  const cluster = o.cluster?.trim();
  const showClientIP = o.showClientIP !== undefined && boolFlag("-s/--showClientIP", o.showClientIP);
  if (o.groupName === undefined) {
    await groupsOverview(ctx, cluster, out);
    return;
  }
  const group = o.groupName.trim();
  const topic = o.topicName?.trim() ?? "";
  const { rows, tps } = await collectProgress(ctx, group, topic, cluster);
  if (rows.length === 0) {
    throw new RmqError(
      ErrorCode.ConsumerGroupNotFound,
      `no consume stats for group ${JSON.stringify(group)}${topic === "" ? "" : ` on topic ${JSON.stringify(topic)}`}: ` +
        "no broker has offsets for it (maybe it never consumed)",
    );
  }
  const head = `${left("#Topic", 64)}  ${left("#Broker Name", 32)}  ${left("#QID", 4)}  ${left("#Broker Offset", 20)}  ${left("#Consumer Offset", 20)}  `;
  out(
    showClientIP
      ? `${head}${left("#Client IP", 20)} ${left("#Diff", 20)} ${left("#Inflight", 20)}#LastTime`
      : `${head}${left("#Diff", 20)} ${left("#Inflight", 20)}#LastTime`,
  );
  let diffTotal = 0n;
  let inflightTotal = 0n;
  for (const r of rows) {
    diffTotal += r.lag;
    inflightTotal += r.inflight;
    const consumerOffset = r.consumerOffset < 0n ? 0n : r.consumerOffset; // upstream reports 0 for "never"
    const lastTime = r.lastTimestamp > 0n ? formatDate(Number(r.lastTimestamp)) : "N/A";
    const start = `${left(front(r.topic, 64), 64)}  ${left(front(r.brokerName, 32), 32)}  ${left(r.queueId, 4)}  ${left(r.brokerOffset, 20)}  ${left(consumerOffset, 20)}  `;
    // Pop consumers are not bound to queues, so no client owns a queue: the Client IP column says N/A.
    out(
      showClientIP
        ? `${start}${left("N/A", 20)} ${left(r.lag, 20)} ${left(r.inflight, 20)} ${lastTime}`
        : `${start}${left(r.lag, 20)} ${left(r.inflight, 20)} ${lastTime}`,
    );
  }
  out("");
  out(`Consume TPS: ${fixed(tps, 2)}`);
  out(`Consume Diff Total: ${diffTotal}`);
  out(`Consume Inflight Total: ${inflightTotal}`);
}

/** consumerProgress without -g: one line per (non-system) group the masters know. */
async function groupsOverview(ctx: AdminContext, cluster: string | undefined, out: Out): Promise<void> {
  const masters = await ctx.allMasterAddrs(cluster);
  const groups = new Set<string>();
  for (const m of masters) {
    const res = await ctx.onBroker(m.addr, (c) => c.getSubscriptionGroupList({}));
    for (const g of res.groups) {
      if (!isSystemGroup(g.groupName) && !BUILT_IN_GROUPS.has(g.groupName)) groups.add(g.groupName);
    }
  }
  out(
    `${left("#Group", 64)}  ${left("#Count", 6)}  ${left("#Version", 24)} ${left("#Type", 5)}  ${left("#Model", 14)}  ${left("#TPS", 7)}  #Diff Total`,
  );
  for (const g of [...groups].sort()) {
    let diff = 0n;
    let tps = 0;
    for (const m of masters) {
      const res = await ctx.onBroker(m.addr, (c) => c.getConsumerProgress({ group: g, topic: "" }));
      tps += res.consumeTps;
      for (const q of res.queues) diff += q.lag;
    }
    // The broker does not see client connections (clients talk to the proxy): count 0, OFFLINE.
    out(
      `${left(front(g, 64), 64)}  ${left(0, 6)}  ${left("OFFLINE", 24)} ${left("", 5)}  ${left("", 14)}  ${left(Math.trunc(tps), 7)}  ${diff}`,
    );
  }
}

export function registerGroupCommands(admin: Command): void {
  withNamesrvOption(admin.command("updateSubGroup"))
    .description("update or create a subscription group (only the fields given change)")
    .requiredOption("-g, --groupName <group>", "consumer group name")
    .option("-c, --clusterName <cluster>", "on every master of this cluster")
    .option("-b, --brokerAddr <host:port>", "on this broker")
    .option("-s, --consumeEnable <true|false>", "consume enable")
    .option("-m, --consumeFromMinEnable <true|false>", "consume from the min offset")
    .option("-d, --consumeBroadcastEnable <true|false>", "broadcast")
    .option("-o, --consumeMessageOrderly <true|false>", "consume messages orderly (FIFO group)")
    .option("-q, --retryQueueNums <n>", "retry queue nums")
    .option("-r, --retryMaxTimes <n>", "retries before the dead-letter queue")
    .option(
      "-p, --groupRetryPolicy <json>",
      'retry policy JSON, e.g. {"type":"EXPONENTIAL","exponentialRetryPolicy":{"initial":5000,"max":7200000,"multiplier":2}}',
    )
    .option("-i, --brokerId <id>", "consume from this broker id")
    .option("-w, --whichBrokerWhenConsumeSlowly <id>", "broker id to consume from when slow")
    .option("-a, --notifyConsumerIdsChanged <true|false>", "notify consumers when the group's members change")
    .option("--attributes <mods>", "attributes +a=b,-c")
    .action((o: UpdateSubGroupOptions & { namesrvAddr?: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => updateSubGroup(ctx, o, print)),
    );

  withNamesrvOption(admin.command("deleteSubGroup"))
    .description("delete a subscription group from a broker or a cluster")
    .requiredOption("-g, --groupName <group>", "consumer group name")
    .option(
      "-c, --clusterName <cluster>",
      "from every master of this cluster (also deletes its %RETRY% and %DLQ% topics)",
    )
    .option("-b, --brokerAddr <host:port>", "from this broker")
    .option("-r, --removeOffset <true|false>", "also remove the group's consume offsets")
    .action(
      (o: {
        namesrvAddr?: string;
        groupName: string;
        clusterName?: string;
        brokerAddr?: string;
        removeOffset?: string;
      }) => runAdmin(o.namesrvAddr, (ctx) => deleteSubGroup(ctx, o, print)),
    );

  withNamesrvOption(admin.command("consumerProgress"))
    .description("print a group's offsets, diff and inflight per queue (all groups without -g)")
    .option("-g, --groupName <group>", "consumer group name")
    .option("-t, --topicName <topic>", "only this topic")
    .option("-s, --showClientIP <true|false>", "add the #Client IP column")
    .option("-c, --cluster <cluster>", "ask this cluster's masters")
    .action(
      (o: {
        namesrvAddr?: string;
        groupName?: string;
        topicName?: string;
        showClientIP?: string;
        cluster?: string;
      }) => runAdmin(o.namesrvAddr, (ctx) => consumerProgress(ctx, o, print)),
    );
}
