import type { LogPlayerClient, MutationInput } from "@logplayer/client";
import type { LocalCluster } from "@logplayer/cluster";
import { type HopTraceSnapshot, LOOPBACK_HOST, markCommitTime, monotonicNs } from "@logplayer/common";
import { MutationKind } from "@logplayer/proto";
import { computeBreakdown, type DelayBreakdown, type TracedTxn } from "./breakdown";
import { CDF_PERCENTILES, type CdfSeries } from "./html-report";
import { cdfPoints, decodeDelayHistogram, type DelaySummary, type Histogram, mergeHistograms, summarizeUs } from "./delay-histograms";
import {
  type GroupCommitCounters,
  type GroupCommitSummary,
  parseGroupCommitCounters,
  scrapeMetrics,
  summarizeGroupCommits,
} from "./group-commit";
import { readCpuTicks, summarizeCpu, type MachineCpuSummary } from "./machine-cpu";
import { type ProcessCpu, readProcessTicks, summarizeProcessCpu } from "./process-cpu";
import { type OpenLoopProgress, type OpenLoopResult, runOpenLoop } from "./open-loop";
import { Workload } from "./workload";

export interface BenchConfig {
  /** Offered load, transactions per second. */
  rate: number;
  durationS: number;
  warmupS: number;
  shards: number;
  keysPerTxn: number;
  valueBytes: number;
  keySpace: number;
  logPlayers: number;
  /** LogStore replicas (1 = single replica; 3 or 5 = Raft). */
  logStoreReplicas: number;
  inflightMax: number;
  seed: number;
  logLevel: string;
  /** Deadline of each commit call. */
  commitTimeoutMs: number;
  /** mTLS (the default, as users run it) or plain text (--insecure), to measure what TLS costs. */
  transport: "mtls" | "insecure";
  /** Trace one transaction in this many for the delay breakdown; 0 = no trace (the services then record nothing). */
  traceEvery: number;
}

/** Where the run is, for the progress display. */
export type BenchPhase = "starting" | "warmup" | "settling" | "measuring" | "draining" | "collecting";

export interface BenchHooks {
  onPhase(phase: BenchPhase, live?: OpenLoopProgress): void;
}

export interface ShardStats {
  shardId: number;
  parts: number;
  /** The shard's applied LSN when the stats were read. */
  appliedLsn: string;
  /** The highest LSN of this run that touched the shard. */
  expectedLsn: string;
  /** This shard's share of the LogPlayer delay: shows whether one shard (say, the last one written) waits longer. */
  logPlayerDelay: DelaySummary;
}

export interface BenchMeasures {
  /** The paper's LogPlayer delay: dispatch -> target received. */
  logPlayerDelay: DelaySummary;
  /** The paper's apply delay: client commit -> target received. */
  applyDelay: DelaySummary;
  /** Client append sent (scheduled slot) -> ack. */
  commitLatency: DelaySummary;
  /** Client commit -> the shard's SQLite commit. */
  sqliteCommitDelay: DelaySummary;
}

export interface BenchOutcome {
  measures: BenchMeasures;
  slots: number;
  sent: number;
  acked: number;
  failed: number;
  skipped: number;
  /** Commits with no answer when the drain bound ran out. */
  unfinished: number;
  /** Acks per second over the measured phase (first slot to last ack). */
  throughputPerS: number;
  /** First slot to last ack, seconds. */
  elapsedS: number;
  lastLsn: string;
  /** False when some shard had not applied the run's last entry for it within the bound. */
  allApplied: boolean;
  shards: ShardStats[];
  /** The LogStore leader's group commits over the measured phase; null when its metrics could not be read. */
  groupCommits: GroupCommitSummary | null;
  /** The machine's CPU use over the measured phase; null off Linux. */
  machineCpu: MachineCpuSummary | null;
  /** Each process's CPU over the measured phase (services and this load generator); empty off Linux. */
  processCpu: ProcessCpu[];
  /** Latency CDFs of the main measures, for the HTML report. */
  cdfs: CdfSeries[];
  /** Per-hop delays of the sampled transactions; null when tracing was off or the rings could not be read. */
  breakdown: DelayBreakdown | null;
  errors: string[];
}

const DRAIN_TIMEOUT_MS = 30_000;
const APPLY_WAIT_TIMEOUT_MS = 60_000;
const APPLY_POLL_INTERVAL_MS = 50;
const CONNECT_TIMEOUT_MS = 15_000;
const STATS_TIMEOUT_MS = 10_000;
const METRICS_TIMEOUT_MS = 2_000;
const TRACE_READ_TIMEOUT_MS = 10_000;

