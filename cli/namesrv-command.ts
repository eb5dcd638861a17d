// `rmq namesrv [-c namesrv.conf] [-p port]`: a NameServer process. With enableControllerInNamesrv=true
// the same process also runs a controller node, configured from the same file (upstream's embedded
// controller): it serves Raft and the controller API on its own controllerDLegerPeers address.

import type { Command } from "commander";
import { collectDefaultMetrics, Registry } from "prom-client";
import { createLogger } from "../common/logger.ts";
import { createOpsServer } from "../common/ops-server.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { loadControllerConfig } from "../controller/controller-config.ts";
import { type ControllerHandle, startController } from "../controller/controller-main.ts";
import { loadNamesrvConfig } from "../nameserver/namesrv-config.ts";
import { createNamesrv } from "../nameserver/namesrv-server.ts";

export function registerNamesrvCommand(program: Command): void {
  program
    .command("namesrv")
    .description("run a NameServer (route registry; default port 9876)")
    .option("-c, --config <file>", "namesrv.conf (Java properties)")
    .option("-p, --port <port>", "listenPort (overrides the file)")
    .action(async (opts: { config?: string; port?: string }) => {
      const logger = createLogger({ role: "namesrv" });
      const config = await loadNamesrvConfig(
        opts.config,
        { listenPort: opts.port },
        {
          onWarning: (w) => logger.warn(w, "unknown config key"),
          onNotice: (n) => logger.info(n, "config notice"),
        },
      );
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      let controller: ControllerHandle | undefined;
      if (config.enableControllerInNamesrv) {
        // The file also holds NameServer keys, which the controller schema does not know: the
        // NameServer's own load above already warned about keys neither of them knows.
        const controllerConfig = await loadControllerConfig({ file: opts.config, onWarning: () => {} });
        controller = await startController(
          controllerConfig,
          logger.child({ controller: controllerConfig.self.id }),
          {
            registry,
            opsServer: false,
          },
        );
        logger.info(
          { id: controllerConfig.self.id, address: controllerConfig.self.address },
          `embedded controller ${controllerConfig.self.id} listening on ${controllerConfig.self.port}`,
        );
      }
      const namesrv = await createNamesrv({ config, logger });
      const ops = await createOpsServer({
        port: config.metricsPromExporterPort,
        registry,
        notReadyReason: () =>
          controller === undefined || controller.server.leaderKnown()
            ? undefined
            : "no controller leader known yet",
      });
      logger.info({ port: namesrv.port, metricsPort: ops.port }, `NameServer listening on ${namesrv.port}`);
      runUntilSignalled(logger, async () => {
        await namesrv.close();
        await controller?.close();
        await ops.close();
      });
    });
}
