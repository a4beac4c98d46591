import type { TransportSecurity } from "@logplayer/tls";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { LogPlayerClient } from "@logplayer/client";
import { assert, seededRandom } from "@logplayer/common";
import { ChaosCluster } from "./chaos-cluster";
import { checkAgainstLog, checkFinalData, checkRywReads, type CheckCounts, type Violation } from "./checker";
import { DEFAULT_FAULT_INJECTOR, FaultInjector, type FaultCounts, type FaultInjectorConfig } from "./fault-injector";
import { DEFAULT_FAULT_SCHEDULE, FaultSchedule, type FaultScheduleConfig } from "./fault-schedule";
import { readFinalValues, readLog, waitForCatchUp } from "./final-state";
import { AppendWorkload, DEFAULT_WORKLOAD, workloadKeys, type WorkloadConfig, type WorkloadStats } from "./workload";

export interface ChaosOptions {
  /** Length of the fault phase. */
  durationMs: number;
  /** Seeds the fault sequence and the workload's key choices. */
  seed: number;
  shardCount: number;
  logPlayers: number;
  /** LogStore replicas: 1 (no Raft) or odd (default LOGSTORE_REPLICAS_DEFAULT, 3). */
  logStoreReplicas?: number;
  /**
   * TEST-ONLY: run every shard with this deliberate exactly-once bug (the
   * shard's LP_UNSAFE_TEST_MUTATION), to see the checks fail end to end.
   */
  unsafeShardMutation?: UnsafeShardMutation;
  workload?: Partial<WorkloadConfig>;
  faults?: Partial<FaultScheduleConfig>;
  injector?: Partial<FaultInjectorConfig>;
  /** Parent of the run's temp data dir (default os.tmpdir()). */
  tmpDir?: string;
  /** Keep the data dir even when the run passes (it is always kept when it fails). */
  keepData?: boolean;
  logLevel?: string;
  /** Bound on delivery catching up after the faults stop. */
  catchUpTimeoutMs?: number;
  /** Root holding services/<svc>/dist/main.js (default: this repository), e.g. a deliberately broken build. */
  repoRoot?: string;
  /** Progress lines (faults as they happen, phases). */
  log?: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  durationMs: number;
  shardCount: number;
  logPlayers: number;
  logStoreReplicas: number;
  unsafeShardMutation: UnsafeShardMutation | undefined;
  ratePerSecond: number;
  processes: string[];
  /** Cuttable links of the LogPlayers and the client. */
  links: string[];
  /** Cuttable links between LogStore replicas, one per direction. */
  raftLinks: string[];
  /** Connections between replicas: through the sender's link, or (sender not identified) an uncut one. */
  raftConnections: { routed: number; unidentified: number };
  workload: WorkloadStats;
  faults: FaultCounts;
  checks: CheckCounts;
  /** The commit LSN the final checks read at (0 when delivery never caught up). */
  commitLsn: bigint;
  violations: Violation[];
  dataDir: string;
  dataKept: boolean;
}

export const CATCH_UP_TIMEOUT_MS_DEFAULT = 60_000;
/** Like `pnpm start`: a 3-replica Raft LogStore, so replica kills, Raft link faults and partitions force elections. */
export const LOGSTORE_REPLICAS_DEFAULT = 3;
/**
 * The shard's test-only mutations (services/shard/src/unsafe-test-mutation.ts,
 * set through UNSAFE_SHARD_MUTATION_ENV). A shard refuses to start with a
 * name it does not know, so the two lists cannot drift apart silently.
 */
export const UNSAFE_SHARD_MUTATIONS = ["lazy-applied-lsn"] as const;
export type UnsafeShardMutation = (typeof UNSAFE_SHARD_MUTATIONS)[number];
export const UNSAFE_SHARD_MUTATION_ENV = "LP_UNSAFE_TEST_MUTATION";
const CONNECT_TIMEOUT_MS = 10_000;
const FINAL_READ_TIMEOUT_MS = 10_000;
const LOG_READ_TIMEOUT_MS = 30_000;
// Separate streams so the fault sequence does not depend on how many transactions ran.
const WORKLOAD_SEED_SALT = 0x9e3779b9;

/**
 * One chaos run: a cluster of real processes, the APPEND workload, seeded
 * faults for `durationMs`, then heal everything, wait for delivery, and check
 * the data. Resolves with the report (violations included); throws only when
 * the cluster cannot be started or read at all.
 */
