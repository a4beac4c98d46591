import { assert } from "./assert";
import { FailedPreconditionError } from "./coded-error";

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

/** Throws FailedPreconditionError when this build cannot route keys with `map`. */
export function validateShardMap(map: ShardMapConfig): void {
  if (!Number.isInteger(map.shardCount) || map.shardCount < 1 || map.shardCount > SHARD_COUNT_MAX) {
    throw new FailedPreconditionError(`shard map: shard count ${map.shardCount} is not in [1, ${SHARD_COUNT_MAX}]`);
  }
  if (map.hash !== SHARD_MAP_HASH_FNV1A32) {
    throw new FailedPreconditionError(`shard map: unknown hash "${map.hash}" (known: ${SHARD_MAP_HASH_FNV1A32})`);
  }
}

export function describeShardMap(map: ShardMapConfig): string {
  return `${map.hash}/${map.shardCount}`;
}

export function sameShardMap(a: ShardMapConfig, b: ShardMapConfig): boolean {
  return a.shardCount === b.shardCount && a.hash === b.hash;
}

/** 32-bit FNV-1a over bytes: the key hash's definition, stable across processes and languages. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = FNV_OFFSET_BASIS;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, FNV_PRIME);
  return hash >>> 0;
}

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `key`, computed straight from the
 * UTF-16 code units: the same value as fnv1a32(TextEncoder.encode(key)),
 * lone surrogates included (encoded as U+FFFD, as TextEncoder does), but
 * without allocating. The dispatcher hashes every mutation's key, and the
 * allocation was most of its cost. shard-map.test.ts proves the equality.
 */
export function fnv1a32Utf8(key: string): number {
  let hash = FNV_OFFSET_BASIS;
  const length = key.length;
  for (let i = 0; i < length; i++) {
    let code = key.charCodeAt(i);
    if (code < 0x80) {
      hash = Math.imul(hash ^ code, FNV_PRIME);
      continue;
    }
    if (code < 0x800) {
      hash = Math.imul(hash ^ (0xc0 | (code >> 6)), FNV_PRIME);
      hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME);
      continue;
    }
    if (code >= 0xd800 && code <= 0xdbff && i + 1 < length) {
      const low = key.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        const point = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
        i += 1;
        hash = Math.imul(hash ^ (0xf0 | (point >> 18)), FNV_PRIME);
        hash = Math.imul(hash ^ (0x80 | ((point >> 12) & 0x3f)), FNV_PRIME);
        hash = Math.imul(hash ^ (0x80 | ((point >> 6) & 0x3f)), FNV_PRIME);
        hash = Math.imul(hash ^ (0x80 | (point & 0x3f)), FNV_PRIME);
        continue;
      }
    }
    if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd; // a lone surrogate
    hash = Math.imul(hash ^ (0xe0 | (code >> 12)), FNV_PRIME);
    hash = Math.imul(hash ^ (0x80 | ((code >> 6) & 0x3f)), FNV_PRIME);
    hash = Math.imul(hash ^ (0x80 | (code & 0x3f)), FNV_PRIME);
  }
  return hash >>> 0;
}

/** The shard a key routes to. Runs for every mutation dispatched, so it does not allocate. */
export function shardForKey(key: string, map: ShardMapConfig): number {
  // A static message: a template string here would be built on every call.
  assert(map.hash === SHARD_MAP_HASH_FNV1A32 && map.shardCount >= 1, "shardForKey: unsupported shard map");
  return fnv1a32Utf8(key) % map.shardCount;
}
