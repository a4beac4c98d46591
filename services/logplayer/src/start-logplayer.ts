import { type ChannelCredentials, Metadata, Server, type ChannelOptions } from "@grpc/grpc-js";
import {
  addHealthService,
  Backoff,
  bindServer,
  createRegistry,
  describeShardMap,
  describeTransactionLimits,
  failedPrecondition,
  grpcChannelOptions,
  grpcServerOptions,
  LpError,
  MESSAGE_FRAMING_BYTES,
  monotonicNs,
  DEFAULT_TRANSACTION_LIMITS,
  parseTransactionLimits,
  serviceMessageBytesMax,
  shutdownServer,
  startMetricsServer,
  type Readiness,
  Status,
  validateShardMap,
  type BackoffConfig,
  type Logger,
  type MetricsServer,
  type TransactionLimits,
  listenHost,
} from "@logplayer/common";
import type { DeliveryLimits } from "@logplayer/delivery";
import { LogStoreClient, PROTOCOL_VERSION, ShardClient, type StatusResponse } from "@logplayer/proto";
import {
  channelCredentialsFor,
  logTransportSecurity,
  RefusalLog,
  serverCredentialsFor,
  serverInterceptorsFor,
  type TransportSecurity,
} from "@logplayer/tls";
import { LogStorePool } from "./fetcher";
import { PlayerDriver } from "./player-driver";
import { createPlayerMetrics } from "./player-metrics";
import type { CommitLsnSource, PlayerClock } from "./ports";
import { TrimReporter } from "./trim-reporter";

export interface LogPlayerOptions {
  /** Every LogStore replica; reads go to any of them (committed entries only). */
  readonly logstoreAddresses: readonly string[];
  /** Index = shard id. Must match the LogStore's shard map. */
  readonly shardAddresses: readonly string[];
  readonly playerId: string;
  /** gRPC health service address. */
  readonly listen: string;
  /** 0 = any free port, -1 = off. */
  readonly metricsPort: number;
  readonly limits: DeliveryLimits;
  readonly recoveryStreamsMax: number;
  readonly ackTimeoutMs: number;
  readonly backoff: BackoffConfig;
  /** After the first shard connects, how long to wait for the others before starting the main stream. */
  readonly startWaitMs: number;
  /** --leader-move-interval-ms: a working main stream moves to the leader at most once per this long (0: never). */
  readonly leaderMoveIntervalMs?: number;
  /** --message-bytes-max when given (refused below the cluster's message cap); else derived from the cluster's limits. */
  readonly messageBytesMax: number | undefined;
  readonly statusTimeoutMs: number;
  /** mTLS (the default) or --insecure: its health server and its channels to the LogStore and the shards. */
  readonly security: TransportSecurity;
  /** How often the shards' restorable LSNs are gathered and their minimum reported to the LogStore; 0 = never (no trimming). */
  readonly trimReportIntervalMs?: number;
}

export interface RunningLogPlayer {
  readonly grpcPort: number;
  readonly metricsPort: number | null;
  readonly clusterId: string;
  close(): Promise<void>;
}

const SHUTDOWN_GRPC_MS = 2000;

/** Starts the health server and metrics, learns the cluster from the LogStore, then connects to every shard. */
export async function startLogPlayer(options: LogPlayerOptions, logger: Logger): Promise<RunningLogPlayer> {
  const registry = createRegistry("logplayer");
  logTransportSecurity(logger, options.security);
  const server = new Server({
    ...grpcServerOptions({ messageBytesMax: 64 * 1024, concurrentStreamsMax: 16 }),
    ...serverInterceptorsFor(options.security, new RefusalLog("player", registry, logger)),
  });
  const health = addHealthService(server);
  const grpcPort = await bindServer(server, options.listen, serverCredentialsFor(options.security));
  const host = listenHost(options.listen);
  let metricsServer: MetricsServer | null = null;
  // Ready once the main stream has its start position: before, nothing is being delivered.
  let readiness = (): Readiness => ({ ready: false, reason: "learning the cluster from the LogStore" });
  try {
    metricsServer = await startMetricsServer(host, options.metricsPort, registry, { ready: () => readiness() });
    // Status is small; the channels that carry entries are sized once the cluster's limits are known.
    const channelCredentials = channelCredentialsFor(options.security);
    const statusPool = logStorePool(options, grpcChannelOptions(STATUS_MESSAGE_BYTES_MAX), channelCredentials);
    const status = await fetchStatus(statusPool, options, logger).finally(() => statusPool.close());
    const transactionLimits = clusterLimits(status);
    const messageBytesMax = serviceMessageBytesMax(options.messageBytesMax, transactionLimits);
    if (options.limits.batchBytesMax + MESSAGE_FRAMING_BYTES > messageBytesMax) {
      throw failedPrecondition(
        `--batch-bytes-max ${options.limits.batchBytesMax} leaves no headroom under the message cap ${messageBytesMax}`,
      );
    }
    const channelOptions = grpcChannelOptions(messageBytesMax);
    const logstore = logStorePool(options, channelOptions, channelCredentials);
    const logFirstLsn = watchLogFirstLsn(logstore.clients, status.firstLsn, options.statusTimeoutMs, logger);
    const player = createDriver(
      options,
      { status, transactionLimits, messageBytesMax, logFirstLsn: logFirstLsn.current },
      logstore,
      { channelOptions, channelCredentials },
      logger,
    );
    player.useMetrics(createPlayerMetrics(registry, player.core.dispatcher));
    // The main stream starts on the leader when the replica that answered named one.
    player.start(status.commitLsn, status.leaderAddress);
    const reporter = startTrimReporter(options, status.clusterId, channelCredentials, logger);
    readiness = () =>
      player.core.dispatcher.currentIndex === null
        ? { ready: false, reason: "waiting for the shards before starting the main stream" }
        : { ready: true };
    health.setStatus("", "SERVING");
    const close = async (): Promise<void> => {
      health.setStatus("", "NOT_SERVING");
      logFirstLsn.stop();
      reporter?.stop();
      player.close();
      await Promise.all([metricsServer?.close(), shutdownServer(server, SHUTDOWN_GRPC_MS)]);
    };
    return { grpcPort, metricsPort: metricsServer?.port ?? null, clusterId: status.clusterId, close };
  } catch (err: unknown) {
    await metricsServer?.close();
    server.forceShutdown();
    throw err;
  }
}

