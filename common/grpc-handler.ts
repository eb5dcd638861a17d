// Lean gRPC serving on node:http2 streams: the unary and server-streaming calls our servers answer
// most (the proxy's SendMessage, AckMessage, ChangeInvisibleDuration, Heartbeat, ReceiveMessage ...;
// every unary internal RPC) are framed here, directly on the `stream` event of a node:http2 server;
// everything else (bidi streams, compressed or JSON requests, client streaming) goes to a fallback,
// the @connectrpc/connect-node handler of the same server (see `fallbackToNodeHandler`).
//
//   const onStream = createGrpcStreamHandler({
//     methods: new Map([unaryMethod(Service.method.foo, async (req, call) => ({ ... }))]),
//     readMaxBytes: 16 * 1024 * 1024,
//     fallback: { paths: new Set(["/pkg.Service/Chat"]), handle: fallbackToNodeHandler(connectHandler) },
//     shutdownSignal,
//   });
//   http2.createServer(settings).on("stream", onStream);   // no "request" listener
//
// A unary method may bring hand-written codecs (unaryMethod's `codec`: decode the request, encode
// the response frame) for its hot path; protobuf-es is used whenever they decline.
//
// Why not connect-node for these (DESIGN.md §4 chose it for servers): its handler runs every call
// through generic async-iterable pipelines, fetch Headers, URL parsing and three AbortControllers, and
// aborts each call's signal when it ends (a DOMException with a stack per call); no option of
// connectNodeAdapter avoids that, and it was ~90 % of a call's CPU. Measured on this 2-core box
// (shared with other work, load average 2-5 during the runs), server CPU per call, 64 calls in flight
// on one connection from a hand-framed node:http2 load generator in another process, three rounds
// each, before (connect-node) → after (this file):
//
//   empty internal unary (common/rpc-server.ts)         730-860 µs → 90-130 µs
//   proxy Heartbeat (in-memory backend)                 935-965 µs → 110-150 µs
//   proxy SendMessage, 1 × 1 KiB (in-memory backend)   915-1100 µs → 105-270 µs
//   proxy ReceiveMessage, 32 × 1 KiB, 8 in flight     3700-5100 µs → 820-1380 µs (with
//                                                       proxy/message-wire-encoder.ts)
//   bare node:http2 unary echo, same load generator         75-110 µs
//   empty internal unary, client + server (one process) 1160-1980 µs → 155-275 µs (rpc-client.ts)
//
// The project's own benchmarks, before → after (same box, runs interleaved):
// - `node bench/proxy.ts --duration 3 --raw-duration 2`: `rmq local` CPU per SendMessage of one
//   message 770-1080 µs → 165-200 µs; per consumed message (receive 32 + ack) 205-260 µs → 125-145
//   µs (now mostly the broker's pop/ack); SendMessage 460-1130 → 1870-3070 rpc/s. The printed ratio
//   to the raw unary ceiling went from 15-17 % to 23-75 %, but that ceiling itself swung between 2500
//   and 12700 rps with the other load on the box, so CPU per message is the figure to compare.
// - `node bench/controller.ts`: the empty-RPC ceiling 710-1350 → 1700-8400 calls/s (3700-8400 at
//   16 or more in flight); committed controller writes at 256 in flight 890-1280 → 3350-4260/s.
//
// What a call gets, following the gRPC over HTTP/2 protocol:
// - request: POST, content-type application/grpc or application/grpc+proto, one length-prefixed
//   message (unary and server streaming); a message over `readMaxBytes` is refused with
//   RESOURCE_EXHAUSTED before it is read; a set compressed flag is INTERNAL (no grpc-encoding is
//   negotiated on this path: requests with one go to the fallback); grpc-timeout starts a deadline
//   that ends the call with DEADLINE_EXCEEDED and aborts its signal;
// - response: 200 + content-type, the message(s), trailers with grpc-status (and grpc-message);
//   an error before any message is a trailers-only response;
// - an unknown path is UNIMPLEMENTED; the client resetting the stream aborts the call's signal and
//   stops a server stream (its iterator's return() runs, so `finally` blocks run).

