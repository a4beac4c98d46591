import type { ShardStatusResponse, StatusResponse } from "@logplayer/proto";
import { histogramBuckets, type Sample, select } from "./prometheus-text";

/** What one poll gathered: each process's Status answer (or why not) and its /metrics samples. */
export interface PollResult {
  readonly atMs: number;
  readonly logstores: readonly { name: string; address: string; status?: StatusResponse; error?: string }[];
  readonly shards: readonly {
    shardId: number;
    name: string;
    address: string;
    status?: ShardStatusResponse;
    error?: string;
    metrics: Sample[];
  }[];
  readonly players: readonly { name: string; metrics: Sample[]; error?: string }[];
}

export interface ReplicaRow {
  name: string;
  address: string;
  healthy: boolean;
  role: string;
  term: number;
  commitLsn: number;
  lastLsn: number;
  /** Entries behind the leader's last index, as the leader reports it; null when unknown. */
  lag: number | null;
  error: string | null;
}

export interface ShardRow {
  shardId: number;
  name: string;
  address: string;
  up: boolean;
  appliedLsn: number;
  lagEntries: number | null;
  lagSeconds: number | null;
  /** The LogPlayer's target state for this shard (N, RF, FC, S, A), or null when no LogPlayer answered. */
  delivery: string | null;
  deliveryStreams: number;
  diskFull: string;
  error: string | null;
}

export interface TargetRow {
  player: string;
  target: number;
  state: string;
  term: number;
  queuedParts: number;
  windowBatches: number;
  lagEntries: number;
  lagSeconds: number;
}

export interface DelayHistogram {
  /** Upper bounds in seconds (the last is +Inf, sent as null). */
  bounds: (number | null)[];
  /** Parts per bucket (not cumulative) over the window. */
  counts: number[];
  total: number;
}

export interface ClusterView {
  atMs: number;
  leader: string | null;
  commitLsn: number;
  /** Committed entries per second over the last poll interval (null on the first poll). */
  txnRate: number | null;
  replicas: ReplicaRow[];
  shards: ShardRow[];
  targets: TargetRow[];
  playerDelay: DelayHistogram;
  applyDelay: DelayHistogram;
  delayWindowSeconds: number;
}

type Buckets = { le: number; count: number }[];
/** One poll's increase of one delay histogram, summed over the shards. */
type WindowSlot = { bounds: number[]; counts: number[] };

/** Cumulative bucket counts → per-bucket counts of the increase from `before` to `after` (a restart's drop counts as 0). */
function increase(before: Buckets | undefined, after: Buckets): number[] {
  const cumulative = after.map((bucket, i) => Math.max(0, bucket.count - (before?.[i]?.le === bucket.le ? (before[i]?.count ?? 0) : 0)));
  return cumulative.map((count, i) => Math.max(0, count - (i === 0 ? 0 : (cumulative[i - 1] ?? 0))));
}

/**
 * Builds what the page shows from successive polls. Keeps the previous poll
 * (for rates) and a window of delay-histogram increases (for "live" histograms).
 */
export class ClusterViewBuilder {
  readonly #windowPolls: number;
  #previous: { atMs: number; commitLsn: number; delays: Map<string, { player: Buckets; apply: Buckets }> } | null = null;
  #window: { player: WindowSlot; apply: WindowSlot }[] = [];

  constructor(windowPolls: number) {
    this.#windowPolls = windowPolls;
  }

