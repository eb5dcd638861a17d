// Typed errors with stable codes. Every layer throws RmqError with one of these codes; the proxy maps
// each code once to a RocketMQ v2 status code (proxy/status.ts), the CLI to an exit message.
// Codes are strings so they read well in logs and stay stable across versions.

export const ErrorCode = {
  // input validation
  IllegalTopic: "ILLEGAL_TOPIC",
  IllegalConsumerGroup: "ILLEGAL_CONSUMER_GROUP",
  IllegalMessageTag: "ILLEGAL_MESSAGE_TAG",
  IllegalMessageKey: "ILLEGAL_MESSAGE_KEY",
  IllegalMessageGroup: "ILLEGAL_MESSAGE_GROUP",
  IllegalMessageProperty: "ILLEGAL_MESSAGE_PROPERTY",
  MessagePropertiesTooLarge: "MESSAGE_PROPERTIES_TOO_LARGE",
  MessageBodyTooLarge: "MESSAGE_BODY_TOO_LARGE",
  MessageBodyEmpty: "MESSAGE_BODY_EMPTY",
  IllegalArgument: "ILLEGAL_ARGUMENT",
  // existence
  TopicNotFound: "TOPIC_NOT_FOUND",
  ConsumerGroupNotFound: "CONSUMER_GROUP_NOT_FOUND",
  MessageNotFound: "MESSAGE_NOT_FOUND",
  /** No client of a consumer group is connected (upstream CONSUMER_NOT_ONLINE). */
  ConsumerNotOnline: "CONSUMER_NOT_ONLINE",
  /** No producer of a producer group is connected. */
  ProducerNotOnline: "PRODUCER_NOT_ONLINE",
  // store state
  StoreNotWritable: "STORE_NOT_WRITABLE",
  StoreDiskFull: "STORE_DISK_FULL",
  StoreShutdown: "STORE_SHUTDOWN",
  StoreLocked: "STORE_LOCKED",
  FlushDiskTimeout: "FLUSH_DISK_TIMEOUT",
  OffsetOutOfRange: "OFFSET_OUT_OF_RANGE",
  CorruptRecord: "CORRUPT_RECORD",
  // config
  IllegalConfig: "ILLEGAL_CONFIG",
  // generic
  Internal: "INTERNAL",
  NotImplemented: "NOT_IMPLEMENTED",
  // raft (raft/core, raft/storage)
  RaftProposalDropped: "RAFT_PROPOSAL_DROPPED",
  RaftLogCompacted: "RAFT_LOG_COMPACTED",
  RaftLogUnavailable: "RAFT_LOG_UNAVAILABLE",
  RaftSnapshotTemporarilyUnavailable: "RAFT_SNAPSHOT_TEMPORARILY_UNAVAILABLE",
  RaftSnapshotOutOfDate: "RAFT_SNAPSHOT_OUT_OF_DATE",
  RaftInvariantViolated: "RAFT_INVARIANT_VIOLATED",
  // metadata files (common/atomic-file.ts, broker/metadata)
  MetadataCorrupt: "METADATA_CORRUPT",
  // message filters (broker/filter)
  IllegalFilterExpression: "ILLEGAL_FILTER_EXPRESSION",
  // store (broker/store)
  CommitLogOffsetMismatch: "COMMITLOG_OFFSET_MISMATCH",
  // proxy (gRPC v2 request checks and client sessions)
  ClientIdRequired: "CLIENT_ID_REQUIRED",
  IllegalMessageId: "ILLEGAL_MESSAGE_ID",
  IllegalInvisibleTime: "ILLEGAL_INVISIBLE_TIME",
  IllegalPollingTime: "ILLEGAL_POLLING_TIME",
  IllegalDeliveryTime: "ILLEGAL_DELIVERY_TIME",
  InvalidReceiptHandle: "INVALID_RECEIPT_HANDLE",
  InvalidTransactionId: "INVALID_TRANSACTION_ID",
  TransactionNotFound: "TRANSACTION_NOT_FOUND",
  MessageCorrupted: "MESSAGE_CORRUPTED",
  MessagePropertyConflictWithType: "MESSAGE_PROPERTY_CONFLICT_WITH_TYPE",
  // lite topics (broker/lite, proxy/lite-subscription-*.ts)
  IllegalLiteTopic: "ILLEGAL_LITE_TOPIC",
  IllegalOffset: "ILLEGAL_OFFSET",
  LiteSubscriptionQuotaExceeded: "LITE_SUBSCRIPTION_QUOTA_EXCEEDED",
  LiteTopicQuotaExceeded: "LITE_TOPIC_QUOTA_EXCEEDED",
  UnrecognizedClientType: "UNRECOGNIZED_CLIENT_TYPE",
  Forbidden: "FORBIDDEN",
  Unauthorized: "UNAUTHORIZED",
  TooManyRequests: "TOO_MANY_REQUESTS",
  ProxyTimeout: "PROXY_TIMEOUT",
  // send results of replicated masters (upstream SendStatus FLUSH_SLAVE_TIMEOUT / SLAVE_NOT_AVAILABLE)
  FlushSlaveTimeout: "FLUSH_SLAVE_TIMEOUT",
  SlaveNotAvailable: "SLAVE_NOT_AVAILABLE",
  // raft node driver and controller server (raft/node-driver.ts, controller/controller-server.ts)
  RaftNotLeader: "RAFT_NOT_LEADER",
  RaftProposalTimeout: "RAFT_PROPOSAL_TIMEOUT",
  RaftProposalLost: "RAFT_PROPOSAL_LOST",
  RaftNodeStopped: "RAFT_NODE_STOPPED",
  /** A controller answered a request with a refusal (its upstream response code is in the message). */
  ControllerRefused: "CONTROLLER_REFUSED",
  // internal RPC (common/rpc-client.ts, common/rpc-server.ts): transport failures of a call
  RpcUnavailable: "RPC_UNAVAILABLE",
  RpcTimeout: "RPC_TIMEOUT",
  RpcCanceled: "RPC_CANCELED",
  RpcResourceExhausted: "RPC_RESOURCE_EXHAUSTED",
  RpcFailed: "RPC_FAILED",
  ListenFailed: "LISTEN_FAILED",
  // admin (cli/admin): a cluster the NameServer does not know
  ClusterNotFound: "CLUSTER_NOT_FOUND",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class RmqError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RmqError";
    this.code = code;
  }
}

export function isRmqError(e: unknown, code?: ErrorCode): e is RmqError {
  return e instanceof RmqError && (code === undefined || e.code === code);
}
