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
}

/**
 * One line: commit LSN, then each shard's applied LSN and lag (or its error),
 * then any process that died unexpectedly and which log to read. Cut to
 * `widthMax` so an in-place (\r) refresh never wraps. Pure.
 */
export function formatProgressLine(snapshot: ProgressSnapshot, widthMax: number): string {
  const parts: string[] = [];
  const { status } = snapshot;
  if (status === undefined) {
    parts.push(`logstore unreachable: ${firstLine(snapshot.statusError ?? "no status")}`);
  } else {
    parts.push(`commit ${status.logStore.commitLsn}`);
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
