#!/usr/bin/env node
import os from "node:os";
import { Command } from "commander";
import {
  exitOnShutdownSignals,
  http2WindowOption,
  installHttp2Window,
  createLogger,
  DEFAULT_BACKOFF,
  DEFAULT_MESSAGE_BYTES_MAX,
  envOption,
  LOG_LEVELS,
  parseAddress,
  parseAddressList,
  parseIntegerInRange,
  runMain,
  type LogLevel,
  parseFlags,
  listenHost,
} from "@logplayer/common";
import { DEFAULT_DELIVERY_LIMITS, DEFAULT_LEADER_MOVE_INTERVAL_MS, validateDeliveryLimits, type DeliveryLimits } from "@logplayer/delivery";
import { type TlsFlags, transportSecurityFromFlags, withTlsOptions } from "@logplayer/tls";
import { startLogPlayer, type LogPlayerOptions } from "./start-logplayer";

const SHUTDOWN_HARD_LIMIT_MS = 5000;

interface PlayerFlags extends DeliveryLimits, TlsFlags {
  tlsName: string;
  /** The default stays a string: commander does not run defaults through the parser. */
  logstore: string | string[];
  shards: string[];
  playerId: string;
  listen: string;
  http2WindowBytes: number;
  metricsPort: number;
  recoveryStreamsMax: number;
  ackTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  startWaitMs: number;
  leaderMoveIntervalMs: number;
  messageBytesMax?: number;
  trimReportIntervalMs: number;
  logLevel: LogLevel;
}

const int = (name: string, min: number, max: number) => parseIntegerInRange(name, min, max);

/** A limit flag: `--batch-parts-max` ↔ LP_BATCH_PARTS_MAX, default from DEFAULT_DELIVERY_LIMITS. */
function limitOption(flag: string, description: string, key: keyof DeliveryLimits, max: number) {
  const env = `LP_${flag.replace(/-/g, "_").toUpperCase()}`;
  return envOption(`--${flag} <n>`, description, env)
    .argParser(int(`--${flag}`, 1, max))
    .default(DEFAULT_DELIVERY_LIMITS[key]);
}

