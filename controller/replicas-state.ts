// The controller's replicated state (upstream ReplicasInfoManager's replicaInfoTable and
// syncStateSetInfoTable, kept as one record per broker set) and its snapshot form.
//
// Snapshot: UTF-8 JSON `{"version":1,"brokerSets":[...],"retiredEpochs":[...]}` with broker sets sorted
// by brokerName, brokers by id and SyncStateSet members ascending, so equal states give identical bytes.

import { ErrorCode, RmqError } from "../common/errors.ts";

export interface BrokerReplica {
  address: string;
  /** `"address;timestamp"` the broker applied its id with (persistent unique broker id). */
  registerCheckCode: string;
}

export interface BrokerSetState {
  clusterName: string;
  brokerName: string;
  /** Next id GetNextBrokerId hands out (starts at FIRST_BROKER_CONTROLLER_ID = 1). */
  nextAssignBrokerId: number;
  brokers: Map<number, BrokerReplica>;
  masterBrokerId: number | null;
  /** +1 on every master change (including "no master"); 0 = never had a master. */
  masterEpoch: number;
  syncStateSet: Set<number>;
  /** +1 on every SyncStateSet change. */
  syncStateSetEpoch: number;
}

/** Epochs of a broker set removed by CleanBrokerData; a set re-created under the same name continues from them. */
export interface RetiredEpochs {
  masterEpoch: number;
  syncStateSetEpoch: number;
}

export interface ReplicasState {
  brokerSets: Map<string, BrokerSetState>;
  retiredEpochs: Map<string, RetiredEpochs>;
}

export const REPLICAS_SNAPSHOT_VERSION = 1;

export function createReplicasState(): ReplicasState {
  return { brokerSets: new Map(), retiredEpochs: new Map() };
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function encodeReplicasSnapshot(state: ReplicasState): Uint8Array {
  const brokerSets = [...state.brokerSets.values()]
    .sort((a, b) => byCodeUnit(a.brokerName, b.brokerName))
    .map((s) => ({
      clusterName: s.clusterName,
      brokerName: s.brokerName,
      nextAssignBrokerId: s.nextAssignBrokerId,
      brokers: [...s.brokers.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([brokerId, r]) => ({ brokerId, address: r.address, registerCheckCode: r.registerCheckCode })),
      masterBrokerId: s.masterBrokerId,
      masterEpoch: s.masterEpoch,
      syncStateSet: [...s.syncStateSet].sort((a, b) => a - b),
      syncStateSetEpoch: s.syncStateSetEpoch,
    }));
  const retiredEpochs = [...state.retiredEpochs.entries()]
    .sort((a, b) => byCodeUnit(a[0], b[0]))
    .map(([brokerName, e]) => ({
      brokerName,
      masterEpoch: e.masterEpoch,
      syncStateSetEpoch: e.syncStateSetEpoch,
    }));
  return new TextEncoder().encode(
    JSON.stringify({ version: REPLICAS_SNAPSHOT_VERSION, brokerSets, retiredEpochs }),
  );
}

function corrupt(why: string): RmqError {
  return new RmqError(ErrorCode.CorruptRecord, `controller snapshot: ${why}`);
}
function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw corrupt(`${what} is not an object`);
  return v as Record<string, unknown>;
}
function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw corrupt(`${what} is not a list`);
  return v;
}
function str(o: Record<string, unknown>, k: string): string {
  const v = o[k];
  if (typeof v !== "string") throw corrupt(`${k} is not a string`);
  return v;
}
function int(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw corrupt(`${what} is not an integer`);
  return v;
}

export function decodeReplicasSnapshot(bytes: Uint8Array): ReplicasState {
  let root: Record<string, unknown>;
  try {
    root = obj(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes)), "root");
  } catch (e) {
    if (e instanceof RmqError) throw e;
    throw new RmqError(ErrorCode.CorruptRecord, "controller snapshot: not JSON", { cause: e });
  }
  if (root.version !== REPLICAS_SNAPSHOT_VERSION)
    throw corrupt(`unsupported version ${String(root.version)}`);
  const state = createReplicasState();
  for (const raw of list(root.brokerSets, "brokerSets")) {
    const s = obj(raw, "broker set");
    const brokerName = str(s, "brokerName");
    const brokers = new Map<number, BrokerReplica>();
    for (const rb of list(s.brokers, "brokers")) {
      const b = obj(rb, "broker");
      brokers.set(int(b.brokerId, "brokerId"), {
        address: str(b, "address"),
        registerCheckCode: str(b, "registerCheckCode"),
      });
    }
    const syncStateSet = new Set(
      list(s.syncStateSet, "syncStateSet").map((x) => int(x, "syncStateSet member")),
    );
    state.brokerSets.set(brokerName, {
      clusterName: str(s, "clusterName"),
      brokerName,
      nextAssignBrokerId: int(s.nextAssignBrokerId, "nextAssignBrokerId"),
      brokers,
      masterBrokerId: s.masterBrokerId === null ? null : int(s.masterBrokerId, "masterBrokerId"),
      masterEpoch: int(s.masterEpoch, "masterEpoch"),
      syncStateSet,
      syncStateSetEpoch: int(s.syncStateSetEpoch, "syncStateSetEpoch"),
    });
  }
  for (const raw of list(root.retiredEpochs, "retiredEpochs")) {
    const r = obj(raw, "retired epochs");
    state.retiredEpochs.set(str(r, "brokerName"), {
      masterEpoch: int(r.masterEpoch, "masterEpoch"),
      syncStateSetEpoch: int(r.syncStateSetEpoch, "syncStateSetEpoch"),
    });
  }
  return state;
}