import {
  Http2ServerRequest,
  Http2ServerResponse,
  constants as http2Constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import {
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  fromBinary,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

/** Bytes of the gRPC message prefix: compressed flag + 4-byte big-endian length. */
export const GRPC_PREFIX_BYTES = 5;
/** grpc-timeout allows at most 8 digits. */
const GRPC_TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};
/** Metadata names we pass on: lower-case HTTP tokens, no pseudo-headers. */
const METADATA_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
/** Characters no HTTP/2 header value may hold. */
const METADATA_VALUE_FORBIDDEN = /[\0\r\n]/;
/** setTimeout's largest delay; longer deadlines are not enforced by a timer here. */
const MAX_TIMER_MS = 0x7fff_ffff;

const RESPONSE_HEADERS: OutgoingHttpHeaders = Object.freeze({
  ":status": 200,
  "content-type": "application/grpc",
});
const RESPOND_WITH_TRAILERS = Object.freeze({ waitForTrailers: true, sendDate: false });
const RESPOND_AND_END = Object.freeze({ endStream: true, sendDate: false });
const OK_TRAILERS: OutgoingHttpHeaders = Object.freeze({ "grpc-status": "0" });

/** One call as a handler sees it. */
export interface GrpcCall {
  /** "/package.Service/Method". */
  readonly path: string;
  readonly stream: ServerHttp2Stream;
  /** Request headers as node:http2 delivers them (lower-case names). */
  readonly headers: IncomingHttpHeaders;
  /** The client's grpc-timeout in ms; undefined without one. */
  readonly timeoutMs: number | undefined;
  /** Milliseconds left until the deadline; Infinity without one. */
  remainingMs(): number;
  /**
   * Aborted when the call ends before its handler: the client cancelled or went away, the deadline
   * passed, or the server is shutting down (the call may then still answer). Created on first use.
   */
  readonly signal: AbortSignal;
  /** Extra response headers (lower-case ASCII names), sent with the first message; set before it. */
  responseHeaders: Record<string, string> | undefined;
  /** Extra trailers sent with a successful status. */
  responseTrailers: Record<string, string> | undefined;
}

export interface GrpcUnaryMethod<I extends DescMessage = DescMessage, O extends DescMessage = DescMessage> {
  readonly kind: "unary";
  readonly input: I;
  readonly output: O;
  handle(request: MessageShape<I>, call: GrpcCall): MessageShape<O> | Promise<MessageShape<O>>;
  /** Optional hand-written codecs of a hot method (see UnaryCodec). */
  readonly codec?: UnaryCodec<I, O>;
}

/**
 * Faster equivalents of fromBinary/toBinary for one method. Each may decline (undefined), and the
 * call then goes through protobuf-es as usual; what they return must be exactly what protobuf-es
 * would have produced.
 */
export interface UnaryCodec<I extends DescMessage, O extends DescMessage> {
  /** The request from its bytes (no prefix). */
  decode?(payload: Buffer): MessageShape<I> | undefined;
  /** The response's whole gRPC frame, prefix included. */
  encodeFrame?(response: MessageShape<O>): Buffer | undefined;
}

/**
 * A response message a server stream yields already in wire form: the 5-byte gRPC prefix and the
 * encoded message, exactly as it goes on the wire (for hot paths that encode faster than
 * protobuf-es; the bytes are written as they are).
 */
export class EncodedFrame {
  readonly frame: Uint8Array;
  constructor(frame: Uint8Array) {
    this.frame = frame;
  }
}

export interface GrpcServerStreamMethod<
  I extends DescMessage = DescMessage,
  O extends DescMessage = DescMessage,
> {
  readonly kind: "server_streaming";
  readonly input: I;
  readonly output: O;
  /** Each yielded message is written as it comes (awaiting the client when its window is full). */
  handle(request: MessageShape<I>, call: GrpcCall): AsyncIterable<MessageShape<O> | EncodedFrame>;
}

export type GrpcMethod = GrpcUnaryMethod | GrpcServerStreamMethod;

/** A gRPC status to answer with; `trailers` are extra metadata (lower-case ASCII names). */
export interface GrpcStatus {
  code: Code;
  message: string;
  trailers?: Readonly<Record<string, string>>;
}

export type NodeStreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

export interface GrpcStreamHandlerOptions {
  /** Calls served here, by path. */
  methods: ReadonlyMap<string, GrpcMethod>;
  /** Largest request message accepted; a bigger one is RESOURCE_EXHAUSTED. */
  readMaxBytes: number;
  /**
   * The gRPC status a handler's exception (or a server stream's failure) is answered with. Default:
   * a ConnectError's code, message and metadata; anything else is INTERNAL.
   */
  errorStatus?: (error: unknown, path: string) => GrpcStatus;
  /**
   * The rest of this server: requests for `paths`, and requests for `methods` this file does not
   * take (a grpc-encoding other than identity, another content type, not POST).
   */
  fallback?: { paths: ReadonlySet<string>; handle: NodeStreamHandler };
  /** Aborting it aborts the signal of every call in flight (long polls should then answer). */
  shutdownSignal?: AbortSignal;
}

/** "/package.Service/Method" of a generated method descriptor. */
export function grpcPath(method: {
  readonly name: string;
  readonly parent: { readonly typeName: string };
}): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function unaryMethod<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  handle: (request: MessageShape<I>, call: GrpcCall) => MessageShape<O> | Promise<MessageShape<O>>,
  codec?: UnaryCodec<I, O>,
): [string, GrpcUnaryMethod<I, O>] {
  return [grpcPath(method), { kind: "unary", input: method.input, output: method.output, handle, codec }];
}

