#!/usr/bin/env node
// `pnpm start`: a whole local cluster in the foreground, with a live progress line.
import path from "node:path";
import { Command } from "commander";
import type { ClusterStatus, LogPlayerClient } from "@logplayer/client";
import { envOption, LOG_LEVELS, parseIntegerInRange, runMain, SHARD_COUNT_MAX, parseFlags } from "@logplayer/common";
import type { RunningConsole } from "@logplayer/console";
import { LocalCluster } from "./cluster";
import { CONSOLE_PORT_DEFAULT, startLocalConsole } from "./console";
import { LOCAL_LOGSTORE_REPLICAS, LOG_PLAYERS_DEFAULT, LOG_PLAYERS_MAX, LOGSTORE_REPLICAS_MAX, SHARD_COUNT_DEFAULT } from "./plan";
import { describeExit } from "./process";
import { commitRate, type DeadProcess, formatProgressLine } from "./progress-line";

interface MainOptions {
  shards: number;
  logPlayers: number;
  logstoreReplicas: number;
  dataDir: string;
  logLevel: string;
  ports: "default" | "auto";
  /** undefined: CONSOLE_PORT_DEFAULT with --ports default, any free port with --ports auto. */
  consolePort: number | undefined;
}

// TTY: refresh in place twice a second; a log file or pipe gets a line every 5 s.
const REFRESH_TTY_MS = 500;
const REFRESH_PIPE_MS = 5_000;
const STATUS_TIMEOUT_MS = 1_000;
const CONNECT_TIMEOUT_MS = 10_000;
const TERMINAL_WIDTH_DEFAULT = 120;

function parseOptions(argv: string[]): MainOptions {
  const program = new Command("pnpm start")
    .description("Run a local LogPlayer cluster (LogStore, shards, LogPlayer) until Ctrl-C; resumes an existing data dir.")
    // LP_SHARD_COUNT, not LP_SHARDS: lpctl's LP_SHARDS is a list of addresses.
    .addOption(
      envOption(
        "--shards <count>",
        "number of shards (fixed when the data dir is created)",
        "LP_SHARD_COUNT",
        String(SHARD_COUNT_DEFAULT),
      ).argParser(parseIntegerInRange("--shards", 1, SHARD_COUNT_MAX)),
    )
    .addOption(
      envOption("--log-players <count>", "number of LogPlayer processes", "LP_LOG_PLAYERS", String(LOG_PLAYERS_DEFAULT)).argParser(
        parseIntegerInRange("--log-players", 1, LOG_PLAYERS_MAX),
      ),
    )
    .addOption(
      envOption(
        "--logstore-replicas <count>",
        "LogStore replicas: 1 (no Raft) or an odd number (a Raft group)",
        "LP_LOGSTORE_REPLICAS",
        String(LOCAL_LOGSTORE_REPLICAS),
      ).argParser(parseIntegerInRange("--logstore-replicas", 1, LOGSTORE_REPLICAS_MAX)),
    )
    .addOption(envOption("--data-dir <dir>", "root of all state and logs (relative to the current directory)", "LP_DATA_DIR", "./data"))
    .addOption(envOption("--log-level <level>", "every service's log level", "LP_LOG_LEVEL", "info").choices([...LOG_LEVELS]))
    .addOption(
      envOption("--ports <mode>", "default = well-known ports (7100, 7200+i, 7300+i); auto = free ports", "LP_PORTS", "default").choices([
        "default",
        "auto",
      ]),
    )
    .addOption(
      envOption(
        "--console-port <n>",
        `the console web page on 127.0.0.1 (default ${CONSOLE_PORT_DEFAULT}, or a free port with --ports auto; 0 = any free port, -1 = off)`,
        "LP_CONSOLE_PORT",
      ).argParser(parseIntegerInRange("--console-port", -1, 65535)),
    )
    .showHelpAfterError();
  parseFlags(program, argv);
  const options = program.opts<MainOptions>();
  // Commander leaves env and default values unparsed when they come as strings.
  return {
    ...options,
    shards: Number(options.shards),
    logPlayers: Number(options.logPlayers),
    logstoreReplicas: Number(options.logstoreReplicas),
    consolePort: options.consolePort === undefined ? undefined : Number(options.consolePort),
  };
}

