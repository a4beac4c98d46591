import { assert } from "@logplayer/base";
import { compacted } from "./errors";
import { EMPTY_HARD_STATE } from "./types";
import type { Entry, HardState } from "./types";

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
 * firstIndex > 1 once a prefix has been trimmed; an empty log has
 * lastIndex = firstIndex - 1.
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
   * The term of the entry at `index`, for index in [firstIndex - 1, lastIndex]
   * (the term just before the first entry is kept so the log-matching check
   * works at the boundary; term(0) is 0). Outside that range: undefined.
   */
  term(index: bigint): bigint | undefined;
  firstIndex(): bigint;
  lastIndex(): bigint;
}

/** Size of an entry as the byte limits count it: data plus a fixed header. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + ENTRY_HEADER_BYTES;
}

/** Index, term and kind as a WAL frame would store them. */
export const ENTRY_HEADER_BYTES = 24;

/**
 * Storage in memory, for tests and the simulator. It implements the write
 * side too (truncateAfter, append, setHardState), exactly as an adapter
 * processing Ready would. No compaction: firstIndex is always 1.
 */
export class MemoryStorage implements Storage {
  private readonly log: Entry[] = [];
  private state: HardState;

  constructor(hardState: HardState = EMPTY_HARD_STATE, entries: readonly Entry[] = []) {
    this.state = hardState;
    this.append(entries);
  }

  hardState(): HardState {
    return this.state;
  }

  setHardState(state: HardState): void {
    this.state = state;
  }

  firstIndex(): bigint {
    return 1n;
  }

  lastIndex(): bigint {
    return BigInt(this.log.length);
  }

  term(index: bigint): bigint | undefined {
    if (index === 0n) return 0n;
    if (index < 0n || index > this.lastIndex()) return undefined;
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
    assert(index >= 0n, "raft storage: truncateAfter below 0");
    if (index < this.lastIndex()) this.log.length = Number(index);
  }

  /** Appends entries that must continue the log densely (truncate first to overwrite). */
  append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.lastIndex() + 1n, `raft storage: append of index ${entry.index} after lastIndex ${this.lastIndex()}`);
      this.log.push(entry);
    }
  }

  /** All entries, for checkers and tests. */
  allEntries(): readonly Entry[] {
    return this.log;
  }

  private at(index: bigint): Entry {
    const entry = this.log[Number(index) - 1];
    assert(entry !== undefined && entry.index === index, `raft storage: missing index ${index}`);
    return entry;
  }
}
