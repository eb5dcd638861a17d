// The controller's replicated state machine (upstream ReplicasInfoManager), pure and deterministic.
//
// Every write is split in two:
// - `validate*(state, request, ctx)` runs on the Raft leader before proposing. It may consult broker
//   liveness (a view frozen at one instant) and returns a response plus the events to propose, or a
//   typed refusal. It never mutates the state.
// - `applyEvent(state, event)` runs on every replica when the entry commits. It reads nothing but the
//   state and the event, so all replicas end up identical. It re-checks the event's preconditions
//   (the events carry the epochs they were validated against) and refuses stale ones.
//
// Deliberate differences from upstream, each a safety or determinism fix:
// - A broker set is one record; CleanBrokerData that removes the master clears it, so
//   "master ∈ SyncStateSet" always holds; a set whose SyncStateSet became empty elects like a new one.
// - Cleaning a whole set remembers its epochs, so a set re-created under the same name never goes
//   back to epoch 0 (brokers refuse a master epoch below the one in their epoch file).
// - nextAssignBrokerId = max(next, appliedId + 1) instead of +1 per registration, so GetNextBrokerId
//   never hands out an id that is already taken.
// - AlterSyncStateSet checks fencing (master, epochs) before "the set is unchanged".
// - Election ties are broken by the lowest broker id (upstream: hash-set order).

import type { BrokerLiveness } from "./broker-liveness.ts";
import {
  type AlterSyncStateSetRequest,
  type AlterSyncStateSetResponse,
  type ApplyBrokerIdRequest,
  type ApplyBrokerIdResponse,
  type BrokerMemberGroup,
  type BrokerSetReplicasInfo,
  type CleanBrokerDataRequest,
  CONTROLLER_TRIGGERED_BROKER_ID,
  type ControllerResult,
  type ElectMasterRequest,
  type ElectMasterResponse,
  FIRST_BROKER_CONTROLLER_ID,
  type GetNextBrokerIdRequest,
  type GetNextBrokerIdResponse,
  type GetReplicaInfoRequest,
  type GetReplicaInfoResponse,
  type RegisterBrokerRequest,
  type RegisterBrokerResponse,
  type ReplicaIdentity,
  type SyncStateData,
} from "./commands.ts";
import { electMasterByPolicy } from "./elect-policy.ts";
import { type ControllerEvent, decodeControllerEvents } from "./events.ts";
import {
  type BrokerSetState,
  createReplicasState,
  decodeReplicasSnapshot,
  encodeReplicasSnapshot,
  type ReplicasState,
} from "./replicas-state.ts";
import { type ControllerError, type ControllerErrorCode, controllerError } from "./response-code.ts";

export interface ReplicasInfoOptions {
  /** Upstream ControllerConfig.enableElectUncleanMaster (default false). */
  enableElectUncleanMaster: boolean;
}
export const DEFAULT_REPLICAS_INFO_OPTIONS: ReplicasInfoOptions = { enableElectUncleanMaster: false };

export interface ValidationContext {
  liveness: BrokerLiveness;
  options: ReplicasInfoOptions;
}

export type ApplyOutcome = { applied: true } | { applied: false; error: ControllerError };

// ---------------------------------------------------------------------------------------------
// helpers

function ok<T>(response: T, events: ControllerEvent[] = []): ControllerResult<T> {
  return { ok: true, response, events };
}
function fail<T>(
  code: ControllerErrorCode,
  remark: string,
  response: T | null = null,
  events: ControllerEvent[] = [],
): ControllerResult<T> {
  return { ok: false, error: controllerError(code, remark), response, events };
}

