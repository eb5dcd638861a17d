// `rmq local [-c broker.conf] [--store DIR] [-n ...]`: NameServer + Broker + Proxy (local mode) in one
// process — what `npm start` runs. Data goes under ./data unless the file or --store says otherwise;
// SQL92 filters are on unless the file turns them off. Ports: NameServer --namesrv-port (9876),
// broker listenPort (10911), proxy grpcServerPort / --proxy-port (8081), /metrics /healthz /readyz on
// metricsPromExporterPort (5557); 0 lets the OS choose. SIGTERM drains and exits 0.
//
// startLocalStack is also what `rmq proxy --mode local` runs (without the NameServer).

import { join, resolve } from "node:path";
import type { Command } from "commander";
import { collectDefaultMetrics, Registry } from "prom-client";
import { mountBrokerAdmin } from "../broker/admin-service.ts";
import { type BrokerConfig, buildBrokerConfig } from "../broker/broker-config.ts";
import { type BrokerController, createBrokerController } from "../broker/broker-controller.ts";
import { brokerMetricLabels } from "../broker/broker-metrics.ts";
import type { ConfigLayer } from "../common/config-binder.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { createLogger, type Logger } from "../common/logger.ts";
import { createOpsServer, type OpsServer } from "../common/ops-server.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { readPropertiesFile } from "../common/properties.ts";
import { buildNamesrvConfig, DEFAULT_NAMESRV_PORT } from "../nameserver/namesrv-config.ts";
import { createNamesrv, type Namesrv } from "../nameserver/namesrv-server.ts";
import { DEFAULT_MAX_INBOUND_MESSAGE_BYTES } from "../proxy/limits.ts";
import { createLocalBackend } from "../proxy/local-backend.ts";
import { createProxyServer, type ProxyServer } from "../proxy/server.ts";

/** Where `rmq local` keeps its data when neither the file nor --store names a directory. */
export const DEFAULT_LOCAL_STORE_DIR = "data";
/** Room for headers and properties on top of the largest body in one SendMessage (ours). */
const INBOUND_HEADROOM_BYTES = 1024 * 1024;

export interface LocalStackOptions {
  brokerConfig: BrokerConfig;
  /** Start a NameServer in the process on this port (0 = OS's choice); undefined = none. */
  namesrvPort?: number;
  logger: Logger;
  /** Names the process in the ready line ("rmq local", "rmq proxy"). */
  title: string;
}

export interface LocalStack {
  readonly namesrv: Namesrv | undefined;
  readonly broker: BrokerController;
  readonly proxy: ProxyServer;
  readonly ops: OpsServer;
  readonly registry: Registry;
  /** Proxy first (held polls answer), then the broker (unregister, flush), NameServer, ops server. */
  close(): Promise<void>;
}

/** The address printed for servers bound to every interface: what a client on this machine dials. */
const CLIENT_HOST = "127.0.0.1";

