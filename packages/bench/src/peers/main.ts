#!/usr/bin/env node
// `pnpm bench:peers`: the same open-loop workload through a Redis Streams pipeline, a NATS JetStream pipeline
// and this cluster (1 and 3 LogStore replicas), interleaved, measuring client send -> SQLite commit on one clock.
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { freePorts, LOOPBACK_HOST, parseFlags, parseIntegerInRange, runMain, SHARD_COUNT_MAX } from "@logplayer/common";
import type { BenchReport } from "../report";
import { machineInfo } from "../report";
import { type BreakdownBar, renderHtmlReport } from "../html-report";
import { runPeerPipeline } from "./run-peer";
import { missingPeerServers, type PeerServer, startNats, startRedis } from "./servers";
import {
  cellOf,
  DEFAULT_LADDER_RATES,
  formatIssueTable,
  type LadderResult,
  type TableResult,
  tableRows,
  unsustainedReason,
} from "./issue-table";
import { formatPeersTable, interleave, type PeerWorkload, summarizeSystems, type SystemRun } from "./table";

const SYSTEMS = ["redis", "nats", "cluster-1", "cluster-3"] as const;
type SystemName = (typeof SYSTEMS)[number];

interface PeersOptions extends PeerWorkload {
  reps: number;
  systems: SystemName[];
  out: string | undefined;
  /** Run every row of the performance issue's table instead of one workload. */
  table: boolean;
  ladderRates: number[];
  ladderDurationS: number;
  ladderWarmupS: number;
}

function parseOptions(argv: string[]): PeersOptions {
  const int = parseIntegerInRange;
  const program = new Command("pnpm bench:peers")
    .description(
      "The same open-loop workload through Redis Streams (appendfsync always) and NATS JetStream pipelines, each into N SQLite " +
        "consumers storing their stream offset in the data's transaction, and through this cluster with 1 and 3 LogStore replicas; " +
        "interleaved repetitions, one table of send -> SQLite commit with ratios to the first system, JSON and HTML written.",
    )
    .option("--rate <txn/s>", "offered load, transactions per second", int("--rate", 1, 100_000), 1000)
    .option("--duration <s>", "measured seconds per system and repetition", int("--duration", 1, 3600), 10)
    .option("--warmup <s>", "warm-up seconds before each measured phase", int("--warmup", 0, 3600), 10)
    .option("--shards <count>", "shards (consumers)", int("--shards", 1, SHARD_COUNT_MAX), 3)
    .option("--keys-per-txn <count>", "keys PUT by each transaction", int("--keys-per-txn", 1, 1000), 1)
    .option("--value-bytes <bytes>", "bytes per value", int("--value-bytes", 0, 256 * 1024), 200)
    .option("--key-space <count>", "distinct keys", int("--key-space", 1, 10_000_000), 10_000)
    .option("--inflight-max <count>", "outstanding sends at most; beyond it a slot is skipped", int("--inflight-max", 1, 1_000_000), 10_000)
    .option("--seed <n>", "workload seed", int("--seed", 0, 2 ** 32 - 1), 1)
    .option("--reps <n>", "repetitions (each runs every system once, in the same order)", int("--reps", 1, 100), 2)
    .option("--systems <list>", `comma-separated, from ${SYSTEMS.join(",")}; the first is the ratios' baseline`, (value: string) => {
      const names = value.split(",").map((s) => s.trim());
      for (const name of names)
        if (!(SYSTEMS as readonly string[]).includes(name)) throw new InvalidArgumentError(`unknown system "${name}"`);
      return names as SystemName[];
    })
    .option("--out <file>", "JSON result path (default bench-results/peers-<timestamp>.json; the HTML goes beside it)")
    .option(
      "--table",
      "run the performance issue's whole table instead of one workload: 200 B at 1,000 and 5,000 txn/s, 10 KB at 1,000 txn/s " +
        "(3 shards, every system), 10 KB with 20 shards (cluster only), the maximum sustained rate per system (200 B) and " +
        "CPU per transaction; --rate, --shards, --keys-per-txn and --value-bytes are then set per row",
      false,
    )
    .option("--ladder-rates <list>", "with --table: the rates tried, lowest first, for the maximum sustained rate", (value: string) => {
      const rates = value.split(",").map((s) => Number(s.trim()));
      if (rates.length === 0 || rates.some((r) => !Number.isInteger(r) || r < 1 || r > 100_000)) {
        throw new InvalidArgumentError("a comma-separated list of rates, each 1..100000");
      }
      return [...rates].sort((a, b) => a - b);
    })
    .option("--ladder-duration <s>", "with --table: measured seconds per ladder step and repetition", int("--ladder-duration", 1, 3600), 5)
    .option("--ladder-warmup <s>", "with --table: warm-up seconds per ladder step", int("--ladder-warmup", 0, 3600), 3)
    .showHelpAfterError();
  parseFlags(program, argv);
  const o = program.opts<Partial<PeersOptions>>();
  const num = (v: unknown): number => Number(v);
  return {
    rate: num(o.rate),
    durationS: num((o as { duration?: number }).duration),
    warmupS: num((o as { warmup?: number }).warmup),
    shards: num(o.shards),
    keysPerTxn: num(o.keysPerTxn),
    valueBytes: num(o.valueBytes),
    keySpace: num(o.keySpace),
    inflightMax: num(o.inflightMax),
    seed: num(o.seed),
    reps: num(o.reps),
    systems: o.systems ?? [...SYSTEMS],
    out: o.out,
    table: o.table === true,
    ladderRates: o.ladderRates ?? [...DEFAULT_LADDER_RATES],
    ladderDurationS: num((o as { ladderDuration?: number }).ladderDuration),
    ladderWarmupS: num((o as { ladderWarmup?: number }).ladderWarmup),
  };
}

