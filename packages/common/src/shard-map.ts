import { assert } from "./assert";
import { failedPrecondition } from "./errors";

/** How keys route to shards. One per cluster, fixed at creation (see proto ShardMap). */
export interface ShardMapConfig {
  shardCount: number;
  hash: string;
}

export const SHARD_MAP_HASH_FNV1A32 = "fnv1a32";
export const SHARD_COUNT_MAX = 1024;

export function createShardMap(shardCount: number): ShardMapConfig {
  const map = { shardCount, hash: SHARD_MAP_HASH_FNV1A32 };
  validateShardMap(map);
  return map;
}

export function validateShardMap(map: ShardMapConfig): void {
  if (!Number.isInteger(map.shardCount) || map.shardCount < 1 || map.shardCount > SHARD_COUNT_MAX) {
    throw failedPrecondition(`shard map: shard count ${map.shardCount} is not in [1, ${SHARD_COUNT_MAX}]`);
  }
  if (map.hash !== SHARD_MAP_HASH_FNV1A32) {
    throw failedPrecondition(`shard map: unknown hash "${map.hash}" (known: ${SHARD_MAP_HASH_FNV1A32})`);
  }
}

export function describeShardMap(map: ShardMapConfig): string {
  return `${map.hash}/${map.shardCount}`;
}

export function sameShardMap(a: ShardMapConfig, b: ShardMapConfig): boolean {
  return a.shardCount === b.shardCount && a.hash === b.hash;
}

const encoder = new TextEncoder();

/** 32-bit FNV-1a over the key's UTF-8 bytes: stable across processes and languages. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

export function shardForKey(key: string, map: ShardMapConfig): number {
  assert(map.shardCount >= 1, "shard map has no shards");
  return fnv1a32(encoder.encode(key)) % map.shardCount;
}
