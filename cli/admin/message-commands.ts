// mqadmin's queryMsgByKey and queryMsgById: find messages through the brokers of the topic's route
// and print them as upstream's QueryMsgByKeySubCommand and QueryMsgByIdSubCommand.printMsg do (the
// body is written to `<tmpdir>/rocketmq/msgbodys/<msgId>`, its path printed).

import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { decodeOffsetMsgId } from "../../broker/store/message-id.ts";
import { ErrorCode, isRmqError, RmqError } from "../../common/errors.ts";
import type { MessageView } from "../../proto/gen/rmq/broker/v1/broker_admin_pb.ts";
import { type AdminContext, type Out, print, runAdmin, withNamesrvOption } from "./admin-context.ts";
import { intFlag, timestampFlag } from "./flag-values.ts";
import { humanTime2, javaMap, left, right } from "./mqadmin-format.ts";

/** Upstream QueryMsgByKeySubCommand default -m (64). */
export const DEFAULT_QUERY_MAX_NUM = 64;
/** Where upstream writes a queried message's body ("/tmp/rocketmq/msgbodys"). */
export function messageBodyDir(): string {
  return join(tmpdir(), "rocketmq", "msgbodys");
}

async function topicBrokers(ctx: AdminContext, topic: string, cluster: string | undefined) {
  return cluster === undefined ? ctx.brokersOfTopic(topic) : ctx.masterAddrsOfCluster(cluster);
}

export async function queryMsgByKey(
  ctx: AdminContext,
  o: {
    topic: string;
    msgKey: string;
    beginTimestamp?: string;
    endTimestamp?: string;
    maxNum?: string;
    cluster?: string;
  },
  out: Out,
): Promise<void> {
  const topic = o.topic.trim();
  const key = o.msgKey.trim();
  const begin = o.beginTimestamp === undefined ? 0 : timestampFlag("-b/--beginTimestamp", o.beginTimestamp);
  const end = o.endTimestamp === undefined ? 0 : timestampFlag("-e/--endTimestamp", o.endTimestamp);
  const maxNum = o.maxNum === undefined ? DEFAULT_QUERY_MAX_NUM : intFlag("-m/--maxNum", o.maxNum, 1);
  const found: MessageView[] = [];
  for (const b of await topicBrokers(ctx, topic, o.cluster?.trim())) {
    const res = await ctx.onBroker(b.addr, (c) =>
      c.queryMessageByKey({ topic, key, maxNum, beginTimestamp: BigInt(begin), endTimestamp: BigInt(end) }),
    );
    found.push(...res.messages);
  }
  out(`${left("#Message ID", 50)} ${right("#QID", 4)} ${right("#Offset", 40)}`);
  for (const m of found.slice(0, maxNum)) {
    out(
      `${left(m.uniqKey !== "" ? m.uniqKey : m.offsetMsgId, 50)} ${right(m.queueId, 4)} ${right(m.queueOffset, 40)}`,
    );
  }
}

/** Finds one message by client id (UNIQ_KEY), else by offset msgId, on the given brokers. */
async function findMessage(
  ctx: AdminContext,
  brokers: { addr: string }[],
  topic: string,
  msgId: string,
): Promise<MessageView | undefined> {
  for (const b of brokers) {
    const res = await ctx.onBroker(b.addr, (c) => c.queryMessageByUniqKey({ topic, uniqKey: msgId }));
    if (res.message !== undefined) return res.message;
  }
  let commitLogOffset: number;
  try {
    commitLogOffset = decodeOffsetMsgId(msgId).commitLogOffset;
  } catch (e) {
    if (isRmqError(e, ErrorCode.IllegalArgument)) return undefined;
    throw e;
  }
  for (const b of brokers) {
    const res = await ctx.onBroker(b.addr, (c) =>
      c.viewMessage({ commitLogOffset: BigInt(commitLogOffset) }),
    );
    const m = res.message;
    // The offset names a record on the broker whose store host is in the id; others have other records there.
    if (m !== undefined && m.topic === topic && m.offsetMsgId.toUpperCase() === msgId.toUpperCase()) return m;
  }
  return undefined;
}

function decodeBody(body: Uint8Array, charset: string): string {
  try {
    return new TextDecoder(charset).decode(body);
  } catch {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `-f/--bodyFormat ${JSON.stringify(charset)} is not a known charset`,
    );
  }
}

