import { shardForKey, type ShardMapConfig } from "@logplayer/common";
import type { DeliveryLimits, Dispatcher, TargetQueue } from "@logplayer/delivery";
import type { LogEntry, Part } from "@logplayer/proto";

/** A broken invariant: the run stops and reports it with its seed. */
export class DeliveryViolation extends Error {
  override readonly name = "DeliveryViolation";
}

/** What the checker reads of a shard: its live (committed in SQLite, maybe unsynced) state. */
export interface ShardView {
  readonly index: number;
  readonly appliedLsn: bigint;
  /**
   * Ghost state, kept beside the data and lost with it: the LSNs of the
   * non-dummy parts applied, in order. Only the checker reads it.
   */
  readonly appliedParts: readonly bigint[];
  readonly kv: ReadonlyMap<string, Uint8Array>;
}

interface KeyHistory {
  readonly lsns: bigint[];
  readonly tokens: string[];
}

const decoder = new TextDecoder();

/**
 * The invariants of GUIDE.md, checked against the committed log (the one
 * source of truth, fed by onCommit):
 * - exactly-once in order: each shard's applied parts are a prefix of the
 *   committed log filtered to that shard, and none of that filtered log at
 *   or below the shard's applied LSN is missing;
 * - atomicity, from the data alone: every key's value is exactly the APPEND
 *   tokens of the committed entries at or below the applied LSN, in order;
 * - read-your-writes: a Get with minLsn L answered at applied LSN >= L with
 *   exactly that state;
 * - bounded: the cores' queues and windows within their limits.
 */
export class DeliveryChecker {
  /** Per shard, the LSNs of committed entries that touch it. */
  readonly filtered: bigint[][];
  readonly #keys = new Map<string, KeyHistory>();
  /** Per shard, how much of appliedParts was already verified (it only grows between restarts). */
  readonly #verified: number[];
  #lastCommitted = 0n;
  readsChecked = 0;

  constructor(private readonly shardMap: ShardMapConfig) {
    this.filtered = Array.from({ length: shardMap.shardCount }, () => []);
    this.#verified = Array.from({ length: shardMap.shardCount }, () => 0);
  }

  get lastCommitted(): bigint {
    return this.#lastCommitted;
  }

