import fs from "node:fs";
import fsPromises from "node:fs/promises";
import path from "node:path";
import { Server } from "@grpc/grpc-js";
import {
  addHealthService,
  assert,
  bindServer,
  installRestoredDatabase,
  CallerSlots,
  createRegistry,
  grpcServerOptions,
  LsnWaiters,
  shutdownServer,
  serviceMessageBytesMax,
  startMetricsServer,
  unavailable,
  type GivenTransactionLimits,
  type Logger,
  type MetricsServer,
  type Registry,
  listenHost,
  Gauge,
} from "@logplayer/common";
import { lockDataDir } from "@logplayer/data-dir-lock";
import { ShardService } from "@logplayer/proto";
import {
  callerKey,
  logTransportSecurity,
  RefusalLog,
  serverCredentialsFor,
  serverInterceptorsFor,
  type TransportSecurity,
} from "@logplayer/tls";
import { type BackupOptions, ShardBackups } from "./backups";
import type { ShardContext, ShardLimits } from "./context";
import { DeliveryStats } from "./delivery-stats";
import { reconcileConfiguredIdentity } from "./identity";
import { createShardService } from "./server";
import { currentRestorableLsn } from "./restorable";
import { createShardMetrics } from "./shard-metrics";
import { DATABASE_FILE_NAME, ShardStore } from "./store";

export interface ShardOptions {
  readonly shardId: number;
  readonly shardCount?: number;
  readonly clusterId?: string;
  readonly dataDir: string;
  /** host:port for gRPC; port 0 picks a free port. */
  readonly listen: string;
  /** Prometheus /metrics port on the listen host; 0 = any free port, -1 = off. */
  readonly metricsPort: number;
  /** How often to checkpoint the WAL, which advances the durable LSN. */
  readonly checkpointIntervalMs: number;
  /** WAL pages before SQLite checkpoints by itself inside a commit (default DEFAULT_WAL_AUTOCHECKPOINT_PAGES). */
  readonly walAutocheckpointPages?: number;
  /** SQLite's page cache bound in bytes (--sqlite-cache-bytes). */
  readonly sqliteCacheBytes?: number;
  /** SQLite page size of a new database (default DEFAULT_PAGE_BYTES); an existing one keeps its own. */
  readonly pageBytes?: number;
  /** Bound on a graceful shutdown before open calls are cancelled. */
  readonly shutdownTimeoutMs: number;
  /** mTLS (the default) or --insecure. */
  readonly security: TransportSecurity;
  /** The shard's own limits; the transaction limits and message cap come from the cluster's (below). */
  readonly limits: Omit<ShardLimits, "transaction" | "messageBytesMax">;
  /** --message-bytes-max when given (refused below the cluster's cap); else derived. */
  readonly messageBytesMax?: number;
  /** Limit flags given; recorded on the first start (defaults for the rest), checked against the record after. */
  readonly transactionLimits?: GivenTransactionLimits;
  /** Online backups: --backup-dir, --backup-interval-ms, --backup-keep, --backup-step-pages. */
  readonly backup: BackupOptions;
  /** --restore-from: a backup installed as the database when the data directory has none. */
  readonly restoreFrom?: string;
}

export interface RunningShard {
  readonly grpcPort: number;
  /** null when metrics are off. */
  readonly metricsPort: number | null;
  readonly context: ShardContext;
  /** Ends streams and reads, stops the server, checkpoints and closes SQLite. */
  close(): Promise<void>;
}

/**
 * Opens the shard's database, checks its identity against the flags, and
 * serves gRPC and metrics. Throws (before serving anything) on a corrupt
 * database or an identity mismatch.
 */
