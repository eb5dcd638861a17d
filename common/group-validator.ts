// Consumer (and producer) group names: the upstream rules (TopicValidator.validateGroup, the client's
// Validators.checkGroup) and the system groups a client may not use (the proxy's GrpcValidator).

import { ErrorCode, RmqError } from "./errors.ts";
import { isBlank, quoteForMessage } from "./value-validator.ts";

/** Upstream GROUP_MAX_LENGTH (120): a group name becomes part of `%RETRY%group` and pop retry topic names. */
export const GROUP_MAX_LENGTH = 120;
export const GROUP_NAME_PATTERN = "^[%|a-zA-Z0-9_-]+$";
const GROUP_NAME_REGEX = /^[%|a-zA-Z0-9_-]+$/;
/** Groups whose name starts with this are the broker's own (upstream MixAll.CID_RMQ_SYS_PREFIX). */
export const SYSTEM_GROUP_PREFIX = "CID_RMQ_SYS_";

/** Groups every broker creates at start (upstream SubscriptionGroupManager.init / MixAll). */
export const SystemGroup = {
  TOOLS_CONSUMER: "TOOLS_CONSUMER",
  FILTERSRV_CONSUMER: "FILTERSRV_CONSUMER",
  SELF_TEST_CONSUMER: "SELF_TEST_C_GROUP",
  ONS_HTTP_PROXY: "CID_ONS-HTTP-PROXY",
  ONSAPI_PULL: "CID_ONSAPI_PULL",
  ONSAPI_PERMISSION: "CID_ONSAPI_PERMISSION",
  ONSAPI_OWNER: "CID_ONSAPI_OWNER",
  SYS_RMQ_TRANS: "CID_RMQ_SYS_TRANS",
} as const;

function illegal(group: string, rule: string): RmqError {
  return new RmqError(ErrorCode.IllegalConsumerGroup, `group ${quoteForMessage(group)} is illegal: ${rule}`);
}

/** Not blank, only `^[%|a-zA-Z0-9_-]+$`, at most 120 characters. */
export function validateGroupName(group: string): void {
  if (isBlank(group)) throw illegal(group, "a group name cannot be blank");
  if (!GROUP_NAME_REGEX.test(group)) {
    throw illegal(group, `a group name may only contain characters matching ${GROUP_NAME_PATTERN}`);
  }
  if (group.length > GROUP_MAX_LENGTH) {
    throw illegal(
      group,
      `a group name is at most ${GROUP_MAX_LENGTH} characters, this one has ${group.length}`,
    );
  }
}

export function isSystemGroup(group: string): boolean {
  return group.startsWith(SYSTEM_GROUP_PREFIX);
}

/** What the proxy checks on a client's group: the name rules, and not a `CID_RMQ_SYS_` group. */
export function validateClientGroup(group: string): void {
  validateGroupName(group);
  if (isSystemGroup(group))
    throw illegal(group, `groups starting with ${SYSTEM_GROUP_PREFIX} are reserved for the broker`);
}
