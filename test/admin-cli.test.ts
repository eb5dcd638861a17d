// `rmq admin ...` run as child processes (node cli/rmq.ts) against a real NameServer and two real
// brokers (broker-controller with the admin service) from test/fixtures/admin-broker.ts: output lines
// and mqadmin's column positions, state changes on the brokers, exit codes and one-line errors.

import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BrokerController } from "../broker/broker-controller.ts";
import { createRpcClient } from "../common/rpc-client.ts";
import { NamesrvService } from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { ADMIN_TEST_CLUSTER, type AdminCluster, startAdminCluster } from "./fixtures/admin-broker.ts";

const RMQ = fileURLToPath(new URL("../cli/rmq.ts", import.meta.url));
const CLI_TIMEOUT_MS = 30_000;
const ROUTE_WAIT_MS = 10_000;

let cluster: AdminCluster;
let brokerA: BrokerController;
let brokerB: BrokerController;
/** TMPDIR of the CLI processes (queryMsgById writes bodies under it). */
let cliTmp: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs `rmq admin <args>`; `-n` is added unless `namesrv` is null (then NAMESRV_ADDR or the default applies). */
function admin(
  args: string[],
  opts: { namesrv?: string | null; env?: Record<string, string> } = {},
): Promise<Run> {
  const n =
    opts.namesrv === undefined
      ? ["-n", cluster.namesrvAddr]
      : opts.namesrv === null
        ? []
        : ["-n", opts.namesrv];
  // The compile cache roughly halves the CPU each CLI start costs after the first one.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TMPDIR: cliTmp,
    NODE_COMPILE_CACHE: join(cliTmp, "compile-cache"),
    ...opts.env,
  };
  if (opts.env?.NAMESRV_ADDR === undefined) delete env.NAMESRV_ADDR;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RMQ, "admin", ...args, ...n],
      { encoding: "utf8", env, timeout: CLI_TIMEOUT_MS },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr, lines: stdout.split("\n").filter((l) => l !== "") });
      },
    );
  });
}

function expectOk(r: Run): void {
  expect(r.stderr, r.stderr).toBe("");
  expect(r.code).toBe(0);
}