/** One cluster run: `pnpm bench` as a child process with the same workload; its JSON read back. */
function runCluster(replicas: number, workload: PeerWorkload, outPath: string): Promise<{ run: SystemRun; report: BenchReport }> {
  const args = [
    path.join(__dirname, "..", "main.js"),
    ...[
      "--rate",
      "--duration",
      "--warmup",
      "--shards",
      "--keys-per-txn",
      "--value-bytes",
      "--key-space",
      "--inflight-max",
      "--seed",
    ].flatMap((flag, i) => [
      flag,
      String(
        [
          workload.rate,
          workload.durationS,
          workload.warmupS,
          workload.shards,
          workload.keysPerTxn,
          workload.valueBytes,
          workload.keySpace,
          workload.inflightMax,
          workload.seed,
        ][i],
      ),
    ]),
    ...["--logstore-replicas", String(replicas), "--load-nice", "0", "--out", outPath],
  ];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 16 * 1024 * 1024 }, (err, _stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`pnpm bench with ${replicas} replica(s) failed: ${err.message}\n${stderr.slice(-2000)}`));
        return;
      }
      const report = JSON.parse(fs.readFileSync(outPath, "utf8")) as BenchReport;
      const r = report.result;
      resolve({
        report,
        run: {
          system: `cluster-${replicas}`,
          sqliteCommitDelay: r.measures.sqliteCommitDelay,
          commitLatency: r.measures.commitLatency,
          cdf: (r.cdfs[0]?.points ?? []).map(([p, ms]): [number, number] => [p, ms]),
          sent: r.sent,
          acked: r.acked,
          failed: r.failed + r.skipped + r.unfinished,
          throughputPerS: r.throughputPerS,
          allApplied: r.allApplied,
          cpuMsPerTxn: r.processCpu.reduce((sum, p) => sum + p.msPerTxn, 0),
          logPlayerDelay: r.measures.logPlayerDelay,
        },
      });
    });
  });
}

async function runPeer(system: "redis" | "nats", workload: PeerWorkload, dataDir: string): Promise<SystemRun> {
  const [port] = await freePorts(1, LOOPBACK_HOST);
  const dir = fs.mkdtempSync(path.join(dataDir, `${system}-`));
  const server: PeerServer = system === "redis" ? await startRedis(dir, port!) : await startNats(dir, port!, workload.shards);
  try {
    return await runPeerPipeline(server, workload, dir);
  } finally {
    await server.stop();
  }
}