function badName(v: unknown): boolean {
  return typeof v !== "string" || v.length === 0;
}
function isBrokerId(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= FIRST_BROKER_CONTROLLER_ID;
}
function isEpoch(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function sortedIds(ids: Iterable<number>): number[] {
  return [...ids].sort((a, b) => a - b);
}

function addressOf(set: BrokerSetState, brokerId: number | null): string | null {
  return brokerId === null ? null : (set.brokers.get(brokerId)?.address ?? null);
}

function memberGroupOf(set: BrokerSetState): BrokerMemberGroup {
  return {
    clusterName: set.clusterName,
    brokerName: set.brokerName,
    brokerAddrs: sortedIds(set.brokers.keys()).map((brokerId) => ({
      brokerId,
      address: (set.brokers.get(brokerId) as { address: string }).address,
    })),
  };
}

function sameMembers(a: ReadonlySet<number>, b: readonly number[]): boolean {
  return a.size === b.length && b.every((id) => a.has(id));
}

/** A set elects like a new one when it has no SyncStateSet (never had a master, or it was cleaned). */
function isFirstTimeForElect(set: BrokerSetState): boolean {
  return set.syncStateSet.size === 0 && set.masterBrokerId === null;
}

// ---------------------------------------------------------------------------------------------
// validation (leader side)

export function validateGetNextBrokerId(
  state: ReplicasState,
  req: GetNextBrokerIdRequest,
): ControllerResult<GetNextBrokerIdResponse> {
  if (badName(req.brokerName)) return fail("CONTROLLER_INVALID_REQUEST", "brokerName is empty");
  const set = state.brokerSets.get(req.brokerName);
  return ok({
    clusterName: req.clusterName,
    brokerName: req.brokerName,
    nextBrokerId: set === undefined ? FIRST_BROKER_CONTROLLER_ID : set.nextAssignBrokerId,
  });
}

export function validateApplyBrokerId(
  state: ReplicasState,
  req: ApplyBrokerIdRequest,
): ControllerResult<ApplyBrokerIdResponse> {
  if (badName(req.clusterName) || badName(req.brokerName)) {
    return fail("CONTROLLER_INVALID_REQUEST", "clusterName and brokerName are required");
  }
  if (!isBrokerId(req.appliedBrokerId)) {
    return fail("CONTROLLER_INVALID_REQUEST", `invalid appliedBrokerId ${String(req.appliedBrokerId)}`);
  }
  if (badName(req.registerCheckCode)) return fail("CONTROLLER_INVALID_REQUEST", "registerCheckCode is empty");
  const brokerAddress = req.registerCheckCode.split(";")[0] as string;
  if (brokerAddress.length === 0)
    return fail("CONTROLLER_INVALID_REQUEST", "registerCheckCode has no address");
  const response: ApplyBrokerIdResponse = { clusterName: req.clusterName, brokerName: req.brokerName };
  const event: ControllerEvent = {
    type: "ApplyBrokerId",
    clusterName: req.clusterName,
    brokerName: req.brokerName,
    brokerId: req.appliedBrokerId,
    brokerAddress,
    registerCheckCode: req.registerCheckCode,
  };
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    if (req.appliedBrokerId !== FIRST_BROKER_CONTROLLER_ID) {
      return fail(
        "CONTROLLER_BROKER_ID_INVALID",
        `broker set ${req.brokerName} is not registered; its first broker id must be ${FIRST_BROKER_CONTROLLER_ID}, not ${req.appliedBrokerId}`,
      );
    }
    return ok(response, [event]);
  }
  const existing = set.brokers.get(req.appliedBrokerId);
  if (existing === undefined) return ok(response, [event]);
  if (existing.registerCheckCode === req.registerCheckCode) return ok(response); // already this broker's id
  return fail(
    "CONTROLLER_BROKER_ID_INVALID",
    `broker id ${req.appliedBrokerId} in broker set ${req.brokerName} belongs to another broker`,
  );
}

export function validateRegisterBroker(
  state: ReplicasState,
  req: RegisterBrokerRequest,
  ctx: ValidationContext,
): ControllerResult<RegisterBrokerResponse> {
  if (badName(req.brokerName) || badName(req.brokerAddress) || !isBrokerId(req.brokerId)) {
    return fail("CONTROLLER_INVALID_REQUEST", "brokerName, brokerAddress and a valid brokerId are required");
  }
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    return fail("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED", `broker set ${req.brokerName} is not registered`);
  }
  const replica = set.brokers.get(req.brokerId);
  if (replica === undefined) {
    return fail(
      "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
      `broker id ${req.brokerId} is not registered in broker set ${req.brokerName}`,
    );
  }
  const masterAlive =
    set.masterBrokerId !== null && ctx.liveness.isAlive(set.clusterName, set.brokerName, set.masterBrokerId);
  const response: RegisterBrokerResponse = {
    clusterName: req.clusterName,
    brokerName: req.brokerName,
    masterBrokerId: masterAlive ? set.masterBrokerId : null,
    masterAddress: masterAlive ? addressOf(set, set.masterBrokerId) : null,
    masterEpoch: masterAlive ? set.masterEpoch : null,
    syncStateSetEpoch: masterAlive ? set.syncStateSetEpoch : null,
    syncStateSet: { syncStateSet: sortedIds(set.syncStateSet), syncStateSetEpoch: set.syncStateSetEpoch },
  };
  if (replica.address === req.brokerAddress) return ok(response);
  return ok(response, [
    {
      type: "UpdateBrokerAddress",
      clusterName: set.clusterName,
      brokerName: set.brokerName,
      brokerId: req.brokerId,
      brokerAddress: req.brokerAddress,
    },
  ]);
}

