// How an RmqError crosses an internal RPC (common/rpc-server.ts, common/rpc-client.ts).
//
// The server answers a handler's RmqError with a gRPC status chosen from its code AND the code itself
// in the `rmq-error-code` trailer; the client turns that back into an RmqError with the same code and
// message, so `isRmqError(e, ErrorCode.TopicNotFound)` works on the calling side exactly as it would
// in-process. Failures without that trailer (transport errors, deadlines, a foreign server) become
// the RPC_* codes, with the method and address in the message.

import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, RmqError } from "./errors.ts";

/** Trailer (gRPC error metadata) carrying the RmqError code of a failed call. */
export const RMQ_ERROR_CODE_HEADER = "rmq-error-code";

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** The gRPC status a code travels with; only clients that do not read the trailer rely on it. */
export function grpcCodeOf(code: ErrorCode): Code {
  switch (code) {
    case ErrorCode.NotImplemented:
      return Code.Unimplemented;
    case ErrorCode.Forbidden:
      return Code.PermissionDenied;
    case ErrorCode.Unauthorized:
      return Code.Unauthenticated;
    case ErrorCode.TooManyRequests:
    case ErrorCode.RpcResourceExhausted:
      return Code.ResourceExhausted;
    case ErrorCode.OffsetOutOfRange:
      return Code.OutOfRange;
    case ErrorCode.StoreShutdown:
    case ErrorCode.StoreNotWritable:
    case ErrorCode.SlaveNotAvailable:
    case ErrorCode.RpcUnavailable:
      return Code.Unavailable;
    case ErrorCode.RpcCanceled:
      return Code.Canceled;
    case ErrorCode.Internal:
      return Code.Internal;
  }
  if (code.endsWith("_NOT_FOUND")) return Code.NotFound;
  if (code.endsWith("_TIMEOUT")) return Code.DeadlineExceeded;
  if (code.startsWith("ILLEGAL_") || code.startsWith("INVALID_") || code.startsWith("MESSAGE_"))
    return Code.InvalidArgument;
  return Code.FailedPrecondition;
}

/** Server side: the ConnectError a handler's failure is answered with. */
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof RmqError) {
    return new ConnectError(e.message, grpcCodeOf(e.code), { [RMQ_ERROR_CODE_HEADER]: e.code }, undefined, e);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ConnectError(
    message,
    Code.Internal,
    { [RMQ_ERROR_CODE_HEADER]: ErrorCode.Internal },
    undefined,
    e,
  );
}

function transportCode(code: Code): ErrorCode {
  switch (code) {
    case Code.Unavailable:
      return ErrorCode.RpcUnavailable;
    case Code.DeadlineExceeded:
      return ErrorCode.RpcTimeout;
    case Code.Canceled:
      return ErrorCode.RpcCanceled;
    case Code.ResourceExhausted:
      return ErrorCode.RpcResourceExhausted;
    case Code.Unimplemented:
      return ErrorCode.NotImplemented;
    default:
      return ErrorCode.RpcFailed;
  }
}

/** True when the HTTP/2 stream of a call was refused unprocessed (REFUSED_STREAM), so a retry is safe. */
export function isRefusedStream(e: unknown): boolean {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    if (c.message.includes("NGHTTP2_REFUSED_STREAM")) return true;
  }
  return false;
}

/**
 * Client side: the RmqError a failed call surfaces as. `call` names the call for messages, e.g.
 * "rmq.namesrv.v1.NamesrvService/RegisterBroker to 127.0.0.1:9876".
 */
export function toRmqError(e: unknown, call: string): RmqError {
  if (e instanceof RmqError) return e;
  const ce = ConnectError.from(e);
  const carried = ce.metadata.get(RMQ_ERROR_CODE_HEADER);
  if (carried !== null && KNOWN_CODES.has(carried)) {
    return new RmqError(carried as ErrorCode, ce.rawMessage, { cause: ce });
  }
  const code = isRefusedStream(ce) ? ErrorCode.RpcUnavailable : transportCode(ce.code);
  return new RmqError(code, `rpc ${call} failed (${Code[ce.code] ?? ce.code}): ${ce.rawMessage}`, {
    cause: ce,
  });
}