function printEndpoints(cluster: LocalCluster, clusterConsole: RunningConsole | null): void {
  const cwd = process.cwd();
  const rows = cluster.processes.map((p) => [
    p.name,
    p.spec.grpcAddress,
    p.ready && p.ready.metricsPort > 0 ? `http://${p.spec.grpcAddress.split(":")[0]}:${p.ready.metricsPort}/metrics` : "-",
    path.relative(cwd, p.logFile) || p.logFile,
  ]);
  const header = ["process", "gRPC", "metrics", "log"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const { shards } = cluster.endpoints;
  // lpctl finds its certificate in ./data/tls by default; another data dir needs --tls-dir.
  const tlsDir = path.relative(cwd, cluster.tlsDir);
  const tlsFlag = path.resolve(cwd, tlsDir) === path.resolve(cwd, "data", "tls") ? "" : ` --tls-dir ${tlsDir}`;
  const lpctl = `pnpm lpctl --logstore ${cluster.endpoints.logstores.join(",")} --shards ${shards.join(",")}${tlsFlag}`;
  process.stdout.write(
    [
      `LogPlayer cluster running, data in ${path.relative(cwd, cluster.dataDir) || "."}`,
      "",
      line(header),
      ...rows.map(line),
      "",
      ...(clusterConsole === null ? [] : [`Console (live cluster page): ${clusterConsole.url}`, ""]),
      "Try:",
      `  ${lpctl} put greeting hello`,
      `  ${lpctl} get greeting`,
      `  ${lpctl} status`,
      "",
      "Ctrl-C stops every process.",
      "",
    ].join("\n"),
  );
}

/** Polls the cluster status and prints the progress line; one poll in flight at a time. */
function startProgress(cluster: LocalCluster, client: LogPlayerClient, dead: DeadProcess[]): () => void {
  const tty = process.stdout.isTTY === true;
  let polling = false;
  let stopped = false;
  let lastCommit: { commitLsn: bigint; atMs: number } | undefined;
  const render = async (): Promise<void> => {
    if (polling || stopped) return;
    polling = true;
    try {
      let status: ClusterStatus | undefined;
      let statusError: string | undefined;
      try {
        status = await client.clusterStatus({ timeoutMs: STATUS_TIMEOUT_MS });
      } catch (err: unknown) {
        statusError = err instanceof Error ? err.message : String(err);
      }
      if (stopped) return; // the answer came in after shutdown began
      const width = tty ? (process.stdout.columns ?? TERMINAL_WIDTH_DEFAULT) - 1 : Number.MAX_SAFE_INTEGER;
      const current = status === undefined ? undefined : { commitLsn: status.logStore.commitLsn, atMs: Date.now() };
      const rate = current === undefined ? undefined : commitRate(lastCommit, current);
      if (current !== undefined) lastCommit = current;
      const text = formatProgressLine({ status, statusError, dead, ...(rate === undefined ? {} : { commitRate: rate }) }, width);
      process.stdout.write(tty ? `\r\x1b[2K${text}` : `${new Date().toISOString()} ${text}\n`);
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void render(), tty ? REFRESH_TTY_MS : REFRESH_PIPE_MS);
  void render();
  const unsubscribe = cluster.onUnexpectedExit((name, exit) => {
    const p = cluster.process(name);
    dead.push({ name, exit: describeExit(exit), logFile: path.relative(process.cwd(), p.logFile) || p.logFile });
    void render();
  });
  return () => {
    stopped = true;
    clearInterval(timer);
    unsubscribe();
    if (tty) process.stdout.write("\n");
  };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const cluster = await LocalCluster.prepare({
    dataDir: path.resolve(options.dataDir),
    shardCount: options.shards,
    logPlayers: options.logPlayers,
    logStoreReplicas: options.logstoreReplicas,
    ports: options.ports,
    logLevel: options.logLevel,
  });
  let client: LogPlayerClient | undefined;
  let stopProgress: (() => void) | undefined;
  let clusterConsole: RunningConsole | null = null;
  let signals = 0;
  const shutdown = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      // A second Ctrl-C: do not wait for graceful shutdowns any more.
      process.stderr.write(`\n${signal} again: killing every process\n`);
      for (const p of cluster.processes) p.kill("SIGKILL");
      process.exit(130);
    }
    stopProgress?.();
    void clusterConsole?.close();
    process.stdout.write(`${signal}: stopping the cluster (LogPlayers, shards, then LogStore)...\n`);
    client?.close();
    void cluster.stop().then(() => {
      process.stdout.write("stopped\n");
      process.exit(0);
    });
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
  // The terminal went away: stop as cleanly as for Ctrl-C.
  process.on("SIGHUP", shutdown);

  process.stdout.write(
    `starting ${options.logstoreReplicas} LogStore replica(s), ${options.shards} shard(s) and ${options.logPlayers} LogPlayer(s); logs in ${path.relative(process.cwd(), cluster.logDir)}\n`,
  );
  try {
    await cluster.startAll();
  } catch (err: unknown) {
    if (signals > 0) return; // interrupted while starting: shutdown() finishes the job
    throw err;
  }
  if (signals > 0) return;
  client = await cluster.connectClient({ timeoutMs: CONNECT_TIMEOUT_MS });
  const consolePort = options.consolePort ?? (options.ports === "auto" ? 0 : CONSOLE_PORT_DEFAULT);
  if (consolePort >= 0) clusterConsole = await startLocalConsole(cluster, consolePort);
  printEndpoints(cluster, clusterConsole);
  stopProgress = startProgress(cluster, client, []);
}

runMain("cluster", main);
