// QueryRoute and QueryAssignment: the queues of a topic, each pointing at this proxy.
//
// What the SDKs need (protocol.md §2.1): queues numbered from 0 on every broker, broker id 0 (the
// Node SDK confuses queue id with broker id and only uses queue 0; Java/Go filter on broker id 0),
// and exactly one IPv4 or DNS address per Broker.endpoints — the address the client used to reach
// us — because Node splits addresses on ':' and cannot use IPv6 or lists.

import { isIPv4, isIPv6 } from "node:net";
import { create } from "@bufbuild/protobuf";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientGroup } from "../common/group-validator.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import {
  AddressScheme,
  type Endpoints,
  EndpointsSchema,
  type MessageQueue,
  MessageQueueSchema,
  MessageType,
  Permission,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type QueryAssignmentRequest,
  type QueryAssignmentResponse,
  QueryAssignmentResponseSchema,
  type QueryRouteRequest,
  type QueryRouteResponse,
  QueryRouteResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { isReadable, isWritable, TopicMessageType } from "./backend.ts";
import type { CallContext } from "./context.ts";
import type { HostAndPort, ProxyDeps } from "./deps.ts";
import { resolveResource } from "./resource.ts";
import { okStatus } from "./status.ts";

/** What a topic of each type accepts. UNSPECIFIED accepts everything (a topic without a type attribute). */
export function acceptMessageTypes(type: TopicMessageType): MessageType[] {
  switch (type) {
    case TopicMessageType.NORMAL:
      return [MessageType.NORMAL];
    case TopicMessageType.FIFO:
      return [MessageType.FIFO];
    case TopicMessageType.DELAY:
      return [MessageType.DELAY];
    case TopicMessageType.TRANSACTION:
      return [MessageType.TRANSACTION];
    // Upstream lists PRIORITY only, yet stores plain messages on a PRIORITY topic too; listing NORMAL
    // lets SDKs that send priority 0 as NORMAL (the Node SDK does) through their own type check.
    case TopicMessageType.PRIORITY:
      return [MessageType.PRIORITY, MessageType.NORMAL];
    case TopicMessageType.LITE:
      return [MessageType.LITE];
    default:
      return [MessageType.NORMAL, MessageType.FIFO, MessageType.DELAY, MessageType.TRANSACTION];
  }
}

export async function queryRoute(
  deps: ProxyDeps,
  call: CallContext,
  request: QueryRouteRequest,
): Promise<QueryRouteResponse> {
  const topic = resolveResource(request.topic, call);
  validateClientTopic(topic.fullName);
  const route = await deps.backend.getTopicRoute(topic.fullName);
  const endpoints = routeEndpoints(deps, call, request.endpoints);
  const accept = acceptMessageTypes(route.messageType);
  const queues: MessageQueue[] = [];
  for (const broker of route.brokers) {
    const readable = isReadable(broker.perm);
    const writable = isWritable(broker.perm);
    const reads = readable ? broker.readQueueNums : 0;
    const writes = writable ? broker.writeQueueNums : 0;
    for (let id = 0; id < Math.max(reads, writes); id++) {
      const permission =
        id < reads && id < writes ? Permission.READ_WRITE : id < reads ? Permission.READ : Permission.WRITE;
      queues.push(
        create(MessageQueueSchema, {
          topic: { name: topic.name, resourceNamespace: topic.namespace },
          id,
          permission,
          broker: { name: broker.brokerName, id: 0, endpoints },
          acceptMessageTypes: accept,
        }),
      );
    }
  }
  if (queues.length === 0) {
    throw new RmqError(ErrorCode.Forbidden, `topic ${topic.name} has no readable or writable queue`);
  }
  return create(QueryRouteResponseSchema, { status: okStatus(), messageQueues: queues });
}

export async function queryAssignment(
  deps: ProxyDeps,
  call: CallContext,
  request: QueryAssignmentRequest,
): Promise<QueryAssignmentResponse> {
  const topic = resolveResource(request.topic, call);
  const group = resolveResource(request.group, call);
  validateClientTopic(topic.fullName);
  validateClientGroup(group.fullName);
  const [route, assignments] = await Promise.all([
    deps.backend.getTopicRoute(topic.fullName),
    deps.backend.queryAssignment({ topic: topic.fullName, group: group.fullName }),
  ]);
  const endpoints = routeEndpoints(deps, call, request.endpoints);
  const accept = acceptMessageTypes(route.messageType);
  const readable = assignments.filter((a) => isReadable(a.perm));
  if (readable.length === 0) throw new RmqError(ErrorCode.Forbidden, "no readable queue");
  return create(QueryAssignmentResponseSchema, {
    status: okStatus(),
    assignments: readable.map((a) => ({
      messageQueue: {
        topic: { name: topic.name, resourceNamespace: topic.namespace },
        id: a.queueId,
        permission: isWritable(a.perm) ? Permission.READ_WRITE : Permission.READ,
        broker: { name: a.brokerName, id: 0, endpoints },
        acceptMessageTypes: accept,
      },
    })),
  });
}

/**
 * The one address clients should use for this proxy: the configured one; else the `:authority` the
 * client dialled; else the first non-IPv6 address of the endpoints in the request; else the local
 * IPv4 address of the connection; else 127.0.0.1.
 */
export function routeEndpoints(
  deps: ProxyDeps,
  call: CallContext,
  requested: Endpoints | undefined,
): Endpoints {
  const chosen = deps.advertisedEndpoint ??
    parseAuthority(call.connection.authority, deps.listenPort()) ??
    requested?.addresses.find((a) => a.host.length > 0 && !isIPv6(a.host)) ??
    (isIPv4(call.connection.localAddress)
      ? { host: call.connection.localAddress, port: deps.listenPort() }
      : undefined) ?? { host: "127.0.0.1", port: deps.listenPort() };
  return create(EndpointsSchema, {
    scheme: isIPv4(chosen.host) ? AddressScheme.IPv4 : AddressScheme.DOMAIN_NAME,
    addresses: [{ host: chosen.host, port: chosen.port }],
  });
}

/** "host:port" → {host, port}; undefined for IPv6 literals and garbage. */
export function parseAuthority(authority: string | undefined, defaultPort: number): HostAndPort | undefined {
  if (authority === undefined || authority.length === 0 || authority.startsWith("[")) return undefined;
  const colon = authority.lastIndexOf(":");
  const host = colon < 0 ? authority : authority.slice(0, colon);
  const port = colon < 0 ? defaultPort : Number(authority.slice(colon + 1));
  if (host.length === 0 || host.includes(":") || !Number.isInteger(port) || port <= 0 || port > 65535)
    return undefined;
  if (!isIPv4(host) && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) return undefined;
  return { host, port };
}
