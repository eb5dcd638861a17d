// The gRPC proxy server: apache.rocketmq.v2.MessagingService on one TCP port that speaks both
// plaintext HTTP/2 and TLS (permissive-listener.ts), over a MessagingBackend. Unary and
// server-streaming RPCs are framed by the lean gRPC layer (common/grpc-handler.ts, which records why
// and by how much); Telemetry (bidi) and requests that layer does not take (compressed, JSON) are
// served by @connectrpc/connect-node with only the gRPC protocol enabled, on the same server.
//
//   const proxy = await createProxyServer({ port: 8081, backend, logger });
//   ...
//   await proxy.close(); // held polls answer, Telemetry streams end, connections drain
//
// TLS: the configured certificate, or a self-signed one generated at start (node:crypto only).

import {
  createServer as createHttp2Server,
  createSecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { createGrpcStreamHandler, fallbackToNodeHandler, grpcPath } from "../common/grpc-handler.ts";
import type { Logger } from "../common/logger.ts";
import { MessagingService, type TelemetryCommand } from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { MessagingBackend, TransactionCheck } from "./backend.ts";
import { type ClientManager, createClientManager } from "./client-manager.ts";
import { clientHeartbeatOf } from "./client-registration.ts";
import { connectionContextValues } from "./context.ts";
import type { HostAndPort, ProxyDeps } from "./deps.ts";
import { createHttp2SessionTracker } from "./http2-session-tracker.ts";
import { type ProxyLimits, resolveProxyLimits } from "./limits.ts";
import { createLiteSubscriptionRegistry } from "./lite-subscriptions.ts";
import { createMessagingService } from "./messaging-service.ts";
import { createProxyMetrics } from "./metrics.ts";
import { createPermissiveListener, type TlsMode } from "./permissive-listener.ts";
import { createQueueSelector } from "./queue-selector.ts";
import { createReceiptHandleRenewer } from "./receipt-handle-renewer.ts";
import { parseAuthority } from "./route-activity.ts";
import { resolveTlsCredentials, type TlsOptions } from "./tls-credentials.ts";
import { recoverOrphanedTransactionCommand } from "./transaction-activity.ts";

/** Upstream grpcServerPort. */
export const DEFAULT_GRPC_PORT = 8081;
/** HTTP/2 per-stream flow-control window we grant clients (Node default 64 KiB; grpc-java 1 MiB). */
export const HTTP2_INITIAL_WINDOW_BYTES = 1024 * 1024;
/** HTTP/2 connection-level window we grant clients, so several large sends can be in flight. */
export const HTTP2_SESSION_WINDOW_BYTES = 16 * 1024 * 1024;

export interface ProxyServerOptions {
  /** 0 lets the OS choose (see ProxyServer.port). */
  port: number;
  /** Default 0.0.0.0. */
  host?: string;
  backend: MessagingBackend;
  /** Certificate and TLS mode (default "permissive": TLS and plaintext on the one port). */
  tls?: TlsOptions & { mode?: TlsMode };
  limits?: Partial<ProxyLimits>;
  logger: Logger;
  /** Prometheus registry to record into; nothing is recorded without one. */
  metrics?: Registry;
  /** Record message in/out counters (default true; false when a broker in the same process does). */
  countMessages?: boolean;
  /** "host:port" routes advertise instead of the address each client dialled. */
  advertisedAddress?: string;
}

export interface ProxyServer {
  readonly port: number;
  readonly host: string;
  readonly tlsMode: TlsMode;
  /** True when TLS uses a certificate generated at start. */
  readonly selfSignedCertificate: boolean;
  readonly limits: Readonly<ProxyLimits>;
  readonly clients: ClientManager;
  /** Open HTTP/2 connections and streams (calls in flight, Telemetry streams included). */
  connectionCount(): number;
  streamCount(): number;
  /** Push a Telemetry command to one connected producer of `topic`; false when there is none. */
  sendToProducerOf(topic: string, command: TelemetryCommand): boolean;
  /** Ask a producer of the half message's topic to commit or roll it back. */
  recoverOrphanedTransaction(check: TransactionCheck): boolean;
  /** Drain and stop: held polls answer, Telemetry streams end, connections close (forcibly after the grace period). */
  close(): Promise<void>;
}

export async function createProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const limits = resolveProxyLimits(options.limits);
  const logger = options.logger;
  const tlsMode: TlsMode = options.tls?.mode ?? "permissive";
  const credentials = tlsMode === "disabled" ? undefined : await resolveTlsCredentials(options.tls);
  const drain = new AbortController();
  const shutdown = new AbortController();
  let listenPort = options.port;

  const renewer = createReceiptHandleRenewer({
    backend: options.backend,
    logger,
    renewAheadMs: limits.renewAheadMs,
    renewMaxMs: limits.renewMaxMs,
    renewStepsMs: limits.renewStepsMs,
    releaseInvisibleMs: limits.releaseInvisibleMs,
  });
  const liteSubscriptions = createLiteSubscriptionRegistry();
  // Telling the brokers about a client is bookkeeping for admin commands: a failure is logged, and the
  // client's Settings, heartbeat or termination goes on.
  const registration = (clientId: string, report: () => void): void => {
    try {
      report();
    } catch (err) {
      logger.warn({ err, clientId }, "could not report a client session to the broker");
    }
  };
  const clients = createClientManager({
    sessionExpiryMs: limits.clientSessionExpiryMs,
    logger,
    onSessionRemoved: (session) => {
      renewer.releaseClient(session.clientId);
      liteSubscriptions.removeClient(session.clientId);
      registration(session.clientId, () => options.backend.unregisterClient(session.clientId));
    },
    onSessionUpdated: (session) =>
      registration(session.clientId, () => options.backend.registerClient(clientHeartbeatOf(session))),
  });
  let advertisedEndpoint: HostAndPort | undefined;
  if (options.advertisedAddress !== undefined) {
    advertisedEndpoint = parseAuthority(options.advertisedAddress, options.port);
    if (advertisedEndpoint === undefined) {
      throw new RmqError(
        ErrorCode.IllegalConfig,
        `advertisedAddress ${JSON.stringify(options.advertisedAddress)} is not an IPv4 or DNS host:port`,
      );
    }
  }
  const deps: ProxyDeps = {
    backend: options.backend,
    limits,
    logger,
    clients,
    renewer,
    liteSubscriptions,
    metrics: createProxyMetrics({ registry: options.metrics, countMessages: options.countMessages }),
    queueSelector: createQueueSelector(),
    drainSignal: drain.signal,
    advertisedEndpoint,
    listenPort: () => listenPort,
    now: Date.now,
  };

  const service = createMessagingService(deps);
  const handler = connectNodeAdapter({
    routes: (router) => router.service(MessagingService, service.connectImpl),
    grpc: true,
    grpcWeb: false,
    connect: false,
    readMaxBytes: limits.maxInboundMessageBytes,
    shutdownSignal: shutdown.signal,
    contextValues: connectionContextValues,
  });
  // A response can end before its request was read to the end: a message over readMaxBytes is
  // rejected unread, a Telemetry stream the server ended may still be open on the client side. Node
  // keeps such a stream (paused, half-read) until the connection dies, so it is destroyed once the
  // trailers are out: Node queues them with setImmediate after "wantTrailers", and destroy() flushes
  // pending frames before its RST_STREAM, so the client still gets the status first.
  const serveWithConnect = (req: Http2ServerRequest, res: Http2ServerResponse) => {
    const stream = req.stream;
    stream.once("wantTrailers", () => {
      setImmediate(() => {
        if (!stream.readableEnded && !stream.destroyed) stream.destroy();
      });
    });
    handler(req, res);
  };
  const onStream = createGrpcStreamHandler({
    methods: service.grpcMethods,
    readMaxBytes: limits.maxInboundMessageBytes,
    shutdownSignal: shutdown.signal,
    fallback: {
      paths: new Set(MessagingService.methods.map((m) => grpcPath(m))),
      handle: fallbackToNodeHandler(serveWithConnect),
    },
  });
  const http2Settings = {
    maxConcurrentStreams: limits.maxConcurrentStreams,
    initialWindowSize: HTTP2_INITIAL_WINDOW_BYTES,
  };
  const sessions = createHttp2SessionTracker({ idleTimeoutMs: limits.clientIdleTimeoutMs });
  const widenWindow = (session: Http2Session) => {
    try {
      session.setLocalWindowSize(HTTP2_SESSION_WINDOW_BYTES);
    } catch {
      // the session died before it could be configured
    }
  };

  const plaintext =
    tlsMode === "enforcing"
      ? undefined
      : createHttp2Server({ maxSessionMemory: limits.maxSessionMemoryMb, settings: http2Settings });
  const secure =
    credentials === undefined
      ? undefined
      : createSecureServer({
          cert: credentials.cert,
          key: credentials.key,
          allowHTTP1: false,
          ALPNProtocols: ["h2"],
          maxSessionMemory: limits.maxSessionMemoryMb,
          settings: http2Settings,
        });
  for (const server of [plaintext, secure]) {
    if (server === undefined) continue;
    sessions.attach(server);
    server.on("stream", onStream);
    server.on("session", widenWindow);
    server.on("sessionError", (error) => logger.debug({ err: error }, "HTTP/2 session error"));
  }
  secure?.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake failed"));

  const listener = createPermissiveListener({ plaintext, tls: secure, logger });
  const host = options.host ?? "0.0.0.0";
  try {
    await new Promise<void>((resolve, reject) => {
      listener.server.once("error", reject);
      listener.server.listen(options.port, host, () => {
        listener.server.off("error", reject);
        resolve();
      });
    });
  } catch (error) {
    clients.close();
    renewer.close();
    throw new RmqError(
      ErrorCode.ListenFailed,
      `gRPC proxy cannot listen on ${host}:${options.port}: ${String(error)}`,
      {
        cause: error,
      },
    );
  }
  listener.server.on("error", (error) => logger.error({ err: error }, "proxy listener error"));
  listenPort = (listener.server.address() as AddressInfo).port;

  const uninstallCheckHandler = options.backend.setTransactionCheckHandler?.((check) =>
    clients.sendToProducerOf(check.topic, recoverOrphanedTransactionCommand(check)),
  );

  logger.info(
    { port: listenPort, host, tlsMode, selfSignedCertificate: credentials?.selfSigned ?? false },
    "gRPC proxy listening",
  );

  let closing: Promise<void> | undefined;
  const close = async () => {
    drain.abort();
    uninstallCheckHandler?.();
    const listenerClosed = listener.close();
    // In-flight calls get the grace period to finish; then connect aborts what is left.
    await sessions.closeAll(limits.shutdownGraceMs, () => shutdown.abort());
    shutdown.abort();
    clients.close();
    renewer.close();
    await listenerClosed;
    logger.info({ port: listenPort }, "gRPC proxy stopped");
  };

  return {
    port: listenPort,
    host,
    tlsMode,
    selfSignedCertificate: credentials?.selfSigned ?? false,
    limits,
    clients,
    connectionCount: () => sessions.sessionCount(),
    streamCount: () => sessions.streamCount(),
    sendToProducerOf: (topic, command) => clients.sendToProducerOf(topic, command),
    recoverOrphanedTransaction: (check) =>
      clients.sendToProducerOf(check.topic, recoverOrphanedTransactionCommand(check)),
    close() {
      closing ??= close();
      return closing;
    },
  };
}
