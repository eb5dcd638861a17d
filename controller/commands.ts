// Requests the controller's state machine answers and the responses it gives, shaped after upstream's
// controller request/response headers (and their bodies: SyncStateSet, ElectMasterResponseBody,
// BrokerReplicasInfo). Ids are JS numbers (safe integers); upstream uses Java longs.

import type { ControllerEvent } from "./events.ts";
import type { ControllerError } from "./response-code.ts";

/** Upstream MixAll.FIRST_BROKER_CONTROLLER_ID: the first id handed out in a broker set. */
export const FIRST_BROKER_CONTROLLER_ID = 1;
/** brokerId in an ElectMaster request when the controller itself triggers the election. */
export const CONTROLLER_TRIGGERED_BROKER_ID = -1;

export interface GetNextBrokerIdRequest {
  clusterName: string;
  brokerName: string;
}
export interface GetNextBrokerIdResponse {
  clusterName: string;
  brokerName: string;
  nextBrokerId: number;
}

export interface ApplyBrokerIdRequest {
  clusterName: string;
  brokerName: string;
  appliedBrokerId: number;
  /** `"address;timestamp"` written by the broker into its brokerIdentity-temp file. */
  registerCheckCode: string;
}
export interface ApplyBrokerIdResponse {
  clusterName: string;
  brokerName: string;
}

export interface RegisterBrokerRequest {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
}
export interface RegisterBrokerResponse {
  clusterName: string;
  brokerName: string;
  /** Set only when a master exists and is alive. */
  masterBrokerId: number | null;
  masterAddress: string | null;
  masterEpoch: number | null;
  syncStateSetEpoch: number | null;
  syncStateSet: SyncStateSet;
}

/** Upstream body `SyncStateSet`. */
export interface SyncStateSet {
  syncStateSet: number[];
  syncStateSetEpoch: number;
}

export interface AlterSyncStateSetRequest {
  brokerName: string;
  masterBrokerId: number;
  masterEpoch: number;
  /** The proposed set and the syncStateSetEpoch the master last saw. */
  newSyncStateSet: number[];
  syncStateSetEpoch: number;
}
export interface AlterSyncStateSetResponse {
  newSyncStateSetEpoch: number;
  syncStateSet: SyncStateSet;
}

export interface ElectMasterRequest {
  clusterName: string;
  brokerName: string;
  /** The requesting (or, with designateElect, the designated) broker; -1 = triggered by the controller. */
  brokerId: number;
  designateElect: boolean;
}
export interface BrokerMemberGroup {
  clusterName: string;
  brokerName: string;
  /** brokerId → address, ids ascending. */
  brokerAddrs: Array<{ brokerId: number; address: string }>;
}
export interface ElectMasterResponse {
  masterBrokerId: number | null;
  masterAddress: string | null;
  masterEpoch: number;
  syncStateSetEpoch: number;
  syncStateSet: number[];
  brokerMemberGroup: BrokerMemberGroup | null;
}

export interface GetReplicaInfoRequest {
  brokerName: string;
}
export interface GetReplicaInfoResponse {
  masterBrokerId: number | null;
  masterAddress: string | null;
  masterEpoch: number;
  syncStateSet: SyncStateSet;
}

export interface ReplicaIdentity {
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
  alive: boolean;
}
export interface BrokerSetReplicasInfo {
  masterBrokerId: number | null;
  masterAddress: string | null;
  masterEpoch: number;
  syncStateSetEpoch: number;
  inSyncReplicas: ReplicaIdentity[];
  notInSyncReplicas: ReplicaIdentity[];
}
/** Upstream body `BrokerReplicasInfo`: brokerName → replicas info, for the broker sets that exist. */
export interface SyncStateData {
  replicasInfoTable: Map<string, BrokerSetReplicasInfo>;
}

export interface CleanBrokerDataRequest {
  clusterName: string;
  brokerName: string;
  /** `;`-separated broker ids; empty or absent = the whole broker set. */
  brokerControllerIdsToClean?: string;
  cleanLivingBroker: boolean;
}

/**
 * What a validation returns. `events` are to be proposed to Raft (empty for reads and for most
 * refusals); a refusal may still carry events (a controller-triggered election that found nobody
 * clears the master) and a response (CONTROLLER_MASTER_STILL_EXIST reports the current master).
 */
export type ControllerResult<T> =
  | { ok: true; response: T; events: ControllerEvent[] }
  | { ok: false; error: ControllerError; response: T | null; events: ControllerEvent[] };
