// ReceiveMessage (pop with long polling). The response stream is always: one status, one response
// per message, one delivery_timestamp, then the end — also after errors, because clients buffer the
// whole stream and act only at its end (protocol.md §6). The call is really held while nothing is
// available (a server that answers at once makes push consumers spin).
//
// Long polling follows the upstream proxy: long_polling_timeout (or, when absent, the remaining
// deadline minus half the client's request timeout) clamped to [5 s, 20 s] and cut to the remaining
// deadline; less than 5 s left is ILLEGAL_POLLING_TIME (BAD_REQUEST for clients older than 5.0.3 by
// string comparison, which includes Node's "1.0.x"). Invisible time must be 10 s .. 12 h unless
// auto_renew, in which case the proxy uses 60 s and renews in the background
// (receipt-handle-renewer.ts). Messages delivered more often than the group allows go to the DLQ
// instead of the client; messages whose tag does not match exactly are acked silently.

import { create } from "@bufbuild/protobuf";
import { durationMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { createMessageFilter, type FilterType, type MessageFilter } from "../broker/filter/message-filter.ts";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientGroup } from "../common/group-validator.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import {
  Code,
  type Status,
  FilterType as V2FilterType,
} from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type ReceiveMessageRequest,
  type ReceiveMessageResponse,
  ReceiveMessageResponseSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import { MessageProperty, type PoppedMessage, TopicMessageType } from "./backend.ts";
import { BodyDigestFormat, bodyDigestFormatOf } from "./body-digest.ts";
import { maxDeliveryAttempts } from "./client-settings.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import {
  LONG_POLLING_DEADLINE_MARGIN_MS,
  NODE_CLIENT_MAX_RESPONSE_BYTES,
  type ProxyLimits,
} from "./limits.ts";
import { type DeliveredMessage, deliveredMessage, v2Message } from "./message-converter.ts";
import { resolveResource } from "./resource.ts";
import { okStatus, status, statusFromError } from "./status.ts";

/** Clients before this version get BAD_REQUEST instead of ILLEGAL_POLLING_TIME (upstream, string comparison). */
export const ILLEGAL_POLLING_TIME_INTRODUCED_CLIENT_VERSION = "5.0.3";
/** The request timeout assumed when the client's Settings are unknown (the SDKs' default). */
export const DEFAULT_CLIENT_REQUEST_TIMEOUT_MS = 3000;

export interface ReceiveOutcome {
  status: Status;
  /** The backend messages to deliver, in order (those never written are released). */
  popped: PoppedMessage[];
  /** The namespace names are shown in to the client. */
  namespace: string;
  group: string;
  topic: string;
  /** How the client checks body digests (body-digest.ts). */
  digestFormat: BodyDigestFormat;
}

/** A delivered message as a ReceiveMessageResponse (the protobuf-es way). */
export function receiveMessageResponse(message: DeliveredMessage): ReceiveMessageResponse {
  return create(ReceiveMessageResponseSchema, { content: { case: "message", value: v2Message(message) } });
}

/**
 * Everything a ReceiveMessage answers, decided before anything is written: `readCall` reads the
 * caller (it throws CLIENT_ID_REQUIRED, answered in the stream's status); `signal` aborts when the
 * client goes away or the call's deadline passes. Never rejects: failures are the outcome's status.
 */
export async function receiveOutcome(
  deps: ProxyDeps,
  request: ReceiveMessageRequest,
  readCall: () => CallContext,
  signal: AbortSignal,
): Promise<ReceiveOutcome> {
  try {
    const call = readCall();
    deps.clients.touch(call.clientId);
    return await receive(deps, call, request, signal);
  } catch (error) {
    return {
      status: statusFromError(error, deps.logger, "ReceiveMessage"),
      popped: [],
      namespace: "",
      group: "",
      topic: "",
      digestFormat: BodyDigestFormat.MD5_UPPER_HEX,
    };
  }
}

/**
 * The response stream of one receive, a response at a time: `writeMessage` turns each delivered
 * message into what the stream carries (receiveMessageResponse, or pre-encoded bytes).
 */