/** Reads broker.conf (if any) under local-mode defaults and over them the command-line values. */
export async function loadLocalBrokerConfig(
  file: string | undefined,
  defaults: Readonly<Record<string, string>>,
  cli: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): Promise<BrokerConfig> {
  const layers: ConfigLayer[] = [{ source: "local mode defaults", entries: defaults }];
  if (file !== undefined) {
    let doc: Awaited<ReturnType<typeof readPropertiesFile>>;
    try {
      doc = await readPropertiesFile(file);
    } catch (e) {
      throw new RmqError(
        ErrorCode.IllegalConfig,
        `cannot read broker config ${file}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    layers.push({ source: doc.source, entries: doc.entries });
  }
  layers.push({ source: "command line", entries: cli });
  return buildBrokerConfig(layers, {
    onWarning: (w) => logger.warn(w, w.message),
    onNotice: (n) => logger.info(n, n.message),
  });
}

export async function startLocalStack(o: LocalStackOptions): Promise<LocalStack> {
  const { brokerConfig: config, logger } = o;
  const registry = new Registry();
  registry.setDefaultLabels(brokerMetricLabels(config));
  collectDefaultMetrics({ register: registry });

  let state: "starting" | "ready" | "stopping" = "starting";
  let broker: BrokerController | undefined;
  const undo: Array<() => Promise<void>> = [];
  try {
    const ops = await listening("metrics endpoint (metricsPromExporterPort)", () =>
      createOpsServer({
        port: config.metricsPromExporterPort,
        registry,
        notReadyReason: () =>
          state === "ready" ? broker?.readyReason() : state === "starting" ? "starting" : "shutting down",
      }),
    );
    undo.push(() => ops.close());

    let namesrv: Namesrv | undefined;
    if (o.namesrvPort !== undefined) {
      const namesrvConfig = buildNamesrvConfig([
        {
          source: o.title,
          entries: {
            listenPort: String(o.namesrvPort),
            kvConfigPath: join(config.storePathRootDir, "namesrv", "kvConfig.json"),
          },
        },
      ]);
      const started = await listening("NameServer (--namesrv-port)", () =>
        createNamesrv({ config: namesrvConfig, logger: logger.child({ service: "namesrv" }) }),
      );
      namesrv = started;
      undo.push(() => started.close());
      logger.info({ port: started.port }, `NameServer ready on ${CLIENT_HOST}:${started.port}`);
    }

    const namesrvAddr = [namesrv === undefined ? "" : `${CLIENT_HOST}:${namesrv.port}`, config.namesrvAddr]
      .filter((a) => a.trim() !== "")
      .join(";");
    const started = await listening("broker (listenPort)", () =>
      createBrokerController({
        config,
        logger: logger.child({ service: "broker" }),
        metrics: registry,
        extraRoutes: [mountBrokerAdmin],
        namesrvAddr,
        proxyAddr: config.grpcServerPort === 0 ? undefined : `${config.brokerIP1}:${config.grpcServerPort}`,
      }),
    );
    broker = started;
    undo.push(() => started.shutdown());
    logger.info({ port: started.listenPort }, `broker ready on ${started.brokerAddr}`);

    const proxy = await createProxyServer({
      port: config.grpcServerPort,
      backend: createLocalBackend(started),
      logger: logger.child({ service: "proxy" }),
      metrics: registry,
      // The broker counts messages in and out itself.
      countMessages: false,
      limits: {
        maxBodyBytes: config.maxMessageSize,
        maxInboundMessageBytes: Math.max(
          DEFAULT_MAX_INBOUND_MESSAGE_BYTES,
          config.maxMessageSize + INBOUND_HEADROOM_BYTES,
        ),
        enableTopicMessageTypeCheck: config.enableTopicMessageTypeCheck,
        minInvisibleMs: config.minInvisibleTimeMillsForRecv,
        minLongPollingMs: config.grpcClientConsumerMinLongPollingTimeoutMillis,
        maxLongPollingMs: config.grpcClientConsumerMaxLongPollingTimeoutMillis,
      },
    });
    undo.push(() => proxy.close());
    logger.info({ port: proxy.port }, `proxy ready on ${CLIENT_HOST}:${proxy.port}`);
    logger.info({ port: ops.port }, `metrics on http://${CLIENT_HOST}:${ops.port}/metrics`);

    state = "ready";
    logger.info(
      {
        namesrvPort: namesrv?.port,
        brokerPort: started.listenPort,
        proxyPort: proxy.port,
        metricsPort: ops.port,
        storePathRootDir: config.storePathRootDir,
      },
      `${o.title} ready`,
    );

    let closing: Promise<void> | undefined;
    return {
      namesrv,
      broker: started,
      proxy,
      ops,
      registry,
      close() {
        closing ??= (async () => {
          state = "stopping";
          let failed: unknown;
          for (const step of undo.splice(0).reverse()) {
            try {
              await step();
            } catch (err) {
              failed ??= err;
              logger.error({ err }, "shutdown step failed");
            }
          }
          if (failed !== undefined) throw failed;
        })();
        return closing;
      },
    };
  } catch (err) {
    state = "stopping";
    for (const step of undo.reverse()) await step().catch(() => {});
    throw err;
  }
}

interface LocalCommandOptions {
  config?: string;
  store?: string;
  namesrvAddr?: string;
  namesrvPort?: string;
  proxyPort?: string;
  listenPort?: string;
  metricsPort?: string;
}

export function registerLocalCommand(program: Command): void {
  program
    .command("local")
    .description("run NameServer + Broker + Proxy (local mode) in one process (ports 9876, 10911, 8081)")
    .option("-c, --config <file>", "broker.conf (Java properties)")
    .option("--store <dir>", `storePathRootDir (default ./${DEFAULT_LOCAL_STORE_DIR})`)
    .option("-n, --namesrv-addr <addrs>", "more NameServers to register with, host:port;host:port")
    .option(
      "--namesrv-port <port>",
      `port of the NameServer in this process (default ${DEFAULT_NAMESRV_PORT})`,
    )
    .option("--proxy-port <port>", "grpcServerPort: the gRPC proxy port (default 8081)")
    .option("--listen-port <port>", "listenPort: the broker's internal RPC port (default 10911)")
    .option("--metrics-port <port>", "metricsPromExporterPort: /metrics /healthz /readyz (default 5557)")
    .action(async (opts: LocalCommandOptions) => {
      const logger = createLogger({ role: "local" });
      const brokerConfig = await loadLocalBrokerConfig(
        opts.config,
        // Local mode is a single-machine setup: advertise loopback unless broker.conf says otherwise.
        {
          storePathRootDir: resolve(DEFAULT_LOCAL_STORE_DIR),
          enablePropertyFilter: "true",
          brokerIP1: "127.0.0.1",
        },
        {
          storePathRootDir: opts.store === undefined ? undefined : resolve(opts.store),
          namesrvAddr: opts.namesrvAddr,
          grpcServerPort: opts.proxyPort,
          listenPort: opts.listenPort,
          metricsPromExporterPort: opts.metricsPort,
        },
        logger,
      );
      const stack = await startLocalStack({
        brokerConfig,
        namesrvPort: parsePort("--namesrv-port", opts.namesrvPort, DEFAULT_NAMESRV_PORT),
        logger,
        title: "rmq local",
      });
      runUntilSignalled(logger, () => stack.close());
    });
}

const BIND_ERRORS: ReadonlySet<string> = new Set(["EADDRINUSE", "EACCES", "EADDRNOTAVAIL"]);

/** Runs a start-up step that binds a port; a failure to bind says which server and setting it was. */
export async function listening<T>(server: string, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    const bindFailed =
      e instanceof RmqError
        ? e.code === ErrorCode.ListenFailed
        : BIND_ERRORS.has((e as NodeJS.ErrnoException).code ?? "");
    if (!bindFailed) throw e;
    throw new RmqError(ErrorCode.ListenFailed, `${server}: ${(e as Error).message}`, { cause: e });
  }
}

/** A port option: an integer 0..65535 (0 = chosen by the OS). */
export function parsePort(option: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const port = Number(value);
  if (!/^\d{1,5}$/.test(value) || port > 65535) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      `${option}=${value} is illegal: expected a port from 0 to 65535`,
    );
  }
  return port;
}