/** Runs warm-up and the measured phase against an already started cluster. */
export async function runBenchmark(cluster: LocalCluster, config: BenchConfig, hooks: BenchHooks): Promise<BenchOutcome> {
  // The admin certificate: the bench appends and also reads and resets the shards' DeliveryStats (admin and LogPlayer only).
  const client = await cluster.connectClient({ timeoutMs: CONNECT_TIMEOUT_MS, security: cluster.adminSecurity });
  try {
    const workload = new Workload({
      keysPerTxn: config.keysPerTxn,
      valueBytes: config.valueBytes,
      keySpace: config.keySpace,
      shardCount: config.shards,
      seed: config.seed,
    });
    const tracer = new TxnTracer(config.traceEvery);
    if (config.warmupS > 0) {
      const warmup = await phase(client, workload, config, tracer, config.warmupS, (live) => hooks.onPhase("warmup", live));
      hooks.onPhase("settling");
      await waitForApplied(client, warmup.lastLsnByShard);
    }
    // Start the measured histograms empty: warm-up parts are all received by now.
    await Promise.all(range(config.shards).map((i) => client.deliveryStats(i, { reset: true, timeoutMs: STATS_TIMEOUT_MS })));
    const groupCommitsBefore = await scrapeLogStores(cluster);
    const cpuBefore = readCpuTicks();
    const processTicksBefore = readClusterTicks(cluster);
    tracer.recording = true;
    const measured = await phase(client, workload, config, tracer, config.durationS, (live) => hooks.onPhase("measuring", live));
    tracer.recording = false;
    const processTicksAfter = readClusterTicks(cluster);
    const cpuAfter = readCpuTicks();
    const groupCommitsAfter = await scrapeLogStores(cluster);
    hooks.onPhase("draining");
    const allApplied = await waitForApplied(client, measured.lastLsnByShard);
    hooks.onPhase("collecting");
    const groupCommits = summarizeGroupCommits(
      [...groupCommitsAfter].flatMap(([replica, after]) => {
        const before = groupCommitsBefore.get(replica);
        return before === undefined ? [] : [{ replica, before, after }];
      }),
    );
    const machineCpu = cpuBefore !== null && cpuAfter !== null ? summarizeCpu(cpuBefore, cpuAfter) : null;
    const measuredS = Number(measured.lastAckNs - measured.startNs) / 1e9;
    const processCpu = summarizeProcessCpu(processTicksBefore, processTicksAfter, measuredS, measured.acked);
    const breakdown = config.traceEvery > 0 ? await readBreakdown(cluster, tracer.txns) : null;
    return { ...(await collect(client, config, measured, allApplied, groupCommits, machineCpu)), processCpu, breakdown };
  } finally {
    client.close();
  }
}

/** Marks one send in `every` for the hop trace and keeps the marked ones acknowledged while recording. */
class TxnTracer {
  recording = false;
  readonly txns: TracedTxn[] = [];
  #sends = 0;

  constructor(private readonly every: number) {}

  /** The commit time to send: odd when this send is traced. */
  mark(): { commitTimeNs: bigint; traced: boolean } {
    const traced = this.every > 0 && this.#sends % this.every === 0;
    this.#sends += 1;
    return { commitTimeNs: markCommitTime(monotonicNs(), traced), traced };
  }

  acked(commitTimeNs: bigint, lsn: bigint): void {
    if (this.recording) this.txns.push({ commitTimeNs, lsn, ackNs: monotonicNs() });
  }
}

function phase(
  client: LogPlayerClient,
  workload: Workload,
  config: BenchConfig,
  tracer: TxnTracer,
  durationS: number,
  onStart: (live: OpenLoopProgress) => void,
): Promise<OpenLoopResult> {
  return runOpenLoop(
    {
      rate: config.rate,
      durationS,
      inflightMax: config.inflightMax,
      drainTimeoutMs: DRAIN_TIMEOUT_MS,
      clock: monotonicNs,
      nextTxn: () => workload.next(),
      commit: async (txn) => {
        // The wire Mutation directly: mutation.put() copies its value, and the pooled values never change.
        const mutations = txn.keys.map(
          (key, i): MutationInput => ({ kind: MutationKind.MUTATION_KIND_PUT, key, value: txn.values[i]!, delta: 0n }),
        );
        // The paper's commit time: read after the transaction is built, right before the send.
        const { commitTimeNs, traced } = tracer.mark();
        const { lsn } = await client.commit(mutations, { commitTimeNs, timeoutMs: config.commitTimeoutMs });
        if (traced) tracer.acked(commitTimeNs, lsn);
        return lsn;
      },
      shardCount: config.shards,
    },
    onStart,
  );
}

/** Each LogStore replica's group-commit counters; a replica whose metrics cannot be read is left out. */
async function scrapeLogStores(cluster: LocalCluster): Promise<Map<string, GroupCommitCounters>> {
  const counters = new Map<string, GroupCommitCounters>();
  for (const spec of cluster.plan) {
    if (spec.service !== "logstore" || spec.metricsPort < 0) continue;
    try {
      counters.set(spec.name, parseGroupCommitCounters(await scrapeMetrics(LOOPBACK_HOST, spec.metricsPort, METRICS_TIMEOUT_MS)));
    } catch {
      // Only the report's group-commit line is lost.
    }
  }
  return counters;
}

