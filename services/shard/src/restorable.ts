import { restorableLsn } from "@logplayer/delivery";

/** What the restorable LSN needs to know of the shard's backups (ShardBackups). */
export interface BackupsView {
  /** --backup-dir, or null when backups are off. */
  readonly backupDir: string | null;
  readonly newest: { readonly manifest: { readonly appliedLsn: bigint } } | null;
}

/**
 * This shard's restorable LSN now, for Status and the metric. Backups are on
 * when the shard has a --backup-dir; until its first backup lands there, a
 * lost database has nothing to come back from but the whole log, so the
 * point is 0.
 */
export function currentRestorableLsn(store: { readonly durableLsn: bigint }, backups: BackupsView): bigint {
  if (backups.backupDir === null) return restorableLsn(store.durableLsn, undefined);
  return restorableLsn(store.durableLsn, backups.newest?.manifest.appliedLsn ?? 0n);
}

/** What `PRAGMA wal_checkpoint(PASSIVE)` answers (one row). */
export interface CheckpointResult {
  /** 1 when the checkpoint could not take its locks. */
  readonly busy: number;
  /** Frames in the WAL file. */
  readonly log: number;
  /** Frames copied into the database file. */
  readonly checkpointed: number;
}

/**
 * Whether a passive checkpoint made every commit before it durable (WAL mode,
 * synchronous=NORMAL). SQLite syncs the WAL during a checkpoint only when it
 * has frames to copy; a reader holding an old snapshot in another connection
 * can leave frames uncopied and the WAL unsynced. The shard holds its file in
 * EXCLUSIVE locking mode, so no such reader exists today; this keeps the claim
 * true should that change. Only a checkpoint that copied every frame (the WAL
 * synced, then the database file synced) proves the applied LSN read before it
 * durable.
 */
export function checkpointMadeDurable(result: CheckpointResult | undefined): boolean {
  return result !== undefined && result.busy === 0 && result.log >= 0 && result.checkpointed === result.log;
}
