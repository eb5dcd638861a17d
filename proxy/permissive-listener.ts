// One TCP port for plaintext HTTP/2 (h2c) and TLS, as the upstream proxy's "permissive" TLS mode
// serves both: the first byte of a connection decides. 0x16 starts a TLS handshake record, so the
// socket goes to the TLS server; anything else (the h2c preface starts with "PRI") to the plaintext
// one. The byte is pushed back before handing the socket over, so the chosen server reads the
// stream from its start.

import type { Http2SecureServer, Http2Server } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";
import type { Server as TlsServer } from "node:tls";
import type { Logger } from "../common/logger.ts";

/** First byte of a TLS record carrying a handshake message. */
const TLS_HANDSHAKE_RECORD = 0x16;
/** A connection that sends nothing for this long is closed (ours). */
export const PROTOCOL_SNIFF_TIMEOUT_MS = 10_000;

export type TlsMode = "permissive" | "enforcing" | "disabled";

export interface PermissiveListenerOptions {
  /** Receives plaintext connections via emit("connection"); omitted when TLS is enforced. */
  plaintext?: Server | Http2Server;
  /** Receives TLS connections; omitted when TLS is disabled. */
  tls?: TlsServer | Http2SecureServer;
  logger: Logger;
  sniffTimeoutMs?: number;
}

export interface PermissiveListener {
  readonly server: Server;
  /** Connections accepted but not handed over yet. */
  pendingCount(): number;
  /** Stop accepting and drop connections that were never handed over. */
  close(): Promise<void>;
}

export function createPermissiveListener(options: PermissiveListenerOptions): PermissiveListener {
  const pending = new Set<Socket>();
  const sniffTimeoutMs = options.sniffTimeoutMs ?? PROTOCOL_SNIFF_TIMEOUT_MS;

  const server = createServer({ noDelay: true }, (socket) => {
    pending.add(socket);
    const timer = setTimeout(() => socket.destroy(), sniffTimeoutMs);
    const onError = (error: Error) => {
      options.logger.debug(
        { err: error, peer: socket.remoteAddress },
        "connection failed before the protocol was known",
      );
      cleanup();
      socket.destroy();
    };
    const cleanup = () => {
      clearTimeout(timer);
      pending.delete(socket);
      socket.off("error", onError);
      socket.off("close", cleanup);
    };
    socket.on("error", onError);
    socket.on("close", cleanup);
    socket.once("data", (chunk: Buffer) => {
      cleanup();
      socket.pause();
      socket.unshift(chunk);
      const isTls = chunk[0] === TLS_HANDSHAKE_RECORD;
      const target = isTls ? options.tls : options.plaintext;
      if (target === undefined) {
        options.logger.debug(
          { peer: socket.remoteAddress, tls: isTls },
          "connection refused: protocol not enabled",
        );
        socket.destroy();
        return;
      }
      // The server takes the socket's native handle over and first feeds itself what is buffered
      // (the unshifted chunk). The socket must stay paused: resuming it would let the stream emit
      // that chunk to nobody before the server reads it.
      target.emit("connection", socket);
    });
  });

  return {
    server,
    pendingCount: () => pending.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of pending) socket.destroy();
        pending.clear();
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
      }),
  };
}
