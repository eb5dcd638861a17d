// Prometheus metrics of one controller node. Upstream's controller meter uses bare names (`role`,
// `request_total`, `election_total`, ...); here they carry a `rocketmq_controller_` prefix so they do
// not collide with other roles on a shared registry. Labels follow upstream (request_type,
// request_handle_status, election_result, cluster, broker_set).

import { Counter, Gauge, Histogram, type Registry } from "prom-client";

export const RequestHandleStatus = { Success: "success", Failed: "failed", Timeout: "timeout" } as const;
export type RequestHandleStatus = (typeof RequestHandleStatus)[keyof typeof RequestHandleStatus];

export const ElectionResult = {
  NewMasterElected: "new_master_elected",
  KeepCurrentMaster: "keep_current_master",
  NoMasterElected: "no_master_elected",
} as const;
export type ElectionResult = (typeof ElectionResult)[keyof typeof ElectionResult];

export interface ControllerMetricsSource {
  isLeader(): boolean;
  raft(): { term: number; commit: number; applied: number };
  /** clusterName → brokerName → alive brokers. */
  activeBrokers(): Map<string, Map<string, number>>;
}

export interface ControllerMetrics {
  request(type: string, status: RequestHandleStatus, micros: number): void;
  election(result: ElectionResult): void;
}

export function createControllerMetrics(
  registry: Registry,
  labels: { address: string; group: string; peerId: string },
  source: ControllerMetricsSource,
): ControllerMetrics {
  const constLabels = { address: labels.address, group: labels.group, peer_id: labels.peerId };
  new Gauge({
    name: "rocketmq_controller_role",
    help: "1 while this node is the Raft leader, else 0",
    labelNames: ["address", "group", "peer_id"],
    registers: [registry],
    collect() {
      this.set(constLabels, source.isLeader() ? 1 : 0);
    },
  });
  for (const [field, help] of [
    ["term", "current Raft term"],
    ["commit", "Raft commit index"],
    ["applied", "Raft applied index"],
  ] as const) {
    new Gauge({
      name: `rocketmq_controller_raft_${field === "term" ? "term" : `${field}_index`}`,
      help,
      labelNames: ["address", "group", "peer_id"],
      registers: [registry],
      collect() {
        this.set(constLabels, source.raft()[field]);
      },
    });
  }
  new Gauge({
    name: "rocketmq_controller_active_broker_num",
    help: "brokers whose heartbeat this node holds and has not expired",
    labelNames: ["cluster", "broker_set"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [cluster, sets] of source.activeBrokers()) {
        for (const [brokerSet, n] of sets) this.set({ cluster, broker_set: brokerSet }, n);
      }
    },
  });
  const requests = new Counter({
    name: "rocketmq_controller_request_total",
    help: "controller requests handled",
    labelNames: ["request_type", "request_handle_status"],
    registers: [registry],
  });
  const latency = new Histogram({
    name: "rocketmq_controller_request_latency",
    help: "controller request latency in microseconds (upstream unit)",
    labelNames: ["request_type"],
    buckets: [100, 500, 1_000, 5_000, 10_000, 50_000, 100_000, 500_000, 1_000_000, 5_000_000],
    registers: [registry],
  });
  const elections = new Counter({
    name: "rocketmq_controller_election_total",
    help: "master elections decided by this node as leader",
    labelNames: ["election_result"],
    registers: [registry],
  });
  return {
    request(type, status, micros) {
      requests.inc({ request_type: type, request_handle_status: status });
      latency.observe({ request_type: type }, micros);
    },
    election(result) {
      elections.inc({ election_result: result });
    },
  };
}
