#!/usr/bin/env node
// `pnpm chaos`: a cluster of real processes under seeded kills, pauses and link cuts, checked from the data.
import { Command, InvalidArgumentError } from "commander";
import { envOption, LOG_LEVELS, parseIntegerInRange, runMain, SHARD_COUNT_MAX, parseFlags } from "@logplayer/common";
import { LOG_PLAYERS_MAX } from "@logplayer/cluster";
import {
  CATCH_UP_TIMEOUT_MS_DEFAULT,
  LOGSTORE_REPLICAS_DEFAULT,
  runChaos,
  UNSAFE_SHARD_MUTATIONS,
  type UnsafeShardMutation,
} from "./chaos-run";
import { DEFAULT_FAULT_SCHEDULE } from "./fault-schedule";
import { formatReport, parseDuration } from "./report";
import { DEFAULT_WORKLOAD } from "./workload";

interface CliOptions {
  duration: number;
  seed: number | undefined;
  shards: number;
  logPlayers: number;
  logStoreReplicas: number;
  unsafeShardMutation: UnsafeShardMutation | undefined;
  rate: number;
  keepData: boolean;
  logLevel: string;
  faultsActiveMax: number;
  faultDurationMsMax: number;
  catchUpTimeoutMs: number;
}

const DURATION_MS_MAX = 24 * 3_600_000;
const RATE_MAX = 10_000;
// The launcher's bound on a Raft group (LOGSTORE_REPLICAS_MAX in @logplayer/cluster).
const LOGSTORE_REPLICAS_MAX = 7;

function replicasArg(value: string): number {
  const replicas = parseIntegerInRange("--logstore-replicas", 1, LOGSTORE_REPLICAS_MAX)(value);
  if (replicas % 2 === 0) throw new InvalidArgumentError(`--logstore-replicas must be odd, got ${replicas}`);
  return replicas;
}

function mutationArg(value: string): UnsafeShardMutation {
  const known = UNSAFE_SHARD_MUTATIONS.find((m) => m === value);
  if (known === undefined) throw new InvalidArgumentError(`expected one of ${UNSAFE_SHARD_MUTATIONS.join(", ")}, got "${value}"`);
  return known;
}

function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms > DURATION_MS_MAX)
    throw new InvalidArgumentError(`expected a duration like 60s, 2m or 500ms (at most 24h), got "${value}"`);
  return ms;
}

