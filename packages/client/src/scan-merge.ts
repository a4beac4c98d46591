import { assert } from "@logplayer/common";

export interface ScanItem {
  key: string;
  value: Buffer;
}

/**
 * Keys compare as UTF-8 bytes, the order SQLite's BINARY collation gives the
 * shards. JavaScript's `<` compares UTF-16 code units, which disagrees for
 * characters above U+FFFF, so it is not used.
 */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Merges per-shard scan results into one key-ordered list of at most
 * `limit` items. Each shard's list must already hold its own first `limit`
 * matches (or all of them), so the first `limit` of the union are exact. Pure.
 */
export function mergeScanResults(perShard: readonly (readonly ScanItem[])[], limit: number): ScanItem[] {
  assert(Number.isInteger(limit) && limit >= 0, `scan merge: bad limit ${limit}`);
  const all: ScanItem[] = [];
  for (const items of perShard) all.push(...items);
  all.sort((a, b) => compareKeys(a.key, b.key));
  for (let i = 1; i < all.length; i++) {
    // A key lives on exactly one shard; a repeat means a shard served keys it does not own.
    assert(all[i - 1]!.key !== all[i]!.key, `scan merge: key ${JSON.stringify(all[i]!.key)} returned by two shards`);
  }
  return all.slice(0, limit);
}
