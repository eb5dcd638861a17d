// A lean apache.rocketmq.v2.MessagingService client for load generation (`rmq bench`): gRPC over
// plaintext HTTP/2 (h2c), no SDK logic (no retries, no route refresh, no heartbeats). It does what a
// RocketMQ 5 client does on the wire and nothing more:
//
//   const client = createBenchClient({ endpoint: "127.0.0.1:8081", connections: 2 });
//   const queues = await client.queryRoute("TopicTest");
//   const session = await client.openTelemetry(producerSettings(client, ["TopicTest"]));
//   const batch = createSendBatch("TopicTest", 16, body, createMessageIdGenerator());
//   const res = await client.sendMessage(batch.encode(Date.now()), 0);   // on connection 0
//   ...
//   await session.close();
//   client.close();
//
// QueryRoute and Telemetry (start-up only) go through connect's generated client. The hot calls
// (SendMessage, ReceiveMessage, AckMessage) are plain node:http2 streams on connections of their own
// (as the raw probes of http2-raw.ts use them), framed by hand, with requests and responses encoded
// and decoded by grpc-client-wire.ts; see callGrpc below. Every call carries the x-mq-* metadata the
// proxy reads (x-mq-client-id is mandatory). Calls are spread over `connections` HTTP/2 connections
// by the caller's connection index. Business errors arrive as Status in the response body
// (protocol.md §1); only transport failures reject (with connect's ConnectError and the gRPC code).

