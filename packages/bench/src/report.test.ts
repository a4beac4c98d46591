import type { DelaySummary } from "./delay-histograms";
import { formatReport, type BenchReport } from "./report";

const summary = (p50Ms: number | null): DelaySummary =>
  p50Ms === null
    ? { count: 0, meanMs: null, p50Ms: null, p99Ms: null, p999Ms: null, maxMs: null }
    : { count: 100, meanMs: p50Ms * 1.5, p50Ms, p99Ms: p50Ms * 10, p999Ms: p50Ms * 20, maxMs: p50Ms * 30 };

function report(shardP50s: readonly (number | null)[]): BenchReport {
  return {
    formatVersion: 1,
    startedAt: "2026-11-22T09:00:00.000Z",
    config: {
      rate: 1000,
      durationS: 10,
      warmupS: 2,
      shards: shardP50s.length,
      keysPerTxn: 10,
      valueBytes: 1024,
      keySpace: 10_000,
      logPlayers: 1,
      logStoreReplicas: 1,
      inflightMax: 10_000,
      seed: 1,
      logLevel: "warn",
      commitTimeoutMs: 10_000,
      transport: "mtls",
      traceEvery: 0,
    },
    machine: {
      cpus: 2,
      cpuModel: "test cpu",
      nodeVersion: "v20.0.0",
      platform: "linux",
      arch: "x64",
      totalMemoryBytes: 1,
      loadAverage: [0, 0, 0],
    },
    result: {
      measures: { logPlayerDelay: summary(0.7), applyDelay: summary(4), commitLatency: summary(5), sqliteCommitDelay: summary(4.5) },
      slots: 10_000,
      sent: 10_000,
      acked: 10_000,
      failed: 0,
      skipped: 0,
      unfinished: 0,
      throughputPerS: 999.9,
      elapsedS: 10.001,
      lastLsn: "12000",
      allApplied: true,
      shards: shardP50s.map((p50, shardId) => ({
        shardId,
        parts: 100,
        appliedLsn: "12000",
        expectedLsn: "12000",
        logPlayerDelay: summary(p50),
      })),
      groupCommits: { replica: "logstore", groupCommits: 6000, entriesPerGroup: 1.66, durableWriteMeanMs: 1.234 },
      machineCpu: { busyPercent: 81.6, userPercent: 65.2, systemPercent: 16.4, iowaitPercent: 3.1, stealPercent: 0.14 },
      processCpu: [],
      breakdown: null,
      cdfs: [],
      errors: [],
    },
  };
}

describe("the bench's text report", () => {
  test("warns when the hypervisor took a noticeable share of the CPU, and not otherwise", () => {
    const stolen = report([0.5]);
    stolen.result.machineCpu = { busyPercent: 71, userPercent: 58, systemPercent: 13, iowaitPercent: 2, stealPercent: 11.24 };
    expect(formatReport(stolen)).toMatch(/^warning {5}the hypervisor took 11\.2% of this machine's CPU during the measured phase;/m);
    expect(formatReport(report([0.5]))).not.toMatch(/^warning/m);
  });

  test("says so when the machine's CPU use could not be read", () => {
    const withoutCpu = report([0.5]);
    withoutCpu.result.machineCpu = null;
    expect(formatReport(withoutCpu)).toContain("CPU         machine use not read (no /proc/stat)");
  });

  test("shows each shard's LogPlayer delay p50 in shard order, '-' for a shard that received nothing", () => {
    const text = formatReport(report([0.652, 0.7716, null]));
    expect(text).toContain("per shard   LogPlayer delay p50 0.652 / 0.772 / - ms");
  });

  test("shows the measures, the throughput and the LogStore's group commits", () => {
    const text = formatReport(report([0.5]));
    expect(text).toMatch(/^LogPlayer delay \(dispatch -> received\)\s+100\s+1\.050\s+0\.700\s+7\.000\s+14\.000\s+21\.000$/m);
    expect(text).toContain("throughput  999.9 acks/s (10000 acked in 10.001 s)");
    expect(text).toContain("LogStore    6000 group commits (logstore), 1.7 entries each, durable write 1.23 ms mean");
    expect(text).toContain("CPU         82% busy over the measured phase (user 65%, system 16%, iowait 3%, steal 0.1%)");
  });
});
