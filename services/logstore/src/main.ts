#!/usr/bin/env node
import { Command, type Option } from "commander";
import {
  exitOnShutdownSignals,
  http2WindowOption,
  installHttp2Window,
  createLogger,
  DEFAULT_TRANSACTION_LIMITS,
  envOption,
  LOG_LEVELS,
  parseAddress,
  parseAddressList,
  parseIntegerInRange,
  runMain,
  SHARD_COUNT_MAX,
  TRANSACTION_LIMIT_RANGES,
  type LogLevel,
  parseFlags,
  listenHost,
} from "@logplayer/common";
import { type TlsFlags, transportSecurityFromFlags, withTlsOptions } from "@logplayer/tls";
import { DEFAULT_APPEND_STREAM_PENDING_MAX } from "./append-stream";
import { DEFAULT_DEDUPE_LIMITS } from "./dedupe-table";
import { DEFAULT_READ_LIMITS } from "./read-session";
import { DEFAULT_MEMBERSHIP_ADMIN_LIMITS } from "./replication/membership-admin";
import { parsePeers, type Peer } from "./replication/peers";
import { DEFAULT_REPLICATION_LIMITS } from "./replication/replicated-log";
import { DEFAULT_SNAPSHOT_TRANSFER_LIMITS } from "./replication/snapshot-transfer";
import { startLogStore, type LogStoreOptions } from "./start-logstore";
import { parseByteSize, parseDuration } from "./trim/retention-flags";
import { DEFAULT_TRIM_PASS_INTERVAL_MS } from "./trim/start-trimming";
import { RAFT_CATCH_UP_ENTRIES_DEFAULT } from "@logplayer/delivery";
import { DEFAULT_WAL_LIMITS, SEGMENT_BYTES_LIMIT, SEGMENT_BYTES_MIN } from "@logplayer/wal";

// Graceful shutdown is bounded to about 5 s: open calls get this long, then
// are cancelled; the hard limit exits regardless.
const SHUTDOWN_TIMEOUT_MS = 3000;
const SHUTDOWN_HARD_LIMIT_MS = 5000;
const BYTES_LIMIT = 2 ** 31 - 1;

interface LogStoreFlags extends TlsFlags {
  dataDir: string;
  listen: string;
  advertise?: string;
  shardAddresses?: string[];
  metricsPort: number;
  replicaId: string;
  shardCount?: number;
  clusterId?: string;
  segmentBytesMax: number;
  cacheBytesMax: number;
  appendQueueMax: number;
  appendQueueBytesMax: number;
  entryBytesMax?: number;
  mutationsMax?: number;
  keyBytesMax?: number;
  valueBytesMax?: number;
  readBatchBytesMax: number;
  readBatchEntriesMax: number;
  readersMax: number;
  readersPerCallerMax: number;
  appendStreamPendingMax: number;
  peers?: Peer[];
  join?: boolean;
  tickMs: number;
  electionTicks: number;
  peerStreamBytesMax: number;
  snapshotChunkBytesMax: number;
  snapshotBytesMax: number;
  snapshotTransferTimeoutMs: number;
  learnerCatchUpTimeoutMs: number;
  dedupeClientsMax: number;
  dedupeSessionIdleEntriesMax: number;
  dedupeLookupScanEntriesMax: number;
  dedupeEndedClientsMax: number;
  http2WindowBytes: number;
  retainBytes: number;
  retainAge: number;
  trimCatchUpEntries: number;
  logLevel: LogLevel;
}

/** An integer flag with a numeric default (commander does not run defaults through the parser). */
function intOption(flags: string, description: string, env: string, defaultValue: number, min: number, max: number): Option {
  const name = flags.split(" ")[0]!;
  return envOption(flags, description, env)
    .argParser(parseIntegerInRange(name, min, max))
    .default(defaultValue);
}

/**
 * A cluster limit: recorded in cluster.json on the first start (the default
 * when not given); a later start that gives another value is refused.
 */
