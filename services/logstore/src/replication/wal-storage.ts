import { assert } from "@logplayer/common";
import { decodeLogEntry, type LogEntry } from "@logplayer/proto";
import { compacted, decodeConfigChange, type Entry, type HardState, type SnapshotMeta, type Storage } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import type { Wal } from "@logplayer/wal";

/** A Raft entry as the WAL stores it: a LogEntry without a transaction is a leader no-op. */
export function toRaftEntry(entry: LogEntry): Entry {
  if (entry.configChange !== undefined) return { index: entry.lsn, term: entry.term, kind: "config", data: entry.configChange };
  const noop = entry.txn === undefined;
  return {
    index: entry.lsn,
    term: entry.term,
    kind: noop ? "leader-noop" : "normal",
    data: noop ? new Uint8Array(0) : encodeEntryPayload(entry),
  };
}

/**
 * Why `entry`, off the network, is not one a correct leader could send (a
 * normal entry's payload must be the LogEntry at its index and term, with a
 * transaction; a no-op carries nothing), or null. The driver refuses an
 * append holding one before the core sees it: toLogEntry asserts the same
 * once the core has taken the entry, when it is too late to drop it.
 */
export function entryPayloadProblem(entry: Entry): string | null {
  if (entry.kind === "leader-noop")
    return entry.data.length === 0 ? null : `leader no-op ${entry.index} carries ${entry.data.length} bytes`;
  if (entry.kind === "config") {
    const change = decodeConfigChange(entry.data);
    return typeof change === "string" ? `config entry ${entry.index}: ${change}` : null;
  }
  let decoded: LogEntry;
  try {
    decoded = decodeLogEntry(entry.data);
  } catch (error: unknown) {
    return `entry ${entry.index} is not a LogEntry (${error instanceof Error ? error.message : String(error)})`;
  }
  if (decoded.lsn !== entry.index || decoded.term !== entry.term) {
    return `entry ${entry.index}/${entry.term} carries LogEntry ${decoded.lsn}/${decoded.term}`;
  }
  return decoded.txn === undefined ? `entry ${entry.index} is normal but has no transaction` : null;
}

/** The WAL record for a Raft entry, checked against the entry's index and term. */
export function toLogEntry(entry: Entry): { entry: LogEntry; payload: Uint8Array } {
  if (entry.kind === "leader-noop") {
    const noop: LogEntry = {
      lsn: entry.index,
      term: entry.term,
      txn: undefined,
      commitTimeNs: 0n,
      clientId: "",
      clientSeq: 0n,
    };
    return { entry: noop, payload: encodeEntryPayload(noop) };
  }
  if (entry.kind === "config") {
    const config: LogEntry = {
      lsn: entry.index,
      term: entry.term,
      txn: undefined,
      commitTimeNs: 0n,
      clientId: "",
      clientSeq: 0n,
      configChange: Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength),
    };
    return { entry: config, payload: encodeEntryPayload(config) };
  }
  const decoded = decodeLogEntry(entry.data);
  assert(
    decoded.lsn === entry.index && decoded.term === entry.term,
    `raft entry ${entry.index}/${entry.term} carries LogEntry ${decoded.lsn}/${decoded.term}`,
  );
  assert(decoded.txn !== undefined, `raft entry ${entry.index} is normal but has no transaction`);
  return { entry: decoded, payload: entry.data };
}

/**
 * The Raft core's Storage port over the WAL. Reads are synchronous: recent
 * entries (and every entry not yet durable) come from `recent`, older ones
 * from the WAL's cache or a blocking segment read. The hard state lives in
 * raft-state.json; this only mirrors what was written.
 */
export class WalStorage implements Storage {
  readonly #wal: Wal;
  readonly #recentEntriesMax: number;
  /** Insertion-ordered by index; holds every entry above the WAL's durable LSN. */
  readonly #recent = new Map<bigint, Entry>();
  #hardState: HardState;
  #snapshot: SnapshotMeta | undefined = undefined;

  constructor(wal: Wal, hardState: HardState, recentEntriesMax: number) {
    assert(recentEntriesMax >= 1, "recentEntriesMax must be positive");
    this.#wal = wal;
    this.#hardState = hardState;
    this.#recentEntriesMax = recentEntriesMax;
  }

  hardState(): HardState {
    return this.#hardState;
  }

  setHardState(state: HardState): void {
    this.#hardState = state;
  }

  firstIndex(): bigint {
    return this.#wal.firstLsn;
  }

  lastIndex(): bigint {
    return this.#wal.lastLsn;
  }

  term(index: bigint): bigint | undefined {
    const term = this.#wal.termAt(index);
    if (term !== undefined) return term;
    return this.#snapshot !== undefined && index === this.#snapshot.index ? this.#snapshot.term : undefined;
  }

  /** The newest durable snapshot (snapshot.bin): what a follower behind the WAL's first LSN is sent. */
  snapshot(): SnapshotMeta | undefined {
    return this.#snapshot;
  }

  /** snapshot.bin now durably holds `snapshot`. */
  setSnapshot(snapshot: SnapshotMeta): void {
    this.#snapshot = snapshot;
  }

  /**
   * Entries [lo, hi), stopping before `bytesMax` (but at least one). A run
   * not in `recent` is read from the WAL once, and every entry of that read is
   * used: one cache range or one segment read per run, not one per entry.
   */
  entries(lo: bigint, hi: bigint, bytesMax: number): readonly Entry[] {
    if (lo < this.firstIndex()) throw compacted(`raft storage: index ${lo} is compacted`);
    assert(lo <= hi && hi <= this.lastIndex() + 1n, `raft storage: entries [${lo}, ${hi}) out of range`);
    const result: Entry[] = [];
    let bytes = 0;
    /** The last WAL read; loaded[loadedUsed], when there, is the entry at `index`. */
    let loaded: LogEntry[] = [];
    let loadedUsed = 0;
    for (let index = lo; index < hi; index++) {
      let entry = this.#recent.get(index);
      if (entry === undefined) {
        if (loadedUsed === loaded.length) {
          loaded = this.#wal.readRangeSync(index, hi - 1n, Math.max(bytesMax - bytes, 1), Number(hi - index));
          loadedUsed = 0;
        }
        const stored = loaded[loadedUsed++];
        assert(stored !== undefined && stored.lsn === index, `raft storage: WAL has no readable entry ${index}`);
        entry = toRaftEntry(stored);
      } else if (loaded[loadedUsed]?.lsn === index) {
        loadedUsed++;
      }
      bytes += entry.data.length + 24;
      if (result.length > 0 && bytes > bytesMax) break;
      result.push(entry);
    }
    return result;
  }

  /** Keeps an entry just handed to the WAL; evicts old durable ones past the bound. */
  remember(entry: Entry): void {
    this.#recent.set(entry.index, entry);
    const durableLsn = this.#wal.durableLsn;
    for (const [index] of this.#recent) {
      if (this.#recent.size <= this.#recentEntriesMax || index > durableLsn) break;
      this.#recent.delete(index);
    }
  }

  /** Forgets every entry kept (a snapshot replaced the log). */
  forgetAll(): void {
    this.#recent.clear();
  }

  /** Forgets entries above `index` (the WAL drops them too). */
  truncateAfter(index: bigint): void {
    for (const key of [...this.#recent.keys()]) if (key > index) this.#recent.delete(key);
  }
}
