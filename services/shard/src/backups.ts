import fs from "node:fs";
import Database from "better-sqlite3";
import {
  assert,
  BACKUP_MANIFEST_FORMAT,
  backupTempFile,
  installBackup,
  listBackups,
  LpError,
  measureFile,
  pruneBackups,
  removeBackupTemps,
  resourceExhausted,
  Status,
  type BackupManifest,
  type BackupOnDisk,
  type Logger,
  type ShardMapConfig,
} from "@logplayer/common";
import type { ShardStore } from "./store";

/**
 * Pages copied per step of an online backup. Each step holds the event loop
 * (applies and reads wait) while it copies: 256 pages of 2 KB is 512 KB, a
 * few milliseconds. The copy of a 1 GB database then takes ~2,000 steps.
 */
export const DEFAULT_BACKUP_STEP_PAGES = 256;
/** Periodic backups kept in --backup-dir (older ones are deleted after each new one). */
export const DEFAULT_BACKUP_KEEP = 3;

export interface BackupOptions {
  /** Where periodic backups go, and where the newest backup is looked for; null = none. */
  readonly backupDir: string | null;
  /** Period of the automatic backups into backupDir; null = only on request (lpctl backup). */
  readonly intervalMs: number | null;
  readonly keep: number;
  readonly stepPages: number;
}

/**
 * The shard's backups: online copies of its database (for the Backup RPC and
 * the periodic ones into --backup-dir), one at a time, and the newest
 * backup's LSN, known across restarts from the manifests in --backup-dir.
 */
export class ShardBackups {
  readonly #store: ShardStore;
  readonly #options: BackupOptions;
  readonly #logger: Logger;
  #newest: BackupOnDisk | null;
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  #onNewest: (lsn: bigint) => void = () => undefined;

  constructor(store: ShardStore, options: BackupOptions, logger: Logger) {
    assert(Number.isInteger(options.stepPages) && options.stepPages >= 1, "backup step pages must be a positive integer");
    assert(Number.isInteger(options.keep) && options.keep >= 1, "backups kept must be a positive integer");
    this.#store = store;
    this.#options = options;
    this.#logger = logger;
    removeBackupTemps(store.dataDir);
    if (options.backupDir !== null) {
      fs.mkdirSync(options.backupDir, { recursive: true });
      removeBackupTemps(options.backupDir);
    }
    this.#newest = this.#scanNewest();
  }

  get backupDir(): string | null {
    return this.#options.backupDir;
  }

  /** The newest backup of this shard in --backup-dir, or null. */
  get newest(): BackupOnDisk | null {
    return this.#newest;
  }

  /** Called with the newest backup's LSN whenever a new one is installed (for the metric). */
  onNewest(observer: (lsn: bigint) => void): void {
    this.#onNewest = observer;
  }

  /**
   * Copies the running database to `tempFile` (which must not exist) in
   * bounded steps, then reads its identity and applied LSN from the copy
   * itself and measures it. Refused with RESOURCE_EXHAUSTED while another
   * copy runs: two would double the disk and the event-loop time.
   */
  async copyTo(tempFile: string): Promise<BackupManifest> {
    if (this.#running) throw resourceExhausted("a backup of this shard is already running; try again when it ends");
    this.#running = true;
    try {
      await this.#store.backupTo(tempFile, this.#options.stepPages);
      const { clusterId, shardId, shardMap, appliedLsn } = finishCopy(tempFile);
      assert(shardId === this.#store.identity.shardId, `the copy holds shard ${shardId}, this is shard ${this.#store.identity.shardId}`);
      const measured = await measureFile(tempFile);
      const createdAt = new Date().toISOString();
      return { format: BACKUP_MANIFEST_FORMAT, clusterId, shardId, shardMap, appliedLsn, ...measured, createdAt };
    } catch (err: unknown) {
      fs.rmSync(tempFile, { force: true });
      throw err;
    } finally {
      this.#running = false;
    }
  }

  /**
   * One backup into --backup-dir, then the oldest beyond --backup-keep are
   * deleted. Skipped when nothing was applied since the newest backup.
   */
  async backupToDir(): Promise<BackupOnDisk | null> {
    const dir = this.#options.backupDir;
    assert(dir !== null, "backupToDir needs a backup directory");
    if (this.#newest !== null && this.#newest.manifest.appliedLsn === this.#store.appliedLsn) return null;
    const temp = backupTempFile(dir, "backup");
    const manifest = await this.copyTo(temp);
    const installed = installBackup(dir, temp, manifest);
    this.#newest = installed;
    this.#onNewest(manifest.appliedLsn);
    const pruned = pruneBackups(dir, manifest.shardId, this.#options.keep);
    this.#logger.info(
      { file: installed.databaseFile, appliedLsn: manifest.appliedLsn.toString(), sizeBytes: manifest.sizeBytes, deleted: pruned.length },
      "backup written",
    );
    return installed;
  }

  /** Starts the periodic backups (when --backup-interval-ms and --backup-dir are given). */
  start(): void {
    const { intervalMs, backupDir } = this.#options;
    if (intervalMs === null || backupDir === null) return;
    this.#timer = setInterval(() => {
      if (this.#running || !this.#store.isOpen) return;
      this.backupToDir().catch((err: unknown) => {
        const error = LpError.from(err);
        // A failed backup loses nothing: the previous ones stay, and the next period tries again.
        this.#logger.warn({ code: Status[error.code], err: error.message, backupDir }, "periodic backup failed");
      });
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #scanNewest(): BackupOnDisk | null {
    const dir = this.#options.backupDir;
    if (dir === null) return null;
    const identity = this.#store.identity;
    const backups = listBackups(dir, identity.shardId).filter(
      (b) => identity.clusterId === "" || b.manifest.clusterId === identity.clusterId,
    );
    return backups[backups.length - 1] ?? null;
  }
}

/**
 * Makes a finished copy stand alone (journal_mode DELETE: no -wal file to
 * carry beside it) and reads what it holds. The shard turns WAL mode back on
 * when it opens a restored copy.
 */
function finishCopy(file: string): { clusterId: string; shardId: number; shardMap: ShardMapConfig; appliedLsn: bigint } {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma("journal_mode = DELETE");
    const read = db.prepare("SELECT value FROM meta WHERE name = ?").safeIntegers(true);
    const meta = (name: string): unknown => (read.get(name) as { value: unknown } | undefined)?.value;
    const shardId = meta("shard_id");
    const clusterId = meta("cluster_id");
    const shardMap = meta("shard_map");
    const appliedLsn = meta("applied_lsn");
    assert(typeof shardId === "bigint" && typeof clusterId === "string", "the copy has no shard id or cluster id");
    assert(typeof shardMap === "string" && typeof appliedLsn === "bigint", "the copy has no shard map or applied LSN");
    const map = JSON.parse(shardMap) as ShardMapConfig;
    return { clusterId, shardId: Number(shardId), shardMap: { shardCount: map.shardCount, hash: map.hash }, appliedLsn };
  } finally {
    db.close();
  }
}
