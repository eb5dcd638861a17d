// The HTTP/2 connections of the proxy: closes a connection that has had no open stream for
// `idleTimeoutMs` (gRPC's max-connection-idle; upstream grpcClientIdleTimeMills 120 s), and closes
// them all on shutdown — gracefully first (GOAWAY, in-flight streams finish), forcibly after a grace
// period. Client PINGs are answered by the HTTP/2 layer itself and never count against a
// connection, so idle keepalive pings (Java clients send one every 5 min) are not punished.

import type { Http2SecureServer, Http2Server, Http2Session, ServerHttp2Session } from "node:http2";

export interface Http2SessionTracker {
  /** Start tracking the sessions of `server`. */
  attach(server: Http2Server | Http2SecureServer): void;
  sessionCount(): number;
  /** Open streams over all sessions. */
  streamCount(): number;
  /**
   * GOAWAY every session; after `graceMs` call `onGraceExpired` and destroy what is still open.
   * Resolves when all sessions are gone.
   */
  closeAll(graceMs: number, onGraceExpired?: () => void): Promise<void>;
}

interface SessionState {
  streams: number;
  idleTimer?: NodeJS.Timeout;
}

export function createHttp2SessionTracker(options: { idleTimeoutMs: number }): Http2SessionTracker {
  const sessions = new Map<Http2Session, SessionState>();
  let closing = false;

  const armIdle = (session: Http2Session, state: SessionState) => {
    clearTimeout(state.idleTimer);
    if (options.idleTimeoutMs <= 0) return;
    state.idleTimer = setTimeout(() => {
      if (state.streams === 0 && !session.closed) session.close();
    }, options.idleTimeoutMs);
    state.idleTimer.unref();
  };

  const onSession = (session: ServerHttp2Session) => {
    if (closing) {
      session.close();
      return;
    }
    const state: SessionState = { streams: 0 };
    sessions.set(session, state);
    armIdle(session, state);
    session.on("stream", (stream) => {
      state.streams++;
      clearTimeout(state.idleTimer);
      stream.once("close", () => {
        state.streams--;
        if (state.streams === 0) armIdle(session, state);
      });
    });
    session.once("close", () => {
      clearTimeout(state.idleTimer);
      sessions.delete(session);
    });
    // Errors (a peer resetting the connection, ...) are reported on the session; without a listener
    // they would be thrown.
    session.on("error", () => {});
  };

  return {
    attach(server) {
      server.on("session", onSession);
    },
    sessionCount: () => sessions.size,
    streamCount: () => [...sessions.values()].reduce((n, s) => n + s.streams, 0),
    async closeAll(graceMs, onGraceExpired) {
      closing = true;
      const all = [...sessions.keys()];
      const closed = all.map((session) =>
        session.closed || session.destroyed
          ? Promise.resolve()
          : new Promise<void>((resolve) => session.once("close", () => resolve())),
      );
      for (const session of all) if (!session.closed) session.close();
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), graceMs);
      });
      const outcome = await Promise.race([Promise.all(closed), grace]);
      clearTimeout(timer);
      if (outcome === "timeout") {
        onGraceExpired?.();
        for (const session of sessions.keys()) session.destroy();
        await Promise.all(closed);
      }
    },
  };
}
