// Transactions: EndTransaction (commit or roll back a half message, from the producer's own decision
// or in answer to an orphan check), and the RecoverOrphanedTransactionCommand the proxy pushes on a
// producer's Telemetry stream when the backend asks whether a half message should commit.
// The producer group of gRPC producers is the topic (upstream), so checks go to any producer that
// published or declared the topic.

import { create } from "@bufbuild/protobuf";
import { ErrorCode, RmqError } from "../common/errors.ts";
import { validateClientTopic } from "../common/topic-validator.ts";
import { TransactionResolution, TransactionSource } from "../proto/gen/apache/rocketmq/v2/definition_pb.ts";
import {
  type EndTransactionRequest,
  type EndTransactionResponse,
  EndTransactionResponseSchema,
  type TelemetryCommand,
  TelemetryCommandSchema,
} from "../proto/gen/apache/rocketmq/v2/service_pb.ts";
import type { TransactionCheck } from "./backend.ts";
import type { CallContext } from "./context.ts";
import type { ProxyDeps } from "./deps.ts";
import { v2MessageFromPopped } from "./message-converter.ts";
import { resolveResource } from "./resource.ts";
import { okStatus } from "./status.ts";

export async function endTransaction(
  deps: ProxyDeps,
  call: CallContext,
  request: EndTransactionRequest,
): Promise<EndTransactionResponse> {
  const topic = resolveResource(request.topic, call);
  validateClientTopic(topic.fullName);
  if (request.transactionId.trim().length === 0) {
    throw new RmqError(ErrorCode.InvalidTransactionId, "transaction id is empty");
  }
  if (request.messageId.trim().length === 0)
    throw new RmqError(ErrorCode.IllegalMessageId, "message id is empty");
  const resolution =
    request.resolution === TransactionResolution.COMMIT
      ? "COMMIT"
      : request.resolution === TransactionResolution.ROLLBACK
        ? "ROLLBACK"
        : undefined;
  if (resolution === undefined) {
    // UNKNOWN: the producer cannot decide yet; the backend checks again later (upstream does nothing either).
    deps.logger.debug(
      { topic: topic.fullName, transactionId: request.transactionId },
      "transaction left unresolved",
    );
    return create(EndTransactionResponseSchema, { status: okStatus() });
  }
  await deps.backend.endTransaction({
    topic: topic.fullName,
    producerGroup: topic.fullName,
    messageId: request.messageId,
    transactionId: request.transactionId,
    resolution,
    fromTransactionCheck: request.source === TransactionSource.SOURCE_SERVER_CHECK,
  });
  return create(EndTransactionResponseSchema, { status: okStatus() });
}

/** The command asking a producer to resolve an orphaned half message. */
export function recoverOrphanedTransactionCommand(check: TransactionCheck, namespace = ""): TelemetryCommand {
  return create(TelemetryCommandSchema, {
    command: {
      case: "recoverOrphanedTransactionCommand",
      value: {
        message: v2MessageFromPopped(check.message, { namespace, receiptHandle: "" }),
        transactionId: check.transactionId,
      },
    },
  });
}
