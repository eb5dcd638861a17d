// The one way our processes CALL internal RPC services (served with common/rpc-server.ts): gRPC over
// plaintext HTTP/2 through @connectrpc/connect-node.
//
//   const namesrv = createRpcClient(NamesrvService, "127.0.0.1:9876", { timeoutMs: 3000 });
//   const res = await namesrv.getRouteInfoByTopic({ topic: "TopicTest" });
//   await namesrv.registerBroker(req, { timeoutMs: 24_000 });   // per-call deadline override
//
// - All clients of one address share ONE HTTP/2 connection (any service, any timeout). It is opened
//   on the first call, re-opened on the next call after a failure or a GOAWAY, pinged while streams
//   are open, verified with a PING before use after a quiet spell, and never keeps the process alive
//   when idle. closeRpcConnections() closes them (process shutdown, tests); clients stay usable.
// - Every call has a deadline: the per-call `timeoutMs`, else the client's, else
//   DEFAULT_RPC_TIMEOUT_MS.
// - A failed call rejects with RmqError: the server's own code and message when the handler threw an
//   RmqError (e.g. TOPIC_NOT_FOUND), otherwise RPC_UNAVAILABLE (cannot connect, connection lost),
//   RPC_TIMEOUT (deadline), RPC_CANCELED, RPC_RESOURCE_EXHAUSTED (message too large), NOT_IMPLEMENTED
//   or RPC_FAILED, with the method and address in the message. Streaming responses fail the same way
//   while being iterated.
// - A unary call the server refused before processing it (it crossed the server's GOAWAY) is sent
//   again on a new connection; nothing else is retried.
// - Unary calls are framed here on connect-node's Http2SessionManager (one length-prefixed message
//   out, one in, grpc-status from the trailers): connect's generic client machinery costs several
//   times the CPU of the call itself (an empty call, client + server in one process, 64 in flight:
//   1160-1980 µs of CPU with connect on both sides, 155-275 µs with this and common/grpc-handler.ts;
//   bench/controller.ts's empty-RPC ceiling went from 710-1350 to 1700-8400 calls/s). Streaming calls,
//   and unary calls with options other than timeoutMs/signal/headers, go through connect's client.

import {
  type ClientHttp2Stream,
  constants as http2Constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from "node:http2";
import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type CallOptions, type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ErrorCode, RmqError } from "./errors.ts";
import { isRefusedStream, toRmqError } from "./rpc-error.ts";

const SECOND = 1000;
const MiB = 1024 * 1024;

/** Deadline of a call when neither the call nor the client sets one (upstream remoting calls use 3 s). */
export const DEFAULT_RPC_TIMEOUT_MS = 3 * SECOND;
/** Largest response message accepted. */
export const DEFAULT_RPC_CLIENT_READ_MAX_BYTES = 64 * MiB;
/** PING interval on a connection with open streams; a connection quiet this long is verified before reuse. */
export const RPC_CLIENT_PING_INTERVAL_MS = 15 * SECOND;
/** An unanswered PING after this long drops the connection (gRPC default 20 s). */
export const RPC_CLIENT_PING_TIMEOUT_MS = 10 * SECOND;
/** A connection without streams is closed after this (connect's default is 15 min). */
export const RPC_CLIENT_IDLE_TIMEOUT_MS = 5 * 60 * SECOND;

export interface RpcClientOptions {
  /** Default deadline of each call in ms. */
  timeoutMs?: number;
  readMaxBytes?: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^\s:;/[\]]+):(\d{1,5})$/;

const sessions = new Map<string, Http2SessionManager>();

function sessionFor(address: string): Http2SessionManager {
  let s = sessions.get(address);
  if (s === undefined) {
    s = new Http2SessionManager(`http://${address}`, {
      pingIntervalMs: RPC_CLIENT_PING_INTERVAL_MS,
      pingTimeoutMs: RPC_CLIENT_PING_TIMEOUT_MS,
      idleConnectionTimeoutMs: RPC_CLIENT_IDLE_TIMEOUT_MS,
    });
    sessions.set(address, s);
  }
  return s;
}

