// A short chaos run with real processes: every kind of fault is injected, and
// the data must show exactly-once, in-order delivery and read-your-writes.
import { formatReport, runChaos, type ChaosReport } from "@logplayer/chaos";

const SEED = 20261122;
const DURATION_MS = 20_000;

let report: ChaosReport;

beforeAll(async () => {
  report = await runChaos({
    durationMs: DURATION_MS,
    seed: SEED,
    shardCount: 3,
    logPlayers: 2,
    catchUpTimeoutMs: 45_000,
  });
  // The summary is the first thing to read when this test fails.
  process.stdout.write(`${formatReport(report)}\n`);
}, 150_000);

test("no violations: every acknowledged token once per key in LSN order, nothing unsent, reads never older than their min LSN", () => {
  expect(report.violations).toEqual([]);
  expect(report.commitLsn).toBeGreaterThan(0n);
  expect(report.workload.acked).toBeGreaterThan(0);
  // The checks looked at real data: every key, every acknowledged token, the whole log, and reads made during the faults.
  expect(report.checks.keys).toBeGreaterThan(0);
  expect(report.checks.tokens).toBeGreaterThanOrEqual(report.workload.acked * 2);
  expect(BigInt(report.checks.logEntries)).toBe(report.commitLsn);
  expect(report.checks.rywReads).toBeGreaterThan(0);
});

test("faults of every kind were injected and undone", () => {
  const { faults } = report;
  for (const kind of ["logstore", "shard", "logplayer"]) expect(faults.kills[kind] ?? 0).toBeGreaterThan(0);
  const kills = Object.values(faults.kills).reduce((a, b) => a + b, 0);
  expect(faults.restarts).toBe(kills);
  expect(faults.linkCuts).toBeGreaterThan(0);
  expect(faults.linkStalls).toBeGreaterThan(0);
  expect(Object.values(faults.pauses).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  expect(faults.crashes).toBe(0);
});
