import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConfigNotice } from "../common/config-binder.ts";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import { parseProperties, USER_HOME_PLACEHOLDER } from "../common/properties.ts";
import { BROKER_CONFIG_SCHEMA, buildBrokerConfig, loadBrokerConfig } from "./broker-config.ts";
import { defaultMessageStoreConfig } from "./store/config.ts";

async function rejectionOf(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

const FIXED = { home: "/home/rmq", hostName: "host-a", localAddress: "10.0.0.5", env: {} };

function fromText(text: string, extra: Parameters<typeof buildBrokerConfig>[1] = {}) {
  const doc = parseProperties(text, "broker.conf");
  return buildBrokerConfig([{ source: doc.source, entries: doc.entries }], { ...FIXED, ...extra });
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected an error");
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rmq-brokerconf-"));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe("broker config defaults", () => {
  it("uses upstream defaults and derives what upstream derives", () => {
    const c = fromText("");
    expect(c).toMatchObject({
      brokerClusterName: "DefaultCluster",
      brokerName: "host-a",
      brokerId: 0,
      brokerIP1: "10.0.0.5",
      brokerIP2: "10.0.0.5",
      listenPort: 10911,
      haListenPort: 10912,
      metricsPromExporterPort: 5557,
      brokerRole: "ASYNC_MASTER",
      flushDiskType: "ASYNC_FLUSH",
      autoCreateTopicEnable: true,
      defaultTopicQueueNums: 8,
      brokerPermission: 6,
      storePathRootDir: "/home/rmq/store",
      storePathCommitLog: "/home/rmq/store/commitlog",
      storePathConsumeQueue: "/home/rmq/store/consumequeue",
      storePathIndex: "/home/rmq/store/index",
      storeCheckpoint: "/home/rmq/store/checkpoint",
      abortFile: "/home/rmq/store/abort",
      transactionTimeOut: 6000,
      transactionCheckMax: 15,
      transactionCheckInterval: 30_000,
      timerMaxDelaySec: 259_200,
      timerPrecisionMs: 1000,
      enableTopicMessageTypeCheck: true,
      namesrvAddrList: [],
    });
    expect(c.store).toEqual(defaultMessageStoreConfig("/home/rmq/store"));
  });

  it("takes namesrvAddr from NAMESRV_ADDR when the file does not set it", () => {
    const c = fromText("", { env: { NAMESRV_ADDR: "10.0.0.1:9876;10.0.0.2:9876" } });
    expect(c.namesrvAddrList).toEqual([
      { host: "10.0.0.1", port: 9876 },
      { host: "10.0.0.2", port: 9876 },
    ]);
  });

  it("binds every MessageStoreConfig field from a broker.conf key", () => {
    for (const k of Object.keys(defaultMessageStoreConfig("/x")))
      expect(BROKER_CONFIG_SCHEMA).toHaveProperty(k);
  });

  it("marks every key with a status", () => {
    for (const [k, d] of Object.entries(BROKER_CONFIG_SCHEMA))
      expect([k, d.status]).toEqual([k, expect.stringMatching(/^(used|pending|inert|ignored)$/)]);
  });
});

