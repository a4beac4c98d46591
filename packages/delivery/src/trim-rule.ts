/**
 * The storage lifecycle's trim rule, pure (no I/O, time as an input): which
 * log entries the LogStore may delete. One place for the shard's side (what
 * a shard can be restored to), the LogPlayer's (the minimum over every
 * shard), the LogStore's (checking a report, choosing whole segments) and
 * the simulator's, which runs this same code (docs/storage-lifecycle.md,
 * "Trimming"):
 *
 * - A shard's restorable LSN is its durable applied LSN, or, with backups on,
 *   the lower of that and its newest backup's LSN (`restorableLsn`).
 * - The trim point T is the lowest restorable LSN over every shard
 *   (`TrimPointGatherer`); a shard never heard from pins it. Each shard can be
 *   restored to an LSN >= T without the log, so it needs at most the entries
 *   above T.
 * - A report is checked before it counts (`judgeTrimReport`): above the
 *   replica's commit LSN it is refused (no shard can have applied what is not
 *   committed), for another shard count it is refused, and below the current
 *   point it changes nothing: the point never moves back.
 * - Raft may hold more back for a peer that is only a little behind
 *   (`raftTrimFloor`; `trimBound` combines it with T).
 * - Only whole segments go, oldest first, each only when every entry in it is
 *   at or below the bound and at or below the commit LSN, when the retention
 *   policy lets it go, and never the segment being written (`trimThroughLsn`).
 */

/**
 * The LSN a shard can be restored to without the log: every entry at or
 * below it survives a power cut of its machine (its durable applied LSN) or
 * is in a backup of the shard (the newest backup's LSN).
 *
 * `newestBackupLsn` is undefined when backups are off. With backups on, the
 * backup is the restore path for a lost database, so its LSN bounds the point
 * even when the live file is durable further (trimming past the backup would
 * leave a lost database nothing to come back from); and the durable LSN still
 * bounds it when a backup is newer than the last checkpoint, so that a power
 * cut is still served from the log rather than forcing a restore.
 */
export function restorableLsn(durableLsn: bigint, newestBackupLsn: bigint | undefined): bigint {
  if (newestBackupLsn === undefined) return durableLsn;
  return newestBackupLsn < durableLsn ? newestBackupLsn : durableLsn;
}

/**
 * The trim point as a LogPlayer gathers it: the lowest restorable LSN over
 * every shard of the shard map. Undefined while any shard has never reported:
 * a shard nobody knows anything about pins the point at 0.
 */
export class TrimPointGatherer {
  readonly #restorable: (bigint | undefined)[];

  constructor(shardCount: number) {
    this.#restorable = Array.from({ length: shardCount }, () => undefined);
  }

