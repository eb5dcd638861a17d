// Per-call context of the gRPC proxy: who is calling (the x-mq-* metadata every RocketMQ 5 SDK sends)
// and over which connection (peer address, the address the client dialled).

import type { IncomingMessage } from "node:http";
import type { Http2ServerRequest, Http2Session, IncomingHttpHeaders } from "node:http2";
import type { Socket } from "node:net";
import type { HandlerContext } from "@connectrpc/connect";
import { type ContextValues, createContextKey, createContextValues } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "../common/errors.ts";
import type { GrpcCall } from "../common/grpc-handler.ts";

/** Request metadata names (upstream GrpcConstants). */
export const MetadataKey = {
  CLIENT_ID: "x-mq-client-id",
  LANGUAGE: "x-mq-language",
  CLIENT_VERSION: "x-mq-client-version",
  PROTOCOL_VERSION: "x-mq-protocol",
  NAMESPACE: "x-mq-namespace",
  REQUEST_ID: "x-mq-request-id",
  DATE_TIME: "x-mq-date-time",
  SESSION_TOKEN: "x-mq-session-token",
  AUTHORIZATION: "authorization",
} as const;

/** The TCP connection a call arrived on. */
export interface ConnectionInfo {
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  /** The `:authority` the client dialled (host:port), when sent. */
  authority?: string;
  tls: boolean;
}

const UNKNOWN_CONNECTION: ConnectionInfo = Object.freeze({
  remoteAddress: "",
  remotePort: 0,
  localAddress: "",
  localPort: 0,
  tls: false,
});

export const connectionInfoKey = createContextKey<ConnectionInfo>(UNKNOWN_CONNECTION, {
  description: "rocketmq proxy connection info",
});

/** For connectNodeAdapter's `contextValues`: records the connection of each request. */
export function connectionContextValues(req: IncomingMessage | Http2ServerRequest): ContextValues {
  const info = connectionInfoOf(req.socket);
  const authorityHeader = req.headers[":authority"] ?? req.headers.host;
  if (typeof authorityHeader === "string" && authorityHeader.length > 0) info.authority = authorityHeader;
  return createContextValues().set(connectionInfoKey, info);
}

function connectionInfoOf(socket: Socket | undefined): ConnectionInfo {
  return {
    remoteAddress: stripIpv4MappedPrefix(socket?.remoteAddress ?? ""),
    remotePort: socket?.remotePort ?? 0,
    localAddress: stripIpv4MappedPrefix(socket?.localAddress ?? ""),
    localPort: socket?.localPort ?? 0,
    tls: (socket as { encrypted?: boolean } | undefined)?.encrypted === true,
  };
}

/** A connection as calls on it see it; `peer` is formatHostPort of its remote address. */
interface LeanConnection {
  info: ConnectionInfo;
  peer: string;
}

/** Per HTTP/2 connection: its LeanConnection for the `:authority` its calls last carried. */
const sessionConnections = new WeakMap<Http2Session, LeanConnection>();

/** The connection of a call served by the lean gRPC layer (computed once per connection). */
function leanConnection(call: GrpcCall): LeanConnection {
  const session = call.stream.session;
  const authority = call.headers[":authority"];
  const cached = session === undefined ? undefined : sessionConnections.get(session);
  if (cached !== undefined && cached.info.authority === authority) return cached;
  const info = connectionInfoOf(session?.socket as Socket | undefined);
  if (typeof authority === "string" && authority.length > 0) info.authority = authority;
  const connection = { info: Object.freeze(info), peer: formatHostPort(info.remoteAddress, info.remotePort) };
  if (session !== undefined) sessionConnections.set(session, connection);
  return connection;
}

export interface CallContext {
  clientId: string;
  /** Any string: Node sends "HTTP", Java "JAVA", Go "GO"... */
  language: string;
  clientVersion: string;
  protocolVersion: string;
  /** x-mq-namespace; a request Resource's own resource_namespace wins over it (see resource.ts). */
  namespace: string;
  requestId: string;
  connection: ConnectionInfo;
  /** "ip:port" of the client. */
  peer: string;
  /** Milliseconds left until the client's deadline; Infinity without one. */
  remainingMs(): number;
}

/** Reads the caller of a lean gRPC call; throws CLIENT_ID_REQUIRED as readCallContext does. */
export function readLeanCallContext(call: GrpcCall): CallContext {
  const h = call.headers;
  const clientId = headerValue(h, MetadataKey.CLIENT_ID).trim();
  if (clientId.length === 0) {
    throw new RmqError(ErrorCode.ClientIdRequired, `metadata ${MetadataKey.CLIENT_ID} is required`);
  }
  const { info, peer } = leanConnection(call);
  return {
    clientId,
    language: headerValue(h, MetadataKey.LANGUAGE),
    clientVersion: headerValue(h, MetadataKey.CLIENT_VERSION),
    protocolVersion: headerValue(h, MetadataKey.PROTOCOL_VERSION),
    namespace: headerValue(h, MetadataKey.NAMESPACE),
    requestId: headerValue(h, MetadataKey.REQUEST_ID),
    connection: info,
    peer,
    remainingMs: () => call.remainingMs(),
  };
}

/** A metadata value as connect's Headers.get() reads it: repeated values joined with ", ". */
function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (value === undefined) return "";
  return Array.isArray(value) ? value.join(", ") : value;
}

/** Reads the caller from the metadata. Throws CLIENT_ID_REQUIRED when x-mq-client-id is missing or blank. */
export function readCallContext(ctx: HandlerContext): CallContext {
  const header = ctx.requestHeader;
  const clientId = (header.get(MetadataKey.CLIENT_ID) ?? "").trim();
  if (clientId.length === 0) {
    throw new RmqError(ErrorCode.ClientIdRequired, `metadata ${MetadataKey.CLIENT_ID} is required`);
  }
  const connection = ctx.values.get(connectionInfoKey);
  return {
    clientId,
    language: header.get(MetadataKey.LANGUAGE) ?? "",
    clientVersion: header.get(MetadataKey.CLIENT_VERSION) ?? "",
    protocolVersion: header.get(MetadataKey.PROTOCOL_VERSION) ?? "",
    namespace: header.get(MetadataKey.NAMESPACE) ?? "",
    requestId: header.get(MetadataKey.REQUEST_ID) ?? "",
    connection,
    peer: formatHostPort(connection.remoteAddress, connection.remotePort),
    remainingMs: () => ctx.timeoutMs() ?? Number.POSITIVE_INFINITY,
  };
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

function stripIpv4MappedPrefix(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice("::ffff:".length) : address;
}
