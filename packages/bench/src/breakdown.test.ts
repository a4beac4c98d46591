import type { HopTraceSnapshot, TraceHop } from "@logplayer/common";
import { computeBreakdown } from "./breakdown";

function ring(records: readonly [TraceHop, bigint, bigint][], overwritten = 0): HopTraceSnapshot {
  return {
    hops: records.map(([hop]) => hop),
    keys: records.map(([, key]) => key.toString()),
    atNs: records.map(([, , at]) => at.toString()),
    overwritten,
  };
}

const us = 1000n;

describe("computeBreakdown", () => {
  // One transaction (commit time 1,000,001 ns, LSN 7) touching shards 0 and 2; 1 ms = 1000 us between hops upstream.
  const send = 1_000_001n;
  const txn = { commitTimeNs: send, lsn: 7n, ackNs: send + 3500n * us };
  const logStore = ring([
    ["leader-received", send, send + 100n * us],
    ["leader-durable", 7n, send + 1100n * us],
    ["committed", 7n, send + 3100n * us],
  ]);
  const follower = ring([["leader-received", 99n, send]]);
  const player = ring([["player-received", 7n, send + 3300n * us]]);
  const shard = (dispatchUs: bigint, receivedUs: bigint, commitUs: bigint): HopTraceSnapshot =>
    ring([
      ["dispatched", 7n, send + dispatchUs * us],
      ["shard-received", 7n, send + receivedUs * us],
      ["sqlite-commit", 7n, send + commitUs * us],
    ]);
  const snapshots = {
    logStores: [logStore, follower],
    logPlayers: [player],
    shards: [shard(3400n, 3600n, 3700n), ring([]), shard(3400n, 3800n, 4100n)],
  };

  it("splits each traced transaction into its hops, upstream once per transaction and shard hops once per part", () => {
    const breakdown = computeBreakdown([txn], snapshots);
    const p50 = Object.fromEntries(breakdown.segments.map((row) => [row.name, [row.summary.count, row.summary.p50Ms]]));
    expect(p50).toEqual({
      "send -> leader received": [1, 0.1],
      "leader received -> leader durable": [1, 1],
      "leader durable -> committed (majority)": [1, 2],
      "committed -> LogPlayer received": [1, 0.2],
      "LogPlayer received -> dispatched": [2, 0.1],
      "dispatched -> shard received": [2, 0.2],
      "shard received -> SQLite commit": [2, 0.1],
    });
    expect(breakdown.segments.find((row) => row.name === "dispatched -> shard received")!.summary.maxMs).toBeCloseTo(0.4, 2);
    expect(breakdown.total.summary.count).toBe(2);
    expect(breakdown.total.summary.maxMs).toBeCloseTo(4.1, 2);
    expect(breakdown.commitToAck.summary.p50Ms).toBeCloseTo(0.4, 2);
    expect(breakdown).toMatchObject({ tracedTxns: 1, completeTxns: 1, overwritten: 0 });
  });

  it("leaves a hop no ring holds out of its segments and counts the transaction incomplete", () => {
    const breakdown = computeBreakdown([txn], { ...snapshots, logPlayers: [ring([], 5)] });
    const count = (name: string): number => breakdown.segments.find((row) => row.name === name)!.summary.count;
    expect(count("committed -> LogPlayer received")).toBe(0);
    expect(count("LogPlayer received -> dispatched")).toBe(0);
    expect(count("dispatched -> shard received")).toBe(2);
    expect(breakdown).toMatchObject({ completeTxns: 0, overwritten: 5 });
  });

  it("ignores ring records of transactions it did not trace", () => {
    const breakdown = computeBreakdown([], snapshots);
    expect(breakdown.segments.every((row) => row.summary.count === 0)).toBe(true);
  });
});
