#!/usr/bin/env node
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import type { MutationInput } from "@logplayer/client";
import { LocalCluster } from "@logplayer/cluster";
import { LOOPBACK_HOST, monotonicNs, parseFlags, parseIntegerInRange, runMain } from "@logplayer/common";
import { MutationKind } from "@logplayer/proto";
import { scrapeMetrics } from "./group-commit";
import { runOpenLoop } from "./open-loop";
import { RATE_MAX } from "./schedule";
import { judgeTrend, type GrowthBound, type TrendSample, type TrendVerdict } from "./soak-trend";
import { Workload } from "./workload";

/*
 * pnpm soak --duration 1h --rate R: the bench workload against a local
 * cluster with trimming on, for a long time. Every --sample-interval it
 * records each service's disk bytes (its data directory) and RSS; the
 * LogStore's restart time is measured before the load and after it. At the
 * end a slope is fitted over the last half of each series, and the run fails
 * when one grows faster than its bound (docs/storage-lifecycle.md).
 */

interface SoakFlags {
  duration: number;
  rate: number;
  sampleInterval: number;
  shards: number;
  logstoreReplicas: number;
  segmentBytesMax: number;
  valueBytes: number;
  keysPerTxn: number;
  keySpace: number;
  maxGrowthPctPerHour: number;
  diskFloorMibPerHour: number;
  rssFloorMibPerHour: number;
  keepData: boolean;
  backupInterval: number;
  rssBudgetMib: number;
  logstoreRssBudgetMib: number;
  sqliteCacheBytes: number;
  logstoreCacheBytes: number;
  trimCatchUpEntries?: number;
  restartOnePerService: boolean;
  out?: string;
}

const MIB = 1024 * 1024;
const CONNECT_TIMEOUT_MS = 15_000;
const COMMIT_TIMEOUT_MS = 10_000;
const DRAIN_TIMEOUT_MS = 30_000;
const INFLIGHT_MAX = 2000;
const METRICS_TIMEOUT_MS = 2_000;
// A start or restart on a loaded host (CI, or eight sessions on two cores) can take far longer than the launcher's default.
const READY_TIMEOUT_MS = 180_000;

function parseSeconds(name: string): (value: string) => number {
  return (value) => {
    const match = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(value.trim());
    if (match === null) throw new InvalidArgumentError(`${name} must be a duration such as 90s, 2m or 1h, got "${value}"`);
    const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600 }[match[2] ?? "s"]!;
    if (!(seconds > 0)) throw new InvalidArgumentError(`${name} must be positive, got "${value}"`);
    return seconds;
  };
}

function parseOptions(argv: readonly string[]): SoakFlags {
  const int = (name: string, min: number, max: number) => parseIntegerInRange(name, min, max);
  const command = new Command("soak")
    .description("Soak: the bench workload with trimming on; fails when disk bytes or RSS of a service grow without bound.")
    .option("--duration <time>", "how long the load runs (90s, 30m, 1h)", parseSeconds("--duration"), 3600)
    .option("--rate <txn/s>", "offered load, transactions per second", int("--rate", 1, RATE_MAX), 200)
    .option("--sample-interval <time>", "time between samples", parseSeconds("--sample-interval"), 60)
    .option("--shards <count>", "shards", int("--shards", 1, 64), 3)
    .option(
      "--logstore-replicas <count>",
      "LogStore replicas (each trims on its own; a replica far behind catches up by snapshot)",
      int("--logstore-replicas", 1, 7),
      1,
    )
    .option(
      "--segment-bytes-max <n>",
      "the LogStore's WAL segment size (small: trimming is seen sooner)",
      int("--segment-bytes-max", 4096, 2 ** 31),
      16 * MIB,
    )
    .option("--value-bytes <bytes>", "size of each value", int("--value-bytes", 0, 256 * 1024), 1024)
    .option("--keys-per-txn <count>", "keys PUT by each transaction", int("--keys-per-txn", 1, 64), 10)
    .option("--key-space <count>", "distinct keys", int("--key-space", 1, 10_000_000), 10_000)
    .option(
      "--max-growth-pct-per-hour <pct>",
      "allowed fitted growth per hour, % of the series' mean",
      int("--max-growth-pct-per-hour", 1, 10_000),
      50,
    )
    .option(
      "--disk-floor-mib-per-hour <n>",
      "growth per hour always allowed for disk bytes",
      int("--disk-floor-mib-per-hour", 0, 1 << 20),
      256,
    )
    .option("--rss-floor-mib-per-hour <n>", "growth per hour always allowed for RSS", int("--rss-floor-mib-per-hour", 0, 1 << 20), 64)
    .option(
      "--backup-interval <time>",
      "period of each shard's automatic backups (into <data>/backups; the trim point follows the newest)",
      parseSeconds("--backup-interval"),
      60,
    )
    .option(
      "--rss-budget-mib <n>",
      "RSS rise over the run always allowed to a shard or LogPlayer (warm-up); a shard adds its --sqlite-cache-bytes",
      int("--rss-budget-mib", 0, 1 << 20),
      48,
    )
    .option(
      "--logstore-rss-budget-mib <n>",
      "the same for a LogStore replica (its append queue, Raft windows, gRPC buffers), plus its --logstore-cache-bytes",
      int("--logstore-rss-budget-mib", 0, 1 << 20),
      192,
    )
    .option(
      "--sqlite-cache-bytes <n>",
      "each shard's SQLite page cache (the shard flag of the same name)",
      int("--sqlite-cache-bytes", 64 * 1024, 2 ** 40),
      16 * MIB,
    )
    .option(
      "--logstore-cache-bytes <n>",
      "each LogStore replica's cache of recent entries (its --cache-bytes-max), part of its RSS budget",
      int("--logstore-cache-bytes", 0, 2 ** 40),
      64 * MIB,
    )
    .option(
      "--trim-catch-up-entries <n>",
      "the LogStore's --trim-catch-up-entries (log kept for replicas this close; default: its own)",
      int("--trim-catch-up-entries", 0, 2 ** 31),
    )
    .option("--restart-one-per-service", "time the restart of one process of each service only (a short run)", false)
    .option("--out <file>", "also write the samples and verdicts as JSON")
    .option("--keep-data", "keep the cluster's data and logs", false);
  return parseFlags(command, argv).opts<SoakFlags>();
}