function buildCommand(): Command {
  const command = new Command("logplayer")
    .description("LogPlayer: reads committed entries from the LogStore and streams each shard its parts, in order, exactly once.")
    .addOption(
      envOption(
        "--logstore <addresses>",
        "LogStore gRPC address(es), comma-separated host:port: every replica (committed entries are read from any)",
        "LP_LOGSTORE",
        "127.0.0.1:7100",
      ).argParser(parseAddressList),
    )
    .addOption(
      envOption(
        "--shards <list>",
        "shard gRPC addresses, comma-separated; position = shard id (count must match the LogStore's shard map)",
        "LP_SHARDS",
      )
        .argParser(parseAddressList)
        .default(["127.0.0.1:7300", "127.0.0.1:7301", "127.0.0.1:7302"], "127.0.0.1:7300,127.0.0.1:7301,127.0.0.1:7302"),
    )
    .addOption(
      envOption("--player-id <id>", "name in logs and the shards' hello", "LP_PLAYER_ID", `player-${os.hostname()}-${process.pid}`),
    )
    .addOption(
      envOption("--listen <host:port>", "gRPC health service address; port 0 picks a free port", "LP_LISTEN", "127.0.0.1:7200").argParser(
        parseAddress,
      ),
    )
    .addOption(
      envOption("--metrics-port <n>", "Prometheus /metrics port on the listen host; 0 = any free port, -1 = off", "LP_METRICS_PORT")
        .argParser(int("--metrics-port", -1, 65535))
        .default(9200),
    )
    .addOption(limitOption("batch-parts-max", "parts in one batch written to a shard", "batchPartsMax", 1_000_000))
    .addOption(limitOption("batch-bytes-max", "estimated bytes in one batch (a larger single part goes alone)", "batchBytesMax", 1 << 30))
    .addOption(limitOption("window-batches-max", "sent, unacknowledged batches per shard", "windowBatchesMax", 1_000_000))
    .addOption(limitOption("window-bytes-max", "sent, unacknowledged bytes per shard", "windowBytesMax", 1 << 30))
    .addOption(
      limitOption(
        "queue-entries-max",
        "parts waiting per shard; beyond it the shard falls back to recovery",
        "queueEntriesMax",
        10_000_000,
      ),
    )
    .addOption(
      limitOption("queue-bytes-max", "bytes waiting per shard; beyond it the shard falls back to recovery", "queueBytesMax", 1 << 30),
    )
    .addOption(
      limitOption(
        "dummy-every-entries",
        "every E entries, a shard more than E behind gets a dummy part",
        "dummyEveryEntries",
        1_000_000_000,
      ),
    )
    .addOption(
      limitOption(
        "progress-interval-ms",
        "at the log's tail, a shard the latest entries did not touch gets at most one progress dummy per this many ms",
        "progressIntervalMs",
        60_000,
      ),
    )
    .addOption(
      limitOption(
        "recovery-read-entries-max",
        "entries one recovery read asks for (≤ --queue-entries-max)",
        "recoveryReadEntriesMax",
        10_000_000,
      ),
    )
    .addOption(
      envOption("--recovery-streams-max <n>", "recovery reads open at once", "LP_RECOVERY_STREAMS_MAX")
        .argParser(int("--recovery-streams-max", 1, 1024))
        .default(4),
    )
    .addOption(
      envOption("--ack-timeout-ms <ms>", "a shard with unacked batches and no Ack/Gap for this long is declared dead", "LP_ACK_TIMEOUT_MS")
        .argParser(int("--ack-timeout-ms", 10, 3_600_000))
        .default(5000),
    )
    .addOption(
      envOption("--backoff-initial-ms <ms>", "first retry delay (reconnects, reads); doubles, with jitter", "LP_BACKOFF_INITIAL_MS")
        .argParser(int("--backoff-initial-ms", 1, 60_000))
        .default(DEFAULT_BACKOFF.initialDelayMs),
    )
    .addOption(
      envOption("--backoff-max-ms <ms>", "retry delay cap", "LP_BACKOFF_MAX_MS")
        .argParser(int("--backoff-max-ms", 1, 600_000))
        .default(DEFAULT_BACKOFF.maxDelayMs),
    )
    .addOption(
      envOption(
        "--start-wait-ms <ms>",
        "after the first shard answers, wait this long for the others before starting the main stream",
        "LP_START_WAIT_MS",
      )
        .argParser(int("--start-wait-ms", 0, 600_000))
        .default(1000),
    )
    .addOption(
      envOption(
        "--leader-move-interval-ms <ms>",
        "the main stream reads from the LogStore leader (it learns of each commit first): a working stream moves to a new " +
          "leader at most once per this long, and not back to a replica whose stream failed for as long; 0 = never move it",
        "LP_LEADER_MOVE_INTERVAL_MS",
      )
        .argParser(int("--leader-move-interval-ms", 0, 3_600_000))
        .default(DEFAULT_LEADER_MOVE_INTERVAL_MS),
    )
    .addOption(
      envOption(
        "--message-bytes-max <n>",
        "largest gRPC message either way; at least the cluster's message cap, derived from its limits " +
          `(default: the larger of ${DEFAULT_MESSAGE_BYTES_MAX} and that cap)`,
        "LP_MESSAGE_BYTES_MAX",
      ).argParser(int("--message-bytes-max", 1024 * 1024, 1 << 30)),
    )
    .addOption(
      envOption(
        "--trim-report-interval-ms <ms>",
        "how often the shards' restorable LSNs are gathered and their minimum reported to every LogStore replica, " +
          "which trims its WAL below it; 0 = never (nothing is trimmed)",
        "LP_TRIM_REPORT_INTERVAL_MS",
      )
        .argParser(int("--trim-report-interval-ms", 0, 3_600_000))
        .default(5000),
    )
    .addOption(http2WindowOption())
    .addOption(envOption("--log-level <level>", `log level (${LOG_LEVELS.join(", ")})`, "LP_LOG_LEVEL", "info").choices(LOG_LEVELS))
    .addOption(envOption("--tls-name <name>", "with --tls-dir, use the certificate logplayer-<name>.crt/.key", "LP_TLS_NAME", "main"));
  return withTlsOptions(command);
}

