import { promises as fs } from "node:fs";
import path from "node:path";
import { Server } from "@grpc/grpc-js";
import {
  addHealthService,
  assert,
  bindServer,
  createRegistry,
  failedPrecondition,
  invalidArgument,
  grpcMessageBytesMax,
  grpcServerOptions,
  shutdownServer,
  startMetricsServer,
  type Logger,
  type MetricsServer,
  type Readiness,
  type Registry,
  type GivenTransactionLimits,
  type TransactionLimits,
  listenHost,
  withPort,
} from "@logplayer/common";
import { LogStoreService, ReplicationService } from "@logplayer/proto";
import {
  callerKey,
  channelCredentialsFor,
  logTransportSecurity,
  RefusalLog,
  serverCredentialsFor,
  serverInterceptorsFor,
  type TransportSecurity,
} from "@logplayer/tls";
import { CLUSTER_META_FILE, loadClusterMeta, writeClusterMeta, type ClusterMeta } from "./cluster-meta";
import { DedupeTable, type DedupeLimits } from "./dedupe-table";
import { createLogStoreMetrics, type LogStoreMetrics } from "./metrics";
import { createRaftMetrics, replicaReadiness } from "./raft-metrics";
import type { ReadLimits } from "./read-session";
import {
  type BlankStartIo,
  openReplication,
  repairFromPeers,
  singleVoterSetup,
  type ReplicationSetup,
} from "./replication/open-replication";
import { readSnapshotFile } from "./snapshot-file";
import { DEFAULT_REPLICATION_LIMITS, type ReplicatedLog } from "./replication/replicated-log";
import { createLogStoreService, LogStoreNode } from "./server";
import { lockDataDir } from "@logplayer/data-dir-lock";
import { Wal, type WalLimits, type WalObserver } from "@logplayer/wal";
import { DEFAULT_TRIM_PASS_INTERVAL_MS, startTrimming, type RunningTrimmer, type TrimOptions } from "./trim/start-trimming";
import { NO_RETENTION, RAFT_CATCH_UP_ENTRIES_DEFAULT, raftTrimFloor } from "@logplayer/delivery";

/** The WAL lives in this subdirectory of the data directory, next to cluster.json. */
export const WAL_DIRECTORY = "wal";

export interface LogStoreOptions {
  dataDir: string;
  /** host:port for gRPC; port 0 picks a free port. */
  listen: string;
  /** Address reported as the leader's; default: the listen host and the bound port. */
  advertise: string | undefined;
  /** Where clients reach the shards, index = shard id, reported in Status (discovery); none when empty or absent. */
  shardAddresses?: readonly string[];
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
  /** mTLS (the default) or --insecure: every server and peer channel of this replica. */
  security: TransportSecurity;
  /** Raft replication (--replica-id + --peers); undefined = one replica, the one voter of its own Raft. */
  replication?: ReplicationSetup;
  /** Trimming: retention (--retain-bytes, --retain-age) and the pass period; default: no extra retention. */
  trim?: TrimOptions;
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
  checkShardAddresses(options.shardAddresses ?? [], meta.shardMap.shardCount);
  const readLimits = checkReadLimits(options.readLimits, transactionLimits);
  const registry = createRegistry("logstore");
  // Up before the log opens, so that a probe sees a replica that is alive but still starting (a blank replica
  // waits for every peer's answer before it has a Raft node).
  let readiness: () => Readiness = () => ({ ready: false, reason: "starting: opening the WAL" });
  const metricsServer = await startMetricsServer(listenHost(options.listen), options.metricsPort, registry, { ready: () => readiness() });
  if (metricsServer !== null) logger.info({ metricsPort: metricsServer.port }, "metrics, /healthz and /readyz listening");
  try {
    const setReadiness = (r: () => Readiness): void => {
      readiness = r;
    };
    const context = { meta, created, transactionLimits, readLimits, registry, metricsServer, setReadiness };
    return await startServing(options, logger, onFatal, context);
  } catch (err: unknown) {
    await metricsServer?.close();
    throw err;
  }
}