export async function* receiveMessage<T>(
  deps: ProxyDeps,
  request: ReceiveMessageRequest,
  readCall: () => CallContext,
  signal: AbortSignal,
  writeMessage: (message: DeliveredMessage) => ReceiveMessageResponse | T,
  onOutcome?: (outcome: ReceiveOutcome) => void,
): AsyncGenerator<ReceiveMessageResponse | T> {
  const outcome = await receiveOutcome(deps, request, readCall, signal);
  onOutcome?.(outcome);
  let written = 0;
  try {
    yield create(ReceiveMessageResponseSchema, { content: { case: "status", value: outcome.status } });
    const options = { namespace: outcome.namespace, digestFormat: outcome.digestFormat };
    for (const popped of outcome.popped) {
      yield writeMessage(deliveredMessage(popped, options));
      written++;
    }
    yield create(ReceiveMessageResponseSchema, {
      content: { case: "deliveryTimestamp", value: timestampNow() },
    });
  } finally {
    if (written < outcome.popped.length) releaseUnwritten(deps, outcome, written);
  }
}

/** The client went away mid-stream: make the messages it never got visible again at once. */
export function releaseUnwritten(deps: ProxyDeps, outcome: ReceiveOutcome, written: number): void {
  for (const popped of outcome.popped.slice(written)) {
    const messageId = popped.properties[MessageProperty.UNIQ_KEY] ?? "";
    void deps.renewer
      .take(outcome.group, messageId, popped.receiptHandle)
      .then((receiptHandle) =>
        deps.backend.changeInvisibleTime({
          group: outcome.group,
          topic: outcome.topic,
          receiptHandle,
          messageId,
          invisibleTimeMs: 0,
        }),
      )
      .catch((error: unknown) =>
        deps.logger.debug({ err: error, messageId }, "releasing an unwritten message failed"),
      );
  }
}