/** One system, one repetition, one workload; a cluster run also gives its delay breakdown as a bar. */
async function runSystem(
  system: SystemName,
  workload: PeerWorkload,
  rep: number,
  dataDir: string,
  bars: BreakdownBar[],
): Promise<SystemRun> {
  process.stderr.write(
    `rep ${rep}: ${system}, ${workload.rate} txn/s, ${workload.keysPerTxn} x ${workload.valueBytes} B, ${workload.shards} shards ...\n`,
  );
  let run: SystemRun;
  if (system === "redis" || system === "nats") {
    run = await runPeer(system, workload, dataDir);
  } else {
    const replicas = system === "cluster-1" ? 1 : 3;
    const outPath = path.join(dataDir, `${system}-${rep}-${workload.rate}-${workload.shards}-${workload.valueBytes}.json`);
    const cluster = await runCluster(replicas, workload, outPath);
    run = cluster.run;
    const breakdown = cluster.report.result.breakdown;
    if (breakdown !== null)
      bars.push({
        name: `${system} rep ${rep}, ${workload.rate}/s ${workload.keysPerTxn}x${workload.valueBytes} B ${workload.shards} shards`,
        segments: breakdown.segments.map((s) => ({ name: s.name, ms: s.summary.meanMs ?? 0 })),
      });
  }
  process.stderr.write(
    `rep ${rep}: ${system} send -> SQLite commit p50 ${run.sqliteCommitDelay.p50Ms?.toFixed(3)} ms, p99 ${run.sqliteCommitDelay.p99Ms?.toFixed(3)} ms, ${run.throughputPerS.toFixed(0)} acks/s\n`,
  );
  return run;
}

/** One run of the table, labelled with its row. */
type TableRun = SystemRun & { rep: number; row: string };

/** `--table`: every latency row (systems interleaved per row), then each system's climb up the rate ladder. */
async function runTable(options: PeersOptions, dataDir: string, bars: BreakdownBar[]): Promise<{ result: TableResult; runs: TableRun[] }> {
  const rows: { row: ReturnType<typeof tableRows>[number]; cells: Map<string, ReturnType<typeof cellOf>> }[] = [];
  const allRuns: TableRun[] = [];
  for (const row of tableRows(options.systems)) {
    const workload = { ...options, ...row.workload };
    const runs: (SystemRun & { rep: number })[] = [];
    for (const { rep, system } of interleave(row.systems as SystemName[], options.reps)) {
      try {
        runs.push({ ...(await runSystem(system, workload, rep, dataDir, bars)), rep });
      } catch (err) {
        // One failed run (a cluster that did not start in time) leaves its cell incomplete, not the whole table unwritten.
        process.stderr.write(`rep ${rep}: ${system} failed: ${(err as Error).message.split("\n")[0]}\n`);
      }
    }
    allRuns.push(...runs.map((run) => ({ row: row.label, ...run })));
    rows.push({ row, cells: new Map(row.systems.map((system) => [system, cellOf(runs.filter((r) => r.system === system))])) });
  }
  const ladder: LadderResult[] = [];
  for (const system of options.systems) {
    let maxSustained: number | null = null;
    let stoppedAt: LadderResult["stoppedAt"] = null;
    let firstP99: number | null = null;
    for (const rate of options.ladderRates) {
      const workload = {
        ...options,
        rate,
        shards: 3,
        keysPerTxn: 1,
        valueBytes: 200,
        durationS: options.ladderDurationS,
        warmupS: options.ladderWarmupS,
      };
      const runs: SystemRun[] = [];
      for (let rep = 1; rep <= options.reps; rep++) {
        try {
          runs.push(await runSystem(system, workload, rep, dataDir, []));
        } catch (err) {
          stoppedAt = { rate, reason: `run failed: ${(err as Error).message.split("\n")[0]}` };
          break;
        }
      }
      allRuns.push(...runs.map((run, i) => ({ row: `ladder ${rate}/s`, ...run, rep: i + 1 })));
      if (stoppedAt !== null) break;
      if (rate === options.ladderRates[0]) firstP99 = cellOf(runs).p99Ms;
      const reason = unsustainedReason(rate, runs, firstP99);
      if (reason !== null) {
        stoppedAt = { rate, reason };
        break;
      }
      maxSustained = rate;
    }
    ladder.push({ system, maxSustained, stoppedAt });
    process.stderr.write(
      `${system}: max sustained ${maxSustained ?? "none"}${stoppedAt === null ? "" : ` (at ${stoppedAt.rate}/s: ${stoppedAt.reason})`}\n`,
    );
  }
  return { result: { systems: options.systems, rows, ladder }, runs: allRuns };
}

