// apache.rocketmq.v2.MessagingService: all 17 RPCs, each timed and guarded so that business errors
// travel as a body Status with gRPC OK (only Telemetry uses gRPC errors, as upstream). The work of
// each RPC lives in its *-activity.ts file.
//
// The RPCs are served two ways on the one server (proxy/server.ts): every unary and
// server-streaming RPC through the lean gRPC layer (common/grpc-handler.ts, `grpcMethods`), and
// Telemetry (bidi) plus any request the lean layer does not take (compressed, JSON) through
// connect-node (`connectImpl`). Both run the same guarded functions below, so answers, status
// mapping and metrics do not depend on the path. On the lean path the hot RPCs skip protobuf-es:
// SendMessage and AckMessage through their codecs (send-message-codec.ts, ack-message-codec.ts),
// ReceiveMessage through the wire encoder (message-wire-encoder.ts), all byte-exact.

import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  EncodedFrame,
  type GrpcCall,
  type GrpcMethod,
  serverStreamMethod,
  type UnaryCodec,
  unaryMethod,
} from "../common/grpc-handler.ts";
import type { Status } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  MessagingService,
  type PullMessageResponse,
  PullMessageResponseSchema,
  type ReceiveMessageRequest,
  type ReceiveMessageResponse,
  ReceiveMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { ackMessage, changeInvisibleDuration, forwardMessageToDeadLetterQueue } from "./ack-activity.ts";
