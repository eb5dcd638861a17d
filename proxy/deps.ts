// What every RPC implementation of the proxy works with, built once by createProxyServer.

import type { Logger } from "../common/logger.ts";
import type { MessagingBackend } from "./backend.ts";
import type { ClientManager } from "./client-manager.ts";
import type { ProxyLimits } from "./limits.ts";
import type { LiteSubscriptionRegistry } from "./lite-subscriptions.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { QueueSelector } from "./queue-selector.ts";
import type { ReceiptHandleRenewer } from "./receipt-handle-renewer.ts";

export interface HostAndPort {
  host: string;
  port: number;
}

export interface ProxyDeps {
  backend: MessagingBackend;
  limits: Readonly<ProxyLimits>;
  logger: Logger;
  clients: ClientManager;
  renewer: ReceiptHandleRenewer;
  /** Lite topics each lite push consumer listens to. */
  liteSubscriptions: LiteSubscriptionRegistry;
  metrics: ProxyMetrics;
  queueSelector: QueueSelector;
  /** Aborted when the server starts draining: held polls answer at once, Telemetry streams end. */
  drainSignal: AbortSignal;
  /** The address routes advertise, when configured; otherwise the one each client dialled. */
  advertisedEndpoint?: HostAndPort;
  /** The port the proxy listens on. */
  listenPort(): number;
  now(): number;
}
