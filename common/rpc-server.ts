// The one way our processes SERVE internal RPC (broker, NameServer, controller services defined under
// proto/rmq/...): the gRPC protocol over plaintext HTTP/2 (h2c) on node:http2, handlers from
// @connectrpc/connect. Calls are made with common/rpc-client.ts.
//
//   const server = await createRpcServer({
//     host: "0.0.0.0", port: 9876,                       // port 0 = chosen by the OS; see server.port
//     routes: (router) => router.service(NamesrvService, impl),
//     readMaxBytes: 16 * 1024 * 1024, logger,            // both optional
//   });
//   ...
//   await server.close();                                 // graceful: see below
//
// Errors: a handler throws RmqError; the caller receives RmqError with the same code and message
// (common/rpc-error.ts). Any other exception is logged and reaches the caller as INTERNAL.
//
// Connections: each HTTP/2 session is pinged every `keepaliveIntervalMs` and destroyed when a ping
// is not answered within `keepaliveTimeoutMs` (a dead peer no longer pins its streams); a session
// without open streams for `idleTimeoutMs` is closed with GOAWAY (clients reconnect transparently).
//
// close(): stops accepting connections, aborts the handlers' `context.signal` (the shutdownSignal:
// long polls and server streams should end on it), sends GOAWAY so no new calls start while
// in-flight ones finish, and destroys whatever is still open after `shutdownGraceMs`.
//
// Unary methods are served by the lean gRPC layer (common/grpc-handler.ts: ~8x less CPU per call
// than connect-node's handler, numbers there); streaming methods, and everything when `interceptors`
// or per-service handler options are given, by connect-node on the same server. The handlers are
// the same connect-style implementations either way; on the lean path their HandlerContext is built
// lazily (signal, headers) and `values` is empty.

import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, type DescMethod, type DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type ContextValues,
  createContextValues,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ErrorCode, RmqError } from "./errors.ts";
import {
  connectErrorStatus,
  createGrpcStreamHandler,
  fallbackToNodeHandler,
  type GrpcCall,
  type GrpcMethod,
  grpcPath,
} from "./grpc-handler.ts";
import { type Logger, silentLogger } from "./logger.ts";
import { toConnectError } from "./rpc-error.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const SECOND = 1000;

/** Largest request message accepted (connect's own default is 4 GiB; grpc-java's 4 MiB is too small for batches). */
export const DEFAULT_RPC_READ_MAX_BYTES = 16 * MiB;
/** A connection without open streams is closed after this (upstream serverChannelMaxIdleTimeSeconds 120 s). */
export const DEFAULT_RPC_IDLE_TIMEOUT_MS = 120 * SECOND;
/** Server PING interval per connection (gRPC servers default to 2 h; ours is short so dead peers go fast). */
export const DEFAULT_RPC_KEEPALIVE_INTERVAL_MS = 30 * SECOND;
/** A PING unanswered for this long destroys the connection (gRPC keepalive timeout default 20 s). */
export const DEFAULT_RPC_KEEPALIVE_TIMEOUT_MS = 20 * SECOND;
/** How long close() lets in-flight calls finish before cutting connections. */
export const DEFAULT_RPC_SHUTDOWN_GRACE_MS = 5 * SECOND;
/** Concurrent streams per connection (Node's default is unlimited). */
export const DEFAULT_RPC_MAX_CONCURRENT_STREAMS = 1000;
/** Node http2 `maxSessionMemory` in MiB (Node default 10). */
export const DEFAULT_RPC_MAX_SESSION_MEMORY_MB = 64;

export interface RpcServerOptions {
  /** Address to bind, e.g. "0.0.0.0" or "127.0.0.1". */
  host: string;
  /** 0 = any free port (read it back from RpcServer.port). */
  port: number;
  /** Registers the services: `(router) => router.service(FooService, impl)`. */
  routes: (router: ConnectRouter) => void;
  readMaxBytes?: number;
  logger?: Logger;
  /** Extra interceptors (metrics, auth), run inside the error mapping. */
  interceptors?: Interceptor[];
  idleTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveTimeoutMs?: number;
  shutdownGraceMs?: number;
  maxConcurrentStreams?: number;
  maxSessionMemoryMb?: number;
}

export interface RpcServer {
  /** The port actually bound. */
  readonly port: number;
  /** Open client connections (HTTP/2 sessions). */
  connectionCount(): number;
  /** Graceful stop (see the file header). Idempotent. */
  close(): Promise<void>;
}

interface SessionState {
  session: http2.ServerHttp2Session;
  openStreams: number;
  lastActive: number;
  lastPing: number;
  pingTimer: NodeJS.Timeout | undefined;
}

