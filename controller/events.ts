// Events of the controller's replicated state machine and their byte encoding (Raft entry data).
//
// Unlike upstream, write events carry the epochs the leader validated against (a compare-and-set):
// if two proposals validated against the same state commit in sequence, the second one is refused at
// apply time instead of acting on a stale view (for example an election from a SyncStateSet that a
// concurrent AlterSyncStateSet just shrank).
//
// Entry data layout (big-endian): u8 codec version, u16 event count, then per event
// u16 type id (upstream EventType ids), u32 body length, body = UTF-8 JSON.

import { ErrorCode, RmqError } from "../common/errors.ts";

export const ControllerEventType = {
  AlterSyncStateSet: 1,
  ApplyBrokerId: 2,
  ElectMaster: 3,
  CleanBrokerData: 5,
  UpdateBrokerAddress: 6,
} as const;
export type ControllerEventTypeName = keyof typeof ControllerEventType;

export interface AlterSyncStateSetEvent {
  type: "AlterSyncStateSet";
  brokerName: string;
  /** Expected current master, masterEpoch and syncStateSetEpoch. */
  masterBrokerId: number;
  masterEpoch: number;
  syncStateSetEpoch: number;
  newSyncStateSet: number[];
}

export interface ApplyBrokerIdEvent {
  type: "ApplyBrokerId";
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
  registerCheckCode: string;
}

export interface ElectMasterEvent {
  type: "ElectMaster";
  brokerName: string;
  /** null: no master could be elected; the master is cleared (masterEpoch still advances). */
  newMasterBrokerId: number | null;
  /** Expected current epochs. */
  masterEpoch: number;
  syncStateSetEpoch: number;
}

export interface CleanBrokerDataEvent {
  type: "CleanBrokerData";
  brokerName: string;
  /** null: the whole broker set. */
  brokerIds: number[] | null;
}

export interface UpdateBrokerAddressEvent {
  type: "UpdateBrokerAddress";
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddress: string;
}

export type ControllerEvent =
  | AlterSyncStateSetEvent
  | ApplyBrokerIdEvent
  | ElectMasterEvent
  | CleanBrokerDataEvent
  | UpdateBrokerAddressEvent;

export const EVENT_CODEC_VERSION = 1;
/** Upper bound on events in one entry (upstream proposes one result's events per entry: 0–1). */
export const MAX_EVENTS_PER_ENTRY = 0xffff;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

function eventBody(event: ControllerEvent): unknown {
  switch (event.type) {
    case "AlterSyncStateSet":
      return {
        brokerName: event.brokerName,
        masterBrokerId: event.masterBrokerId,
        masterEpoch: event.masterEpoch,
        syncStateSetEpoch: event.syncStateSetEpoch,
        newSyncStateSet: event.newSyncStateSet,
      };
    case "ApplyBrokerId":
      return {
        clusterName: event.clusterName,
        brokerName: event.brokerName,
        brokerId: event.brokerId,
        brokerAddress: event.brokerAddress,
        registerCheckCode: event.registerCheckCode,
      };
    case "ElectMaster":
      return {
        brokerName: event.brokerName,
        newMasterBrokerId: event.newMasterBrokerId,
        masterEpoch: event.masterEpoch,
        syncStateSetEpoch: event.syncStateSetEpoch,
      };
    case "CleanBrokerData":
      return { brokerName: event.brokerName, brokerIds: event.brokerIds };
    case "UpdateBrokerAddress":
      return {
        clusterName: event.clusterName,
        brokerName: event.brokerName,
        brokerId: event.brokerId,
        brokerAddress: event.brokerAddress,
      };
  }
}

/** Encodes a batch of events as one Raft entry's data. Deterministic: same events → same bytes. */
export function encodeControllerEvents(events: readonly ControllerEvent[]): Uint8Array {
  if (events.length > MAX_EVENTS_PER_ENTRY) {
    throw new RmqError(ErrorCode.IllegalArgument, `too many events in one entry: ${events.length}`);
  }
  const bodies = events.map((e) => textEncoder.encode(JSON.stringify(eventBody(e))));
  let size = 3;
  for (const b of bodies) size += 6 + b.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out[0] = EVENT_CODEC_VERSION;
  view.setUint16(1, events.length);
  let pos = 3;
  for (let i = 0; i < events.length; i++) {
    const body = bodies[i] as Uint8Array;
    view.setUint16(pos, ControllerEventType[(events[i] as ControllerEvent).type]);
    view.setUint32(pos + 2, body.length);
    out.set(body, pos + 6);
    pos += 6 + body.length;
  }
  return out;
}

