#!/usr/bin/env node
import { Command, InvalidArgumentError, type Option } from "commander";
import {
  exitOnShutdownSignals,
  http2WindowOption,
  installHttp2Window,
  createLogger,
  envOption,
  LOG_LEVELS,
  parseAddress,
  parseIntegerInRange,
  runMain,
  SHARD_COUNT_MAX,
  TRANSACTION_LIMIT_RANGES,
  DEFAULT_MESSAGE_BYTES_MAX,
  type LogLevel,
  parseFlags,
  listenHost,
} from "@logplayer/common";
import { type TlsFlags, transportSecurityFromFlags, withTlsOptions } from "@logplayer/tls";
import { DEFAULT_BACKUP_KEEP, DEFAULT_BACKUP_STEP_PAGES } from "./backups";
import { startShard, type ShardOptions } from "./start-shard";
import {
  DEFAULT_PAGE_BYTES,
  DEFAULT_SQLITE_CACHE_BYTES,
  DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
  isValidPageBytes,
  PAGE_BYTES_MAX,
  PAGE_BYTES_MIN,
  SQLITE_CACHE_BYTES_MIN,
} from "./store";

/** Ports are derived from the shard id unless given: 7300 + id and 9300 + id. */
const GRPC_PORT_BASE = 7300;
const METRICS_PORT_BASE = 9300;
// A graceful shutdown is bounded to about 5 s in all: calls get this long to
// finish, then the server cancels them and the process exits anyway.
const SHUTDOWN_TIMEOUT_MS = 3000;
const SHUTDOWN_HARD_LIMIT_MS = 5000;

interface ShardFlags extends TlsFlags {
  shardId: number;
  shardCount?: number;
  clusterId?: string;
  dataDir?: string;
  listen?: string;
  metricsPort?: number;
  batchPartsMax: number;
  deliveryStreamsMax: number;
  deliveryStreamsPerCallerMax: number;
  readWaitersMax: number;
  readWaitersPerCallerMax: number;
  readWaitMsMax: number;
  scanItemsMax: number;
  scanBytesMax: number;
  messageBytesMax?: number;
  entryBytesMax?: number;
  mutationsMax?: number;
  keyBytesMax?: number;
  valueBytesMax?: number;
  checkpointIntervalMs: number;
  walAutocheckpointPages: number;
  sqlitePageBytes: number;
  sqliteCacheBytes: number;
  http2WindowBytes: number;
  logLevel: LogLevel;
  backupDir?: string;
  backupIntervalMs?: number;
  backupKeep: number;
  backupStepPages: number;
  restoreFrom?: string;
}

/** An integer flag in [min, max], also read from `env`, with an optional default. */
function intOption(flags: string, description: string, env: string, min: number, max: number, defaultValue?: number): Option {
  const name = flags.split(" ")[0]!;
  const option = envOption(flags, description, env).argParser(parseIntegerInRange(name, min, max));
  return defaultValue === undefined ? option : option.default(defaultValue);
}

/**
 * A cluster limit flag: no default, because the value is the cluster's
 * (recorded on the first start, defaults for those not given) and a value
 * given later must equal the record.
 */
function limitOption(name: keyof typeof TRANSACTION_LIMIT_RANGES, description: string, env: string): Option {
  const { flag, min, max } = TRANSACTION_LIMIT_RANGES[name];
  return intOption(`${flag} <n>`, `${description}: the cluster's limit, the LogStore's value (recorded on the first start)`, env, min, max);
}

function parsePageBytes(value: string): number {
  const pageBytes = parseIntegerInRange("--sqlite-page-bytes", PAGE_BYTES_MIN, PAGE_BYTES_MAX)(value);
  if (!isValidPageBytes(pageBytes)) throw new InvalidArgumentError(`--sqlite-page-bytes must be a power of two, got ${value}`);
  return pageBytes;
}

