// `rmq namesrv [-c namesrv.conf] [-p port]`: a NameServer process.

import type { Command } from "commander";
import { createLogger } from "../common/logger.ts";
import { createOpsServer } from "../common/ops-server.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { loadNamesrvConfig } from "../nameserver/namesrv-config.ts";
import { createNamesrv } from "../nameserver/namesrv-server.ts";
import { Registry, collectDefaultMetrics } from "prom-client";

export function registerNamesrvCommand(program: Command): void {
  program
    .command("namesrv")
    .description("run a NameServer (route registry; default port 9876)")
    .option("-c, --config <file>", "namesrv.conf (Java properties)")
    .option("-p, --port <port>", "listenPort (overrides the file)")
    .action(async (opts: { config?: string; port?: string }) => {
      const logger = createLogger({ role: "namesrv" });
      const config = await loadNamesrvConfig(opts.config, { listenPort: opts.port }, {
        onWarning: (w) => logger.warn(w, "unknown config key"),
        onNotice: (n) => logger.info(n, "config notice"),
      });
      const namesrv = await createNamesrv({ config, logger });
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const ops = await createOpsServer({ port: config.metricsPromExporterPort, registry, notReadyReason: () => undefined });
      logger.info({ port: namesrv.port, metricsPort: ops.port }, `NameServer listening on ${namesrv.port}`);
      runUntilSignalled(logger, async () => {
        await namesrv.close();
        await ops.close();
      });
    });
}