export function serverStreamMethod<I extends DescMessage, O extends DescMessage>(
  method: DescMethodServerStreaming<I, O>,
  handle: (request: MessageShape<I>, call: GrpcCall) => AsyncIterable<MessageShape<O> | EncodedFrame>,
): [string, GrpcServerStreamMethod<I, O>] {
  return [grpcPath(method), { kind: "server_streaming", input: method.input, output: method.output, handle }];
}

/**
 * Hands a stream to a (req, res) handler such as connectNodeAdapter's, building the request and
 * response objects node:http2's compatibility API would have built for a "request" listener.
 */
export function fallbackToNodeHandler(
  handler: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
): NodeStreamHandler {
  return (stream, headers, _flags, rawHeaders) => {
    const req = new Http2ServerRequest(stream, headers, {}, rawHeaders);
    const res = new Http2ServerResponse(stream);
    handler(req, res);
  };
}

/**
 * The default errorStatus: ConnectErrors keep code, message and metadata; anything else is INTERNAL
 * "internal error" (as connect answers it: no internals leak to clients).
 */
export function connectErrorStatus(error: unknown): GrpcStatus {
  if (error instanceof ConnectError) {
    let trailers: Record<string, string> | undefined;
    error.metadata.forEach((value, key) => {
      trailers ??= {};
      trailers[key] = value;
    });
    return { code: error.code, message: error.rawMessage, trailers };
  }
  return { code: Code.Internal, message: "internal error" };
}

/** The "stream" listener serving `options.methods` (see the file header). */
export function createGrpcStreamHandler(options: GrpcStreamHandlerOptions): NodeStreamHandler {
  const ctx: HandlerShared = {
    readMaxBytes: options.readMaxBytes,
    errorStatus: options.errorStatus ?? connectErrorStatus,
    shutdownSignal: options.shutdownSignal,
    signalled: new Set(),
  };
  options.shutdownSignal?.addEventListener(
    "abort",
    () => {
      const reason = new ConnectError("server is shutting down", Code.Unavailable);
      for (const call of [...ctx.signalled]) call.abort(reason);
    },
    { once: true },
  );
  const { methods, fallback } = options;
  return (stream, headers, flags, rawHeaders) => {
    const path = headers[":path"] ?? "";
    const method = methods.get(path);
    if (method !== undefined && isLeanRequest(headers)) {
      serveCall(ctx, method, stream, headers, path);
      return;
    }
    if (fallback !== undefined && (method !== undefined || fallback.paths.has(path))) {
      fallback.handle(stream, headers, flags, rawHeaders);
      return;
    }
    stream.on("error", ignore);
    if (method === undefined) {
      answerEarly(stream, { code: Code.Unimplemented, message: `unknown method ${path}` });
    } else if (headers[":method"] !== "POST") {
      respondHttpStatus(stream, 405);
    } else if (!isGrpcProtoContentType(headers["content-type"])) {
      respondHttpStatus(stream, 415);
    } else {
      answerEarly(stream, {
        code: Code.Unimplemented,
        message: `grpc-encoding ${String(headers["grpc-encoding"])} is not supported`,
        trailers: { "grpc-accept-encoding": "identity" },
      });
    }
  };
}

