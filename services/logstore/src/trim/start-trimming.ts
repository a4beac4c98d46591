import { Gauge, type Logger, type Registry } from "@logplayer/common";
import type { Wal } from "@logplayer/wal";
import { TrimPointFile, WalCompactor } from "./node-trim-ports";
import type { RetentionPolicy } from "@logplayer/delivery";
import { Trimmer } from "./trimmer";

export interface TrimOptions {
  readonly retention: RetentionPolicy;
  /** How often a trim pass runs without a report (retention by age, and the WAL bytes figure). */
  readonly passIntervalMs: number;
  /** A leader keeps the log for replicas at most this many entries behind; further behind, they get a snapshot. */
  readonly catchUpEntries: number;
}

export const DEFAULT_TRIM_PASS_INTERVAL_MS = 10_000;

export interface RunningTrimmer {
  readonly trimmer: Trimmer;
  stop(): Promise<void>;
}

/**
 * Opens this replica's trimming (the persisted trim point, the WAL as a
 * compactor), exports its gauges and runs a pass every passIntervalMs.
 */
export async function startTrimming(
  options: TrimOptions,
  dataDir: string,
  walDir: string,
  wal: Wal,
  shardCount: number,
  commitLsn: () => bigint,
  raftFloor: () => bigint,
  compactLog: (lsn: bigint, trimPoint: bigint) => Promise<{ readonly snapshotIndex: bigint }>,
  registry: Registry,
  logger: Logger,
): Promise<RunningTrimmer> {
  // The trim point goes into the snapshot too (the Trimmer exists by the time a compaction runs).
  let trimPointNow = (): bigint => 0n;
  const compactor = new WalCompactor(wal, walDir, (lsn) => compactLog(lsn, trimPointNow()));
  const trimmer = await Trimmer.open({
    compactor,
    store: new TrimPointFile(dataDir),
    retention: options.retention,
    shardCount,
    commitLsn,
    raftFloor,
    nowMs: () => Date.now(),
    logger,
  });
  trimPointNow = () => trimmer.trimPoint;
  const registers = [registry];
  new Gauge({
    name: "lp_logstore_first_lsn",
    help: "Lowest LSN this replica's WAL still stores",
    registers,
    collect() {
      this.set(Number(wal.firstLsn));
    },
  });
  new Gauge({
    name: "lp_logstore_last_lsn",
    help: "Highest LSN written to this replica's WAL (durable or not)",
    registers,
    collect() {
      this.set(Number(wal.lastLsn));
    },
  });
  new Gauge({
    name: "lp_logstore_trim_point",
    help: "Highest trim point this replica was told and persisted",
    registers,
    collect() {
      this.set(Number(trimmer.trimPoint));
    },
  });
  new Gauge({
    name: "lp_logstore_wal_bytes",
    help: "Bytes of WAL segment files on disk, as of the last trim pass",
    registers,
    collect() {
      this.set(trimmer.walBytes);
    },
  });
  let running: Promise<void> = Promise.resolve();
  const pass = (): void => {
    running = trimmer.trimNow().catch((err: unknown) => {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, "trim pass failed; the next one retries");
    });
  };
  pass();
  const timer = setInterval(pass, options.passIntervalMs);
  timer.unref();
  logger.info(
    {
      trimPoint: trimmer.trimPoint.toString(),
      retainBytes: options.retention.retainBytes,
      retainAgeMs: options.retention.retainAgeMs,
    },
    "trimming on",
  );
  return {
    trimmer,
    stop: async () => {
      clearInterval(timer);
      await running;
      await trimmer.drain();
    },
  };
}