export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => undefined);
  const workloadConfig = { ...DEFAULT_WORKLOAD, ...options.workload };
  const faultConfig = { ...DEFAULT_FAULT_SCHEDULE, ...options.faults };
  assert(options.durationMs > 0, "chaos duration is positive");
  const dataDir = fs.mkdtempSync(path.join(options.tmpDir ?? os.tmpdir(), `lp-chaos-${options.seed}-`));
  log(`data in ${dataDir}`);
  const logStoreReplicas = options.logStoreReplicas ?? LOGSTORE_REPLICAS_DEFAULT;
  if (options.unsafeShardMutation !== undefined)
    log(`UNSAFE shard mutation ${options.unsafeShardMutation}: the shards break exactly-once on purpose, violations are expected`);
  const cluster = await ChaosCluster.start({
    dataDir,
    shardCount: options.shardCount,
    logPlayers: options.logPlayers,
    logStoreReplicas,
    logLevel: options.logLevel ?? "info",
    ...(options.repoRoot === undefined ? {} : { repoRoot: options.repoRoot }),
    ...(options.unsafeShardMutation === undefined
      ? {}
      : { serviceEnv: { shard: { [UNSAFE_SHARD_MUTATION_ENV]: options.unsafeShardMutation } } }),
  });
  const clients: LogPlayerClient[] = [];
  let report: ChaosReport;
  try {
    const raftLinkNames = cluster.raftLinks.map((l) => l.name);
    const linkNames = cluster.proxies.map((p) => p.name).filter((name) => !raftLinkNames.includes(name));
    log(
      `cluster up: ${cluster.processes.map((p) => p.name).join(", ")}; ${linkNames.length} cuttable links, ${raftLinkNames.length} between replicas`,
    );
    const workloadClient = await cluster.connectWorkloadClient(CONNECT_TIMEOUT_MS);
    clients.push(workloadClient);
    const keysByShard = workloadKeys(options.shardCount, workloadConfig.keysPerShard, (key) => workloadClient.shardForKey(key));
    const workload = new AppendWorkload(workloadClient, keysByShard, seededRandom(options.seed ^ WORKLOAD_SEED_SALT), workloadConfig);
    const schedule = new FaultSchedule(
      seededRandom(options.seed),
      {
        processes: cluster.plan.map((s) => ({ name: s.name, service: s.service })),
        links: linkNames,
        raftLinks: raftLinkNames,
      },
      faultConfig,
    );
    const injector = new FaultInjector(
      cluster,
      schedule,
      faultConfig.faultsActiveMax,
      { ...DEFAULT_FAULT_INJECTOR, ...options.injector },
      log,
    );
    const unsubscribe = cluster.onUnexpectedExit((name, exit) => injector.onCrash(name, exit.signal ?? `exit code ${exit.code}`));
    await runFaultPhase(options.durationMs, workload, injector, log);
    log("faults over: healing every link, resuming and restarting every process");
    await healEverything(cluster, injector);
    unsubscribe();
    const direct = await cluster.connectDirectClient(CONNECT_TIMEOUT_MS);
    clients.push(direct);
    const verdict = await checkEverything(
      direct,
      workload,
      { catchUpTimeoutMs: options.catchUpTimeoutMs ?? CATCH_UP_TIMEOUT_MS_DEFAULT, logReader: cluster.security.admin },
      log,
    );
    const violations = [...workload.violations, ...injector.violations, ...verdict.violations];
    const raftConnections = cluster.raftConnections;
    const dataKept = options.keepData === true || violations.length > 0;
    report = {
      seed: options.seed,
      durationMs: options.durationMs,
      shardCount: options.shardCount,
      logPlayers: options.logPlayers,
      logStoreReplicas,
      unsafeShardMutation: options.unsafeShardMutation,
      ratePerSecond: workloadConfig.ratePerSecond,
      processes: cluster.plan.map((s) => s.name),
      links: linkNames,
      raftLinks: raftLinkNames,
      raftConnections,
      workload: workload.stats,
      faults: injector.counts,
      checks: verdict.counts,
      commitLsn: verdict.commitLsn,
      violations,
      dataDir,
      dataKept,
    };
  } finally {
    for (const client of clients) client.close();
    await cluster.stop();
  }
  if (!report.dataKept) fs.rmSync(dataDir, { recursive: true, force: true });
  return report;
}

async function runFaultPhase(
  durationMs: number,
  workload: AppendWorkload,
  injector: FaultInjector,
  log: (line: string) => void,
): Promise<void> {
  const endMs = Date.now() + durationMs;
  const stopped = (): boolean => Date.now() >= endMs;
  log(`workload and faults for ${(durationMs / 1000).toFixed(0)} s`);
  await Promise.all([workload.run(stopped), injector.run(stopped)]);
  await injector.drain();
}

/** After drain() every fault is undone; this also covers a process left down by failed restarts. */
async function healEverything(cluster: ChaosCluster, injector: FaultInjector): Promise<void> {
  for (const proxy of cluster.proxies) {
    proxy.heal();
    proxy.unstall();
  }
  for (const name of [...cluster.paused]) cluster.resume(name);
  for (const process of cluster.processes) {
    if (process.running) continue;
    try {
      await cluster.restart(process.name);
    } catch (err: unknown) {
      injector.violations.push({
        kind: "restart-failed",
        detail: `${process.name} final restart: ${err instanceof Error ? err.message : String(err)}`,
      });
    }
  }
}

async function checkEverything(
  client: LogPlayerClient,
  workload: AppendWorkload,
  check: { readonly catchUpTimeoutMs: number; readonly logReader: TransportSecurity },
  log: (line: string) => void,
): Promise<{ violations: Violation[]; counts: CheckCounts; commitLsn: bigint }> {
  log("waiting for delivery to catch up");
  const caughtUp = await waitForCatchUp(client, check.catchUpTimeoutMs);
  if (caughtUp.commitLsn === undefined) {
    return { violations: [caughtUp.violation!], counts: { keys: 0, tokens: 0, rywReads: 0, logEntries: 0 }, commitLsn: 0n };
  }
  const commitLsn = caughtUp.commitLsn;
  log(`caught up at commit LSN ${commitLsn}; reading ${workload.keys.length} keys and the log`);
  const finalValues = await readFinalValues(client, workload.keys, commitLsn, FINAL_READ_TIMEOUT_MS);
  const logEntries = await readLog(client.logStoreAddress, commitLsn, LOG_READ_TIMEOUT_MS, check.logReader);
  const data = checkFinalData(workload.txns, finalValues);
  const againstLog = checkAgainstLog(workload.txns, finalValues, logEntries);
  const ryw = checkRywReads(workload.reads, workload.txns, finalValues, againstLog.view);
  return {
    violations: [...data.violations, ...againstLog.violations, ...ryw],
    counts: { ...data.counts, rywReads: workload.stats.rywReads, logEntries: logEntries.length },
    commitLsn,
  };
}