/** Upstream QueryMsgByIdSubCommand.printMsg. */
export function printMessage(m: MessageView, out: Out, bodyCharset?: string): void {
  const id = m.uniqKey !== "" ? m.uniqKey : m.offsetMsgId;
  const dir = messageBodyDir();
  mkdirSync(dir, { recursive: true });
  const bodyPath = join(dir, id.replace(/[^A-Za-z0-9_-]/g, "_"));
  writeFileSync(bodyPath, m.body);
  const line = (label: string, value: string | number | bigint) => out(`${left(label, 20)} ${value}`);
  line("OffsetID:", m.offsetMsgId);
  line("Topic:", m.topic);
  line("Tags:", `[${m.properties.TAGS ?? "null"}]`);
  line("Keys:", `[${m.properties.KEYS ?? "null"}]`);
  line("Queue ID:", m.queueId);
  line("Queue Offset:", m.queueOffset);
  line("CommitLog Offset:", m.commitLogOffset);
  line("Reconsume Times:", m.reconsumeTimes);
  line("Born Timestamp:", humanTime2(Number(m.bornTimestamp)));
  line("Store Timestamp:", humanTime2(Number(m.storeTimestamp)));
  line("Born Host:", m.bornHost);
  line("Store Host:", m.storeHost);
  line("System Flag:", m.sysFlag);
  line("Properties:", javaMap(m.properties));
  line("Message Body Path:", bodyPath);
  if (bodyCharset !== undefined) line("Message Body:", decodeBody(m.body, bodyCharset));
  out("");
  out("");
  if (m.tracks.length === 0) {
    out("WARN: No Consumer");
    return;
  }
  for (const t of m.tracks) {
    out(`MessageTrack [consumerGroup=${t.consumerGroup}, trackType=${t.trackType}, exceptionDesc=null]`);
  }
}

export async function queryMsgById(
  ctx: AdminContext,
  o: { topic: string; msgId: string; bodyFormat?: string; cluster?: string },
  out: Out,
): Promise<void> {
  const topic = o.topic.trim();
  const ids = o.msgId
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (ids.length === 0) throw new RmqError(ErrorCode.IllegalArgument, "-i/--msgId is empty");
  if (o.bodyFormat !== undefined) decodeBody(new Uint8Array(0), o.bodyFormat);
  const brokers = await topicBrokers(ctx, topic, o.cluster?.trim());
  for (const id of ids) {
    const m = await findMessage(ctx, brokers, topic, id);
    if (m === undefined) {
      throw new RmqError(
        ErrorCode.MessageNotFound,
        `message ${JSON.stringify(id)} not found in topic ${JSON.stringify(topic)}`,
      );
    }
    printMessage(m, out, o.bodyFormat);
  }
}

export function registerMessageCommands(admin: Command): void {
  withNamesrvOption(admin.command("queryMsgByKey"))
    .description("list the messages of a topic that carry a key")
    .requiredOption("-t, --topic <topic>", "topic name")
    .requiredOption("-k, --msgKey <key>", "message key")
    .option("-b, --beginTimestamp <ms>", "stored at or after this time (default 0)")
    .option("-e, --endTimestamp <ms>", "stored at or before this time (default: no limit)")
    .option("-m, --maxNum <n>", `at most this many messages (default ${DEFAULT_QUERY_MAX_NUM})`)
    .option("-c, --cluster <cluster>", "ask this cluster's masters instead of the topic's route")
    .action(
      (o: {
        namesrvAddr?: string;
        topic: string;
        msgKey: string;
        beginTimestamp?: string;
        endTimestamp?: string;
        maxNum?: string;
        cluster?: string;
      }) => runAdmin(o.namesrvAddr, (ctx) => queryMsgByKey(ctx, o, print)),
    );

  withNamesrvOption(admin.command("queryMsgById"))
    .description("print a message by its id (client id or offset id; comma-separated for several)")
    .requiredOption("-t, --topic <topic>", "topic name")
    .requiredOption("-i, --msgId <ids>", "message id(s)")
    .option("-f, --bodyFormat <charset>", "also print the body decoded with this charset, e.g. UTF-8")
    .option("-c, --cluster <cluster>", "ask this cluster's masters instead of the topic's route")
    .action(
      (o: { namesrvAddr?: string; topic: string; msgId: string; bodyFormat?: string; cluster?: string }) =>
        runAdmin(o.namesrvAddr, (ctx) => queryMsgById(ctx, o, print)),
    );
}