function corrupt(why: string): RmqError {
  return new RmqError(ErrorCode.CorruptRecord, `controller event entry: ${why}`);
}

type Json = Record<string, unknown>;

function str(o: Json, k: string): string {
  const v = o[k];
  if (typeof v !== "string") throw corrupt(`field ${k} is not a string`);
  return v;
}
function int(o: Json, k: string): number {
  const v = o[k];
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw corrupt(`field ${k} is not an integer`);
  return v;
}
function intOrNull(o: Json, k: string): number | null {
  return o[k] === null ? null : int(o, k);
}
function intList(o: Json, k: string): number[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "number" && Number.isSafeInteger(x))) {
    throw corrupt(`field ${k} is not a list of integers`);
  }
  return v as number[];
}

function decodeEvent(typeId: number, o: Json): ControllerEvent {
  switch (typeId) {
    case ControllerEventType.AlterSyncStateSet:
      return {
        type: "AlterSyncStateSet",
        brokerName: str(o, "brokerName"),
        masterBrokerId: int(o, "masterBrokerId"),
        masterEpoch: int(o, "masterEpoch"),
        syncStateSetEpoch: int(o, "syncStateSetEpoch"),
        newSyncStateSet: intList(o, "newSyncStateSet"),
      };
    case ControllerEventType.ApplyBrokerId:
      return {
        type: "ApplyBrokerId",
        clusterName: str(o, "clusterName"),
        brokerName: str(o, "brokerName"),
        brokerId: int(o, "brokerId"),
        brokerAddress: str(o, "brokerAddress"),
        registerCheckCode: str(o, "registerCheckCode"),
      };
    case ControllerEventType.ElectMaster:
      return {
        type: "ElectMaster",
        brokerName: str(o, "brokerName"),
        newMasterBrokerId: intOrNull(o, "newMasterBrokerId"),
        masterEpoch: int(o, "masterEpoch"),
        syncStateSetEpoch: int(o, "syncStateSetEpoch"),
      };
    case ControllerEventType.CleanBrokerData:
      return {
        type: "CleanBrokerData",
        brokerName: str(o, "brokerName"),
        brokerIds: o.brokerIds === null ? null : intList(o, "brokerIds"),
      };
    case ControllerEventType.UpdateBrokerAddress:
      return {
        type: "UpdateBrokerAddress",
        clusterName: str(o, "clusterName"),
        brokerName: str(o, "brokerName"),
        brokerId: int(o, "brokerId"),
        brokerAddress: str(o, "brokerAddress"),
      };
    default:
      throw corrupt(`unknown event type id ${typeId}`);
  }
}

/** Decodes one Raft entry's data. Throws RmqError(CorruptRecord) on anything malformed. */
export function decodeControllerEvents(data: Uint8Array): ControllerEvent[] {
  if (data.length < 3) throw corrupt(`too short (${data.length} bytes)`);
  if (data[0] !== EVENT_CODEC_VERSION) throw corrupt(`unknown codec version ${data[0]}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = view.getUint16(1);
  const events: ControllerEvent[] = [];
  let pos = 3;
  for (let i = 0; i < count; i++) {
    if (pos + 6 > data.length) throw corrupt("truncated event header");
    const typeId = view.getUint16(pos);
    const len = view.getUint32(pos + 2);
    pos += 6;
    if (pos + len > data.length) throw corrupt("truncated event body");
    let parsed: unknown;
    try {
      parsed = JSON.parse(textDecoder.decode(data.subarray(pos, pos + len)));
    } catch (e) {
      throw new RmqError(ErrorCode.CorruptRecord, "controller event entry: body is not JSON", { cause: e });
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw corrupt("body is not an object");
    events.push(decodeEvent(typeId, parsed as Json));
    pos += len;
  }
  if (pos !== data.length) throw corrupt(`${data.length - pos} trailing bytes`);
  return events;
}