/** Maps every failure leaving a handler to a ConnectError carrying the RmqError code. */
function errorInterceptor(log: Logger): Interceptor {
  const convert = (e: unknown, procedure: string): ConnectError => {
    if (!(e instanceof RmqError) && !(e instanceof ConnectError)) {
      log.error({ err: e, procedure }, "rpc handler failed unexpectedly");
    }
    return toConnectError(e);
  };
  return (next) => async (req) => {
    const procedure = `${req.service.typeName}/${req.method.name}`;
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const source = res.message;
      async function* guarded() {
        try {
          yield* source;
        } catch (e) {
          throw convert(e, procedure);
        }
      }
      return { ...res, message: guarded() };
    } catch (e) {
      throw convert(e, procedure);
    }
  };
}

export async function createRpcServer(opts: RpcServerOptions): Promise<RpcServer> {
  const log = opts.logger ?? silentLogger();
  const idleTimeoutMs = opts.idleTimeoutMs ?? DEFAULT_RPC_IDLE_TIMEOUT_MS;
  const keepaliveIntervalMs = opts.keepaliveIntervalMs ?? DEFAULT_RPC_KEEPALIVE_INTERVAL_MS;
  const keepaliveTimeoutMs = opts.keepaliveTimeoutMs ?? DEFAULT_RPC_KEEPALIVE_TIMEOUT_MS;
  const shutdownGraceMs = opts.shutdownGraceMs ?? DEFAULT_RPC_SHUTDOWN_GRACE_MS;
  const readMaxBytes = opts.readMaxBytes ?? DEFAULT_RPC_READ_MAX_BYTES;
  const shutdown = new AbortController();

  const routes = recordRoutes(opts.routes);
  const interceptors = opts.interceptors ?? [];
  const lean = interceptors.length === 0 ? routes.unary : new Map<string, GrpcMethod>();
  const connectHandler = connectNodeAdapter({
    routes: routes.replay,
    grpc: true,
    grpcWeb: false,
    connect: false,
    readMaxBytes,
    shutdownSignal: shutdown.signal,
    interceptors: [errorInterceptor(log), ...interceptors],
  });
  const onStream = createGrpcStreamHandler({
    methods: lean,
    readMaxBytes,
    shutdownSignal: shutdown.signal,
    errorStatus: (e, path) => {
      if (!(e instanceof RmqError) && !(e instanceof ConnectError)) {
        log.error({ err: e, procedure: path.slice(1) }, "rpc handler failed unexpectedly");
      }
      return connectErrorStatus(toConnectError(e));
    },
    fallback: { paths: routes.paths, handle: fallbackToNodeHandler(connectHandler) },
  });
  const server = http2.createServer({
    settings: { maxConcurrentStreams: opts.maxConcurrentStreams ?? DEFAULT_RPC_MAX_CONCURRENT_STREAMS },
    maxSessionMemory: opts.maxSessionMemoryMb ?? DEFAULT_RPC_MAX_SESSION_MEMORY_MB,
  });
  server.on("stream", onStream);

  const sessions = new Set<SessionState>();
  let closing = false;
  server.on("session", (session: http2.ServerHttp2Session) => {
    const st: SessionState = {
      session,
      openStreams: 0,
      lastActive: Date.now(),
      lastPing: Date.now(),
      pingTimer: undefined,
    };
    sessions.add(st);
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      st.openStreams++;
      st.lastActive = Date.now();
      stream.once("close", () => {
        st.openStreams--;
        st.lastActive = Date.now();
      });
    });
    session.on("error", (err) => log.debug({ err }, "rpc connection error"));
    session.once("close", () => {
      clearTimeout(st.pingTimer);
      sessions.delete(st);
    });
    if (closing) session.close();
  });

  const housekeeping = setInterval(
    () => {
      const now = Date.now();
      for (const st of sessions) {
        const { session } = st;
        if (session.closed || session.destroyed) continue;
        if (st.openStreams === 0 && now - st.lastActive >= idleTimeoutMs) {
          session.close();
          continue;
        }
        // One PING per interval, and none while the previous one is unanswered.
        if (st.pingTimer !== undefined || now - st.lastPing < keepaliveIntervalMs) continue;
        st.lastPing = now;
        st.pingTimer = setTimeout(() => {
          log.warn(
            { remote: session.socket?.remoteAddress },
            "rpc connection did not answer PING; closing it",
          );
          session.destroy();
        }, keepaliveTimeoutMs).unref();
        const sent = session.ping((err) => {
          clearTimeout(st.pingTimer);
          st.pingTimer = undefined;
          if (err !== null && !session.destroyed) session.destroy();
        });
        if (!sent) {
          clearTimeout(st.pingTimer);
          st.pingTimer = undefined;
        }
      }
    },
    Math.min(keepaliveIntervalMs, idleTimeoutMs),
  ).unref();

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      clearInterval(housekeeping);
      reject(
        new RmqError(ErrorCode.ListenFailed, `cannot listen on ${opts.host}:${opts.port}: ${err.message}`, {
          cause: err,
        }),
      );
    };
    server.once("error", onError);
    server.listen(opts.port, opts.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.on("error", (err) => log.error({ err }, "rpc server error"));
  const port = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    port,
    connectionCount: () => sessions.size,
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        clearInterval(housekeeping);
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
        const grace = setTimeout(() => {
          for (const st of sessions) st.session.destroy();
        }, shutdownGraceMs).unref();
        server.close(() => {
          clearTimeout(grace);
          resolve();
        });
        for (const st of sessions) st.session.close();
      });
      return closed;
    },
  };
}

