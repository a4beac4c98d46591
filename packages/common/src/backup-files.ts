// Shard backups on disk: the file names, the manifest beside each file, and
// the checks a restore makes. Written by the shard (periodic backups) and by
// lpctl (`backup shard`, `restore shard`), read by both.
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { ShardMapConfig } from "@logplayer/base";
import { failedPrecondition, invalidArgument, type LpError } from "./errors";

/** A shard's database inside its data directory (the shard's DATABASE_FILE_NAME): what a restore installs. */
export const SHARD_DATABASE_FILE_NAME = "shard.sqlite";

/** Version of the manifest's JSON shape; a manifest of another version is refused. */
export const BACKUP_MANIFEST_FORMAT = 1;

/**
 * What a backup file holds, written as JSON beside it (`shard-N-lsn-L.json`
 * for `shard-N-lsn-L.sqlite`). `appliedLsn` is read from the copied database
 * itself, so the copy and its LSN cannot disagree.
 */
export interface BackupManifest {
  readonly format: typeof BACKUP_MANIFEST_FORMAT;
  readonly clusterId: string;
  readonly shardId: number;
  readonly shardMap: ShardMapConfig;
  readonly appliedLsn: bigint;
  readonly sizeBytes: number;
  /** SHA-256 of the database file, lowercase hex. */
  readonly sha256: string;
  /** ISO 8601, UTC: when the copy finished. */
  readonly createdAt: string;
}

/** A backup found in a directory: its manifest and the database file it describes. */
export interface BackupOnDisk {
  readonly manifest: BackupManifest;
  readonly databaseFile: string;
  readonly manifestFile: string;
}

const BACKUP_NAME = /^shard-(\d+)-lsn-(\d+)\.json$/;

export function backupDatabaseFileName(shardId: number, appliedLsn: bigint): string {
  return `shard-${shardId}-lsn-${appliedLsn}.sqlite`;
}

/** The manifest beside a backup database file (`.sqlite` → `.json`). */
export function manifestFileFor(databaseFile: string): string {
  return `${databaseFile.replace(/\.sqlite$/, "")}.json`;
}

export function manifestToJson(manifest: BackupManifest): string {
  return `${JSON.stringify({ ...manifest, appliedLsn: manifest.appliedLsn.toString() }, null, 2)}\n`;
}

/** Parses a manifest's JSON; a malformed one fails with INVALID_ARGUMENT naming what is wrong. */
export function parseBackupManifest(json: string, source: string): BackupManifest {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err: unknown) {
    throw invalidArgument(`backup manifest ${source} is not JSON: ${(err as Error).message}`);
  }
  const m = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const map = (typeof m["shardMap"] === "object" && m["shardMap"] !== null ? m["shardMap"] : {}) as Record<string, unknown>;
  const problem =
    m["format"] !== BACKUP_MANIFEST_FORMAT
      ? `format is ${String(m["format"])}, not ${BACKUP_MANIFEST_FORMAT}`
      : typeof m["clusterId"] !== "string" || m["clusterId"] === ""
        ? "clusterId is missing"
        : !Number.isInteger(m["shardId"]) || (m["shardId"] as number) < 0
          ? "shardId is not a non-negative integer"
          : !Number.isInteger(map["shardCount"]) || typeof map["hash"] !== "string"
            ? "shardMap is malformed"
            : typeof m["appliedLsn"] !== "string" || !/^\d+$/.test(m["appliedLsn"])
              ? "appliedLsn is not a decimal string"
              : !Number.isSafeInteger(m["sizeBytes"]) || (m["sizeBytes"] as number) < 0
                ? "sizeBytes is not a non-negative integer"
                : typeof m["sha256"] !== "string" || !/^[0-9a-f]{64}$/.test(m["sha256"])
                  ? "sha256 is not 64 lowercase hex digits"
                  : typeof m["createdAt"] !== "string"
                    ? "createdAt is missing"
                    : null;
  if (problem !== null) throw invalidArgument(`backup manifest ${source} is malformed: ${problem}`);
  return {
    format: BACKUP_MANIFEST_FORMAT,
    clusterId: m["clusterId"] as string,
    shardId: m["shardId"] as number,
    shardMap: { shardCount: map["shardCount"] as number, hash: map["hash"] as string },
    appliedLsn: BigInt(m["appliedLsn"] as string),
    sizeBytes: m["sizeBytes"] as number,
    sha256: m["sha256"] as string,
    createdAt: m["createdAt"] as string,
  };
}

