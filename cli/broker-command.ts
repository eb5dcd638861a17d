// `rmq broker [-c broker.conf] [-n "h:p;h:p"]`: a broker process. It serves its internal RPC on
// listenPort (10911), registers with the NameServers of namesrvAddr (`-n` overrides the file, the
// environment's NAMESRV_ADDR fills it when both are empty), and serves /metrics /healthz /readyz on
// metricsPromExporterPort (5557). SIGTERM unregisters, ends long polls, flushes and exits 0.

import type { Command } from "commander";
import { collectDefaultMetrics, Registry } from "prom-client";
import { mountBrokerAdmin } from "../broker/admin-service.ts";
import { loadBrokerConfig } from "../broker/broker-config.ts";
import { type BrokerController, createBrokerController } from "../broker/broker-controller.ts";
import { brokerMetricLabels } from "../broker/broker-metrics.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { createLogger } from "../common/logger.ts";
import { createOpsServer } from "../common/ops-server.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { listening } from "./local-command.ts";

export function registerBrokerCommand(program: Command): void {
  program
    .command("broker")
    .description("run a broker (internal RPC on listenPort, default 10911)")
    .option("-c, --config <file>", "broker.conf (Java properties)")
    .option("-n, --namesrv-addr <addrs>", "NameServers, host:port;host:port (overrides namesrvAddr)")
    .action(async (opts: { config?: string; namesrvAddr?: string }) => {
      const logger = createLogger({ role: "broker" });
      let config: Awaited<ReturnType<typeof loadBrokerConfig>>;
      try {
        config = await loadBrokerConfig({
          file: opts.config,
          cli: { namesrvAddr: opts.namesrvAddr },
          onWarning: (w) => logger.warn(w, w.message),
          onNotice: (n) => logger.info(n, n.message),
        });
      } catch (e) {
        if (e instanceof RmqError) throw e;
        throw new RmqError(
          ErrorCode.IllegalConfig,
          `cannot read broker config ${opts.config}: ${(e as Error).message}`,
          { cause: e },
        );
      }
      const registry = new Registry();
      registry.setDefaultLabels(brokerMetricLabels(config));
      collectDefaultMetrics({ register: registry });
      let broker: BrokerController | undefined;
      let stopping = false;
      const ops = await listening("metrics endpoint (metricsPromExporterPort)", () =>
        createOpsServer({
          port: config.metricsPromExporterPort,
          registry,
          notReadyReason: () => (stopping ? "shutting down" : (broker?.readyReason() ?? "starting")),
        }),
      );
      try {
        broker = await listening("broker (listenPort)", () =>
          createBrokerController({ config, logger, metrics: registry, extraRoutes: [mountBrokerAdmin] }),
        );
      } catch (e) {
        await ops.close();
        throw e;
      }
      const started = broker;
      logger.info(
        { port: started.listenPort, metricsPort: ops.port },
        `broker ${config.brokerName} ready on ${started.brokerAddr}`,
      );
      runUntilSignalled(logger, async () => {
        stopping = true;
        try {
          await started.shutdown();
        } finally {
          await ops.close();
        }
      });
    });
}