export async function startShard(options: ShardOptions, logger: Logger): Promise<RunningShard> {
  // Before SQLite opens anything: a second process on this directory is refused by name, not left to SQLite's busy errors.
  const dirLock = lockDataDir(options.dataDir, `shard ${options.shardId}`);
  let store: ShardStore;
  try {
    if (options.restoreFrom !== undefined) await restoreWhenMissing(options, options.restoreFrom, logger);
    store = ShardStore.open(options.dataDir, options.shardId, {
      walAutocheckpointPages: options.walAutocheckpointPages,
      cacheBytes: options.sqliteCacheBytes,
      pageBytes: options.pageBytes,
    });
  } catch (err: unknown) {
    dirLock.release();
    throw err;
  }
  let server: Server | undefined;
  let metricsServer: MetricsServer | null = null;
  try {
    const update = reconcileConfiguredIdentity(store.identity, options, options.dataDir);
    if (Object.keys(update).length > 0) store.adoptIdentity(update);
    const limits = clusterLimits(store, options);
    const registry = createRegistry("shard");
    registry.setDefaultLabels({ service: "shard", shard: String(options.shardId) });
    const backups = new ShardBackups(store, options.backup, logger);
    const context = createContext(store, limits, logger, registry, (call) => callerKey(call, options.security), backups);
    logTransportSecurity(logger, options.security);
    const refusals = new RefusalLog("shard", registry, logger);
    server = new Server({
      ...grpcServerOptions({ messageBytesMax: limits.messageBytesMax, concurrentStreamsMax: 1024 }),
      ...serverInterceptorsFor(options.security, refusals),
    });
    server.addService(ShardService, createShardService(context));
    const health = addHealthService(server);
    const grpcPort = await bindServer(server, options.listen, serverCredentialsFor(options.security));
    const host = listenHost(options.listen);
    metricsServer = await startMetricsServer(host, options.metricsPort, registry);
    const checkpointer = { running: false };
    const checkpointTimer = setInterval(() => void checkpoint(context, checkpointer), options.checkpointIntervalMs);
    checkpointTimer.unref();
    backups.start();
    health.setStatus("", "SERVING");
    const running = { grpcPort, metricsPort: metricsServer?.port ?? null, context };
    const stopServer = server;
    const stopMetrics = metricsServer;
    return {
      ...running,
      close: async () => {
        health.setStatus("", "NOT_SERVING");
        clearInterval(checkpointTimer);
        backups.stop();
        endOpenCalls(context);
        await shutdownServer(stopServer, options.shutdownTimeoutMs);
        await stopMetrics?.close();
        store.close();
        dirLock.release();
      },
    };
  } catch (err: unknown) {
    server?.forceShutdown();
    await metricsServer?.close();
    store.close();
    dirLock.release();
    throw err;
  }
}

function createContext(
  store: ShardStore,
  limits: ShardLimits,
  logger: Logger,
  registry: Registry,
  callerOf: ShardContext["callerOf"],
  backups: ShardBackups,
): ShardContext {
  const metrics = createShardMetrics(registry);
  metrics.newestBackupLsn.set(Number(backups.newest?.manifest.appliedLsn ?? 0n));
  backups.onNewest((lsn) => metrics.newestBackupLsn.set(Number(lsn)));
  new Gauge({
    name: "lp_shard_restorable_lsn",
    help: "LSN this shard can be restored to without the log; the LogStore trims only below the lowest over every shard.",
    registers: [registry],
    collect() {
      this.set(Number(currentRestorableLsn(store, backups)));
    },
  });
  store.onDiskFull((message) => {
    metrics.diskFull.set(message === null ? 0 : 1);
    if (message !== null) logger.error({ reason: message }, "shard disk full: batches refused with RESOURCE_EXHAUSTED until one commits");
    else logger.warn("shard disk has room again: batches applied");
  });
  metrics.appliedLsn.set(Number(store.appliedLsn));
  metrics.durableLsn.set(Number(store.durableLsn));
  return {
    store,
    limits,
    logger,
    metrics,
    stats: new DeliveryStats(metrics),
    waiters: new LsnWaiters(store.appliedLsn, limits.readWaitersMax),
    counts: { partsApplied: 0n, partsDuplicate: 0n, gaps: 0n },
    streams: new Map(),
    pendingReads: new Set(),
    callerOf,
    deliverySlots: new CallerSlots(limits.deliveryStreamsPerCallerMax),
    readWaiterSlots: new CallerSlots(limits.readWaitersPerCallerMax),
    backups,
    logUnreachable: null,
  };
}

