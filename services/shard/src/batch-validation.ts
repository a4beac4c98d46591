import {
  describeShardMap,
  invalidArgument,
  LpError,
  resourceExhausted,
  shardForKey,
  validateTransaction,
  type ShardMapConfig,
  type TransactionLimits,
} from "@logplayer/common";
import type { Part } from "@logplayer/proto";

/** SQLite stores the applied LSN as a signed 64-bit integer. */
const LSN_MAX = 2n ** 63n - 1n;

export interface BatchLimits {
  /** Parts in one PartBatch message. */
  readonly batchPartsMax: number;
  /** Per-part mutation limits (a part is a subset of one transaction). */
  readonly transaction: TransactionLimits;
}

/**
 * Checks a delivered batch before anything in it is applied: parts in
 * strictly ascending LSN order, each with prev_lsn < lsn, every mutation well
 * formed and every key routed to this shard. Returns the first problem
 * (INVALID_ARGUMENT, or RESOURCE_EXHAUSTED for a limit) or null. Pure.
 */
export function validateBatch(parts: readonly Part[], shardId: number, shardMap: ShardMapConfig, limits: BatchLimits): LpError | null {
  if (parts.length > limits.batchPartsMax) {
    return resourceExhausted(`batch has ${parts.length} parts, more than batch_parts_max ${limits.batchPartsMax}`);
  }
  let previousLsn = 0n;
  for (const part of parts) {
    if (part.lsn <= previousLsn) {
      return invalidArgument(`batch not in strictly ascending LSN order: part ${part.lsn} after part ${previousLsn}`);
    }
    if (part.lsn > LSN_MAX) {
      return invalidArgument(`part ${part.lsn}: lsn is above the largest supported LSN ${LSN_MAX}`);
    }
    if (part.prevLsn >= part.lsn) {
      return invalidArgument(`part ${part.lsn}: prev_lsn ${part.prevLsn} is not below its lsn`);
    }
    previousLsn = part.lsn;
    const problem = validatePartMutations(part, shardId, shardMap, limits.transaction);
    if (problem) return problem;
  }
  return null;
}

/**
 * The commit-LSN fence: a batch carries the LogStore's commit LSN as the
 * LogPlayer knows it. It must not go back on the stream (`commitLsnFloor`
 * is the hello's, then the previous batch's), and no part may be beyond it:
 * an LSN the log has not committed cannot be applied. Returns the problem
 * (INVALID_ARGUMENT) or null. Pure.
 */
export function checkCommitFence(parts: readonly Part[], commitLsn: bigint, commitLsnFloor: bigint): LpError | null {
  if (commitLsn < commitLsnFloor) {
    return invalidArgument(`batch commit_lsn ${commitLsn} is below ${commitLsnFloor}, already announced on this stream`);
  }
  const last = parts[parts.length - 1];
  // Parts are in ascending LSN order (validateBatch): the last is the highest.
  if (last !== undefined && last.lsn > commitLsn) {
    return invalidArgument(`part ${last.lsn} is beyond the batch's commit_lsn ${commitLsn}: the log has not committed it`);
  }
  return null;
}

function validatePartMutations(part: Part, shardId: number, shardMap: ShardMapConfig, limits: TransactionLimits): LpError | null {
  // A part without mutations is a dummy: it only moves applied_lsn forward.
  if (part.mutations.length === 0) return null;
  // The encoded size was bounded by the gRPC message limit already.
  const problem = validateTransaction({ mutations: part.mutations }, 0, limits);
  if (problem) return new LpError(problem.code, `part ${part.lsn}: ${problem.message}`);
  for (const mutation of part.mutations) {
    const owner = shardForKey(mutation.key, shardMap);
    if (owner !== shardId) {
      return invalidArgument(
        `part ${part.lsn}: key ${JSON.stringify(mutation.key)} belongs to shard ${owner}, not shard ${shardId} (shard map ${describeShardMap(shardMap)})`,
      );
    }
  }
  return null;
}
