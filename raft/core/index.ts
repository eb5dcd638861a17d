// Public API of the pure Raft core. Everything else under raft/core is internal.

export {
  DEFAULT_ELECTION_TICK,
  DEFAULT_HEARTBEAT_TICK,
  DEFAULT_MAX_INFLIGHT_MSGS,
  DEFAULT_MAX_SIZE_PER_MSG,
  type RawNodeConfig,
  type UnsafeFlags,
} from "./config.ts";
export { ENTRY_OVERHEAD_BYTES, entryBytes } from "./entry-size.ts";
export { ProgressState } from "./progress.ts";
export { createRawNode, type PeerProgress, type RaftStatus, type RawNode } from "./raw-node.ts";
export { ReadOnlyOption } from "./read-only.ts";
