export { RaftNode } from "./raft-node";
export { RaftError, invalidConfig, compacted } from "./errors";
export type { RaftErrorCode, ConfigChangeRefusal } from "./errors";
export {
  CONFIG_CONTEXT_BYTES_MAX,
  encodeConfigChange,
  decodeConfigChange,
  applyConfigChange,
  configChangeProblem,
  makeMembership,
} from "./membership";
export type { ConfigChange, ConfigChangeType, Membership } from "./membership";
export type { Ready, ProposeResult, RaftStatus, SnapshotOutcome } from "./raft-node";
export { DEFAULT_RAFT_CONFIG, VOTERS_MAX, LEARNERS_MAX, validateRaftConfig } from "./config";
export type { RaftConfig, RaftConfigDefaults, TestOnlyFaults } from "./config";
export { MemoryStorage, entryBytes, ENTRY_HEADER_BYTES } from "./storage";
export type { Storage } from "./storage";
export { MajorityConfig } from "./quorum";
export { checkIncomingMessage, RAFT_NUMBER_MAX } from "./message-check";
export type { MessageCheckView } from "./message-check";
export { NO_NODE, EMPTY_HARD_STATE } from "./types";
export type {
  NodeId,
  Entry,
  EntryKind,
  HardState,
  Message,
  MessageType,
  AppendMessage,
  SnapshotMessage,
  SnapshotMeta,
  AppendResponseMessage,
  HeartbeatMessage,
  HeartbeatResponseMessage,
  VoteMessage,
  VoteResponseMessage,
  Role,
} from "./types";
