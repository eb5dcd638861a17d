// The Telemetry stream: the long-lived control channel every client opens to every endpoint of its
// routes. The client sends its Settings (on open, on reconnect, every 5 min); we answer
// {status OK, settings merged} and — because the Node SDK can lose the first reply in a start-up race
// and then waits forever — send the same reply again ~1 s later. The stream is kept per client id so
// the proxy can push commands (RecoverOrphanedTransactionCommand, print thread stack, verify
// message) and read the clients' answers.
//
// As upstream, malformed settings (no publishing/subscription, bad topic, group or filter) end the
// stream with gRPC INVALID_ARGUMENT, other failures with INTERNAL; clients reconnect after 1 s. A
// consumer group the backend refuses (CONSUMER_GROUP_NOT_FOUND, ...) is answered with a bare status,
// which makes the SDKs' start-up fail with that status instead of hanging.

import { create } from "@bufbuild/protobuf";
import { ConnectError, Code as GrpcCode, type HandlerContext } from "@connectrpc/connect";
import { createMessageFilter } from "../broker/filter/message-filter.ts";
import { isRmqError } from "../common/errors.ts";
import { validateClientGroup } from "../common/group-validator.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import { ClientType, FilterType, type Settings } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import { type TelemetryCommand, TelemetryCommandSchema } from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { consumerSettingsReply, producerSettingsReply } from "./client-settings.ts";
import { type CommandChannel, createCommandChannel } from "./command-channel.ts";
import { type CallContext, readCallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { resolveResource } from "./resource.ts";
import { okStatus, statusFromError } from "./status.ts";

interface StreamState {
  call: CallContext;
  channel: CommandChannel<TelemetryCommand>;
  timers: Set<NodeJS.Timeout>;
}

export async function* telemetry(
  deps: ProxyDeps,
  requests: AsyncIterable<TelemetryCommand>,
  ctx: HandlerContext,
): AsyncGenerator<TelemetryCommand> {
  let call: CallContext;
  try {
    call = readCallContext(ctx);
  } catch (error) {
    throw new ConnectError(error instanceof Error ? error.message : String(error), GrpcCode.InvalidArgument);
  }
  const state: StreamState = { call, channel: createCommandChannel<TelemetryCommand>(), timers: new Set() };
  const endStream = () => state.channel.end();
  deps.drainSignal.addEventListener("abort", endStream);
  ctx.signal.addEventListener("abort", endStream);
  if (deps.drainSignal.aborted) endStream();

  void (async () => {
    try {
      for await (const command of requests) {
        deps.clients.touch(call.clientId);
        await handleCommand(deps, state, command);
      }
      state.channel.end();
    } catch (error) {
      state.channel.fail(asConnectError(error));
    }
  })();

  try {
    yield* state.channel;
  } finally {
    deps.drainSignal.removeEventListener("abort", endStream);
    ctx.signal.removeEventListener("abort", endStream);
    for (const timer of state.timers) clearTimeout(timer);
    state.timers.clear();
    state.channel.end();
    deps.clients.streamEnded(call.clientId, state.channel);
  }
}

async function handleCommand(deps: ProxyDeps, state: StreamState, command: TelemetryCommand): Promise<void> {
  const { call } = state;
  switch (command.command.case) {
    case "settings":
      await handleSettings(deps, state, command.command.value);
      return;
    case "threadStackTrace":
    case "verifyMessageResult":
    // The Node SDK answers a VerifyMessageCommand with a verify_message_command (a known SDK bug).
    case "verifyMessageCommand": {
      const nonce = command.command.value.nonce;
      if (!deps.clients.resolveReply(call.clientId, nonce, command)) {
        deps.logger.debug(
          { clientId: call.clientId, nonce, kind: command.command.case },
          "unsolicited telemetry reply",
        );
      }
      return;
    }
    default:
      deps.logger.debug({ clientId: call.clientId, kind: command.command.case }, "ignored telemetry command");
  }
}

async function handleSettings(deps: ProxyDeps, state: StreamState, settings: Settings): Promise<void> {
  const { call, channel } = state;
  let reply: Settings;
  let clientType = settings.clientType ?? ClientType.CLIENT_TYPE_UNSPECIFIED;
  let group: string | undefined;
  const topics: string[] = [];
  const pubSub = settings.pubSub;
  if (pubSub.case === "publishing") {
    for (const resource of pubSub.value.topics) {
      const topic = resolveResource(resource, call).fullName;
      invalidArgumentOnError(() => validateClientTopic(topic));
      topics.push(topic);
    }
    if (clientType === ClientType.CLIENT_TYPE_UNSPECIFIED) clientType = ClientType.PRODUCER;
    reply = producerSettingsReply(settings, deps.limits);
  } else if (pubSub.case === "subscription") {
    const subscription = pubSub.value;
    group = resolveResource(subscription.group, call).fullName;
    const groupName = group;
    invalidArgumentOnError(() => validateClientGroup(groupName));
    for (const entry of subscription.subscriptions) {
      const topic = resolveResource(entry.topic, call).fullName;
      invalidArgumentOnError(() => {
        validateClientTopic(topic);
        const expression = entry.expression;
        if (expression !== undefined) {
          createMessageFilter({
            type: expression.type === FilterType.SQL ? "SQL92" : "TAG",
            expression: expression.expression.length === 0 ? "*" : expression.expression,
          });
        }
      });
      topics.push(topic);
    }
    if (clientType === ClientType.CLIENT_TYPE_UNSPECIFIED) clientType = ClientType.SIMPLE_CONSUMER;
    let groupConfig: Awaited<ReturnType<typeof deps.backend.getSubscriptionGroup>>;
    try {
      groupConfig = await deps.backend.getSubscriptionGroup(group);
    } catch (error) {
      if (!isRmqError(error)) throw error;
      channel.push(create(TelemetryCommandSchema, { status: statusFromError(error) }));
      return;
    }
    reply = consumerSettingsReply(settings, groupConfig, deps.limits);
  } else {
    throw new ConnectError("settings carry neither publishing nor subscription", GrpcCode.InvalidArgument);
  }

  deps.clients.applySettings(call, channel, { clientType, group, topics, settings: reply });
  const answer = create(TelemetryCommandSchema, {
    status: okStatus(),
    command: { case: "settings", value: reply },
  });
  channel.push(answer);
  const timer = setTimeout(() => {
    state.timers.delete(timer);
    channel.push(answer);
  }, deps.limits.settingsResendDelayMs);
  state.timers.add(timer);
}

function invalidArgumentOnError(check: () => void): void {
  try {
    check();
  } catch (error) {
    if (isRmqError(error)) throw new ConnectError(error.message, GrpcCode.InvalidArgument);
    throw error;
  }
}

function asConnectError(error: unknown): ConnectError {
  if (error instanceof ConnectError) return error;
  return new ConnectError(error instanceof Error ? error.message : String(error), GrpcCode.Internal);
}