/** Bytes of the regular files under `dir` (0 when it does not exist). */
function directoryBytes(dir: string): number {
  let total = 0;
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of names) {
    const full = path.join(dir, entry.name);
    try {
      if (entry.isDirectory()) total += directoryBytes(full);
      else if (entry.isFile()) total += fs.statSync(full).size;
    } catch {
      // Deleted meanwhile (a trimmed segment, a temp file).
    }
  }
  return total;
}

/** Resident set size of `pid` from /proc (Linux); null elsewhere or when it is gone. */
function rssBytes(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? null : Number(match[1]) * 1024;
  } catch {
    return null;
  }
}

type SeriesMetric = "disk" | "rss" | "heap";

interface Series {
  readonly name: string;
  readonly metric: SeriesMetric;
  readonly samples: TrendSample[];
}

/** nodejs_heap_size_used_bytes of a service (the JS heap's live part), null when unreadable. */
async function heapUsedBytes(port: number): Promise<number | null> {
  if (port < 0) return null;
  try {
    const text = await scrapeMetrics(LOOPBACK_HOST, port, METRICS_TIMEOUT_MS);
    const match = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return match === null ? null : Number(match[1]);
  } catch {
    return null;
  }
}

async function sampleAll(cluster: LocalCluster, series: Map<string, Series>, tS: number): Promise<void> {
  for (const spec of cluster.plan) {
    const add = (metric: SeriesMetric, value: number | null): void => {
      if (value === null) return;
      const key = `${spec.name}/${metric}`;
      let entry = series.get(key);
      if (entry === undefined) {
        entry = { name: spec.name, metric, samples: [] };
        series.set(key, entry);
      }
      entry.samples.push({ tS, value });
    };
    if (spec.dataDir !== undefined) add("disk", directoryBytes(spec.dataDir));
    add("rss", rssBytes(cluster.process(spec.name).pid));
    // Not judged: it tells a JS leak (heap grows) from native memory (RSS grows, heap flat).
    add("heap", await heapUsedBytes(spec.metricsPort));
  }
}

async function timeRestart(cluster: LocalCluster, name: string): Promise<number> {
  const started = performance.now();
  await cluster.restart(name);
  return performance.now() - started;
}

/** Restarts the processes named in turn (stop, start, serving) and times each. */
async function timeRestarts(cluster: LocalCluster, names: readonly string[]): Promise<Map<string, number>> {
  const times = new Map<string, number>();
  for (const name of names) times.set(name, await timeRestart(cluster, name));
  return times;
}

/** lp_logstore_first_lsn and lp_logstore_trim_point of one replica, for the summary ("?" when unreadable). */
async function trimFigures(cluster: LocalCluster): Promise<string[]> {
  const lines: string[] = [];
  for (const spec of cluster.plan) {
    if (spec.service !== "logstore" || spec.metricsPort < 0) continue;
    let text = "";
    try {
      text = await scrapeMetrics(LOOPBACK_HOST, spec.metricsPort, METRICS_TIMEOUT_MS);
    } catch {
      // reported as "?"
    }
    const gauge = (name: string): string => new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? "?";
    lines.push(
      `${spec.name}: first_lsn=${gauge("lp_logstore_first_lsn")} trim_point=${gauge("lp_logstore_trim_point")} ` +
        `last_lsn=${gauge("lp_logstore_last_lsn")} wal_bytes=${gauge("lp_logstore_wal_bytes")}`,
    );
  }
  return lines;
}

