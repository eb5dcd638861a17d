// A NameServer with enableControllerInNamesrv=true runs a controller node in the same process,
// configured from the same namesrv.conf (upstream's embedded controller).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ControllerClient } from "../controller/controller-client.ts";
import { freePorts } from "./fixtures/controller-cluster.ts";

const RMQ = join(import.meta.dirname, "..", "cli", "rmq.ts");

describe("rmq namesrv with enableControllerInNamesrv", () => {
  const dir = mkdtempSync(join(tmpdir(), "rmq-ns-ctl-"));
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the controller API on its controllerDLegerPeers address and stops on SIGTERM", async () => {
    const [nsPort, ctlPort, metricsPort] = await freePorts(3);
    const conf = join(dir, "namesrv.conf");
    writeFileSync(
      conf,
      [
        `listenPort=${nsPort}`,
        `kvConfigPath=${join(dir, "kvConfig.json")}`,
        `metricsPromExporterPort=${metricsPort}`,
        "enableControllerInNamesrv=true",
        "controllerDLegerGroup=group1",
        `controllerDLegerPeers=n0-127.0.0.1:${ctlPort}`,
        "controllerDLegerSelfId=n0",
        `controllerStorePath=${join(dir, "controller")}`,
        "",
      ].join("\n"),
    );
    child = spawn(process.execPath, [RMQ, "namesrv", "-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const client = new ControllerClient([`127.0.0.1:${ctlPort}`], { rpcTimeoutMs: 1000 });
    const deadline = Date.now() + 20_000;
    let leader: string | undefined;
    while (Date.now() < deadline && leader === undefined) {
      try {
        leader = await client.findLeader();
      } catch {
        // not up yet
      }
      if (leader === undefined) await new Promise((r) => setTimeout(r, 200));
    }
    expect(leader, out).toBe(`127.0.0.1:${ctlPort}`);
    expect(out).toContain(`NameServer listening on ${nsPort}`);
    const exited = new Promise<number | null>((r) => child?.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    child = undefined;
  });
});