async function receive(
  deps: ProxyDeps,
  call: CallContext,
  request: ReceiveMessageRequest,
  callSignal: AbortSignal,
): Promise<ReceiveOutcome> {
  const { limits, backend } = deps;
  const pollTimeMs = longPollingTime(deps, call, request);
  const group = resolveResource(request.group, call);
  const topic = resolveResource(request.messageQueue?.topic, call);
  validateClientGroup(group.fullName);
  validateClientTopic(topic.fullName);
  const filterSpec = filterSpecOf(request);
  const filter = createMessageFilter(filterSpec);
  const invisibleTimeMs = receiveInvisibleTime(request, limits);
  const batchSize =
    request.batchSize <= 0
      ? limits.maxReceiveBatchSize
      : Math.min(request.batchSize, limits.maxReceiveBatchSize);

  const groupConfig = await backend.getSubscriptionGroup(group.fullName);
  if (!groupConfig.consumeEnable) {
    throw new RmqError(ErrorCode.Forbidden, `consumer group ${group.name} is not allowed to consume`);
  }
  const maxAttempts = maxDeliveryAttempts(groupConfig);

  // The poll's own deadline, cleared once the pop answers (AbortSignal.timeout cannot be cleared: its
  // timer would stay armed, and fire, for every receive long after it was answered).
  const pollTimeout = new AbortController();
  const pollTimer = setTimeout(abortPoll, Math.max(pollTimeMs, 1), pollTimeout);
  let popped: PoppedMessage[];
  try {
    let signal = AbortSignal.any([callSignal, deps.drainSignal, pollTimeout.signal]);
    // A LITE topic is read through the lite topics this client listens to (SyncLiteSubscription); a
    // change of that set ends the poll, so the client's next one reads the new set.
    let liteTopics: string[] | undefined;
    if ((await backend.getTopicRoute(topic.fullName)).messageType === TopicMessageType.LITE) {
      liteTopics = deps.liteSubscriptions.liteTopicsOf(call.clientId, group.fullName, topic.fullName);
      if (liteTopics.length === 0) {
        await deps.liteSubscriptions.waitForChange(call.clientId, pollTimeMs, signal);
        liteTopics = deps.liteSubscriptions.liteTopicsOf(call.clientId, group.fullName, topic.fullName);
      } else {
        const changed = new AbortController();
        void deps.liteSubscriptions
          .waitForChange(call.clientId, pollTimeMs, signal)
          .then(() => changed.abort());
        signal = AbortSignal.any([signal, changed.signal]);
      }
    }
    try {
      popped =
        liteTopics?.length === 0
          ? []
          : await backend.pop(
              {
                group: group.fullName,
                topic: topic.fullName,
                brokerName: request.messageQueue?.broker?.name || undefined,
                // Upstream pops from every queue of the chosen broker, whatever queue the client names;
                // Node clients only ever name queue 0.
                queueId: -1,
                filter: filterSpec,
                batchSize,
                invisibleTimeMs,
                pollTimeMs,
                fifo: groupConfig.consumeMessageOrderly || liteTopics !== undefined,
                attemptId: request.attemptId,
                liteTopics,
              },
              signal,
            );
    } catch (error) {
      // The contract says a held poll resolves with [] when its signal aborts; tolerate a rejection too.
      if (!(signal.aborted && isAbortError(error))) throw error;
      popped = [];
    }
  } finally {
    clearTimeout(pollTimer);
  }

  const deliver = await screen(deps, popped, group.fullName, topic.fullName, filter, maxAttempts);
  if (request.autoRenew) {
    for (const p of deliver) {
      deps.renewer.track({
        clientId: call.clientId,
        group: group.fullName,
        topic: topic.fullName,
        messageId: p.properties[MessageProperty.UNIQ_KEY] ?? "",
        receiptHandle: p.receiptHandle,
        invisibleTimeMs: p.invisibleTimeMs,
      });
    }
  }
  if (deliver.length > 0) {
    deps.metrics.messagesOut(
      topic.fullName,
      group.fullName,
      deliver.length,
      deliver.reduce((n, p) => n + p.body.byteLength, 0),
    );
  }
  for (const p of deliver) {
    // properties are capped at 16 KiB by default, so only near-limit bodies need a closer look
    if (
      p.body.byteLength > NODE_CLIENT_MAX_RESPONSE_BYTES / 2 &&
      approximateSize(p) > NODE_CLIENT_MAX_RESPONSE_BYTES
    ) {
      deps.logger.warn(
        {
          group: group.fullName,
          topic: topic.fullName,
          queueOffset: p.queueOffset,
          bodyBytes: p.body.byteLength,
        },
        "delivering a message larger than the 4 MiB response limit of grpc-js clients (the Node SDK will fail to read it)",
      );
    }
  }
  return {
    status: deliver.length > 0 ? okStatus() : status(Code.MESSAGE_NOT_FOUND, "no new message"),
    popped: deliver,
    namespace: topic.namespace,
    group: group.fullName,
    topic: topic.fullName,
    digestFormat: bodyDigestFormatOf(
      deps.clients.get(call.clientId)?.settings?.userAgent?.language,
      call.language,
    ),
  };
}

/**
 * Drop what must not reach the client: messages past the group's max attempts go to the DLQ,
 * messages whose tag only matched by hash are acked. Both happen concurrently; failures are logged
 * (the messages then come back after their invisible time and are screened again).
 */
async function screen(
  deps: ProxyDeps,
  popped: PoppedMessage[],
  group: string,
  topic: string,
  filter: MessageFilter,
  maxAttempts: number,
): Promise<PoppedMessage[]> {
  const deliver: PoppedMessage[] = [];
  const toAck: PoppedMessage[] = [];
  const work: Promise<unknown>[] = [];
  for (const p of popped) {
    const messageId = p.properties[MessageProperty.UNIQ_KEY] ?? "";
    if (p.deliveryAttempt - 1 >= maxAttempts) {
      work.push(
        deps.backend
          .forwardToDeadLetterQueue({
            group,
            topic,
            receiptHandle: p.receiptHandle,
            messageId,
            deliveryAttempt: p.deliveryAttempt,
            maxDeliveryAttempts: maxAttempts,
          })
          .catch((error: unknown) =>
            deps.logger.warn({ err: error, group, messageId }, "forwarding to the DLQ failed"),
          ),
      );
    } else if (
      filter.type === "TAG" &&
      !filter.matchesMessage(p.properties[MessageProperty.TAGS], propertySource(p))
    ) {
      toAck.push(p);
    } else {
      deliver.push(p);
    }
  }
  if (toAck.length > 0) {
    work.push(
      deps.backend
        .ackMessages({
          group,
          topic,
          entries: toAck.map((p) => ({
            receiptHandle: p.receiptHandle,
            messageId: p.properties[MessageProperty.UNIQ_KEY] ?? "",
          })),
        })
        .catch((error: unknown) =>
          deps.logger.warn({ err: error, group }, "acking filtered-out messages failed"),
        ),
    );
  }
  await Promise.all(work);
  return deliver;
}