  /** An entry became durable in the LogStore: committed forever, in LSN order. */
  onCommit(entry: LogEntry): void {
    if (entry.lsn !== this.#lastCommitted + 1n) this.fail(`log: committed LSN ${entry.lsn} after ${this.#lastCommitted}`);
    this.#lastCommitted = entry.lsn;
    const touched = new Set<number>();
    for (const mutation of entry.txn?.mutations ?? []) {
      touched.add(shardForKey(mutation.key, this.shardMap));
      let history = this.#keys.get(mutation.key);
      if (history === undefined) {
        history = { lsns: [], tokens: [] };
        this.#keys.set(mutation.key, history);
      }
      history.lsns.push(entry.lsn);
      history.tokens.push(decoder.decode(mutation.value));
    }
    for (const shard of touched) this.filtered[shard]?.push(entry.lsn);
  }

  /** The shard restarted from its durable state: verify its ghost sequence again from the start. */
  onShardRestart(shard: number): void {
    this.#verified[shard] = 0;
  }

  /** Exactly-once in order, plus atomicity of `keys` (all keys when omitted). */
  checkShard(shard: ShardView, keys?: Iterable<string>): void {
    const filtered = this.filtered[shard.index] ?? [];
    const parts = shard.appliedParts;
    if (shard.appliedLsn > this.#lastCommitted)
      this.fail(`shard ${shard.index}: applied LSN ${shard.appliedLsn} beyond the committed log ${this.#lastCommitted}`);
    for (let i = this.#verified[shard.index] ?? 0; i < parts.length; i++) {
      if (parts[i] === filtered[i]) continue;
      const seen = parts.slice(Math.max(0, i - 3), i + 2).join(",");
      const want = filtered.slice(Math.max(0, i - 3), i + 2).join(",");
      this.fail(
        `exactly-once: shard ${shard.index} applied part #${i + 1} = LSN ${parts[i]}, expected ${filtered[i]} (applied ...${seen}; log ...${want})`,
      );
    }
    this.#verified[shard.index] = parts.length;
    const nextExpected = filtered[parts.length];
    if (nextExpected !== undefined && nextExpected <= shard.appliedLsn) {
      this.fail(`exactly-once: shard ${shard.index} is at applied LSN ${shard.appliedLsn} but never applied LSN ${nextExpected} (skipped)`);
    }
    const last = parts.at(-1);
    if (last !== undefined && last > shard.appliedLsn)
      this.fail(
        `atomicity: shard ${shard.index} holds the data of part ${last} above its applied LSN ${shard.appliedLsn} (data and applied LSN split)`,
      );
    for (const key of keys ?? this.#keysOf(shard.index)) this.#checkValue(shard, key, shard.kv.get(key), shard.appliedLsn, "atomicity");
  }

  /** A Get answered: it must not be older than minLsn, and must be exactly the state at its applied LSN. */
  checkRead(shard: number, key: string, minLsn: bigint, appliedLsn: bigint, value: Uint8Array | undefined): void {
    this.readsChecked += 1;
    if (appliedLsn < minLsn) this.fail(`read-your-writes: shard ${shard} answered ${key} at applied ${appliedLsn} < minLsn ${minLsn}`);
    this.#checkValue({ index: shard, appliedLsn, appliedParts: [], kv: new Map() }, key, value, appliedLsn, "read-your-writes");
  }

  /**
   * The commit-LSN fence: a batch's commit LSN is committed, and covers its
   * parts (the production shard refuses a batch that breaks this).
   */
  checkCommitFence(shard: number, parts: readonly Part[], commitLsn: bigint): void {
    const last = parts[parts.length - 1];
    if (last !== undefined && last.lsn > commitLsn)
      this.fail(`commit fence: shard ${shard} got part ${last.lsn} in a batch with commit ${commitLsn}`);
    if (commitLsn > this.#lastCommitted)
      this.fail(`commit fence: shard ${shard} got commit ${commitLsn}, the log is at ${this.#lastCommitted}`);
  }

  /**
   * A LogPlayer never believes more is committed than is, and never finds a
   * shard ahead of the log: this log loses no committed entry, so that would be a
   * false alarm that stops a healthy shard for good.
   */
  checkCommitKnowledge(dispatcher: Dispatcher, label: string): void {
    if (dispatcher.commitLsnKnown > this.#lastCommitted)
      this.fail(`commit: ${label} knows commit ${dispatcher.commitLsnKnown}, the log is at ${this.#lastCommitted}`);
    for (const target of dispatcher.targets) {
      const ahead = target.aheadOfLog;
      if (ahead !== null)
        this.fail(`ahead: ${label} declared shard ${target.target} (applied ${ahead.appliedLsn}) ahead of commit ${ahead.commitLsn}`);
    }
  }

  /** Bounded: every queue and window of a live Dispatcher within its limits. */
  checkBounded(targets: readonly TargetQueue[], limits: DeliveryLimits, label: string): void {
    for (const target of targets) {
      const where = `bounded: ${label} target ${target.target}`;
      if (target.normalLength + target.catchUpLength > 2 * limits.queueEntriesMax)
        this.fail(`${where}: ${target.normalLength}+${target.catchUpLength} parts queued`);
      if (target.normalLength > limits.queueEntriesMax)
        this.fail(`${where}: normal queue ${target.normalLength} > ${limits.queueEntriesMax}`);
      if (target.catchUpLength > limits.queueEntriesMax)
        this.fail(`${where}: catch-up queue ${target.catchUpLength} > ${limits.queueEntriesMax}`);
      if (target.windowBatches > limits.windowBatchesMax)
        this.fail(`${where}: window ${target.windowBatches} > ${limits.windowBatchesMax}`);
    }
  }

  /** After quiescence: every shard holds the whole filtered log, every key its every token. */
  checkComplete(shard: ShardView): void {
    if (shard.appliedLsn !== this.#lastCommitted)
      this.fail(`liveness: shard ${shard.index} at ${shard.appliedLsn}, log at ${this.#lastCommitted}`);
    this.checkShard(shard);
    const filtered = this.filtered[shard.index] ?? [];
    if (shard.appliedParts.length !== filtered.length) {
      this.fail(`exactly-once: shard ${shard.index} applied ${shard.appliedParts.length} parts, the log holds ${filtered.length}`);
    }
    for (const key of shard.kv.keys()) {
      if (!this.#keys.has(key)) this.fail(`atomicity: shard ${shard.index} holds key ${key} that no committed entry wrote`);
    }
  }

  expectedValue(key: string, appliedLsn: bigint): string {
    const history = this.#keys.get(key);
    if (history === undefined) return "";
    let value = "";
    for (let i = 0; i < history.lsns.length && (history.lsns[i] ?? 0n) <= appliedLsn; i++) value += history.tokens[i] ?? "";
    return value;
  }

  fail(message: string): never {
    throw new DeliveryViolation(message);
  }

  #keysOf(shard: number): string[] {
    return [...this.#keys.keys()].filter((key) => shardForKey(key, this.shardMap) === shard);
  }

  #checkValue(shard: ShardView, key: string, value: Uint8Array | undefined, appliedLsn: bigint, rule: string): void {
    const actual = value === undefined ? "" : decoder.decode(value);
    const expected = this.expectedValue(key, appliedLsn);
    if (actual === expected) return;
    this.fail(
      `${rule}: shard ${shard.index} key ${key} at applied LSN ${appliedLsn} holds "${actual.slice(-80)}", expected "${expected.slice(-80)}"`,
    );
  }
}
