// `rmq controller -c controller.conf`: one Raft controller node (controller mode's control plane).

import type { Command } from "commander";
import { collectDefaultMetrics, Registry } from "prom-client";
import { createLogger } from "../common/logger.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { loadControllerConfig } from "../controller/controller-config.ts";
import { startController } from "../controller/controller-main.ts";

export function registerControllerCommand(program: Command): void {
  program
    .command("controller")
    .description("run one controller node (Raft group of controllerDLegerPeers; default port 9878)")
    .requiredOption(
      "-c, --config <file>",
      "controller.conf (Java properties, upstream ControllerConfig keys)",
    )
    .action(async (opts: { config: string }) => {
      const logger = createLogger({ role: "controller" });
      const config = await loadControllerConfig({
        file: opts.config,
        onWarning: (w) => logger.warn({ key: w.key, where: w.where }, w.message),
        onNotice: (n) => logger.info({ key: n.key, where: n.where }, n.message),
      });
      const registry = new Registry();
      collectDefaultMetrics({ register: registry });
      const handle = await startController(config, logger.child({ node: config.self.id }), { registry });
      logger.info(
        { id: config.self.id, address: config.self.address, metricsPort: handle.metricsPort },
        `controller ${config.self.id} listening on ${config.self.port}`,
      );
      runUntilSignalled(logger, () => handle.close());
    });
}
