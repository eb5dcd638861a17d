// Client sessions of the gRPC proxy, keyed by x-mq-client-id: what each client told us in its
// Settings, the Telemetry stream we can push commands on, and when we last heard from it. A session
// ends on NotifyClientTermination, when its Telemetry stream ends, or after `sessionExpiryMs`
// without heartbeat, settings or Telemetry traffic (upstream channelExpiredTimeout).

import { randomUUID } from "node:crypto";
import type { Logger } from "../common/logger.ts";
import { ClientType, type Settings } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type { TelemetryCommand } from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { CallContext } from "./context.ts";

/** How often expired sessions are looked for. */
export const SESSION_SWEEP_INTERVAL_MS = 5_000;
/** How long a server-initiated command (thread stack, verify message) waits for its reply. */
export const DEFAULT_COMMAND_REPLY_TIMEOUT_MS = 3_000;

/** Where a session's server-to-client Telemetry commands go. */
export interface TelemetrySink {
  /** Queue a command; false when the stream has ended. */
  push(command: TelemetryCommand): boolean;
  end(): void;
  readonly closed: boolean;
}

export interface ClientSession {
  readonly clientId: string;
  clientType: ClientType;
  language: string;
  clientVersion: string;
  namespace: string;
  peer: string;
  /** Consumer group (stored name) of consumers. */
  group?: string;
  /** Topics (stored names) a producer publishes or a consumer subscribes. */
  topics: Set<string>;
  /** The merged Settings last sent to the client. */
  settings?: Settings;
  sink?: TelemetrySink;
  readonly createdAtMs: number;
  lastSeenMs: number;
}

export type SessionEndReason = "terminated" | "stream-ended" | "expired" | "shutdown";

export interface ClientManagerOptions {
  sessionExpiryMs: number;
  logger: Logger;
  /** Called once per removed session (to release its receipt handles, ...). */
  onSessionRemoved?: (session: ClientSession, reason: SessionEndReason) => void;
  /** Called after each Settings and Heartbeat of a session (to register it with the brokers). */
  onSessionUpdated?: (session: ClientSession) => void;
  now?: () => number;
}

export interface ClientManager {
  get(clientId: string): ClientSession | undefined;
  sessions(): ClientSession[];
  /** Record a Settings command received on `sink`'s stream (creating or updating the session). */
  applySettings(
    call: CallContext,
    sink: TelemetrySink,
    update: { clientType: ClientType; group?: string; topics: string[]; settings: Settings },
  ): ClientSession;
  /** A Heartbeat: keeps the session alive (creating a bare one when the client never sent Settings). */
  heartbeat(call: CallContext, clientType: ClientType, group: string | undefined): ClientSession;
  /** Any other sign of life (a Telemetry command, a call). */
  touch(clientId: string): void;
  /** The producer published `topic`: orphan-transaction checks for it may be sent to this client. */
  addProducerTopic(clientId: string, topic: string): void;
  /** The Telemetry stream behind `sink` ended; the session goes if that was its current stream. */
  streamEnded(clientId: string, sink: TelemetrySink): void;
  remove(clientId: string, reason: SessionEndReason): boolean;
  /**
   * Push a command to one live producer of `topic` (upstream picks any producer of the group; the
   * producer group of gRPC clients is the topic). False when no such producer is connected here.
   */
  sendToProducerOf(topic: string, command: TelemetryCommand): boolean;
  /**
   * Send a command that the client answers on its stream (print thread stack trace, verify message),
   * built with a fresh nonce, and wait for the answer.
   */
  request(
    clientId: string,
    build: (nonce: string) => TelemetryCommand,
    timeoutMs?: number,
  ): Promise<TelemetryCommand>;
  /** A client's answer to `request`; false when no request with that nonce is waiting. */
  resolveReply(clientId: string, nonce: string, reply: TelemetryCommand): boolean;
  /** End every session's stream and stop expiring sessions. */
  close(): void;
}

