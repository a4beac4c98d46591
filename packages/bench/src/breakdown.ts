import type { HopTraceSnapshot, TraceHop } from "@logplayer/common";
import { createDelayHistogram, type DelaySummary, type Histogram, recordDelayUs, summarizeUs } from "./delay-histograms";

/**
 * The delay breakdown (issue 15): for every sampled transaction, the time
 * between consecutive hops, all on CLOCK_MONOTONIC (hop-trace.ts in
 * @logplayer/common). The first four segments count transactions, the last
 * three count parts (one per shard the transaction touched).
 */
export const BREAKDOWN_SEGMENTS = [
  { name: "send -> leader received", from: "send", to: "leader-received" },
  { name: "leader received -> leader durable", from: "leader-received", to: "leader-durable" },
  { name: "leader durable -> committed (majority)", from: "leader-durable", to: "committed" },
  { name: "committed -> LogPlayer received", from: "committed", to: "player-received" },
  { name: "LogPlayer received -> dispatched", from: "player-received", to: "dispatched" },
  { name: "dispatched -> shard received", from: "dispatched", to: "shard-received" },
  { name: "shard received -> SQLite commit", from: "shard-received", to: "sqlite-commit" },
] as const satisfies readonly { name: string; from: TraceHop | "send"; to: TraceHop }[];

/** A transaction the load generator marked for tracing and saw acknowledged. */
export interface TracedTxn {
  commitTimeNs: bigint;
  lsn: bigint;
  ackNs: bigint;
}

/** The rings read from each service after the run. */
export interface TraceSnapshots {
  logStores: readonly HopTraceSnapshot[];
  logPlayers: readonly HopTraceSnapshot[];
  /** One per shard process. */
  shards: readonly HopTraceSnapshot[];
}

export interface BreakdownRow {
  name: string;
  summary: DelaySummary;
}

export interface DelayBreakdown {
  tracedTxns: number;
  /** Traced transactions found at every upstream hop (LogStore and LogPlayer). */
  completeTxns: number;
  /** Records the services' rings overwrote (a non-zero value means the sample was thinned). */
  overwritten: number;
  segments: BreakdownRow[];
  /** Side branch: the leader's commit -> the client's ack. */
  commitToAck: BreakdownRow;
  /** send -> SQLite commit over the traced parts (same as the sum of the segments per part). */
  total: BreakdownRow;
}

type HopTimes = Map<string, bigint>;

/** hop -> key -> first time seen, over one service's rings. */
function index(snapshots: readonly HopTraceSnapshot[]): Map<TraceHop, HopTimes> {
  const byHop = new Map<TraceHop, HopTimes>();
  for (const snapshot of snapshots) {
    for (let i = 0; i < snapshot.hops.length; i++) {
      const hop = snapshot.hops[i]!;
      const times = byHop.get(hop) ?? new Map<string, bigint>();
      byHop.set(hop, times);
      const key = snapshot.keys[i]!;
      const atNs = BigInt(snapshot.atNs[i]!);
      const known = times.get(key);
      if (known === undefined || atNs < known) times.set(key, atNs);
    }
  }
  return byHop;
}

/** Joins the traced transactions with the services' rings into per-segment histograms. Pure. */
export function computeBreakdown(txns: readonly TracedTxn[], snapshots: TraceSnapshots): DelayBreakdown {
  const histograms = new Map<string, Histogram>(BREAKDOWN_SEGMENTS.map((s) => [s.name, createDelayHistogram()]));
  const commitToAck = createDelayHistogram();
  const total = createDelayHistogram();
  const upstream = index([...snapshots.logStores, ...snapshots.logPlayers]);
  const shards = snapshots.shards.map((snapshot) => index([snapshot]));
  const time = (byHop: Map<TraceHop, HopTimes>, hop: TraceHop, key: bigint): bigint | undefined => byHop.get(hop)?.get(key.toString());
  let completeTxns = 0;
  for (const txn of txns) {
    const times = new Map<TraceHop | "send", bigint | undefined>([
      ["send", txn.commitTimeNs],
      ["leader-received", time(upstream, "leader-received", txn.commitTimeNs)],
      ["leader-durable", time(upstream, "leader-durable", txn.lsn)],
      ["committed", time(upstream, "committed", txn.lsn)],
      ["player-received", time(upstream, "player-received", txn.lsn)],
    ]);
    if ([...times.values()].every((t) => t !== undefined)) completeTxns += 1;
    const committed = times.get("committed");
    if (committed !== undefined) recordDelayUs(commitToAck, nsToUs(txn.ackNs - committed));
    const record = (at: ReadonlyMap<TraceHop | "send", bigint | undefined>, perPart: boolean): void => {
      for (const segment of BREAKDOWN_SEGMENTS) {
        if (isShardHop(segment.to) !== perPart) continue;
        const from = at.get(segment.from);
        const to = at.get(segment.to);
        if (from !== undefined && to !== undefined) recordDelayUs(histograms.get(segment.name)!, nsToUs(to - from));
      }
    };
    record(times, false);
    for (const shard of shards) {
      const received = time(shard, "shard-received", txn.lsn);
      if (received === undefined) continue; // the transaction did not touch this shard
      const partTimes = new Map(times);
      partTimes.set("dispatched", time(shard, "dispatched", txn.lsn));
      partTimes.set("shard-received", received);
      partTimes.set("sqlite-commit", time(shard, "sqlite-commit", txn.lsn));
      const sqliteCommit = partTimes.get("sqlite-commit");
      if (sqliteCommit !== undefined) recordDelayUs(total, nsToUs(sqliteCommit - txn.commitTimeNs));
      record(partTimes, true);
    }
  }
  const all = [...snapshots.logStores, ...snapshots.logPlayers, ...snapshots.shards];
  return {
    tracedTxns: txns.length,
    completeTxns,
    overwritten: all.reduce((sum, s) => sum + s.overwritten, 0),
    segments: BREAKDOWN_SEGMENTS.map((s) => ({ name: s.name, summary: summarizeUs(histograms.get(s.name)!) })),
    commitToAck: { name: "committed -> client ack", summary: summarizeUs(commitToAck) },
    total: { name: "send -> SQLite commit (traced parts)", summary: summarizeUs(total) },
  };
}

function isShardHop(hop: TraceHop): boolean {
  return hop === "dispatched" || hop === "shard-received" || hop === "sqlite-commit";
}

function nsToUs(ns: bigint): number {
  return Number(ns) / 1000;
}
