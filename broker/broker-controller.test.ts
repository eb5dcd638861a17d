// createBrokerController on a temp store and OS-chosen ports, with a real NameServer in the process:
// start-up, registration (also of topics created later), extra RPC routes, metrics, the store lock,
// and an orderly, idempotent shutdown whose data a new controller finds again.

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ErrorCode, type RmqError } from "../common/errors.ts";
import { silentLogger } from "../common/logger.ts";
import { closeRpcConnections, createRpcClient } from "../common/rpc-client.ts";
import { buildNamesrvConfig } from "../nameserver/namesrv-config.ts";
import { createNamesrv, type Namesrv } from "../nameserver/namesrv-server.ts";
import { NamesrvService } from "../proto/gen/rmq/namesrv/v1/namesrv_pb.ts";
import { type BrokerConfig, buildBrokerConfig } from "./broker-config.ts";
import { type BrokerController, createBrokerController } from "./broker-controller.ts";

let dir: string;
const cleanups: Array<() => Promise<void>> = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "broker-controller-"));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  closeRpcConnections();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function startNamesrv(): Promise<Namesrv> {
  const config = buildNamesrvConfig([
    {
      source: "test",
      entries: { listenPort: "0", bindAddress: "127.0.0.1", kvConfigPath: path.join(dir, "kv.json") },
    },
  ]);
  const n = await createNamesrv({ config });
  cleanups.push(() => n.close());
  return n;
}

function brokerConfig(entries: Record<string, string> = {}): BrokerConfig {
  return buildBrokerConfig(
    [
      {
        source: "test",
        entries: {
          storePathRootDir: path.join(dir, "store"),
          brokerClusterName: "TestCluster",
          brokerName: "broker-t",
          brokerIP1: "127.0.0.1",
          listenPort: "0",
          mappedFileSizeCommitLog: String(64 * 1024),
          mappedFileSizeConsumeQueue: String(64 * 20),
          maxHashSlotNum: "1024",
          maxIndexNum: "4096",
          ...entries,
        },
      },
    ],
    { home: dir, env: {} },
  );
}

async function waitFor(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("createBrokerController", () => {
  it("serves, registers its topics, mounts extra routes, counts traffic and shuts down in order", async () => {
    const namesrv = await startNamesrv();
    const namesrvAddr = `127.0.0.1:${namesrv.port}`;
    const registry = new Registry();
    const config = brokerConfig({ namesrvAddr });
    const broker = await createBrokerController({
      config,
      logger: silentLogger(),
      metrics: registry,
      host: "127.0.0.1",
      extraRoutes: [
        (router, b) =>
          router.service(NamesrvService, {
            getKvConfig: async (req) => ({ value: `${b.brokerName}:${req.key}` }),
          }),
      ],
    });
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await broker.shutdown();
    });
    expect(broker.listenPort).toBeGreaterThan(0);
    expect(broker.brokerAddr).toBe(`127.0.0.1:${broker.listenPort}`);
    expect(broker.readyReason()).toBeUndefined();

    // Extra routes are served on the broker's RPC port, with the controller at hand.
    const onBroker = createRpcClient(NamesrvService, broker.brokerAddr);
    expect((await onBroker.getKvConfig({ namespace: "x", key: "k" })).value).toBe("broker-t:k");

    // A topic created by a send reaches the NameServer without waiting for the 30 s heartbeat.
    const nsClient = createRpcClient(NamesrvService, namesrvAddr);
    const [sent] = await broker.messageService.sendMessages({
      topic: "AutoTopic",
      messages: [{ body: Buffer.from("hello"), properties: { UNIQ_KEY: "ID-1" } }],
    });
    expect(sent?.status).toBe("PUT_OK");
    await waitFor(
      () =>
        nsClient.getRouteInfoByTopic({ topic: "AutoTopic" }).then(
          (r) => (r.route?.brokerDatas ?? []).some((b) => b.brokerName === "broker-t"),
          () => false,
        ),
      "the auto-created topic in the NameServer's routes",
    );

    const text = await registry.metrics();
    expect(text).toMatch(
      /rocketmq_messages_in_total\{[^}]*topic="AutoTopic"[^}]*message_type="normal"[^}]*\} 1/,
    );
    expect(text).toMatch(/rocketmq_throughput_in_total\{[^}]*topic="AutoTopic"[^}]*\} 5/);
    expect(text).toMatch(/rocketmq_broker_permission 6/);

    // The store is locked: a second broker on it fails to start and leaves the first intact.
    await expect(
      createBrokerController({ config: brokerConfig(), logger: silentLogger() }),
    ).rejects.toSatisfy((e: unknown) => (e as RmqError).code === ErrorCode.StoreLocked);
    expect(broker.readyReason()).toBeUndefined();

    const first = broker.shutdown();
    expect(broker.shutdown()).toBe(first);
    expect(broker.readyReason()).toBe("broker is shutting down");
    await first;
    stopped = true;
    // Unregistered: the NameServer no longer routes AutoTopic to it.
    expect(
      await nsClient.getRouteInfoByTopic({ topic: "AutoTopic" }).then(
        () => "routed",
        (e: RmqError) => e.code,
      ),
    ).toBe(ErrorCode.TopicNotFound);

    // A new controller on the same store finds the topic and the message.
    const again: BrokerController = await createBrokerController({
      config: brokerConfig(),
      logger: silentLogger(),
    });
    cleanups.push(() => again.shutdown());
    expect(again.registrar).toBeUndefined();
    expect(again.topics.get("AutoTopic")).toBeDefined();
    const queueId = sent?.queueId ?? -1;
    expect(again.store.getMaxOffsetInQueue("AutoTopic", queueId)).toBe(1);
  });
});
