// SyncLiteSubscription: a lite push consumer changes the lite topics it listens to under a LITE
// parent topic (upstream ClientActivity.syncLiteSubscription + LiteSubscriptionCtlProcessor). The
// set lives in the proxy's registry (lite-subscriptions.ts); a PARTIAL_ADD may carry an offset option
// that moves the group's offset on the added lite topics.

import { create } from "@bufbuild/protobuf";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientGroup } from "../common/group-validator.ts";
import { type LiteOffsetPosition, validateLiteTopic } from "../common/lite-topic.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import {
  OffsetOption_Policy,
  LiteSubscriptionAction as V2Action,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type SyncLiteSubscriptionRequest,
  type SyncLiteSubscriptionResponse,
  SyncLiteSubscriptionResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { TopicMessageType } from "./backend.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { LiteSubscriptionAction } from "./lite-subscriptions.ts";
import { resolveResource } from "./resource.ts";
import { okStatus } from "./status.ts";

const ACTIONS: Readonly<Record<number, LiteSubscriptionAction>> = {
  [V2Action.PARTIAL_ADD]: LiteSubscriptionAction.PARTIAL_ADD,
  [V2Action.PARTIAL_REMOVE]: LiteSubscriptionAction.PARTIAL_REMOVE,
  [V2Action.COMPLETE_ADD]: LiteSubscriptionAction.COMPLETE_ADD,
  [V2Action.COMPLETE_REMOVE]: LiteSubscriptionAction.COMPLETE_REMOVE,
};

/** Where an offset option moves the offset; undefined leaves it (LAST, TIMESTAMP — a no-op upstream too, absent). */
function positionOf(request: SyncLiteSubscriptionRequest): LiteOffsetPosition | undefined {
  const o = request.offsetOption?.offsetType;
  if (o === undefined) return undefined;
  switch (o.case) {
    case "policy":
      if (o.value === OffsetOption_Policy.MIN) return { kind: "MIN" };
      if (o.value === OffsetOption_Policy.MAX) return { kind: "MAX" };
      return undefined;
    case "offset":
      if (o.value < 0n) throw new RmqError(ErrorCode.IllegalOffset, `offset ${o.value} is negative`);
      return { kind: "OFFSET", value: Number(o.value) };
    case "tailN":
      if (o.value < 0n) throw new RmqError(ErrorCode.IllegalOffset, `tail_n ${o.value} is negative`);
      return { kind: "TAIL_N", value: Number(o.value) };
    default:
      return undefined;
  }
}

export async function syncLiteSubscription(
  deps: ProxyDeps,
  call: CallContext,
  request: SyncLiteSubscriptionRequest,
): Promise<SyncLiteSubscriptionResponse> {
  const topic = resolveResource(request.topic, call);
  const group = resolveResource(request.group, call);
  validateClientTopic(topic.fullName);
  validateClientGroup(group.fullName);
  const action = ACTIONS[request.action];
  if (action === undefined)
    throw new RmqError(ErrorCode.IllegalArgument, `unknown lite subscription action ${request.action}`);
  const route = await deps.backend.getTopicRoute(topic.fullName);
  if (route.messageType !== TopicMessageType.LITE)
    throw new RmqError(
      ErrorCode.MessagePropertyConflictWithType,
      `topic ${topic.name} is a ${route.messageType} topic, not a LITE topic`,
    );
  const g = await deps.backend.getSubscriptionGroup(group.fullName);
  if (!g.consumeEnable)
    throw new RmqError(ErrorCode.Forbidden, `consumer group ${group.name} is not allowed to consume`);
  const liteTopics = [...new Set(request.liteTopicSet)];
  if (action !== LiteSubscriptionAction.PARTIAL_REMOVE && action !== LiteSubscriptionAction.COMPLETE_REMOVE)
    for (const t of liteTopics) validateLiteTopic(t, deps.limits.maxLiteTopicSize);
  const position = action === LiteSubscriptionAction.PARTIAL_ADD ? positionOf(request) : undefined;
  const added = deps.liteSubscriptions.sync(
    call.clientId,
    group.fullName,
    topic.fullName,
    action,
    liteTopics,
    deps.limits.liteSubscriptionQuota,
  );
  if (position !== undefined)
    for (const lite of added)
      await deps.backend.resetLiteOffset({
        group: group.fullName,
        topic: topic.fullName,
        liteTopic: lite,
        position,
      });
  return create(SyncLiteSubscriptionResponseSchema, { status: okStatus() });
}