interface StartContext {
  readonly meta: ClusterMeta;
  readonly created: boolean;
  /** The cluster's recorded limits (cluster.json), which every check uses, and the read limits checked against them. */
  readonly transactionLimits: TransactionLimits;
  readonly readLimits: ReadLimits;
  readonly registry: Registry;
  readonly metricsServer: MetricsServer | null;
  readonly setReadiness: (readiness: () => Readiness) => void;
}

async function startServing(
  options: LogStoreOptions,
  logger: Logger,
  onFatal: (error: Error) => void,
  { meta, created, transactionLimits, readLimits, registry, metricsServer, setReadiness }: StartContext,
): Promise<RunningLogStore> {
  const metrics = createLogStoreMetrics(registry);
  logTransportSecurity(logger, options.security);
  const refusals = new RefusalLog("logstore", registry, logger);
  const setup = options.replication ?? singleVoterSetup(DEFAULT_REPLICATION_LIMITS);
  const blankStartIo: BlankStartIo = {
    probeIntervalMs: BLANK_START_PROBE_INTERVAL_MS,
    channelCredentials: channelCredentialsFor(options.security),
    serveWhileDeciding: async (service) => {
      const probeServer = new Server({
        ...grpcServerOptions({ messageBytesMax: 64 * 1024, concurrentStreamsMax: 64 }),
        ...serverInterceptorsFor(options.security, refusals),
      });
      probeServer.addService(ReplicationService, service);
      await bindServer(probeServer, options.listen, serverCredentialsFor(options.security));
      return () => shutdownServer(probeServer, 1000);
    },
  };
  // A replica of a replicated cluster drops a damaged WAL suffix and refills it from its peers; a single voter refuses.
  const onDamage = repairFromPeers(setup, meta.clusterId, options.dataDir, transactionLimits, blankStartIo, logger);
  // The WAL is created before cluster.json, so cluster.json existing means the WAL must too:
  // a missing WAL is refused rather than silently restarting the log at LSN 1.
  // The newest snapshot, if any: the log may start after it (compacted), or be empty after it (a crash in the middle
  // of a snapshot install), so the WAL is opened knowing where it starts.
  const loadedSnapshot = await readSnapshotFile(options.dataDir);
  if (loadedSnapshot !== null) {
    const { index, term } = loadedSnapshot.snapshot;
    logger.info({ index: index.toString(), term: term.toString(), bytes: loadedSnapshot.bytes.length }, "snapshot loaded");
  }
  const { wal, report } = await Wal.open(
    path.join(options.dataDir, WAL_DIRECTORY),
    options.walLimits,
    walObserver(metrics, logger, onFatal),
    {
      createIfMissing: created || loadedSnapshot !== null,
      emptyStartsAfter: loadedSnapshot?.snapshot.index ?? 0n,
      ...(onDamage === undefined ? {} : { onDamage }),
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
  if (report.damage !== null) {
    const { error, keptLastLsn, bytesDropped, segmentsDropped } = report.damage;
    logger.error(
      {
        file: error.fileName,
        offset: error.offset,
        problem: error.problem,
        keptLastLsn: keptLastLsn.toString(),
        bytesDropped,
        segmentsDropped,
      },
      "WAL DAMAGED: dropped the damaged record and every entry after it; the leader refills them",
    );
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
  setReadiness(() => ({ ready: false, reason: "starting: opening the replicated log (a blank replica first waits for every peer)" }));
  let replication: ReplicatedLog;
  try {
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
      { security: options.security, refusals },
      blankStartIo,
      loadedSnapshot?.snapshot ?? null,
    );
  } catch (err: unknown) {
    await wal.close();
    throw err;
  }
  let trimming: RunningTrimmer;
  try {
    const trimOptions = options.trim ?? {
      retention: NO_RETENTION,
      passIntervalMs: DEFAULT_TRIM_PASS_INTERVAL_MS,
      catchUpEntries: RAFT_CATCH_UP_ENTRIES_DEFAULT,
    };
    const walDir = path.join(options.dataDir, WAL_DIRECTORY);
    const commitLsn = (): bigint => replication.appliedLsn;
    const raftFloor = (): bigint => raftTrimFloor(replication.status(), singleVoter, trimOptions.catchUpEntries);
    const { shardCount } = meta.shardMap;
    const compactLog = (lsn: bigint, trimPoint: bigint) => replication.compactLogTo(lsn, trimPoint);
    trimming = await startTrimming(
      trimOptions,
      options.dataDir,
      walDir,
      wal,
      shardCount,
      commitLsn,
      raftFloor,
      compactLog,
      registry,
      logger,
    );
  } catch (err: unknown) {
    replication.stop();
    await wal.close();
    throw err;
  }
  const server = new Server({
    ...grpcServerOptions({
      messageBytesMax,
      concurrentStreamsMax: Math.min(options.walLimits.appendQueueMax + readLimits.readersMax + 16, 2 ** 31 - 1),
    }),
    ...serverInterceptorsFor(options.security, refusals),
  });
  let advertiseAddress = options.advertise ?? options.listen;
  const node = new LogStoreNode(
    wal,
    {
      meta,
      replicaId: options.replicaId,
      advertiseAddress: () => advertiseAddress,
      shardAddresses: options.shardAddresses ?? [],
      transactionLimits,
      readLimits,
      appendStreamPendingMax: options.appendStreamPendingMax,
      onFatal,
      replication,
      singleVoter,
      callerOf: (call) => callerKey(call, options.security),
      trimmer: trimming.trimmer,
      ...(options.replication?.membershipLimits !== undefined ? { membershipLimits: options.replication.membershipLimits } : {}),
    },
    metrics,
    logger,
  );
  server.addService(LogStoreService, createLogStoreService(node, metrics, logger));
  // Test-only: the trimming policy that will call compactLogTo is not here yet; a process test compacts on a signal.
  if (process.env["LP_TEST_ONLY_COMPACT_ON_SIGUSR2"] === "1") {
    process.on("SIGUSR2", () => {
      node.compactLogTo(node.commitLsn).then(
        (done) =>
          logger.info(
            { snapshotIndex: done.snapshotIndex.toString(), firstLsn: done.firstLsn.toString(), segmentsDeleted: done.segmentsDeleted },
            "test-only compaction done",
          ),
        (err: unknown) => logger.warn({ err: String(err) }, "test-only compaction failed"),
      );
    });
  }
  // A single voter has no peers to hear from: it serves no Replication.
  if (!singleVoter) server.addService(ReplicationService, replication.service());
  const health = addHealthService(server);
  let grpcPort: number;
  try {
    grpcPort = await bindServer(server, options.listen, serverCredentialsFor(options.security));
    if (options.advertise === undefined) advertiseAddress = withPort(options.listen, grpcPort);
    setReadiness(() => replicaReadiness(replication.status(), node.commitLsn));
  } catch (err: unknown) {
    server.forceShutdown();
    replication.stop();
    await trimming.stop();
    await wal.close();
    throw err;
  }
  replication.start();
  const raftMetrics = createRaftMetrics(registry, String(options.replication?.replicaId ?? 1), () => replication.status());
  health.setStatus("", "SERVING");
  const close = async (): Promise<void> => {
    raftMetrics.stop();
    health.setStatus("", "NOT_SERVING");
    node.stop();
    await shutdownServer(server, options.shutdownTimeoutMs);
    await trimming.stop();
    await wal.close();
    await metricsServer?.close();
  };
  return { grpcPort, metricsPort: metricsServer?.port ?? null, meta, node, close };
}

/** How often a replica with an empty data directory asks its peers whether the cluster exists. */
const BLANK_START_PROBE_INTERVAL_MS = 200;

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

/** --shard-addresses must name every shard, or none. */
function checkShardAddresses(addresses: readonly string[], shardCount: number): void {
  if (addresses.length !== 0 && addresses.length !== shardCount) {
    throw invalidArgument(
      `--shard-addresses names ${addresses.length} shard(s), but the cluster has ${shardCount}: give one per shard, in shard-id order`,
    );
  }
}
