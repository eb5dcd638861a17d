// The broker's registrar against real NameServers (createNamesrv) on 127.0.0.1, over real RPC.

import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, RmqError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { closeRpcConnections, createRpcClient } from "../common/rpc-client.ts";
import { buildNamesrvConfig } from "../nameserver/namesrv-config.ts";
import { createNamesrv, type Namesrv } from "../nameserver/namesrv-server.ts";
import { NamesrvService } from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { type DataVersion, newDataVersion, nextDataVersion } from "./metadata/data-version.ts";
import { newTopicConfig, type TopicConfig } from "./metadata/topic-config-manager.ts";
import {
  createNamesrvRegistrar,
  type NamesrvRegistrar,
  type NamesrvRegistrarOptions,
} from "./namesrv-registrar.ts";

let dir: string;
const namesrvs: Namesrv[] = [];
const registrars: NamesrvRegistrar[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "namesrv-reg-"));
});
afterEach(async () => {
  await Promise.all(registrars.splice(0).map((r) => r.close()));
  await Promise.all(namesrvs.splice(0).map((n) => n.close()));
  closeRpcConnections();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startNamesrv(opts: { port?: number; now?: () => number } = {}): Promise<Namesrv> {
  const config = buildNamesrvConfig([
    {
      source: "test",
      entries: {
        listenPort: String(opts.port ?? 0),
        bindAddress: "127.0.0.1",
        kvConfigPath: path.join(dir, `kv-${namesrvs.length}.json`),
        scanNotActiveBrokerInterval: "50",
        shutdownWaitTimeSeconds: "1",
      },
    },
  ]);
  const n = await createNamesrv({ config, now: opts.now });
  namesrvs.push(n);
  return n;
}

/** A broker's topic table, as TopicConfigManager keeps it. */
class FakeTopics {
  readonly table = new Map<string, TopicConfig>();
  readonly dataVersion: DataVersion = newDataVersion();
  constructor(topics: string[]) {
    for (const t of topics)
      this.table.set(t, newTopicConfig({ topicName: t, readQueueNums: 4, writeQueueNums: 4 }));
  }
  add(t: string, attributes: Record<string, string> = {}): void {
    this.table.set(t, newTopicConfig({ topicName: t, attributes }));
    nextDataVersion(this.dataVersion);
  }
  snapshot = () => ({ topicConfigs: this.table.values(), dataVersion: this.dataVersion });
}

async function startBroker(
  namesrvAddr: string,
  name: string,
  topics: FakeTopics,
  over: Partial<NamesrvRegistrarOptions> = {},
): Promise<NamesrvRegistrar> {
  const port = 10911 + registrars.length * 10;
  const r = await createNamesrvRegistrar({
    namesrvAddr,
    clusterName: "DefaultCluster",
    brokerName: name,
    brokerId: 0,
    brokerAddr: `127.0.0.1:${port}`,
    haServerAddr: `127.0.0.1:${port + 1}`,
    topics: topics.snapshot,
    ...over,
  });
  registrars.push(r);
  return r;
}

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

async function routeError(addr: string, topic: string): Promise<string | undefined> {
  try {
    await createRpcClient(NamesrvService, addr).getRouteInfoByTopic({ topic });
    return undefined;
  } catch (e) {
    return e instanceof RmqError ? e.code : String(e);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("NameServer registration (real NameServer, real RPC)", () => {
  it("two brokers register; routes and cluster info appear; topic changes re-register; shutdown unregisters", async () => {
    const n = await startNamesrv();
    const addr = `127.0.0.1:${n.port}`;
    const client = createRpcClient(NamesrvService, addr);
    const topicsA = new FakeTopics(["TopicA", "Shared"]);
    const a = await startBroker(addr, "broker-a", topicsA);
    await startBroker(addr, "broker-b", new FakeTopics(["TopicB", "Shared"]));

    const shared = (await client.getRouteInfoByTopic({ topic: "Shared" })).route;
    expect(shared?.queueDatas.map((q) => q.brokerName).sort()).toEqual(["broker-a", "broker-b"]);
    expect(shared?.queueDatas[0]?.readQueueNums).toBe(4);
    const brokerA = shared?.brokerDatas.find((b) => b.brokerName === "broker-a");
    expect(brokerA?.cluster).toBe("DefaultCluster");
    expect(brokerA?.brokerAddrs).toEqual({ "0": "127.0.0.1:10911" });
    const cluster = await client.getBrokerClusterInfo({});
    expect(cluster.clusterAddrTable.DefaultCluster?.brokerNames.sort()).toEqual(["broker-a", "broker-b"]);
    expect(Object.keys(cluster.brokerAddrTable).sort()).toEqual(["broker-a", "broker-b"]);
    expect((await client.getAllTopicList({})).topics.sort()).toEqual(["Shared", "TopicA", "TopicB"]);

    topicsA.add("Orders", { "message.type": "FIFO" });
    const round = await a.registerAll();
    expect(round).toEqual({ registered: [addr], failed: [] });
    const orders = (await client.getRouteInfoByTopic({ topic: "Orders" })).route;
    expect(orders?.queueDatas).toHaveLength(1);
    expect(orders?.queueDatas[0]?.messageType).toBe("FIFO");

    await a.close();
    expect(await routeError(addr, "TopicA")).toBe(ErrorCode.TopicNotFound);
    expect(await routeError(addr, "Orders")).toBe(ErrorCode.TopicNotFound);
    const after = (await client.getRouteInfoByTopic({ topic: "Shared" })).route;
    expect(after?.queueDatas.map((q) => q.brokerName)).toEqual(["broker-b"]);
    expect((await client.getBrokerClusterInfo({})).clusterAddrTable.DefaultCluster?.brokerNames).toEqual([
      "broker-b",
    ]);
    // A closed registrar does not register again.
    expect(await a.registerAll()).toEqual({ registered: [], failed: [] });
  });

  it("a broker that stops heartbeating disappears after its timeout; one that keeps registering stays", async () => {
    const n = await startNamesrv();
    const addr = `127.0.0.1:${n.port}`;
    // Registers every 50 ms, may be silent for 10 s.
    await startBroker(addr, "alive", new FakeTopics(["TopicAlive"]), {
      registerNameServerPeriod: 50,
      heartbeatTimeoutMillis: 10_000,
    });
    // Registers once (its next heartbeat would be in an hour) and may be silent for 300 ms.
    await startBroker(addr, "silent", new FakeTopics(["TopicSilent"]), {
      registerNameServerPeriod: 3_600_000,
      heartbeatTimeoutMillis: 300,
    });
    expect(await routeError(addr, "TopicSilent")).toBeUndefined();

    await vi.waitFor(
      async () => expect(await routeError(addr, "TopicSilent")).toBe(ErrorCode.TopicNotFound),
      {
        timeout: 10_000,
        interval: 50,
      },
    );
    expect(await routeError(addr, "TopicAlive")).toBeUndefined();
    const cluster = await createRpcClient(NamesrvService, addr).getBrokerClusterInfo({});
    expect(Object.keys(cluster.brokerAddrTable)).toEqual(["alive"]);
  });

  it("without a heartbeat timeout of its own a broker expires after 120 s (injected clock)", async () => {
    let now = 1_000_000;
    const n = await startNamesrv({ now: () => now });
    const addr = `127.0.0.1:${n.port}`;
    await startBroker(addr, "broker-a", new FakeTopics(["T"]), { registerNameServerPeriod: 3_600_000 });
    now += 120_000;
    expect(n.scanNotActiveBroker()).toEqual([]);
    expect(await routeError(addr, "T")).toBeUndefined();
    now += 1;
    expect(n.scanNotActiveBroker().map((l) => l.brokerAddr)).toEqual(["127.0.0.1:10911"]);
    expect(await routeError(addr, "T")).toBe(ErrorCode.TopicNotFound);
  });

  it("with one of two NameServers down, registration reaches the other; the failure is logged once, the recovery once", async () => {
    const up = await startNamesrv();
    const upAddr = `127.0.0.1:${up.port}`;
    const downPort = await freePort();
    const downAddr = `127.0.0.1:${downPort}`;
    const { logger, lines } = captureLogger();
    const r = await startBroker(`${downAddr};${upAddr}`, "broker-a", new FakeTopics(["T"]), {
      registerNameServerPeriod: 3_600_000,
      logger,
    });
    expect(await routeError(upAddr, "T")).toBeUndefined();

    const round = await r.registerAll();
    expect(round.registered).toEqual([upAddr]);
    expect(round.failed.map((f) => [f.namesrvAddr, f.error.code])).toEqual([
      [downAddr, ErrorCode.RpcUnavailable],
    ]);
    await r.registerAll();
    const warnings = lines.filter((l) => l.level === 40 && l.namesrvAddr === downAddr);
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.msg)).toContain(`cannot register to NameServer ${downAddr}`);

    // The NameServer comes up on its address: the next round reaches it and says so once.
    const late = await startNamesrv({ port: downPort });
    expect(await r.registerAll()).toEqual({ registered: [downAddr, upAddr], failed: [] });
    await r.registerAll();
    expect(await routeError(`127.0.0.1:${late.port}`, "T")).toBeUndefined();
    expect(
      lines.filter(
        (l) => l.namesrvAddr === downAddr && String(l.msg) === `registered to NameServer ${downAddr} again`,
      ),
    ).toHaveLength(1);
    expect(lines.filter((l) => l.level === 40 && l.namesrvAddr === downAddr)).toHaveLength(1);
  });

  it("a NameServer that never answers does not hold back registration to the others", async () => {
    const sockets: net.Socket[] = [];
    const blackHole = net.createServer((s) => sockets.push(s));
    await new Promise<void>((res) => blackHole.listen(0, "127.0.0.1", res));
    const holeAddr = `127.0.0.1:${(blackHole.address() as net.AddressInfo).port}`;
    try {
      const up = await startNamesrv();
      const upAddr = `127.0.0.1:${up.port}`;
      let started = false;
      const pending = startBroker(`${holeAddr};${upAddr}`, "broker-a", new FakeTopics(["T"]), {
        registerNameServerPeriod: 3_600_000,
        registerBrokerTimeoutMills: 30_000,
      }).then(() => {
        started = true;
      });
      // The live NameServer has the broker while the first round still waits on the silent one.
      await vi.waitFor(async () => expect(await routeError(upAddr, "T")).toBeUndefined(), {
        timeout: 10_000,
        interval: 20,
      });
      expect(started).toBe(false);
      // Hanging up on the pending call ends the first round without waiting for its deadline.
      for (const s of sockets) s.destroy();
      await pending;
      expect(started).toBe(true);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => blackHole.close(() => res()));
    }
  });

  it("a slave learns its master's address from the registration answer", async () => {
    const n = await startNamesrv();
    const addr = `127.0.0.1:${n.port}`;
    const topics = new FakeTopics(["T"]);
    await startBroker(addr, "broker-a", topics, {
      brokerAddr: "127.0.0.1:20911",
      haServerAddr: "127.0.0.1:20912",
    });
    const answers: { masterAddr: string; haServerAddr: string }[] = [];
    await startBroker(addr, "broker-a", topics, {
      brokerId: 1,
      brokerAddr: "127.0.0.1:21911",
      haServerAddr: "127.0.0.1:21912",
      onRegistered: (a) => answers.push({ masterAddr: a.masterAddr, haServerAddr: a.haServerAddr }),
    });
    expect(answers).toEqual([{ masterAddr: "127.0.0.1:20911", haServerAddr: "127.0.0.1:20912" }]);
    const route = (await createRpcClient(NamesrvService, addr).getRouteInfoByTopic({ topic: "T" })).route;
    expect(route?.brokerDatas[0]?.brokerAddrs).toEqual({ "0": "127.0.0.1:20911", "1": "127.0.0.1:21911" });
  });

  it("an empty namesrvAddr is a config error", async () => {
    await expect(
      createNamesrvRegistrar({
        namesrvAddr: " ; ",
        clusterName: "c",
        brokerName: "b",
        brokerId: 0,
        brokerAddr: "h:1",
        haServerAddr: "h:2",
        topics: new FakeTopics([]).snapshot,
      }),
    ).rejects.toMatchObject({
      code: ErrorCode.IllegalConfig,
    });
  });
});
