// mqadmin's clusterList and brokerStatus: the NameServer's cluster table joined with each broker's
// runtime info, printed with upstream's columns (ClusterListSubCommand, BrokerStatusSubCommand).

import type { Command } from "commander";
import { ErrorCode, RmqError } from "../../common/errors.ts";
import type { BrokerData } from "../../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { type AdminContext, type Out, print, runAdmin, withNamesrvOption } from "./admin-context.ts";
import { fixed, left, right } from "./mqadmin-format.ts";

const MS_PER_HOUR = 3_600_000;

/** A broker's runtime table, or undefined when it cannot be read (the row is still printed, as upstream). */
async function runtimeOf(ctx: AdminContext, addr: string): Promise<Record<string, string> | undefined> {
  try {
    return (await ctx.onBroker(addr, (c) => c.getBrokerRuntimeInfo({}))).table;
  } catch {
    return undefined;
  }
}

/** Java Double.parseDouble of the first word ("12.5 10.0 3.1" -> 12.5), 0 when absent or not a number. */
function firstNumber(v: string | undefined): number {
  const n = Number((v ?? "").trim().split(" ")[0]);
  return Number.isFinite(n) ? n : 0;
}

function replicas(bd: BrokerData): [string, string][] {
  return Object.entries(bd.brokerAddrs).sort((a, b) => Number(a[0]) - Number(b[0]));
}

async function targetSets(
  ctx: AdminContext,
  cluster: string | undefined,
): Promise<{ cluster: string; sets: BrokerData[] }[]> {
  const ci = await ctx.clusterInfo();
  const names = cluster === undefined ? Object.keys(ci.clusterAddrTable).sort() : [cluster];
  const out: { cluster: string; sets: BrokerData[] }[] = [];
  for (const c of names) out.push({ cluster: c, sets: await ctx.brokerSetsOfCluster(c, ci) });
  return out;
}

export async function clusterList(
  ctx: AdminContext,
  o: { clusterName?: string; moreStats?: boolean },
  out: Out,
  now: () => number = Date.now,
): Promise<void> {
  const clusters = await targetSets(ctx, o.clusterName?.trim());
  if (o.moreStats) {
    out(
      `${left("#Cluster Name", 16)}  ${left("#Broker Name", 32)} ${right("#InTotalYest", 14)} ${right("#OutTotalYest", 14)} ${right("#InTotalToday", 14)} ${right("#OutTotalToday", 14)}`,
    );
    for (const { cluster, sets } of clusters) {
      for (const bd of sets) {
        for (const [, addr] of replicas(bd)) {
          const t = (await runtimeOf(ctx, addr)) ?? {};
          const n = (k: string) => firstNumber(t[k]);
          const inYest = n("msgPutTotalTodayMorning") - n("msgPutTotalYesterdayMorning");
          const outYest = n("msgGetTotalTodayMorning") - n("msgGetTotalYesterdayMorning");
          const inToday = n("msgPutTotalTodayNow") - n("msgPutTotalTodayMorning");
          const outToday = n("msgGetTotalTodayNow") - n("msgGetTotalTodayMorning");
          out(
            `${left(cluster, 16)}  ${left(bd.brokerName, 32)} ${right(inYest, 14)} ${right(outYest, 14)} ${right(inToday, 14)} ${right(outToday, 14)}`,
          );
        }
      }
    }
    return;
  }
  out(
    `${left("#Cluster Name", 22)}  ${left("#Broker Name", 22)}  ${left("#BID", 4)}  ${left("#Addr", 22)} ${left("#Version", 16)}  ` +
      `${right("#InTPS(LOAD)", 16)}  ${right("#OutTPS(LOAD)", 30)}  ${left("#Timer(Progress)", 22)}  ${left("#PCWait(ms)", 11)}  ` +
      `${left("#Hour", 12)}  ${left("#SPACE", 8)}  ${left("#ACTIVATED", 10)}`,
  );
  for (const { cluster, sets } of clusters) {
    for (const bd of sets) {
      for (const [id, addr] of replicas(bd)) {
        const t = (await runtimeOf(ctx, addr)) ?? {};
        const s = (k: string) => t[k] ?? "";
        const inTps = `${fixed(firstNumber(t.putTps), 2, 9)}(${s("sendThreadPoolQueueSize")},${s("sendThreadPoolQueueHeadWaitTimeMills")}ms)`;
        const outTps =
          `${fixed(firstNumber(t.getTransferredTps), 2, 9)}(${s("pullThreadPoolQueueSize")},${s("pullThreadPoolQueueHeadWaitTimeMills")}ms|` +
          `${t.ackThreadPoolQueueSize ?? "N"},${t.ackThreadPoolQueueHeadWaitTimeMills ?? "N"}ms)`;
        const timer =
          `${Math.trunc(firstNumber(t.timerReadBehind))}-${Math.trunc(firstNumber(t.timerOffsetBehind))}` +
          `(${fixed(firstNumber(t.timerCongestNum) / 10_000, 1)}w, ${fixed(firstNumber(t.timerEnqueueTps), 1)}, ${fixed(firstNumber(t.timerDequeueTps), 1)})`;
        const earliest = firstNumber(t.earliestMessageTimeStamp);
        const hour = earliest > 0 ? (now() - earliest) / MS_PER_HOUR : 0;
        const space = Math.max(0, firstNumber(t.commitLogDiskRatio));
        out(
          `${left(cluster, 22)}  ${left(bd.brokerName, 22)}  ${left(id, 4)}  ${left(addr, 22)} ${left(s("brokerVersionDesc"), 16)}  ` +
            `${right(inTps, 16)}  ${right(outTps, 30)}  ${left(timer, 22)}  ${right(s("pageCacheLockTimeMills"), 11)}  ` +
            `${left(fixed(hour, 2), 12)}  ${left(fixed(space, 4), 8)}  ${right(t.brokerActive === "true", 10)}`,
        );
      }
    }
  }
}