export function validateAlterSyncStateSet(
  state: ReplicasState,
  req: AlterSyncStateSetRequest,
  ctx: ValidationContext,
): ControllerResult<AlterSyncStateSetResponse> {
  if (
    badName(req.brokerName) ||
    !isBrokerId(req.masterBrokerId) ||
    !isEpoch(req.masterEpoch) ||
    !isEpoch(req.syncStateSetEpoch) ||
    !Array.isArray(req.newSyncStateSet) ||
    !req.newSyncStateSet.every(isBrokerId)
  ) {
    return fail("CONTROLLER_INVALID_REQUEST", "malformed AlterSyncStateSet request");
  }
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    return fail("CONTROLLER_ALTER_SYNC_STATE_SET_FAILED", `broker set ${req.brokerName} does not exist`);
  }
  const fenced = checkAlterFencing(set, req.masterBrokerId, req.masterEpoch, req.syncStateSetEpoch);
  if (fenced !== null) return { ok: false, error: fenced, response: null, events: [] };
  const newSet = sortedIds(new Set(req.newSyncStateSet));
  if (sameMembers(set.syncStateSet, newSet)) {
    return fail("CONTROLLER_ALTER_SYNC_STATE_SET_FAILED", "the new SyncStateSet equals the current one");
  }
  for (const id of newSet) {
    if (!set.brokers.has(id)) {
      return fail(
        "CONTROLLER_INVALID_REPLICAS",
        `replica ${id} is not registered in broker set ${set.brokerName}`,
      );
    }
    if (!ctx.liveness.isAlive(set.clusterName, set.brokerName, id)) {
      return fail(
        "CONTROLLER_BROKER_NOT_ALIVE",
        `replica ${id} of broker set ${set.brokerName} is not alive`,
      );
    }
  }
  if (!newSet.includes(req.masterBrokerId)) {
    return fail(
      "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED",
      `the new SyncStateSet must contain master ${req.masterBrokerId}`,
    );
  }
  const newEpoch = set.syncStateSetEpoch + 1;
  return ok(
    { newSyncStateSetEpoch: newEpoch, syncStateSet: { syncStateSet: newSet, syncStateSetEpoch: newEpoch } },
    [
      {
        type: "AlterSyncStateSet",
        brokerName: set.brokerName,
        masterBrokerId: req.masterBrokerId,
        masterEpoch: req.masterEpoch,
        syncStateSetEpoch: req.syncStateSetEpoch,
        newSyncStateSet: newSet,
      },
    ],
  );
}

function checkAlterFencing(
  set: BrokerSetState,
  masterBrokerId: number,
  masterEpoch: number,
  syncStateSetEpoch: number,
): ControllerError | null {
  if (set.masterBrokerId === null || set.masterBrokerId !== masterBrokerId) {
    return controllerError(
      "CONTROLLER_INVALID_MASTER",
      `the master of ${set.brokerName} is ${String(set.masterBrokerId)}, not ${masterBrokerId}`,
    );
  }
  if (masterEpoch !== set.masterEpoch) {
    return controllerError(
      "CONTROLLER_FENCED_MASTER_EPOCH",
      `masterEpoch of ${set.brokerName} is ${set.masterEpoch}, not ${masterEpoch}`,
    );
  }
  if (syncStateSetEpoch !== set.syncStateSetEpoch) {
    return controllerError(
      "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
      `syncStateSetEpoch of ${set.brokerName} is ${set.syncStateSetEpoch}, not ${syncStateSetEpoch}`,
    );
  }
  return null;
}

