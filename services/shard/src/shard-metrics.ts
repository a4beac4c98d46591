import { Counter, Gauge, Histogram, type Registry } from "@logplayer/common";

/** The shard's Prometheus metrics (names prefixed lp_shard_). */
export interface ShardMetrics {
  readonly partsApplied: Counter;
  readonly partsDuplicate: Counter;
  readonly gaps: Counter;
  readonly partsRejected: Counter;
  /** 1 while the database's disk is full (batches refused with RESOURCE_EXHAUSTED), else 0. */
  readonly diskFull: Gauge;
  readonly batchesRefused: Counter;
  readonly appliedLsn: Gauge;
  readonly durableLsn: Gauge;
  readonly newestBackupLsn: Gauge;
  readonly batchApplySeconds: Histogram;
  readonly walSyncAheadSeconds: Histogram;
  readonly checkpointSeconds: Histogram;
  readonly deliveryStreams: Gauge;
  readonly waitingReads: Gauge;
  readonly reads: Counter<"method" | "outcome">;
  /** The paper's LogPlayer delay: part received here - dispatched by the LogPlayer. */
  readonly playerDelaySeconds: Histogram;
  /** The paper's apply delay: part received here - committed by the LogStore. */
  readonly applyDelaySeconds: Histogram;
}

/** Delay buckets, 100 µs to 10 s: a stalled delivery shows in the top buckets, not past them. */
export const DELAY_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createShardMetrics(registry: Registry): ShardMetrics {
  const registers = [registry];
  return {
    partsApplied: new Counter({ name: "lp_shard_parts_applied_total", help: "Parts applied (dummies included).", registers }),
    partsDuplicate: new Counter({ name: "lp_shard_parts_duplicate_total", help: "Parts skipped as already applied.", registers }),
    gaps: new Counter({ name: "lp_shard_gaps_total", help: "Gap replies sent (a part did not follow on).", registers }),
    diskFull: new Gauge({
      name: "lp_shard_disk_full",
      help: "1 while the shard's database has no room: batches are refused with RESOURCE_EXHAUSTED and retried by the LogPlayer",
      registers,
    }),
    partsRejected: new Counter({
      name: "lp_shard_parts_rejected_total",
      help: "Parts consumed but rejected as a whole at apply time (a value past value_bytes_max); see GetOutcome.",
      registers,
    }),
    batchesRefused: new Counter({
      name: "lp_shard_batches_refused_total",
      help: "Delivery batches refused as invalid; the stream was ended.",
      registers,
    }),
    appliedLsn: new Gauge({ name: "lp_shard_applied_lsn", help: "Highest applied LSN.", registers }),
    durableLsn: new Gauge({ name: "lp_shard_durable_lsn", help: "Applied LSN as of the last WAL checkpoint.", registers }),
    newestBackupLsn: new Gauge({
      name: "lp_shard_newest_backup_lsn",
      help: "Applied LSN of the newest backup in --backup-dir (0: none).",
      registers,
    }),
    batchApplySeconds: new Histogram({
      name: "lp_shard_batch_apply_seconds",
      help: "Time to apply one delivered batch in its SQLite transaction.",
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers,
    }),
    walSyncAheadSeconds: new Histogram({
      name: "lp_shard_wal_sync_ahead_seconds",
      help: "Time of the WAL fdatasync run off the event loop before each checkpoint.",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    checkpointSeconds: new Histogram({
      name: "lp_shard_checkpoint_seconds",
      help: "Time of one WAL checkpoint on the event loop (deliveries and reads wait meanwhile).",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    deliveryStreams: new Gauge({ name: "lp_shard_delivery_streams", help: "Open Deliver streams.", registers }),
    waitingReads: new Gauge({ name: "lp_shard_waiting_reads", help: "Reads waiting for applied_lsn >= min_lsn.", registers }),
    reads: new Counter({
      name: "lp_shard_reads_total",
      help: "Get, Scan and GetOutcome calls by outcome.",
      labelNames: ["method", "outcome"] as const,
      registers,
    }),
    playerDelaySeconds: new Histogram({
      name: "lp_shard_player_delay_seconds",
      help: "LogPlayer delay per part: received by the shard - dispatched by the LogPlayer (CLOCK_MONOTONIC; one host).",
      buckets: DELAY_BUCKETS_SECONDS,
      registers,
    }),
    applyDelaySeconds: new Histogram({
      name: "lp_shard_apply_delay_seconds",
      help: "Apply delay per part: received by the shard - committed by the LogStore (CLOCK_MONOTONIC; one host).",
      buckets: DELAY_BUCKETS_SECONDS,
      registers,
    }),
  };
}
