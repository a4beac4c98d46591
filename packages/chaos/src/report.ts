import type { ChaosReport } from "./chaos-run";

/** Violations printed one per line; beyond this only their count (a systematic bug repeats itself). */
export const VIOLATION_LINES_MAX = 500;

/** "60s", "1500ms", "2m": the form `--duration` takes back. */
export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Parses "60s", "2m", "500ms", "1h" or a bare number of seconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null) return undefined;
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  const ms = Math.round(Number(match[1]) * unitMs);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

export function replayCommand(
  report: Pick<
    ChaosReport,
    "durationMs" | "seed" | "shardCount" | "logPlayers" | "logStoreReplicas" | "ratePerSecond" | "unsafeShardMutation"
  >,
): string {
  const mutation = report.unsafeShardMutation === undefined ? "" : ` --unsafe-shard-mutation ${report.unsafeShardMutation}`;
  return (
    `pnpm chaos --duration ${formatDuration(report.durationMs)} --seed ${report.seed} --shards ${report.shardCount} ` +
    `--log-players ${report.logPlayers} --logstore-replicas ${report.logStoreReplicas} --rate ${report.ratePerSecond}${mutation} --keep-data`
  );
}

function byKind(counts: Record<string, number>): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return "none";
  return entries.map(([kind, count]) => `${kind} ${count}`).join(", ");
}

export function formatReport(report: ChaosReport): string {
  const { workload: w, faults: f, checks: c } = report;
  const unknownDetail = Object.keys(w.unknownByError).length === 0 ? "" : ` (${byKind(w.unknownByError)})`;
  const lines = [
    `chaos run: seed ${report.seed}, ${formatDuration(report.durationMs)} of faults, ${report.shardCount} shards, ` +
      `${report.logPlayers} LogPlayer(s), ${report.logStoreReplicas} LogStore replica(s), ${report.ratePerSecond} txn/s offered`,
    ...(report.unsafeShardMutation === undefined
      ? []
      : [
          `UNSAFE SHARD MUTATION ${report.unsafeShardMutation}: the shards break exactly-once on purpose (a self-test of the checks: violations expected)`,
        ]),
    `processes: ${report.processes.join(", ")}`,
    `cuttable links: ${report.links.join(", ")}`,
    `raft links: ${report.raftLinks.length === 0 ? "none" : report.raftLinks.join(", ")}` +
      (report.raftLinks.length === 0
        ? ""
        : ` (connections: ${report.raftConnections.routed} through the sender's link, ${report.raftConnections.unidentified} sender unidentified)`),
    `transactions: ${w.attempted} attempted, ${w.acked} acknowledged, ${w.unknown} unknown${unknownDetail}, ${w.throttled} sends skipped (in-flight bound)`,
    `faults: kills ${byKind(f.kills)}; restarts ${f.restarts} (${f.restartFailures} failed attempts); ` +
      `link cuts ${f.linkCuts}; link stalls ${f.linkStalls}; raft link cuts ${f.raftLinkCuts}; raft link stalls ${f.raftLinkStalls}; ` +
      `partitions ${byKind(f.partitions)}${f.partitionFailovers === 0 ? "" : ` (${f.partitionFailovers} with a new leader elected)`}; pauses ${byKind(f.pauses)}; crashes ${f.crashes}`,
    `checks: ${c.keys} keys, ${c.tokens} tokens, ${c.logEntries} log entries (final commit LSN ${report.commitLsn}), ` +
      `${c.rywReads} read-your-writes reads (${w.rywReadsFailed} more got no answer in time)`,
  ];
  if (report.violations.length === 0) {
    lines.push("result: PASS, no violations");
  } else {
    lines.push(`result: FAIL, ${report.violations.length} violation(s), seed ${report.seed}:`);
    for (const v of report.violations.slice(0, VIOLATION_LINES_MAX))
      lines.push(`  [${v.kind}]${v.key === undefined ? "" : ` ${v.key}:`} ${v.detail}`);
    const rest = report.violations.length - VIOLATION_LINES_MAX;
    if (rest > 0) lines.push(`  … and ${rest} more`);
  }
  lines.push(`replay: ${replayCommand(report)}`);
  if (report.dataKept) lines.push(`data and process logs kept in ${report.dataDir}`);
  return lines.join("\n");
}
