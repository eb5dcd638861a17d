// The seed documents' broker.conf / broker.properties examples (shared/seeds, beside the repo) must
// stay committed verbatim under deploy/conf/seeds and load with the broker config loader unchanged:
// no unknown keys, no errors, the values the documents intend.

import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { type BrokerConfig, buildBrokerConfig } from "../broker/broker-config.ts";
import type { ConfigNotice } from "../common/config-binder.ts";
import { parseProperties } from "../common/properties.ts";
import { extractSeedConfigs, type SeedConfig, seedContentOf } from "../deploy/conf/seeds/extract.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");
const seedsDir = path.resolve(repoRoot, "../shared/seeds");
const confDir = path.join(repoRoot, "deploy/conf/seeds");
const extracted = extractSeedConfigs(seedsDir);

/** The deployment script's variables (seed 002, "Dledger 部署实践"), for node n0. */
const SCRIPT_VARS: Readonly<Record<string, string>> = {
  DLEDGER_GROUP: "broker-dledger",
  DLEDGER_PEERS: "n0-192.168.1.100:40911;n1-192.168.1.101:40911;n2-192.168.1.102:40911",
  NAMESRV_ADDR: "192.168.1.10:9876;192.168.1.11:9876",
  node_id: "n0",
};

function render(c: SeedConfig): string {
  const text = seedContentOf(fs.readFileSync(path.join(confDir, c.fileName), "utf8"));
  if (c.kind !== "shell-template") return text;
  return text.replace(/\$\{(\w+)\}/g, (_, name: string) => SCRIPT_VARS[name] ?? `\${${name}}`);
}

function load(c: SeedConfig): { config: BrokerConfig; warnings: ConfigNotice[]; notices: ConfigNotice[] } {
  const warnings: ConfigNotice[] = [];
  const notices: ConfigNotice[] = [];
  const doc = parseProperties(render(c), c.fileName);
  const config = buildBrokerConfig([{ source: doc.source, entries: doc.entries }], {
    onWarning: (w) => warnings.push(w),
    onNotice: (n) => notices.push(n),
    home: "/home/rmq",
    hostName: "seed-host",
    localAddress: "127.0.0.1",
    env: {},
  });
  return { config, warnings, notices };
}

type Expect = Partial<
  Pick<
    BrokerConfig,
    | "brokerClusterName"
    | "brokerName"
    | "brokerId"
    | "brokerRole"
    | "flushDiskType"
    | "listenPort"
    | "storePathRootDir"
    | "enableDLegerCommitLog"
    | "dLegerGroup"
    | "dLegerSelfId"
  >
> & {
  peers?: number;
  namesrv?: number;
};
const M1 = "rocketmq-broker-m1";
const M2 = "rocketmq-broker-m2";
const STORE = "/home/wangjianghua/src/rocketmq/data/store";
const dledger = (group: string, self: string): Expect => ({
  enableDLegerCommitLog: true,
  dLegerGroup: group,
  dLegerSelfId: self,
  brokerId: -1,
  peers: 3,
});

