import { promises as fs } from "node:fs";
import path from "node:path";
import { Server } from "@grpc/grpc-js";
import {
  addHealthService,
  assert,
  bindServer,
  createRegistry,
  failedPrecondition,
  grpcMessageBytesMax,
  grpcServerOptions,
  shutdownServer,
  startMetricsServer,
  type Logger,
  type MetricsServer,
  type GivenTransactionLimits,
  type TransactionLimits,
  listenHost,
  withPort,
} from "@logplayer/common";
import { LogStoreService, ReplicationService } from "@logplayer/proto";
import { CLUSTER_META_FILE, loadClusterMeta, writeClusterMeta, type ClusterMeta } from "./cluster-meta";
import { DedupeTable, type DedupeLimits } from "./dedupe-table";
import { createLogStoreMetrics, type LogStoreMetrics } from "./metrics";
import type { ReadLimits } from "./read-session";
import { openReplication, singleVoterSetup, type ReplicationSetup } from "./replication/open-replication";
import { DEFAULT_REPLICATION_LIMITS, type ReplicatedLog } from "./replication/replicated-log";
import { createLogStoreService, LogStoreNode } from "./server";
import { lockDataDir } from "@logplayer/data-dir-lock";
import { Wal, type WalLimits, type WalObserver } from "@logplayer/wal";

/** The WAL lives in this subdirectory of the data directory, next to cluster.json. */
export const WAL_DIRECTORY = "wal";

export interface LogStoreOptions {
  dataDir: string;
  /** host:port for gRPC; port 0 picks a free port. */
  listen: string;
  /** Address reported as the leader's; default: the listen host and the bound port. */
  advertise: string | undefined;
  /** Prometheus /metrics port on the listen host; 0 = any free port, -1 = off. */
  metricsPort: number;
  replicaId: string;
  /** Required on first start; checked against cluster.json afterwards. */
  shardCount: number | undefined;
  clusterId: string | undefined;
  walLimits: WalLimits;
  /** Limit flags given: recorded in cluster.json on the first start (defaults for the rest), checked against it after. */
  transactionLimits: GivenTransactionLimits;
  readLimits: ReadLimits;
  /** Appends in flight on one AppendStream before it is paused. */
  appendStreamPendingMax: number;
  shutdownTimeoutMs: number;
  /** Idempotent appends: how many clients and seqs per client are remembered. */
  dedupeLimits: DedupeLimits;
  /** Raft replication (--replica-id + --peers); undefined = one replica, the one voter of its own Raft. */
  replication?: ReplicationSetup;
}

export interface RunningLogStore {
  readonly grpcPort: number;
  readonly metricsPort: number | null;
  readonly meta: ClusterMeta;
  readonly node: LogStoreNode;
  close(): Promise<void>;
}

/**
 * Opens the data directory (cluster.json, then WAL recovery), starts gRPC
 * and metrics, and marks health SERVING. Throws a clear error (the caller
 * prints it and exits 1) on a bad configuration or a corrupt WAL.
 * `onFatal` is called when the process can no longer trust its state.
 */
export async function startLogStore(options: LogStoreOptions, logger: Logger, onFatal: (error: Error) => void): Promise<RunningLogStore> {
  // Before anything in the directory is read: two LogStores on one WAL would each acknowledge writes the other then loses.
  const dirLock = lockDataDir(options.dataDir, `logstore replica ${options.replicaId}`);
  try {
    const running = await startLocked(options, logger, onFatal);
    return {
      ...running,
      close: async () => {
        await running.close();
        dirLock.release();
      },
    };
  } catch (err: unknown) {
    dirLock.release();
    throw err;
  }
}