interface HandlerShared {
  readMaxBytes: number;
  errorStatus: (error: unknown, path: string) => GrpcStatus;
  shutdownSignal: AbortSignal | undefined;
  /** Calls in flight whose signal was created, for the shutdown signal. */
  signalled: Set<ServerCall>;
}

function ignore(): void {}

function isLeanRequest(headers: IncomingHttpHeaders): boolean {
  if (headers[":method"] !== "POST") return false;
  if (!isGrpcProtoContentType(headers["content-type"])) return false;
  const encoding = headers["grpc-encoding"];
  return encoding === undefined || encoding === "identity";
}

function isGrpcProtoContentType(value: string | undefined): boolean {
  if (value === "application/grpc" || value === "application/grpc+proto") return true;
  return value !== undefined && /^application\/grpc(\+proto)?(;.*)?$/i.test(value);
}

/**
 * Per-call state. A class (not closures) so that the many calls in flight share one shape and the
 * listeners are the few arrow functions below.
 */
class ServerCall implements GrpcCall {
  readonly path: string;
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly timeoutMs: number | undefined;
  readonly shared: HandlerShared;
  readonly method: GrpcMethod;
  responseHeaders: Record<string, string> | undefined = undefined;
  responseTrailers: Record<string, string> | undefined = undefined;
  /** performance.now() of the deadline; Infinity without one. */
  deadline = Number.POSITIVE_INFINITY;
  timer: NodeJS.Timeout | undefined;
  controller: AbortController | undefined;
  /** The call has been answered (or the stream is gone): nothing more is written. */
  finished = false;
  /** Response headers are out. */
  responded = false;
  chunks: Buffer[] = [];
  received = 0;
  /** Length of the request message once its prefix is in; -1 before. */
  messageLength = -1;

  constructor(
    shared: HandlerShared,
    method: GrpcMethod,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    path: string,
    timeoutMs: number | undefined,
  ) {
    this.shared = shared;
    this.method = method;
    this.stream = stream;
    this.headers = headers;
    this.path = path;
    this.timeoutMs = timeoutMs;
  }

  remainingMs(): number {
    return this.deadline === Number.POSITIVE_INFINITY
      ? Number.POSITIVE_INFINITY
      : this.deadline - performance.now();
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.finished) {
        this.controller.abort(new ConnectError("call ended", Code.Canceled));
      } else if (this.shared.shutdownSignal?.aborted === true) {
        this.controller.abort(new ConnectError("server is shutting down", Code.Unavailable));
      } else {
        this.shared.signalled.add(this);
      }
    }
    return this.controller.signal;
  }

  abort(reason: ConnectError): void {
    this.shared.signalled.delete(this);
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** The call is over for this side: no timer, no signal registration. */
  finish(): void {
    this.finished = true;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.shared.signalled.delete(this);
  }
}

function serveCall(
  shared: HandlerShared,
  method: GrpcMethod,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  path: string,
): void {
  stream.on("error", ignore);
  const timeoutHeader = headers["grpc-timeout"];
  let timeoutMs: number | undefined;
  if (timeoutHeader !== undefined) {
    const m = typeof timeoutHeader === "string" ? GRPC_TIMEOUT.exec(timeoutHeader) : null;
    if (m === null) {
      answerEarly(stream, {
        code: Code.InvalidArgument,
        message: `protocol error: invalid grpc-timeout ${JSON.stringify(timeoutHeader)}`,
      });
      return;
    }
    timeoutMs = Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] ?? 1);
  }
  const call = new ServerCall(shared, method, stream, headers, path, timeoutMs);
  if (timeoutMs !== undefined) {
    call.deadline = performance.now() + timeoutMs;
    if (timeoutMs <= MAX_TIMER_MS) call.timer = setTimeout(onDeadline, timeoutMs, call);
  }
  // Shared listeners that find their call on the stream: no closures per call ("end" and "close"
  // come once, so `on` does without once's wrapper).
  (stream as CallStream)[CALL] = call;
  stream.on("data", onStreamData);
  stream.on("end", onStreamEnd);
  stream.on("close", onStreamClose);
}