/** Checks and normalises "host:port". Throws RmqError(IllegalArgument). */
export function parseRpcAddress(address: string): string {
  const a = address.trim();
  const m = HOST_PORT.exec(a);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new RmqError(
      ErrorCode.IllegalArgument,
      `illegal rpc address ${JSON.stringify(address)}: expected host:port`,
    );
  }
  return a;
}

/**
 * Unary calls the server refused unprocessed (HTTP/2 REFUSED_STREAM: the call crossed the server's
 * GOAWAY, e.g. an idle close) are sent again on a fresh connection, at most this many times.
 */
const MAX_REFUSED_STREAM_RETRIES = 2;

function rethrowing<T>(source: AsyncIterable<T>, call: string): AsyncIterable<T> {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        yield* source;
      } catch (e) {
        throw toRmqError(e, call);
      }
    },
  };
}

/** A typed client of `service` at `address` ("host:port"). Creating one does no IO. */
export function createRpcClient<T extends DescService>(
  service: T,
  address: string,
  opts: RpcClientOptions = {},
): Client<T> {
  const addr = parseRpcAddress(address);
  const session = sessionFor(addr);
  const defaultTimeoutMs = opts.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
  const readMaxBytes = opts.readMaxBytes ?? DEFAULT_RPC_CLIENT_READ_MAX_BYTES;
  const transport = createGrpcTransport({
    baseUrl: `http://${addr}`,
    sessionManager: session,
    defaultTimeoutMs,
    readMaxBytes,
  });
  // connect wraps whatever an interceptor throws into a ConnectError, so the RmqError translation
  // wraps the generated methods instead.
  const raw = createClient(service, transport) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const wrapped: Record<string, (...args: unknown[]) => unknown> = {};
  for (const method of service.methods) {
    const fn = raw[method.localName];
    if (fn === undefined) continue;
    const call = `${service.typeName}/${method.name} to ${addr}`;
    if (method.methodKind === "unary") {
      const unary = createUnaryCaller(session, method as DescMethodUnary, readMaxBytes);
      wrapped[method.localName] = async (...args: unknown[]) => {
        const [request, options] = args as [unknown, CallOptions | undefined];
        const lean = options === undefined || isLeanCallOptions(options);
        for (let attempt = 1; ; attempt++) {
          try {
            if (!lean) return await (fn(...args) as Promise<unknown>);
            return await unary(
              request as MessageInitShape<DescMessage>,
              options?.timeoutMs ?? defaultTimeoutMs,
              options?.signal,
              options?.headers,
            );
          } catch (e) {
            if (attempt <= MAX_REFUSED_STREAM_RETRIES && isRefusedStream(e)) continue;
            throw toRmqError(e, call);
          }
        }
      };
    } else if (method.methodKind === "client_streaming") {
      wrapped[method.localName] = (...args) =>
        (fn(...args) as Promise<unknown>).catch((e: unknown) => {
          throw toRmqError(e, call);
        });
    } else {
      wrapped[method.localName] = (...args) => rethrowing(fn(...args) as AsyncIterable<unknown>, call);
    }
  }
  return wrapped as unknown as Client<T>;
}

const LEAN_CALL_OPTIONS: ReadonlySet<string> = new Set(["timeoutMs", "signal", "headers"]);

function isLeanCallOptions(options: CallOptions): boolean {
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined && !LEAN_CALL_OPTIONS.has(key)) return false;
  }
  return true;
}

// ---- The lean unary call ----

/** Bytes of the gRPC message prefix: compressed flag + 4-byte big-endian length. */
const GRPC_PREFIX_BYTES = 5;
/** grpc-timeout allows at most 8 digits per unit. */
const MAX_GRPC_TIMEOUT_MS = 99_999_999;

