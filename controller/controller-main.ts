// Starting and stopping one controller node with its ops endpoint: what `rmq controller` runs, and
// what a NameServer with enableControllerInNamesrv=true can embed (pass its own registry and skip the
// ops server with `opsServer: false`).

import { mkdir } from "node:fs/promises";
import { Registry } from "prom-client";
import type { Logger } from "../common/logger.ts";
import { createOpsServer, type OpsServer } from "../common/ops-server.ts";
import type { ControllerConfig } from "./controller-config.ts";
import { type ControllerServer, createControllerServer } from "./controller-server.ts";

export interface StartControllerOptions {
  /** Metrics registry (default: a new one). */
  registry?: Registry;
  /** Serve /metrics /healthz /readyz on metricsPromExporterPort (default true). */
  opsServer?: boolean;
  /** Address to bind the controller's RPC port (default 0.0.0.0). */
  bindHost?: string;
  /** The Raft loop failed on storage (default: log and exit(1)). */
  onFatal?: (err: unknown) => void;
}

export interface ControllerHandle {
  readonly config: ControllerConfig;
  readonly server: ControllerServer;
  /** Port of /metrics, or undefined without the ops server. */
  readonly metricsPort: number | undefined;
  /** Stops serving, fails in-flight requests, flushes and closes the WAL. Idempotent. */
  close(): Promise<void>;
}

export async function startController(
  config: ControllerConfig,
  logger: Logger,
  opts: StartControllerOptions = {},
): Promise<ControllerHandle> {
  const registry = opts.registry ?? new Registry();
  await mkdir(config.controllerStorePath, { recursive: true });
  const server = await createControllerServer({
    config,
    logger,
    registry,
    bindHost: opts.bindHost,
    onFatal:
      opts.onFatal ??
      ((err) => {
        logger.fatal({ err }, "controller storage failed; exiting");
        process.exit(1);
      }),
  });
  let ops: OpsServer | undefined;
  if (opts.opsServer !== false) {
    try {
      ops = await createOpsServer({
        host: config.metricsPromExporterHost === "" ? undefined : config.metricsPromExporterHost,
        port: config.metricsPromExporterPort,
        registry,
        notReadyReason: () => (server.leaderKnown() ? undefined : "no controller leader known yet"),
      });
    } catch (e) {
      await server.close();
      throw e;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    config,
    server,
    metricsPort: ops?.port,
    close() {
      closing ??= (async () => {
        await server.close();
        await ops?.close();
      })();
      return closing;
    },
  };
}
