// @logplayer/base: what the pure cores and the codec share. No runtime
// dependencies and no I/O (no Node built-ins, no clock, no Math.random), so a
// core that imports it stays pure. Explicit names only (no export *).
export { assert, unreachable, must, AssertionError } from "./assert";
export {
  CodedError,
  InvalidInputError,
  LimitExceededError,
  FailedPreconditionError,
  invalidInput,
  limitExceeded,
  preconditionFailed,
  unavailableNow,
  outOfRange,
  dataLoss,
  ioFailure,
} from "./coded-error";
export type { CodedErrorKind } from "./coded-error";
export {
  DEFAULT_TRANSACTION_LIMITS,
  grpcMessageBytesMax,
  MESSAGE_FRAMING_BYTES,
  TRANSACTION_LIMIT_RANGES,
  parseTransactionLimits,
  describeTransactionLimits,
  transactionLimitsMismatch,
  sameTransactionLimits,
  withDefaultLimits,
  validateKey,
  validateTransaction,
  utf8ByteLength,
  MUTATION_KIND_NAMES,
} from "./limits";
export type { TransactionLimits, GivenTransactionLimits, MutationFields, TransactionFields } from "./limits";
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
export { seededRandom } from "./seeded-random";
export { Backoff, DEFAULT_BACKOFF } from "./backoff";
export type { BackoffConfig } from "./backoff";
