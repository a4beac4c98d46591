// The limits and their validation live in @logplayer/base, where a pure core can
// use them; these wrappers answer with the service boundary's LpError
// (INVALID_ARGUMENT or RESOURCE_EXHAUSTED), as services and the client always have.
import {
  describeTransactionLimits,
  grpcMessageBytesMax,
  validateKey as keyProblem,
  validateTransaction as transactionProblem,
  type TransactionFields,
  type TransactionLimits,
} from "@logplayer/base";
import { failedPrecondition, LpError } from "./errors";

/** Returns the problem with a key, or null when it is valid. Pure. */
export function validateKey(key: string, limits: TransactionLimits): LpError | null {
  const problem = keyProblem(key, limits);
  return problem === null ? null : LpError.from(problem);
}

/**
 * Checks a transaction against the limits. Returns the first problem, or
 * null. `encodedBytes` is the size of the log entry it would become. Pure.
 */
export function validateTransaction(txn: TransactionFields | undefined, encodedBytes: number, limits: TransactionLimits): LpError | null {
  const problem = transactionProblem(txn, encodedBytes, limits);
  return problem === null ? null : LpError.from(problem);
}

/** A service's gRPC message cap when --message-bytes-max is not given, unless the cluster needs more. */
export const DEFAULT_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;

/**
 * The gRPC message cap of a service that carries the cluster's entries and
 * values (LogPlayer, shard): `given` (its --message-bytes-max) when set,
 * else the larger of DEFAULT_MESSAGE_BYTES_MAX and the cluster's cap
 * (grpcMessageBytesMax). A given value below the cluster's cap would leave
 * some legal entry undeliverable or some legal value unreadable: it is
 * refused with FAILED_PRECONDITION naming both numbers.
 */
export function serviceMessageBytesMax(given: number | undefined, limits: TransactionLimits): number {
  const needed = grpcMessageBytesMax(limits);
  if (given === undefined) return Math.max(DEFAULT_MESSAGE_BYTES_MAX, needed);
  if (given < needed) {
    throw failedPrecondition(
      `--message-bytes-max ${given} is below ${needed}, the largest message the cluster's limits allow ` +
        `(${describeTransactionLimits(limits)}, plus framing): some committed entry could not be delivered; ` +
        `leave it out to have it derived`,
    );
  }
  return given;
}