/** CPU ticks of every running service process and of this load generator, by process name. */
function readClusterTicks(cluster: LocalCluster): Map<string, number> {
  const ticks = new Map<string, number>();
  for (const managed of cluster.processes) {
    const pid = managed.pid;
    const read = pid === undefined ? null : readProcessTicks(pid);
    if (read !== null) ticks.set(managed.name, read);
  }
  const own = readProcessTicks(process.pid);
  if (own !== null) ticks.set(LOAD_GENERATOR_NAME, own);
  return ticks;
}

export const LOAD_GENERATOR_NAME = "load generator (bench)";

/** Reads every service's hop-trace ring and joins them with the traced transactions; null when a ring cannot be read. */
async function readBreakdown(cluster: LocalCluster, txns: readonly TracedTxn[]): Promise<DelayBreakdown | null> {
  const snapshots: Record<"logstore" | "logplayer" | "shard", HopTraceSnapshot[]> = { logstore: [], logplayer: [], shard: [] };
  try {
    for (const spec of cluster.plan) {
      if (spec.metricsPort < 0) return null;
      const body = await scrapeMetrics(LOOPBACK_HOST, spec.metricsPort, TRACE_READ_TIMEOUT_MS, "/debug/hop-trace");
      snapshots[spec.service].push(JSON.parse(body) as HopTraceSnapshot);
    }
  } catch {
    return null;
  }
  return computeBreakdown(txns, { logStores: snapshots.logstore, logPlayers: snapshots.logplayer, shards: snapshots.shard });
}

/** Polls each shard until it applied the last LSN sent to it (bounded). True when all did. */
async function waitForApplied(client: LogPlayerClient, lastLsnByShard: readonly bigint[]): Promise<boolean> {
  const deadline = Date.now() + APPLY_WAIT_TIMEOUT_MS;
  const pending = new Set(lastLsnByShard.map((_, i) => i).filter((i) => lastLsnByShard[i]! > 0n));
  while (pending.size > 0 && Date.now() < deadline) {
    for (const shardId of [...pending]) {
      try {
        const status = await client.shardStatus(shardId, { timeoutMs: 1_000 });
        if (status.appliedLsn >= lastLsnByShard[shardId]!) pending.delete(shardId);
      } catch {
        // A slow or restarting shard: keep polling until the deadline.
      }
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, APPLY_POLL_INTERVAL_MS));
  }
  return pending.size === 0;
}

async function collect(
  client: LogPlayerClient,
  config: BenchConfig,
  run: OpenLoopResult,
  allApplied: boolean,
  groupCommits: GroupCommitSummary | null,
  machineCpu: MachineCpuSummary | null,
): Promise<BenchOutcome> {
  const player: Histogram[] = [];
  const apply: Histogram[] = [];
  const sqlite: Histogram[] = [];
  const shards: ShardStats[] = [];
  for (const shardId of range(config.shards)) {
    const stats = await client.deliveryStats(shardId, { timeoutMs: STATS_TIMEOUT_MS });
    const status = await client.shardStatus(shardId, { timeoutMs: STATS_TIMEOUT_MS });
    const playerDelay = decodeDelayHistogram(stats.playerDelayUs);
    player.push(playerDelay);
    apply.push(decodeDelayHistogram(stats.applyDelayUs));
    sqlite.push(decodeDelayHistogram(stats.sqliteCommitDelayUs));
    shards.push({
      shardId,
      parts: Number(stats.parts),
      appliedLsn: status.appliedLsn.toString(),
      expectedLsn: run.lastLsnByShard[shardId]!.toString(),
      logPlayerDelay: summarizeUs(playerDelay),
    });
  }
  const elapsedS = Number(run.lastAckNs - run.startNs) / 1e9;
  const sqliteCommitDelay = mergeHistograms(sqlite);
  const logPlayerDelay = mergeHistograms(player);
  return {
    measures: {
      logPlayerDelay: summarizeUs(logPlayerDelay),
      applyDelay: summarizeUs(mergeHistograms(apply)),
      commitLatency: summarizeUs(run.commitLatency),
      sqliteCommitDelay: summarizeUs(sqliteCommitDelay),
    },
    slots: run.slotsTotal,
    sent: run.sent,
    acked: run.acked,
    failed: run.failed,
    skipped: run.skipped,
    unfinished: run.unfinished,
    throughputPerS: elapsedS > 0 ? run.acked / elapsedS : 0,
    elapsedS,
    lastLsn: run.lastLsn.toString(),
    allApplied,
    shards,
    groupCommits,
    machineCpu,
    processCpu: [],
    breakdown: null,
    cdfs: [
      { name: "send -> SQLite commit", points: cdfPoints(sqliteCommitDelay, CDF_PERCENTILES) },
      { name: "commit latency (append -> ack)", points: cdfPoints(run.commitLatency, CDF_PERCENTILES) },
      { name: "LogPlayer delay", points: cdfPoints(logPlayerDelay, CDF_PERCENTILES) },
    ],
    errors: run.errors,
  };
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