interface RecordedRoutes {
  /** Registers everything on connect's router (the fallback). */
  replay: (router: ConnectRouter) => void;
  /** Every path connect serves. */
  paths: ReadonlySet<string>;
  /** Unary methods registered without handler options, for the lean path. */
  unary: Map<string, GrpcMethod>;
}

type AnyImpl = (request: unknown, context: HandlerContext) => unknown;

/** Runs the caller's `routes` against a recording router, so the same services serve both paths. */
function recordRoutes(routes: (router: ConnectRouter) => void): RecordedRoutes {
  const registrations: ((router: ConnectRouter) => void)[] = [];
  const paths = new Set<string>();
  const unary = new Map<string, GrpcMethod>();
  const addUnary = (method: DescMethod, impl: AnyImpl | undefined) => {
    if (method.methodKind !== "unary") return;
    const run: AnyImpl =
      impl ??
      (() => {
        throw new ConnectError(
          `${method.parent.typeName}.${method.name} is not implemented`,
          Code.Unimplemented,
        );
      });
    unary.set(grpcPath(method), {
      kind: "unary",
      input: method.input,
      output: method.output,
      handle: (request, call) => runLeanUnary(run, method, request, call),
    });
  };
  const recorder = {
    // connect's router lists its handlers here; while routes are recorded there are none yet
    handlers: [] as ConnectRouter["handlers"],
    service(service: DescService, impl: Record<string, unknown>, options?: object) {
      registrations.push((r) => r.service(service, impl as never, options));
      for (const method of service.methods) {
        paths.add(grpcPath(method));
        if (options !== undefined) continue;
        const fn = impl[method.localName];
        addUnary(method, typeof fn === "function" ? (fn.bind(impl) as AnyImpl) : undefined);
      }
      return recorder;
    },
    rpc(method: DescMethod, impl: unknown, options?: object) {
      registrations.push((r) => r.rpc(method, impl as never, options));
      paths.add(grpcPath(method));
      if (options === undefined && typeof impl === "function") addUnary(method, impl as AnyImpl);
      return recorder;
    },
  };
  routes(recorder as unknown as ConnectRouter);
  return {
    replay: (router) => {
      for (const register of registrations) register(router);
    },
    paths,
    unary,
  };
}

async function runLeanUnary(run: AnyImpl, method: DescMethod, request: unknown, call: GrpcCall) {
  const context = new LeanHandlerContext(method, call);
  const response = await run(request, context);
  context.flushResponseMetadata();
  // connect accepts an init object where a message is due; so do we (create() returns messages as is).
  return create(method.output, response as never);
}

const NO_VALUES: ContextValues = createContextValues();

/** connect's HandlerContext over a lean call: signal and headers are built only when read. */
class LeanHandlerContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly protocolName = "grpc";
  readonly values = NO_VALUES;
  private readonly call: GrpcCall;
  private requestHeaders: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private responseTrailers: Headers | undefined;

  constructor(method: DescMethod, call: GrpcCall) {
    this.method = method;
    this.service = method.parent;
    this.call = call;
  }

  get url(): string {
    return `http://${this.call.headers[":authority"] ?? "localhost"}${this.call.path}`;
  }

  get signal(): AbortSignal {
    return this.call.signal;
  }

  readonly timeoutMs = (): number | undefined =>
    this.call.timeoutMs === undefined ? undefined : this.call.remainingMs();

  get requestHeader(): Headers {
    if (this.requestHeaders === undefined) {
      const h = new Headers();
      for (const [key, value] of Object.entries(this.call.headers)) {
        if (key.startsWith(":") || value === undefined) continue;
        if (Array.isArray(value)) for (const v of value) h.append(key, v);
        else h.set(key, String(value));
      }
      this.requestHeaders = h;
    }
    return this.requestHeaders;
  }

  get responseHeader(): Headers {
    this.responseHeaders ??= new Headers();
    return this.responseHeaders;
  }

  get responseTrailer(): Headers {
    this.responseTrailers ??= new Headers();
    return this.responseTrailers;
  }

  /** Hands what the handler set on responseHeader/responseTrailer to the lean call. */
  flushResponseMetadata(): void {
    if (this.responseHeaders !== undefined) this.call.responseHeaders = headersToRecord(this.responseHeaders);
    if (this.responseTrailers !== undefined)
      this.call.responseTrailers = headersToRecord(this.responseTrailers);
  }
}

function headersToRecord(headers: Headers): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  headers.forEach((value, key) => {
    out ??= {};
    out[key] = value;
  });
  return out;
}
