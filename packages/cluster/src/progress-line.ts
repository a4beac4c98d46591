import type { ClusterStatus } from "@logplayer/client";

/** A process that died on its own, for the progress line. */
export interface DeadProcess {
  name: string;
  exit: string;
  logFile: string;
}

export interface ProgressSnapshot {
  /** Undefined when the LogStore could not be read; `statusError` says why. */
  status: ClusterStatus | undefined;
  statusError: string | undefined;
  dead: readonly DeadProcess[];
  /** Committed entries per second since the previous snapshot (undefined on the first). */
  commitRate?: number;
}

/** Committed entries per second between two readings of the commit LSN; undefined without a usable pair. */
export function commitRate(
  previous: { commitLsn: bigint; atMs: number } | undefined,
  current: { commitLsn: bigint; atMs: number },
): number | undefined {
  if (previous === undefined || current.atMs <= previous.atMs || current.commitLsn < previous.commitLsn) return undefined;
  return (Number(current.commitLsn - previous.commitLsn) * 1000) / (current.atMs - previous.atMs);
}

/**
 * One line: the leader, how many replicas answer (naming those that do not),
 * commit LSN and rate, then each shard's applied LSN and lag (or its error),
 * then any process that died unexpectedly and which log to read. Cut to
 * `widthMax` so an in-place (\r) refresh never wraps. Pure.
 */
export function formatProgressLine(snapshot: ProgressSnapshot, widthMax: number): string {
  const parts: string[] = [];
  const { status } = snapshot;
  if (status === undefined) {
    parts.push(`logstore unreachable: ${firstLine(snapshot.statusError ?? "no status")}`);
  } else {
    const leader = status.logStore.leaderAddress;
    parts.push(leader === undefined || leader === "" ? "no leader" : `leader ${leader}`);
    const members = status.members ?? [];
    if (members.length > 1) {
      const down = members.filter((member) => member.self === undefined).map((member) => `replica ${member.replicaId}`);
      parts.push(`replicas ${members.length - down.length}/${members.length} up${down.length > 0 ? ` (${down.join(", ")} down)` : ""}`);
    }
    const rate = snapshot.commitRate === undefined ? "" : ` (${Math.round(snapshot.commitRate)}/s)`;
    parts.push(`commit ${status.logStore.commitLsn}${rate}`);
    for (const shard of status.shards) {
      if (shard.status === undefined) {
        parts.push(`shard-${shard.shardId} down (${shard.error?.codeName ?? "no answer"})`);
      } else {
        // Lag is undefined while the answering replica does not know the commit LSN yet (see ShardStatusReport.lag).
        parts.push(`shard-${shard.shardId} ${shard.status.appliedLsn} lag ${shard.lag ?? "?"}`);
      }
    }
  }
  for (const dead of snapshot.dead) {
    parts.push(`!! ${dead.name} died (${dead.exit}), see ${dead.logFile}`);
  }
  return truncate(parts.join(" | "), widthMax);
}

function firstLine(text: string): string {
  return text.split("\n", 1)[0] ?? "";
}

function truncate(line: string, widthMax: number): string {
  if (widthMax < 2 || line.length <= widthMax) return line;
  return `${line.slice(0, widthMax - 1)}…`;
}
