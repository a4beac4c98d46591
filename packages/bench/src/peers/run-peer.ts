import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { monotonicNs, shardForKey } from "@logplayer/common";
import { cdfPoints, decodeDelayHistogram, type DelaySummary, type Histogram, mergeHistograms, summarizeUs } from "../delay-histograms";
import { CDF_PERCENTILES } from "../html-report";
import { runOpenLoop } from "../open-loop";
import { readProcessTicks, summarizeProcessCpu } from "../process-cpu";
import { Workload } from "../workload";
import type { ConsumerConfig } from "./consumer";
import type { PeerServer } from "./servers";
import { encodePeerMessage, type FromConsumer, type ToConsumer } from "./wire";
import type { PeerWorkload, SystemRun } from "./table";

const DRAIN_TIMEOUT_MS = 30_000;
const APPLY_TIMEOUT_MS = 60_000;
const CONSUMER_START_TIMEOUT_MS = 20_000;

class ConsumerProcess {
  readonly child: ChildProcess;
  readonly #ready: Promise<void>;
  #onResult: ((message: FromConsumer) => void) | null = null;

  constructor(config: ConsumerConfig) {
    this.child = fork(path.join(__dirname, "consumer.js"), [JSON.stringify(config)], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.#ready = new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`consumer ${config.shard} not ready in ${CONSUMER_START_TIMEOUT_MS} ms`)),
        CONSUMER_START_TIMEOUT_MS,
      );
      this.child.on("message", (message: FromConsumer) => {
        if (message.type === "ready") {
          clearTimeout(timer);
          resolve();
        } else if (message.type === "failed") {
          clearTimeout(timer);
          reject(new Error(`consumer ${config.shard}: ${message.error}`));
        }
        this.#onResult?.(message);
      });
      this.child.on("exit", (code) => reject(new Error(`consumer ${config.shard} exited with ${code}`)));
    });
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  tell(message: ToConsumer): void {
    this.child.send(message);
  }

  /** Waits until it applied `expected` messages since the reset (bounded), and returns its histogram. */
  finish(expected: number): Promise<{ applied: number; histogram: Histogram }> {
    return new Promise((resolve, reject) => {
      this.#onResult = (message) => {
        if (message.type === "result") resolve({ applied: message.applied, histogram: decodeDelayHistogram(message.sqliteCommitDelayUs) });
        else if (message.type === "failed") reject(new Error(message.error));
      };
      this.tell({ type: "report", expected, timeoutMs: APPLY_TIMEOUT_MS });
    });
  }

  stop(): Promise<void> {
    if (this.child.exitCode !== null) return Promise.resolve();
    this.tell({ type: "stop" });
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
      this.child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/**
 * One run of a peer pipeline: N consumer processes, a warm-up, then the
 * measured open-loop phase; send -> SQLite commit per shard message, on the
 * same clock as the cluster's (CLOCK_MONOTONIC).
 */
export async function runPeerPipeline(server: PeerServer, workload: PeerWorkload, dataDir: string): Promise<SystemRun> {
  const consumers = Array.from(
    { length: workload.shards },
    (_, shard) =>
      new ConsumerProcess({
        system: server.name,
        shard,
        port: server.port,
        dbPath: path.join(dataDir, `${server.name}-consumer-${shard}.sqlite`),
      }),
  );
  try {
    await Promise.all(consumers.map((c) => c.ready()));
    const txns = new Workload({ ...workload, shardCount: workload.shards });
    const perShard = new Array<number>(workload.shards).fill(0);
    const phase = (durationS: number) =>
      runOpenLoop({
        rate: workload.rate,
        durationS,
        inflightMax: workload.inflightMax,
        drainTimeoutMs: DRAIN_TIMEOUT_MS,
        clock: monotonicNs,
        nextTxn: () => txns.next(),
        shardCount: workload.shards,
        commit: async (txn) => {
          const grouped = new Map<number, { keys: string[]; values: Buffer[] }>();
          txn.keys.forEach((key, i) => {
            const shard = shardForKey(key, txns.shardMap);
            const group = grouped.get(shard) ?? { keys: [], values: [] };
            group.keys.push(key);
            group.values.push(txn.values[i]!);
            grouped.set(shard, group);
          });
          const sendNs = monotonicNs();
          const payloads = new Map([...grouped].map(([shard, group]) => [shard, encodePeerMessage({ sendNs, ...group })]));
          await server.publish(payloads);
          for (const shard of grouped.keys()) perShard[shard]! += 1;
          return 1n;
        },
      });
    if (workload.warmupS > 0) await phase(workload.warmupS);
    // Let the warm-up drain before resetting the consumers' histograms.
    // The warm-up's messages applied (bounded) before the histograms are reset.
    await Promise.all(consumers.map((c, i) => c.finish(perShard[i]!)));
    perShard.fill(0);
    for (const c of consumers) c.tell({ type: "reset" });
    const pids = new Map<string, number | undefined>([
      [server.name === "redis" ? "redis-server" : "nats-server", server.pid],
      ...consumers.map((c, i): [string, number | undefined] => [`consumer-${i}`, c.child.pid]),
      ["load generator", process.pid],
    ]);
    const ticks = (): Map<string, number> =>
      new Map(
        [...pids].flatMap(([name, pid]) => {
          const read = pid === undefined ? null : readProcessTicks(pid);
          return read === null ? [] : [[name, read] as [string, number]];
        }),
      );
    const before = ticks();
    const measured = await phase(workload.durationS);
    const after = ticks();
    const elapsedS = Number(measured.lastAckNs - measured.startNs) / 1e9;
    const results = await Promise.all(consumers.map((c, i) => c.finish(perShard[i]!)));
    const delay = mergeHistograms(results.map((r) => r.histogram));
    const applied = results.reduce((sum, r) => sum + r.applied, 0);
    const expected = perShard.reduce((sum, n) => sum + n, 0);
    return summarizeRun(server.name, measured.commitLatency, delay, {
      sent: measured.sent,
      acked: measured.acked,
      failed: measured.failed + measured.skipped + measured.unfinished,
      throughputPerS: elapsedS > 0 ? measured.acked / elapsedS : 0,
      allApplied: applied >= expected,
      cpuMsPerTxn: summarizeProcessCpu(before, after, elapsedS, measured.acked).reduce((sum, p) => sum + p.msPerTxn, 0),
    });
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
  }
}

function summarizeRun(
  system: string,
  commitLatency: Histogram,
  sqliteCommitDelay: Histogram,
  counts: Omit<SystemRun, "system" | "sqliteCommitDelay" | "commitLatency" | "cdf">,
): SystemRun {
  const summary = (h: Histogram): DelaySummary => summarizeUs(h);
  return {
    system,
    sqliteCommitDelay: summary(sqliteCommitDelay),
    commitLatency: summary(commitLatency),
    cdf: cdfPoints(sqliteCommitDelay, CDF_PERCENTILES),
    ...counts,
  };
}