describe("broker config from a file", () => {
  it("fills the store config, accepting both segment-size spellings, rounding the ConsumeQueue size to 20 bytes", () => {
    const c = fromText(
      [
        "storePathRootDir=/data/store",
        "mapedFileSizeCommitLog=1048576",
        "mappedFileSizeConsumeQueue=50000001",
        "flushDiskType=SYNC_FLUSH",
        "brokerRole=SYNC_MASTER",
        "diskMaxUsedSpaceRatio=99",
        "fileReservedTime=48",
        "deleteWhen=04;16",
        "maxHashSlotNum=100",
      ].join("\n"),
    );
    expect(c.store).toMatchObject({
      storePathRootDir: "/data/store",
      storePathCommitLog: "/data/store/commitlog",
      mappedFileSizeCommitLog: 1048576,
      mappedFileSizeConsumeQueue: 50000020,
      flushDiskType: "SYNC_FLUSH",
      brokerRole: "SYNC_MASTER",
      diskMaxUsedSpaceRatio: 95, // clamped as upstream
      fileReservedTime: 48,
      deleteWhen: "04;16",
      maxHashSlotNum: 100,
    });
  });

  it("expands ~ and the user.home placeholder in paths", () => {
    const c = fromText(`storePathRootDir=~/rmq\nstorePathCommitLog=${USER_HOME_PLACEHOLDER}/cl`);
    expect(c.store.storePathRootDir).toBe("/home/rmq/rmq");
    expect(c.store.storePathCommitLog).toBe("/home/rmq/cl");
  });

  it("command-line values override the file, the file overrides defaults", async () => {
    const file = path.join(dir, "broker.conf");
    fs.writeFileSync(file, "namesrvAddr=1.1.1.1:9876\nlistenPort=30911\nbrokerName=from-file\n");
    const c = await loadBrokerConfig({
      ...FIXED,
      file,
      cli: { namesrvAddr: "2.2.2.2:9876", brokerName: undefined },
    });
    expect(c.namesrvAddr).toBe("2.2.2.2:9876");
    expect(c.listenPort).toBe(30911);
    expect(c.haListenPort).toBe(30912);
    expect(c.brokerName).toBe("from-file");
  });

  it("warns about unknown keys and loads the rest", () => {
    const warnings: ConfigNotice[] = [];
    const c = fromText("brokerName=b1\nbrokerNmae=oops\n", { onWarning: (w) => warnings.push(w) });
    expect(c.brokerName).toBe("b1");
    expect(warnings.map((w) => w.message)).toEqual([
      "unknown config key brokerNmae (broker.conf line 2) is ignored; did you mean brokerName?",
    ]);
  });

  it("gives one line naming key, value and allowed values for a bad value", async () => {
    const e1 = errorOf(() => fromText("brokerName=b\nflushDiskType=SOMETIMES\n"));
    expect(isRmqError(e1, ErrorCode.IllegalConfig)).toBe(true);
    expect(e1.message).toBe(
      "illegal config flushDiskType=SOMETIMES (broker.conf line 2): allowed values are ASYNC_FLUSH, SYNC_FLUSH",
    );
    const file = path.join(dir, "bad.conf");
    fs.writeFileSync(file, "listenPort=abc\n");
    const e2 = await rejectionOf(loadBrokerConfig({ ...FIXED, file }));
    expect(isRmqError(e2, ErrorCode.IllegalConfig)).toBe(true);
    expect(e2.message).toBe(
      `illegal config listenPort=abc (${file} line 1): expected an integer from 0 to 65535`,
    );
    expect(e2.message).not.toContain("\n");
  });
});

describe("cross-key rules", () => {
  it("a master's brokerId is 0; a slave needs brokerId > 0", () => {
    expect(fromText("brokerRole=SYNC_MASTER\nbrokerId=3").brokerId).toBe(0);
    expect(fromText("brokerRole=SLAVE\nbrokerId=2").brokerId).toBe(2);
    expect(errorOf(() => fromText("brokerRole=SLAVE\nbrokerId=0")).message).toBe(
      "illegal config brokerId=0 (broker.conf line 2): a SLAVE needs brokerId > 0 (0 is the master)",
    );
  });

  it("DLedger mode needs a group, well-formed peers and a self id among them", () => {
    const ok = fromText(
      "enableDLegerCommitLog=true\ndLegerGroup=g\ndLegerPeers=n0-10.0.0.1:40911;n1-10.0.0.2:40911\ndLegerSelfId=n1",
    );
    expect(ok.brokerId).toBe(-1);
    expect(ok.dLegerPeerList).toEqual([
      { id: "n0", host: "10.0.0.1", port: 40911 },
      { id: "n1", host: "10.0.0.2", port: 40911 },
    ]);
    expect(
      errorOf(() =>
        fromText("enableDLegerCommitLog=true\ndLegerGroup=g\ndLegerPeers=n0-10.0.0.1:40911\ndLegerSelfId=n7"),
      ).message,
    ).toBe(
      "illegal config dLegerSelfId=n7 (broker.conf line 4): allowed values are the peer ids in dLegerPeers: n0",
    );
    expect(
      errorOf(() =>
        fromText("enableDLegerCommitLog=true\ndLegerGroup=g\ndLegerPeers=10.0.0.1:40911\ndLegerSelfId=n0"),
      ).message,
    ).toMatch(/^illegal config dLegerPeers=10\.0\.0\.1:40911 \(broker\.conf line 3\): expected id-host:port/);
  });

  it("controller mode and DLedger mode exclude each other; controller mode needs controllerAddr", () => {
    expect(
      errorOf(() => fromText("enableControllerMode=true\ncontrollerAddr=c:9878\nenableDLegerCommitLog=true"))
        .message,
    ).toMatch(/cannot both be enabled/);
    expect(errorOf(() => fromText("enableControllerMode=true")).message).toMatch(/controller mode needs/);
    const c = fromText("enableControllerMode=true\ncontrollerAddr=c1:9878;c2:9878\nbrokerId=-1");
    expect(c.controllerAddrList.map((a) => a.host)).toEqual(["c1", "c2"]);
    expect(c.brokerId).toBe(-1);
  });

  it("checks namesrvAddr and deleteWhen formats", () => {
    expect(errorOf(() => fromText("namesrvAddr=localhost")).message).toMatch(
      /^illegal config namesrvAddr=localhost .*host:port/,
    );
    expect(errorOf(() => fromText("deleteWhen=25")).message).toMatch(/^illegal config deleteWhen=25 .*00-23/);
  });
});