export async function brokerStatus(
  ctx: AdminContext,
  o: { brokerAddr?: string; clusterName?: string },
  out: Out,
): Promise<void> {
  const b = o.brokerAddr?.trim();
  const c = o.clusterName?.trim();
  if ((b === undefined) === (c === undefined)) {
    throw new RmqError(ErrorCode.IllegalArgument, "give exactly one of -b/--brokerAddr or -c/--clusterName");
  }
  if (b !== undefined) {
    const { table } = await ctx.onBroker(b, (cl) => cl.getBrokerRuntimeInfo({}));
    for (const k of Object.keys(table).sort()) out(`${left(k, 32)}: ${table[k]}`);
    return;
  }
  const failures: string[] = [];
  let total = 0;
  for (const { sets } of await targetSets(ctx, c)) {
    for (const bd of sets) {
      for (const [, addr] of replicas(bd)) {
        total++;
        try {
          const { table } = await ctx.onBroker(addr, (cl) => cl.getBrokerRuntimeInfo({}));
          for (const k of Object.keys(table).sort()) out(`${left(addr, 24)} ${left(k, 32)}: ${table[k]}`);
        } catch (e) {
          failures.push(`${addr}: ${(e as Error).message}`);
        }
      }
    }
  }
  if (failures.length > 0) {
    throw new RmqError(
      ErrorCode.RpcUnavailable,
      `brokerStatus failed for ${failures.length} of ${total} brokers: ${failures.join("; ")}`,
    );
  }
}

export function registerClusterCommands(admin: Command): void {
  withNamesrvOption(admin.command("clusterList"))
    .description("list the clusters, their brokers and each broker's load")
    .option("-c, --clusterName <cluster>", "only this cluster")
    .option("-m, --moreStats", "print yesterday's and today's message totals instead")
    .action((o: { namesrvAddr?: string; clusterName?: string; moreStats?: boolean }) =>
      runAdmin(o.namesrvAddr, (ctx) => clusterList(ctx, o, print)),
    );

  withNamesrvOption(admin.command("brokerStatus"))
    .description("print a broker's runtime info (every broker of a cluster with -c)")
    .option("-b, --brokerAddr <host:port>", "broker address")
    .option("-c, --clusterName <cluster>", "every broker of this cluster")
    .action((o: { namesrvAddr?: string; brokerAddr?: string; clusterName?: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => brokerStatus(ctx, o, print)),
    );
}
