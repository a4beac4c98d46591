#!/usr/bin/env node
// `pnpm bench`: start a private cluster, drive it open-loop, report the paper's delays.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { LocalCluster } from "@logplayer/cluster";
import { envOption, HOP_TRACE_ENV, LOG_LEVELS, parseIntegerInRange, runMain, SHARD_COUNT_MAX, parseFlags } from "@logplayer/common";
import { type BenchConfig, runBenchmark } from "./bench";
import { ProgressBar } from "./progress-bar";
import { type BenchReport, defaultOutPath, formatHtmlReport, formatReport, machineInfo } from "./report";
import { RATE_MAX } from "./schedule";
import { KEYS_PER_TXN_MAX } from "./workload";

interface CliOptions {
  rate: number;
  duration: number;
  warmup: number;
  shards: number;
  keysPerTxn: number;
  valueBytes: number;
  keySpace: number;
  logPlayers: number;
  logstoreReplicas: number;
  inflightMax: number;
  loadNice: number;
  seed: number;
  logLevel: string;
  commitTimeoutMs: number;
  out: string | undefined;
  keepData: boolean;
  insecure: boolean;
  traceEvery: string;
}

const DURATION_S_MAX = 24 * 3600;
/**
 * V8 keeps optimizing the services' code for ~15 s after they start: their
 * compiler and GC helper threads took ~50% of a core at 2 s, ~30% at 10 s
 * and ~15% from 15 s on, at 1,000 txn/s over 3 shards. A 2 s warm-up
 * measured that compilation; with 15 s the LogPlayer delay p50 fell from
 * 0.81-0.86 to 0.51-0.70 ms in 3 interleaved pairs.
 */
const WARMUP_S_DEFAULT = 15;
/**
 * The load generator's niceness. At 10 it still took a core from the
 * services when its send timer fired: in 5 interleaved pairs at 1,000 txn/s
 * over 3 shards, the LogPlayer delay p99 was 6.3-11.3 ms at 19 against
 * 13.7-24.4 ms at 10 (p50 unchanged, 0.51-0.64 against 0.56-0.81 ms).
 */
const LOAD_NICE_DEFAULT = 19;
/**
 * With --trace-every auto, about this many transactions are traced over the
 * warm-up and the measured phase together: each service's ring (64 Ki
 * records) then holds every record of the run, and the trace costs the
 * services a few thousand ring writes.
 */
const TRACED_TXNS_TARGET = 4000;

/** The --trace-every value: "auto" spreads TRACED_TXNS_TARGET over the run, "0" turns the trace off. */
function traceEveryFor(flag: string, rate: number, totalS: number): number {
  if (flag === "auto") return Math.max(1, Math.ceil((rate * totalS) / TRACED_TXNS_TARGET));
  const every = Number(flag);
  if (!Number.isInteger(every) || every < 0) throw new InvalidArgumentError(`--trace-every must be auto or an integer >= 0, got "${flag}"`);
  return every;
}

function parsePositiveNumber(name: string, max: number): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isFinite(parsed) || parsed <= 0 || parsed > max) {
      throw new InvalidArgumentError(`${name} must be a number in (0, ${max}], got "${value}"`);
    }
    return parsed;
  };
}

function parseNonNegativeNumber(name: string, max: number): (value: string) => number {
  return (value: string) => (value === "0" ? 0 : parsePositiveNumber(name, max)(value));
}