function limitOption(name: keyof typeof TRANSACTION_LIMIT_RANGES, description: string, env: string): Option {
  const { flag, min, max } = TRANSACTION_LIMIT_RANGES[name];
  return envOption(
    `${flag} <n>`,
    `${description}: the cluster's limit, fixed at creation (default ${DEFAULT_TRANSACTION_LIMITS[name]})`,
    env,
  ).argParser(parseIntegerInRange(flag, min, max));
}

function buildCommand(): Command {
  const int = (name: string, min: number, max: number) => parseIntegerInRange(name, min, max);
  const wal = DEFAULT_WAL_LIMITS;
  const read = DEFAULT_READ_LIMITS;
  const command = new Command("logstore")
    .description(
      "LogPlayer LogStore: the durable write-ahead log. Appends are acknowledged after fsync; Read streams committed entries and tails new commits.",
    )
    .addOption(envOption("--data-dir <dir>", "data directory (cluster.json and wal/)", "LP_DATA_DIR", "./data/logstore"))
    .addOption(
      envOption("--listen <host:port>", "gRPC address; port 0 picks a free port", "LP_LISTEN", "127.0.0.1:7100").argParser(parseAddress),
    )
    .addOption(
      envOption(
        "--advertise <host:port>",
        "address reported as the leader's in Status (default: listen host and bound port)",
        "LP_ADVERTISE",
      ).argParser(parseAddress),
    )
    .addOption(
      envOption(
        "--shard-addresses <addresses>",
        "where clients reach the shards, comma-separated host:port in shard-id order: reported in Status so that a client " +
          "learns the cluster from one LogStore address (default: none reported)",
        "LP_SHARD_ADDRESSES",
      ).argParser(parseAddressList),
    )
    .addOption(
      intOption(
        "--metrics-port <n>",
        "Prometheus /metrics port on the listen host; 0 = any free port, -1 = off",
        "LP_METRICS_PORT",
        9100,
        -1,
        65535,
      ),
    )
    .addOption(envOption("--replica-id <id>", "this replica's id, reported in Status", "LP_REPLICA_ID", "1"))
    .addOption(
      envOption(
        "--shard-count <n>",
        "shards in the cluster: required on first start, must match cluster.json later",
        "LP_SHARD_COUNT",
      ).argParser(int("--shard-count", 1, SHARD_COUNT_MAX)),
    )
    .addOption(
      envOption("--cluster-id <id>", "cluster id on first start (default: a random UUID); must match cluster.json later", "LP_CLUSTER_ID"),
    )
    .addOption(
      intOption(
        "--segment-bytes-max <n>",
        "WAL segment size before rolling to a new file",
        "LP_SEGMENT_BYTES_MAX",
        wal.segmentBytesMax,
        SEGMENT_BYTES_MIN,
        SEGMENT_BYTES_LIMIT,
      ),
    )
    .addOption(
      intOption(
        "--cache-bytes-max <n>",
        "bytes of recent entries kept in memory for tailing readers",
        "LP_CACHE_BYTES_MAX",
        wal.cacheBytesMax,
        0,
        BYTES_LIMIT,
      ),
    )
    .addOption(
      intOption(
        "--append-queue-max <n>",
        "appends accepted but not yet durable; more are refused with RESOURCE_EXHAUSTED",
        "LP_APPEND_QUEUE_MAX",
        wal.appendQueueMax,
        1,
        1_000_000,
      ),
    )
    .addOption(
      intOption(
        "--append-queue-bytes-max <n>",
        "bytes of appends accepted but not yet durable",
        "LP_APPEND_QUEUE_BYTES_MAX",
        wal.appendQueueBytesMax,
        1,
        BYTES_LIMIT,
      ),
    )
    .addOption(limitOption("entryBytesMax", "largest encoded log entry (one transaction)", "LP_ENTRY_BYTES_MAX"))
    .addOption(limitOption("mutationsMax", "mutations in one transaction", "LP_MUTATIONS_MAX"))
    .addOption(limitOption("keyBytesMax", "UTF-8 bytes in one key", "LP_KEY_BYTES_MAX"))
    .addOption(limitOption("valueBytesMax", "bytes in one value (PUT, and as grown by APPEND)", "LP_VALUE_BYTES_MAX"))
    .addOption(
      intOption(
        "--read-batch-bytes-max <n>",
        "entry bytes per ReadResponse (at most --entry-bytes-max)",
        "LP_READ_BATCH_BYTES_MAX",
        read.readBatchBytesMax,
        1,
        64 * 1024 * 1024,
      ),
    )
    .addOption(
      intOption(
        "--read-batch-entries-max <n>",
        "entries per ReadResponse",
        "LP_READ_BATCH_ENTRIES_MAX",
        read.readBatchEntriesMax,
        1,
        1_000_000,
      ),
    )
    .addOption(
      intOption(
        "--readers-max <n>",
        "concurrent Read streams; more are refused with RESOURCE_EXHAUSTED",
        "LP_READERS_MAX",
        read.readersMax,
        1,
        100_000,
      ),
    )
    .addOption(
      intOption(
        "--readers-per-caller-max <n>",
        "concurrent Read streams of one caller (its certificate's identity; its host with --insecure)",
        "LP_READERS_PER_CALLER_MAX",
        read.readersPerCallerMax,
        1,
        100_000,
      ),
    )
    .addOption(
      intOption(
        "--append-stream-pending-max <n>",
        "appends in flight on one AppendStream; past it the LogStore stops reading that stream until answers drain",
        "LP_APPEND_STREAM_PENDING_MAX",
        DEFAULT_APPEND_STREAM_PENDING_MAX,
        1,
        1_000_000,
      ),
    )
    .addOption(
      envOption(
        "--peers <list>",
        "Raft replication: every replica as id=host:port,... (this one included); omit for a single replica",
        "LP_PEERS",
      ).argParser(parsePeers),
    )
    .addOption(
      envOption(
        "--join",
        "with --peers and an empty data directory: if the cluster already exists, catch up from its leader as a " +
          "non-voter and vote again once caught up (without it such a replica refuses to start: it may have lost its disk)",
        "LP_JOIN",
      ),
    )
    .addOption(
      intOption("--tick-ms <n>", "Raft tick length in ms (replicated mode)", "LP_TICK_MS", DEFAULT_REPLICATION_LIMITS.tickMs, 1, 10_000),
    )
    .addOption(
      intOption(
        "--election-ticks <n>",
        "ticks without a leader before campaigning, randomized up to 2x (replicated mode)",
        "LP_ELECTION_TICKS",
        DEFAULT_REPLICATION_LIMITS.electionTicks,
        2,
        1000,
      ),
    )
    .addOption(
      intOption(
        "--peer-stream-bytes-max <n>",
        "bytes of Raft messages queued or being written to one peer's stream; past it new ones are dropped and Raft resends (replicated mode)",
        "LP_PEER_STREAM_BYTES_MAX",
        DEFAULT_REPLICATION_LIMITS.peerStreamBytesMax,
        64 * 1024,
        Number.MAX_SAFE_INTEGER,
      ),
    )
    .addOption(
      intOption(
        "--snapshot-chunk-bytes-max <n>",
        "bytes of snapshot data per InstallSnapshot chunk, sent and accepted (replicated mode)",
        "LP_SNAPSHOT_CHUNK_BYTES_MAX",
        DEFAULT_SNAPSHOT_TRANSFER_LIMITS.chunkBytesMax,
        4096,
        16 * 1024 * 1024,
      ),
    )
    .addOption(
      intOption(
        "--snapshot-bytes-max <n>",
        "largest snapshot a replica sends or accepts; a bigger one is refused before any byte is kept (replicated mode)",
        "LP_SNAPSHOT_BYTES_MAX",
        DEFAULT_SNAPSHOT_TRANSFER_LIMITS.snapshotBytesMax,
        1024 * 1024,
        Number.MAX_SAFE_INTEGER,
      ),
    )
    .addOption(
      intOption(
        "--learner-catch-up-timeout-ms <n>",
        "AddMember on the leader: how long a new learner may take to hold the leader's commit LSN before its promotion " +
          "is given up (DEADLINE_EXCEEDED; it stays a learner, AddMember again resumes)",
        "LP_LEARNER_CATCH_UP_TIMEOUT_MS",
        DEFAULT_MEMBERSHIP_ADMIN_LIMITS.learnerCatchUpTimeoutMs,
        1000,
        24 * 60 * 60 * 1000,
      ),
    )
    .addOption(
      intOption(
        "--snapshot-transfer-timeout-ms <n>",
        "deadline of one InstallSnapshot transfer (replicated mode)",
        "LP_SNAPSHOT_TRANSFER_TIMEOUT_MS",
        DEFAULT_SNAPSHOT_TRANSFER_LIMITS.transferTimeoutMs,
        1000,
        24 * 60 * 60 * 1000,
      ),
    )
    .addOption(
      intOption(
        "--dedupe-clients-max <n>",
        "clients remembered for idempotent appends (least recently written forgotten first)",
        "LP_DEDUPE_CLIENTS_MAX",
        DEFAULT_DEDUPE_LIMITS.clientsMax,
        1,
        10_000_000,
      ),
    )
    .addOption(
      intOption(
        "--dedupe-session-idle-entries-max <n>",
        "a client session unused for more than this many log entries expires (its retries get SESSION_EXPIRED)",
        "LP_DEDUPE_SESSION_IDLE_ENTRIES_MAX",
        Number(DEFAULT_DEDUPE_LIMITS.sessionIdleEntriesMax),
        1,
        Number.MAX_SAFE_INTEGER,
      ),
    )
    .addOption(
      intOption(
        "--dedupe-lookup-scan-entries-max <n>",
        "log entries one LookupAppend may scan for an append whose session is gone",
        "LP_DEDUPE_LOOKUP_SCAN_ENTRIES_MAX",
        DEFAULT_DEDUPE_LIMITS.lookupScanEntriesMax,
        1,
        1_000_000_000,
      ),
    )
    .addOption(
      intOption(
        "--dedupe-ended-clients-max <n>",
        "client ids whose session ended, remembered so that an unregistered retry of client_seq 1 is refused (0: none)",
        "LP_DEDUPE_ENDED_CLIENTS_MAX",
        DEFAULT_DEDUPE_LIMITS.endedClientsMax,
        0,
        10_000_000,
      ),
    )
    .addOption(
      envOption(
        "--retain-bytes <size>",
        "WAL to keep for late readers even below the trim point (e.g. 10GiB); never less than the shards need",
        "LP_RETAIN_BYTES",
      )
        .argParser(parseByteSize("--retain-bytes"))
        .default(0),
    )
    .addOption(
      envOption(
        "--retain-age <duration>",
        "keep WAL segments written within this long (e.g. 6h, 7d) even below the trim point; never less than the shards need",
        "LP_RETAIN_AGE",
      )
        .argParser(parseDuration("--retain-age"))
        .default(0),
    )
    .addOption(
      intOption(
        "--trim-catch-up-entries <n>",
        "a leader keeps the log for replicas at most this many entries behind; further behind, they catch up by snapshot",
        "LP_TRIM_CATCH_UP_ENTRIES",
        RAFT_CATCH_UP_ENTRIES_DEFAULT,
        0,
        1_000_000_000,
      ),
    )
    .addOption(http2WindowOption())
    .addOption(envOption("--log-level <level>", `log level (${LOG_LEVELS.join(", ")})`, "LP_LOG_LEVEL", "info").choices(LOG_LEVELS));
  return withTlsOptions(command);
}

