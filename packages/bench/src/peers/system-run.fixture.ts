// Test fixtures of the peers tables: one system's run with the delays given, the rest plausible.
import type { DelaySummary } from "../delay-histograms";
import type { SystemRun } from "./table";

export const delay = (p50Ms: number, p99Ms: number): DelaySummary => ({
  count: 10,
  meanMs: p50Ms,
  p50Ms,
  p99Ms,
  p999Ms: p99Ms,
  maxMs: p99Ms,
});

export function run(system: string, p50: number, p99: number, extra: Partial<SystemRun> = {}): SystemRun {
  return {
    system,
    sqliteCommitDelay: delay(p50, p99),
    commitLatency: delay(p50 / 2, p99 / 2),
    cdf: [],
    sent: 10,
    acked: 10,
    failed: 0,
    throughputPerS: 1000,
    allApplied: true,
    cpuMsPerTxn: 1,
    ...extra,
  };
}