/** The call a stream serves, for the shared listeners. */
const CALL = Symbol("grpcCall");
type CallStream = ServerHttp2Stream & { [CALL]: ServerCall };

function onStreamData(this: ServerHttp2Stream, chunk: Buffer): void {
  onData((this as CallStream)[CALL], chunk);
}

function onStreamEnd(this: ServerHttp2Stream): void {
  onEnd((this as CallStream)[CALL]);
}

function onStreamClose(this: ServerHttp2Stream): void {
  onClose((this as CallStream)[CALL]);
}

/** "wantTrailers" of a call answered OK. */
function sendOkTrailers(this: ServerHttp2Stream): void {
  sendTrailers(this, okTrailersOf((this as CallStream)[CALL]), OK_TRAILERS);
}

function onDeadline(call: ServerCall): void {
  call.timer = undefined;
  if (call.finished) return;
  const status = { code: Code.DeadlineExceeded, message: "the call's deadline passed" };
  call.abort(new ConnectError(status.message, Code.DeadlineExceeded));
  endWithStatus(call, status);
}

function onClose(call: ServerCall): void {
  if (call.finished) return;
  // The client reset the stream or the connection went away before the answer was complete.
  call.finish();
  call.abort(new ConnectError("the call was cancelled", Code.Canceled));
}

function onData(call: ServerCall, chunk: Buffer): void {
  if (call.finished) return;
  call.chunks.push(chunk);
  call.received += chunk.byteLength;
  if (call.messageLength < 0 && call.received >= GRPC_PREFIX_BYTES) {
    const head = call.chunks.length === 1 ? chunk : joinChunks(call);
    call.messageLength = head.readUInt32BE(1);
    if (call.messageLength > call.shared.readMaxBytes) {
      endWithStatus(call, {
        code: Code.ResourceExhausted,
        message: `message size ${call.messageLength} is larger than the limit of ${call.shared.readMaxBytes} bytes`,
      });
      return;
    }
  }
  if (call.messageLength >= 0 && call.received > GRPC_PREFIX_BYTES + call.messageLength) {
    endWithStatus(call, { code: Code.Internal, message: "protocol error: more than one request message" });
  }
}

function joinChunks(call: ServerCall): Buffer {
  const all = Buffer.concat(call.chunks, call.received);
  call.chunks = [all];
  return all;
}

function onEnd(call: ServerCall): void {
  if (call.finished) return;
  if (call.received === 0) {
    endWithStatus(call, { code: Code.Internal, message: "protocol error: missing request message" });
    return;
  }
  const all = call.chunks.length === 1 ? (call.chunks[0] as Buffer) : joinChunks(call);
  call.chunks = [];
  if (call.messageLength < 0 || all.byteLength < GRPC_PREFIX_BYTES + call.messageLength) {
    endWithStatus(call, { code: Code.Internal, message: "protocol error: incomplete request message" });
    return;
  }
  if (all[0] !== 0) {
    endWithStatus(call, {
      code: Code.Internal,
      message: "protocol error: compressed request message without grpc-encoding",
    });
    return;
  }
  let request: MessageShape<DescMessage>;
  try {
    const payload = all.subarray(GRPC_PREFIX_BYTES, GRPC_PREFIX_BYTES + call.messageLength);
    const decode = call.method.kind === "unary" ? call.method.codec?.decode : undefined;
    request = decode?.(payload) ?? fromBinary(call.method.input, payload);
  } catch (error) {
    endWithStatus(call, {
      code: Code.InvalidArgument,
      message: `cannot parse ${call.method.input.typeName}: ${error instanceof Error ? error.message : String(error)}`,
    });
    return;
  }
  if (call.method.kind === "unary") runUnary(call, call.method, request);
  else runServerStream(call, call.method, request).catch(() => resetStream(call.stream));
}

