// The limits and their validation live in @logplayer/base, where a pure core can
// use them; these wrappers answer with the service boundary's LpError
// (INVALID_ARGUMENT or RESOURCE_EXHAUSTED), as services and the client always have.
import {
  validateKey as keyProblem,
  validateTransaction as transactionProblem,
  type TransactionFields,
  type TransactionLimits,
} from "@logplayer/base";
import { LpError } from "./errors";

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