/**
 * --restore-from: installs the backup as the database when the data
 * directory has none (its manifest must name this shard, and the cluster
 * when --cluster-id is given; its checksum must match). A database that
 * exists is kept: the flag can stay in a supervisor's command line.
 */
async function restoreWhenMissing(options: ShardOptions, from: string, logger: Logger): Promise<void> {
  const databaseFile = path.join(options.dataDir, DATABASE_FILE_NAME);
  if (fs.existsSync(databaseFile)) {
    logger.info({ databaseFile, restoreFrom: from }, "database exists: --restore-from not used");
    return;
  }
  const manifest = await installRestoredDatabase(from, databaseFile, { shardId: options.shardId, clusterId: options.clusterId ?? null });
  logger.warn({ databaseFile, restoreFrom: from, appliedLsn: manifest.appliedLsn.toString() }, "database restored from a backup");
}

/**
 * Syncs the WAL through a descriptor of our own, on libuv's thread pool:
 * the checkpoint that follows must sync the WAL too, on the event loop, and
 * finds little left to write. Seconds of WAL (tens of MB at 1,000 txn/s)
 * made that sync stall deliveries for ~100 ms per checkpoint under load.
 */
async function syncWalAhead(walFile: string): Promise<void> {
  const handle = await fsPromises.open(walFile, "r");
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** One checkpoint, skipped while the previous one is still syncing. */
async function checkpoint(ctx: ShardContext, state: { running: boolean }): Promise<void> {
  if (state.running) return;
  state.running = true;
  try {
    const endSync = ctx.metrics.walSyncAheadSeconds.startTimer();
    try {
      await syncWalAhead(ctx.store.walFile);
      endSync();
    } catch (err: unknown) {
      // Only an optimisation: the checkpoint syncs the WAL itself.
      ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "WAL sync ahead of the checkpoint failed");
    }
    if (!ctx.store.isOpen) return;
    const endCheckpoint = ctx.metrics.checkpointSeconds.startTimer();
    const durableLsn = ctx.store.checkpoint();
    endCheckpoint();
    ctx.metrics.durableLsn.set(Number(durableLsn));
  } catch (err: unknown) {
    // A failed checkpoint only holds the durable LSN back; the next one retries.
    ctx.logger.warn({ err: err instanceof Error ? err.message : String(err) }, "WAL checkpoint failed");
  } finally {
    state.running = false;
  }
}

/** Ends every Deliver stream and waiting read with UNAVAILABLE so shutdown is prompt. */
function endOpenCalls(ctx: ShardContext): void {
  const error = unavailable("shard is shutting down");
  for (const end of [...ctx.streams.values()]) end(error);
  for (const fail of [...ctx.pendingReads]) fail(error);
  assert(ctx.streams.size === 0 && ctx.pendingReads.size === 0, "open calls left after ending them all");
}

/** The shard's limits with the cluster's transaction limits (as recorded) and the message cap derived from them. */
function clusterLimits(store: ShardStore, options: ShardOptions): ShardLimits {
  const transaction = store.identity.limits;
  assert(transaction !== null, "the cluster's limits are recorded before the shard serves");
  const limits = { ...options.limits, transaction, messageBytesMax: serviceMessageBytesMax(options.messageBytesMax, transaction) };
  validateLimits(limits);
  return limits;
}

function validateLimits(limits: ShardLimits): void {
  const positive: [string, number][] = [
    ["batch_parts_max", limits.batchPartsMax],
    ["delivery_streams_max", limits.deliveryStreamsMax],
    ["read_waiters_max", limits.readWaitersMax],
    ["delivery_streams_per_caller_max", limits.deliveryStreamsPerCallerMax],
    ["read_waiters_per_caller_max", limits.readWaitersPerCallerMax],
    ["read_wait_ms_max", limits.readWaitMsMax],
    ["scan_items_max", limits.scanItemsMax],
    ["scan_bytes_max", limits.scanBytesMax],
  ];
  for (const [name, value] of positive) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  }
  if (limits.scanBytesMax > limits.messageBytesMax / 2) {
    throw new Error(`scan_bytes_max ${limits.scanBytesMax} must be at most half of message_bytes_max ${limits.messageBytesMax}`);
  }
}