/** The trim reporter on its own small channels (Status and ReportTrimPoint only); null when off. */
function startTrimReporter(
  options: LogPlayerOptions,
  clusterId: string,
  channelCredentials: ChannelCredentials,
  logger: Logger,
): { stop(): void } | null {
  const intervalMs = options.trimReportIntervalMs ?? 0;
  if (intervalMs <= 0) return null;
  const channelOptions = grpcChannelOptions(STATUS_MESSAGE_BYTES_MAX);
  const shards = options.shardAddresses.map((address) => new ShardClient(address, channelCredentials, channelOptions));
  const replicas = options.logstoreAddresses.map((address) => ({
    address,
    client: new LogStoreClient(address, channelCredentials, channelOptions),
  }));
  const reporter = new TrimReporter(
    { clusterId, playerId: options.playerId, shards, replicas, intervalMs, callTimeoutMs: options.statusTimeoutMs },
    logger,
  );
  reporter.start();
  return {
    stop: () => {
      reporter.stop();
      for (const shard of shards) shard.close();
      for (const replica of replicas) replica.client.close();
    },
  };
}

/** A Status answer (shard map, replicas, limits) fits in far less. */
const STATUS_MESSAGE_BYTES_MAX = 1024 * 1024;

function logStorePool(
  options: LogPlayerOptions,
  channelOptions: ChannelOptions,
  channelCredentials: ChannelCredentials,
): LogStorePool<LogStoreClient> {
  return new LogStorePool(
    options.logstoreAddresses.map((address) => ({
      address,
      client: new LogStoreClient(address, channelCredentials, channelOptions),
    })),
  );
}

/** The cluster's limits from Status; a LogStore that predates recorded limits runs with the defaults. */
function clusterLimits(status: StatusResponse): TransactionLimits {
  if (status.limits === undefined) return DEFAULT_TRANSACTION_LIMITS;
  const limits = parseTransactionLimits(status.limits);
  if (limits === null) throw failedPrecondition(`LogStore status has malformed limits: ${JSON.stringify(status.limits)}`);
  return limits;
}