type UnaryCaller = (
  request: MessageInitShape<DescMessage>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  extraHeaders: CallOptions["headers"] | undefined,
) => Promise<unknown>;

function createUnaryCaller(
  session: Http2SessionManager,
  method: DescMethodUnary,
  readMaxBytes: number,
): UnaryCaller {
  const path = `/${method.parent.typeName}/${method.name}`;
  const headersByTimeout = new Map<number, OutgoingHttpHeaders>();
  const headersFor = (timeoutMs: number, extra: CallOptions["headers"] | undefined): OutgoingHttpHeaders => {
    if (extra === undefined) {
      let h = headersByTimeout.get(timeoutMs);
      if (h === undefined) {
        h = requestHeaders(timeoutMs);
        if (headersByTimeout.size < 64) headersByTimeout.set(timeoutMs, h);
      }
      return h;
    }
    const h = { ...requestHeaders(timeoutMs) };
    new Headers(extra).forEach((value, key) => {
      h[key] = value;
    });
    return h;
  };
  return async (request, timeoutMs, signal, extraHeaders) => {
    signal?.throwIfAborted();
    const payload = toBinary(method.input, create(method.input, request));
    const body = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.byteLength);
    body[0] = 0;
    body.writeUInt32BE(payload.byteLength, 1);
    body.set(payload, GRPC_PREFIX_BYTES);
    return unaryCall(session, path, method.output, headersFor(timeoutMs, extraHeaders), body, {
      timeoutMs,
      signal,
      readMaxBytes,
    });
  };
}

function requestHeaders(timeoutMs: number): OutgoingHttpHeaders {
  return Object.freeze({
    "content-type": "application/grpc+proto",
    te: "trailers",
    "grpc-timeout": `${Math.min(Math.max(1, Math.ceil(timeoutMs)), MAX_GRPC_TIMEOUT_MS)}m`,
  });
}

/**
 * One unary call: send `body` (a framed request), read one response message, resolve with it when
 * grpc-status is 0; otherwise reject with a ConnectError carrying the status and the trailers as
 * metadata (toRmqError reads rmq-error-code from there). The deadline covers connecting too.
 */