function runUnary(call: ServerCall, method: GrpcUnaryMethod, request: MessageShape<DescMessage>): void {
  let result: MessageShape<DescMessage> | Promise<MessageShape<DescMessage>>;
  try {
    result = method.handle(request, call);
  } catch (error) {
    endWithStatus(call, call.shared.errorStatus(error, call.path));
    return;
  }
  if (result instanceof Promise) {
    result
      .then(
        (response) => answerUnary(call, method, response),
        (error: unknown) => endWithStatus(call, call.shared.errorStatus(error, call.path)),
      )
      .catch(() => resetStream(call.stream));
  } else {
    answerUnary(call, method, result);
  }
}

function answerUnary(call: ServerCall, method: GrpcUnaryMethod, response: MessageShape<DescMessage>): void {
  if (call.finished) return;
  let frame: Buffer;
  try {
    frame = method.codec?.encodeFrame?.(response) ?? encodeFrame(method.output, response);
  } catch (error) {
    endWithStatus(call, call.shared.errorStatus(error, call.path));
    return;
  }
  const stream = call.stream;
  call.finish();
  if (stream.destroyed || stream.closed) return;
  if (!respond(stream, responseHeadersOf(call), RESPONSE_HEADERS, RESPOND_WITH_TRAILERS)) return;
  stream.on("wantTrailers", sendOkTrailers);
  stream.end(frame);
}

async function runServerStream(
  call: ServerCall,
  method: GrpcServerStreamMethod,
  request: MessageShape<DescMessage>,
): Promise<void> {
  const stream = call.stream;
  let iterator: AsyncIterator<MessageShape<DescMessage> | EncodedFrame> | undefined;
  let exhausted = false;
  try {
    iterator = method.handle(request, call)[Symbol.asyncIterator]();
    for (;;) {
      const next = await iterator.next();
      if (next.done === true) {
        exhausted = true;
        break;
      }
      if (call.finished || stream.destroyed) break;
      const value = next.value;
      const frame = value instanceof EncodedFrame ? value.frame : encodeFrame(method.output, value);
      if (!call.responded) {
        call.responded = true;
        if (!respond(stream, responseHeadersOf(call), RESPONSE_HEADERS, RESPOND_WITH_TRAILERS)) break;
      }
      if (!stream.write(frame)) await drained(stream);
    }
  } catch (error) {
    endWithStatus(call, call.shared.errorStatus(error, call.path));
    return;
  } finally {
    // Ended early (client gone, deadline, a failed write): let the handler clean up.
    if (!exhausted) void iterator?.return?.()?.catch(ignore);
  }
  if (call.finished) return;
  call.finish();
  if (stream.destroyed || stream.closed) return;
  if (!call.responded) {
    call.responded = true;
    if (!respond(stream, responseHeadersOf(call), RESPONSE_HEADERS, RESPOND_WITH_TRAILERS)) return;
  }
  stream.on("wantTrailers", sendOkTrailers);
  stream.end();
}

function responseHeadersOf(call: ServerCall): OutgoingHttpHeaders {
  if (call.responseHeaders === undefined) return RESPONSE_HEADERS;
  return { ...copyValidMetadata(call.responseHeaders, {}), ...RESPONSE_HEADERS };
}

function okTrailersOf(call: ServerCall): OutgoingHttpHeaders {
  if (call.responseTrailers === undefined) return OK_TRAILERS;
  return { ...copyValidMetadata(call.responseTrailers, {}), ...OK_TRAILERS };
}

/**
 * Copies the metadata entries HTTP/2 can carry (a lower-case token name, a value without control
 * characters); nghttp2 would otherwise reset the whole stream for one bad entry.
 */
function copyValidMetadata(
  from: Readonly<Record<string, string>>,
  to: OutgoingHttpHeaders,
): OutgoingHttpHeaders {
  for (const [key, value] of Object.entries(from)) {
    if (METADATA_NAME.test(key) && !METADATA_VALUE_FORBIDDEN.test(value)) to[key] = value;
  }
  return to;
}

/** Resolves when `stream` can take more data, or is gone. */
function drained(stream: ServerHttp2Stream): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}

