// The client's public surface. Explicit names only (no export *).
export { LogPlayerClient, DEFAULT_SCAN_LIMIT, SCAN_LIMIT_MAX } from "./client";
export type {
  CallOpts,
  CommitOpts,
  CommitResult,
  GetResult,
  ScanResult,
  AppendLookup,
  ShardStatusReport,
  ClusterStatus,
  ShardOutcome,
  TransactionOutcome,
  ReadLogOpts,
  ScanIteratorOpts,
  MemberReport,
} from "./client";
export type { LogRecord, WatchEvent } from "./log-cursor";
export type { ScanItem } from "./scan-merge";
export {
  DEFAULT_TIMEOUT_MS,
  TIMEOUT_MS_MAX,
  DEFAULT_READ_ATTEMPTS_MAX,
  DEFAULT_COMMIT_ATTEMPTS_MAX,
  DEFAULT_LEADER_PROBE_TIMEOUT_MS,
  DEFAULT_CLIENT_CERTIFICATE_NAME,
  defaultClientSecurity,
} from "./options";
export type { ClientOptions } from "./options";
export { mutation } from "./mutations";
export type { MutationInput } from "./mutations";
export {
  ClientError,
  InvalidArgumentError,
  LimitExceededError,
  NotLeaderError,
  UnavailableError,
  DeadlineExceededError,
  FailedPreconditionError,
  NotFoundError,
  OutOfRangeError,
  CancelledError,
  AbortedError,
  UnimplementedError,
  PermissionDeniedError,
  InternalError,
  SessionExpiredError,
  toClientError,
} from "./errors";
export type { AppendIdentity } from "./errors";
export { checkHealth, HealthServingStatus } from "./health-check";
export type { HealthCheckResult } from "./health-check";
export { runLpctl } from "./lpctl-run";
export type { LpctlIo } from "./lpctl-run";
export { parseTxnOp, parseTxnOps } from "./txn-args";