export function validateElectMaster(
  state: ReplicasState,
  req: ElectMasterRequest,
  ctx: ValidationContext,
): ControllerResult<ElectMasterResponse> {
  const triggeredByController = req.brokerId === CONTROLLER_TRIGGERED_BROKER_ID;
  if (badName(req.brokerName) || !(triggeredByController || isBrokerId(req.brokerId))) {
    return fail("CONTROLLER_INVALID_REQUEST", "brokerName and a valid brokerId (or -1) are required");
  }
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    return fail("CONTROLLER_BROKER_NEED_TO_BE_REGISTERED", `broker set ${req.brokerName} is not registered`);
  }
  const oldMaster = set.masterBrokerId;
  let newMaster: number | null = null;
  if (isFirstTimeForElect(set) && !triggeredByController) {
    if (!set.brokers.has(req.brokerId)) {
      return fail(
        "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
        `broker id ${req.brokerId} is not registered in broker set ${set.brokerName}`,
      );
    }
    newMaster = req.brokerId; // first election: the requester wins
  } else {
    newMaster = electMasterByPolicy({
      clusterName: set.clusterName,
      brokerName: set.brokerName,
      syncStateSet: set.syncStateSet,
      allReplicas: ctx.options.enableElectUncleanMaster ? set.brokers.keys() : null,
      oldMaster,
      preferBrokerId: req.designateElect && !triggeredByController ? req.brokerId : null,
      liveness: ctx.liveness,
    });
  }

  if (newMaster !== null && newMaster === oldMaster) {
    return fail(
      "CONTROLLER_MASTER_STILL_EXIST",
      `master ${oldMaster} of ${set.brokerName} is alive; no election needed`,
      {
        masterBrokerId: oldMaster,
        masterAddress: addressOf(set, oldMaster),
        masterEpoch: set.masterEpoch,
        syncStateSetEpoch: set.syncStateSetEpoch,
        syncStateSet: sortedIds(set.syncStateSet),
        brokerMemberGroup: memberGroupOf(set),
      },
    );
  }
  if (newMaster !== null) {
    return ok(
      {
        masterBrokerId: newMaster,
        masterAddress: addressOf(set, newMaster),
        masterEpoch: set.masterEpoch + 1,
        syncStateSetEpoch: set.syncStateSetEpoch + 1,
        syncStateSet: [newMaster],
        brokerMemberGroup: memberGroupOf(set),
      },
      [
        {
          type: "ElectMaster",
          brokerName: set.brokerName,
          newMasterBrokerId: newMaster,
          masterEpoch: set.masterEpoch,
          syncStateSetEpoch: set.syncStateSetEpoch,
        },
      ],
    );
  }
  if (!triggeredByController) {
    return fail("CONTROLLER_ELECT_MASTER_FAILED", `no eligible broker to be master of ${set.brokerName}`);
  }
  // The controller saw the master go: record that there is none (masterEpoch + 1), keep the SyncStateSet.
  const events: ControllerEvent[] =
    oldMaster === null
      ? []
      : [
          {
            type: "ElectMaster",
            brokerName: set.brokerName,
            newMasterBrokerId: null,
            masterEpoch: set.masterEpoch,
            syncStateSetEpoch: set.syncStateSetEpoch,
          },
        ];
  return fail<ElectMasterResponse>(
    "CONTROLLER_MASTER_NOT_AVAILABLE",
    `the master of ${set.brokerName} is gone and no broker is eligible to replace it`,
    null,
    events,
  );
}

export function validateGetReplicaInfo(
  state: ReplicasState,
  req: GetReplicaInfoRequest,
): ControllerResult<GetReplicaInfoResponse> {
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    return fail("CONTROLLER_BROKER_METADATA_NOT_EXIST", `broker set ${req.brokerName} does not exist`);
  }
  return ok({
    masterBrokerId: set.masterBrokerId,
    masterAddress: addressOf(set, set.masterBrokerId),
    masterEpoch: set.masterEpoch,
    syncStateSet: { syncStateSet: sortedIds(set.syncStateSet), syncStateSetEpoch: set.syncStateSetEpoch },
  });
}

