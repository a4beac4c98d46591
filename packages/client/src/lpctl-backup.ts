// lpctl backup shard / restore shard: an online copy of a running shard into
// a directory, and its offline installation as a stopped shard's database.
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Metadata } from "@grpc/grpc-js";
import type { Command } from "commander";
import {
  BACKUP_MANIFEST_FORMAT,
  backupTempFile,
  failedPrecondition,
  grpcChannelOptions,
  installBackup,
  installRestoredDatabase,
  invalidArgument,
  LpError,
  parseIntegerInRange,
  SHARD_COUNT_MAX,
  SHARD_DATABASE_FILE_NAME,
  Status,
  type BackupManifest,
  type BackupOnDisk,
} from "@logplayer/common";
import type { lockDataDir as LockDataDir } from "@logplayer/data-dir-lock";
import { type BackupChunk, ShardClient } from "@logplayer/proto";
import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import { toClientError } from "./errors";

/**
 * The data-directory lock, loaded only by `lpctl restore`: it takes a kernel
 * lock through SQLite (a native addon), which the published client does not
 * ship. A restore runs on the shard's host, from a checkout or the image,
 * where the lock is present.
 */
function loadLockDataDir(): typeof LockDataDir {
  try {
    // A require, not an import: the client works without this optional piece.
    return (require("@logplayer/data-dir-lock") as { lockDataDir: typeof LockDataDir }).lockDataDir;
  } catch {
    throw new LpError(
      Status.FAILED_PRECONDITION,
      "lpctl restore needs @logplayer/data-dir-lock, which the published client does not include: run it from a LogPlayer " +
        "checkout or image on the shard's host",
    );
  }
}

/** A backup's chunks are 1 MiB; the channel takes up to this much in one message. */
const BACKUP_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;
/** The longest a backup may take end to end (copy and transfer), unless --backup-timeout-ms says otherwise. */
export const DEFAULT_BACKUP_TIMEOUT_MS = 3_600_000;

/** What the backup commands need from the lpctl run they are part of. */
export interface BackupCommandHost {
  readonly stdout: (text: string) => void;
  /** --shards, in shard-id order. */
  shards(): readonly string[];
  json(): boolean;
  security(): TransportSecurity;
}

export function addBackupCommands(program: Command, host: BackupCommandHost): void {
  const shardId = parseIntegerInRange("<shard-id>", 0, SHARD_COUNT_MAX - 1);
  program
    .command("backup")
    .description(
      "online backup of a running shard (admin): DIR/shard-N-lsn-L.sqlite and its manifest shard-N-lsn-L.json, " +
        "each written to a temp file and renamed into place",
    )
    .argument("<what>", "shard")
    .argument("<shard-id>", "the shard to back up", shardId)
    .requiredOption("--to <dir>", "directory for the backup (created when missing)")
    .option("--backup-timeout-ms <ms>", "deadline of the whole backup", parseIntegerInRange("--backup-timeout-ms", 1, 86_400_000))
    .action(async (what: string, id: number, opts: { to: string; backupTimeoutMs?: number }) => {
      requireShard(what);
      const address = host.shards()[id];
      if (address === undefined) throw toClientError(invalidArgument(`shard ${id} is not in --shards (${host.shards().length} given)`));
      const backup = await backupShard(address, id, opts.to, host.security(), opts.backupTimeoutMs ?? DEFAULT_BACKUP_TIMEOUT_MS);
      const { manifest, databaseFile } = backup;
      const summary = { file: databaseFile, shardId: id, appliedLsn: manifest.appliedLsn, sizeBytes: manifest.sizeBytes };
      host.stdout(
        host.json()
          ? `${JSON.stringify({ ...summary, appliedLsn: String(summary.appliedLsn), sha256: manifest.sha256 })}\n`
          : `backed up shard ${id} at lsn=${manifest.appliedLsn} to ${databaseFile} (${manifest.sizeBytes} bytes)\n`,
      );
    });
  program
    .command("restore")
    .description(
      "install a backup as a STOPPED shard's database (offline; takes the data directory's lock): the manifest must name " +
        "this shard (and --cluster-id when given) and the file's checksum must match; an existing database is never overwritten",
    )
    .argument("<what>", "shard")
    .argument("<shard-id>", "the shard to restore", shardId)
    .requiredOption("--from <file>", "the backup's .sqlite file (its .json manifest beside it)")
    .requiredOption("--data-dir <dir>", "the shard's data directory")
    .option("--cluster-id <id>", "the cluster the backup must be of (the shard checks it again at start)")
    .action(async (what: string, id: number, opts: { from: string; dataDir: string; clusterId?: string }) => {
      requireShard(what);
      fs.mkdirSync(opts.dataDir, { recursive: true });
      const lock = loadLockDataDir()(opts.dataDir, `lpctl restore shard ${id}`);
      try {
        const databaseFile = path.join(opts.dataDir, SHARD_DATABASE_FILE_NAME);
        const manifest = await installRestoredDatabase(opts.from, databaseFile, { shardId: id, clusterId: opts.clusterId ?? null });
        host.stdout(
          host.json()
            ? `${JSON.stringify({ file: databaseFile, shardId: id, appliedLsn: String(manifest.appliedLsn) })}\n`
            : `restored shard ${id} at lsn=${manifest.appliedLsn} into ${databaseFile}; start the shard: the LogPlayer delivers the rest\n`,
        );
      } catch (err: unknown) {
        throw toClientError(LpError.from(err));
      } finally {
        lock.release();
      }
    });
}