function parseOptions(argv: string[]): CliOptions {
  const int = parseIntegerInRange;
  const program = new Command("pnpm bench")
    .description(
      "Open-loop benchmark: starts its own cluster, offers a fixed transaction rate, reports LogPlayer delay, apply delay, commit latency and delay to SQLite commit.",
    )
    .addOption(
      envOption("--rate <txn/s>", "offered load, transactions per second", "LP_BENCH_RATE", "1000").argParser(
        parsePositiveNumber("--rate", RATE_MAX),
      ),
    )
    .addOption(
      envOption("--duration <s>", "measured phase, seconds", "LP_BENCH_DURATION", "10").argParser(
        parsePositiveNumber("--duration", DURATION_S_MAX),
      ),
    )
    .addOption(
      envOption(
        "--warmup <s>",
        "warm-up phase before measuring, long enough for V8 to finish compiling the services' hot code (0 = none)",
        "LP_BENCH_WARMUP",
        String(WARMUP_S_DEFAULT),
      ).argParser(parseNonNegativeNumber("--warmup", DURATION_S_MAX)),
    )
    .addOption(
      envOption("--shards <count>", "number of shards (the paper uses 2-20)", "LP_BENCH_SHARDS", "3").argParser(
        int("--shards", 1, SHARD_COUNT_MAX),
      ),
    )
    .addOption(
      envOption("--keys-per-txn <count>", "keys PUT by each transaction", "LP_BENCH_KEYS_PER_TXN", "10").argParser(
        int("--keys-per-txn", 1, KEYS_PER_TXN_MAX),
      ),
    )
    .addOption(
      envOption(
        "--value-bytes <bytes>",
        "size of each value (10 x 1024 = the paper's 10 KB txns)",
        "LP_BENCH_VALUE_BYTES",
        "1024",
      ).argParser(int("--value-bytes", 0, 256 * 1024)),
    )
    .addOption(
      envOption("--key-space <count>", "distinct keys to draw from", "LP_BENCH_KEY_SPACE", "10000").argParser(
        int("--key-space", 1, 10_000_000),
      ),
    )
    .addOption(
      envOption("--log-players <count>", "LogPlayer processes", "LP_BENCH_LOG_PLAYERS", "1").argParser(int("--log-players", 1, 16)),
    )
    .addOption(
      envOption(
        "--logstore-replicas <count>",
        "LogStore replicas (1, or 3/5 for Raft replication)",
        "LP_BENCH_LOGSTORE_REPLICAS",
        "1",
      ).argParser(int("--logstore-replicas", 1, 7)),
    )
    .addOption(
      envOption(
        "--inflight-max <count>",
        "bound on outstanding commits; a send beyond it is skipped and counted",
        "LP_BENCH_INFLIGHT_MAX",
        "10000",
      ).argParser(int("--inflight-max", 1, 1_000_000)),
    )
    .addOption(
      envOption(
        "--load-nice <n>",
        "niceness the load generator (this process) takes once the cluster is up, so that on a shared machine it does not compete with the services it measures; 0 = same priority",
        "LP_BENCH_LOAD_NICE",
        String(LOAD_NICE_DEFAULT),
      ).argParser(int("--load-nice", 0, 19)),
    )
    .addOption(envOption("--seed <n>", "seed of the key and value choice", "LP_BENCH_SEED", "1").argParser(int("--seed", 0, 2 ** 32 - 1)))
    .addOption(envOption("--log-level <level>", "the services' log level", "LP_BENCH_LOG_LEVEL", "warn").choices([...LOG_LEVELS]))
    .addOption(
      envOption("--commit-timeout-ms <ms>", "deadline of each commit", "LP_BENCH_COMMIT_TIMEOUT_MS", "10000").argParser(
        int("--commit-timeout-ms", 1, 3_600_000),
      ),
    )
    .addOption(
      envOption("--out <file>", "JSON result path (default bench-results/bench-<shards>s-<rate>r-<timestamp>.json)", "LP_BENCH_OUT"),
    )
    .addOption(
      envOption(
        "--trace-every <n|auto>",
        "trace one transaction in n through every hop for the delay breakdown (services record it in a bounded ring); 0 = off",
        "LP_BENCH_TRACE_EVERY",
        "auto",
      ),
    )
    .option("--keep-data", "keep the cluster's data and logs (the path is printed)", false)
    .option("--insecure", "run the cluster in plain text without authentication (to compare with the default mTLS)", false)
    .showHelpAfterError();
  parseFlags(program, argv);
  const o = program.opts<CliOptions>();
  // Defaults arrive as strings (commander does not parse them).
  const num = (v: unknown): number => Number(v);
  return {
    ...o,
    rate: num(o.rate),
    duration: num(o.duration),
    warmup: num(o.warmup),
    shards: num(o.shards),
    keysPerTxn: num(o.keysPerTxn),
    valueBytes: num(o.valueBytes),
    keySpace: num(o.keySpace),
    logPlayers: num(o.logPlayers),
    logstoreReplicas: num(o.logstoreReplicas),
    inflightMax: num(o.inflightMax),
    loadNice: num(o.loadNice),
    seed: num(o.seed),
    commitTimeoutMs: num(o.commitTimeoutMs),
  };
}