function parseOptions(argv: string[]): CliOptions {
  const int = parseIntegerInRange;
  const program = new Command("pnpm chaos")
    .description(
      "Chaos test: starts a cluster of real processes, runs multi-shard APPEND transactions while SIGKILLing and restarting processes of every kind, pausing them (SIGSTOP), cutting and stalling links (LogPlayer, client and Raft links) and partitioning the LogStore leader from its followers, then checks from the data that every acknowledged transaction was applied exactly once, in LSN order, and that reads with a min LSN never went back in time. Exits 1 on any violation.",
    )
    .addOption(
      envOption("--duration <time>", "length of the fault phase: 60s, 2m, 500ms, or seconds", "LP_CHAOS_DURATION", "60s").argParser(
        durationArg,
      ),
    )
    .addOption(
      envOption("--seed <n>", "seed of the fault sequence and key choice (default: random, printed)", "LP_CHAOS_SEED").argParser(
        int("--seed", 0, 2 ** 32 - 1),
      ),
    )
    .addOption(envOption("--shards <n>", "number of shards", "LP_CHAOS_SHARDS", "3").argParser(int("--shards", 1, SHARD_COUNT_MAX)))
    .addOption(
      envOption(
        "--log-players <n>",
        "LogPlayer processes (2 or more makes a paused one a zombie next to a live one)",
        "LP_CHAOS_LOG_PLAYERS",
        "2",
      ).argParser(int("--log-players", 1, LOG_PLAYERS_MAX)),
    )
    .addOption(
      envOption(
        "--logstore-replicas <n>",
        "LogStore replicas (odd; 1 = no Raft, so no Raft link faults or partitions)",
        "LP_CHAOS_LOGSTORE_REPLICAS",
        String(LOGSTORE_REPLICAS_DEFAULT),
      ).argParser(replicasArg),
    )
    .addOption(
      envOption(
        "--unsafe-shard-mutation <name>",
        `TEST-ONLY: run the shards with a deliberate exactly-once bug to see the checks fail (${UNSAFE_SHARD_MUTATIONS.join(", ")})`,
        "LP_CHAOS_UNSAFE_SHARD_MUTATION",
      ).argParser(mutationArg),
    )
    .addOption(
      envOption("--rate <txn/s>", "offered transactions per second", "LP_CHAOS_RATE", String(DEFAULT_WORKLOAD.ratePerSecond)).argParser(
        int("--rate", 1, RATE_MAX),
      ),
    )
    .addOption(
      envOption(
        "--faults-active-max <n>",
        "faults in effect at once",
        "LP_CHAOS_FAULTS_ACTIVE_MAX",
        String(DEFAULT_FAULT_SCHEDULE.faultsActiveMax),
      ).argParser(int("--faults-active-max", 1, 64)),
    )
    .addOption(
      envOption(
        "--fault-duration-ms-max <ms>",
        "longest a process stays down or paused, or a link stays cut",
        "LP_CHAOS_FAULT_DURATION_MS_MAX",
        String(DEFAULT_FAULT_SCHEDULE.durationMsMax),
      ).argParser(int("--fault-duration-ms-max", DEFAULT_FAULT_SCHEDULE.durationMsMin, 600_000)),
    )
    .addOption(
      envOption(
        "--catch-up-timeout-ms <ms>",
        "bound on delivery catching up once the faults stop",
        "LP_CHAOS_CATCH_UP_TIMEOUT_MS",
        String(CATCH_UP_TIMEOUT_MS_DEFAULT),
      ).argParser(int("--catch-up-timeout-ms", 1000, 3_600_000)),
    )
    .addOption(
      envOption("--log-level <level>", "the services' log level (their logs go to <data>/logs)", "LP_CHAOS_LOG_LEVEL", "info").choices([
        ...LOG_LEVELS,
      ]),
    )
    .addOption(envOption("--keep-data", "keep the data dir and process logs even when the run passes", "LP_CHAOS_KEEP_DATA").default(false))
    .showHelpAfterError();
  parseFlags(program, argv);
  const o = program.opts<Record<string, unknown>>();
  // Defaults arrive as strings (commander does not run the parser on them).
  const num = (v: unknown): number => (typeof v === "number" ? v : Number(v));
  return {
    duration: typeof o.duration === "number" ? o.duration : durationArg(String(o.duration)),
    seed: o.seed === undefined ? undefined : num(o.seed),
    shards: num(o.shards),
    logPlayers: num(o.logPlayers),
    logStoreReplicas: typeof o.logstoreReplicas === "number" ? o.logstoreReplicas : replicasArg(String(o.logstoreReplicas)),
    unsafeShardMutation: o.unsafeShardMutation === undefined ? undefined : mutationArg(String(o.unsafeShardMutation)),
    rate: num(o.rate),
    keepData: o.keepData === true || o.keepData === "1" || o.keepData === "true",
    logLevel: String(o.logLevel),
    faultsActiveMax: num(o.faultsActiveMax),
    faultDurationMsMax: num(o.faultDurationMsMax),
    catchUpTimeoutMs: num(o.catchUpTimeoutMs),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 32);
  const log = (line: string): void => void process.stderr.write(`chaos: ${line}\n`);
  log(`seed ${seed}`);
  // Children are SIGKILLed when this process exits (see @logplayer/cluster); the data dir stays for a look.
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping (no verdict)`);
    process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const report = await runChaos({
    durationMs: options.duration,
    seed,
    shardCount: options.shards,
    logPlayers: options.logPlayers,
    logStoreReplicas: options.logStoreReplicas,
    ...(options.unsafeShardMutation === undefined ? {} : { unsafeShardMutation: options.unsafeShardMutation }),
    workload: { ratePerSecond: options.rate },
    faults: { faultsActiveMax: options.faultsActiveMax, durationMsMax: options.faultDurationMsMax },
    keepData: options.keepData,
    logLevel: options.logLevel,
    catchUpTimeoutMs: options.catchUpTimeoutMs,
    log,
  });
  process.stdout.write(`${formatReport(report)}\n`);
  if (report.violations.length > 0) process.exitCode = 1;
}

runMain("chaos", main);
