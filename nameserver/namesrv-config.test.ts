import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ConfigNotice } from "../common/config-binder.ts";
import { ErrorCode, isRmqError } from "../common/errors.ts";
import { DEFAULT_NAMESRV_PORT, loadNamesrvConfig } from "./namesrv-config.ts";

async function loadError(file: string | undefined, overrides: Record<string, string> = {}): Promise<Error> {
  try {
    await loadNamesrvConfig(file, overrides, { home: "/home/rmq" });
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the config to be rejected");
}

describe("namesrv.conf", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "namesrv-conf-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (text: string): string => {
    const f = path.join(dir, "namesrv.conf");
    fs.writeFileSync(f, text);
    return f;
  };

  it("defaults follow upstream", async () => {
    const c = await loadNamesrvConfig(undefined, {}, { home: "/home/rmq" });
    expect(c.listenPort).toBe(DEFAULT_NAMESRV_PORT);
    expect(c.kvConfigPath).toBe("/home/rmq/namesrv/kvConfig.json");
    expect(c.scanNotActiveBrokerInterval).toBe(5000);
    expect(c.metricsPromExporterPort).toBe(5557);
    expect(c.enableControllerInNamesrv).toBe(false);
    expect(c.orderMessageEnable).toBe(false);
  });

  it("reads the file, and command-line overrides win", async () => {
    const f = write(
      [
        "listenPort=9877",
        "kvConfigPath=~/data/kv.json",
        "scanNotActiveBrokerInterval=10000  # every 10 s",
        "enableControllerInNamesrv = true",
        "controllerDLegerGroup = group1",
        "controllerDLegerPeers = n0-127.0.0.1:9878",
        "controllerDLegerSelfId = n0",
        "metricsPromExporterPort=5558",
      ].join("\n"),
    );
    const warnings: ConfigNotice[] = [];
    const c = await loadNamesrvConfig(
      f,
      { listenPort: "9999", kvConfigPath: undefined },
      { home: "/home/rmq", onWarning: (w) => warnings.push(w) },
    );
    expect(c.listenPort).toBe(9999);
    expect(c.kvConfigPath).toBe("/home/rmq/data/kv.json");
    expect(c.scanNotActiveBrokerInterval).toBe(10_000);
    expect(c.enableControllerInNamesrv).toBe(true);
    expect(c.controllerDLegerPeers).toBe("n0-127.0.0.1:9878");
    expect(c.metricsPromExporterPort).toBe(5558);
    expect(warnings).toEqual([]);
  });

  it("the seed's brokerChannelExpiredTime is accepted but ignored, as upstream; unknown keys warn", async () => {
    const f = write("listenPort=9876\nbrokerChannelExpiredTime=120000\nlistenPrt=1\n");
    const notices: ConfigNotice[] = [];
    const warnings: ConfigNotice[] = [];
    await loadNamesrvConfig(f, {}, { onNotice: (n) => notices.push(n), onWarning: (w) => warnings.push(w) });
    expect(notices.map((n) => [n.kind, n.key])).toEqual([["ignored-key", "brokerChannelExpiredTime"]]);
    expect(warnings.map((w) => w.key)).toEqual(["listenPrt"]);
    expect(warnings[0]?.message).toContain("did you mean listenPort");
  });

  it.each([
    ["listenPort=abc", "listenPort=abc", "line 1", "integer from 0 to 65535"],
    ["listenPort=70000", "listenPort=70000", "line 1", "integer from 0 to 65535"],
    ["# comment\nscanNotActiveBrokerInterval=0", "scanNotActiveBrokerInterval=0", "line 2", ">= 1"],
    ["orderMessageEnable=yes", "orderMessageEnable=yes", "line 1", "true, false"],
  ])(
    "a bad value (%s) is one line naming key, value, origin and what is allowed",
    async (text, keyValue, line, allowed) => {
      const f = write(text);
      const e = await loadError(f);
      expect(isRmqError(e, ErrorCode.IllegalConfig)).toBe(true);
      expect(e.message).not.toContain("\n");
      expect(e.message).toContain(keyValue);
      expect(e.message).toContain(`${f} ${line}`);
      expect(e.message).toContain(allowed);
    },
  );

  it("a bad command-line override names the command line", async () => {
    const e = await loadError(undefined, { listenPort: "-1" });
    expect(isRmqError(e, ErrorCode.IllegalConfig)).toBe(true);
    expect(e.message).toContain("listenPort=-1 (command line)");
  });

  it("a missing file is one IllegalConfig line", async () => {
    const missing = path.join(dir, "nope.conf");
    const e = await loadError(missing);
    expect(isRmqError(e, ErrorCode.IllegalConfig)).toBe(true);
    expect(e.message).toContain(missing);
    expect(e.message).not.toContain("\n");
  });
});