/** Retries Status until the LogStore answers; a refused or mismatched cluster is fatal. */
async function fetchStatus(pool: LogStorePool<LogStoreClient>, options: LogPlayerOptions, logger: Logger): Promise<StatusResponse> {
  const backoff = new Backoff(options.backoff);
  for (;;) {
    const client = pool.current;
    try {
      const status = await new Promise<StatusResponse>((resolve, reject) => {
        const deadline = new Date(Date.now() + options.statusTimeoutMs);
        client.status({}, new Metadata(), { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
      });
      checkStatus(status, options);
      return status;
    } catch (err: unknown) {
      const error = LpError.from(err);
      if (error.code === Status.FAILED_PRECONDITION) throw error;
      const address = pool.currentAddress;
      pool.failed(client);
      const delayMs = backoff.nextDelayMs();
      logger.warn(
        { logstore: address, code: Status[error.code], err: error.message, retryInMs: delayMs },
        "LogStore status unavailable; retrying",
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

function checkStatus(status: StatusResponse, options: LogPlayerOptions): void {
  if (status.protocolVersion !== PROTOCOL_VERSION) {
    throw failedPrecondition(`LogStore speaks protocol version ${status.protocolVersion}; this LogPlayer speaks ${PROTOCOL_VERSION}`);
  }
  const map = status.shardMap;
  if (map === undefined) throw failedPrecondition("LogStore status has no shard map");
  validateShardMap(map);
  if (map.shardCount !== options.shardAddresses.length) {
    throw failedPrecondition(
      `--shards lists ${options.shardAddresses.length} shard(s) but the LogStore's shard map ${describeShardMap(map)} has ${map.shardCount}`,
    );
  }
}

/**
 * Status of every replica at once, within the status timeout: the highest
 * commit LSN reported (a follower may lag, none reports more than is
 * committed), or null when none answered.
 */
function replicasCommitLsn(clients: readonly LogStoreClient[], timeoutMs: number, logger: Logger): CommitLsnSource {
  const askOne = (client: LogStoreClient): Promise<bigint | null> =>
    new Promise((resolve) => {
      const deadline = new Date(Date.now() + timeoutMs);
      client.status({}, new Metadata(), { deadline }, (err, response) => {
        if (err) logger.debug({ err: err.message }, "commit LSN check: a LogStore replica did not answer");
        resolve(err ? null : response.commitLsn);
      });
    });
  return {
    commitLsn(done) {
      void Promise.all(clients.map(askOne)).then((answers) => {
        let highest: bigint | null = null;
        for (const answer of answers) if (answer !== null && (highest === null || answer > highest)) highest = answer;
        done(highest);
      });
    },
  };
}

/** How often the LogStore's first stored LSN is asked again (it only grows, as the log is trimmed). */
const LOG_FIRST_LSN_REFRESH_MS = 5000;

/**
 * The LogStore's first stored LSN, for the shards' hellos: the highest any
 * replica reported (a replica may trim later than another, never earlier
 * than is safe), asked again every LOG_FIRST_LSN_REFRESH_MS.
 */
function watchLogFirstLsn(
  clients: readonly LogStoreClient[],
  initial: bigint,
  timeoutMs: number,
  logger: Logger,
): { current: () => bigint; stop: () => void } {
  let highest = initial;
  const refresh = (): void => {
    for (const client of clients) {
      const deadline = new Date(Date.now() + timeoutMs);
      client.status({}, new Metadata(), { deadline }, (err, response) => {
        if (err) logger.debug({ err: err.message }, "first LSN check: a LogStore replica did not answer");
        else if (response.firstLsn > highest) highest = response.firstLsn;
      });
    }
  };
  const timer = setInterval(refresh, LOG_FIRST_LSN_REFRESH_MS);
  timer.unref();
  return { current: () => highest, stop: () => clearInterval(timer) };
}

/** The Node clock: monotonic time and real timers. */
const NODE_CLOCK: PlayerClock = {
  nowMs: () => performance.now(),
  nowNs: monotonicNs,
  setTimer: (delayMs, fire) => setTimeout(fire, delayMs),
  clearTimer: (timer) => clearTimeout(timer as NodeJS.Timeout),
};

/** The driver on gRPC: a ShardClient per shard, the LogStore pool, Node's clock. */
function createDriver(
  options: LogPlayerOptions,
  cluster: { status: StatusResponse; transactionLimits: TransactionLimits; messageBytesMax: number; logFirstLsn: () => bigint },
  logstore: LogStorePool<LogStoreClient>,
  channel: { readonly channelOptions: ChannelOptions; readonly channelCredentials: ChannelCredentials },
  logger: Logger,
): PlayerDriver {
  const { status, transactionLimits } = cluster;
  const shardMap = status.shardMap!;
  const shards = options.shardAddresses.map((address) => ({
    address,
    connector: new ShardClient(address, channel.channelCredentials, channel.channelOptions),
  }));
  const config = {
    clusterId: status.clusterId,
    shardMap,
    playerId: options.playerId,
    limits: options.limits,
    transactionLimits,
    logFirstLsn: cluster.logFirstLsn,
    recoveryStreamsMax: options.recoveryStreamsMax,
    ackTimeoutMs: options.ackTimeoutMs,
    backoff: options.backoff,
    startWaitMs: options.startWaitMs,
    ...(options.leaderMoveIntervalMs === undefined ? {} : { leaderMoveIntervalMs: options.leaderMoveIntervalMs }),
    random: Math.random,
  };
  const clients = logstore.clients;
  const commitLsn = replicasCommitLsn(clients, options.statusTimeoutMs, logger);
  const driver = new PlayerDriver(config, { shards, logstore, commitLsn, clock: NODE_CLOCK }, logger);
  logger.info(
    {
      clusterId: status.clusterId,
      shardMap: describeShardMap(shardMap),
      commitLsn: status.commitLsn.toString(),
      playerId: options.playerId,
      limits: describeTransactionLimits(transactionLimits),
      messageBytesMax: cluster.messageBytesMax,
    },
    "cluster learned from the LogStore",
  );
  return driver;
}
