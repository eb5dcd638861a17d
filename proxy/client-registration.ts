// What the proxy tells the brokers about a client session (MessagingBackend.registerClient): its
// connection, and as upstream's proxy registers gRPC clients, a consumer under its group with the
// subscriptions of its Settings, or a producer under each topic it publishes (gRPC producers have no
// group). Push consumers are consumed "passively" (the proxy polls for them), simple ones "actively".

import { type ClientHeartbeat, type ConsumerSubscription, ConsumeType } from "../common/client-connection.ts";
import { ClientType, FilterType, Language } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import type { ClientSession } from "./client-manager.ts";
import { resolveResource } from "./resource.ts";

const CONSUMER_TYPES: ReadonlySet<ClientType> = new Set([
  ClientType.PUSH_CONSUMER,
  ClientType.SIMPLE_CONSUMER,
  ClientType.PULL_CONSUMER,
  ClientType.LITE_PUSH_CONSUMER,
  ClientType.LITE_SIMPLE_CONSUMER,
]);
/** Language names by value (the generated Language is a plain object). */
const LANGUAGE_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(Language).map(([k, v]) => [v, k]));
const PASSIVE_TYPES: ReadonlySet<ClientType> = new Set([
  ClientType.PUSH_CONSUMER,
  ClientType.LITE_PUSH_CONSUMER,
]);

/** The heartbeat of `session` as the brokers keep it. */
export function clientHeartbeatOf(session: ClientSession): ClientHeartbeat {
  const agent = session.settings?.userAgent;
  const language =
    agent !== undefined && agent.language !== Language.LANGUAGE_UNSPECIFIED
      ? (LANGUAGE_NAMES.get(agent.language) ?? session.language)
      : session.language;
  const version = agent !== undefined && agent.version.length > 0 ? agent.version : session.clientVersion;
  const connection = { clientId: session.clientId, clientAddr: session.peer, language, version };
  if (CONSUMER_TYPES.has(session.clientType) && session.group !== undefined) {
    const subscriptions: ConsumerSubscription[] = [];
    const pubSub = session.settings?.pubSub;
    if (pubSub?.case === "subscription") {
      for (const entry of pubSub.value.subscriptions) {
        const e = entry.expression;
        subscriptions.push({
          topic: resolveResource(entry.topic, session).fullName,
          expression: e === undefined || e.expression.length === 0 ? "*" : e.expression,
          expressionType: e?.type === FilterType.SQL ? "SQL92" : "TAG",
        });
      }
    }
    return {
      connection,
      consumerGroup: session.group,
      consumeType: PASSIVE_TYPES.has(session.clientType)
        ? ConsumeType.CONSUME_PASSIVELY
        : ConsumeType.CONSUME_ACTIVELY,
      subscriptions,
    };
  }
  if (session.clientType === ClientType.PRODUCER) return { connection, producerGroups: [...session.topics] };
  return { connection };
}