/** A failure: non-zero exit, nothing on stdout, exactly one line on stderr matching `pattern`. */
function expectOneLineError(r: Run, pattern: RegExp): void {
  expect(r.code).not.toBe(0);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** Waits until the NameServer routes `topic` to `brokers` broker sets (registration is asynchronous). */
async function waitForRoute(topic: string, brokers: number): Promise<void> {
  const ns = createRpcClient(NamesrvService, cluster.namesrvAddr);
  const deadline = Date.now() + ROUTE_WAIT_MS;
  for (;;) {
    try {
      const r = await ns.getRouteInfoByTopic({ topic });
      if ((r.route?.brokerDatas.length ?? 0) === brokers) return;
    } catch {
      // not routed yet
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} not routed to ${brokers} brokers in time`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  cliTmp = mkdtempSync(join(tmpdir(), "admin-cli-tmp-"));
  cluster = await startAdminCluster(["broker-a", "broker-b"]);
  brokerA = cluster.brokers.get("broker-a") as BrokerController;
  brokerB = cluster.brokers.get("broker-b") as BrokerController;
});

afterAll(async () => {
  await cluster?.close();
  rmSync(cliTmp, { recursive: true, force: true });
});

describe("rmq admin against a NameServer and two brokers", () => {
  it("clusterList prints mqadmin's columns for every broker (NameServer from NAMESRV_ADDR)", async () => {
    const r = await admin(["clusterList"], { namesrv: null, env: { NAMESRV_ADDR: cluster.namesrvAddr } });
    expectOk(r);
    const [head, ...rows] = r.lines;
    // "%-22s  %-22s  %-4s  %-22s %-16s  ..." as upstream's ClusterListSubCommand.
    expect(head?.indexOf("#Broker Name")).toBe(24);
    expect(head?.indexOf("#BID")).toBe(48);
    expect(head?.indexOf("#Addr")).toBe(54);
    expect(head?.indexOf("#Version")).toBe(77);
    for (const h of [
      "#InTPS(LOAD)",
      "#OutTPS(LOAD)",
      "#Timer(Progress)",
      "#PCWait(ms)",
      "#Hour",
      "#SPACE",
      "#ACTIVATED",
    ]) {
      expect(head).toContain(h);
    }
    expect(rows).toHaveLength(2);
    const a = rows[0] as string;
    expect(a.startsWith(ADMIN_TEST_CLUSTER)).toBe(true);
    expect(a.slice(24, 32)).toBe("broker-a");
    expect(a.slice(48, 49)).toBe("0");
    expect(a.slice(54).startsWith(brokerA.brokerAddr)).toBe(true);
    expect(a.slice(77).startsWith("V5_3_3")).toBe(true);
    expect(a.trimEnd().endsWith("true")).toBe(true);
    expect(rows[1]?.slice(24, 32)).toBe("broker-b");
  });

  it("updateTopic (any case) creates on every master, updates only what is given, and routes", async () => {
    const created = await admin([
      "updatetopic",
      "-t",
      "AdminTopic",
      "-c",
      ADMIN_TEST_CLUSTER,
      "-r",
      "4",
      "-w",
      "4",
      "-a",
      "+message.type=FIFO",
    ]);
    expectOk(created);
    expect(created.lines).toEqual([
      `create topic to ${brokerA.brokerAddr} success.`,
      `create topic to ${brokerB.brokerAddr} success.`,
      "TopicConfig [topicName=AdminTopic, readQueueNums=4, writeQueueNums=4, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={message.type=FIFO}]",
    ]);
    for (const b of [brokerA, brokerB]) {
      expect(b.topics.get("AdminTopic")).toMatchObject({
        readQueueNums: 4,
        writeQueueNums: 4,
        attributes: { "message.type": "FIFO" },
      });
    }

    const updated = await admin(["UpdateTopic", "-t", "AdminTopic", "-b", brokerB.brokerAddr, "-p", "4"]);
    expectOk(updated);
    expect(updated.lines[0]).toBe(`create topic to ${brokerB.brokerAddr} success.`);
    expect(updated.lines[1]).toContain("readQueueNums=4, writeQueueNums=4, perm=R--");
    expect(brokerB.topics.get("AdminTopic")?.perm).toBe(4);
    expect(brokerA.topics.get("AdminTopic")?.perm).toBe(6);

    await waitForRoute("AdminTopic", 2);
    const route = await admin(["topicRoute", "-t", "AdminTopic"]);
    expectOk(route);
    const doc = JSON.parse(route.stdout);
    expect(Object.keys(doc)).toEqual(["brokerDatas", "filterServerTable", "queueDatas"]);
    expect(doc.brokerDatas.map((b: { brokerName: string }) => b.brokerName).sort()).toEqual([
      "broker-a",
      "broker-b",
    ]);
    expect(doc.brokerDatas[0]).toMatchObject({ cluster: ADMIN_TEST_CLUSTER, enableActingMaster: false });
    expect(doc.queueDatas[0]).toEqual({
      brokerName: expect.any(String),
      perm: expect.any(Number),
      readQueueNums: 4,
      topicSysFlag: 0,
      writeQueueNums: 4,
    });

    const list = await admin(["topicRoute", "-t", "AdminTopic", "-l"]);
    expectOk(list);
    // "%-45s %-32s %-50s %-10s %-11s %-5s" as upstream's TopicRouteSubCommand, then 158 dashes and Total.
    expect(list.lines[0]?.indexOf("#BrokerName")).toBe(46);
    expect(list.lines[0]?.indexOf("#BrokerAddrs")).toBe(79);
    expect(list.lines[1]?.slice(46, 54)).toBe("broker-a");
    expect(list.lines[1]?.slice(79)).toMatch(new RegExp(`^\\{0=${brokerA.brokerAddr}\\} +4 +4 +6`));
    expect(list.lines[3]).toBe("-".repeat(158));
    expect(list.lines[4]).toMatch(/^Total: +2 +8 +8/);

    const topics = await admin(["topicList"]);
    expectOk(topics);
    expect(topics.lines).toContain("AdminTopic");
  });

  it("topicStatus, queryMsgByKey and queryMsgById show the messages stored on the brokers", async () => {
    await waitForRoute("AdminTopic", 2);
    const sent = await brokerA.messageService.sendMessages({
      topic: "AdminTopic",
      queueId: 1,
      messages: [0, 1, 2].map((i) => ({ body: Buffer.from(`body-${i}`), keys: [`order-${i}`], tag: "TagA" })),
    });
    const second = sent[1];
    if (second === undefined) throw new Error("send returned nothing");

    const status = await admin(["topicStatus", "-t", "AdminTopic"]);
    expectOk(status);
    const head = status.lines[0] as string;
    // "%-32s  %-4s  %-20s  %-20s    %s" as upstream's TopicStatusSubCommand.
    expect([
      head.indexOf("#QID"),
      head.indexOf("#Min Offset"),
      head.indexOf("#Max Offset"),
      head.indexOf("#Last Updated"),
    ]).toEqual([34, 40, 62, 86]);
    const rows = status.lines.slice(1, -1);
    expect(rows).toHaveLength(8);
    const a1 = rows[1] as string;
    expect([a1.slice(0, 8), a1.slice(34, 35), a1.slice(40, 41), a1.slice(62, 63)]).toEqual([
      "broker-a",
      "1",
      "0",
      "3",
    ]);
    expect(a1.slice(86)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}$/);
    expect(rows[4]?.startsWith("broker-b")).toBe(true);
    expect(status.lines.at(-1)).toBe("Topic Put TPS: 0.0");

    const byKey = await admin(["queryMsgByKey", "-t", "AdminTopic", "-k", "order-1"]);
    expectOk(byKey);
    expect(byKey.lines).toEqual([
      `${"#Message ID".padEnd(50)} #QID ${"#Offset".padStart(40)}`,
      `${second.messageId.padEnd(50)} ${"1".padStart(4)} ${"1".padStart(40)}`,
    ]);

    const byId = await admin(["queryMsgById", "-t", "AdminTopic", "-i", second.messageId, "-f", "UTF-8"]);
    expectOk(byId);
    const field = (label: string) => byId.lines.find((l) => l.startsWith(label.padEnd(20)))?.slice(21);
    expect(field("OffsetID:")).toBe(second.offsetMsgId);
    expect(field("Topic:")).toBe("AdminTopic");
    expect(field("Tags:")).toBe("[TagA]");
    expect(field("Keys:")).toBe("[order-1]");
    expect(field("Queue ID:")).toBe("1");
    expect(field("Queue Offset:")).toBe("1");
    expect(field("CommitLog Offset:")).toBe(String(second.commitLogOffset));
    // The store host is brokerIP1:listenPort as configured (0 here: the OS chose the port).
    expect(field("Store Host:")).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(field("Born Host:")).toBe("127.0.0.1:0");
    expect(field("Properties:")).toMatch(/^\{.*KEYS=order-1.*\}$/);
    expect(field("Message Body:")).toBe("body-1");
    const bodyPath = field("Message Body Path:") as string;
    expect(bodyPath.startsWith(cliTmp)).toBe(true);
    expect(existsSync(bodyPath) && readFileSync(bodyPath, "utf8")).toBe("body-1");
    expect(byId.lines.at(-1)).toBe("WARN: No Consumer");

    // The offset msgId finds the same record.
    const byOffsetId = await admin(["queryMsgById", "-t", "AdminTopic", "-i", second.offsetMsgId]);
    expectOk(byOffsetId);
    expect(byOffsetId.lines.find((l) => l.startsWith("Queue Offset:"))).toMatch(/ 1$/);
  });

  it("updateSubGroup, consumerProgress and deleteSubGroup work on the groups and offsets", async () => {
    const upd = await admin([
      "updateSubGroup",
      "-g",
      "GID_ADMIN",
      "-c",
      ADMIN_TEST_CLUSTER,
      "-r",
      "3",
      "-o",
      "true",
    ]);
    expectOk(upd);
    expect(upd.lines.slice(0, 2)).toEqual([
      `create subscription group to ${brokerA.brokerAddr} success.`,
      `create subscription group to ${brokerB.brokerAddr} success.`,
    ]);
    expect(upd.lines[2]).toMatch(
      /^SubscriptionGroupConfig\{groupName=GID_ADMIN, consumeEnable=true, .*consumeMessageOrderly=true, retryQueueNums=1, retryMaxTimes=3, /,
    );
    for (const b of [brokerA, brokerB])
      expect(b.groups.get("GID_ADMIN")).toMatchObject({ retryMaxTimes: 3, consumeMessageOrderly: true });

    await waitForRoute("AdminTopic", 2);
    brokerA.offsets.commit("GID_ADMIN", "AdminTopic", 1, 2);
    const progress = await admin(["consumerProgress", "-g", "GID_ADMIN", "-t", "AdminTopic"]);
    expectOk(progress);
    const head = progress.lines[0] as string;
    // "%-64s  %-32s  %-4s  %-20s  %-20s  %-20s %-20s%s" as upstream's ConsumerProgressSubCommand.
    expect(
      ["#Broker Name", "#QID", "#Broker Offset", "#Consumer Offset", "#Diff", "#Inflight", "#LastTime"].map(
        (h) => head.indexOf(h),
      ),
    ).toEqual([66, 100, 106, 128, 150, 171, 191]);
    const q1 = progress.lines.find(
      (l) => l.startsWith("AdminTopic") && l.slice(66, 74) === "broker-a" && l.slice(100, 101) === "1",
    ) as string;
    expect([q1.slice(106, 107), q1.slice(128, 129), q1.slice(150, 151), q1.slice(171, 172)]).toEqual([
      "3",
      "2",
      "1",
      "0",
    ]);
    expect(q1.slice(192)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(progress.lines.slice(-3)).toEqual([
      "Consume TPS: 0.00",
      "Consume Diff Total: 1",
      "Consume Inflight Total: 0",
    ]);

    const withIp = await admin(["consumerProgress", "-g", "GID_ADMIN", "-t", "AdminTopic", "-s", "true"]);
    expectOk(withIp);
    expect(withIp.lines[0]?.indexOf("#Client IP")).toBe(150);
    expect(withIp.lines[1]?.slice(150, 153)).toBe("N/A");

    const overview = await admin(["consumerProgress"]);
    expectOk(overview);
    expect(overview.lines[0]).toMatch(/^#Group +#Count +#Version +#Type +#Model +#TPS +#Diff Total$/);
    expect(overview.lines.find((l) => l.startsWith("GID_ADMIN"))).toMatch(/^GID_ADMIN +0 +OFFLINE +0 +1$/);

    const del = await admin(["deleteSubGroup", "-g", "GID_ADMIN", "-b", brokerA.brokerAddr, "-r", "true"]);
    expectOk(del);
    expect(del.lines).toEqual([
      `delete subscription group [GID_ADMIN] from broker [${brokerA.brokerAddr}] success.`,
    ]);
    expect(brokerA.groups.get("GID_ADMIN")).toBeUndefined();
    expect(brokerA.offsets.query("GID_ADMIN", "AdminTopic", 1)).toBe(-1);
    expect(brokerB.groups.get("GID_ADMIN")).toBeDefined();
    expectOneLineError(
      await admin(["deleteSubGroup", "-g", "GID_ADMIN", "-b", brokerA.brokerAddr]),
      /^rmq: subscription group "GID_ADMIN" does not exist on broker /,
    );
  });

  it("consumerConnection and producerConnection list the clients proxies registered, merged over brokers", async () => {
    const conn = (clientId: string, port: number) => ({
      clientId,
      clientAddr: `10.1.2.3:${port}`,
      language: "NODE_JS",
      version: "5.0.3",
    });
    brokerA.clients.heartbeat({
      connection: conn("consumer-1", 40001),
      consumerGroup: "GID_CONN",
      consumeType: "CONSUME_PASSIVELY",
      subscriptions: [{ topic: "ConnTopic", expression: "TagA || TagB", expressionType: "TAG" }],
    });
    brokerB.clients.heartbeat({
      connection: conn("consumer-2", 40002),
      consumerGroup: "GID_CONN",
      consumeType: "CONSUME_PASSIVELY",
      subscriptions: [{ topic: "ConnTopic", expression: "TagA || TagB", expressionType: "TAG" }],
    });
    const cc = await admin(["consumerConnection", "-g", "GID_CONN"]);
    expectOk(cc);
    expect(cc.stdout.split("\n")).toEqual([
      `${"#ClientId".padEnd(36)} ${"#ClientAddr".padEnd(22)} ${"#Language".padEnd(10)} #Version`,
      `${"consumer-1".padEnd(36)} ${"10.1.2.3:40001".padEnd(22)} ${"NODE_JS".padEnd(10)} 5.0.3`,
      `${"consumer-2".padEnd(36)} ${"10.1.2.3:40002".padEnd(22)} ${"NODE_JS".padEnd(10)} 5.0.3`,
      "",
      "Below is subscription:",
      `${"#Topic".padEnd(20)} #SubExpression`,
      `${"ConnTopic".padEnd(20)} TagA || TagB`,
      "",
      "ConsumeType: CONSUME_PASSIVELY",
      "MessageModel: CLUSTERING",
      "ConsumeFromWhere: CONSUME_FROM_LAST_OFFSET",
      "",
    ]);
    // -b asks one broker only.
    const onlyB = await admin(["consumerConnection", "-g", "GID_CONN", "-b", brokerB.brokerAddr]);
    expectOk(onlyB);
    expect(onlyB.lines.filter((l) => l.startsWith("consumer-"))).toHaveLength(1);
    brokerA.clients.unregister("consumer-1");
    brokerB.clients.unregister("consumer-2");
    expectOneLineError(
      await admin(["consumerConnection", "-g", "GID_CONN"]),
      /Not found the consumer group connection/,
    );

    await waitForRoute("AdminTopic", 2);
    brokerA.clients.heartbeat({ connection: conn("producer-1", 40003), producerGroups: ["AdminTopic"] });
    const pc = await admin(["producerConnection", "-g", "AdminTopic", "-t", "AdminTopic"]);
    expectOk(pc);
    expect(pc.lines).toEqual([
      `0001  ${"producer-1".padEnd(32)} ${"10.1.2.3:40003".padEnd(22)} ${"NODE_JS".padEnd(8)} 5.0.3`,
    ]);
    brokerA.clients.unregister("producer-1");
    expectOneLineError(
      await admin(["producerConnection", "-g", "AdminTopic", "-t", "AdminTopic"]),
      /Not found the producer group connection/,
    );
  });

  it("brokerStatus prints the broker's runtime table as sorted key : value lines", async () => {
    const r = await admin(["brokerStatus", "-b", brokerA.brokerAddr]);
    expectOk(r);
    const keys = r.lines.map((l) => l.slice(0, l.indexOf(":")).trimEnd());
    expect(keys).toEqual([...keys].sort());
    expect(r.lines).toContain(`${"brokerVersionDesc".padEnd(32)}: V5_3_3`);
    expect(r.lines.find((l) => l.startsWith("commitLogMaxOffset"))).toMatch(/: [1-9]\d*$/);

    const all = await admin(["brokerStatus", "-c", ADMIN_TEST_CLUSTER]);
    expectOk(all);
    expect(
      all.lines.some((l) => l.startsWith(brokerB.brokerAddr.padEnd(24)) && l.includes("brokerVersionDesc")),
    ).toBe(true);
  });

  it("deleteTopic removes the topic from the brokers and the NameServer", async () => {
    await admin(["updateTopic", "-t", "DoomedTopic", "-c", ADMIN_TEST_CLUSTER]);
    await waitForRoute("DoomedTopic", 2);
    const del = await admin(["deleteTopic", "-t", "DoomedTopic", "-c", ADMIN_TEST_CLUSTER]);
    expectOk(del);
    expect(del.lines).toEqual([
      `delete topic [DoomedTopic] from cluster [${ADMIN_TEST_CLUSTER}] success.`,
      "delete topic [DoomedTopic] from NameServer success.",
    ]);
    expect(brokerA.topics.has("DoomedTopic") || brokerB.topics.has("DoomedTopic")).toBe(false);
    const [route, again] = await Promise.all([
      admin(["topicRoute", "-t", "DoomedTopic"]),
      admin(["deleteTopic", "-t", "DoomedTopic", "-c", ADMIN_TEST_CLUSTER]),
    ]);
    expectOneLineError(route, /^rmq: .*DoomedTopic/);
    expectOneLineError(again, /^rmq: topic "DoomedTopic" does not exist in cluster AdminCluster$/);
  });

  it("fails with one line on stderr and a non-zero exit for bad input and unreachable servers", async () => {
    const [
      unknownTopic,
      noNamesrv,
      badInt,
      badBool,
      missing,
      unknownCluster,
      badAttr,
      badAttrValue,
      badAddr,
      noMsg,
    ] = await Promise.all([
      admin(["topicStatus", "-t", "NoSuchTopic"]),
      admin(["topicList"], { namesrv: "127.0.0.1:1" }),
      admin(["updateTopic", "-t", "T", "-c", ADMIN_TEST_CLUSTER, "-r", "many"]),
      admin(["updateSubGroup", "-g", "G", "-c", ADMIN_TEST_CLUSTER, "-o", "yes"]),
      admin(["updateTopic", "-c", ADMIN_TEST_CLUSTER]),
      admin(["updateTopic", "-t", "T", "-c", "NoSuchCluster"]),
      admin(["updateTopic", "-t", "T", "-c", ADMIN_TEST_CLUSTER, "-a", "message.type=FIFO"]),
      admin(["updateTopic", "-t", "BadTypeTopic", "-b", brokerA.brokerAddr, "-a", "+message.type=BOGUS"]),
      admin(["updateTopic", "-t", "T", "-b", "not-an-address"]),
      admin(["queryMsgById", "-t", "AdminTopic", "-i", "NOPE"]),
    ]);
    expectOneLineError(unknownTopic, /^rmq: .*NoSuchTopic/);
    expectOneLineError(
      noNamesrv,
      /^rmq: cannot reach the NameServer at 127\.0\.0\.1:1 \(.*ECONNREFUSED.*\)$/,
    );
    expectOneLineError(badInt, /^rmq: -r\/--readQueueNums "many" is illegal: expected an integer/);
    expectOneLineError(
      badBool,
      /^rmq: -o\/--consumeMessageOrderly "yes" is illegal: expected true or false$/,
    );
    expectOneLineError(missing, /^error: required option '-t, --topic <topic>' not specified$/);
    expectOneLineError(
      unknownCluster,
      /^rmq: cluster "NoSuchCluster" is not known to the NameServer .*\(known: AdminCluster\)$/,
    );
    expectOneLineError(badAttr, /^rmq: attribute "message\.type=FIFO" must start with \+/);
    expectOneLineError(badAttrValue, /^rmq: .*message\.type=BOGUS must be one of .*FIFO/);
    expectOneLineError(badAddr, /^rmq: illegal broker address "not-an-address"/);
    expectOneLineError(noMsg, /^rmq: message "NOPE" not found in topic "AdminTopic"$/);
    expect(brokerA.topics.has("BadTypeTopic")).toBe(false);
  });
});