/** In-sync and not-in-sync replicas with liveness, per requested broker set that exists (admin). */
export function getSyncStateData(
  state: ReplicasState,
  brokerNames: readonly string[],
  liveness: BrokerLiveness,
): ControllerResult<SyncStateData> {
  const replicasInfoTable = new Map<string, BrokerSetReplicasInfo>();
  for (const brokerName of brokerNames) {
    const set = state.brokerSets.get(brokerName);
    if (set === undefined) continue;
    const inSyncReplicas: ReplicaIdentity[] = [];
    const notInSyncReplicas: ReplicaIdentity[] = [];
    for (const brokerId of sortedIds(set.brokers.keys())) {
      const replica: ReplicaIdentity = {
        brokerName,
        brokerId,
        brokerAddress: (set.brokers.get(brokerId) as { address: string }).address,
        alive: liveness.isAlive(set.clusterName, brokerName, brokerId),
      };
      (set.syncStateSet.has(brokerId) ? inSyncReplicas : notInSyncReplicas).push(replica);
    }
    replicasInfoTable.set(brokerName, {
      masterBrokerId: set.masterBrokerId,
      masterAddress: addressOf(set, set.masterBrokerId),
      masterEpoch: set.masterEpoch,
      syncStateSetEpoch: set.syncStateSetEpoch,
      inSyncReplicas,
      notInSyncReplicas,
    });
  }
  return ok({ replicasInfoTable });
}

/** Parses upstream's `brokerControllerIdsToClean` ("1;2;3"); null for blank, undefined if malformed. */
export function parseBrokerIdsToClean(text: string | undefined): number[] | null | undefined {
  if (text === undefined || text.trim().length === 0) return null;
  const ids: number[] = [];
  for (const part of text.split(";")) {
    const t = part.trim();
    if (!/^[0-9]+$/.test(t)) return undefined;
    const id = Number(t);
    if (!Number.isSafeInteger(id)) return undefined;
    ids.push(id);
  }
  return sortedIds(new Set(ids));
}

export function validateCleanBrokerData(
  state: ReplicasState,
  req: CleanBrokerDataRequest,
  ctx: ValidationContext,
): ControllerResult<null> {
  if (badName(req.brokerName)) return fail("CONTROLLER_INVALID_REQUEST", "brokerName is empty");
  const ids = parseBrokerIdsToClean(req.brokerControllerIdsToClean);
  if (ids === undefined) {
    return fail(
      "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
      `brokerControllerIdsToClean must be ';'-separated broker ids, got "${req.brokerControllerIdsToClean}"`,
    );
  }
  const set = state.brokerSets.get(req.brokerName);
  if (set === undefined) {
    return fail("CONTROLLER_INVALID_CLEAN_BROKER_METADATA", `broker set ${req.brokerName} does not exist`);
  }
  if (!req.cleanLivingBroker) {
    for (const id of ids ?? sortedIds(set.brokers.keys())) {
      if (ctx.liveness.isAlive(set.clusterName, set.brokerName, id)) {
        return fail(
          "CONTROLLER_INVALID_CLEAN_BROKER_METADATA",
          `broker ${id} of ${set.brokerName} is still alive; set cleanLivingBroker to clean it anyway`,
        );
      }
    }
  }
  return ok(null, [{ type: "CleanBrokerData", brokerName: set.brokerName, brokerIds: ids }]);
}

