// How errors reach RocketMQ 5 clients: every ErrorCode maps once to a v2 Code, carried in the
// response body's Status while the gRPC status stays OK (as the upstream proxy does). Anything that
// is not an RmqError becomes INTERNAL_SERVER_ERROR with a short message; the details go to the log.

import { ErrorCode, isRmqError } from "../common/errors.ts";
import type { Logger } from "../common/logger.ts";
import { Code, type Status, StatusSchema } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";

/** The v2 code of every ErrorCode. Adding an ErrorCode without a row here is a compile error. */
export const ERROR_CODE_TO_V2: Readonly<Record<ErrorCode, Code>> = Object.freeze({
  [ErrorCode.IllegalTopic]: Code.ILLEGAL_TOPIC,
  [ErrorCode.IllegalConsumerGroup]: Code.ILLEGAL_CONSUMER_GROUP,
  [ErrorCode.IllegalMessageTag]: Code.ILLEGAL_MESSAGE_TAG,
  [ErrorCode.IllegalMessageKey]: Code.ILLEGAL_MESSAGE_KEY,
  [ErrorCode.IllegalMessageGroup]: Code.ILLEGAL_MESSAGE_GROUP,
  [ErrorCode.IllegalMessageProperty]: Code.ILLEGAL_MESSAGE_PROPERTY_KEY,
  [ErrorCode.MessagePropertiesTooLarge]: Code.MESSAGE_PROPERTIES_TOO_LARGE,
  [ErrorCode.MessageBodyTooLarge]: Code.MESSAGE_BODY_TOO_LARGE,
  [ErrorCode.MessageBodyEmpty]: Code.MESSAGE_BODY_EMPTY,
  [ErrorCode.IllegalArgument]: Code.BAD_REQUEST,
  [ErrorCode.TopicNotFound]: Code.TOPIC_NOT_FOUND,
  [ErrorCode.ConsumerGroupNotFound]: Code.CONSUMER_GROUP_NOT_FOUND,
  [ErrorCode.ConsumerNotOnline]: Code.NOT_FOUND,
  [ErrorCode.ProducerNotOnline]: Code.NOT_FOUND,
  [ErrorCode.MessageNotFound]: Code.MESSAGE_NOT_FOUND,
  // Upstream answers a broker that cannot take writes (slave, disk full, shutting down) with
  // SERVICE_NOT_AVAILABLE, which the proxy reports as INTERNAL_SERVER_ERROR; clients retry those.
  [ErrorCode.StoreNotWritable]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.StoreDiskFull]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.StoreShutdown]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.StoreLocked]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.FlushDiskTimeout]: Code.MASTER_PERSISTENCE_TIMEOUT,
  [ErrorCode.OffsetOutOfRange]: Code.ILLEGAL_OFFSET,
  [ErrorCode.CorruptRecord]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.IllegalConfig]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.Internal]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.NotImplemented]: Code.NOT_IMPLEMENTED,
  [ErrorCode.RaftProposalDropped]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftLogCompacted]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftLogUnavailable]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftSnapshotTemporarilyUnavailable]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftSnapshotOutOfDate]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftInvariantViolated]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftNodeStopped]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftNotLeader]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftProposalLost]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RaftProposalTimeout]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.ControllerRefused]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.ClusterNotFound]: Code.NOT_FOUND,
  [ErrorCode.MetadataCorrupt]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.IllegalFilterExpression]: Code.ILLEGAL_FILTER_EXPRESSION,
  [ErrorCode.CommitLogOffsetMismatch]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.ClientIdRequired]: Code.CLIENT_ID_REQUIRED,
  [ErrorCode.IllegalMessageId]: Code.ILLEGAL_MESSAGE_ID,
  [ErrorCode.IllegalInvisibleTime]: Code.ILLEGAL_INVISIBLE_TIME,
  [ErrorCode.IllegalPollingTime]: Code.ILLEGAL_POLLING_TIME,
  [ErrorCode.IllegalDeliveryTime]: Code.ILLEGAL_DELIVERY_TIME,
  [ErrorCode.InvalidReceiptHandle]: Code.INVALID_RECEIPT_HANDLE,
  [ErrorCode.InvalidTransactionId]: Code.INVALID_TRANSACTION_ID,
  // Upstream reports "cannot found transaction data" as INTERNAL_SERVER_ERROR; the id is simply
  // unknown (already resolved or never prepared), which INVALID_TRANSACTION_ID says better.
  [ErrorCode.TransactionNotFound]: Code.INVALID_TRANSACTION_ID,
  [ErrorCode.MessageCorrupted]: Code.MESSAGE_CORRUPTED,
  [ErrorCode.MessagePropertyConflictWithType]: Code.MESSAGE_PROPERTY_CONFLICT_WITH_TYPE,
  [ErrorCode.IllegalLiteTopic]: Code.ILLEGAL_LITE_TOPIC,
  [ErrorCode.IllegalOffset]: Code.ILLEGAL_OFFSET,
  [ErrorCode.LiteSubscriptionQuotaExceeded]: Code.LITE_SUBSCRIPTION_QUOTA_EXCEEDED,
  [ErrorCode.LiteTopicQuotaExceeded]: Code.LITE_TOPIC_QUOTA_EXCEEDED,
  [ErrorCode.UnrecognizedClientType]: Code.UNRECOGNIZED_CLIENT_TYPE,
  [ErrorCode.Forbidden]: Code.FORBIDDEN,
  [ErrorCode.Unauthorized]: Code.UNAUTHORIZED,
  [ErrorCode.TooManyRequests]: Code.TOO_MANY_REQUESTS,
  [ErrorCode.ProxyTimeout]: Code.PROXY_TIMEOUT,
  [ErrorCode.FlushSlaveTimeout]: Code.SLAVE_PERSISTENCE_TIMEOUT,
  [ErrorCode.SlaveNotAvailable]: Code.HA_NOT_AVAILABLE,
  // A broker reached over internal RPC (cluster mode): upstream reports a broker timeout as
  // PROXY_TIMEOUT and a busy broker as TOO_MANY_REQUESTS; other transport failures are internal.
  [ErrorCode.RpcUnavailable]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RpcTimeout]: Code.PROXY_TIMEOUT,
  [ErrorCode.RpcCanceled]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.RpcResourceExhausted]: Code.TOO_MANY_REQUESTS,
  [ErrorCode.RpcFailed]: Code.INTERNAL_SERVER_ERROR,
  [ErrorCode.ListenFailed]: Code.INTERNAL_SERVER_ERROR,
});

