import { assert, silentLogger, type Logger } from "@logplayer/common";
import type { RaftDriver, WalLogWriter, WalStorage } from "@logplayer/logstore";
import { decodeLogEntry, MutationKind, type LogEntry } from "@logplayer/proto";
import type { Entry, NodeId } from "@logplayer/raft";
import type { SimDisk as SimSegmentDisk, Wal } from "@logplayer/wal";
import type { LogView, RecoveredEntry } from "./raft-checker";
import type { SimRaftStateFile } from "./sim-raft-state-file";
import type { SimSnapshot } from "./raft-snapshots";

// One replica of the Raft scenario (raft-cluster.ts) and how its log's entries are named.

/**
 * A proposal as the LogStore's leader builds one: a LogEntry at the index and
 * term it will land at, from client "sim" with the proposal id as its
 * sequence number (a retry is a new entry with the same id).
 */
export function proposalEntry(id: number, lsn: bigint, term: bigint): LogEntry {
  return {
    lsn,
    term,
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `p${id}`, value: Buffer.alloc(0), delta: 0n }] },
    commitTimeNs: 0n,
    clientId: "sim",
    clientSeq: BigInt(id),
  };
}

/** The proposal id of a normal entry's data (an encoded LogEntry). */
export function proposalIdOf(data: Uint8Array): number {
  return Number(decodeLogEntry(data).clientSeq);
}

export function entryKey(entry: Entry): string {
  return entry.kind === "normal" ? `p${proposalIdOf(entry.data)}` : entry.kind;
}

/** entryKey of the Raft entry a WAL record holds (a LogEntry without a transaction is a leader no-op). */
function recordKey(entry: LogEntry): string {
  return entry.txn === undefined ? "leader-noop" : `p${entry.clientSeq}`;
}

/** One for every node of every run: each pino instance registers an exit hook. */
let silentLoggerShared: Logger | undefined;

export function sharedSilentLogger(): Logger {
  silentLoggerShared ??= silentLogger();
  return silentLoggerShared;
}

/** Reads more than any simulated log holds: entries() in one call. */
const READ_BYTES_ALL = Number.MAX_SAFE_INTEGER;

/** One replica as the scenario sees it: its process state, its files, and its log (a LogView for the checker). */
export class SimRaftNode implements LogView {
  incarnation = 0;
  /** down: crashed; recovering: Wal.open running; up: the driver runs. */
  state: "down" | "recovering" | "up" = "down";
  /** The production driver (input queue, Ready handling) over this node's ports; undefined unless up. */
  raft: RaftDriver | undefined = undefined;
  /** This incarnation's Wal (the LogStore asks it whether its disk is full before taking an append). */
  wal: Wal | undefined = undefined;
  /** The production log and Storage ports over this incarnation's Wal; kept after a crash until the next recovery. */
  logWriter: WalLogWriter | undefined = undefined;
  storage: WalStorage | undefined = undefined;
  /** Every entry up to here was reported durable (or recovered) and not since truncated: a crash must keep it. */
  durableFloor = 0n;
  /** The LSN a truncation in progress cuts back to: the appends it waits for first are acknowledged, then dropped. */
  truncatingTo: bigint | undefined = undefined;
  /** The application's state: proposal ids applied, each at most once. */
  appliedIds = new Set<number>();
  stateIds: number[] = [];
  /** Role and term last seen by the checker, to trace changes. */
  lastRole = "";
  /**
   * Its disk was wiped and it has not yet decided how to start: like a
   * LogStore with an empty data directory, it asks its peers first.
   */
  blank = false;
  /** A paused process (GC pause, SIGSTOP) does nothing until then, then catches up. */
  pausedUntilMs = 0;
  /** The index of the last entry applied to stateIds (or the snapshot's, after one was loaded or installed). */
  appliedIndex = 0n;
  /** snapshot.bin (--snapshots): survives a crash, not a disk wipe. */
  snapshotFile: SimSnapshot | undefined = undefined;
  /** Snapshots received and not yet installed: memory only. */
  readonly receivedSnapshots = new Map<bigint, SimSnapshot>();

  constructor(
    readonly id: NodeId,
    /** The WAL's segment files and raft-state.json: what survives a crash (a disk wipe replaces both). */
    public disk: SimSegmentDisk,
    public stateFile: SimRaftStateFile,
  ) {}

  lastIndex(): bigint {
    return this.storage?.lastIndex() ?? 0n;
  }

  /** The first index the log still holds (1 until compacted). */
  firstIndex(): bigint {
    return this.storage?.firstIndex() ?? 1n;
  }

  /** The application state becomes a snapshot's (a restart from it, or an install). */
  restoreState(snapshot: SimSnapshot): void {
    this.stateIds = [...snapshot.stateIds];
    this.appliedIds = new Set(snapshot.stateIds);
    this.appliedIndex = snapshot.meta.index;
  }

  term(index: bigint): bigint | undefined {
    return index <= this.lastIndex() ? this.storage?.term(index) : undefined;
  }

  entryKey(index: bigint): string | undefined {
    if (index < this.firstIndex() || index > this.lastIndex()) return undefined;
    const entry = this.storage?.entries(index, index + 1n, READ_BYTES_ALL)[0];
    return entry === undefined ? undefined : entryKey(entry);
  }

  /** The whole log it still holds (from its first index), durable or not. */
  allEntries(): readonly Entry[] {
    const last = this.lastIndex();
    const first = this.firstIndex();
    return this.storage === undefined || last < first ? [] : this.storage.entries(first, last + 1n, READ_BYTES_ALL);
  }
}

/** Every record a freshly opened Wal holds, as the checker keys them. */
export function recoveredLog(wal: Wal): RecoveredEntry[] {
  const log: RecoveredEntry[] = [];
  const first = wal.firstLsn;
  while (first + BigInt(log.length) <= wal.lastLsn) {
    const from = first + BigInt(log.length);
    const read = wal.readRangeSync(from, wal.lastLsn, READ_BYTES_ALL, Number.MAX_SAFE_INTEGER);
    assert(read.length > 0, `sim: a WAL read from ${from} returned nothing`);
    for (const entry of read) log.push({ index: entry.lsn, term: entry.term, key: recordKey(entry) });
  }
  return log;
}