import { decodeAckMessageRequest, encodeAckMessageResponseFrame } from "./ack-message-codec.ts";
import { heartbeat, notifyClientTermination } from "./client-activity.ts";
import { type CallContext, readCallContext, readLeanCallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { syncLiteSubscription } from "./lite-subscription-activity.ts";
import { type DeliveredMessage, deliveredMessage } from "./message-converter.ts";
import {
  encodeDeliveryTimestampFrame,
  encodeReceivedMessageFrame,
  encodeReceiveStatusFrame,
} from "./message-wire-encoder.ts";
import { RpcResult } from "./metrics.ts";
import { recallMessage } from "./recall-activity.ts";
import {
  receiveMessage,
  receiveMessageResponse,
  receiveOutcome,
  releaseUnwritten,
} from "./receive-activity.ts";
import { queryAssignment, queryRoute } from "./route-activity.ts";
import { sendMessage } from "./send-activity.ts";
import { decodeSendMessageRequest, encodeSendMessageResponseFrame } from "./send-message-codec.ts";
import { status, statusFromError, v2CodeLabel } from "./status.ts";
import { telemetry } from "./telemetry.ts";
import { endTransaction } from "./transaction-activity.ts";

type MessagingServiceImpl = ServiceImpl<typeof MessagingService>;

const NOT_IMPLEMENTED_MESSAGE = "not implemented by this proxy yet";
/**
 * Bytes of ReceiveMessage responses joined into one stream write (ours): a batch of 32 × 1 KiB
 * messages goes out in one write, large messages one by one (a batch may hold 32 × 4 MiB).
 */
const RECEIVE_WRITE_BYTES = 256 * 1024;

/** A guarded unary RPC: reads its caller through `readCall`, never throws. */
type GuardedUnary<I extends DescMessage, O extends DescMessage> = (
  readCall: () => CallContext,
  request: MessageShape<I>,
) => Promise<MessageShape<O>>;

export interface MessagingServiceHandlers {
  /** For connect-node (Telemetry, and requests the lean path does not take). */
  connectImpl: MessagingServiceImpl;
  /** For common/grpc-handler.ts: every unary and server-streaming RPC, by path. */
  grpcMethods: ReadonlyMap<string, GrpcMethod>;
}

export function createMessagingService(deps: ProxyDeps): MessagingServiceHandlers {
  /**
   * Wrap a unary activity: read the caller (CLIENT_ID_REQUIRED when unknown), run it, turn a thrown
   * error into `{status}`, and record the latency with the status code.
   */
  const unary =
    <I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      run: (call: CallContext, request: MessageShape<I>) => MessageShape<O> | Promise<MessageShape<O>>,
    ): GuardedUnary<I, O> =>
    async (readCall, request) => {
      const started = performance.now();
      let response: MessageShape<O>;
      try {
        const call = readCall();
        deps.clients.touch(call.clientId);
        response = await run(call, request);
      } catch (error) {
        response = create(method.output, {
          status: statusFromError(error, deps.logger, method.name),
        } as unknown as MessageInitShape<O>);
      }
      const code = (response as { status?: Status }).status?.code ?? Code.CODE_UNSPECIFIED;
      deps.metrics.observeRpc(
        method.name,
        v2CodeLabel(code),
        false,
        RpcResult.SUCCESS,
        performance.now() - started,
      );
      return response;
    };

  /** PullMessage & co.: answered in the body so clients get a clear status instead of gRPC UNIMPLEMENTED. */
  const notImplemented =
    <I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>): GuardedUnary<I, O> =>
    async () => {
      deps.metrics.observeRpc(method.name, "not_implemented", false, RpcResult.SUCCESS, 0);
      return create(method.output, {
        status: status(Code.NOT_IMPLEMENTED, `${method.name} is ${NOT_IMPLEMENTED_MESSAGE}`),
      } as unknown as MessageInitShape<O>);
    };

  const receive = async function* <T>(
    readCall: () => CallContext,
    request: ReceiveMessageRequest,
    signal: AbortSignal,
    writeMessage: (message: DeliveredMessage) => ReceiveMessageResponse | T,
  ): AsyncGenerator<ReceiveMessageResponse | T> {
    const started = performance.now();
    let code: Code = Code.CODE_UNSPECIFIED;
    let result: RpcResult = RpcResult.SUCCESS;
    try {
      yield* receiveMessage(deps, request, readCall, signal, writeMessage, (outcome) => {
        code = outcome.status.code;
      });
    } catch (error) {
      result = RpcResult.WRITE_CHANNEL_FAILED;
      throw error;
    } finally {
      if (signal.aborted && result === RpcResult.SUCCESS && code === Code.CODE_UNSPECIFIED)
        result = RpcResult.CANCELLED;
      deps.metrics.observeRpc("ReceiveMessage", v2CodeLabel(code), true, result, performance.now() - started);
    }
  };

  const pull = async function* (): AsyncGenerator<PullMessageResponse> {
    deps.metrics.observeRpc("PullMessage", "not_implemented", false, RpcResult.SUCCESS, 0);
    yield create(PullMessageResponseSchema, {
      content: {
        case: "status",
        value: status(Code.NOT_IMPLEMENTED, `PullMessage is ${NOT_IMPLEMENTED_MESSAGE}`),
      },
    });
  };

  const method = MessagingService.method;
  const guarded = {
    queryRoute: unary(method.queryRoute, (call, req) => queryRoute(deps, call, req)),
    heartbeat: unary(method.heartbeat, (call, req) => heartbeat(deps, call, req)),
    sendMessage: unary(method.sendMessage, (call, req) => sendMessage(deps, call, req)),
    queryAssignment: unary(method.queryAssignment, (call, req) => queryAssignment(deps, call, req)),
    ackMessage: unary(method.ackMessage, (call, req) => ackMessage(deps, call, req)),
    forwardMessageToDeadLetterQueue: unary(method.forwardMessageToDeadLetterQueue, (call, req) =>
      forwardMessageToDeadLetterQueue(deps, call, req),
    ),
    updateOffset: notImplemented(method.updateOffset),
    getOffset: notImplemented(method.getOffset),
    queryOffset: notImplemented(method.queryOffset),
    endTransaction: unary(method.endTransaction, (call, req) => endTransaction(deps, call, req)),
    notifyClientTermination: unary(method.notifyClientTermination, (call, req) =>
      notifyClientTermination(deps, call, req),
    ),
    changeInvisibleDuration: unary(method.changeInvisibleDuration, (call, req) =>
      changeInvisibleDuration(deps, call, req),
    ),
    recallMessage: unary(method.recallMessage, (call, req) => recallMessage(deps, call, req)),
    syncLiteSubscription: unary(method.syncLiteSubscription, (call, req) =>
      syncLiteSubscription(deps, call, req),
    ),
  };

  const connectUnary =
    <I extends DescMessage, O extends DescMessage>(fn: GuardedUnary<I, O>) =>
    (request: MessageShape<I>, ctx: HandlerContext) =>
      fn(() => readCallContext(ctx), request);
  const connectImpl: MessagingServiceImpl = {
    queryRoute: connectUnary(guarded.queryRoute),
    heartbeat: connectUnary(guarded.heartbeat),
    sendMessage: connectUnary(guarded.sendMessage),
    queryAssignment: connectUnary(guarded.queryAssignment),
    receiveMessage: (request, ctx) =>
      receive(() => readCallContext(ctx), request, ctx.signal, receiveMessageResponse),
    ackMessage: connectUnary(guarded.ackMessage),
    forwardMessageToDeadLetterQueue: connectUnary(guarded.forwardMessageToDeadLetterQueue),
    pullMessage: () => pull(),
    updateOffset: connectUnary(guarded.updateOffset),
    getOffset: connectUnary(guarded.getOffset),
    queryOffset: connectUnary(guarded.queryOffset),
    endTransaction: connectUnary(guarded.endTransaction),
    telemetry: (requests, ctx) => telemetry(deps, requests, ctx),
    notifyClientTermination: connectUnary(guarded.notifyClientTermination),
    changeInvisibleDuration: connectUnary(guarded.changeInvisibleDuration),
    recallMessage: connectUnary(guarded.recallMessage),
    syncLiteSubscription: connectUnary(guarded.syncLiteSubscription),
  };

  const lean = <I extends DescMessage, O extends DescMessage>(
    m: DescMethodUnary<I, O>,
    fn: GuardedUnary<I, O>,
    codec?: UnaryCodec<I, O>,
  ): [string, GrpcMethod] =>
    unaryMethod(m, (request, call) => fn(() => readLeanCallContext(call), request), codec) as [
      string,
      GrpcMethod,
    ];
  /**
   * ReceiveMessage on the lean path: the same outcome as `receive`, its responses pre-encoded
   * (message-wire-encoder.ts; protobuf-es only as a fallback) and joined into as few writes as
   * RECEIVE_WRITE_BYTES allows: one for a usual batch, instead of an iteration and a stream write
   * per message. Messages of a write the client never got are released, as `receive` does.
   */
  const leanReceive = async function* (
    request: ReceiveMessageRequest,
    call: GrpcCall,
  ): AsyncGenerator<ReceiveMessageResponse | EncodedFrame> {
    const started = performance.now();
    let result: RpcResult = RpcResult.SUCCESS;
    const outcome = await receiveOutcome(deps, request, () => readLeanCallContext(call), call.signal);
    const popped = outcome.popped;
    let written = 0;
    try {
      let parts: Buffer[] = [];
      let bytes = 0;
      let messages = 0;
      const add = (frame: Buffer) => {
        parts.push(frame);
        bytes += frame.byteLength;
      };
      const status = outcome.status;
      const statusFrame = encodeReceiveStatusFrame(status.code, status.message);
      if (statusFrame === undefined)
        yield create(ReceiveMessageResponseSchema, { content: { case: "status", value: status } });
      else add(statusFrame);
      const options = { namespace: outcome.namespace, digestFormat: outcome.digestFormat };
      for (const p of popped) {
        const delivered = deliveredMessage(p, options);
        const frame = encodeReceivedMessageFrame(delivered);
        if (parts.length > 0 && (frame === undefined || bytes + frame.byteLength > RECEIVE_WRITE_BYTES)) {
          yield new EncodedFrame(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, bytes));
          written += messages;
          parts = [];
          bytes = 0;
          messages = 0;
        }
        if (frame === undefined) {
          yield receiveMessageResponse(delivered);
          written++;
        } else {
          add(frame);
          messages++;
        }
      }
      const timestampFrame = encodeDeliveryTimestampFrame(Date.now());
      if (timestampFrame !== undefined) add(timestampFrame);
      if (parts.length > 0) {
        yield new EncodedFrame(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, bytes));
        written += messages;
      }
      if (timestampFrame === undefined)
        yield create(ReceiveMessageResponseSchema, {
          content: { case: "deliveryTimestamp", value: timestampNow() },
        });
    } catch (error) {
      result = RpcResult.WRITE_CHANNEL_FAILED;
      throw error;
    } finally {
      if (written < popped.length) releaseUnwritten(deps, outcome, written);
      deps.metrics.observeRpc(
        "ReceiveMessage",
        v2CodeLabel(outcome.status.code),
        true,
        result,
        performance.now() - started,
      );
    }
  };
  const grpcMethods = new Map<string, GrpcMethod>([
    lean(method.queryRoute, guarded.queryRoute),
    lean(method.heartbeat, guarded.heartbeat),
    lean(method.sendMessage, guarded.sendMessage, {
      decode: decodeSendMessageRequest,
      encodeFrame: encodeSendMessageResponseFrame,
    }),
    lean(method.queryAssignment, guarded.queryAssignment),
    serverStreamMethod(method.receiveMessage, leanReceive) as [string, GrpcMethod],
    lean(method.ackMessage, guarded.ackMessage, {
      decode: decodeAckMessageRequest,
      encodeFrame: encodeAckMessageResponseFrame,
    }),
    lean(method.forwardMessageToDeadLetterQueue, guarded.forwardMessageToDeadLetterQueue),
    serverStreamMethod(method.pullMessage, () => pull()) as [string, GrpcMethod],
    lean(method.updateOffset, guarded.updateOffset),
    lean(method.getOffset, guarded.getOffset),
    lean(method.queryOffset, guarded.queryOffset),
    lean(method.endTransaction, guarded.endTransaction),
    lean(method.notifyClientTermination, guarded.notifyClientTermination),
    lean(method.changeInvisibleDuration, guarded.changeInvisibleDuration),
    lean(method.recallMessage, guarded.recallMessage),
    lean(method.syncLiteSubscription, guarded.syncLiteSubscription),
  ]);
  return { connectImpl, grpcMethods };
}