interface PendingReply {
  clientId: string;
  resolve: (reply: TelemetryCommand) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export function createClientManager(options: ClientManagerOptions): ClientManager {
  const now = options.now ?? Date.now;
  const sessions = new Map<string, ClientSession>();
  const pending = new Map<string, PendingReply>();
  const logger = options.logger;

  const ensure = (call: CallContext, clientType: ClientType): ClientSession => {
    let session = sessions.get(call.clientId);
    const t = now();
    if (session === undefined) {
      session = {
        clientId: call.clientId,
        clientType,
        language: call.language,
        clientVersion: call.clientVersion,
        namespace: call.namespace,
        peer: call.peer,
        topics: new Set(),
        createdAtMs: t,
        lastSeenMs: t,
      };
      sessions.set(call.clientId, session);
      logger.info(
        {
          clientId: call.clientId,
          clientType,
          language: call.language,
          version: call.clientVersion,
          peer: call.peer,
        },
        "client session opened",
      );
    }
    if (clientType !== ClientType.CLIENT_TYPE_UNSPECIFIED) session.clientType = clientType;
    session.lastSeenMs = t;
    return session;
  };

  const removeSession = (session: ClientSession, reason: SessionEndReason) => {
    sessions.delete(session.clientId);
    // A terminating client closes its own stream right after; ending it first would make the Node
    // SDK schedule a reconnect on its already closed channel. A stream that ended needs no end().
    if (reason === "expired" || reason === "shutdown") session.sink?.end();
    for (const [nonce, p] of pending) {
      if (p.clientId !== session.clientId) continue;
      pending.delete(nonce);
      clearTimeout(p.timer);
      p.reject(new Error(`client ${session.clientId} went away (${reason})`));
    }
    logger.info({ clientId: session.clientId, reason }, "client session closed");
    options.onSessionRemoved?.(session, reason);
  };

  const sweeper = setInterval(
    () => {
      const deadline = now() - options.sessionExpiryMs;
      for (const session of [...sessions.values()]) {
        if (session.lastSeenMs < deadline) removeSession(session, "expired");
      }
    },
    Math.min(SESSION_SWEEP_INTERVAL_MS, options.sessionExpiryMs),
  );
  sweeper.unref();

  return {
    get: (clientId) => sessions.get(clientId),
    sessions: () => [...sessions.values()],

    applySettings(call, sink, update) {
      const session = ensure(call, update.clientType);
      session.sink = sink;
      session.settings = update.settings;
      session.group = update.group;
      for (const topic of update.topics) session.topics.add(topic);
      options.onSessionUpdated?.(session);
      return session;
    },

    heartbeat(call, clientType, group) {
      const session = ensure(call, clientType);
      if (group !== undefined && group.length > 0) session.group = group;
      options.onSessionUpdated?.(session);
      return session;
    },

    touch(clientId) {
      const session = sessions.get(clientId);
      if (session !== undefined) session.lastSeenMs = now();
    },

    addProducerTopic(clientId, topic) {
      sessions.get(clientId)?.topics.add(topic);
    },

    streamEnded(clientId, sink) {
      const session = sessions.get(clientId);
      if (session !== undefined && session.sink === sink) removeSession(session, "stream-ended");
    },

    remove(clientId, reason) {
      const session = sessions.get(clientId);
      if (session === undefined) return false;
      removeSession(session, reason);
      return true;
    },

    sendToProducerOf(topic, command) {
      const candidates = [...sessions.values()].filter(
        (s) =>
          s.clientType === ClientType.PRODUCER &&
          s.topics.has(topic) &&
          s.sink !== undefined &&
          !s.sink.closed,
      );
      while (candidates.length > 0) {
        const i = Math.floor(Math.random() * candidates.length);
        const [session] = candidates.splice(i, 1);
        if (session?.sink?.push(command) === true) return true;
      }
      return false;
    },

    request(clientId, build, timeoutMs = DEFAULT_COMMAND_REPLY_TIMEOUT_MS) {
      const sink = sessions.get(clientId)?.sink;
      if (sink === undefined || sink.closed) {
        return Promise.reject(new Error(`client ${clientId} has no open Telemetry stream`));
      }
      const nonce = randomUUID();
      return new Promise<TelemetryCommand>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(nonce);
          reject(new Error(`client ${clientId} did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(nonce, { clientId, resolve, reject, timer });
        if (!sink.push(build(nonce))) {
          pending.delete(nonce);
          clearTimeout(timer);
          reject(new Error(`client ${clientId} has no open Telemetry stream`));
        }
      });
    },

    resolveReply(clientId, nonce, reply) {
      const p = pending.get(nonce);
      if (p === undefined || p.clientId !== clientId) return false;
      pending.delete(nonce);
      clearTimeout(p.timer);
      p.resolve(reply);
      return true;
    },

    close() {
      clearInterval(sweeper);
      for (const session of [...sessions.values()]) removeSession(session, "shutdown");
    },
  };
}