/** Body plus properties plus room for the fixed fields: close enough to the encoded response size. */
function approximateSize(p: PoppedMessage): number {
  let size = p.body.byteLength + 512;
  for (const [name, value] of Object.entries(p.properties)) size += name.length + value.length + 4;
  return size;
}

function propertySource(p: PoppedMessage): { get(name: string): string | undefined } {
  return { get: (name) => p.properties[name] };
}

function filterSpecOf(request: ReceiveMessageRequest): { type: FilterType; expression: string } {
  const fe = request.filterExpression;
  if (fe === undefined) return { type: "TAG", expression: "*" };
  if (fe.type === V2FilterType.SQL) return { type: "SQL92", expression: fe.expression };
  if (fe.type === V2FilterType.TAG || fe.type === V2FilterType.FILTER_TYPE_UNSPECIFIED) {
    return { type: "TAG", expression: fe.expression.length === 0 ? "*" : fe.expression };
  }
  throw new RmqError(ErrorCode.IllegalFilterExpression, `unknown filter type ${fe.type}`);
}

function receiveInvisibleTime(request: ReceiveMessageRequest, limits: Readonly<ProxyLimits>): number {
  if (request.autoRenew) return limits.autoRenewInvisibleMs;
  const ms = request.invisibleDuration === undefined ? 0 : durationMs(request.invisibleDuration);
  if (ms < limits.minInvisibleMs || ms > limits.maxInvisibleMs) {
    throw new RmqError(
      ErrorCode.IllegalInvisibleTime,
      `invisible duration ${ms} ms is out of range [${limits.minInvisibleMs}, ${limits.maxInvisibleMs}] ms`,
    );
  }
  return ms;
}

/** How long to hold this receive, or throw when the client's deadline leaves too little. */
export function longPollingTime(deps: ProxyDeps, call: CallContext, request: ReceiveMessageRequest): number {
  const { minLongPollingMs, maxLongPollingMs } = deps.limits;
  const remaining = call.remainingMs();
  let polling: number;
  if (request.longPollingTimeout !== undefined) {
    polling = durationMs(request.longPollingTimeout);
  } else {
    const requestTimeout = deps.clients.get(call.clientId)?.settings?.requestTimeout;
    const requestTimeoutMs =
      requestTimeout === undefined ? DEFAULT_CLIENT_REQUEST_TIMEOUT_MS : durationMs(requestTimeout);
    polling = remaining - requestTimeoutMs / 2;
  }
  polling = Math.min(Math.max(polling, minLongPollingMs), maxLongPollingMs);
  if (polling > remaining) {
    if (remaining < minLongPollingMs) {
      const old =
        call.clientVersion.length === 0 ||
        ILLEGAL_POLLING_TIME_INTRODUCED_CLIENT_VERSION > call.clientVersion;
      throw new RmqError(
        old ? ErrorCode.IllegalArgument : ErrorCode.IllegalPollingTime,
        "The deadline time remaining is not enough for polling, please check network condition",
      );
    }
    polling = remaining;
  }
  return Math.max(0, Math.min(polling, remaining - LONG_POLLING_DEADLINE_MARGIN_MS));
}

function abortPoll(controller: AbortController): void {
  controller.abort(new DOMException("the poll time is over", "TimeoutError"));
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}