function encodeFrame(schema: DescMessage, message: MessageShape<DescMessage>): Buffer {
  const payload = toBinary(schema, message);
  const frame = Buffer.allocUnsafe(GRPC_PREFIX_BYTES + payload.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(payload.byteLength, 1);
  frame.set(payload, GRPC_PREFIX_BYTES);
  return frame;
}

/** Ends a call that has not been answered with `status` (trailers-only when nothing was sent yet). */
function endWithStatus(call: ServerCall, status: GrpcStatus): void {
  if (call.finished) return;
  call.finish();
  const stream = call.stream;
  if (stream.destroyed || stream.closed) return;
  if (!call.responded) {
    answerEarly(stream, status);
    return;
  }
  stream.once("wantTrailers", () => {
    sendTrailers(
      stream,
      statusHeaders(status),
      statusHeaders({ code: status.code, message: status.message }),
    );
    closeUnreadRequest(stream);
  });
  stream.end();
}

/** A trailers-only response; the rest of the request (if any) is not read. */
function answerEarly(stream: ServerHttp2Stream, status: GrpcStatus): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const headers: OutgoingHttpHeaders = { ...RESPONSE_HEADERS, ...statusHeaders(status) };
  const plain = { ...RESPONSE_HEADERS, ...statusHeaders({ code: status.code, message: status.message }) };
  if (respond(stream, headers, plain, RESPOND_AND_END)) closeUnreadRequest(stream);
}

function respondHttpStatus(stream: ServerHttp2Stream, status: number): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const headers = { ":status": status };
  if (respond(stream, headers, headers, RESPOND_AND_END)) closeUnreadRequest(stream);
}

/**
 * stream.respond(headers), or `plain` when node:http2 refuses `headers` (metadata a handler set with
 * a name or value HTTP/2 does not allow); false, with the stream reset, when neither goes out.
 */
function respond(
  stream: ServerHttp2Stream,
  headers: OutgoingHttpHeaders,
  plain: OutgoingHttpHeaders,
  options: typeof RESPOND_WITH_TRAILERS | typeof RESPOND_AND_END,
): boolean {
  for (const h of headers === plain ? [headers] : [headers, plain]) {
    try {
      stream.respond(h, options);
      return true;
    } catch {
      if (stream.destroyed || stream.closed || stream.headersSent) break;
    }
  }
  resetStream(stream);
  return false;
}

/** RST_STREAM INTERNAL_ERROR: the call cannot be answered properly (gRPC clients report INTERNAL). */
function resetStream(stream: ServerHttp2Stream): void {
  if (!stream.destroyed && !stream.closed) stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
}

/**
 * The response is complete but the request may not have been read to its end (rejected unread).
 * Node keeps such a half-read stream until the connection dies, so it is reset once the frames
 * already queued (the status) have gone out.
 */
function closeUnreadRequest(stream: ServerHttp2Stream): void {
  if (stream.readableEnded) return;
  stream.resume();
  setImmediate(() => {
    if (!stream.readableEnded && !stream.destroyed) stream.close(http2Constants.NGHTTP2_NO_ERROR);
  });
}

/** Trailers, or `plain` (status only) when node:http2 refuses extra metadata; a reset when neither goes. */
function sendTrailers(
  stream: ServerHttp2Stream,
  trailers: OutgoingHttpHeaders,
  plain?: OutgoingHttpHeaders,
): void {
  for (const t of plain === undefined ? [trailers] : [trailers, plain]) {
    if (stream.destroyed || stream.closed) return;
    try {
      stream.sendTrailers(t);
      return;
    } catch {
      // invalid metadata, or the stream went away while the trailers were due
    }
  }
  resetStream(stream);
}

function statusHeaders(status: GrpcStatus): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  if (status.trailers !== undefined) copyValidMetadata(status.trailers, headers);
  headers["grpc-status"] = String(status.code);
  if (status.message.length > 0) headers["grpc-message"] = encodeGrpcMessage(status.message);
  return headers;
}

/** Percent-encodes grpc-message as the gRPC spec asks: everything outside printable ASCII, and '%'. */
export function encodeGrpcMessage(message: string): string {
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) return percentEncode(message);
  }
  return message;
}

function percentEncode(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}
