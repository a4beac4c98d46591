import { type DelaySummary, formatMs } from "../delay-histograms";

/** The open-loop workload every system gets. */
export interface PeerWorkload {
  rate: number;
  durationS: number;
  warmupS: number;
  shards: number;
  keysPerTxn: number;
  valueBytes: number;
  keySpace: number;
  inflightMax: number;
  seed: number;
}

/** One system's measured phase in one repetition. */
export interface SystemRun {
  system: string;
  /** Client send -> the consumer's (shard's) SQLite commit, per shard message (part). */
  sqliteCommitDelay: DelaySummary;
  /** Client send -> the server's acknowledgement. */
  commitLatency: DelaySummary;
  /** [percentile, ms] of sqliteCommitDelay. */
  cdf: [number, number][];
  sent: number;
  acked: number;
  /** Failed, skipped or unanswered sends. */
  failed: number;
  throughputPerS: number;
  allApplied: boolean;
  /** CPU of every process of the pipeline (server(s), consumers, load generator), ms per acknowledged transaction. */
  cpuMsPerTxn: number;
  /** The cluster's LogPlayer delay (dispatch -> shard received); the peers have no such hop. */
  logPlayerDelay?: DelaySummary;
}

/** The run order: every system once per repetition, in the same order (A B C A B C ...), so drift hits all alike. Pure. */
export function interleave<T>(systems: readonly T[], reps: number): { rep: number; system: T }[] {
  const order: { rep: number; system: T }[] = [];
  for (let rep = 1; rep <= reps; rep++) for (const system of systems) order.push({ rep, system });
  return order;
}

/** The median of `values` (the mean of the middle two for an even count), or null for none. Pure. */
export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export interface SystemSummary {
  system: string;
  reps: number;
  /** Medians over the repetitions. */
  p50Ms: number | null;
  p99Ms: number | null;
  commitP50Ms: number | null;
  throughputPerS: number | null;
  cpuMsPerTxn: number | null;
  /** This system's median p50 / p99 over the baseline's (the first system). */
  p50Ratio: number | null;
  p99Ratio: number | null;
  /** Some repetition failed sends or did not apply everything: its figures are past the knee. */
  incomplete: boolean;
}

/** Medians per system over the repetitions, with ratios to the first system listed. Pure. */
export function summarizeSystems(runs: readonly SystemRun[], systems: readonly string[]): SystemSummary[] {
  const base = (rows: SystemSummary[]): SystemSummary | undefined => rows[0];
  const rows: SystemSummary[] = systems.map((system) => {
    const mine = runs.filter((run) => run.system === system);
    const med = (pick: (run: SystemRun) => number | null): number | null => median(mine.map(pick).filter((v): v is number => v !== null));
    return {
      system,
      reps: mine.length,
      p50Ms: med((r) => r.sqliteCommitDelay.p50Ms),
      p99Ms: med((r) => r.sqliteCommitDelay.p99Ms),
      commitP50Ms: med((r) => r.commitLatency.p50Ms),
      throughputPerS: med((r) => r.throughputPerS),
      cpuMsPerTxn: med((r) => r.cpuMsPerTxn),
      p50Ratio: null,
      p99Ratio: null,
      incomplete: mine.some((r) => r.failed > 0 || !r.allApplied),
    };
  });
  const baseline = base(rows);
  const ratio = (value: number | null, of: number | null | undefined): number | null =>
    value === null || of === null || of === undefined || of === 0 ? null : value / of;
  for (const row of rows) {
    row.p50Ratio = ratio(row.p50Ms, baseline?.p50Ms);
    row.p99Ratio = ratio(row.p99Ms, baseline?.p99Ms);
  }
  return rows;
}

/** The text table: one row per system, medians over the repetitions, ratios to the first row. Pure. */
export function formatPeersTable(rows: readonly SystemSummary[]): string {
  const x = (ratio: number | null): string => (ratio === null ? "-" : `${ratio.toFixed(2)}x`);
  const header = ["system", "reps", "p50 ms", "p99 ms", "p50 ratio", "p99 ratio", "ack p50 ms", "acks/s", "CPU ms/txn", ""];
  const body = rows.map((r) => [
    r.system,
    String(r.reps),
    formatMs(r.p50Ms),
    formatMs(r.p99Ms),
    x(r.p50Ratio),
    x(r.p99Ratio),
    formatMs(r.commitP50Ms),
    r.throughputPerS === null ? "-" : r.throughputPerS.toFixed(0),
    r.cpuMsPerTxn === null ? "-" : r.cpuMsPerTxn.toFixed(3),
    r.incomplete ? "INCOMPLETE (failures or unapplied)" : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...body.map(line)].join("\n");
}