function buildCommand(): Command {
  const MiB = 1024 * 1024;
  const command = new Command("shard")
    .description("LogPlayer shard: a SQLite key-value store that applies delivered parts exactly once and serves read-your-writes reads.")
    .addOption(
      intOption(
        "--shard-id <n>",
        "this shard's id (required; fixed for the data directory)",
        "LP_SHARD_ID",
        0,
        SHARD_COUNT_MAX - 1,
      ).makeOptionMandatory(),
    )
    .addOption(
      intOption(
        "--shard-count <n>",
        "shards in the cluster (required on the first start; must match the LogStore's shard map)",
        "LP_SHARD_COUNT",
        1,
        SHARD_COUNT_MAX,
      ),
    )
    .addOption(envOption("--cluster-id <id>", "cluster id (required on the first start; must match the LogStore's)", "LP_CLUSTER_ID"))
    .addOption(envOption("--data-dir <dir>", "data directory (default: ./data/shard-<id>)", "LP_DATA_DIR"))
    .addOption(
      envOption(
        "--listen <host:port>",
        `gRPC address; port 0 picks a free port (default: 127.0.0.1:<${GRPC_PORT_BASE}+id>)`,
        "LP_LISTEN",
      ).argParser(parseAddress),
    )
    .addOption(
      intOption(
        "--metrics-port <n>",
        `/metrics port on the listen host; 0 = any free port, -1 = off (default: ${METRICS_PORT_BASE}+id)`,
        "LP_METRICS_PORT",
        -1,
        65535,
      ),
    )
    .addOption(intOption("--batch-parts-max <n>", "parts accepted in one delivered batch", "LP_BATCH_PARTS_MAX", 1, 1_000_000, 4096))
    .addOption(intOption("--delivery-streams-max <n>", "Deliver streams open at once", "LP_DELIVERY_STREAMS_MAX", 1, 1024, 8))
    .addOption(
      intOption(
        "--delivery-streams-per-caller-max <n>",
        "Deliver streams of one caller (its certificate's identity; its host with --insecure)",
        "LP_DELIVERY_STREAMS_PER_CALLER_MAX",
        1,
        1024,
        4,
      ),
    )
    .addOption(intOption("--read-waiters-max <n>", "reads waiting for min_lsn at once", "LP_READ_WAITERS_MAX", 1, 1_000_000, 10_000))
    .addOption(
      intOption(
        "--read-waiters-per-caller-max <n>",
        "reads of one caller waiting for min_lsn at once",
        "LP_READ_WAITERS_PER_CALLER_MAX",
        1,
        1_000_000,
        5_000,
      ),
    )
    .addOption(
      intOption(
        "--read-wait-ms-max <ms>",
        "longest a read waits for min_lsn (the call deadline may cut it shorter)",
        "LP_READ_WAIT_MS_MAX",
        1,
        3_600_000,
        10_000,
      ),
    )
    .addOption(intOption("--scan-items-max <n>", "items in one Scan response", "LP_SCAN_ITEMS_MAX", 1, 1_000_000, 1000))
    .addOption(
      intOption("--scan-bytes-max <n>", "approximate key+value bytes in one Scan response", "LP_SCAN_BYTES_MAX", 1, 1024 * MiB, 4 * MiB),
    )
    .addOption(
      intOption(
        "--message-bytes-max <n>",
        "largest gRPC message either way (bounds a delivered batch); at least the cluster's message cap " +
          `(default: the larger of ${DEFAULT_MESSAGE_BYTES_MAX} and that cap)`,
        "LP_MESSAGE_BYTES_MAX",
        MiB,
        1024 * MiB,
      ),
    )
    .addOption(limitOption("entryBytesMax", "largest encoded log entry", "LP_ENTRY_BYTES_MAX"))
    .addOption(limitOption("mutationsMax", "mutations in one transaction", "LP_MUTATIONS_MAX"))
    .addOption(limitOption("keyBytesMax", "UTF-8 bytes in one key", "LP_KEY_BYTES_MAX"))
    .addOption(limitOption("valueBytesMax", "bytes in one value (PUT, and as grown by APPEND)", "LP_VALUE_BYTES_MAX"))
    .addOption(
      intOption(
        "--checkpoint-interval-ms <ms>",
        "WAL checkpoint period; advances durable_lsn",
        "LP_CHECKPOINT_INTERVAL_MS",
        10,
        3_600_000,
        5000,
      ),
    )
    .addOption(
      intOption(
        "--wal-autocheckpoint-pages <n>",
        "SQLite WAL pages before it checkpoints by itself inside a commit (the timer above normally does it first)",
        "LP_WAL_AUTOCHECKPOINT_PAGES",
        1,
        10_000_000,
        DEFAULT_WAL_AUTOCHECKPOINT_PAGES,
      ),
    )
    .addOption(
      envOption(
        "--sqlite-page-bytes <n>",
        "SQLite page size of a new database (a power of two); an existing database keeps its own",
        "LP_SQLITE_PAGE_BYTES",
      )
        .argParser(parsePageBytes)
        .default(DEFAULT_PAGE_BYTES),
    )
    .addOption(
      intOption(
        "--sqlite-cache-bytes <n>",
        "SQLite's page cache (PRAGMA cache_size): it fills and then stays, so RSS levels about this much above the start",
        "LP_SQLITE_CACHE_BYTES",
        SQLITE_CACHE_BYTES_MIN,
        2 ** 40,
        DEFAULT_SQLITE_CACHE_BYTES,
      ),
    )
    .addOption(envOption("--backup-dir <dir>", "where periodic backups go, and where the newest backup is looked for", "LP_BACKUP_DIR"))
    .addOption(
      intOption(
        "--backup-interval-ms <ms>",
        "period of the automatic backups into --backup-dir (default: none; lpctl backup shard still works)",
        "LP_BACKUP_INTERVAL_MS",
        1000,
        30 * 24 * 3_600_000,
      ),
    )
    .addOption(
      intOption(
        "--backup-keep <n>",
        "backups kept in --backup-dir; older ones are deleted",
        "LP_BACKUP_KEEP",
        1,
        10_000,
        DEFAULT_BACKUP_KEEP,
      ),
    )
    .addOption(
      intOption(
        "--backup-step-pages <n>",
        "SQLite pages copied per step of an online backup; applies and reads wait at most one step",
        "LP_BACKUP_STEP_PAGES",
        1,
        1_000_000,
        DEFAULT_BACKUP_STEP_PAGES,
      ),
    )
    .addOption(
      envOption(
        "--restore-from <file>",
        "a backup (shard-N-lsn-L.sqlite, its .json manifest beside it) installed as the database when the data directory has none",
        "LP_RESTORE_FROM",
      ),
    )
    .addOption(http2WindowOption())
    .addOption(envOption("--log-level <level>", "log level", "LP_LOG_LEVEL", "info").choices(LOG_LEVELS));
  return withTlsOptions(command);
}

