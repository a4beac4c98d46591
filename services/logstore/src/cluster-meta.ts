import { randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import {
  createShardMap,
  DEFAULT_TRANSACTION_LIMITS,
  describeShardMap,
  describeTransactionLimits,
  failedPrecondition,
  parseTransactionLimits,
  transactionLimitsMismatch,
  validateShardMap,
  withDefaultLimits,
  type GivenTransactionLimits,
  type ShardMapConfig,
  type TransactionLimits,
} from "@logplayer/common";
import { writeFileAtomically } from "./atomic-file";

/**
 * cluster.json in the data directory: the cluster's identity, its shard map
 * and its transaction limits. The LogStore is the one source of truth for
 * them; every other process learns them from LogStore.Status (shards also
 * take them as flags and check every hello against them).
 *
 * Format 1 (before limits were recorded) is still read: its cluster runs
 * with DEFAULT_TRANSACTION_LIMITS, the values every service used then. The
 * file is left as it is; a new cluster is written as format 2.
 */
export const CLUSTER_META_FILE = "cluster.json";
const FORMAT_VERSION = 2;
const FORMAT_VERSION_WITHOUT_LIMITS = 1;

export interface ClusterMeta {
  readonly clusterId: string;
  readonly shardMap: ShardMapConfig;
  readonly limits: TransactionLimits;
}

/** What the command line asked for; all optional after the first start. */
export interface ClusterMetaRequest {
  readonly shardCount: number | undefined;
  readonly clusterId: string | undefined;
  /** Limit flags given; on the first start the rest take their defaults. */
  readonly limits?: GivenTransactionLimits;
}

/**
 * Decides the cluster metadata to run with. Pure. First start (`stored`
 * null): the shard count is required and the cluster id defaults to
 * `newClusterId`. Later starts: any value given must match what is stored.
 */
export function resolveClusterMeta(stored: ClusterMeta | null, request: ClusterMetaRequest, newClusterId: string): ClusterMeta {
  if (stored === null) {
    if (request.shardCount === undefined) {
      throw failedPrecondition("no cluster.json in the data directory: the first start needs --shard-count");
    }
    return {
      clusterId: request.clusterId ?? newClusterId,
      shardMap: createShardMap(request.shardCount),
      limits: withDefaultLimits(request.limits ?? {}),
    };
  }
  if (request.shardCount !== undefined && request.shardCount !== stored.shardMap.shardCount) {
    throw failedPrecondition(
      `--shard-count ${request.shardCount} differs from the stored shard map ${describeShardMap(stored.shardMap)} ` +
        `(shard count ${stored.shardMap.shardCount}); the shard map is fixed when the cluster is created`,
    );
  }
  if (request.clusterId !== undefined && request.clusterId !== stored.clusterId) {
    throw failedPrecondition(`--cluster-id "${request.clusterId}" differs from the stored cluster id "${stored.clusterId}"`);
  }
  const mismatch = transactionLimitsMismatch(stored.limits, request.limits ?? {});
  if (mismatch !== null) {
    throw failedPrecondition(
      `${mismatch} differs from the cluster's limits (${describeTransactionLimits(stored.limits)}); ` +
        "the limits are fixed when the cluster is created: leave the flag out or give the recorded value",
    );
  }
  return stored;
}

/** Parses cluster.json's text. Throws a clear error naming the file when it is malformed. */
export function parseClusterMeta(text: string, filePath: string): ClusterMeta {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err: unknown) {
    throw failedPrecondition(`${filePath} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const record = typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  const shardMap = record["shardMap"] as Record<string, unknown> | undefined;
  const version = record["formatVersion"];
  const limits = version === FORMAT_VERSION_WITHOUT_LIMITS ? DEFAULT_TRANSACTION_LIMITS : parseTransactionLimits(record["limits"]);
  if (
    (version !== FORMAT_VERSION && version !== FORMAT_VERSION_WITHOUT_LIMITS) ||
    limits === null ||
    typeof record["clusterId"] !== "string" ||
    record["clusterId"] === "" ||
    typeof shardMap !== "object" ||
    shardMap === null ||
    typeof shardMap["shardCount"] !== "number" ||
    typeof shardMap["hash"] !== "string"
  ) {
    throw failedPrecondition(
      `${filePath} is malformed: expected {formatVersion: ${FORMAT_VERSION}, clusterId, shardMap: {shardCount, hash}, ` +
        "limits: {entryBytesMax, mutationsMax, keyBytesMax, valueBytesMax}} (or format 1 without limits)",
    );
  }
  const meta: ClusterMeta = {
    clusterId: record["clusterId"],
    shardMap: { shardCount: shardMap["shardCount"], hash: shardMap["hash"] },
    limits,
  };
  validateShardMap(meta.shardMap);
  return meta;
}

export function formatClusterMeta(meta: ClusterMeta): string {
  const document = { formatVersion: FORMAT_VERSION, clusterId: meta.clusterId, shardMap: meta.shardMap, limits: meta.limits };
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** Reads cluster.json; null when it does not exist. Throws a clear error when it is malformed. */
export async function readClusterMeta(dataDir: string): Promise<ClusterMeta | null> {
  const filePath = path.join(dataDir, CLUSTER_META_FILE);
  try {
    return parseClusterMeta(await fs.readFile(filePath, "utf8"), filePath);
  } catch (err: unknown) {
    if (typeof err === "object" && err !== null && (err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/** Writes cluster.json atomically: temp file, fsync, rename, fsync the directory. */
export async function writeClusterMeta(dataDir: string, meta: ClusterMeta): Promise<void> {
  await writeFileAtomically(path.join(dataDir, CLUSTER_META_FILE), formatClusterMeta(meta));
}

/** The cluster metadata to run with: read, checked against the request, a fresh id on first start. */
export async function loadClusterMeta(dataDir: string, request: ClusterMetaRequest): Promise<{ meta: ClusterMeta; created: boolean }> {
  const stored = await readClusterMeta(dataDir);
  return { meta: resolveClusterMeta(stored, request, randomUUID()), created: stored === null };
}
