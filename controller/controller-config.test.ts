import { describe, expect, it } from "vitest";
import { isRmqError } from "../common/errors.ts";
import { parseProperties } from "../common/properties.ts";
import { buildControllerConfig, parseControllerPeers } from "./controller-config.ts";

function build(text: string) {
  const doc = parseProperties(text, "controller.conf");
  return buildControllerConfig([{ source: doc.source, entries: doc.entries }], { home: "/home/rmq" });
}

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(isRmqError(e, "ILLEGAL_CONFIG")).toBe(true);
    const msg = (e as Error).message;
    expect(msg).not.toContain("\n");
    return msg;
  }
  throw new Error("expected an IllegalConfig error");
}

const BASE = `controllerDLegerGroup=group1
controllerDLegerPeers=n0-127.0.0.1:9878;n1-127.0.0.1:9879;n2-127.0.0.1:9880
controllerDLegerSelfId=n1
`;

describe("controller.conf", () => {
  it("binds upstream keys with upstream defaults and finds this node's own address", () => {
    const c = build(`${BASE}enableElectUncleanMaster=true\n`);
    expect(c.self).toEqual({ id: "n1", host: "127.0.0.1", port: 9879, address: "127.0.0.1:9879" });
    expect(c.peers.map((p) => p.id)).toEqual(["n0", "n1", "n2"]);
    expect(c.enableElectUncleanMaster).toBe(true);
    expect(c.scanNotActiveBrokerInterval).toBe(5000);
    expect(c.scanInactiveMasterInterval).toBe(5000);
    expect(c.notifyBrokerRoleChanged).toBe(true);
    expect(c.controllerHeartBeatTimeoutMills).toBe(10_000);
    expect(c.metricsPromExporterPort).toBe(5557);
    expect(c.controllerStorePath).toBe("/home/rmq/DLedgerController");
    expect(c.controllerRaftTickMs * c.controllerRaftElectionTicks).toBe(500);
  });

  it("expands ~ in controllerStorePath", () => {
    expect(build(`${BASE}controllerStorePath=~/ctl/n1\n`).controllerStorePath).toBe("/home/rmq/ctl/n1");
  });

  it("rejects bad values with one line naming the key and what is allowed", () => {
    expect(errorOf(() => build(`${BASE}enableElectUncleanMaster=yes\n`))).toMatch(
      /enableElectUncleanMaster=yes .*allowed values are true, false/,
    );
    expect(errorOf(() => build(`${BASE}scanNotActiveBrokerInterval=-5\n`))).toMatch(
      /scanNotActiveBrokerInterval=-5/,
    );
    expect(errorOf(() => build(BASE.replace("n1\n", "n7\n")))).toMatch(
      /controllerDLegerSelfId=n7 .*allowed values are the peer ids in controllerDLegerPeers: n0, n1, n2/,
    );
    expect(errorOf(() => build(BASE.replace("group1", "")))).toMatch(
      /controllerDLegerGroup=.*group name is required/,
    );
    expect(errorOf(() => parseControllerPeers("n0-127.0.0.1"))).toMatch(/expected id-host:port entries/);
    expect(errorOf(() => parseControllerPeers("n0-a:1;n0-b:2"))).toMatch(/peer id n0 appears twice/);
    expect(errorOf(() => parseControllerPeers("n0-a:70000"))).toMatch(/controllerDLegerPeers/);
  });
});
