import { currentRestorableLsn } from "./restorable";
import type { sendUnaryData, ServerErrorResponse } from "@grpc/grpc-js";
import { AssertionError, LpError, Status } from "@logplayer/common";
import { PROTOCOL_VERSION, type ShardServer } from "@logplayer/proto";
import type { ShardContext } from "./context";
import { serveBackup } from "./backup-rpc";
import { serveDeliver } from "./deliver-stream";
import { readKey, readOutcome, scanKeys } from "./reads";

/** The gRPC Shard service over one shard's context. */
export function createShardService(ctx: ShardContext): ShardServer {
  return {
    deliver: (call) => serveDeliver(ctx, call),
    get: (call, callback) => {
      reply(ctx, "get", readKey(ctx, call), callback);
    },
    scan: (call, callback) => {
      reply(ctx, "scan", scanKeys(ctx, call), callback);
    },
    getOutcome: (call, callback) => {
      reply(ctx, "get_outcome", readOutcome(ctx, call), callback);
    },
    status: (_call, callback) => {
      const { shardId, clusterId, shardMap, limits } = ctx.store.identity;
      callback(null, {
        protocolVersion: PROTOCOL_VERSION,
        shardId,
        clusterId,
        shardMap: shardMap ?? undefined,
        appliedLsn: ctx.store.appliedLsn,
        durableLsn: ctx.store.durableLsn,
        partsApplied: ctx.counts.partsApplied,
        partsDuplicate: ctx.counts.partsDuplicate,
        gaps: ctx.counts.gaps,
        deliveryStreams: ctx.streams.size,
        limits: limits ?? undefined,
        diskFull: ctx.store.diskFull ?? "",
        newestBackupLsn: ctx.backups.newest?.manifest.appliedLsn ?? 0n,
        logUnreachable: ctx.logUnreachable ?? "",
        restorableLsn: currentRestorableLsn(ctx.store, ctx.backups),
      });
    },
    backup: (call) => void serveBackup(ctx, call),
    deliveryStats: (call, callback) => {
      callback(null, ctx.stats.snapshot(call.request.reset));
    },
  };
}

function reply<T>(ctx: ShardContext, method: string, result: Promise<T>, callback: sendUnaryData<T>): void {
  result.then(
    (value) => {
      ctx.metrics.reads.inc({ method, outcome: "ok" });
      callback(null, value);
    },
    (err: unknown) => {
      if (err instanceof AssertionError) throw err;
      const error = LpError.from(err);
      // The status name ("NOT_FOUND", "DEADLINE_EXCEEDED"), like the LogStore's append outcomes.
      ctx.metrics.reads.inc({ method, outcome: Status[error.code] ?? String(error.code) });
      callback(error.toServiceError() as ServerErrorResponse);
    },
  );
}
