// A lean apache.rocketmq.v2.MessagingService client for load generation (`rmq bench`): gRPC over
// plaintext HTTP/2 (h2c) on @connectrpc/connect-node and the generated descriptors, no SDK logic
// (no retries, no route refresh, no heartbeats). It does what a RocketMQ 5 client does on the wire
// and nothing more:
//
//   const client = createBenchClient({ endpoint: "127.0.0.1:8081", connections: 2 });
//   const queues = await client.queryRoute("TopicTest");
//   const session = await client.openTelemetry(producerSettings(client, ["TopicTest"]));
//   const batch = createSendBatch("TopicTest", 16, body, createMessageIdGenerator());
//   batch.stamp(Date.now());
//   const res = await client.sendMessage(batch.messages, 0);   // on connection 0
//   ...
//   await session.close();
//   client.close();
//
// QueryRoute and Telemetry (start-up only) go through connect's generated client; the hot calls
// (SendMessage, ReceiveMessage, AckMessage) are framed by hand on connect-node's HTTP/2 session
// manager, see callGrpc below. Every call carries the x-mq-* metadata the proxy reads
// (x-mq-client-id is mandatory). Calls are spread over `connections` HTTP/2 connections by the
// caller's connection index. Business errors arrive as Status in the response body (protocol.md
// §1); only transport failures reject (with connect's ConnectError and the gRPC code).

import { constants as http2Constants, type IncomingHttpHeaders } from "node:http2";
import { hostname } from "node:os";
import {
  create,
  type DescMessage,
  fromBinary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, ConnectError, createClient, Code as GrpcCode } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  AddressScheme,
  ClientType,
  Code,
  Encoding,
  FilterType,
  Language,
  type Message,
  type MessageQueue,
  MessageSchema,
  MessageType,
  type Settings,
  type SettingsSchema,
  type Status,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type AckMessageEntrySchema,
  type AckMessageResponse,
  MessagingService,
  type ReceiveMessageRequestSchema,
  type SendMessageResponse,
  type TelemetryCommand,
  TelemetryCommandSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";

const SECOND = 1000;
const MiB = 1024 * 1024;

/** Deadline of unary calls (the SDKs' requestTimeout default, 3 s). */
export const DEFAULT_BENCH_RPC_TIMEOUT_MS = 3 * SECOND;
/** How long the Telemetry Settings reply may take (the Java client waits about this long). */
export const TELEMETRY_SETTINGS_TIMEOUT_MS = 5 * SECOND;
/**
 * HTTP/2 settings of every benchmark client connection, ours and the raw probes' alike: a 1 MiB
 * stream window (Node default 64 KiB) so a stream of deliveries is not throttled by window updates.
 */
export const BENCH_HTTP2_CLIENT_SETTINGS = Object.freeze({ initialWindowSize: MiB });
/** What we report as x-mq-client-version and in Settings.user_agent. */
export const BENCH_CLIENT_VERSION = "rmq-bench/0.1.0";

export interface BenchClientOptions {
  /** "host:port" of the proxy (plaintext). */
  endpoint: string;
  /** HTTP/2 connections to open (default 1). */
  connections?: number;
  /** Default: "<hostname>@<pid>@bench@<random>". */
  clientId?: string;
  /** Deadline of unary calls (default DEFAULT_BENCH_RPC_TIMEOUT_MS). */
  timeoutMs?: number;
}

export interface ReceiveResult {
  /** The stream's status (OK, MESSAGE_NOT_FOUND, ...); undefined when the server sent none. */
  status: Status | undefined;
  messages: Message[];
}

export interface TelemetrySession {
  /** The Settings the proxy answered with. */
  readonly settings: Settings;
  /** Half-close the stream and wait (briefly) for the proxy to end it. */
  close(): Promise<void>;
}

