import { InternalError, mutation, type LogPlayerClient } from "@logplayer/client";
import { assert } from "@logplayer/common";
import { TOKEN_SEPARATOR, tokenFor, type RywRead, type TxnRecord, type Violation } from "./checker";

/**
 * The chaos workload: open-loop multi-shard transactions, each APPENDing its
 * own token to one key on each of a few shards, plus read-your-writes reads
 * of recently acknowledged keys. It records everything the checker needs.
 */
export interface WorkloadConfig {
  /** Offered transactions per second. */
  ratePerSecond: number;
  /** Commits outstanding at once; a send due beyond it is skipped and counted. */
  inflightMax: number;
  commitTimeoutMs: number;
  keysPerShard: number;
  /** Shards one transaction touches, at most (at least 2 when there are 2 shards). */
  shardsPerTxnMax: number;
  /** One read-your-writes read every this many ms. */
  rywReadIntervalMs: number;
  rywReadTimeoutMs: number;
  /** Reads kept for the final checks; later ones are still checked for errors. */
  rywReadsStoredMax: number;
  /** Recently acknowledged transactions the reads choose from. */
  recentAckedMax: number;
}

export const DEFAULT_WORKLOAD: WorkloadConfig = {
  ratePerSecond: 40,
  inflightMax: 32,
  commitTimeoutMs: 2_000,
  keysPerShard: 6,
  shardsPerTxnMax: 3,
  rywReadIntervalMs: 100,
  rywReadTimeoutMs: 2_000,
  rywReadsStoredMax: 20_000,
  recentAckedMax: 256,
};

export interface WorkloadStats {
  attempted: number;
  acked: number;
  unknown: number;
  /** Failed commits by error name (their outcome is unknown). */
  unknownByError: Record<string, number>;
  /** Sends skipped because inflightMax commits were outstanding. */
  throttled: number;
  rywReads: number;
  /** Reads that timed out or found their shard unreachable (not a violation). */
  rywReadsFailed: number;
}

/** `keysPerShard` keys on every shard, found by naming keys k0, k1, … and routing them. Pure. */
export function workloadKeys(shardCount: number, keysPerShard: number, shardForKey: (key: string) => number): string[][] {
  assert(shardCount >= 1 && keysPerShard >= 1, "workload has keys on every shard");
  const byShard: string[][] = Array.from({ length: shardCount }, () => []);
  const namesMax = shardCount * keysPerShard * 1000;
  for (let i = 0; i < namesMax && byShard.some((keys) => keys.length < keysPerShard); i++) {
    const key = `k${i}`;
    const keys = byShard[shardForKey(key)]!;
    if (keys.length < keysPerShard) keys.push(key);
  }
  assert(
    byShard.every((keys) => keys.length === keysPerShard),
    "the key hash reaches every shard",
  );
  return byShard;
}

/** One key on each of 2..shardsPerTxnMax distinct shards (1 with a single shard). Pure given `random`. */
export function chooseTxnKeys(keysByShard: readonly (readonly string[])[], shardsPerTxnMax: number, random: () => number): string[] {
  const shardCount = keysByShard.length;
  const low = Math.min(2, shardCount);
  const high = Math.max(low, Math.min(shardsPerTxnMax, shardCount));
  const wanted = low + Math.floor(random() * (high - low + 1));
  const shards = new Set<number>();
  while (shards.size < wanted) shards.add(Math.floor(random() * shardCount));
  return [...shards].map((shard) => {
    const keys = keysByShard[shard]!;
    return keys[Math.floor(random() * keys.length)]!;
  });
}

export class AppendWorkload {
  readonly txns: TxnRecord[] = [];
  readonly reads: RywRead[] = [];
  readonly violations: Violation[] = [];
  readonly stats: WorkloadStats = { attempted: 0, acked: 0, unknown: 0, unknownByError: {}, throttled: 0, rywReads: 0, rywReadsFailed: 0 };
  readonly #client: LogPlayerClient;
  readonly #keysByShard: readonly (readonly string[])[];
  readonly #random: () => number;
  readonly #config: WorkloadConfig;
  readonly #recentAcked: TxnRecord[] = [];
  readonly #inflight = new Set<Promise<void>>();