async function startLocked(options: LogStoreOptions, logger: Logger, onFatal: (error: Error) => void): Promise<RunningLogStore> {
  await fs.mkdir(options.dataDir, { recursive: true });
  if (options.replication !== undefined && options.clusterId === undefined && (await readClusterMetaExists(options.dataDir)) === false) {
    throw failedPrecondition("a replicated LogStore's first start needs --cluster-id (every replica must be created with the same one)");
  }
  const { meta, created } = await loadClusterMeta(options.dataDir, {
    shardCount: options.shardCount,
    clusterId: options.clusterId,
    limits: options.transactionLimits,
  });
  // From here on the cluster's recorded limits, not the flags, are the ones enforced.
  const transactionLimits = meta.limits;
  const readLimits = checkReadLimits(options.readLimits, transactionLimits);
  const registry = createRegistry("logstore");
  const metrics = createLogStoreMetrics(registry);
  // The WAL is created before cluster.json, so cluster.json existing means the WAL must too:
  // a missing WAL is refused rather than silently restarting the log at LSN 1.
  const { wal, report } = await Wal.open(
    path.join(options.dataDir, WAL_DIRECTORY),
    options.walLimits,
    walObserver(metrics, logger, onFatal),
    {
      createIfMissing: created,
    },
  );
  if (created) {
    if (report.lastLsn > 0n) {
      await wal.close();
      throw failedPrecondition(
        `${WAL_DIRECTORY}/ holds entries up to LSN ${report.lastLsn} but ${CLUSTER_META_FILE} is missing; refusing to start`,
      );
    }
    await writeClusterMeta(options.dataDir, meta);
  }
  logger.info(
    { clusterId: meta.clusterId, shardMap: meta.shardMap, limits: meta.limits, created },
    created ? "cluster created" : "cluster loaded",
  );
  if (report.tornTail !== null) {
    const { fileName, offset, bytesDropped, reason } = report.tornTail;
    logger.warn({ file: fileName, offset, bytesDropped, reason }, "WAL torn tail repaired: cut off an incomplete last record");
  }
  logger.info(
    {
      segments: report.segments,
      firstLsn: report.firstLsn.toString(),
      lastLsn: report.lastLsn.toString(),
      lastTerm: report.lastTerm.toString(),
    },
    "WAL recovered",
  );
  const messageBytesMax = grpcMessageBytesMax(transactionLimits);
  const dedupe = new DedupeTable(options.dedupeLimits);
  const singleVoter = options.replication === undefined;
  let replication: ReplicatedLog;
  try {
    const setup = options.replication ?? singleVoterSetup(DEFAULT_REPLICATION_LIMITS);
    replication = await openReplication(
      setup,
      meta.clusterId,
      options.dataDir,
      wal,
      dedupe,
      {
        transactionLimits,
        messageBytesMax,
        appendQueueMax: options.walLimits.appendQueueMax,
        appendQueueBytesMax: options.walLimits.appendQueueBytesMax,
      },
      logger,
      onFatal,
    );
  } catch (err: unknown) {
    await wal.close();
    throw err;
  }
  const server = new Server({
    ...grpcServerOptions({
      messageBytesMax,
      concurrentStreamsMax: Math.min(options.walLimits.appendQueueMax + readLimits.readersMax + 16, 2 ** 31 - 1),
    }),
  });
  let advertiseAddress = options.advertise ?? options.listen;
  const node = new LogStoreNode(
    wal,
    {
      meta,
      replicaId: options.replicaId,
      advertiseAddress: () => advertiseAddress,
      transactionLimits,
      readLimits,
      appendStreamPendingMax: options.appendStreamPendingMax,
      onFatal,
      replication,
      singleVoter,
    },
    metrics,
    logger,
  );
  server.addService(LogStoreService, createLogStoreService(node, metrics, logger));
  // A single voter has no peers to hear from: it serves no Replication.
  if (!singleVoter) server.addService(ReplicationService, replication.service());
  const health = addHealthService(server);
  let metricsServer: MetricsServer | null = null;
  let grpcPort: number;
  try {
    grpcPort = await bindServer(server, options.listen);
    if (options.advertise === undefined) advertiseAddress = withPort(options.listen, grpcPort);
    metricsServer = await startMetricsServer(listenHost(options.listen), options.metricsPort, registry, {
      ready: () => {
        const { role, leaderAddress } = node.status();
        return role === "leader" || leaderAddress !== "" ? { ready: true } : { ready: false, reason: `no leader known (role ${role})` };
      },
    });
  } catch (err: unknown) {
    server.forceShutdown();
    replication.stop();
    await wal.close();
    throw err;
  }
  replication.start();
  health.setStatus("", "SERVING");
  const close = async (): Promise<void> => {
    health.setStatus("", "NOT_SERVING");
    node.stop();
    await shutdownServer(server, options.shutdownTimeoutMs);
    await wal.close();
    await metricsServer?.close();
  };
  return { grpcPort, metricsPort: metricsServer?.port ?? null, meta, node, close };
}

async function readClusterMetaExists(dataDir: string): Promise<boolean> {
  try {
    await fs.access(path.join(dataDir, CLUSTER_META_FILE));
    return true;
  } catch {
    return false;
  }
}

function walObserver(metrics: LogStoreMetrics, logger: Logger, onFatal: (error: Error) => void): WalObserver {
  return {
    onGroupCommit(entries, bytes, durableWriteSeconds) {
      metrics.groupCommitEntries.observe(entries);
      metrics.durableWriteSeconds.observe(durableWriteSeconds);
      metrics.bytesWritten.inc(bytes);
    },
    onFailure(error) {
      logger.fatal({ err: error.message }, "WAL write failed");
      onFatal(error);
    },
    onDiskFull(message) {
      metrics.walDiskFull.set(message === null ? 0 : 1);
      if (message !== null) logger.error({ reason: message }, "WAL disk full: refusing appends, retrying writes until there is room");
      else logger.warn("WAL disk has room again: appends accepted");
    },
  };
}

/** Keeps one cap on gRPC messages: a read batch is never larger than the cluster's largest entry. */
function checkReadLimits(readLimits: ReadLimits, transactionLimits: TransactionLimits): ReadLimits {
  assert(readLimits.readersMax >= 1 && readLimits.readBatchEntriesMax >= 1, "read limits must be positive");
  return { ...readLimits, readBatchBytesMax: Math.min(readLimits.readBatchBytesMax, transactionLimits.entryBytesMax) };
}
