import type { DelaySummary } from "../delay-histograms";
import { median, type PeerWorkload, type SystemRun } from "./table";

/**
 * `pnpm bench:peers --table`: every row of the performance issue's comparison
 * (latency at two rates and two sizes, 20 shards, maximum sustained rate, CPU
 * per transaction) from one command, systems interleaved within each row.
 * This file is the pure part: the plan, the verdicts and the table's text.
 */

/** One latency row of the table: a workload and the systems it runs. */
export interface TableRow {
  readonly label: string;
  readonly workload: Pick<PeerWorkload, "rate" | "shards" | "keysPerTxn" | "valueBytes">;
  readonly systems: readonly string[];
}

/** The issue's latency rows. 20 shards runs the cluster only (the issue compares it with the cluster's 3-shard row). */
export function tableRows(systems: readonly string[]): TableRow[] {
  const clusterOnly = systems.filter((s) => s.startsWith("cluster-"));
  return [
    { label: "200 B, 1,000 txn/s", workload: { rate: 1000, shards: 3, keysPerTxn: 1, valueBytes: 200 }, systems },
    { label: "200 B, 5,000 txn/s", workload: { rate: 5000, shards: 3, keysPerTxn: 1, valueBytes: 200 }, systems },
    { label: "10 KB (10 x 1 KB), 1,000 txn/s", workload: { rate: 1000, shards: 3, keysPerTxn: 10, valueBytes: 1024 }, systems },
    {
      label: "10 KB, 1,000 txn/s, 20 shards",
      workload: { rate: 1000, shards: 20, keysPerTxn: 10, valueBytes: 1024 },
      systems: clusterOnly,
    },
  ];
}

/** The rates tried, lowest first, when looking for each system's maximum sustained rate (200 B, 3 shards). */
export const DEFAULT_LADDER_RATES: readonly number[] = [1000, 2000, 4000, 6000, 8000, 12000, 16000, 20000, 25000];

/** A rate is sustained when every repetition acknowledged at least this share of the offered rate ... */
export const SUSTAINED_ACHIEVED_SHARE = 0.95;
/** ... and its p99 stayed within this factor of the p99 at the ladder's first rate (the "knee" shows as a jump) ... */
export const SUSTAINED_P99_JUMP_FACTOR = 10;
/** ... and below this, whatever the first rate's p99 was. */
export const SUSTAINED_P99_CEILING_MS = 1000;

/** Why `runs` at `rate` do not count as sustained, or null when they do. Pure. */
export function unsustainedReason(rate: number, runs: readonly SystemRun[], firstRateP99Ms: number | null): string | null {
  if (runs.length === 0) return "no run";
  for (const run of runs) {
    if (run.failed > 0 || !run.allApplied) return `${run.failed} sends failed or not everything was applied`;
    if (run.throughputPerS < SUSTAINED_ACHIEVED_SHARE * rate) return `achieved ${run.throughputPerS.toFixed(0)}/s`;
    const p99 = run.sqliteCommitDelay.p99Ms;
    if (p99 === null) return "no p99";
    if (p99 > SUSTAINED_P99_CEILING_MS) return `p99 ${p99.toFixed(1)} ms over ${SUSTAINED_P99_CEILING_MS} ms`;
    if (firstRateP99Ms !== null && p99 > SUSTAINED_P99_JUMP_FACTOR * firstRateP99Ms) {
      return `p99 ${p99.toFixed(1)} ms jumped past ${SUSTAINED_P99_JUMP_FACTOR}x the first rate's ${firstRateP99Ms.toFixed(1)} ms`;
    }
  }
  return null;
}

/** One system's climb up the ladder: the highest sustained rate and why the next one was not. */
export interface LadderResult {
  readonly system: string;
  /** null when even the first rate was not sustained. */
  readonly maxSustained: number | null;
  /** The first rate that failed and why; null when the whole ladder held. */
  readonly stoppedAt: { readonly rate: number; readonly reason: string } | null;
}

/** One cell of a latency row: medians over the repetitions. */
export interface Cell {
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  readonly cpuMsPerTxn: number | null;
  readonly logPlayerDelay: DelaySummary | null;
  readonly incomplete: boolean;
}

