// mqadmin's connection commands: consumerConnection and producerConnection — names, flags and output as
// upstream's ConsumerConnectionSubCommand and ProducerConnectionSubCommand. Clients reach brokers through
// proxies, which register them on every heartbeat (broker/client-connections.ts).
//
// Differences on purpose: consumerConnection without -b asks every master and merges their answers
// (upstream asks one broker of the route of %RETRY%group; our pop retry topics are per topic); versions
// print as the SDK reported them (upstream maps its own version numbers to names like V5_1_0).

import type { Command } from "commander";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import type {
  ClientConnection,
  ConsumerSubscription,
  GetConsumerConnectionResponse,
} from "../../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import { type AdminContext, type Out, print, runAdmin, withNamesrvOption } from "./admin-context.ts";
import { left } from "./mqadmin-format.ts";

/** The connections of `group` on each broker that has any, merged (one row per client id). */
async function consumerConnections(
  ctx: AdminContext,
  group: string,
  brokerAddr: string | undefined,
): Promise<GetConsumerConnectionResponse | undefined> {
  const addrs = brokerAddr !== undefined ? [brokerAddr] : (await ctx.allMasterAddrs()).map((m) => m.addr);
  let merged: GetConsumerConnectionResponse | undefined;
  const clients = new Map<string, ClientConnection>();
  const subscriptions = new Map<string, ConsumerSubscription>();
  for (const addr of addrs) {
    let res: GetConsumerConnectionResponse;
    try {
      res = await ctx.onBroker(addr, (c) => c.getConsumerConnection({ group }));
    } catch (e) {
      if (isRmqError(e, ErrorCode.ConsumerNotOnline)) continue;
      throw e;
    }
    merged ??= res;
    for (const c of res.connections) if (!clients.has(c.clientId)) clients.set(c.clientId, c);
    for (const s of res.subscriptions) if (!subscriptions.has(s.topic)) subscriptions.set(s.topic, s);
  }
  if (merged === undefined) return undefined;
  merged.connections = [...clients.values()];
  merged.subscriptions = [...subscriptions.values()];
  return merged;
}

export async function consumerConnection(
  ctx: AdminContext,
  o: { consumerGroup: string; brokerAddr?: string },
  out: Out,
): Promise<void> {
  const group = o.consumerGroup.trim();
  const cc = await consumerConnections(ctx, group, o.brokerAddr?.trim());
  if (cc === undefined) {
    throw new RmqError(
      ErrorCode.ConsumerNotOnline,
      `Not found the consumer group connection: no client of group ${JSON.stringify(group)} is connected`,
    );
  }
  out(`${left("#ClientId", 36)} ${left("#ClientAddr", 22)} ${left("#Language", 10)} #Version`);
  for (const c of cc.connections)
    out(`${left(c.clientId, 36)} ${left(c.clientAddr, 22)} ${left(c.language, 10)} ${c.version}`);
  out("");
  out("Below is subscription:");
  out(`${left("#Topic", 20)} #SubExpression`);
  for (const s of cc.subscriptions) out(`${left(s.topic, 20)} ${s.expression}`);
  out("");
  out(`ConsumeType: ${cc.consumeType}`);
  out(`MessageModel: ${cc.messageModel}`);
  out(`ConsumeFromWhere: ${cc.consumeFromWhere}`);
}

export async function producerConnection(
  ctx: AdminContext,
  o: { producerGroup: string; topic: string },
  out: Out,
): Promise<void> {
  const group = o.producerGroup.trim();
  const clients = new Map<string, ClientConnection>();
  for (const b of await ctx.brokersOfTopic(o.topic.trim())) {
    try {
      const res = await ctx.onBroker(b.addr, (c) => c.getProducerConnection({ group }));
      for (const c of res.connections) if (!clients.has(c.clientId)) clients.set(c.clientId, c);
    } catch (e) {
      if (!isRmqError(e, ErrorCode.ProducerNotOnline)) throw e;
    }
  }
  if (clients.size === 0) {
    throw new RmqError(
      ErrorCode.ProducerNotOnline,
      `Not found the producer group connection: no producer of group ${JSON.stringify(group)} is connected` +
        " (gRPC producers are grouped by the topic they publish: -g <topic>)",
    );
  }
  let i = 1;
  for (const c of clients.values()) {
    out(
      `${String(i++).padStart(4, "0")}  ${left(c.clientId, 32)} ${left(c.clientAddr, 22)} ${left(c.language, 8)} ${c.version}`,
    );
  }
}

export function registerConnectionCommands(admin: Command): void {
  withNamesrvOption(admin.command("consumerConnection"))
    .description("list the clients of a consumer group and their subscriptions")
    .requiredOption("-g, --consumerGroup <group>", "consumer group name")
    .option("-b, --brokerAddr <host:port>", "ask only this broker")
    .action((o: { namesrvAddr?: string; consumerGroup: string; brokerAddr?: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => consumerConnection(ctx, o, print)),
    );

  withNamesrvOption(admin.command("producerConnection"))
    .description("list the producers of a producer group on a topic's brokers")
    .requiredOption("-g, --producerGroup <group>", "producer group name (for gRPC producers: the topic)")
    .requiredOption("-t, --topic <topic>", "topic name")
    .action((o: { namesrvAddr?: string; producerGroup: string; topic: string }) =>
      runAdmin(o.namesrvAddr, (ctx) => producerConnection(ctx, o, print)),
    );
}