export interface BenchClient {
  readonly clientId: string;
  readonly endpoint: string;
  readonly connections: number;
  /** QueryRoute on the access point; rejects with BenchStatusError when the status is not OK. */
  queryRoute(topic: string): Promise<MessageQueue[]>;
  /** Open Telemetry, send the Settings and wait for the proxy's Settings reply. */
  openTelemetry(settings: MessageInitShape<typeof SettingsSchema>): Promise<TelemetrySession>;
  /** One SendMessage with all `messages` (same topic). */
  sendMessage(messages: Message[], connection: number): Promise<SendMessageResponse>;
  /** One ReceiveMessage; the whole stream is read before this resolves. */
  receiveMessage(
    request: MessageInitShape<typeof ReceiveMessageRequestSchema>,
    connection: number,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<ReceiveResult>;
  ackMessage(
    group: string,
    topic: string,
    entries: MessageInitShape<typeof AckMessageEntrySchema>[],
    connection: number,
  ): Promise<AckMessageResponse>;
  /** Drop every connection (calls in flight fail). */
  close(): void;
}

/** A non-OK Status where the caller needed OK (QueryRoute, Telemetry). */
export class BenchStatusError extends Error {
  readonly code: number;
  constructor(what: string, status: Status | undefined) {
    super(`${what} failed: ${statusText(status)}`);
    this.name = "BenchStatusError";
    this.code = status?.code ?? Code.CODE_UNSPECIFIED;
  }
}

const CODE_NAMES = new Map<number, string>(Object.entries(Code).map(([name, value]) => [value, name]));

/** "TOO_MANY_REQUESTS(42900)" for a v2 Code. */
export function codeName(code: number): string {
  return `${CODE_NAMES.get(code) ?? "UNKNOWN"}(${code})`;
}

function statusText(status: Status | undefined): string {
  if (status === undefined) return "no status";
  return status.message.length > 0 ? `${codeName(status.code)} ${status.message}` : codeName(status.code);
}

export function newClientId(): string {
  return `${hostname()}@${process.pid}@bench@${Date.now().toString(36)}${Math.floor(Math.random() * 0xffff).toString(36)}`;
}

export function createBenchClient(options: BenchClientOptions): BenchClient {
  const connections = options.connections ?? 1;
  const clientId = options.clientId ?? newClientId();
  const timeoutMs = options.timeoutMs ?? DEFAULT_BENCH_RPC_TIMEOUT_MS;
  const baseUrl = `http://${options.endpoint}`;
  const metadata: Record<string, string> = {
    "x-mq-client-id": clientId,
    "x-mq-language": "HTTP",
    "x-mq-client-version": BENCH_CLIENT_VERSION,
    "x-mq-protocol": "v2",
  };
  const sessions: Http2SessionManager[] = [];
  const clients: Client<typeof MessagingService>[] = [];
  for (let i = 0; i < connections; i++) {
    const sessionManager = new Http2SessionManager(baseUrl, {}, { settings: BENCH_HTTP2_CLIENT_SETTINGS });
    sessions.push(sessionManager);
    clients.push(createClient(MessagingService, createGrpcTransport({ baseUrl, sessionManager })));
  }
  const first = clients[0] as Client<typeof MessagingService>;
  const sessionOf = (connection: number) => sessions[connection % connections] as Http2SessionManager;
  const unaryHeaders = grpcRequestHeaders(metadata, timeoutMs);
  const receiveHeaders = new Map<number, Readonly<Record<string, string>>>();
  const [host = "", port = "0"] = splitEndpoint(options.endpoint);
  const { sendMessage, receiveMessage, ackMessage } = MessagingService.method;

  return {
    clientId,
    endpoint: options.endpoint,
    connections,

    async queryRoute(topic) {
      const res = await first.queryRoute(
        {
          topic: { name: topic },
          endpoints: { scheme: addressScheme(host), addresses: [{ host, port: Number(port) }] },
        },
        { headers: metadata, timeoutMs },
      );
      if (res.status?.code !== Code.OK) throw new BenchStatusError(`QueryRoute of ${topic}`, res.status);
      return res.messageQueues;
    },

    async openTelemetry(settings) {
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      const command = create(TelemetryCommandSchema, { command: { case: "settings", value: settings } });
      async function* requests(): AsyncGenerator<TelemetryCommand> {
        yield command;
        await released;
      }
      const abort = new AbortController();
      const responses = first
        .telemetry(requests(), { headers: metadata, signal: abort.signal })
        [Symbol.asyncIterator]();
      let timer: NodeJS.Timeout | undefined;
      const reply = await Promise.race([
        responses.next(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no Telemetry Settings reply within ${TELEMETRY_SETTINGS_TIMEOUT_MS} ms`)),
            TELEMETRY_SETTINGS_TIMEOUT_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      if (reply.done === true || reply.value.command.case !== "settings") {
        release();
        abort.abort();
        throw new BenchStatusError(
          "Telemetry Settings handshake",
          reply.done === true ? undefined : reply.value.status,
        );
      }
      // Keep reading (the proxy re-sends Settings, may push commands) until the stream ends.
      const drained = (async () => {
        try {
          while (!(await responses.next()).done) {
            // later commands need no answer from a load generator
          }
        } catch {
          // aborted or the connection went away
        }
      })();
      return {
        settings: reply.value.command.value,
        async close() {
          release();
          let grace: NodeJS.Timeout | undefined;
          await Promise.race([drained, new Promise((r) => (grace = setTimeout(r, SECOND)))]);
          clearTimeout(grace);
          abort.abort();
        },
      };
    },

    async sendMessage(messages, connection) {
      const responses = await callGrpc(
        sessionOf(connection),
        sendMessage,
        unaryHeaders,
        create(sendMessage.input, { messages }),
        timeoutMs,
      );
      return singleResponse(responses, sendMessage.name);
    },

    async receiveMessage(request, connection, o) {
      let headers = receiveHeaders.get(o.timeoutMs);
      if (headers === undefined) {
        headers = grpcRequestHeaders(metadata, o.timeoutMs);
        receiveHeaders.set(o.timeoutMs, headers);
      }
      const responses = await callGrpc(
        sessionOf(connection),
        receiveMessage,
        headers,
        create(receiveMessage.input, request),
        o.timeoutMs,
        o.signal,
      );
      const out: ReceiveResult = { status: undefined, messages: [] };
      for (const response of responses) {
        const content = response.content;
        if (content.case === "message") out.messages.push(content.value);
        else if (content.case === "status") out.status = content.value;
      }
      return out;
    },

    async ackMessage(group, topic, entries, connection) {
      const responses = await callGrpc(
        sessionOf(connection),
        ackMessage,
        unaryHeaders,
        create(ackMessage.input, { group: { name: group }, topic: { name: topic }, entries }),
        timeoutMs,
      );
      return singleResponse(responses, ackMessage.name);
    },

    close() {
      for (const s of sessions) s.abort();
    },
  };
}

// ---- The hot path: one gRPC call on one HTTP/2 stream, by hand ----
//
// connect's generic call machinery (async iterables, linked abort controllers, fetch-style Headers
// per call) costs about ten times the CPU of the HTTP/2 request itself, which on a 2-core box shared
// with the proxy is what the benchmark would end up measuring. Send, receive and ack therefore open
// the stream on connect-node's Http2SessionManager (connection reuse, PING keep-alive, reconnect)
// and do the gRPC framing themselves: one length-prefixed request message, response messages split
// off the data as it arrives, grpc-status from the trailers (or from trailers-only headers).
// Failures reject with connect's ConnectError and the gRPC code, like connect's own calls.

/** Bytes of the gRPC message prefix: compressed flag + 4-byte big-endian length. */
const GRPC_PREFIX_BYTES = 5;

function grpcRequestHeaders(
  metadata: Record<string, string>,
  timeoutMs: number,
): Readonly<Record<string, string>> {
  return Object.freeze({
    "content-type": "application/grpc+proto",
    te: "trailers",
    "user-agent": BENCH_CLIENT_VERSION,
    // gRPC allows at most 8 digits per unit
    "grpc-timeout": `${Math.min(Math.max(1, Math.ceil(timeoutMs)), 99_999_999)}m`,
    ...metadata,
  });
}

function singleResponse<T>(responses: T[], method: string): T {
  const [response] = responses;
  if (response === undefined || responses.length !== 1) {
    throw new ConnectError(
      `${method}: expected one response message, got ${responses.length}`,
      GrpcCode.Internal,
    );
  }
  return response;
}

interface GrpcMethod<I extends DescMessage, O extends DescMessage> {
  readonly name: string;
  readonly input: I;
  readonly output: O;
}

/**
 * One call: send `request`, collect every response message until the server ends the stream with
 * grpc-status 0. `timeoutMs` is sent as grpc-timeout and enforced here too; `signal` cancels.
 */
async function callGrpc<I extends DescMessage, O extends DescMessage>(
  session: Http2SessionManager,
  method: GrpcMethod<I, O>,
  headers: Readonly<Record<string, string>>,
  request: MessageShape<I>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<MessageShape<O>[]> {
  signal?.throwIfAborted();
  const payload = toBinary(method.input, request);
  const body = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.byteLength);
  body[0] = 0;
  body.writeUInt32BE(payload.byteLength, 1);
  body.set(payload, GRPC_PREFIX_BYTES);
  const stream = await session.request("POST", `/${MessagingService.typeName}/${method.name}`, headers, {});
  return new Promise<MessageShape<O>[]>((resolve, reject) => {
    const responses: MessageShape<O>[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = "";
    let settled = false;
    const settle = (error: ConnectError | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      if (error !== undefined) {
        if (!stream.closed) stream.close(http2Constants.NGHTTP2_CANCEL);
        reject(error);
      } else resolve(responses);
    };
    const onAbort = () => settle(new ConnectError(`${method.name} canceled`, GrpcCode.Canceled));
    const timer = setTimeout(
      () =>
        settle(
          new ConnectError(`${method.name}: deadline of ${timeoutMs} ms exceeded`, GrpcCode.DeadlineExceeded),
        ),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort);
    const read = createMessageReader((message, compressed) => {
      if (compressed) {
        settle(
          new ConnectError(`${method.name}: compressed response without negotiation`, GrpcCode.Internal),
        );
        return;
      }
      try {
        responses.push(fromBinary(method.output, message));
      } catch (error) {
        settle(new ConnectError(`${method.name}: undecodable response: ${String(error)}`, GrpcCode.Internal));
      }
    });
    const takeStatus = (h: IncomingHttpHeaders) => {
      const status = h["grpc-status"];
      if (status !== undefined) {
        grpcStatus = String(status);
        grpcMessage = decodeGrpcMessage(h["grpc-message"]);
      }
    };
    stream.once("response", (h) => {
      const httpStatus = h[":status"];
      if (httpStatus !== 200) {
        settle(new ConnectError(`${method.name}: HTTP status ${httpStatus}`, httpStatusCode(httpStatus)));
        return;
      }
      takeStatus(h); // trailers-only response
    });
    stream.once("trailers", takeStatus);
    stream.on("data", (chunk: Buffer) => {
      session.notifyResponseByteRead(stream);
      read(chunk);
    });
    stream.once("end", () => {
      if (grpcStatus === undefined) {
        settle(new ConnectError(`${method.name}: stream ended without grpc-status`, GrpcCode.Internal));
      } else if (grpcStatus !== "0") {
        const code = Number(grpcStatus);
        settle(
          new ConnectError(grpcMessage, code >= 1 && code <= 16 ? (code as GrpcCode) : GrpcCode.Unknown),
        );
      } else settle(undefined);
    });
    stream.once("close", () => {
      if (settled) return;
      settle(
        new ConnectError(
          `${method.name}: stream closed (HTTP/2 error code ${stream.rstCode})`,
          GrpcCode.Unavailable,
        ),
      );
    });
    stream.on("error", (error: Error) => {
      settle(new ConnectError(`${method.name}: ${error.message}`, GrpcCode.Unavailable));
    });
    stream.end(body);
  });
}

/**
 * Splits response DATA into gRPC messages. A message split over several chunks is joined once,
 * when its last byte has arrived; payloads are views into the received buffers.
 */
function createMessageReader(
  onMessage: (payload: Buffer, compressed: boolean) => void,
): (chunk: Buffer) => void {
  let chunks: Buffer[] = [];
  let buffered = 0;
  let length = -1;
  let compressed = false;
  const flatten = (): Buffer => {
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, buffered);
    chunks = [all];
    return all;
  };
  return (chunk) => {
    chunks.push(chunk);
    buffered += chunk.byteLength;
    for (;;) {
      if (length < 0) {
        if (buffered < GRPC_PREFIX_BYTES) return;
        const head = flatten();
        compressed = head[0] === 1;
        length = head.readUInt32BE(1);
      }
      if (buffered < GRPC_PREFIX_BYTES + length) return;
      const all = flatten();
      const end = GRPC_PREFIX_BYTES + length;
      const rest = all.subarray(end);
      chunks = rest.byteLength > 0 ? [rest] : [];
      buffered = rest.byteLength;
      length = -1;
      onMessage(all.subarray(GRPC_PREFIX_BYTES, end), compressed);
    }
  };
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

/** gRPC's mapping of HTTP statuses when a response is not gRPC. */
function httpStatusCode(status: number | undefined): GrpcCode {
  switch (status) {
    case 400:
      return GrpcCode.Internal;
    case 401:
      return GrpcCode.Unauthenticated;
    case 403:
      return GrpcCode.PermissionDenied;
    case 404:
      return GrpcCode.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.Unavailable;
    default:
      return GrpcCode.Unknown;
  }
}

function splitEndpoint(endpoint: string): [string, string] {
  const i = endpoint.lastIndexOf(":");
  let host = endpoint.slice(0, i);
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return [host, endpoint.slice(i + 1)];
}

function addressScheme(host: string): AddressScheme {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) return AddressScheme.IPv4;
  if (host.includes(":")) return AddressScheme.IPv6;
  return AddressScheme.DOMAIN_NAME;
}

function userAgent() {
  return {
    language: Language.NODE_JS,
    version: BENCH_CLIENT_VERSION,
    platform: process.platform,
    hostname: hostname(),
  };
}

function accessPoint(client: BenchClient) {
  const [host = "", port = "0"] = splitEndpoint(client.endpoint);
  return { scheme: addressScheme(host), addresses: [{ host, port: Number(port) }] };
}

/** The Settings a producer of `topics` sends on Telemetry (as the SDKs do). */
export function producerSettings(
  client: BenchClient,
  topics: string[],
): MessageInitShape<typeof SettingsSchema> {
  return {
    clientType: ClientType.PRODUCER,
    accessPoint: accessPoint(client),
    requestTimeout: { seconds: BigInt(DEFAULT_BENCH_RPC_TIMEOUT_MS / SECOND) },
    pubSub: {
      case: "publishing",
      value: { topics: topics.map((name) => ({ name })), validateMessageType: true },
    },
    userAgent: userAgent(),
  };
}

/** The Settings a SimpleConsumer of `group` subscribed to `topic` (all tags) sends on Telemetry. */
export function simpleConsumerSettings(
  client: BenchClient,
  group: string,
  topic: string,
  longPollingMs: number,
): MessageInitShape<typeof SettingsSchema> {
  return {
    clientType: ClientType.SIMPLE_CONSUMER,
    accessPoint: accessPoint(client),
    requestTimeout: { seconds: BigInt(DEFAULT_BENCH_RPC_TIMEOUT_MS / SECOND) },
    pubSub: {
      case: "subscription",
      value: {
        group: { name: group },
        subscriptions: [{ topic: { name: topic }, expression: { type: FilterType.TAG, expression: "*" } }],
        longPollingTimeout: durationOf(longPollingMs),
      },
    },
    userAgent: userAgent(),
  };
}

export function durationOf(ms: number): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(Math.floor(ms / SECOND)), nanos: (ms % SECOND) * 1_000_000 };
}

/**
 * Message ids in the SDKs' 34-hex-char layout (cli:docs/message_id.md): version 01, a 6-byte host
 * id (random per generator), 2-byte pid, 4-byte seconds since 2021-01-01Z, 4-byte sequence.
 */
export function createMessageIdGenerator(): () => string {
  const EPOCH_2021_MS = Date.UTC(2021, 0, 1);
  const hostId = Array.from({ length: 6 }, () => hex(Math.floor(Math.random() * 256), 2)).join("");
  const fixed = `01${hostId}${hex(process.pid % 0xffff, 4)}`;
  let seq = 0;
  let prefix = "";
  const refresh = () => {
    prefix = fixed + hex(Math.floor((Date.now() - EPOCH_2021_MS) / SECOND) >>> 0, 8);
  };
  refresh();
  return () => {
    if (seq > 0xffffffff) {
      seq = 0;
      refresh();
    }
    return prefix + hex(seq++, 8);
  };
}

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, "0");
}

/**
 * `count` NORMAL messages of one topic that share one body view and are sent again and again:
 * stamp() gives each a fresh message id and born timestamp before the next send, so a sender
 * builds its protobuf messages once instead of once per send.
 */
export interface SendBatch {
  readonly messages: Message[];
  stamp(nowMs: number): void;
}

export function createSendBatch(
  topic: string,
  count: number,
  body: Uint8Array,
  nextId: () => string,
): SendBatch {
  const bornHost = hostname();
  const messages = Array.from({ length: count }, () =>
    create(MessageSchema, {
      topic: { name: topic },
      body,
      systemProperties: {
        messageId: "",
        messageType: MessageType.NORMAL,
        bodyEncoding: Encoding.IDENTITY,
        bornHost,
        bornTimestamp: timestampFromMs(0),
      },
    }),
  );
  return {
    messages,
    stamp(nowMs) {
      const seconds = BigInt(Math.floor(nowMs / SECOND));
      const nanos = (nowMs % SECOND) * 1_000_000;
      for (const m of messages) {
        const sp = m.systemProperties;
        if (sp === undefined) continue;
        sp.messageId = nextId();
        if (sp.bornTimestamp !== undefined) {
          sp.bornTimestamp.seconds = seconds;
          sp.bornTimestamp.nanos = nanos;
        }
      }
    },
  };
}