/** Broker sets whose master is dead while some replica is alive (upstream scanNeedReelectBrokerSets). */
export function scanNeedReelectBrokerSets(
  state: ReplicasState,
  liveness: BrokerLiveness,
): Array<{ clusterName: string; brokerName: string }> {
  const out: Array<{ clusterName: string; brokerName: string }> = [];
  for (const set of state.brokerSets.values()) {
    const { clusterName, brokerName, masterBrokerId } = set;
    if (masterBrokerId === null || liveness.isAlive(clusterName, brokerName, masterBrokerId)) continue;
    if ([...set.brokers.keys()].some((id) => liveness.isAlive(clusterName, brokerName, id))) {
      out.push({ clusterName, brokerName });
    }
  }
  return out.sort((a, b) => (a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// apply (every replica)

function refused(code: ControllerErrorCode, remark: string): ApplyOutcome {
  return { applied: false, error: controllerError(code, remark) };
}
const APPLIED: ApplyOutcome = { applied: true };

/** Applies one committed event. Deterministic; a stale or inapplicable event changes nothing. */
export function applyEvent(state: ReplicasState, event: ControllerEvent): ApplyOutcome {
  switch (event.type) {
    case "ApplyBrokerId": {
      let set = state.brokerSets.get(event.brokerName);
      if (set === undefined) {
        if (event.brokerId !== FIRST_BROKER_CONTROLLER_ID) {
          return refused("CONTROLLER_BROKER_ID_INVALID", `first broker id of ${event.brokerName} must be 1`);
        }
        const retired = state.retiredEpochs.get(event.brokerName);
        state.retiredEpochs.delete(event.brokerName);
        set = {
          clusterName: event.clusterName,
          brokerName: event.brokerName,
          nextAssignBrokerId: FIRST_BROKER_CONTROLLER_ID,
          brokers: new Map(),
          masterBrokerId: null,
          masterEpoch: retired?.masterEpoch ?? 0,
          syncStateSet: new Set(),
          syncStateSetEpoch: retired?.syncStateSetEpoch ?? 0,
        };
        state.brokerSets.set(event.brokerName, set);
      }
      const existing = set.brokers.get(event.brokerId);
      if (existing !== undefined) {
        if (existing.registerCheckCode === event.registerCheckCode) return APPLIED;
        return refused(
          "CONTROLLER_BROKER_ID_INVALID",
          `broker id ${event.brokerId} of ${event.brokerName} is taken`,
        );
      }
      set.brokers.set(event.brokerId, {
        address: event.brokerAddress,
        registerCheckCode: event.registerCheckCode,
      });
      set.nextAssignBrokerId = Math.max(set.nextAssignBrokerId, event.brokerId + 1);
      return APPLIED;
    }
    case "UpdateBrokerAddress": {
      const replica = state.brokerSets.get(event.brokerName)?.brokers.get(event.brokerId);
      if (replica === undefined) {
        return refused(
          "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
          `broker ${event.brokerId} of ${event.brokerName} is gone`,
        );
      }
      replica.address = event.brokerAddress;
      return APPLIED;
    }
    case "AlterSyncStateSet": {
      const set = state.brokerSets.get(event.brokerName);
      if (set === undefined) {
        return refused(
          "CONTROLLER_ALTER_SYNC_STATE_SET_FAILED",
          `broker set ${event.brokerName} does not exist`,
        );
      }
      const fenced = checkAlterFencing(set, event.masterBrokerId, event.masterEpoch, event.syncStateSetEpoch);
      if (fenced !== null) return { applied: false, error: fenced };
      const missing = event.newSyncStateSet.find((id) => !set.brokers.has(id));
      if (missing !== undefined)
        return refused("CONTROLLER_INVALID_REPLICAS", `replica ${missing} is not registered`);
      if (!event.newSyncStateSet.includes(event.masterBrokerId)) {
        return refused("CONTROLLER_ALTER_SYNC_STATE_SET_FAILED", "the new SyncStateSet lacks the master");
      }
      set.syncStateSet = new Set(event.newSyncStateSet);
      set.syncStateSetEpoch += 1;
      return APPLIED;
    }
    case "ElectMaster": {
      const set = state.brokerSets.get(event.brokerName);
      if (set === undefined) {
        return refused(
          "CONTROLLER_BROKER_NEED_TO_BE_REGISTERED",
          `broker set ${event.brokerName} does not exist`,
        );
      }
      if (event.masterEpoch !== set.masterEpoch) {
        return refused(
          "CONTROLLER_FENCED_MASTER_EPOCH",
          `masterEpoch is ${set.masterEpoch}, not ${event.masterEpoch}`,
        );
      }
      if (event.syncStateSetEpoch !== set.syncStateSetEpoch) {
        return refused(
          "CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH",
          `syncStateSetEpoch is ${set.syncStateSetEpoch}, not ${event.syncStateSetEpoch}`,
        );
      }
      if (event.newMasterBrokerId === null) {
        set.masterBrokerId = null;
        set.masterEpoch += 1;
        return APPLIED;
      }
      if (!set.brokers.has(event.newMasterBrokerId)) {
        return refused("CONTROLLER_INVALID_REPLICAS", `broker ${event.newMasterBrokerId} is not registered`);
      }
      set.masterBrokerId = event.newMasterBrokerId;
      set.masterEpoch += 1;
      set.syncStateSet = new Set([event.newMasterBrokerId]);
      set.syncStateSetEpoch += 1;
      return APPLIED;
    }
    case "CleanBrokerData": {
      const set = state.brokerSets.get(event.brokerName);
      if (set === undefined) return APPLIED;
      if (event.brokerIds !== null) {
        for (const id of event.brokerIds) {
          set.brokers.delete(id);
          set.syncStateSet.delete(id);
          if (set.masterBrokerId === id) set.masterBrokerId = null;
        }
      }
      if (event.brokerIds === null || set.brokers.size === 0) {
        state.brokerSets.delete(event.brokerName);
        state.retiredEpochs.set(event.brokerName, {
          masterEpoch: set.masterEpoch,
          syncStateSetEpoch: set.syncStateSetEpoch,
        });
      }
      return APPLIED;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// the holder a controller node keeps

/** One replica's state machine: validation on the leader, apply on commit, snapshot/restore. */
export class ReplicasInfoManager {
  readonly options: ReplicasInfoOptions;
  private state: ReplicasState = createReplicasState();

  constructor(options: Partial<ReplicasInfoOptions> = {}) {
    this.options = { ...DEFAULT_REPLICAS_INFO_OPTIONS, ...options };
  }

  private ctx(liveness: BrokerLiveness): ValidationContext {
    return { liveness, options: this.options };
  }

  getNextBrokerId(req: GetNextBrokerIdRequest): ControllerResult<GetNextBrokerIdResponse> {
    return validateGetNextBrokerId(this.state, req);
  }
  applyBrokerId(req: ApplyBrokerIdRequest): ControllerResult<ApplyBrokerIdResponse> {
    return validateApplyBrokerId(this.state, req);
  }
  registerBroker(
    req: RegisterBrokerRequest,
    liveness: BrokerLiveness,
  ): ControllerResult<RegisterBrokerResponse> {
    return validateRegisterBroker(this.state, req, this.ctx(liveness));
  }
  alterSyncStateSet(
    req: AlterSyncStateSetRequest,
    liveness: BrokerLiveness,
  ): ControllerResult<AlterSyncStateSetResponse> {
    return validateAlterSyncStateSet(this.state, req, this.ctx(liveness));
  }
  electMaster(req: ElectMasterRequest, liveness: BrokerLiveness): ControllerResult<ElectMasterResponse> {
    return validateElectMaster(this.state, req, this.ctx(liveness));
  }
  getReplicaInfo(req: GetReplicaInfoRequest): ControllerResult<GetReplicaInfoResponse> {
    return validateGetReplicaInfo(this.state, req);
  }
  getSyncStateData(
    brokerNames: readonly string[],
    liveness: BrokerLiveness,
  ): ControllerResult<SyncStateData> {
    return getSyncStateData(this.state, brokerNames, liveness);
  }
  cleanBrokerData(req: CleanBrokerDataRequest, liveness: BrokerLiveness): ControllerResult<null> {
    return validateCleanBrokerData(this.state, req, this.ctx(liveness));
  }
  scanNeedReelectBrokerSets(liveness: BrokerLiveness): Array<{ clusterName: string; brokerName: string }> {
    return scanNeedReelectBrokerSets(this.state, liveness);
  }
  /** The current master id of a broker set, or null (for the heartbeat manager's scan). */
  masterOf(_clusterName: string, brokerName: string): number | null {
    return this.state.brokerSets.get(brokerName)?.masterBrokerId ?? null;
  }

  apply(event: ControllerEvent): ApplyOutcome {
    return applyEvent(this.state, event);
  }
  /** Applies one committed Raft entry's data (a batch of events), in order. */
  applyEntryData(data: Uint8Array): ApplyOutcome[] {
    return decodeControllerEvents(data).map((e) => applyEvent(this.state, e));
  }

  snapshot(): Uint8Array {
    return encodeReplicasSnapshot(this.state);
  }
  restore(bytes: Uint8Array): void {
    this.state = decodeReplicasSnapshot(bytes);
  }

  /** Read-only access for metrics, admin listings and tests. Do not mutate. */
  get view(): Readonly<ReplicasState> {
    return this.state;
  }
}