function toOptions(flags: ShardFlags): ShardOptions {
  const listen = flags.listen ?? `127.0.0.1:${GRPC_PORT_BASE + flags.shardId}`;
  return {
    shardId: flags.shardId,
    ...(flags.shardCount === undefined ? {} : { shardCount: flags.shardCount }),
    ...(flags.clusterId === undefined ? {} : { clusterId: flags.clusterId }),
    dataDir: flags.dataDir ?? `./data/shard-${flags.shardId}`,
    listen,
    metricsPort: flags.metricsPort ?? METRICS_PORT_BASE + flags.shardId,
    checkpointIntervalMs: flags.checkpointIntervalMs,
    walAutocheckpointPages: flags.walAutocheckpointPages,
    pageBytes: flags.sqlitePageBytes,
    sqliteCacheBytes: flags.sqliteCacheBytes,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    limits: {
      batchPartsMax: flags.batchPartsMax,
      deliveryStreamsMax: flags.deliveryStreamsMax,
      deliveryStreamsPerCallerMax: flags.deliveryStreamsPerCallerMax,
      readWaitersMax: flags.readWaitersMax,
      readWaitersPerCallerMax: flags.readWaitersPerCallerMax,
      readWaitMsMax: flags.readWaitMsMax,
      scanItemsMax: flags.scanItemsMax,
      scanBytesMax: flags.scanBytesMax,
    },
    ...(flags.messageBytesMax === undefined ? {} : { messageBytesMax: flags.messageBytesMax }),
    transactionLimits: {
      entryBytesMax: flags.entryBytesMax,
      mutationsMax: flags.mutationsMax,
      keyBytesMax: flags.keyBytesMax,
      valueBytesMax: flags.valueBytesMax,
    },
    security: transportSecurityFromFlags(flags, { role: "shard", name: String(flags.shardId), listenHosts: [listenHost(listen)] }),
    backup: {
      backupDir: flags.backupDir ?? null,
      intervalMs: flags.backupIntervalMs ?? null,
      keep: flags.backupKeep,
      stepPages: flags.backupStepPages,
    },
    ...(flags.restoreFrom === undefined ? {} : { restoreFrom: flags.restoreFrom }),
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(buildCommand(), process.argv).opts<ShardFlags>();
  if (flags.backupIntervalMs !== undefined && flags.backupDir === undefined) {
    throw new InvalidArgumentError("--backup-interval-ms needs --backup-dir: periodic backups go there");
  }
  const options = toOptions(flags);
  installHttp2Window(flags.http2WindowBytes);
  const logger = createLogger("shard", flags.logLevel);
  const shard = await startShard(options, logger);
  const { store } = shard.context;
  logger.info(
    {
      grpcPort: shard.grpcPort,
      metricsPort: shard.metricsPort ?? -1,
      shardId: store.identity.shardId,
      clusterId: store.identity.clusterId,
      appliedLsn: store.appliedLsn.toString(),
      durableLsn: store.durableLsn.toString(),
      sqlitePageBytes: store.pageBytes,
      dataDir: options.dataDir,
    },
    "ready",
  );
  exitOnShutdownSignals(
    logger,
    async () => {
      await shard.close();
      return { appliedLsn: store.appliedLsn.toString() };
    },
    SHUTDOWN_HARD_LIMIT_MS,
  );
}

runMain("shard", main);
