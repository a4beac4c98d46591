import { failedPrecondition, type LpError } from "@logplayer/common";

/** The newest backup a refusal can point to. */
export interface NewestBackup {
  readonly file: string;
  readonly appliedLsn: bigint;
}

/**
 * Whether the log can still catch this shard up: it needs every entry from
 * appliedLsn + 1 on, so a log whose first stored LSN is above that was
 * trimmed past this shard, and delivering from it would skip entries (an
 * empty database would silently start from the middle of the log). Returns
 * the refusal (FAILED_PRECONDITION naming the backup to restore, or saying
 * none exists), or null when the log reaches. logFirstLsn 0 means the sender
 * does not know it (an older LogPlayer): nothing is refused then. Pure.
 */
export function checkLogReachesShard(
  shardId: number,
  appliedLsn: bigint,
  logFirstLsn: bigint,
  backupDir: string | null,
  newestBackup: NewestBackup | null,
): LpError | null {
  if (logFirstLsn === 0n || logFirstLsn <= appliedLsn + 1n) return null;
  const what =
    `shard ${shardId} has applied_lsn ${appliedLsn} but the log starts at LSN ${logFirstLsn} ` +
    `(entries ${appliedLsn + 1n}..${logFirstLsn - 1n} were trimmed): delivering would skip them, so this shard refuses to start from the log`;
  return failedPrecondition(`${what}; ${restoreAdvice(shardId, logFirstLsn, backupDir, newestBackup)}`);
}

function restoreAdvice(shardId: number, logFirstLsn: bigint, backupDir: string | null, newest: NewestBackup | null): string {
  if (backupDir === null)
    return `no --backup-dir is set: restore this shard from a backup (lpctl restore shard) taken at LSN >= ${logFirstLsn - 1n}`;
  if (newest === null)
    return `no backup of shard ${shardId} exists in --backup-dir ${backupDir}: restore one taken elsewhere (lpctl restore shard)`;
  const usable = newest.appliedLsn + 1n >= logFirstLsn;
  const restore = `lpctl restore shard ${shardId} --from ${newest.file}`;
  return usable
    ? `stop the shard and restore its newest backup ${newest.file} (LSN ${newest.appliedLsn}): ${restore}`
    : `its newest backup ${newest.file} (LSN ${newest.appliedLsn}) is trimmed past too; restore one taken at LSN >= ${logFirstLsn - 1n}`;
}