function toConfig(o: CliOptions): BenchConfig {
  if (o.keySpace < o.keysPerTxn) throw new Error(`--key-space ${o.keySpace} is smaller than --keys-per-txn ${o.keysPerTxn}`);
  return {
    rate: o.rate,
    durationS: o.duration,
    warmupS: o.warmup,
    shards: o.shards,
    keysPerTxn: o.keysPerTxn,
    valueBytes: o.valueBytes,
    keySpace: o.keySpace,
    logPlayers: o.logPlayers,
    logStoreReplicas: o.logstoreReplicas,
    inflightMax: o.inflightMax,
    seed: o.seed,
    logLevel: o.logLevel,
    commitTimeoutMs: o.commitTimeoutMs,
    transport: o.insecure ? "insecure" : "mtls",
    traceEvery: traceEveryFor(String(o.traceEvery), o.rate, o.warmup + o.duration),
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const config = toConfig(options);
  const startedAt = new Date();
  const outPath = path.resolve(options.out ?? defaultOutPath(config, startedAt));
  // The services inherit this environment: with it they record the sampled hop trace.
  if (config.traceEvery > 0) process.env[HOP_TRACE_ENV] = "1";
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-bench-"));
  const progress = new ProgressBar();
  const cluster = await LocalCluster.prepare({
    dataDir,
    shardCount: config.shards,
    logPlayers: config.logPlayers,
    logStoreReplicas: config.logStoreReplicas,
    ports: "auto",
    logLevel: config.logLevel,
    insecure: config.transport === "insecure",
  });
  const cleanUp = async (): Promise<void> => {
    await cluster.stop();
    if (options.keepData) process.stderr.write(`data and logs kept in ${dataDir}\n`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress.stop();
    process.stderr.write(`${signal}: stopping the cluster (no result written)\n`);
    void cleanUp().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  progress.start();
  try {
    await cluster.startAll();
    // After the services started (they keep their own priority): the load generator yields the CPU to them.
    if (options.loadNice !== 0) os.setPriority(process.pid, options.loadNice);
    const result = await runBenchmark(cluster, config, { onPhase: (phase, live) => progress.update(phase, live) });
    progress.stop();
    const report: BenchReport = { formatVersion: 1, startedAt: startedAt.toISOString(), config, machine: machineInfo(), result };
    fs.mkdirSync(path.dirname(outPath), { recursive: true });
    fs.writeFileSync(outPath, `${JSON.stringify(report, null, 2)}\n`);
    const htmlPath = outPath.replace(/(\.json)?$/, ".html");
    fs.writeFileSync(htmlPath, formatHtmlReport(report));
    process.stdout.write(
      `${formatReport(report)}\n\nresult written to ${path.relative(process.cwd(), outPath)} (plots: ${path.relative(process.cwd(), htmlPath)})\n`,
    );
  } catch (err: unknown) {
    if (interrupted) return new Promise<void>(() => {}); // onSignal exits
    progress.stop();
    await cleanUp();
    throw err;
  }
  await cleanUp();
}

runMain("bench", main);
