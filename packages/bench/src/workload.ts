import { assert, createShardMap, seededRandom, shardForKey, type ShardMapConfig } from "@logplayer/common";

/** The paper's workload: each transaction PUTs random values to `keysPerTxn` distinct random keys. */
export interface WorkloadConfig {
  keysPerTxn: number;
  valueBytes: number;
  /** Keys are drawn uniformly from this many distinct names. */
  keySpace: number;
  shardCount: number;
  seed: number;
}

export interface BenchTxn {
  keys: string[];
  /** One pooled value per key (same index). */
  values: Buffer[];
  /** The shard ids the transaction touches, ascending, each once. */
  shards: number[];
}

// Values are drawn from a pool rather than generated per transaction, so the
// load generator spends its CPU on sending, not on random bytes.
const VALUE_POOL_SIZE = 256;
export const KEYS_PER_TXN_MAX = 1000;

/** The benchmark's seeded randomness (common's mulberry32), so runs repeat. */
export const createRandom = seededRandom;

export function benchKey(index: number): string {
  return `bench-${index}`;
}

export class Workload {
  readonly config: WorkloadConfig;
  readonly shardMap: ShardMapConfig;
  readonly #random: () => number;
  readonly #values: Buffer[];
  readonly #keyShards: Int32Array;

  constructor(config: WorkloadConfig) {
    assert(Number.isInteger(config.keysPerTxn) && config.keysPerTxn >= 1 && config.keysPerTxn <= KEYS_PER_TXN_MAX, "keysPerTxn in range");
    assert(Number.isInteger(config.keySpace) && config.keySpace >= config.keysPerTxn, "keySpace holds a transaction's distinct keys");
    assert(Number.isInteger(config.valueBytes) && config.valueBytes >= 0, "valueBytes is a size");
    this.config = config;
    this.shardMap = createShardMap(config.shardCount);
    this.#random = createRandom(config.seed);
    this.#values = Array.from({ length: VALUE_POOL_SIZE }, () => this.#randomBytes(config.valueBytes));
    // Routing every key once up front keeps hashing out of the send loop.
    this.#keyShards = Int32Array.from({ length: config.keySpace }, (_, i) => shardForKey(benchKey(i), this.shardMap));
  }

  #randomBytes(length: number): Buffer {
    const bytes = Buffer.alloc(length);
    for (let i = 0; i < length; i++) bytes[i] = Math.floor(this.#random() * 256);
    return bytes;
  }

  #randomIndex(bound: number): number {
    return Math.floor(this.#random() * bound);
  }

  next(): BenchTxn {
    const { keysPerTxn, keySpace } = this.config;
    const chosen = new Set<number>();
    // Distinct keys: rejection sampling, bounded (keySpace >= keysPerTxn, so it ends; the bound catches a broken PRNG).
    for (let draws = 0; chosen.size < keysPerTxn; draws++) {
      assert(draws < keysPerTxn * 1000, "distinct key sampling terminates");
      chosen.add(this.#randomIndex(keySpace));
    }
    const indexes = [...chosen];
    const shards = [...new Set(indexes.map((i) => this.#keyShards[i]!))].sort((a, b) => a - b);
    return {
      keys: indexes.map(benchKey),
      values: indexes.map(() => this.#values[this.#randomIndex(VALUE_POOL_SIZE)]!),
      shards,
    };
  }
}