/** The CDFs of the table's first row (200 B, 1,000 txn/s), one line per system and repetition. */
function tableCdfs(runs: readonly TableRun[]): { name: string; points: [number, number][] }[] {
  const first = runs[0]?.row;
  return runs.filter((run) => run.row === first).map((run) => ({ name: `${run.system} rep ${run.rep}, ${run.row}`, points: run.cdf }));
}

function outputPaths(options: PeersOptions, startedAt: Date): { outPath: string; htmlPath: string } {
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const outPath = path.resolve(options.out ?? `bench-results/peers-${options.table ? "table-" : ""}${stamp}.json`);
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  return { outPath, htmlPath: outPath.replace(/(\.json)?$/, ".html") };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const needsServers = options.systems.filter((s) => s === "redis" || s === "nats");
  const missing = missingPeerServers().filter((line) => needsServers.some((s) => line.startsWith(s)));
  if (missing.length > 0) {
    process.stderr.write(`${missing.join("\n")}\n(or leave them out with --systems cluster-1,cluster-3)\n`);
    process.exit(2);
  }
  const startedAt = new Date();
  const { outPath, htmlPath } = outputPaths(options, startedAt);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-peers-"));
  const bars: BreakdownBar[] = [];
  const machine = machineInfo();
  const machineNote = `machine: ${machine.cpus} CPUs (${machine.cpuModel}), load average at start ${machine.loadAverage.map((l) => l.toFixed(2)).join(" ")}`;
  if (options.table) {
    let table: Awaited<ReturnType<typeof runTable>>;
    try {
      table = await runTable(options, dataDir, bars);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
    const text =
      `send -> SQLite commit, medians over ${options.reps} interleaved repetitions of ${options.durationS} s after ${options.warmupS} s warm-up ` +
      `(ladder steps: ${options.ladderDurationS} s after ${options.ladderWarmupS} s)\n\n${formatIssueTable(table.result)}`;
    fs.writeFileSync(
      outPath,
      `${JSON.stringify(
        {
          formatVersion: 1,
          startedAt: startedAt.toISOString(),
          options,
          machine,
          table: { ...table.result, rows: table.result.rows.map((r) => ({ row: r.row, cells: Object.fromEntries(r.cells) })) },
          runs: table.runs,
        },
        null,
        2,
      )}\n`,
    );
    fs.writeFileSync(
      htmlPath,
      renderHtmlReport({
        title: `pnpm bench:peers --table, ${startedAt.toISOString()}`,
        notes: [machineNote],
        cdfs: tableCdfs(table.runs),
        bars,
        text,
      }),
    );
    process.stdout.write(
      `${text}\n\nresult written to ${path.relative(process.cwd(), outPath)} (plots: ${path.relative(process.cwd(), htmlPath)})\n`,
    );
    return;
  }
  const runs: (SystemRun & { rep: number })[] = [];
  try {
    for (const { rep, system } of interleave(options.systems, options.reps)) {
      runs.push({ ...(await runSystem(system, options, rep, dataDir, bars)), rep });
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const summary = summarizeSystems(runs, options.systems);
  const workload = `${options.rate} txn/s, ${options.keysPerTxn} x ${options.valueBytes} B per txn, ${options.shards} shards, ${options.durationS} s measured after ${options.warmupS} s warm-up, ${options.reps} reps`;
  const table = `send -> SQLite commit (medians over the repetitions; ratios to ${options.systems[0]}), ${workload}\n\n${formatPeersTable(summary)}`;
  fs.writeFileSync(
    outPath,
    `${JSON.stringify({ formatVersion: 1, startedAt: startedAt.toISOString(), options, machine, summary, runs }, null, 2)}\n`,
  );
  fs.writeFileSync(
    htmlPath,
    renderHtmlReport({
      title: `pnpm bench:peers, ${startedAt.toISOString()}`,
      notes: [workload, machineNote],
      cdfs: runs.map((run) => ({ name: `${run.system} rep ${run.rep}`, points: run.cdf })),
      bars,
      text: table,
    }),
  );
  process.stdout.write(
    `${table}\n\nresult written to ${path.relative(process.cwd(), outPath)} (plots: ${path.relative(process.cwd(), htmlPath)})\n`,
  );
}

runMain("bench:peers", main);