import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect as connectHttp2,
  constants as http2Constants,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
} from "node:http2";
import { hostname } from "node:os";
import {
  create,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { type Client, ConnectError, createClient, Code as GrpcCode } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import {
  AddressScheme,
  ClientType,
  Code,
  FilterType,
  Language,
  type MessageQueue,
  type Settings,
  type SettingsSchema,
  type Status,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  MessagingService,
  ReceiveMessageRequestSchema,
  type TelemetryCommand,
  TelemetryCommandSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import {
  type AckEntry,
  type BatchResponse,
  decodeBatchResponse,
  decodeReceiveMessageResponse,
  encodeAckMessageRequest,
  encodeSendMessageRequest,
  GRPC_PREFIX_BYTES,
  type ReceivedMessage,
  type WireStatus,
} from "./grpc-client-wire.ts";

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
  status: WireStatus | undefined;
  messages: ReceivedMessage[];
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
  /** One SendMessage; `request` is the frame of a SendBatch (encode()). */
  sendMessage(request: Buffer, connection: number): Promise<BatchResponse>;
  /**
   * One ReceiveMessage (`request` from receiveRequestFrame, reusable); the whole stream is read
   * before this resolves.
   */
  receiveMessage(
    request: Buffer,
    connection: number,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<ReceiveResult>;
  /** One AckMessage with all `entries`. */
  ackMessage(
    group: string,
    topic: string,
    entries: readonly AckEntry[],
    connection: number,
  ): Promise<BatchResponse>;
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
  const sessionManager = new Http2SessionManager(baseUrl, {}, { settings: BENCH_HTTP2_CLIENT_SETTINGS });
  const first: Client<typeof MessagingService> = createClient(
    MessagingService,
    createGrpcTransport({ baseUrl, sessionManager }),
  );
  const sessions = createSessionPool(baseUrl, connections);
  const deadlines = createDeadlineSweeper();
  const path = (name: string) => `/${MessagingService.typeName}/${name}`;
  const authority = options.endpoint;
  const sendHeaders = grpcRequestHeaders(
    authority,
    path(MessagingService.method.sendMessage.name),
    metadata,
    timeoutMs,
  );
  const ackHeaders = grpcRequestHeaders(
    authority,
    path(MessagingService.method.ackMessage.name),
    metadata,
    timeoutMs,
  );
  const receivePath = path(MessagingService.method.receiveMessage.name);
  const receiveHeaders = new Map<number, OutgoingRequestHeaders>();
  const [host = "", port = "0"] = splitEndpoint(options.endpoint);

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

    async sendMessage(request, connection) {
      const responses: Buffer[] = [];
      await callGrpc(
        sessions.get(connection),
        deadlines,
        "SendMessage",
        sendHeaders,
        request,
        timeoutMs,
        undefined,
        (m) => responses.push(m),
      );
      return decodeBatchResponse(singleResponse(responses, "SendMessage"), SEND_RESULT_ENTRY_STATUS_FIELD);
    },

    async receiveMessage(request, connection, o) {
      let headers = receiveHeaders.get(o.timeoutMs);
      if (headers === undefined) {
        headers = grpcRequestHeaders(authority, receivePath, metadata, o.timeoutMs);
        receiveHeaders.set(o.timeoutMs, headers);
      }
      const out: ReceiveResult = { status: undefined, messages: [] };
      await callGrpc(
        sessions.get(connection),
        deadlines,
        "ReceiveMessage",
        headers,
        request,
        o.timeoutMs,
        o.signal,
        (payload) => {
          const response = decodeReceiveMessageResponse(payload);
          if (response.kind === "message") out.messages.push(response.message);
          else if (response.kind === "status") out.status = response.status;
        },
      );
      return out;
    },

    async ackMessage(group, topic, entries, connection) {
      const responses: Buffer[] = [];
      await callGrpc(
        sessions.get(connection),
        deadlines,
        "AckMessage",
        ackHeaders,
        encodeAckMessageRequest(group, topic, entries),
        timeoutMs,
        undefined,
        (m) => responses.push(m),
      );
      return decodeBatchResponse(singleResponse(responses, "AckMessage"), ACK_RESULT_ENTRY_STATUS_FIELD);
    },

    close() {
      sessionManager.abort();
      sessions.close();
      deadlines.close();
    },
  };
}

/** The Status field of SendResultEntry and of AckMessageResultEntry. */
const SEND_RESULT_ENTRY_STATUS_FIELD = 1;
const ACK_RESULT_ENTRY_STATUS_FIELD = 3;

/** The gRPC frame of a request built with protobuf-es (for requests sent many times, built once). */
export function grpcFrameOf<T extends DescMessage>(schema: T, message: MessageShape<T>): Buffer {
  const payload = toBinary(schema, message);
  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(payload.byteLength, 1);
  frame.set(payload, GRPC_PREFIX_BYTES);
  return frame;
}

/** The frame of a ReceiveMessageRequest, to pass to receiveMessage again and again. */
export function receiveRequestFrame(request: MessageInitShape<typeof ReceiveMessageRequestSchema>): Buffer {
  return grpcFrameOf(ReceiveMessageRequestSchema, create(ReceiveMessageRequestSchema, request));
}

// ---- The hot path: one gRPC call on one HTTP/2 stream, by hand ----
//
// A generic gRPC client (connect's call machinery: async iterables, linked abort controllers,
// fetch-style Headers per call; protobuf-es encoding and decoding) costs several times the CPU of
// the HTTP/2 request itself, which on a 2-core box shared with the proxy is what the benchmark
// would end up measuring. Send, receive and ack therefore open a stream on a plain node:http2
// connection and do the gRPC framing themselves: one length-prefixed request message, response
// messages split off the data as it arrives, grpc-status from the trailers (or from trailers-only
// headers). Deadlines are enforced by one sweeping timer per client instead of a timer per call
// (grpc-timeout also tells the proxy). Failures reject with connect's ConnectError and the gRPC
// code, like connect's own calls.

/**
 * Request headers as node:http2's raw array (name, value, name, value, ...), every pseudo-header
 * included: node then neither copies them into an object nor fills in defaults per request.
 */
type OutgoingRequestHeaders = string[];

function grpcRequestHeaders(
  authority: string,
  path: string,
  metadata: Record<string, string>,
  timeoutMs: number,
): OutgoingRequestHeaders {
  const headers: Record<string, string> = {
    ":method": "POST",
    ":scheme": "http",
    ":authority": authority,
    ":path": path,
    "content-type": "application/grpc+proto",
    te: "trailers",
    "user-agent": BENCH_CLIENT_VERSION,
    // gRPC allows at most 8 digits per unit
    "grpc-timeout": `${Math.min(Math.max(1, Math.ceil(timeoutMs)), 99_999_999)}m`,
    ...metadata,
  };
  return Object.entries(headers).flat();
}

function singleResponse(responses: Buffer[], method: string): Buffer {
  const [response] = responses;
  if (response === undefined || responses.length !== 1) {
    throw new ConnectError(
      `${method}: expected one response message, got ${responses.length}`,
      GrpcCode.Internal,
    );
  }
  return response;
}

/** One plain HTTP/2 connection per index, opened on first use and again after it closed. */
interface SessionPool {
  get(index: number): ClientHttp2Session;
  close(): void;
}

function createSessionPool(baseUrl: string, size: number): SessionPool {
  const sessions: Array<ClientHttp2Session | undefined> = new Array(size);
  let closed = false;
  return {
    get(index) {
      const i = index % size;
      const current = sessions[i];
      if (current !== undefined && !current.closed && !current.destroyed) return current;
      if (closed) throw new ConnectError("the benchmark client is closed", GrpcCode.Canceled);
      const session = connectHttp2(baseUrl, { settings: BENCH_HTTP2_CLIENT_SETTINGS });
      // Failures surface on the streams; a session error must not crash the process.
      session.on("error", ignore);
      session.unref();
      sessions[i] = session;
      return session;
    },
    close() {
      closed = true;
      for (const s of sessions) s?.destroy();
    },
  };
}

/** Fails calls whose deadline passed: one timer per client, not one per call. */
interface DeadlineSweeper {
  add(call: PendingCall): void;
  delete(call: PendingCall): void;
  close(): void;
}

interface PendingCall {
  readonly deadline: number;
  expire(): void;
}

/** How often the sweeper looks for calls past their deadline. */
const DEADLINE_SWEEP_MS = 50;

function createDeadlineSweeper(): DeadlineSweeper {
  const pending = new Set<PendingCall>();
  let timer: NodeJS.Timeout | undefined;
  const sweep = () => {
    const now = performance.now();
    for (const call of pending) if (call.deadline <= now) call.expire();
    if (pending.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
  return {
    add(call) {
      pending.add(call);
      timer ??= setInterval(sweep, DEADLINE_SWEEP_MS);
    },
    delete(call) {
      pending.delete(call);
    },
    close() {
      for (const call of [...pending]) call.expire();
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}

function ignore(): void {}

/**
 * One call: send the request frame, hand every response message (payload, no prefix) to
 * `onMessage` until the server ends the stream with grpc-status 0. `timeoutMs` is sent as
 * grpc-timeout and enforced here too; `signal` cancels.
 */
function callGrpc(
  session: ClientHttp2Session,
  deadlines: DeadlineSweeper,
  method: string,
  headers: OutgoingRequestHeaders,
  request: Buffer,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  onMessage: (payload: Buffer) => void,
): Promise<void> {
  if (signal?.aborted === true) {
    return Promise.reject(new ConnectError(`${method} canceled`, GrpcCode.Canceled));
  }
  let stream: ClientHttp2Stream;
  try {
    stream = session.request(headers);
  } catch (error) {
    return Promise.reject(new ConnectError(`${method}: ${String(error)}`, GrpcCode.Unavailable));
  }
  const { promise, resolve, reject } = Promise.withResolvers<void>();
  const call = new ClientCall(stream, deadlines, method, timeoutMs, signal, onMessage, resolve, reject);
  (stream as CallStream)[CALL] = call;
  deadlines.add(call);
  if (signal !== undefined) {
    call.onAbort = () => call.settle(new ConnectError(`${method} canceled`, GrpcCode.Canceled));
    signal.addEventListener("abort", call.onAbort);
  }
  // Shared listeners that find their call on the stream: no closures per call; "response",
  // "trailers", "end" and "close" come once, so `on` does without once's wrapper.
  stream.on("response", onStreamResponse);
  stream.on("trailers", onStreamTrailers);
  stream.on("data", onStreamData);
  stream.on("end", onStreamEnd);
  stream.on("close", onStreamClose);
  stream.on("error", onStreamError);
  stream.end(request);
  return promise;
}

/** State of one call in flight; also the reader splitting its response DATA into gRPC messages. */
class ClientCall implements PendingCall {
  readonly stream: ClientHttp2Stream;
  readonly deadlines: DeadlineSweeper;
  readonly method: string;
  readonly timeoutMs: number;
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  readonly onMessage: (payload: Buffer) => void;
  readonly resolve: () => void;
  readonly reject: (error: ConnectError) => void;
  onAbort: (() => void) | undefined = undefined;
  grpcStatus: string | undefined = undefined;
  grpcMessage = "";
  settled = false;
  /** Received bytes not yet split into messages (views into the received chunks). */
  chunks: Buffer[] = [];
  buffered = 0;
  /** Length of the message being read once its prefix is in; -1 before. */
  length = -1;

  constructor(
    stream: ClientHttp2Stream,
    deadlines: DeadlineSweeper,
    method: string,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    onMessage: (payload: Buffer) => void,
    resolve: () => void,
    reject: (error: ConnectError) => void,
  ) {
    this.stream = stream;
    this.deadlines = deadlines;
    this.method = method;
    this.timeoutMs = timeoutMs;
    this.deadline = performance.now() + timeoutMs;
    this.signal = signal;
    this.onMessage = onMessage;
    this.resolve = resolve;
    this.reject = reject;
  }

  expire(): void {
    this.settle(
      new ConnectError(
        `${this.method}: deadline of ${this.timeoutMs} ms exceeded`,
        GrpcCode.DeadlineExceeded,
      ),
    );
  }

  settle(error: ConnectError | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.deadlines.delete(this);
    if (this.onAbort !== undefined) this.signal?.removeEventListener("abort", this.onAbort);
    if (error !== undefined) {
      if (!this.stream.closed) this.stream.close(http2Constants.NGHTTP2_CANCEL);
      this.reject(error);
    } else this.resolve();
  }

  takeStatus(h: IncomingHttpHeaders): void {
    const status = h["grpc-status"];
    if (status !== undefined) {
      this.grpcStatus = String(status);
      this.grpcMessage = decodeGrpcMessage(h["grpc-message"]);
    }
  }

  /** A message split over several chunks is joined once, when its last byte has arrived. */
  read(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    for (;;) {
      if (this.length < 0) {
        if (this.buffered < GRPC_PREFIX_BYTES) return;
        const head = this.flatten();
        if (head[0] !== 0) {
          this.settle(
            new ConnectError(`${this.method}: compressed response without negotiation`, GrpcCode.Internal),
          );
          return;
        }
        this.length = head.readUInt32BE(1);
      }
      if (this.buffered < GRPC_PREFIX_BYTES + this.length) return;
      const all = this.flatten();
      const end = GRPC_PREFIX_BYTES + this.length;
      const rest = all.subarray(end);
      this.chunks = rest.byteLength > 0 ? [rest] : [];
      this.buffered = rest.byteLength;
      this.length = -1;
      try {
        this.onMessage(all.subarray(GRPC_PREFIX_BYTES, end));
      } catch (error) {
        this.settle(
          new ConnectError(`${this.method}: undecodable response: ${String(error)}`, GrpcCode.Internal),
        );
        return;
      }
    }
  }

  private flatten(): Buffer {
    const chunks = this.chunks;
    const all = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}

/** The call a stream carries, for the shared listeners. */
const CALL = Symbol("benchCall");
type CallStream = ClientHttp2Stream & { [CALL]: ClientCall };

function callOf(stream: ClientHttp2Stream): ClientCall {
  return (stream as CallStream)[CALL];
}

function onStreamResponse(this: ClientHttp2Stream, h: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
  const call = callOf(this);
  const httpStatus = h[":status"];
  if (httpStatus !== 200) {
    call.settle(new ConnectError(`${call.method}: HTTP status ${httpStatus}`, httpStatusCode(httpStatus)));
    return;
  }
  call.takeStatus(h); // trailers-only response
}

function onStreamTrailers(this: ClientHttp2Stream, h: IncomingHttpHeaders): void {
  callOf(this).takeStatus(h);
}

function onStreamData(this: ClientHttp2Stream, chunk: Buffer): void {
  const call = callOf(this);
  if (!call.settled) call.read(chunk);
}

function onStreamEnd(this: ClientHttp2Stream): void {
  const call = callOf(this);
  const status = call.grpcStatus;
  if (status === undefined) {
    call.settle(new ConnectError(`${call.method}: stream ended without grpc-status`, GrpcCode.Internal));
  } else if (status !== "0") {
    const code = Number(status);
    call.settle(
      new ConnectError(call.grpcMessage, code >= 1 && code <= 16 ? (code as GrpcCode) : GrpcCode.Unknown),
    );
  } else call.settle(undefined);
}

function onStreamClose(this: ClientHttp2Stream): void {
  const call = callOf(this);
  if (call.settled) return;
  call.settle(
    new ConnectError(
      `${call.method}: stream closed (HTTP/2 error code ${this.rstCode})`,
      GrpcCode.Unavailable,
    ),
  );
}

function onStreamError(this: ClientHttp2Stream, error: Error): void {
  const call = callOf(this);
  call.settle(new ConnectError(`${call.method}: ${error.message}`, GrpcCode.Unavailable));
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
    const n = seq++;
    return (
      prefix +
      (HEX_BYTES[n >>> 24] as string) +
      (HEX_BYTES[(n >>> 16) & 0xff] as string) +
      (HEX_BYTES[(n >>> 8) & 0xff] as string) +
      (HEX_BYTES[n & 0xff] as string)
    );
  };
}

/** "00" .. "FF": the sequence part of each id without number formatting per message. */
const HEX_BYTES: readonly string[] = Array.from({ length: 256 }, (_, i) => hex(i, 2));

function hex(value: number, width: number): string {
  return value.toString(16).toUpperCase().padStart(width, "0");
}

/**
 * `count` NORMAL messages of one topic that share one body: encode() writes the SendMessageRequest
 * frame with a fresh message id per message and the given born timestamp, for the next send.
 */
export interface SendBatch {
  readonly count: number;
  encode(nowMs: number): Buffer;
}

export function createSendBatch(
  topic: string,
  count: number,
  body: Uint8Array,
  nextId: () => string,
): SendBatch {
  const template = { topic, body, bornHost: hostname(), count };
  return {
    count,
    encode: (nowMs) => encodeSendMessageRequest(template, nowMs, nextId),
  };
}