/** What a restore expects of a backup. `clusterId` null: not known to the caller (the shard checks it at start). */
export interface RestoreExpectation {
  readonly shardId: number;
  readonly clusterId: string | null;
}

/**
 * Whether a backup may be restored: its manifest names the expected shard
 * and cluster, and the file's measured size and checksum are the manifest's.
 * Returns the refusal (FAILED_PRECONDITION naming both values) or null. Pure.
 */
export function checkBackupManifest(
  manifest: BackupManifest,
  expected: RestoreExpectation,
  measured: { readonly sha256: string; readonly sizeBytes: number },
): LpError | null {
  if (manifest.shardId !== expected.shardId) {
    return failedPrecondition(`the backup is of shard ${manifest.shardId}, not shard ${expected.shardId}`);
  }
  if (expected.clusterId !== null && manifest.clusterId !== expected.clusterId) {
    return failedPrecondition(`the backup is of cluster "${manifest.clusterId}", not cluster "${expected.clusterId}"`);
  }
  if (measured.sizeBytes !== manifest.sizeBytes) {
    return failedPrecondition(`the backup file holds ${measured.sizeBytes} bytes, its manifest says ${manifest.sizeBytes}`);
  }
  if (measured.sha256 !== manifest.sha256) {
    return failedPrecondition(`the backup file's SHA-256 is ${measured.sha256}, its manifest says ${manifest.sha256}`);
  }
  return null;
}

/** SHA-256 and size of a file, read in chunks off the event loop. */
export async function measureFile(file: string): Promise<{ sha256: string; sizeBytes: number }> {
  const hash = createHash("sha256");
  let sizeBytes = 0;
  for await (const chunk of fs.createReadStream(file)) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    sizeBytes += bytes.length;
  }
  return { sha256: hash.digest("hex"), sizeBytes };
}

/** A temp name in `dir` that no concurrent writer shares; `.tmp` files are what a crash leaves behind. */
export function backupTempFile(dir: string, purpose: string): string {
  return path.join(dir, `.${purpose}-${process.pid}-${randomBytes(4).toString("hex")}.tmp`);
}

