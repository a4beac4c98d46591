import {
  assert,
  DEFAULT_TRANSACTION_LIMITS,
  describeShardMap,
  describeTransactionLimits,
  failedPrecondition,
  invalidArgument,
  LpError,
  sameShardMap,
  sameTransactionLimits,
  transactionLimitsMismatch,
  validateShardMap,
  type ShardMapConfig,
  withDefaultLimits,
  type GivenTransactionLimits,
  type TransactionLimits,
} from "@logplayer/common";
import type { DeliverHello } from "@logplayer/proto";

/**
 * Who this shard is. The shard id is fixed when the data directory is
 * created; the cluster id and shard map come from the flags on the first
 * start and are persisted; from then on flags and every hello must agree.
 * They are never learned from the network: a shard that took them from the
 * first hello belonged to whoever connected first.
 */
export interface ShardIdentity {
  readonly shardId: number;
  /** "" until learned. */
  readonly clusterId: string;
  /** null until learned. */
  readonly shardMap: ShardMapConfig | null;
  /** The cluster's transaction limits; null until recorded (a database from before they were). */
  readonly limits: TransactionLimits | null;
}

/** What the start-up flags add to the stored identity. */
export interface IdentityUpdate {
  readonly clusterId?: string;
  readonly shardMap?: ShardMapConfig;
  readonly limits?: TransactionLimits;
}

export interface ConfiguredIdentity {
  readonly shardId: number;
  readonly shardCount?: number;
  readonly clusterId?: string;
  /** Limit flags given on the command line (each must be the LogStore's value). */
  readonly transactionLimits?: GivenTransactionLimits;
}

/**
 * Checks the flags given at start-up against the identity stored in the data
 * directory. Throws FAILED_PRECONDITION naming both values on a mismatch;
 * returns what to persist (values given by flags and not yet stored).
 */
export function reconcileConfiguredIdentity(stored: ShardIdentity, configured: ConfiguredIdentity, dataDir: string): IdentityUpdate {
  if (stored.shardId !== configured.shardId) {
    throw failedPrecondition(`data directory ${dataDir} holds shard ${stored.shardId}, but --shard-id is ${configured.shardId}`);
  }
  let update: IdentityUpdate = {};
  if (configured.shardCount !== undefined) {
    const map: ShardMapConfig = { shardCount: configured.shardCount, hash: stored.shardMap?.hash ?? "fnv1a32" };
    validateShardMap(map);
    checkShardFitsMap(configured.shardId, map);
    if (stored.shardMap !== null && !sameShardMap(stored.shardMap, map)) {
      throw failedPrecondition(
        `data directory ${dataDir} was created with shard map ${describeShardMap(stored.shardMap)}, but --shard-count gives ${describeShardMap(map)}`,
      );
    }
    if (stored.shardMap === null) update = { ...update, shardMap: map };
  }
  if (configured.clusterId !== undefined && configured.clusterId !== "") {
    if (stored.clusterId !== "" && stored.clusterId !== configured.clusterId) {
      throw failedPrecondition(
        `data directory ${dataDir} belongs to cluster "${stored.clusterId}", but --cluster-id is "${configured.clusterId}"`,
      );
    }
    if (stored.clusterId === "") update = { ...update, clusterId: configured.clusterId };
  }
  const givenLimits = configured.transactionLimits ?? {};
  if (stored.limits === null) {
    // First start, or a database from before limits were recorded: the flags, else today's defaults.
    update = { ...update, limits: withDefaultLimits(givenLimits) };
  } else {
    const mismatch = transactionLimitsMismatch(stored.limits, givenLimits);
    if (mismatch !== null) {
      throw failedPrecondition(
        `data directory ${dataDir} was created with the cluster's limits (${describeTransactionLimits(stored.limits)}), ` +
          `but ${mismatch}; the limits are fixed when the cluster is created`,
      );
    }
  }
  const missing = [
    ...(stored.clusterId === "" && update.clusterId === undefined ? ["--cluster-id"] : []),
    ...(stored.shardMap === null && update.shardMap === undefined ? ["--shard-count"] : []),
  ];
  if (missing.length > 0) {
    throw failedPrecondition(
      `data directory ${dataDir} has no ${missing.join(" or ")} yet: give ${missing.join(" and ")} (the LogStore's values) on the first start; ` +
        "a shard never takes its identity from the network",
    );
  }
  return update;
}

function checkShardFitsMap(shardId: number, map: ShardMapConfig): void {
  if (shardId >= map.shardCount) {
    throw failedPrecondition(`shard ${shardId} does not exist in shard map ${describeShardMap(map)}`);
  }
}

/**
 * Checks a LogPlayer's hello against this shard's configured identity.
 * Returns the problem (FAILED_PRECONDITION naming both values, or
 * INVALID_ARGUMENT for a malformed hello). Pure.
 */
export function checkHello(
  identity: ShardIdentity,
  hello: DeliverHello,
  protocolVersion: number,
): { ok: false; error: LpError } | { ok: true } {
  assert(
    identity.clusterId !== "" && identity.shardMap !== null && identity.limits !== null,
    "a shard serves only once its identity is configured",
  );
  const refuse = (error: LpError) => ({ ok: false as const, error });
  if (hello.protocolVersion !== protocolVersion) {
    return refuse(
      failedPrecondition(`protocol version mismatch: the LogPlayer speaks ${hello.protocolVersion}, this shard speaks ${protocolVersion}`),
    );
  }
  if (hello.shardId !== identity.shardId) {
    return refuse(failedPrecondition(`wrong shard: the stream is for shard ${hello.shardId}, this is shard ${identity.shardId}`));
  }
  if (hello.shardMap === undefined) return refuse(invalidArgument("hello has no shard map"));
  const map: ShardMapConfig = { shardCount: hello.shardMap.shardCount, hash: hello.shardMap.hash };
  try {
    validateShardMap(map);
    checkShardFitsMap(identity.shardId, map);
  } catch (err: unknown) {
    return refuse(LpError.from(err));
  }
  if (!sameShardMap(identity.shardMap, map)) {
    return refuse(
      failedPrecondition(
        `shard map mismatch: the LogPlayer has ${describeShardMap(map)}, this shard has ${describeShardMap(identity.shardMap)}`,
      ),
    );
  }
  if (identity.clusterId !== hello.clusterId) {
    return refuse(
      failedPrecondition(
        `cluster id mismatch: the LogPlayer is in cluster "${hello.clusterId}", this shard is in cluster "${identity.clusterId}"`,
      ),
    );
  }
  // A LogPlayer that sends no limits predates them: it knows only the defaults.
  const helloLimits = hello.limits ?? DEFAULT_TRANSACTION_LIMITS;
  if (!sameTransactionLimits(identity.limits, helloLimits)) {
    return refuse(
      failedPrecondition(
        `limits mismatch: the LogPlayer has the cluster's limits as ${describeTransactionLimits(helloLimits)}, ` +
          `this shard recorded ${describeTransactionLimits(identity.limits)}`,
      ),
    );
  }
  return { ok: true };
}
