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

import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
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
  const transport = createGrpcTransport({
    baseUrl: `http://${addr}`,
    sessionManager: sessionFor(addr),
    defaultTimeoutMs: opts.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS,
    readMaxBytes: opts.readMaxBytes ?? DEFAULT_RPC_CLIENT_READ_MAX_BYTES,
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
      wrapped[method.localName] = async (...args) => {
        for (let attempt = 1; ; attempt++) {
          try {
            return await (fn(...args) as Promise<unknown>);
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

/**
 * Closes the shared connection to `address`, or all of them, failing their in-flight calls with
 * RPC_CANCELED. Existing clients stay usable: their next call reconnects.
 */
export function closeRpcConnections(address?: string): void {
  for (const [a, s] of sessions) {
    if (address === undefined || a === address) s.abort();
  }
}
