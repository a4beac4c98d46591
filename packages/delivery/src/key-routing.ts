import { assert, SHARD_MAP_HASH_FNV1A32, type ShardMapConfig } from "@logplayer/common";

const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * 32-bit FNV-1a over the UTF-8 bytes of `key`, computed straight from the
 * UTF-16 code units: the same value as common's fnv1a32(TextEncoder.encode(key)),
 * lone surrogates included (encoded as U+FFFD, as TextEncoder does), but
 * without allocating. The dispatcher hashes every mutation's key, and the
 * allocation was most of its cost. key-routing.test.ts proves the equality.
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

/** The shard a key routes to: common's shardForKey, allocation-free. */
export function shardOfKey(key: string, shardMap: ShardMapConfig): number {
  // A static message: this runs for every mutation dispatched.
  assert(shardMap.hash === SHARD_MAP_HASH_FNV1A32 && shardMap.shardCount >= 1, "shardOfKey: unsupported shard map");
  return fnv1a32Utf8(key) % shardMap.shardCount;
}