function fsyncPath(file: string): void {
  const fd = fs.openSync(file, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Installs a finished backup in `dir`: the database (already written at
 * `tempDatabaseFile`, in `dir`) is synced and renamed into place, then the
 * manifest is written the same way. A crash leaves either no manifest (the
 * backup does not count) or both files whole. Returns the final paths.
 */
export function installBackup(dir: string, tempDatabaseFile: string, manifest: BackupManifest): BackupOnDisk {
  const databaseFile = path.join(dir, backupDatabaseFileName(manifest.shardId, manifest.appliedLsn));
  const manifestFile = manifestFileFor(databaseFile);
  fsyncPath(tempDatabaseFile);
  fs.renameSync(tempDatabaseFile, databaseFile);
  const tempManifest = backupTempFile(dir, "manifest");
  fs.writeFileSync(tempManifest, manifestToJson(manifest), { flag: "wx" });
  fsyncPath(tempManifest);
  fs.renameSync(tempManifest, manifestFile);
  fsyncPath(dir);
  return { manifest, databaseFile, manifestFile };
}

/**
 * The backups of `shardId` in `dir`, oldest LSN first: every well-formed
 * manifest whose database file exists. A missing directory holds none.
 */
export function listBackups(dir: string, shardId: number): BackupOnDisk[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const found: BackupOnDisk[] = [];
  for (const name of names) {
    const match = BACKUP_NAME.exec(name);
    if (match === null || Number(match[1]) !== shardId) continue;
    const manifestFile = path.join(dir, name);
    const databaseFile = path.join(dir, backupDatabaseFileName(shardId, BigInt(match[2]!)));
    if (!fs.existsSync(databaseFile)) continue;
    try {
      const manifest = parseBackupManifest(fs.readFileSync(manifestFile, "utf8"), manifestFile);
      if (manifest.shardId === shardId) found.push({ manifest, databaseFile, manifestFile });
    } catch {
      // A manifest that does not parse describes no usable backup; it is left for a person to look at.
    }
  }
  return found.sort((a, b) => (a.manifest.appliedLsn < b.manifest.appliedLsn ? -1 : a.manifest.appliedLsn > b.manifest.appliedLsn ? 1 : 0));
}

/** Deletes all but the newest `keep` backups of `shardId` in `dir` (manifest first); returns what it deleted. */
export function pruneBackups(dir: string, shardId: number, keep: number): BackupOnDisk[] {
  const backups = listBackups(dir, shardId);
  const doomed = backups.slice(0, Math.max(0, backups.length - keep));
  for (const backup of doomed) {
    fs.rmSync(backup.manifestFile, { force: true });
    fs.rmSync(backup.databaseFile, { force: true });
  }
  return doomed;
}

const TEMP_NAME = /^\.[a-z-]+-(\d+)-[0-9a-f]{8}\.tmp$/;

/**
 * Removes the temp files (backupTempFile) a crash mid-backup left in `dir`:
 * those whose writer's pid is no longer alive, so that a shard starting
 * never deletes the temp file of an lpctl backup writing into the same
 * directory.
 */
export function removeBackupTemps(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const match = TEMP_NAME.exec(name);
    if (match !== null && !processAlive(Number(match[1]))) fs.rmSync(path.join(dir, name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // this process has just started: nothing of its own is in flight yet
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    // EPERM: alive, but another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Installs the verified backup `from` as `databaseFile` (a shard's
 * `shard.sqlite`), atomically: copied to a temp file beside it, measured
 * again, synced, renamed. A WAL or shared-memory file left by a lost
 * database would be replayed onto the restored one, so they go first. The
 * caller holds the data directory's lock, and `databaseFile` must not exist.
 */
export async function installRestoredDatabase(from: string, databaseFile: string, expected: RestoreExpectation): Promise<BackupManifest> {
  const manifestFile = manifestFileFor(from);
  let json: string;
  try {
    json = fs.readFileSync(manifestFile, "utf8");
  } catch (err: unknown) {
    throw failedPrecondition(`cannot read the backup's manifest ${manifestFile}: ${(err as Error).message}`);
  }
  const manifest = parseBackupManifest(json, manifestFile);
  if (fs.existsSync(databaseFile)) {
    throw failedPrecondition(`${databaseFile} exists: a restore never overwrites a database; move it away first`);
  }
  const dir = path.dirname(databaseFile);
  fs.mkdirSync(dir, { recursive: true });
  const temp = backupTempFile(dir, "restore");
  try {
    fs.copyFileSync(from, temp, fs.constants.COPYFILE_EXCL);
    const refusal = checkBackupManifest(manifest, expected, await measureFile(temp));
    if (refusal !== null) throw failedPrecondition(`${from}: ${refusal.message}`);
    fsyncPath(temp);
    for (const suffix of ["-wal", "-shm", "-journal"]) fs.rmSync(`${databaseFile}${suffix}`, { force: true });
    fs.renameSync(temp, databaseFile);
    fsyncPath(dir);
  } finally {
    fs.rmSync(temp, { force: true });
  }
  return manifest;
}
