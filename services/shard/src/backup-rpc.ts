import fs from "node:fs";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { AssertionError, backupTempFile, LpError, Status, type BackupManifest } from "@logplayer/common";
import type { BackupChunk, BackupRequest } from "@logplayer/proto";
import type { ShardContext } from "./context";

/** Bytes of the database file in one BackupChunk: far below every message cap (16 MiB at least). */
export const BACKUP_CHUNK_BYTES = 1024 * 1024;

export type BackupCall = ServerWritableStream<BackupRequest, BackupChunk>;

/**
 * Serves one Backup call: an online copy into a temp file in the data
 * directory, then the manifest and the file's bytes, with the stream's flow
 * control (a chunk is read only once the previous one was taken). The temp
 * file is deleted however the call ends.
 */
export async function serveBackup(ctx: ShardContext, call: BackupCall): Promise<void> {
  const temp = backupTempFile(ctx.store.dataDir, "backup");
  let cancelled = false;
  call.on("cancelled", () => {
    cancelled = true;
  });
  try {
    const manifest = await ctx.backups.copyTo(temp);
    ctx.logger.info({ appliedLsn: manifest.appliedLsn.toString(), sizeBytes: manifest.sizeBytes }, "backup copied; streaming it");
    await writeChunk(call, { body: { $case: "manifest", value: toManifestMessage(manifest) } });
    const handle = await fs.promises.open(temp, "r");
    try {
      const buffer = Buffer.alloc(BACKUP_CHUNK_BYTES);
      for (let offset = 0; offset < manifest.sizeBytes && !cancelled; ) {
        const { bytesRead } = await handle.read(buffer, 0, BACKUP_CHUNK_BYTES, offset);
        if (bytesRead === 0) throw new LpError(Status.INTERNAL, `backup copy ${temp} ended at ${offset} of ${manifest.sizeBytes} bytes`);
        await writeChunk(call, { body: { $case: "data", value: Buffer.from(buffer.subarray(0, bytesRead)) } });
        offset += bytesRead;
      }
    } finally {
      await handle.close();
    }
    call.end();
  } catch (err: unknown) {
    if (err instanceof AssertionError) throw err;
    const error = LpError.from(err);
    ctx.logger.warn({ code: Status[error.code], err: error.message }, "backup failed");
    if (!cancelled) call.emit("error", error.toServiceError());
  } finally {
    fs.rmSync(temp, { force: true });
  }
}

/**
 * Resolves once the chunk is handed to HTTP/2, after a 'drain' when the
 * stream's buffer was full, or at once when the caller goes away.
 */
function writeChunk(call: BackupCall, chunk: BackupChunk): Promise<void> {
  return new Promise((resolve) => {
    if (call.write(chunk)) {
      resolve();
      return;
    }
    const done = (): void => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.once("drain", done);
    call.once("cancelled", done);
  });
}

function toManifestMessage(manifest: BackupManifest) {
  return {
    clusterId: manifest.clusterId,
    shardId: manifest.shardId,
    shardMap: manifest.shardMap,
    appliedLsn: manifest.appliedLsn,
    sizeBytes: BigInt(manifest.sizeBytes),
    sha256: manifest.sha256,
    createdAt: manifest.createdAt,
  };
}