function unaryCall<O extends DescMessage>(
  session: Http2SessionManager,
  path: string,
  output: O,
  headers: OutgoingHttpHeaders,
  body: Buffer,
  o: { timeoutMs: number; signal: AbortSignal | undefined; readMaxBytes: number },
): Promise<MessageShape<O>> {
  return new Promise<MessageShape<O>>((resolve, reject) => {
    let stream: ClientHttp2Stream | undefined;
    let settled = false;
    let chunks: Buffer[] = [];
    let received = 0;
    let status: string | undefined;
    let statusHeaders: IncomingHttpHeaders | undefined;
    const settle = (error: ConnectError | undefined, value?: MessageShape<O>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal?.removeEventListener("abort", onAbort);
      if (error !== undefined) {
        if (stream !== undefined && !stream.closed) stream.close(http2Constants.NGHTTP2_CANCEL);
        reject(error);
      } else resolve(value as MessageShape<O>);
    };
    const onAbort = () => settle(new ConnectError("the call was cancelled", Code.Canceled));
    const timer = setTimeout(
      () => settle(new ConnectError(`deadline of ${o.timeoutMs} ms exceeded`, Code.DeadlineExceeded)),
      Math.min(o.timeoutMs, 0x7fff_ffff),
    );
    o.signal?.addEventListener("abort", onAbort);
    const takeStatus = (h: IncomingHttpHeaders) => {
      const s = h["grpc-status"];
      if (s === undefined) return;
      status = String(s);
      statusHeaders = h;
    };
    const finish = () => {
      if (status === undefined) {
        settle(new ConnectError("protocol error: the response carries no grpc-status", Code.Internal));
        return;
      }
      if (status !== "0") {
        settle(errorFromStatus(status, statusHeaders ?? {}));
        return;
      }
      const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, received);
      chunks = [];
      if (all.byteLength < GRPC_PREFIX_BYTES || all.byteLength !== GRPC_PREFIX_BYTES + all.readUInt32BE(1)) {
        settle(new ConnectError("protocol error: expected exactly one response message", Code.Internal));
        return;
      }
      if (all[0] !== 0) {
        settle(new ConnectError("protocol error: compressed response without negotiation", Code.Internal));
        return;
      }
      try {
        settle(undefined, fromBinary(output, all.subarray(GRPC_PREFIX_BYTES)));
      } catch (e) {
        settle(new ConnectError(`cannot parse ${output.typeName}: ${String(e)}`, Code.Internal));
      }
    };
    session.request("POST", path, headers, {}).then(
      (s) => {
        stream = s;
        if (settled) {
          if (!s.closed) s.close(http2Constants.NGHTTP2_CANCEL);
          return;
        }
        s.once("response", (h) => {
          const httpStatus = h[":status"];
          if (httpStatus !== 200) {
            settle(new ConnectError(`HTTP status ${httpStatus}`, codeOfHttpStatus(httpStatus)));
            return;
          }
          takeStatus(h); // trailers-only
        });
        s.once("trailers", takeStatus);
        s.on("data", (chunk: Buffer) => {
          session.notifyResponseByteRead(s);
          received += chunk.byteLength;
          if (received > o.readMaxBytes + GRPC_PREFIX_BYTES) {
            settle(
              new ConnectError(
                `response larger than the limit of ${o.readMaxBytes} bytes`,
                Code.ResourceExhausted,
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        s.once("end", finish);
        s.once("close", () => {
          if (settled) return;
          if (status !== undefined) {
            finish();
            return;
          }
          settle(errorFromResetCode(s.rstCode));
        });
        s.on("error", (e: Error) => settle(errorFromStreamError(e)));
        s.end(body);
      },
      (e: unknown) => settle(ConnectError.from(e, Code.Unavailable)),
    );
  });
}

function errorFromStatus(status: string, headers: IncomingHttpHeaders): ConnectError {
  const n = Number(status);
  const code = Number.isInteger(n) && n >= 1 && n <= 16 ? (n as Code) : Code.Unknown;
  const metadata = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    if (key.startsWith(":") || key === "grpc-status" || key === "grpc-message" || value === undefined)
      continue;
    metadata.set(key, Array.isArray(value) ? value.join(", ") : String(value));
  }
  return new ConnectError(decodeGrpcMessage(headers["grpc-message"]), code, metadata);
}

function decodeGrpcMessage(value: string | string[] | undefined): string {
  if (value === undefined) return "";
  const text = Array.isArray(value) ? value.join(",") : value;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function errorFromResetCode(rstCode: number | undefined): ConnectError {
  if (rstCode === http2Constants.NGHTTP2_REFUSED_STREAM) {
    return new ConnectError("stream refused by the server (NGHTTP2_REFUSED_STREAM)", Code.Unavailable);
  }
  if (rstCode === http2Constants.NGHTTP2_CANCEL) {
    return new ConnectError("stream cancelled (NGHTTP2_CANCEL)", Code.Canceled);
  }
  return new ConnectError(`stream closed without a status (HTTP/2 error code ${rstCode})`, Code.Unavailable);
}

/** A stream error: ours (a ConnectError, e.g. the connection was aborted) or the transport's. */
function errorFromStreamError(e: Error): ConnectError {
  if (e instanceof ConnectError) return e;
  return new ConnectError(e.message, Code.Unavailable, undefined, undefined, e);
}

/** gRPC's mapping of HTTP statuses when a response is not gRPC. */
function codeOfHttpStatus(status: number | undefined): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/**
 * Closes the shared connection to `address`, or all of them, failing their in-flight calls with
 * RPC_CANCELED. Existing clients stay usable: their next call reconnects.
 */
export function closeRpcConnections(address?: string): void {
  for (const [a, s] of sessions) {
    if (address === undefined || a === address) s.abort();
  }
}
