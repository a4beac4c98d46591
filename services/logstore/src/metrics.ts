import { Counter, Gauge, Histogram, type Registry } from "@logplayer/common";

/** The LogStore's Prometheus metrics (names prefixed lp_logstore_, like lp_player_ and lp_shard_). */
export interface LogStoreMetrics {
  /** Appends by outcome: "ok", "duplicate" (a retry answered with its original's LSN) or the gRPC status name of the refusal. */
  readonly appends: Counter<"outcome">;
  readonly appendLatency: Histogram;
  readonly durableWriteSeconds: Histogram;
  readonly groupCommitEntries: Histogram;
  readonly commitLsn: Gauge;
  /** 1 while the WAL's disk is full (appends refused with RESOURCE_EXHAUSTED, writes retried), else 0. */
  readonly walDiskFull: Gauge;
  readonly activeReaders: Gauge;
  /** Client sessions the dedupe table holds. */
  readonly dedupeSessions: Gauge;
  /** Client sessions ended since start, by cause: "evicted" (count bound) or "expired" (idle too long, in LSNs). */
  readonly dedupeSessionsEnded: Counter<"cause">;
  readonly bytesWritten: Counter;
  readonly entriesRead: Counter;
}

const LATENCY_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createLogStoreMetrics(registry: Registry): LogStoreMetrics {
  const registers = [registry];
  return {
    appends: new Counter({ name: "lp_logstore_appends_total", help: "Append calls by outcome", labelNames: ["outcome"], registers }),
    appendLatency: new Histogram({
      name: "lp_logstore_append_latency_seconds",
      help: "Append call to durable acknowledgement",
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    durableWriteSeconds: new Histogram({
      name: "lp_logstore_durable_write_seconds",
      help: "Time to write one group commit durably (writev on an O_DSYNC segment)",
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    }),
    groupCommitEntries: new Histogram({
      name: "lp_logstore_group_commit_entries",
      help: "Entries made durable by one group commit",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers,
    }),
    commitLsn: new Gauge({ name: "lp_logstore_commit_lsn", help: "Highest LSN acknowledged as durable", registers }),
    walDiskFull: new Gauge({
      name: "lp_logstore_wal_disk_full",
      help: "1 while the WAL's disk has no room: appends are refused with RESOURCE_EXHAUSTED and writes retried",
      registers,
    }),
    activeReaders: new Gauge({ name: "lp_logstore_active_readers", help: "Open Read streams", registers }),
    dedupeSessions: new Gauge({ name: "lp_logstore_dedupe_sessions", help: "Client sessions the dedupe table holds", registers }),
    dedupeSessionsEnded: new Counter({
      name: "lp_logstore_dedupe_sessions_ended_total",
      help: "Client sessions ended since start: evicted (past --dedupe-clients-max) or expired (idle past --dedupe-session-idle-entries-max)",
      labelNames: ["cause"],
      registers,
    }),
    bytesWritten: new Counter({ name: "lp_logstore_wal_bytes_written_total", help: "Bytes written to WAL segments", registers }),
    entriesRead: new Counter({ name: "lp_logstore_entries_read_total", help: "Entries sent on Read streams", registers }),
  };
}