function toOptions(flags: PlayerFlags): LogPlayerOptions {
  const limits: DeliveryLimits = {
    batchPartsMax: flags.batchPartsMax,
    batchBytesMax: flags.batchBytesMax,
    windowBatchesMax: flags.windowBatchesMax,
    windowBytesMax: flags.windowBytesMax,
    queueEntriesMax: flags.queueEntriesMax,
    queueBytesMax: flags.queueBytesMax,
    dummyEveryEntries: flags.dummyEveryEntries,
    recoveryReadEntriesMax: flags.recoveryReadEntriesMax,
    progressIntervalMs: flags.progressIntervalMs,
  };
  if (limits.recoveryReadEntriesMax > limits.queueEntriesMax) {
    throw new Error(`--recovery-read-entries-max ${limits.recoveryReadEntriesMax} exceeds --queue-entries-max ${limits.queueEntriesMax}`);
  }
  if (flags.backoffMaxMs < flags.backoffInitialMs) {
    throw new Error(`--backoff-max-ms ${flags.backoffMaxMs} is below --backoff-initial-ms ${flags.backoffInitialMs}`);
  }
  if (flags.messageBytesMax !== undefined && limits.batchBytesMax + 64 * 1024 > flags.messageBytesMax) {
    throw new Error(`--batch-bytes-max ${limits.batchBytesMax} leaves no headroom under --message-bytes-max ${flags.messageBytesMax}`);
  }
  validateDeliveryLimits(limits);
  return {
    logstoreAddresses: typeof flags.logstore === "string" ? [flags.logstore] : flags.logstore,
    shardAddresses: flags.shards,
    playerId: flags.playerId,
    listen: flags.listen,
    metricsPort: flags.metricsPort,
    limits,
    recoveryStreamsMax: flags.recoveryStreamsMax,
    ackTimeoutMs: flags.ackTimeoutMs,
    backoff: { initialDelayMs: flags.backoffInitialMs, maxDelayMs: flags.backoffMaxMs, multiplier: 2 },
    startWaitMs: flags.startWaitMs,
    leaderMoveIntervalMs: flags.leaderMoveIntervalMs,
    messageBytesMax: flags.messageBytesMax,
    statusTimeoutMs: 2000,
    trimReportIntervalMs: flags.trimReportIntervalMs,
    security: transportSecurityFromFlags(flags, {
      role: "logplayer",
      defaultFileName: flags.tlsName,
      listenHosts: [listenHost(flags.listen)],
    }),
  };
}

async function main(): Promise<void> {
  const flags = parseFlags(buildCommand(), process.argv).opts<PlayerFlags>();
  const options = toOptions(flags);
  installHttp2Window(flags.http2WindowBytes);
  const logger = createLogger("logplayer", flags.logLevel);
  let player: Awaited<ReturnType<typeof startLogPlayer>> | null = null;
  // The player is null while it still waits for the LogStore: then there is nothing to close.
  exitOnShutdownSignals(
    logger,
    async () => {
      await player?.close();
    },
    SHUTDOWN_HARD_LIMIT_MS,
  );
  player = await startLogPlayer(options, logger);
  logger.info(
    {
      grpcPort: player.grpcPort,
      metricsPort: player.metricsPort ?? -1,
      clusterId: player.clusterId,
      playerId: options.playerId,
      shards: options.shardAddresses,
    },
    "ready",
  );
}

runMain("logplayer", main);