  build(poll: PollResult, intervalMs: number): ClusterView {
    const leaderStatus = poll.logstores.find((l) => l.status?.role === "leader")?.status;
    const answered = poll.logstores.flatMap((l) => (l.status === undefined ? [] : [l.status]));
    const commitLsn = Number(answered.reduce((max, s) => (s.commitLsn > max ? s.commitLsn : max), 0n));
    const leaderRows = new Map((leaderStatus?.replicas ?? []).map((r) => [r.replicaId, r]));
    const replicas = poll.logstores.map((l): ReplicaRow => {
      const s = l.status;
      const lag =
        s === undefined
          ? null
          : s.role === "leader"
            ? 0
            : leaderRows.has(s.replicaId)
              ? Number(leaderRows.get(s.replicaId)?.lag ?? 0n)
              : null;
      return {
        name: l.name,
        address: l.address,
        healthy: s !== undefined && (s.role === "leader" || s.leaderAddress !== ""),
        role: s?.role ?? "down",
        term: Number(s?.term ?? 0n),
        commitLsn: Number(s?.commitLsn ?? 0n),
        lastLsn: Number(s?.lastLsn ?? 0n),
        lag,
        error: l.error ?? null,
      };
    });
    const playerSamples = poll.players.flatMap((p) => p.metrics);
    const targets = poll.players.flatMap((p) => targetRows(p.name, p.metrics));
    const shards = poll.shards.map((sh): ShardRow => {
      const s = sh.status;
      const lagSeconds = select(playerSamples, "lp_player_target_lag_seconds", { target: String(sh.shardId) })[0]?.value;
      const state = targets.find((t) => t.target === sh.shardId)?.state ?? null;
      return {
        shardId: sh.shardId,
        name: sh.name,
        address: sh.address,
        up: s !== undefined,
        appliedLsn: Number(s?.appliedLsn ?? 0n),
        lagEntries: s === undefined || commitLsn === 0 ? null : Math.max(0, commitLsn - Number(s.appliedLsn)),
        lagSeconds: lagSeconds ?? null,
        delivery: state,
        deliveryStreams: s?.deliveryStreams ?? 0,
        diskFull: s?.diskFull ?? "",
        error: sh.error ?? null,
      };
    });
    const txnRate =
      this.#previous === null || poll.atMs <= this.#previous.atMs
        ? null
        : (Math.max(0, commitLsn - this.#previous.commitLsn) * 1000) / (poll.atMs - this.#previous.atMs);
    const delays = new Map(
      poll.shards
        .filter((sh) => sh.metrics.length > 0)
        .map((sh) => [
          sh.name,
          {
            player: histogramBuckets(sh.metrics, "lp_shard_player_delay_seconds"),
            apply: histogramBuckets(sh.metrics, "lp_shard_apply_delay_seconds"),
          },
        ]),
    );
    this.#addToWindow(delays);
    this.#previous = { atMs: poll.atMs, commitLsn, delays };
    return {
      atMs: poll.atMs,
      leader: leaderStatus === undefined ? null : (poll.logstores.find((l) => l.status === leaderStatus)?.name ?? null),
      commitLsn,
      txnRate,
      replicas,
      shards,
      targets,
      playerDelay: this.#windowed("player"),
      applyDelay: this.#windowed("apply"),
      delayWindowSeconds: (this.#windowPolls * intervalMs) / 1000,
    };
  }

  #addToWindow(delays: Map<string, { player: Buckets; apply: Buckets }>): void {
    const sum = (which: "player" | "apply"): WindowSlot => {
      let slot: WindowSlot = { bounds: [], counts: [] };
      for (const [name, now] of delays) {
        const counts = increase(this.#previous?.delays.get(name)?.[which], now[which]);
        if (slot.bounds.length === 0) slot = { bounds: now[which].map((b) => b.le), counts };
        else if (now[which].length === slot.bounds.length)
          slot = { bounds: slot.bounds, counts: slot.counts.map((c, i) => c + (counts[i] ?? 0)) };
      }
      return slot;
    };
    // The first poll of a shard holds everything since it started: a window shows only increases seen between polls.
    if (this.#previous === null) return;
    this.#window.push({ player: sum("player"), apply: sum("apply") });
    if (this.#window.length > this.#windowPolls) this.#window.shift();
  }

  #windowed(which: "player" | "apply"): DelayHistogram {
    const bounds = this.#window.find((w) => w[which].bounds.length > 0)?.[which].bounds ?? [];
    const counts = bounds.map((_b, i) =>
      this.#window.reduce((total, w) => total + (w[which].bounds.length === bounds.length ? (w[which].counts[i] ?? 0) : 0), 0),
    );
    return {
      bounds: bounds.map((b) => (Number.isFinite(b) ? b : null)),
      counts,
      total: counts.reduce((a, b) => a + b, 0),
    };
  }
}

function targetRows(player: string, samples: readonly Sample[]): TargetRow[] {
  const targets = new Set(select(samples, "lp_player_target_term").map((s) => s.labels.target ?? ""));
  const value = (name: string, target: string): number => select(samples, name, { target })[0]?.value ?? 0;
  return [...targets]
    .filter((t) => t !== "")
    .map((target) => ({
      player,
      target: Number(target),
      state: select(samples, "lp_player_target_state", { target }).find((s) => s.value === 1)?.labels.state ?? "?",
      term: value("lp_player_target_term", target),
      queuedParts: value("lp_player_target_queued_parts", target),
      windowBatches: value("lp_player_target_window_batches", target),
      lagEntries: value("lp_player_target_lag_entries", target),
      lagSeconds: value("lp_player_target_lag_seconds", target),
    }))
    .sort((a, b) => a.target - b.target);
}
