// `rmq proxy [-c rmq-proxy.json] [-b broker.conf] [-n "h:p;h:p"] [--mode local|cluster]`: the gRPC
// proxy. Local mode (upstream proxyMode=local) runs a broker in the same process, configured by
// broker.conf (-b, or brokerConfigPath in rmq-proxy.json), registered with the NameServers of -n /
// namesrvAddr. Cluster mode (the upstream default: the proxy forwards to remote brokers) is not built
// yet: it fails with a clear message and a non-zero exit.
//
// rmq-proxy.json is a flat JSON object of upstream ProxyConfig keys; the ones read here are below,
// other known upstream keys are accepted, unknown keys are warned about.

import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { bindConfig, type ConfigEntry, def } from "../common/config-binder.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { createLogger, type Logger } from "../common/logger.ts";
import { runUntilSignalled } from "../common/process-lifecycle.ts";
import { DEFAULT_GRPC_PORT } from "../proxy/server.ts";
import { loadLocalBrokerConfig, startLocalStack } from "./local-command.ts";

const PORT = { min: 0, max: 65535 } as const;
const PENDING = { status: "pending" } as const;

export const ProxyMode = { CLUSTER: "cluster", LOCAL: "local" } as const;
export type ProxyMode = (typeof ProxyMode)[keyof typeof ProxyMode];

/** The rmq-proxy.json keys (upstream ProxyConfig names and defaults). */
export const PROXY_CONFIG_SCHEMA = {
  rocketMQClusterName: def.string("DefaultCluster", PENDING),
  proxyClusterName: def.string("DefaultCluster", PENDING),
  proxyName: def.string("", PENDING),
  /** Upstream default: cluster. */
  proxyMode: def.enum([ProxyMode.CLUSTER, ProxyMode.LOCAL], ProxyMode.CLUSTER, { status: "used" }),
  grpcServerPort: def.int(DEFAULT_GRPC_PORT, { ...PORT, status: "used" }),
  remotingListenPort: def.int(8080, {
    ...PORT,
    status: "inert",
    note: "the Remoting protocol is not served",
  }),
  namesrvAddr: def.string("", { status: "used" }),
  /** Local mode: the broker's broker.conf. */
  brokerConfigPath: def.string("", { path: true, status: "used" }),
  metricsPromExporterPort: def.int(5557, { ...PORT, status: "used" }),
  enableTopicMessageTypeCheck: def.bool(true, { status: "used" }),
  minInvisibleTimeMillsForRecv: def.long(10_000, { min: 0, status: "used" }),
  grpcClientConsumerMinLongPollingTimeoutMillis: def.long(5000, { min: 0, status: "used" }),
  grpcClientConsumerMaxLongPollingTimeoutMillis: def.long(20_000, { min: 0, status: "used" }),
} as const;

/** rmq-proxy.json as entries: a flat object whose values are strings, numbers or booleans. */
async function readProxyConfigFile(file: string): Promise<ConfigEntry[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(file, "utf8"));
  } catch (e) {
    throw new RmqError(ErrorCode.IllegalConfig, `cannot read proxy config ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new RmqError(
      ErrorCode.IllegalConfig,
      `proxy config ${file} must be a JSON object of ProxyConfig keys`,
    );
  }
  const entries: ConfigEntry[] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      // Upstream compares proxyMode ignoring case (LOCAL, Local, local).
      entries.push({ key, value: key === "proxyMode" ? String(value).toLowerCase() : String(value) });
    } else {
      throw new RmqError(
        ErrorCode.IllegalConfig,
        `proxy config ${file}: ${key} must be a string, number or boolean, not ${JSON.stringify(value)}`,
      );
    }
  }
  return entries;
}

interface ProxyCommandOptions {
  config?: string;
  brokerConfig?: string;
  namesrvAddr?: string;
  mode?: string;
}

async function runProxy(opts: ProxyCommandOptions, logger: Logger): Promise<void> {
  const layers = [];
  if (opts.config !== undefined)
    layers.push({ source: opts.config, entries: await readProxyConfigFile(opts.config) });
  layers.push({
    source: "command line",
    entries: {
      proxyMode: opts.mode?.toLowerCase(),
      namesrvAddr: opts.namesrvAddr,
      brokerConfigPath: opts.brokerConfig,
    },
  });
  const origins = new Map<string, string>();
  const proxyConfig = bindConfig(PROXY_CONFIG_SCHEMA, layers, {
    onWarning: (w) => logger.warn(w, w.message),
    onNotice: (n) => logger.info(n, n.message),
    origins,
  });
  if (proxyConfig.proxyMode === ProxyMode.CLUSTER) {
    throw new RmqError(
      ErrorCode.NotImplemented,
      "proxy cluster mode (proxyMode=cluster, the default) is not implemented yet; run `rmq proxy --mode local` or `rmq local`",
    );
  }
  // Local mode: the proxy's own keys override the broker's where both exist, but only when set.
  const fromProxy = (key: keyof typeof PROXY_CONFIG_SCHEMA): string | undefined =>
    origins.has(key) ? String(proxyConfig[key]) : undefined;
  const brokerConfig = await loadLocalBrokerConfig(
    proxyConfig.brokerConfigPath === "" ? undefined : proxyConfig.brokerConfigPath,
    { enablePropertyFilter: "true" },
    {
      namesrvAddr: fromProxy("namesrvAddr"),
      grpcServerPort: fromProxy("grpcServerPort"),
      metricsPromExporterPort: fromProxy("metricsPromExporterPort"),
      enableTopicMessageTypeCheck: fromProxy("enableTopicMessageTypeCheck"),
      minInvisibleTimeMillsForRecv: fromProxy("minInvisibleTimeMillsForRecv"),
      grpcClientConsumerMinLongPollingTimeoutMillis: fromProxy(
        "grpcClientConsumerMinLongPollingTimeoutMillis",
      ),
      grpcClientConsumerMaxLongPollingTimeoutMillis: fromProxy(
        "grpcClientConsumerMaxLongPollingTimeoutMillis",
      ),
    },
    logger,
  );
  const stack = await startLocalStack({ brokerConfig, logger, title: "rmq proxy (local mode)" });
  runUntilSignalled(logger, () => stack.close());
}

export function registerProxyCommand(program: Command): void {
  program
    .command("proxy")
    .description("run the gRPC proxy (default port 8081); --mode local also runs the broker in this process")
    .option("-c, --config <file>", "rmq-proxy.json (upstream ProxyConfig keys)")
    .option("-b, --broker-config <file>", "local mode: the broker's broker.conf (brokerConfigPath)")
    .option("-n, --namesrv-addr <addrs>", "NameServers, host:port;host:port (overrides namesrvAddr)")
    .option("--mode <mode>", "proxyMode: cluster (default, not implemented yet) or local")
    .action(async (opts: ProxyCommandOptions) => {
      await runProxy(opts, createLogger({ role: "proxy" }));
    });
}
