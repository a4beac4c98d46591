export { assert, unreachable, AssertionError } from "./assert";
export {
  LpError,
  Status,
  LEADER_METADATA_KEY,
  isServiceError,
  invalidArgument,
  resourceExhausted,
  failedPrecondition,
  unavailable,
} from "./errors";
export {
  createShardMap,
  validateShardMap,
  describeShardMap,
  sameShardMap,
  shardForKey,
  fnv1a32,
  fnv1a32Utf8,
  SHARD_MAP_HASH_FNV1A32,
  SHARD_COUNT_MAX,
} from "./shard-map";
export type { ShardMapConfig } from "./shard-map";
export { DEFAULT_TRANSACTION_LIMITS, grpcMessageBytesMax, validateKey, validateTransaction } from "./limits";
export type { TransactionLimits } from "./limits";
export { Backoff, DEFAULT_BACKOFF } from "./backoff";
export type { BackoffConfig } from "./backoff";
export { monotonicNs, nsToUs } from "./clock";
export { createLogger, silentLogger, LOG_LEVELS } from "./logger";
export type { Logger, LogLevel } from "./logger";
export { createRegistry, startMetricsServer, Registry, Counter, Gauge, Histogram } from "./metrics";
export type { MetricsServer } from "./metrics";
export { grpcServerOptions, grpcChannelOptions, bindServer, addHealthService, shutdownServer, listenHost, withPort } from "./grpc";
export type { GrpcLimits } from "./grpc";
export { DEFAULT_HTTP2_WINDOW_BYTES, installHttp2Window, installedHttp2WindowBytes } from "./http2-window";
export { envOption, parseFlags, http2WindowOption, parseIntegerInRange, parseLsn, parseAddress, parseAddressList, runMain } from "./cli";
export { LsnWaiters } from "./lsn-waiters";
export { seededRandom } from "./seeded-random";
export { exitOnShutdownSignals } from "./shutdown";
export { AUTO_PORT_MIN, ephemeralPortLow, freePorts, LOOPBACK_HOST } from "./ports";