/** Medians of one system's repetitions in one row. Pure. */
export function cellOf(runs: readonly SystemRun[]): Cell {
  const med = (pick: (run: SystemRun) => number | null | undefined): number | null =>
    median(runs.map(pick).filter((v): v is number => typeof v === "number"));
  const delays = runs.map((r) => r.logPlayerDelay).filter((d): d is DelaySummary => d !== undefined);
  const delayMed = (pick: (d: DelaySummary) => number | null): number | null =>
    median(delays.map(pick).filter((v): v is number => v !== null));
  return {
    p50Ms: med((r) => r.sqliteCommitDelay.p50Ms),
    p99Ms: med((r) => r.sqliteCommitDelay.p99Ms),
    cpuMsPerTxn: med((r) => r.cpuMsPerTxn),
    logPlayerDelay:
      delays.length === 0
        ? null
        : {
            count: delays.reduce((sum, d) => sum + d.count, 0),
            meanMs: delayMed((d) => d.meanMs),
            p50Ms: delayMed((d) => d.p50Ms),
            p99Ms: delayMed((d) => d.p99Ms),
            p999Ms: delayMed((d) => d.p999Ms),
            maxMs: delayMed((d) => d.maxMs),
          },
    incomplete: runs.length === 0 || runs.some((r) => r.failed > 0 || !r.allApplied),
  };
}

export interface TableResult {
  readonly systems: readonly string[];
  readonly rows: readonly { readonly row: TableRow; readonly cells: ReadonlyMap<string, Cell> }[];
  readonly ladder: readonly LadderResult[];
}

const ms = (v: number | null): string => (v === null ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(1));

/** The issue's table in Markdown: a column per system, latency rows, then max sustained, CPU and LogPlayer delay. Pure. */
export function formatIssueTable(result: TableResult): string {
  const { systems } = result;
  const lines = [`| workload | ${systems.map((s) => `${s} p50 / p99 ms`).join(" | ")} |`, `|---|${systems.map(() => "---|").join("")}`];
  for (const { row, cells } of result.rows) {
    const cell = (system: string): string => {
      const c = cells.get(system);
      if (c === undefined) return "—";
      return `${ms(c.p50Ms)} / ${ms(c.p99Ms)}${c.incomplete ? " (incomplete)" : ""}`;
    };
    lines.push(`| ${row.label} | ${systems.map(cell).join(" | ")} |`);
  }
  const ladder = (system: string): string => {
    const l = result.ladder.find((x) => x.system === system);
    if (l === undefined) return "—";
    const max = l.maxSustained === null ? "none" : `${l.maxSustained.toLocaleString("en-US")}/s`;
    return l.stoppedAt === null ? `≥ ${max}` : `${max} (at ${l.stoppedAt.rate}/s: ${l.stoppedAt.reason})`;
  };
  lines.push(`| max sustained, 200 B, 3 shards | ${systems.map(ladder).join(" | ")} |`);
  const first = result.rows[0];
  const cpu = (system: string): string => {
    const c = first?.cells.get(system);
    return c?.cpuMsPerTxn === null || c === undefined ? "—" : `${c.cpuMsPerTxn.toFixed(2)} ms`;
  };
  lines.push(`| CPU per transaction, ${first?.row.label ?? "-"} (all processes) | ${systems.map(cpu).join(" | ")} |`);
  for (const { row, cells } of result.rows) {
    // The issue's LogPlayer delay targets: 3 shards at 200 B, 1,000 txn/s, and 20 shards.
    const hasDelayTarget = row.workload.shards !== 3 || (row.workload.valueBytes === 200 && row.workload.rate === 1000);
    if (!hasDelayTarget) continue;
    const delay = (system: string): string => {
      const d = cells.get(system)?.logPlayerDelay;
      return d === null || d === undefined ? "—" : `${ms(d.p50Ms)} / ${ms(d.p99Ms)}`;
    };
    lines.push(`| LogPlayer delay (dispatch → received), ${row.label} | ${systems.map(delay).join(" | ")} |`);
  }
  return lines.join("\n");
}
