import os from "node:os";
import type { BenchConfig, BenchOutcome } from "./bench";
import { formatMs, formatSummaryTable } from "./delay-histograms";
import { renderHtmlReport } from "./html-report";

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  nodeVersion: string;
  platform: string;
  arch: string;
  totalMemoryBytes: number;
  loadAverage: number[];
}

export interface BenchReport {
  /** Bumped when the JSON's shape changes. */
  formatVersion: 1;
  startedAt: string;
  config: BenchConfig;
  machine: MachineInfo;
  /** Every delay in milliseconds; counts are parts (delivery measures) or transactions (commit latency). */
  result: BenchOutcome;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    nodeVersion: process.version,
    platform: os.platform(),
    arch: os.arch(),
    totalMemoryBytes: os.totalmem(),
    loadAverage: os.loadavg(),
  };
}

/** bench-results/bench-3s-1000r-20261122T014200Z.json */
export function defaultOutPath(config: Pick<BenchConfig, "shards" | "rate">, startedAt: Date): string {
  const stamp = startedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `bench-results/bench-${config.shards}s-${config.rate}r-${stamp}.json`;
}

/**
 * Steal at or above this share of the CPU is called out under the report: at
 * 4-14 % the LogPlayer delay p50 at 1,000 txn/s over 3 shards was 0.63-1.10
 * ms, against 0.52-0.85 ms below 1 %.
 */
const STEAL_WARNING_PERCENT = 2;

/** The human-readable report. Pure. */
export function formatReport(report: BenchReport): string {
  const { config, result } = report;
  const m = result.measures;
  const table = formatSummaryTable([
    { name: "LogPlayer delay (dispatch -> received)", summary: m.logPlayerDelay },
    { name: "apply delay (commit -> received)", summary: m.applyDelay },
    { name: "commit latency (append -> ack)", summary: m.commitLatency },
    { name: "delay to SQLite commit", summary: m.sqliteCommitDelay },
  ]);
  const lines = [
    `offered ${config.rate} txn/s for ${config.durationS} s (after ${config.warmupS} s warm-up), ` +
      `${config.shards} shards, ${config.keysPerTxn} keys x ${config.valueBytes} B per txn, ${config.logPlayers} LogPlayer(s), ${config.logStoreReplicas} LogStore replica(s), ` +
      `transport ${config.transport}`,
    "",
    table,
    "",
    `throughput  ${result.throughputPerS.toFixed(1)} acks/s (${result.acked} acked in ${result.elapsedS.toFixed(3)} s)`,
    `sends       ${result.sent} of ${result.slots} slots; skipped ${result.skipped} (in-flight bound ${config.inflightMax}), ` +
      `failed ${result.failed}, unanswered ${result.unfinished}`,
    `last LSN    ${result.lastLsn}; every shard applied its last entry: ${result.allApplied ? "yes" : "NO (delays are partial)"}`,
    result.groupCommits === null
      ? "LogStore    group commits: metrics not read"
      : `LogStore    ${result.groupCommits.groupCommits} group commits (${result.groupCommits.replica}), ` +
        `${result.groupCommits.entriesPerGroup.toFixed(1)} entries each, durable write ${result.groupCommits.durableWriteMeanMs.toFixed(2)} ms mean`,
    result.machineCpu === null
      ? "CPU         machine use not read (no /proc/stat)"
      : `CPU         ${result.machineCpu.busyPercent.toFixed(0)}% busy over the measured phase ` +
        `(user ${result.machineCpu.userPercent.toFixed(0)}%, system ${result.machineCpu.systemPercent.toFixed(0)}%, ` +
        `iowait ${result.machineCpu.iowaitPercent.toFixed(0)}%, steal ${result.machineCpu.stealPercent.toFixed(1)}%)`,
    `per shard   LogPlayer delay p50 ${result.shards.map((shard) => formatMs(shard.logPlayerDelay.p50Ms)).join(" / ")} ms`,
    `machine     ${report.machine.cpus} CPUs (${report.machine.cpuModel}), node ${report.machine.nodeVersion}`,
  ];
  if (result.machineCpu !== null && result.machineCpu.stealPercent >= STEAL_WARNING_PERCENT) {
    lines.push(
      `warning     the hypervisor took ${result.machineCpu.stealPercent.toFixed(1)}% of this machine's CPU during the measured phase; ` +
        "the delays include waiting for it (docs/benchmarks.md, fourth cut)",
    );
  }
  if (result.processCpu.length > 0) {
    lines.push("", "CPU per process over the measured phase (ms of CPU per acknowledged transaction, cores busy):");
    const width = Math.max(...result.processCpu.map((p) => p.name.length));
    for (const p of result.processCpu)
      lines.push(`  ${p.name.padEnd(width)}  ${p.msPerTxn.toFixed(3)} ms/txn  ${p.cores.toFixed(2)} cores`);
    const total = result.processCpu.reduce((sum, p) => sum + p.msPerTxn, 0);
    lines.push(`  ${"all".padEnd(width)}  ${total.toFixed(3)} ms/txn`);
  }
  const breakdown = result.breakdown;
  if (breakdown !== null) {
    lines.push(
      "",
      `delay breakdown: ${breakdown.tracedTxns} traced transactions (1 in ${config.traceEvery}), ${breakdown.completeTxns} seen at every ` +
        `LogStore and LogPlayer hop${breakdown.overwritten > 0 ? `; ${breakdown.overwritten} ring records overwritten` : ""}`,
      formatSummaryTable([...breakdown.segments, breakdown.total, breakdown.commitToAck]),
    );
  } else if (config.traceEvery > 0) {
    lines.push("", "delay breakdown: the services' hop traces could not be read");
  }
  for (const error of result.errors) lines.push(`error       ${error}`);
  return lines.join("\n");
}

/** The HTML page written beside the JSON: CDFs of the main measures and the breakdown as a stacked bar. Pure. */
export function formatHtmlReport(report: BenchReport): string {
  const { config, result } = report;
  const label = `${config.logStoreReplicas} replica(s), ${config.keysPerTxn} x ${config.valueBytes} B, ${config.rate} txn/s`;
  return renderHtmlReport({
    title: `pnpm bench, ${report.startedAt}`,
    notes: [
      label,
      `machine: ${report.machine.cpus} CPUs (${report.machine.cpuModel}), load average ${report.machine.loadAverage.map((l) => l.toFixed(2)).join(" ")}`,
    ],
    cdfs: result.cdfs,
    bars:
      result.breakdown === null
        ? []
        : [{ name: label, segments: result.breakdown.segments.map((row) => ({ name: row.name, ms: row.summary.meanMs ?? 0 })) }],
    text: formatReport(report),
  });
}
