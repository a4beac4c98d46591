import { assert } from "@logplayer/base";
import { entryBytes } from "./storage";
import type { Storage } from "./storage";
import type { Entry, SnapshotMeta } from "./types";

/**
 * The core's log: the entries in Storage plus an "unstable" tail the adapter
 * has not written yet (handed out by the next Ready). A truncation of written
 * entries is recorded as `truncateAfter` and reaches the adapter in the same
 * Ready, before the new entries.
 *
 * A follower that restores a leader's snapshot its log does not match holds
 * it here as `pendingSnapshot` until the adapter has installed it (the next
 * Ready hands it out, before any entry): meanwhile the log is that snapshot
 * plus the unstable entries after it, whatever storage still shows.
 */
export class RaftLog {
  /** Index of unstable[0]; everything below it is in storage (up to truncateAfter). */
  private unstableOffset: bigint;
  private unstable: Entry[] = [];
  /** Lowest pending truncation point for storage since the last Ready, if any. */
  private pendingTruncateAfter: bigint | undefined = undefined;
  private pendingSnapshot: SnapshotMeta | undefined = undefined;

  constructor(private readonly storage: Storage) {
    this.unstableOffset = storage.lastIndex() + 1n;
  }

  firstIndex(): bigint {
    return this.pendingSnapshot !== undefined ? this.pendingSnapshot.index + 1n : this.storage.firstIndex();
  }

  /** The newest snapshot this node holds (a pending one first): what a leader sends a follower behind firstIndex. */
  snapshot(): SnapshotMeta | undefined {
    return this.pendingSnapshot ?? this.storage.snapshot();
  }

  /** The log becomes `snapshot` and nothing after it, until the adapter installs it (unstableWrites). */
  restore(snapshot: SnapshotMeta): void {
    this.pendingSnapshot = snapshot;
    this.pendingTruncateAfter = undefined;
    this.unstableOffset = snapshot.index + 1n;
    this.unstable = [];
  }

  lastIndex(): bigint {
    return this.unstableOffset + BigInt(this.unstable.length) - 1n;
  }

  lastTerm(): bigint {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, "raft log: no term for lastIndex");
    return term;
  }

  /** Term at `index`, or undefined when the index is outside the log. */
  term(index: bigint): bigint | undefined {
    if (index >= this.unstableOffset) return this.unstable[Number(index - this.unstableOffset)]?.term;
    if (this.pendingSnapshot !== undefined) return index === this.pendingSnapshot.index ? this.pendingSnapshot.term : undefined;
    return this.storage.term(index);
  }

  matchTerm(index: bigint, term: bigint): boolean {
    return this.term(index) === term;
  }

  /** Raft's "at least as up-to-date" rule for granting a vote (§5.4.1). */
  isUpToDate(lastIndex: bigint, lastTerm: bigint): boolean {
    const ownTerm = this.lastTerm();
    return lastTerm > ownTerm || (lastTerm === ownTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Index of the first entry in `entries` whose term differs from ours at
   * that index, or that we do not have; 0 when all are already present.
   */
  findConflict(entries: readonly Entry[]): bigint {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0n;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`,
   * with its term. Every entry above it up to `index` has a term greater than
   * `term`, so none of them can match a log whose entry at `index` has `term`.
   */
  findConflictByTerm(index: bigint, term: bigint): { index: bigint; term: bigint } {
    let probe = index < this.lastIndex() ? index : this.lastIndex();
    for (;;) {
      const probeTerm = this.term(probe);
      if (probeTerm === undefined) return { index: probe, term: 0n };
      if (probeTerm <= term || probe === 0n) return { index: probe, term: probeTerm };
      probe -= 1n;
    }
  }

  /** Appends leader-made entries at the end of the log. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    assert(entries[0]?.index === this.lastIndex() + 1n, "raft log: append must continue the log");
    this.truncateAndAppend(entries);
  }

  /**
   * Writes `entries` (dense, first index >= firstIndex) over the log:
   * entries up to the first one that differs are kept, the rest of our log
   * after that point is dropped. `committed` must not be overwritten.
   */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    assert(first.index <= this.lastIndex() + 1n, "raft log: gap before appended entries");
    if (first.index === this.unstableOffset + BigInt(this.unstable.length)) {
      this.unstable.push(...entries);
    } else if (first.index <= this.unstableOffset) {
      // Written entries from first.index on are replaced: storage must drop them.
      const after = first.index - 1n;
      // Under a pending snapshot storage's log is replaced whole: nothing to truncate there.
      if (this.pendingSnapshot === undefined && after < this.storage.lastIndex()) {
        this.pendingTruncateAfter =
          this.pendingTruncateAfter === undefined || after < this.pendingTruncateAfter ? after : this.pendingTruncateAfter;
      }
      this.unstableOffset = first.index;
      this.unstable = [...entries];
    } else {
      this.unstable = this.unstable.slice(0, Number(first.index - this.unstableOffset));
      this.unstable.push(...entries);
    }
  }

  /** Entries in [lo, hi), at most bytesMax bytes but at least one when lo < hi. */
  slice(lo: bigint, hi: bigint, bytesMax: number): Entry[] {
    assert(lo >= this.firstIndex() && lo <= hi && hi <= this.lastIndex() + 1n, `raft log: slice [${lo}, ${hi}) out of range`);
    const result: Entry[] = [];
    let bytes = 0;
    if (lo < this.unstableOffset) {
      const storedHi = hi < this.unstableOffset ? hi : this.unstableOffset;
      for (const entry of this.storage.entries(lo, storedHi, bytesMax)) {
        bytes += entryBytes(entry);
        result.push(entry);
      }
      if (BigInt(result.length) < storedHi - lo) return result;
    }
    const unstableLo = lo > this.unstableOffset ? lo : this.unstableOffset;
    for (let index = unstableLo; index < hi; index++) {
      const entry = this.unstable[Number(index - this.unstableOffset)];
      assert(entry !== undefined, `raft log: missing unstable index ${index}`);
      bytes += entryBytes(entry);
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** What the adapter must write next: a snapshot to install, a truncation point, and the entries after them. */
  unstableWrites(): { snapshot: SnapshotMeta | undefined; truncateAfter: bigint | undefined; entries: readonly Entry[] } {
    return { snapshot: this.pendingSnapshot, truncateAfter: this.pendingTruncateAfter, entries: [...this.unstable] };
  }

  hasUnstableWrites(): boolean {
    return this.unstable.length > 0 || this.pendingTruncateAfter !== undefined || this.pendingSnapshot !== undefined;
  }

  hasPendingSnapshot(): boolean {
    return this.pendingSnapshot !== undefined;
  }

  /** The adapter wrote everything handed out by unstableWrites(): storage now shows it. */
  markWritten(): void {
    this.unstableOffset += BigInt(this.unstable.length);
    this.unstable = [];
    this.pendingTruncateAfter = undefined;
    if (this.pendingSnapshot !== undefined) {
      const installed = this.storage.snapshot();
      assert(
        installed !== undefined && installed.index === this.pendingSnapshot.index && this.storage.firstIndex() === installed.index + 1n,
        "raft log: storage does not show the installed snapshot",
      );
      this.pendingSnapshot = undefined;
    }
    assert(this.storage.lastIndex() === this.lastIndex(), "raft log: storage does not show the written entries");
  }
}