function toOptions(flags: LogStoreFlags): LogStoreOptions {
  return {
    dataDir: flags.dataDir,
    listen: flags.listen,
    advertise: flags.advertise,
    shardAddresses: flags.shardAddresses ?? [],
    metricsPort: flags.metricsPort,
    replicaId: flags.replicaId,
    shardCount: flags.shardCount,
    clusterId: flags.clusterId,
    walLimits: {
      segmentBytesMax: flags.segmentBytesMax,
      cacheBytesMax: flags.cacheBytesMax,
      appendQueueMax: flags.appendQueueMax,
      appendQueueBytesMax: flags.appendQueueBytesMax,
    },
    transactionLimits: {
      entryBytesMax: flags.entryBytesMax,
      mutationsMax: flags.mutationsMax,
      keyBytesMax: flags.keyBytesMax,
      valueBytesMax: flags.valueBytesMax,
    },
    readLimits: {
      // Capped at the cluster's entry_bytes_max once cluster.json is read.
      readBatchBytesMax: flags.readBatchBytesMax,
      readBatchEntriesMax: flags.readBatchEntriesMax,
      readersMax: flags.readersMax,
      readersPerCallerMax: flags.readersPerCallerMax,
    },
    appendStreamPendingMax: flags.appendStreamPendingMax,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    dedupeLimits: {
      ...DEFAULT_DEDUPE_LIMITS,
      clientsMax: flags.dedupeClientsMax,
      sessionIdleEntriesMax: BigInt(flags.dedupeSessionIdleEntriesMax),
      lookupScanEntriesMax: flags.dedupeLookupScanEntriesMax,
      endedClientsMax: flags.dedupeEndedClientsMax,
    },
    security: transportSecurityFromFlags(flags, {
      role: "logstore-replica",
      name: flags.replicaId,
      listenHosts: [listenHost(flags.listen)],
    }),
    ...(flags.peers !== undefined ? { replication: replicationSetup(flags, flags.peers) } : {}),
    trim: {
      retention: { retainBytes: flags.retainBytes, retainAgeMs: flags.retainAge },
      passIntervalMs: DEFAULT_TRIM_PASS_INTERVAL_MS,
      catchUpEntries: flags.trimCatchUpEntries,
    },
  };
}

