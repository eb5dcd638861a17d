// Heartbeat and NotifyClientTermination. Both always answer OK: the SDKs ignore heartbeat results,
// and a failing NotifyClientTermination makes the Node SDK's shutdown() throw before it closes its
// streams (protocol.md §2). Termination ends the client's session, which also releases the messages
// the proxy was renewing for it.

import { create } from "@bufbuild/protobuf";
import {
  type HeartbeatRequest,
  type HeartbeatResponse,
  HeartbeatResponseSchema,
  type NotifyClientTerminationRequest,
  type NotifyClientTerminationResponse,
  NotifyClientTerminationResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { resolveResource } from "./resource.ts";
import { okStatus } from "./status.ts";

export function heartbeat(deps: ProxyDeps, call: CallContext, request: HeartbeatRequest): HeartbeatResponse {
  const group = request.group === undefined ? undefined : resolveResource(request.group, call).fullName;
  deps.clients.heartbeat(call, request.clientType, group);
  return create(HeartbeatResponseSchema, { status: okStatus() });
}

export function notifyClientTermination(
  deps: ProxyDeps,
  call: CallContext,
  _request: NotifyClientTerminationRequest,
): NotifyClientTerminationResponse {
  deps.clients.remove(call.clientId, "terminated");
  return create(NotifyClientTerminationResponseSchema, { status: okStatus() });
}
