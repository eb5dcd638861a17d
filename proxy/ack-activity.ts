// What consumers do with a received message: AckMessage, ChangeInvisibleDuration (nack with a delay,
// or extend), ForwardMessageToDeadLetterQueue. Each first swaps the client's receipt handle for the
// current one when the proxy has been renewing it (auto_renew receives).

import { create } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientGroup } from "../common/group-validator.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import { Code, type Resource } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type AckMessageRequest,
  type AckMessageResponse,
  AckMessageResponseSchema,
  type AckMessageResultEntry,
  AckMessageResultEntrySchema,
  type ChangeInvisibleDurationRequest,
  type ChangeInvisibleDurationResponse,
  ChangeInvisibleDurationResponseSchema,
  type ForwardMessageToDeadLetterQueueRequest,
  type ForwardMessageToDeadLetterQueueResponse,
  ForwardMessageToDeadLetterQueueResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { type ResolvedResource, resolveResource } from "./resource.ts";
import { batchStatus, okStatus, status, statusFromError, v2CodeOf } from "./status.ts";

function groupAndTopic(
  call: CallContext,
  groupResource: Resource | undefined,
  topicResource: Resource | undefined,
): { group: ResolvedResource; topic: ResolvedResource } {
  const group = resolveResource(groupResource, call);
  const topic = resolveResource(topicResource, call);
  validateClientGroup(group.fullName);
  validateClientTopic(topic.fullName);
  return { group, topic };
}

function requireReceiptHandle(handle: string): void {
  if (handle.trim().length === 0)
    throw new RmqError(ErrorCode.InvalidReceiptHandle, "receipt handle is empty");
}

export async function ackMessage(
  deps: ProxyDeps,
  call: CallContext,
  request: AckMessageRequest,
): Promise<AckMessageResponse> {
  const { group, topic } = groupAndTopic(call, request.group, request.topic);
  if (request.entries.length === 0) throw new RmqError(ErrorCode.IllegalArgument, "no entries to ack");

  // create(AckMessageResultEntrySchema, ...) written out: one per acked message.
  const entries: AckMessageResultEntry[] = request.entries.map((e) => ({
    $typeName: AckMessageResultEntrySchema.typeName as AckMessageResultEntry["$typeName"],
    messageId: e.messageId,
    receiptHandle: e.receiptHandle,
  }));
  const valid = entries.filter((entry) => {
    if (entry.receiptHandle.trim().length > 0) return true;
    entry.status = status(Code.INVALID_RECEIPT_HANDLE, "receipt handle is empty");
    return false;
  });

  if (valid.length > 0) {
    try {
      // Nothing renewed (no auto_renew receive in flight): every handle is the client's own, and the
      // per-entry take() promises would only cost time.
      const handles =
        deps.renewer.size() === 0
          ? valid.map((entry) => entry.receiptHandle)
          : await Promise.all(
              valid.map((entry) => deps.renewer.take(group.fullName, entry.messageId, entry.receiptHandle)),
            );
      const results = await deps.backend.ackMessages({
        group: group.fullName,
        topic: topic.fullName,
        entries: valid.map((entry, k) => ({
          receiptHandle: handles[k] ?? entry.receiptHandle,
          messageId: entry.messageId,
        })),
      });
      const ok = okStatus();
      valid.forEach((entry, k) => {
        const error = results[k]?.error;
        entry.status = error === undefined ? ok : status(v2CodeOf(error.code), error.message);
      });
    } catch (error) {
      const failed = statusFromError(error, deps.logger, "AckMessage");
      for (const entry of valid) entry.status = failed;
    }
  }
  return create(AckMessageResponseSchema, {
    status: batchStatus(entries.map((e) => e.status ?? okStatus())),
    entries,
  });
}

/** Always answers with a usable receipt handle: the new one, or the client's own on failure. */
export async function changeInvisibleDuration(
  deps: ProxyDeps,
  call: CallContext,
  request: ChangeInvisibleDurationRequest,
): Promise<ChangeInvisibleDurationResponse> {
  try {
    const { group, topic } = groupAndTopic(call, request.group, request.topic);
    requireReceiptHandle(request.receiptHandle);
    const invisibleTimeMs =
      request.invisibleDuration === undefined ? 0 : durationMs(request.invisibleDuration);
    if (invisibleTimeMs < 0 || invisibleTimeMs > deps.limits.maxInvisibleMs) {
      throw new RmqError(
        ErrorCode.IllegalInvisibleTime,
        `invisible duration ${invisibleTimeMs} ms is out of range [0, ${deps.limits.maxInvisibleMs}] ms`,
      );
    }
    const current = await deps.renewer.take(group.fullName, request.messageId, request.receiptHandle);
    const result = await deps.backend.changeInvisibleTime({
      group: group.fullName,
      topic: topic.fullName,
      receiptHandle: current,
      messageId: request.messageId,
      invisibleTimeMs,
      suspend: request.suspend === true,
    });
    return create(ChangeInvisibleDurationResponseSchema, {
      status: okStatus(),
      receiptHandle: result.receiptHandle,
    });
  } catch (error) {
    return create(ChangeInvisibleDurationResponseSchema, {
      status: statusFromError(error, deps.logger, "ChangeInvisibleDuration"),
      receiptHandle: request.receiptHandle,
    });
  }
}

export async function forwardMessageToDeadLetterQueue(
  deps: ProxyDeps,
  call: CallContext,
  request: ForwardMessageToDeadLetterQueueRequest,
): Promise<ForwardMessageToDeadLetterQueueResponse> {
  const { group, topic } = groupAndTopic(call, request.group, request.topic);
  requireReceiptHandle(request.receiptHandle);
  const current = await deps.renewer.take(group.fullName, request.messageId, request.receiptHandle);
  await deps.backend.forwardToDeadLetterQueue({
    group: group.fullName,
    topic: topic.fullName,
    receiptHandle: current,
    messageId: request.messageId,
    deliveryAttempt: request.deliveryAttempt,
    maxDeliveryAttempts: request.maxDeliveryAttempts,
  });
  return create(ForwardMessageToDeadLetterQueueResponseSchema, { status: okStatus() });
}
