// The read-only view of broker liveness that validation and the elect policy consult. It is taken at
// one instant (the heartbeat manager's `view(now)`), so the state machine itself never reads a clock.

/** Upstream default electionPriority (Integer.MAX_VALUE; lower is preferred). */
export const DEFAULT_ELECTION_PRIORITY = 2_147_483_647;

/** What the controller last heard from one broker (upstream BrokerLiveInfo). */
export interface BrokerLiveInfo {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
  lastUpdateTimestamp: number;
  heartbeatTimeoutMillis: number;
  /** Last epoch in the broker's epoch file; -1 if it did not say. */
  epoch: number;
  /** CommitLog max offset; -1 if it did not say. */
  maxOffset: number;
  confirmOffset: number;
  /** Lower is preferred; upstream default Integer.MAX_VALUE. */
  electionPriority: number;
}

export interface BrokerLiveness {
  isAlive(clusterName: string, brokerName: string, brokerId: number): boolean;
  liveInfo(clusterName: string, brokerName: string, brokerId: number): BrokerLiveInfo | undefined;
}
