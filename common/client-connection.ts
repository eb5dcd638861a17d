// A client as brokers know it through a proxy: its connection (mqadmin's Connection) and what its
// heartbeats say it consumes or produces. The proxy sends these over its MessagingBackend; the broker
// keeps them in broker/client-connections.ts.

export interface ClientConnection {
  clientId: string;
  /** host:port the client connected from. */
  clientAddr: string;
  language: string;
  version: string;
}

export interface ConsumerSubscription {
  topic: string;
  expression: string;
  expressionType: "TAG" | "SQL92";
}

/** Upstream ConsumeType names: push consumers are served passively, simple/pull ones actively. */
export const ConsumeType = {
  CONSUME_PASSIVELY: "CONSUME_PASSIVELY",
  CONSUME_ACTIVELY: "CONSUME_ACTIVELY",
} as const;
export type ConsumeType = (typeof ConsumeType)[keyof typeof ConsumeType];

/** A heartbeat of one client: a consumer of `consumerGroup`, or a producer of `producerGroups`. */
export interface ClientHeartbeat {
  connection: ClientConnection;
  consumerGroup?: string;
  consumeType?: ConsumeType;
  subscriptions?: readonly ConsumerSubscription[];
  producerGroups?: readonly string[];
}
