import { Counter, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { createOpsServer, type OpsServer } from "./ops-server.ts";

describe("ops server", () => {
  let server: OpsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it("serves metrics, liveness and readiness", async () => {
    const registry = new Registry();
    const c = new Counter({ name: "rocketmq_test_total", help: "test", registers: [registry] });
    c.inc(3);
    let ready: string | undefined = "store recovering";
    server = await createOpsServer({ host: "127.0.0.1", port: 0, registry, notReadyReason: () => ready });
    const base = `http://127.0.0.1:${server.port}`;
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("rocketmq_test_total 3");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.text()).toContain("store recovering");
    ready = undefined;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST" })).status).toBe(405);
  });
});
