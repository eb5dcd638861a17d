// RecallMessage: cancel a delay message before it is delivered, by the recall handle SendMessage
// returned for it.

import { create } from "@bufbuild/protobuf";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import {
  type RecallMessageRequest,
  type RecallMessageResponse,
  RecallMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { resolveResource } from "./resource.ts";
import { okStatus } from "./status.ts";

export async function recallMessage(
  deps: ProxyDeps,
  call: CallContext,
  request: RecallMessageRequest,
): Promise<RecallMessageResponse> {
  const topic = resolveResource(request.topic, call);
  validateClientTopic(topic.fullName);
  if (request.recallHandle.trim().length === 0)
    throw new RmqError(ErrorCode.IllegalArgument, "recall handle is empty");
  const { messageId } = await deps.backend.recallMessage({
    topic: topic.fullName,
    recallHandle: request.recallHandle,
  });
  return create(RecallMessageResponseSchema, { status: okStatus(), messageId });
}
