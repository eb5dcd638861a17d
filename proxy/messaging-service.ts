// apache.rocketmq.v2.MessagingService: all 17 RPCs, each timed and guarded so that business errors
// travel as a body Status with gRPC OK (only Telemetry uses gRPC errors, as upstream). The work of
// each RPC lives in its *-activity.ts file.

import {
  create,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Status } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { Code } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { MessagingService, PullMessageResponseSchema } from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { ackMessage, changeInvisibleDuration, forwardMessageToDeadLetterQueue } from "./ack-activity.ts";
import { heartbeat, notifyClientTermination } from "./client-activity.ts";
import { type CallContext, readCallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { RpcResult } from "./metrics.ts";
import { recallMessage } from "./recall-activity.ts";
import { receiveMessage } from "./receive-activity.ts";
import { queryAssignment, queryRoute } from "./route-activity.ts";
import { sendMessage } from "./send-activity.ts";
import { status, statusFromError, v2CodeName } from "./status.ts";
import { telemetry } from "./telemetry.ts";
import { endTransaction } from "./transaction-activity.ts";

type MessagingServiceImpl = ServiceImpl<typeof MessagingService>;

const NOT_IMPLEMENTED_MESSAGE = "not implemented by this proxy yet";

export function createMessagingService(deps: ProxyDeps): MessagingServiceImpl {
  /**
   * Wrap a unary activity: read the caller (CLIENT_ID_REQUIRED when unknown), run it, turn a thrown
   * error into `{status}`, and record the latency with the status code.
   */
  const unary =
    <I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      run: (call: CallContext, request: MessageShape<I>) => MessageShape<O> | Promise<MessageShape<O>>,
    ) =>
    async (request: MessageShape<I>, ctx: HandlerContext): Promise<MessageShape<O>> => {
      const started = performance.now();
      let response: MessageShape<O>;
      try {
        const call = readCallContext(ctx);
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
        v2CodeName(code).toLowerCase(),
        false,
        RpcResult.SUCCESS,
        performance.now() - started,
      );
      return response;
    };

  /** PullMessage & co.: answered in the body so clients get a clear status instead of gRPC UNIMPLEMENTED. */
  const notImplemented =
    <I extends DescMessage, O extends DescMessage>(method: DescMethodUnary<I, O>) =>
    (): MessageShape<O> => {
      deps.metrics.observeRpc(method.name, "not_implemented", false, RpcResult.SUCCESS, 0);
      return create(method.output, {
        status: status(Code.NOT_IMPLEMENTED, `${method.name} is ${NOT_IMPLEMENTED_MESSAGE}`),
      } as unknown as MessageInitShape<O>);
    };

  const method = MessagingService.method;

  return {
    queryRoute: unary(method.queryRoute, (call, req) => queryRoute(deps, call, req)),
    heartbeat: unary(method.heartbeat, (call, req) => heartbeat(deps, call, req)),
    sendMessage: unary(method.sendMessage, (call, req) => sendMessage(deps, call, req)),
    queryAssignment: unary(method.queryAssignment, (call, req) => queryAssignment(deps, call, req)),
    async *receiveMessage(request, ctx) {
      const started = performance.now();
      let code: Code = Code.CODE_UNSPECIFIED;
      let result: RpcResult = RpcResult.SUCCESS;
      try {
        yield* receiveMessage(deps, request, ctx, (outcome) => {
          code = outcome.status.code;
        });
      } catch (error) {
        result = RpcResult.WRITE_CHANNEL_FAILED;
        throw error;
      } finally {
        if (ctx.signal.aborted && result === RpcResult.SUCCESS && code === Code.CODE_UNSPECIFIED)
          result = RpcResult.CANCELLED;
        deps.metrics.observeRpc(
          "ReceiveMessage",
          v2CodeName(code).toLowerCase(),
          true,
          result,
          performance.now() - started,
        );
      }
    },
    ackMessage: unary(method.ackMessage, (call, req) => ackMessage(deps, call, req)),
    forwardMessageToDeadLetterQueue: unary(method.forwardMessageToDeadLetterQueue, (call, req) =>
      forwardMessageToDeadLetterQueue(deps, call, req),
    ),
    async *pullMessage() {
      deps.metrics.observeRpc("PullMessage", "not_implemented", false, RpcResult.SUCCESS, 0);
      yield create(PullMessageResponseSchema, {
        content: {
          case: "status",
          value: status(Code.NOT_IMPLEMENTED, `PullMessage is ${NOT_IMPLEMENTED_MESSAGE}`),
        },
      });
    },
    updateOffset: notImplemented(method.updateOffset),
    getOffset: notImplemented(method.getOffset),
    queryOffset: notImplemented(method.queryOffset),
    endTransaction: unary(method.endTransaction, (call, req) => endTransaction(deps, call, req)),
    telemetry: (requests, ctx) => telemetry(deps, requests, ctx),
    notifyClientTermination: unary(method.notifyClientTermination, (call, req) =>
      notifyClientTermination(deps, call, req),
    ),
    changeInvisibleDuration: unary(method.changeInvisibleDuration, (call, req) =>
      changeInvisibleDuration(deps, call, req),
    ),
    recallMessage: unary(method.recallMessage, (call, req) => recallMessage(deps, call, req)),
    syncLiteSubscription: notImplemented(method.syncLiteSubscription),
  };
}
