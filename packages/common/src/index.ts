// The service kit: what services and tools share (gRPC options, LpError, metrics,
// logging, CLI, HTTP/2 window, ports, shutdown). The pure building blocks moved to
// @logplayer/base; they are re-exported here so services keep one import. Cores
// import @logplayer/base directly, never this package.
export {
  assert,
  unreachable,
  must,
  AssertionError,
  CodedError,
  InvalidInputError,
  LimitExceededError,
  FailedPreconditionError,
  invalidInput,
  limitExceeded,
  preconditionFailed,
  createShardMap,
  describeShardMap,
  sameShardMap,
  shardForKey,
  fnv1a32,
  fnv1a32Utf8,
  SHARD_MAP_HASH_FNV1A32,
  SHARD_COUNT_MAX,
  DEFAULT_TRANSACTION_LIMITS,
  grpcMessageBytesMax,
  MESSAGE_FRAMING_BYTES,
  TRANSACTION_LIMIT_RANGES,
  parseTransactionLimits,
  describeTransactionLimits,
  transactionLimitsMismatch,
  sameTransactionLimits,
  withDefaultLimits,
  utf8ByteLength,
  DEFAULT_BACKOFF,
  seededRandom,
} from "@logplayer/base";
export type {
  CodedErrorKind,
  ShardMapConfig,
  TransactionLimits,
  GivenTransactionLimits,
  MutationFields,
  TransactionFields,
  BackoffConfig,
} from "@logplayer/base";
export {
  LpError,
  Status,
  LEADER_METADATA_KEY,
  ERROR_REASON_METADATA_KEY,
  ErrorReason,
  isServiceError,
  invalidArgument,
  resourceExhausted,
  failedPrecondition,
  unavailable,
} from "./errors";
export { validateShardMap } from "./shard-map";
export { validateKey, validateTransaction, serviceMessageBytesMax, DEFAULT_MESSAGE_BYTES_MAX } from "./limits";
export { Backoff } from "./backoff";
export { monotonicNs, nsToUs } from "./clock";
export {
  hopTrace,
  HopTrace,
  PendingLsnTrace,
  isTracedCommitTime,
  markCommitTime,
  TRACE_HOPS,
  HOP_TRACE_ENV,
  HOP_TRACE_CAPACITY_ENV,
} from "./hop-trace";
export type { HopTraceSnapshot, TraceHop } from "./hop-trace";
export { createLogger, silentLogger, LOG_LEVELS } from "./logger";
export type { Logger, LogLevel } from "./logger";
export { createRegistry, startMetricsServer, Registry, Counter, Gauge, Histogram } from "./metrics";
export type { HttpProbes, MetricsServer, Readiness } from "./metrics";
export { CallerSlots } from "./caller-slots";
export { grpcServerOptions, grpcChannelOptions, bindServer, addHealthService, shutdownServer, listenHost, portOf, withPort } from "./grpc";
export type { GrpcLimits } from "./grpc";
export { DEFAULT_HTTP2_WINDOW_BYTES, installHttp2Window, installedHttp2WindowBytes } from "./http2-window";
export {
  envOption,
  parseFlags,
  flagsOnlyArgv,
  http2WindowOption,
  parseIntegerInRange,
  parseLsn,
  parseAddress,
  parseAddressList,
  runMain,
} from "./cli";
export { LsnWaiters } from "./lsn-waiters";
export { exitOnShutdownSignals } from "./shutdown";
export { AUTO_PORT_MIN, ephemeralPortLow, freePorts, LOOPBACK_HOST } from "./ports";
export {
  BACKUP_MANIFEST_FORMAT,
  backupDatabaseFileName,
  backupTempFile,
  checkBackupManifest,
  installBackup,
  installRestoredDatabase,
  listBackups,
  manifestFileFor,
  manifestToJson,
  measureFile,
  parseBackupManifest,
  pruneBackups,
  removeBackupTemps,
  SHARD_DATABASE_FILE_NAME,
} from "./backup-files";
export type { BackupManifest, BackupOnDisk, RestoreExpectation } from "./backup-files";