/** What each example means: a few values per file, as the documents intend them. */
const EXPECTED: Readonly<Record<string, Expect>> = {
  "002-broker-a.conf": {
    brokerName: "broker-a",
    brokerId: 0,
    brokerRole: "SYNC_MASTER",
    flushDiskType: "ASYNC_FLUSH",
    listenPort: 10911,
    namesrv: 2,
  },
  "002-broker-a-s.conf": {
    brokerName: "broker-a",
    brokerId: 1,
    brokerRole: "SLAVE",
    flushDiskType: "ASYNC_FLUSH",
    listenPort: 10921,
  },
  "002-broker-dledger-n0.conf": { brokerName: "broker-a", ...dledger("broker-a", "n0"), namesrv: 1 },
  "002-broker-n0.conf": {
    brokerName: "broker-dledger",
    ...dledger("broker-dledger", "n0"),
    listenPort: 30911,
    storePathRootDir: "/data/rocketmq/n0/store",
  },
  "002-broker-n1.conf": {
    brokerName: "broker-dledger",
    ...dledger("broker-dledger", "n1"),
    storePathRootDir: "/data/rocketmq/n1/store",
  },
  "002-broker-n2.conf": {
    brokerName: "broker-dledger",
    ...dledger("broker-dledger", "n2"),
    storePathRootDir: "/data/rocketmq/n2/store",
  },
  "002-broker-dledger-full-n0.conf": {
    brokerName: "broker-dledger",
    ...dledger("broker-dledger", "n0"),
    listenPort: 30911,
  },
  "002-broker-node_id-template.conf": {
    brokerName: "broker-dledger",
    ...dledger("broker-dledger", "n0"),
    storePathRootDir: "/data/rocketmq/dledger/n0",
    namesrv: 2,
  },
  "004-2m-noslave-broker-a.conf": {
    brokerClusterName: "rocketmq-2m-noslave-cluster",
    brokerName: M1,
    brokerId: 0,
    brokerRole: "ASYNC_MASTER",
    flushDiskType: "ASYNC_FLUSH",
    storePathRootDir: STORE,
    namesrv: 2,
  },
  "004-2m-noslave-broker-b.conf": {
    brokerName: M2,
    brokerId: 0,
    brokerRole: "ASYNC_MASTER",
    flushDiskType: "ASYNC_FLUSH",
  },
  "004-2m-2s-async-broker-a.conf": {
    brokerClusterName: "rocketmq-2m-slave-cluster-async",
    brokerName: M1,
    brokerRole: "ASYNC_MASTER",
    flushDiskType: "ASYNC_FLUSH",
    namesrv: 4,
  },
  "004-2m-2s-async-broker-b.conf": { brokerName: M2, brokerRole: "ASYNC_MASTER" },
  "004-2m-2s-async-broker-a-s.conf": {
    brokerName: M1,
    brokerId: 1,
    brokerRole: "SLAVE",
    flushDiskType: "ASYNC_FLUSH",
  },
  "004-2m-2s-async-broker-b-s.conf": {
    brokerName: M2,
    brokerId: 1,
    brokerRole: "SLAVE",
    storePathRootDir: `${STORE}1`,
  },
  "004-2m-2s-sync-broker-a.conf": {
    brokerName: M1,
    brokerId: 0,
    brokerRole: "SYNC_MASTER",
    flushDiskType: "SYNC_FLUSH",
  },
  "004-2m-2s-sync-broker-b.conf": { brokerName: M2, brokerRole: "SYNC_MASTER", flushDiskType: "SYNC_FLUSH" },
  "004-2m-2s-sync-broker-a-s.conf": {
    brokerName: M1,
    brokerId: 1,
    brokerRole: "SLAVE",
    flushDiskType: "ASYNC_FLUSH",
  },
  "004-2m-2s-sync-broker-b-s.conf": { brokerName: M2, brokerId: 1, brokerRole: "SLAVE" },
  "004-dledger-broker-a-n0.conf": {
    brokerName: M1,
    brokerRole: "SYNC_MASTER",
    flushDiskType: "SYNC_FLUSH",
    ...dledger(M1, "n0"),
    storePathRootDir: `${STORE}/dledger`,
  },
  "004-dledger-broker-a-s-n1.conf": {
    brokerName: M1,
    brokerRole: "SLAVE",
    flushDiskType: "ASYNC_FLUSH",
    ...dledger(M1, "n1"),
  },
  "004-dledger-broker-a-s-n2.conf": {
    brokerName: M1,
    brokerRole: "SLAVE",
    flushDiskType: "ASYNC_FLUSH",
    ...dledger(M1, "n2"),
  },
};

describe("seed broker configs", () => {
  it("finds every example the seed documents hold, and only those are committed", () => {
    expect(extracted.map((c) => c.fileName).sort()).toEqual(Object.keys(EXPECTED).sort());
    const committed = fs.readdirSync(confDir).filter((f) => f.endsWith(".conf"));
    expect(committed.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(extracted.map((c) => [c.fileName, c] as const))(
    "%s: the committed copy matches the seed",
    (name, c) => {
      const committed = fs.readFileSync(path.join(confDir, name), "utf8");
      expect(committed).toBe(c.fileText);
      expect(seedContentOf(committed)).toBe(c.content);
      const seedLines = fs.readFileSync(path.join(seedsDir, c.seedFile), "utf8").split(/\r?\n/);
      expect(`${seedLines.slice(c.firstLine - 1, c.lastLine).join("\n")}\n`).toBe(c.content);
    },
  );

  it.each(extracted.map((c) => [c.fileName, c] as const))(
    "%s: loads with no unknown key, no error, the intended values",
    (name, c) => {
      const { config, warnings } = load(c);
      expect(warnings).toEqual([]);
      const want = EXPECTED[name] ?? {};
      const { peers, namesrv, ...fields } = want;
      expect(config).toMatchObject(fields);
      if (peers !== undefined) expect(config.dLegerPeerList.length).toBe(peers);
      if (namesrv !== undefined) expect(config.namesrvAddrList.length).toBe(namesrv);
      expect(config.store.storePathRootDir).toBe(config.storePathRootDir);
    },
  );

  it("reads 3.x spellings and inline comments as the authors meant", () => {
    const byName = new Map(extracted.map((c) => [c.fileName, c]));
    const old = load(byName.get("004-2m-noslave-broker-a.conf") as SeedConfig);
    expect(old.config.store.mappedFileSizeCommitLog).toBe(1073741824);
    expect(old.config.store.mappedFileSizeConsumeQueue).toBe(50_000_000);
    expect(old.config.storePathConsumeQueue).toBe(`${STORE}/consumequeue`);
    expect(old.config.store.maxMessageSize).toBe(65536);
    expect(old.config.store.fileReservedTime).toBe(120);
    expect(old.notices.filter((n) => n.kind === "alias").map((n) => n.key)).toEqual([
      "mapedFileSizeCommitLog",
      "mapedFileSizeConsumeQueue",
    ]);
    const typo = load(byName.get("004-dledger-broker-a-s-n1.conf") as SeedConfig);
    expect(typo.notices.some((n) => n.kind === "ignored-key" && n.key === "flushDiskTyp")).toBe(true);
    const inline = load(byName.get("002-broker-a.conf") as SeedConfig);
    expect(inline.config.brokerRole).toBe("SYNC_MASTER"); // "brokerRole=SYNC_MASTER  # 同步复制,可靠性高"
  });
});
