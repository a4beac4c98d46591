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
import { formatPeersTable, interleave, type PeerWorkload, summarizeSystems, type SystemRun } from "./table";

const SYSTEMS = ["redis", "nats", "cluster-1", "cluster-3"] as const;
type SystemName = (typeof SYSTEMS)[number];

interface PeersOptions extends PeerWorkload {
  reps: number;
  systems: SystemName[];
  out: string | undefined;
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

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const needsServers = options.systems.filter((s) => s === "redis" || s === "nats");
  const missing = missingPeerServers().filter((line) => needsServers.some((s) => line.startsWith(s)));
  if (missing.length > 0) {
    process.stderr.write(`${missing.join("\n")}\n(or leave them out with --systems cluster-1,cluster-3)\n`);
    process.exit(2);
  }
  const startedAt = new Date();
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const outPath = path.resolve(options.out ?? `bench-results/peers-${stamp}.json`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-peers-"));
  const runs: (SystemRun & { rep: number })[] = [];
  const bars: BreakdownBar[] = [];
  try {
    for (const { rep, system } of interleave(options.systems, options.reps)) {
      process.stderr.write(`rep ${rep}: ${system} ...\n`);
      let run: SystemRun;
      if (system === "redis" || system === "nats") {
        run = await runPeer(system, options, dataDir);
      } else {
        const cluster = await runCluster(system === "cluster-1" ? 1 : 3, options, path.join(dataDir, `${system}-${rep}.json`));
        run = cluster.run;
        const breakdown = cluster.report.result.breakdown;
        if (breakdown !== null)
          bars.push({
            name: `${system} rep ${rep}`,
            segments: breakdown.segments.map((s) => ({ name: s.name, ms: s.summary.meanMs ?? 0 })),
          });
      }
      runs.push({ ...run, rep });
      process.stderr.write(
        `rep ${rep}: ${system} send -> SQLite commit p50 ${run.sqliteCommitDelay.p50Ms?.toFixed(3)} ms, p99 ${run.sqliteCommitDelay.p99Ms?.toFixed(3)} ms\n`,
      );
    }
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  const summary = summarizeSystems(runs, options.systems);
  const workload = `${options.rate} txn/s, ${options.keysPerTxn} x ${options.valueBytes} B per txn, ${options.shards} shards, ${options.durationS} s measured after ${options.warmupS} s warm-up, ${options.reps} reps`;
  const table = `send -> SQLite commit (medians over the repetitions; ratios to ${options.systems[0]}), ${workload}\n\n${formatPeersTable(summary)}`;
  const machine = machineInfo();
  fs.mkdirSync(path.dirname(outPath), { recursive: true });
  fs.writeFileSync(
    outPath,
    `${JSON.stringify({ formatVersion: 1, startedAt: startedAt.toISOString(), options, machine, summary, runs }, null, 2)}\n`,
  );
  const htmlPath = outPath.replace(/(\.json)?$/, ".html");
  fs.writeFileSync(
    htmlPath,
    renderHtmlReport({
      title: `pnpm bench:peers, ${startedAt.toISOString()}`,
      notes: [
        workload,
        `machine: ${machine.cpus} CPUs (${machine.cpuModel}), load average ${machine.loadAverage.map((l) => l.toFixed(2)).join(" ")}`,
      ],
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