const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

function formatVerdicts(rows: readonly { series: Series; verdict: TrendVerdict }[]): string {
  const header =
    "service          metric  first MiB   last MiB   mean(2nd half) MiB  slope MiB/h  allowed MiB/h  rise MiB  allowed rise MiB  verdict";
  const lines = rows.map(({ series, verdict }) =>
    [
      series.name.padEnd(16),
      series.metric.padEnd(6),
      mib(verdict.first).padStart(10),
      mib(verdict.last).padStart(10),
      mib(verdict.mean).padStart(20),
      (verdict.slopePerHour === null ? "n/a" : mib(verdict.slopePerHour)).padStart(12),
      mib(verdict.allowedPerHour).padStart(14),
      mib(verdict.rise).padStart(9),
      mib(verdict.riseAllowed).padStart(17),
      verdict.slopePerHour === null ? "  too few samples" : verdict.grows ? "  GROWS" : "  bounded",
    ].join(" "),
  );
  return [header, ...lines].join("\n");
}

async function main(): Promise<void> {
  const flags = parseOptions(process.argv);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "lp-soak-"));
  const backupDir = path.join(dataDir, "backups");
  const cluster = await LocalCluster.prepare({
    dataDir,
    shardCount: flags.shards,
    logPlayers: 1,
    logStoreReplicas: flags.logstoreReplicas,
    ports: "auto",
    logLevel: "warn",
    readyTimeoutMs: READY_TIMEOUT_MS,
    extraArgs: {
      logstore: [
        "--segment-bytes-max",
        String(flags.segmentBytesMax),
        "--cache-bytes-max",
        String(flags.logstoreCacheBytes),
        ...(flags.trimCatchUpEntries === undefined ? [] : ["--trim-catch-up-entries", String(flags.trimCatchUpEntries)]),
      ],
      shard: [
        "--backup-dir",
        backupDir,
        "--backup-interval-ms",
        String(Math.round(flags.backupInterval * 1000)),
        "--sqlite-cache-bytes",
        String(flags.sqliteCacheBytes),
      ],
    },
  });
  const out = (line: string): boolean => process.stdout.write(`${line}\n`);
  let failed = false;
  try {
    await cluster.startAll();
    const restarted = cluster.plan
      .filter((spec, i) => !flags.restartOnePerService || cluster.plan.findIndex((other) => other.service === spec.service) === i)
      .map((spec) => spec.name);
    const restartsAtStart = await timeRestarts(cluster, restarted);
    out(
      `soak: ${flags.duration} s at ${flags.rate} txn/s, sampling every ${flags.sampleInterval} s, ` +
        `shard backups every ${flags.backupInterval} s; data in ${dataDir}`,
    );
    const client = await cluster.connectClient({ timeoutMs: CONNECT_TIMEOUT_MS, security: cluster.adminSecurity });
    const series = new Map<string, Series>();
    const started = performance.now();
    const elapsedS = (): number => (performance.now() - started) / 1000;
    let loadDone = false;
    const workload = new Workload({
      keysPerTxn: flags.keysPerTxn,
      valueBytes: flags.valueBytes,
      keySpace: flags.keySpace,
      shardCount: flags.shards,
      seed: 1,
    });
    const load = runOpenLoop(
      {
        rate: flags.rate,
        durationS: flags.duration,
        inflightMax: INFLIGHT_MAX,
        drainTimeoutMs: DRAIN_TIMEOUT_MS,
        clock: monotonicNs,
        nextTxn: () => workload.next(),
        commit: async (txn) => {
          const mutations = txn.keys.map(
            (key, i): MutationInput => ({ kind: MutationKind.MUTATION_KIND_PUT, key, value: txn.values[i]!, delta: 0n }),
          );
          const { lsn } = await client.commit(mutations, { commitTimeNs: monotonicNs(), timeoutMs: COMMIT_TIMEOUT_MS });
          return lsn;
        },
        shardCount: flags.shards,
      },
      () => undefined,
    ).finally(() => {
      loadDone = true;
    });
    // Samples on a fixed grid until the load ends, then one last one.
    await sampleAll(cluster, series, 0);
    for (let next = flags.sampleInterval; !loadDone; next += flags.sampleInterval) {
      const waitMs = Math.max(0, (next - elapsedS()) * 1000);
      await Promise.race([load.then(() => undefined), new Promise((resolve) => setTimeout(resolve, waitMs))]);
      if (loadDone) break;
      await sampleAll(cluster, series, elapsedS());
      const last = (name: string, metric: SeriesMetric): string => {
        const value = series.get(`${name}/${metric}`)?.samples.at(-1)?.value;
        return value === undefined ? "?" : mib(value);
      };
      out(
        `  t=${elapsedS().toFixed(0)} s  ` +
          cluster.plan.map((spec) => `${spec.name} disk ${last(spec.name, "disk")} rss ${last(spec.name, "rss")}`).join(", ") +
          " MiB",
      );
    }
    const result = await load;
    await sampleAll(cluster, series, elapsedS());
    const figures = await trimFigures(cluster);
    client.close();
    const backupsTaken = countBackups(backupDir);
    const restartsAtEnd = await timeRestarts(cluster, restarted);

    const bound = (name: string, metric: SeriesMetric): GrowthBound => {
      // The caches a service declares fill and then stay: their size is part of the rise allowed.
      const service = cluster.plan.find((spec) => spec.name === name)?.service;
      const rssAllowed =
        service === "logstore"
          ? flags.logstoreRssBudgetMib * MIB + flags.logstoreCacheBytes
          : flags.rssBudgetMib * MIB + (service === "shard" ? flags.sqliteCacheBytes : 0);
      return {
        relativePctPerHour: flags.maxGrowthPctPerHour,
        absolutePerHour: (metric === "disk" ? flags.diskFloorMibPerHour : flags.rssFloorMibPerHour) * MIB,
        riseAllowed: metric === "rss" ? rssAllowed : 0,
      };
    };
    const judged = [...series.values()].filter((s) => s.metric !== "heap");
    const rows = judged.map((s) => ({ series: s, verdict: judgeTrend(s.samples, bound(s.name, s.metric)) }));
    out("");
    out(`load: ${result.acked} acked, ${result.failed} failed, ${result.skipped} skipped of ${result.slotsTotal} slots`);
    for (const line of figures) out(line);
    out(`shard backups taken (kept in ${backupDir}): ${backupsTaken.taken}, newest per shard: ${backupsTaken.newest.join(", ")}`);
    out("restart (stop, start, serving), ms at the start and at the end:");
    for (const name of restarted) {
      out(`  ${name.padEnd(16)} ${restartsAtStart.get(name)!.toFixed(0).padStart(7)} ${restartsAtEnd.get(name)!.toFixed(0).padStart(7)}`);
    }
    out(formatVerdicts(rows));
    const heapRows = [...series.values()].filter((s) => s.metric === "heap");
    out(
      `JS heap used, MiB first -> last: ${heapRows.map((s) => `${s.name} ${mib(s.samples[0]!.value)} -> ${mib(s.samples.at(-1)!.value)}`).join(", ")}`,
    );
    const growing = rows.filter((row) => row.verdict.grows);
    const failures: string[] = [];
    if (result.acked === 0) failures.push("no transaction was acknowledged");
    if (growing.length > 0)
      failures.push(`grows without bound: ${growing.map((row) => `${row.series.name} ${row.series.metric}`).join(", ")}`);
    for (const line of figures) if (/first_lsn=(?:1|0|\?) /.test(line)) failures.push(`never trimmed: ${line}`);
    if (backupsTaken.newest.length < flags.shards) failures.push(`${flags.shards - backupsTaken.newest.length} shard(s) took no backup`);
    failed = failures.length > 0;
    for (const failure of failures) out(`FAIL: ${failure}`);
    if (!failed) out("PASS: every series bounded, every replica trimmed, every shard backed up, every restart served");
    if (flags.out !== undefined) {
      const report = {
        flags,
        load: result,
        trim: figures,
        backupsTaken: backupsTaken.taken,
        restartsMs: Object.fromEntries(restarted.map((name) => [name, { start: restartsAtStart.get(name), end: restartsAtEnd.get(name) }])),
        series: [...series.values()],
        verdicts: rows.map((row) => ({ name: row.series.name, metric: row.series.metric, ...row.verdict })),
        failures,
      };
      fs.writeFileSync(flags.out, `${JSON.stringify(report, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`);
    }
  } finally {
    await cluster.stop();
    if (flags.keepData) process.stderr.write(`data and logs kept in ${dataDir}\n`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  }
  if (failed) process.exitCode = 1;
}

/** Backups in `dir` (shard-N-lsn-L.sqlite): how many are kept and the newest LSN per shard seen. */
function countBackups(dir: string): { taken: number; newest: bigint[] } {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    // none yet
  }
  const newest = new Map<number, bigint>();
  let taken = 0;
  for (const name of names) {
    const match = /^shard-(\d+)-lsn-(\d+)\.sqlite$/.exec(name);
    if (match === null) continue;
    taken++;
    const shard = Number(match[1]);
    const lsn = BigInt(match[2]!);
    if ((newest.get(shard) ?? 0n) < lsn) newest.set(shard, lsn);
  }
  return { taken, newest: [...newest.values()] };
}

runMain("soak", main);