  /** The shard's latest restorable LSN (it may go down: a shard restored from an older backup). */
  update(shardId: number, restorableLsn: bigint): void {
    if (shardId < 0 || shardId >= this.#restorable.length) return;
    this.#restorable[shardId] = restorableLsn;
  }

  get trimPoint(): bigint | undefined {
    let low: bigint | undefined;
    for (const lsn of this.#restorable) {
      if (lsn === undefined) return undefined;
      if (low === undefined || lsn < low) low = lsn;
    }
    return low;
  }
}

/** One WAL segment as the trimmer sees it, oldest first in a list. */
export interface SegmentSummary {
  readonly firstLsn: bigint;
  /** Its highest LSN; for the last (active) segment, the WAL's last LSN. */
  readonly lastLsn: bigint;
  readonly bytes: number;
  /** When its newest entry was written (the file's modification time), epoch ms. */
  readonly lastWriteMs: number;
}

/** --retain-bytes / --retain-age: keep at least this much for late readers (0 = no extra). */
export interface RetentionPolicy {
  /** WAL bytes to keep whatever the trim point allows. */
  readonly retainBytes: number;
  /** Keep every segment whose newest entry is younger than this. */
  readonly retainAgeMs: number;
}

export const NO_RETENTION: RetentionPolicy = { retainBytes: 0, retainAgeMs: 0 };

export type TrimReportVerdict =
  /** The point rises to `trimPoint`: persist it, then trim. */
  | { readonly kind: "raise"; readonly trimPoint: bigint }
  /** Not above the current point: nothing changes. */
  | { readonly kind: "unchanged" }
  /** Refused with INVALID_ARGUMENT for `reason`. */
  | { readonly kind: "refused"; readonly reason: string };

export interface TrimReport {
  readonly trimPoint: bigint;
  readonly shardCount: number;
}

/** Whether a reported trim point counts (see the module comment). */
export function judgeTrimReport(report: TrimReport, current: bigint, commitLsn: bigint, shardCount: number): TrimReportVerdict {
  if (report.shardCount !== shardCount) {
    return { kind: "refused", reason: `trim point reported over ${report.shardCount} shards, but the cluster has ${shardCount}` };
  }
  if (report.trimPoint > commitLsn) {
    return { kind: "refused", reason: `trim point ${report.trimPoint} is above this replica's commit LSN ${commitLsn}` };
  }
  if (report.trimPoint <= current) return { kind: "unchanged" };
  return { kind: "raise", trimPoint: report.trimPoint };
}

/**
 * The highest LSN the WAL may delete through: the last LSN of the longest
 * prefix of `segments` (oldest first) that may all go, or 0 when none may.
 * Every entry at or below the answer lies in a deletable segment; nothing above
 * it is touched.
 */
export function trimThroughLsn(
  segments: readonly SegmentSummary[],
  trimPoint: bigint,
  commitLsn: bigint,
  retention: RetentionPolicy,
  nowMs: number,
): bigint {
  const safeThrough = trimPoint < commitLsn ? trimPoint : commitLsn;
  let bytesAfter = segments.reduce((sum, segment) => sum + segment.bytes, 0);
  let through = 0n;
  // The last segment is the one being written: never deleted.
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]!;
    bytesAfter -= segment.bytes;
    if (segment.lastLsn > safeThrough) break;
    if (bytesAfter < retention.retainBytes) break;
    if (nowMs - segment.lastWriteMs < retention.retainAgeMs) break;
    through = segment.lastLsn;
  }
  return through;
}

/** What a trim pass may delete through before segments are considered: the lower of the trim point and the Raft floor. */
export function trimBound(trimPoint: bigint, raftFloor: bigint): bigint {
  return raftFloor < trimPoint ? raftFloor : trimPoint;
}

/** Raft's view, as ReplicatedLog.status() gives it. */
export interface RaftView {
  readonly role: string;
  /** Every replica with the highest index known stored on it (the leader's knowledge; 0 when unknown). */
  readonly replicas: readonly { readonly matchLsn: bigint }[];
}

/** No Raft bound: a single voter has no peer to send old entries to. */
export const NO_RAFT_FLOOR = 2n ** 64n - 1n;

/** Default of --trim-catch-up-entries: about 10 s of the benchmark's 1,000 txn/s. */
export const RAFT_CATCH_UP_ENTRIES_DEFAULT = 10_000;

/**
 * The highest LSN Raft lets this replica trim through. A peer behind the
 * first stored index is sent a snapshot (InstallSnapshot) and then the log,
 * so nothing has to be kept for it; but a snapshot costs a whole transfer, so
 * a leader keeps the entries of every peer that is only a little behind: the
 * lowest match index among the replicas within `catchUpEntries` of the
 * highest. A peer further behind, or whose progress the leader does not know
 * yet (0), gets a snapshot instead. A follower has no bound: should it lead,
 * it sends snapshots too.
 */
export function raftTrimFloor(view: RaftView, singleVoter: boolean, catchUpEntries: number): bigint {
  if (singleVoter || view.role !== "leader" || view.replicas.length === 0) return NO_RAFT_FLOOR;
  const highest = view.replicas.reduce((high, replica) => (replica.matchLsn > high ? replica.matchLsn : high), 0n);
  const window = BigInt(catchUpEntries);
  return view.replicas
    .filter((replica) => replica.matchLsn > 0n && replica.matchLsn + window >= highest)
    .reduce((low, replica) => (replica.matchLsn < low ? replica.matchLsn : low), NO_RAFT_FLOOR);
}
