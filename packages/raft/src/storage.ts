import { assert } from "@logplayer/base";
import { compacted } from "./errors";
import { EMPTY_HARD_STATE } from "./types";
import type { Entry, HardState, SnapshotMeta } from "./types";

/**
 * The Raft core's read-only view of stable storage (the WAL), after etcd's
 * Storage. The core never writes through this port: writes leave the core as
 * a Ready, the adapter performs them, and the results become visible here.
 *
 * Everything the adapter has WRITTEN is visible, fsynced or not; durability is
 * reported separately through RaftNode.persisted(). At construction, though,
 * storage must hold only durable state (what survived the last crash).
 *
 * Indexes are dense: the log holds every index in [firstIndex, lastIndex].
 * firstIndex > 1 once a prefix has been compacted; an empty log has
 * lastIndex = firstIndex - 1.
 *
 * Compaction (the adapter's, never the core's): once the application has
 * applied index A, the adapter may take a snapshot at some S <= A, make it
 * durable, and only then drop entries <= S from the log. So whenever
 * firstIndex > 1 there is a snapshot, at an index >= firstIndex - 1, and the
 * core sends it to a follower that needs an entry it no longer has.
 */
export interface Storage {
  /** The last persisted term, vote and commit. */
  hardState(): HardState;
  /**
   * Entries with index in [lo, hi), at most `bytesMax` bytes of entry data
   * but always at least one entry when lo < hi. The returned array and its
   * entries are owned by storage: callers must not mutate them.
   * Requires firstIndex <= lo <= hi <= lastIndex + 1; below firstIndex it
   * throws a RaftError "compacted" (errors.ts), above lastIndex is a bug.
   */
  entries(lo: bigint, hi: bigint, bytesMax: number): readonly Entry[];
  /**
   * The term of the entry at `index`, for index in [firstIndex, lastIndex],
   * for the snapshot's index (its term), and 0 for index 0 while firstIndex
   * is 1. Otherwise undefined (compacted, or beyond the log).
   */
  term(index: bigint): bigint | undefined;
  firstIndex(): bigint;
  lastIndex(): bigint;
  /** The newest durable snapshot's metadata; undefined when there is none. */
  snapshot(): SnapshotMeta | undefined;
  /**
   * Optional: the "config" entries with index in [lo, hi) (within the log), in
   * order. The core reads them once, at construction, to recompute the
   * membership from the snapshot's; without this method it scans [lo, hi)
   * through entries(), which reads the whole log.
   */
  configEntries?(lo: bigint, hi: bigint): readonly Entry[];
}

/** Size of an entry as the byte limits count it: data plus a fixed header. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + ENTRY_HEADER_BYTES;
}

/** Index, term and kind as a WAL frame would store them. */
export const ENTRY_HEADER_BYTES = 24;

/**
 * Storage in memory, for tests and the simulator. It implements the write
 * side too (truncateAfter, append, setHardState, compact, installSnapshot),
 * exactly as an adapter processing Ready would.
 */
export class MemoryStorage implements Storage {
  private log: Entry[] = [];
  /** Index of log[0]. */
  private first = 1n;
  private state: HardState;
  private latestSnapshot: SnapshotMeta | undefined;

  constructor(hardState: HardState = EMPTY_HARD_STATE, entries: readonly Entry[] = [], snapshot?: SnapshotMeta) {
    this.state = hardState;
    this.latestSnapshot = snapshot;
    const firstEntry = entries[0];
    if (firstEntry !== undefined) this.first = firstEntry.index;
    else if (snapshot !== undefined) this.first = snapshot.index + 1n;
    if (snapshot !== undefined) assert(this.first <= snapshot.index + 1n, "raft storage: a gap between snapshot and log");
    this.append(entries);
  }

  snapshot(): SnapshotMeta | undefined {
    return this.latestSnapshot;
  }

  /**
   * Records a snapshot at `meta.index` (which must be in the log, with that
   * term) and drops the entries up to `compactTo` (<= meta.index), as an
   * adapter does once the snapshot is durable.
   */
  compact(meta: SnapshotMeta, compactTo: bigint = meta.index): void {
    assert(this.term(meta.index) === meta.term, `raft storage: snapshot ${meta.term}/${meta.index} does not match the log`);
    assert(compactTo <= meta.index, "raft storage: compaction past the snapshot");
    this.latestSnapshot = meta;
    if (compactTo >= this.first) {
      this.log = this.log.slice(Number(compactTo - this.first + 1n));
      this.first = compactTo + 1n;
    }
  }

  /** Replaces the whole log with `meta` (a follower installing a leader's snapshot): the log continues after it. */
  installSnapshot(meta: SnapshotMeta): void {
    this.latestSnapshot = meta;
    this.log = [];
    this.first = meta.index + 1n;
  }

  hardState(): HardState {
    return this.state;
  }

  setHardState(state: HardState): void {
    this.state = state;
  }

  firstIndex(): bigint {
    return this.first;
  }

  lastIndex(): bigint {
    return this.first + BigInt(this.log.length) - 1n;
  }

  term(index: bigint): bigint | undefined {
    if (this.latestSnapshot !== undefined && index === this.latestSnapshot.index && index < this.first) return this.latestSnapshot.term;
    if (index === 0n) return this.first === 1n ? 0n : undefined;
    if (index < this.first || index > this.lastIndex()) return undefined;
    return this.at(index).term;
  }

  entries(lo: bigint, hi: bigint, bytesMax: number): readonly Entry[] {
    if (lo < this.firstIndex()) throw compacted(`raft storage: index ${lo} is compacted`);
    assert(lo <= hi && hi <= this.lastIndex() + 1n, `raft storage: entries [${lo}, ${hi}) out of range`);
    const result: Entry[] = [];
    let bytes = 0;
    for (let index = lo; index < hi; index++) {
      const entry = this.at(index);
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** Drops every entry above `index` (a conflicting uncommitted suffix). */
  truncateAfter(index: bigint): void {
    assert(index >= this.first - 1n, `raft storage: truncateAfter ${index} below the first index ${this.first}`);
    if (index < this.lastIndex()) this.log.length = Number(index - this.first + 1n);
  }

  /** Appends entries that must continue the log densely (truncate first to overwrite). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1n, `raft storage: append of index ${entry.index} after lastIndex ${this.lastIndex()}`);
      this.log.push(entry);
    }
  }

  /** All entries still in the log (from firstIndex), for checkers and tests. */
  allEntries(): readonly Entry[] {
    return this.log;
  }

  private at(index: bigint): Entry {
    const entry = this.log[Number(index - this.first)];
    assert(entry !== undefined && entry.index === index, `raft storage: missing index ${index}`);
    return entry;
  }
}
