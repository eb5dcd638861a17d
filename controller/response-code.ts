// Result codes of the controller's state-machine operations. The names and numbers are upstream's
// `ResponseCode` values (remoting protocol), so the server can put them on the wire unchanged and an
// operator reading a log sees the name they know from RocketMQ.

export const ControllerResponseCode = {
  SUCCESS: 0,
  CONTROLLER_FENCED_MASTER_EPOCH: 2000,
  CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH: 2001,
  CONTROLLER_INVALID_MASTER: 2002,
  CONTROLLER_INVALID_REPLICAS: 2003,
  CONTROLLER_MASTER_NOT_AVAILABLE: 2004,
  CONTROLLER_INVALID_REQUEST: 2005,
  CONTROLLER_BROKER_NOT_ALIVE: 2006,
  CONTROLLER_NOT_LEADER: 2007,
  CONTROLLER_BROKER_METADATA_NOT_EXIST: 2008,
  CONTROLLER_INVALID_CLEAN_BROKER_METADATA: 2009,
  CONTROLLER_BROKER_NEED_TO_BE_REGISTERED: 2010,
  CONTROLLER_MASTER_STILL_EXIST: 2011,
  CONTROLLER_ELECT_MASTER_FAILED: 2012,
  CONTROLLER_ALTER_SYNC_STATE_SET_FAILED: 2013,
  CONTROLLER_BROKER_ID_INVALID: 2014,
  CONTROLLER_JRAFT_INTERNAL_ERROR: 2015,
  CONTROLLER_BROKER_LIVE_INFO_NOT_EXISTS: 2016,
} as const;

export type ControllerErrorCode = Exclude<keyof typeof ControllerResponseCode, "SUCCESS">;

/** A refused controller request: a stable name, upstream's numeric code, and a human-readable remark. */
export interface ControllerError {
  readonly code: ControllerErrorCode;
  readonly responseCode: number;
  readonly remark: string;
}

export function controllerError(code: ControllerErrorCode, remark: string): ControllerError {
  return { code, responseCode: ControllerResponseCode[code], remark };
}