function requireShard(what: string): void {
  if (what !== "shard") throw toClientError(invalidArgument(`only shards are backed up and restored: "${what}" is not "shard"`));
}

/**
 * Streams a shard's Backup into `dir`: the manifest first (it must name the
 * shard asked for), then at most its size in bytes, hashed on the way, into
 * a temp file; installed only when size and SHA-256 match.
 */
export async function backupShard(
  address: string,
  shardId: number,
  dir: string,
  security: TransportSecurity,
  timeoutMs: number,
): Promise<BackupOnDisk> {
  fs.mkdirSync(dir, { recursive: true });
  const temp = backupTempFile(dir, "lpctl-backup");
  const fd = fs.openSync(temp, "wx");
  const client = new ShardClient(address, channelCredentialsFor(security), grpcChannelOptions(BACKUP_MESSAGE_BYTES_MAX));
  try {
    const manifest = await receiveBackup(client, shardId, fd, timeoutMs);
    fs.closeSync(fd);
    return installBackup(dir, temp, manifest);
  } catch (err: unknown) {
    throw toClientError(LpError.from(err));
  } finally {
    try {
      fs.closeSync(fd);
    } catch {
      // Already closed on success.
    }
    fs.rmSync(temp, { force: true });
    client.close();
  }
}

function receiveBackup(client: ShardClient, shardId: number, fd: number, timeoutMs: number): Promise<BackupManifest> {
  return new Promise((resolve, reject) => {
    const call = client.backup({}, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) });
    const hash = createHash("sha256");
    let manifest: BackupManifest | null = null;
    let received = 0;
    const fail = (error: LpError): void => {
      call.cancel();
      reject(error);
    };
    call.on("data", (chunk: BackupChunk) => {
      try {
        if (chunk.body?.$case === "manifest") {
          if (manifest !== null) throw failedPrecondition("the shard sent a second manifest");
          manifest = fromManifestMessage(chunk.body.value);
          if (manifest.shardId !== shardId)
            throw failedPrecondition(`asked shard ${shardId} for a backup, got one of shard ${manifest.shardId}`);
          return;
        }
        if (chunk.body?.$case !== "data") throw failedPrecondition("the shard sent an empty backup chunk");
        if (manifest === null) throw failedPrecondition("the shard sent data before the manifest");
        received += chunk.body.value.length;
        if (received > manifest.sizeBytes)
          throw failedPrecondition(`the shard sent more than the ${manifest.sizeBytes} bytes its manifest says`);
        hash.update(chunk.body.value);
        fs.writeSync(fd, chunk.body.value);
      } catch (err: unknown) {
        fail(LpError.from(err));
      }
    });
    call.on("error", (err: Error) => reject(LpError.from(err)));
    call.on("end", () => {
      if (manifest === null) return reject(failedPrecondition("the shard ended the backup without a manifest"));
      const sha256 = hash.digest("hex");
      if (received !== manifest.sizeBytes || sha256 !== manifest.sha256) {
        return reject(
          new LpError(
            Status.DATA_LOSS,
            `backup transfer damaged: ${received} bytes with SHA-256 ${sha256}, the manifest says ` +
              `${manifest.sizeBytes} bytes with ${manifest.sha256}`,
          ),
        );
      }
      fs.fsyncSync(fd);
      resolve(manifest);
    });
  });
}

function fromManifestMessage(message: Extract<BackupChunk["body"], { $case: "manifest" }>["value"]): BackupManifest {
  if (message.shardMap === undefined) throw failedPrecondition("the backup's manifest has no shard map");
  if (!/^[0-9a-f]{64}$/.test(message.sha256)) throw failedPrecondition("the backup's manifest has a malformed sha256");
  if (message.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) throw failedPrecondition("the backup's manifest has an impossible size");
  return {
    format: BACKUP_MANIFEST_FORMAT,
    clusterId: message.clusterId,
    shardId: message.shardId,
    shardMap: { shardCount: message.shardMap.shardCount, hash: message.shardMap.hash },
    appliedLsn: message.appliedLsn,
    sizeBytes: Number(message.sizeBytes),
    sha256: message.sha256,
    createdAt: message.createdAt,
  };
}
