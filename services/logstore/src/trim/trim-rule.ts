/**
 * When the LogStore may give up WAL entries: pure decisions, no I/O, time as
 * an input. The rule (docs/storage-lifecycle.md, "Trimming"):
 *
 * - The trim point T is the lowest restorable LSN over every shard, as a
 *   LogPlayer reported it. Each shard can be restored to an LSN >= T without
 *   the log, so it needs at most the entries above T.
 * - A report is checked before it counts: above the replica's commit LSN it is
 *   refused (no shard can have applied what is not committed), for another
 *   shard count it is refused, and below the current point it changes nothing:
 *   the point never moves back.
 * - Only whole segments go, oldest first, each only when every entry in it is
 *   at or below T and at or below the commit LSN, when the retention policy
 *   lets it go, and never the segment being written.
 */

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