function replicationSetup(flags: LogStoreFlags, peers: Peer[]): NonNullable<LogStoreOptions["replication"]> {
  const replicaId = Number(flags.replicaId);
  if (!/^\d{1,9}$/.test(flags.replicaId) || replicaId <= 0) {
    throw new Error(`--replica-id must be a positive integer with --peers, got "${flags.replicaId}"`);
  }
  return {
    replicaId,
    peers,
    join: flags.join === true,
    limits: {
      ...DEFAULT_REPLICATION_LIMITS,
      tickMs: flags.tickMs,
      electionTicks: flags.electionTicks,
      peerStreamBytesMax: flags.peerStreamBytesMax,
    },
    snapshotLimits: {
      chunkBytesMax: flags.snapshotChunkBytesMax,
      snapshotBytesMax: flags.snapshotBytesMax,
      transferTimeoutMs: flags.snapshotTransferTimeoutMs,
    },
    membershipLimits: { ...DEFAULT_MEMBERSHIP_ADMIN_LIMITS, learnerCatchUpTimeoutMs: flags.learnerCatchUpTimeoutMs },
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(buildCommand(), process.argv).opts<LogStoreFlags>();
  installHttp2Window(flags.http2WindowBytes);
  const logger = createLogger("logstore", flags.logLevel);
  const onFatal = (error: Error): void => {
    logger.fatal({ err: error.message, stack: error.stack }, "fatal error; exiting");
    process.exit(1);
  };
  const logStore = await startLogStore(toOptions(flags), logger, onFatal);
  const { node } = logStore;
  logger.info(
    {
      grpcPort: logStore.grpcPort,
      metricsPort: logStore.metricsPort ?? -1,
      clusterId: logStore.meta.clusterId,
      shardCount: logStore.meta.shardMap.shardCount,
      commitLsn: node.commitLsn.toString(),
      dataDir: flags.dataDir,
    },
    "ready",
  );
  exitOnShutdownSignals(
    logger,
    async () => {
      await logStore.close();
      return { commitLsn: node.commitLsn.toString() };
    },
    SHUTDOWN_HARD_LIMIT_MS,
  );
}

runMain("logstore", main);