  constructor(client: LogPlayerClient, keysByShard: readonly (readonly string[])[], random: () => number, config: WorkloadConfig) {
    assert(config.ratePerSecond > 0 && config.inflightMax >= 1, "workload rate and inflight bound are positive");
    assert(config.rywReadIntervalMs > 0 && config.recentAckedMax >= 1, "read interval and recent-ack window are positive");
    this.#client = client;
    this.#keysByShard = keysByShard;
    this.#random = random;
    this.#config = config;
  }

  get keys(): string[] {
    return this.#keysByShard.flat();
  }

  /** Sends at the configured rate until `stopped()`, then waits for every outstanding call. */
  async run(stopped: () => boolean): Promise<void> {
    await Promise.all([this.#commitLoop(stopped), this.#readLoop(stopped)]);
    await Promise.all([...this.#inflight]);
    assert(this.stats.acked + this.stats.unknown === this.stats.attempted, "every commit ended acked or unknown");
  }

  async #commitLoop(stopped: () => boolean): Promise<void> {
    const intervalMs = 1000 / this.#config.ratePerSecond;
    let dueMs = Date.now();
    while (!stopped()) {
      dueMs += intervalMs;
      const waitMs = dueMs - Date.now();
      if (waitMs > 0) await sleep(waitMs);
      // Open loop: a send that is due goes out now or is skipped, never queued.
      if (this.#inflight.size >= this.#config.inflightMax) {
        this.stats.throttled += 1;
        continue;
      }
      this.#track(this.#commitOne());
    }
  }

  async #commitOne(): Promise<void> {
    const txn: TxnRecord = {
      token: tokenFor(this.txns.length),
      keys: chooseTxnKeys(this.#keysByShard, this.#config.shardsPerTxnMax, this.#random),
      lsn: undefined,
    };
    this.txns.push(txn);
    this.stats.attempted += 1;
    const value = `${txn.token}${TOKEN_SEPARATOR}`;
    try {
      const result = await this.#client.commit(
        txn.keys.map((key) => mutation.append(key, value)),
        { timeoutMs: this.#config.commitTimeoutMs },
      );
      txn.lsn = result.lsn;
      this.stats.acked += 1;
      this.#recentAcked.push(txn);
      if (this.#recentAcked.length > this.#config.recentAckedMax) this.#recentAcked.shift();
    } catch (err: unknown) {
      this.stats.unknown += 1;
      const name = err instanceof Error ? err.name : "unknown";
      this.stats.unknownByError[name] = (this.stats.unknownByError[name] ?? 0) + 1;
    }
  }

  async #readLoop(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      await sleep(this.#config.rywReadIntervalMs);
      const txn = this.#recentAcked[Math.floor(this.#random() * this.#recentAcked.length)];
      // Bounded like the commits: reads share the outstanding-call budget.
      if (txn === undefined || this.#inflight.size >= this.#config.inflightMax) continue;
      this.#track(this.#readOne(txn));
    }
  }

  async #readOne(txn: TxnRecord): Promise<void> {
    assert(txn.lsn !== undefined, "reads follow acknowledged commits");
    const key = txn.keys[Math.floor(this.#random() * txn.keys.length)]!;
    try {
      const read = await this.#client.get(key, { minLsn: txn.lsn, timeoutMs: this.#config.rywReadTimeoutMs });
      this.stats.rywReads += 1;
      const value = read.found ? read.value.toString("utf8") : "";
      if (this.reads.length < this.#config.rywReadsStoredMax) this.reads.push({ key, minLsn: txn.lsn, appliedLsn: read.appliedLsn, value });
      if (!value.split(TOKEN_SEPARATOR).includes(txn.token)) {
        this.violations.push({
          kind: "ryw-stale",
          key,
          detail: `read with minLsn ${txn.lsn} (applied ${read.appliedLsn}) lacks ${txn.token}`,
        });
      }
    } catch (err: unknown) {
      // The client raises InternalError when a shard answers below minLsn: older state.
      if (InternalError.is(err) && err.message.includes("< min LSN"))
        this.violations.push({ kind: "ryw-error", key, detail: `read with minLsn ${txn.lsn}: ${err.message}` });
      else this.stats.rywReadsFailed += 1;
    }
  }

  #track(work: Promise<void>): void {
    this.#inflight.add(work);
    void work.finally(() => this.#inflight.delete(work));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