/** Longest error message put into a Status; clients log it, so keep it readable. */
const MAX_STATUS_MESSAGE_CHARS = 512;

export function v2CodeOf(code: ErrorCode): Code {
  return ERROR_CODE_TO_V2[code] ?? Code.INTERNAL_SERVER_ERROR;
}

/** Upper-case name of a v2 code ("OK", "TOPIC_NOT_FOUND"), also used as a metrics label. */
const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Code).map(([name, value]) => [value, name]),
);

export function v2CodeName(code: Code): string {
  return CODE_NAMES.get(code) ?? String(code);
}

const CODE_LABELS: ReadonlyMap<number, string> = new Map(
  [...CODE_NAMES].map(([value, name]) => [value, name.toLowerCase()]),
);

/** Lower-case name of a v2 code ("ok", "topic_not_found"): the response_code metrics label. */
export function v2CodeLabel(code: Code): string {
  return CODE_LABELS.get(code) ?? String(code);
}

/** create(StatusSchema, ...) written out: every RPC answers with at least one Status. */
export function status(code: Code, message?: string): Status {
  return {
    $typeName: StatusSchema.typeName as Status["$typeName"],
    code,
    message: truncate(message ?? v2CodeName(code)),
  };
}

export function okStatus(): Status {
  return { $typeName: StatusSchema.typeName as Status["$typeName"], code: Code.OK, message: "OK" };
}

/**
 * The Status for a failure. RmqErrors map through the table; anything else is an internal error
 * whose stack goes to the log (when a logger is given) and whose client-facing message stays short.
 */
export function statusFromError(error: unknown, logger?: Logger, what?: string): Status {
  if (isRmqError(error)) return status(v2CodeOf(error.code), error.message);
  logger?.error({ err: error }, `internal error${what === undefined ? "" : ` in ${what}`}`);
  const name = error instanceof Error ? error.name : typeof error;
  const message = error instanceof Error ? error.message : String(error);
  return status(Code.INTERNAL_SERVER_ERROR, `internal server error: ${name}: ${message}`);
}

/**
 * Top-level status of a batch (SendMessage, AckMessage): the single distinct entry code, or
 * MULTIPLE_RESULTS when the entries disagree. `entries` must not be empty.
 */
export function batchStatus(entries: readonly Status[]): Status {
  const first = entries[0];
  if (first === undefined) return status(Code.INTERNAL_SERVER_ERROR, "no result entries");
  for (const entry of entries) {
    if (entry.code !== first.code) return status(Code.MULTIPLE_RESULTS, "MULTIPLE_RESULTS");
  }
  return first.code === Code.OK ? okStatus() : status(first.code, first.message);
}

function truncate(message: string): string {
  return message.length <= MAX_STATUS_MESSAGE_CHARS
    ? message
    : `${message.slice(0, MAX_STATUS_MESSAGE_CHARS)}...`;
}
