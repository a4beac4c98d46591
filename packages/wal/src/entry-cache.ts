import { assert } from "@logplayer/base";
import type { LogEntry } from "@logplayer/proto";

/**
 * The most recent entries of the log, in memory, so that readers tailing the
 * log never touch the disk. Holds a contiguous LSN range [firstLsn, lastLsn]
 * and evicts the oldest entries once more than `cacheBytesMax` bytes (of
 * encoded payload) are held. Pure: no I/O.
 */
export class EntryCache {
  /** Slots before #head are evicted and hold undefined, so their entries (and the buffers their values view) can be collected. */
  #entries: (LogEntry | undefined)[] = [];
  #sizes: number[] = [];
  /** Index in #entries of the oldest live entry; compacted lazily. */
  #head = 0;
  #firstLsn = 1n;
  #bytes = 0;

  constructor(readonly cacheBytesMax: number) {
    assert(Number.isInteger(cacheBytesMax) && cacheBytesMax >= 0, `cacheBytesMax must be >= 0, got ${cacheBytesMax}`);
  }

  get size(): number {
    return this.#entries.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Oldest cached LSN; meaningless when empty. */
  get firstLsn(): bigint {
    return this.#firstLsn;
  }

  /** Newest cached LSN, or firstLsn - 1 when empty. */
  get lastLsn(): bigint {
    return this.#firstLsn + BigInt(this.size) - 1n;
  }

  /** Adds the next entry. A non-contiguous LSN restarts the cache at it. */
  add(entry: LogEntry, payloadBytes: number): void {
    assert(payloadBytes > 0, "cached entry has no size");
    if (this.size > 0 && entry.lsn !== this.lastLsn + 1n) this.clear();
    if (this.size === 0) this.#firstLsn = entry.lsn;
    this.#entries.push(entry);
    this.#sizes.push(payloadBytes);
    this.#bytes += payloadBytes;
    this.#evict();
    assert(this.#bytes <= this.cacheBytesMax, `cache holds ${this.#bytes} bytes, max ${this.cacheBytesMax}`);
  }

  /** The cached entry for `lsn`, or undefined when it is not cached. */
  get(lsn: bigint): LogEntry | undefined {
    if (this.size === 0 || lsn < this.#firstLsn || lsn > this.lastLsn) return undefined;
    const entry = this.#entries[this.#head + Number(lsn - this.#firstLsn)];
    assert(entry !== undefined && entry.lsn === lsn, `cache slot for LSN ${lsn} holds the wrong entry`);
    return entry;
  }

  /**
   * Up to `entriesMax` consecutive entries from `fromLsn` through `toLsn`
   * (inclusive), stopping before `bytesMax` would be exceeded but always
   * returning at least one when `fromLsn` is cached. Empty when `fromLsn` is not cached.
   */
  range(fromLsn: bigint, toLsn: bigint, bytesMax: number, entriesMax: number): LogEntry[] {
    assert(entriesMax >= 1, "entriesMax must be >= 1");
    const result: LogEntry[] = [];
    let bytes = 0;
    for (let lsn = fromLsn; lsn <= toLsn && result.length < entriesMax; lsn++) {
      const entry = this.get(lsn);
      if (entry === undefined) break;
      const size = this.#sizes[this.#head + Number(lsn - this.#firstLsn)]!;
      if (result.length > 0 && bytes + size > bytesMax) break;
      bytes += size;
      result.push(entry);
    }
    return result;
  }

  /** Drops cached entries after `lsn` (the WAL truncated its suffix). */
  truncateAfter(lsn: bigint): void {
    while (this.size > 0 && this.lastLsn > lsn) {
      this.#entries.pop();
      this.#bytes -= this.#sizes.pop()!;
    }
    assert(this.size === 0 || this.lastLsn <= lsn, "cache truncation left a later entry");
  }

  clear(): void {
    this.#entries = [];
    this.#sizes = [];
    this.#head = 0;
    this.#bytes = 0;
  }

  #evict(): void {
    while (this.#bytes > this.cacheBytesMax && this.size > 0) {
      this.#bytes -= this.#sizes[this.#head]!;
      // Drop the reference now: compaction only runs once half the array is
      // evicted, and until then the evicted entries kept up to another
      // cacheBytesMax of request buffers alive (a 64 MB cache held ~120 MB).
      this.#entries[this.#head] = undefined;
      this.#head++;
      this.#firstLsn++;
    }
    if (this.size === 0) {
      const nextLsn = this.#firstLsn;
      this.clear();
      this.#firstLsn = nextLsn;
    } else if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      // Compact so the arrays do not grow without bound.
      this.#entries = this.#entries.slice(this.#head);
      this.#sizes = this.#sizes.slice(this.#head);
      this.#head = 0;
    }
  }
}
