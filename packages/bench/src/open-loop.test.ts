import { monotonicNs } from "@logplayer/common";
import { waitFor } from "@logplayer/testing";
import { runOpenLoop, type CommitFn, type OpenLoopProgress } from "./open-loop";
import { Workload } from "./workload";

const workload = (): Workload => new Workload({ keysPerTxn: 4, valueBytes: 8, keySpace: 100, shardCount: 3, seed: 1 });

describe("runOpenLoop", () => {
  it("sends every slot without waiting for acks, and tracks the last LSN per shard", async () => {
    const w = workload();
    let nextLsn = 0n;
    const touched: number[][] = [];
    const commit: CommitFn = async (txn) => {
      nextLsn += 1n;
      touched.push(txn.shards);
      return nextLsn;
    };
    const result = await runOpenLoop({
      rate: 2000,
      durationS: 0.05,
      inflightMax: 1000,
      drainTimeoutMs: 5000,
      clock: monotonicNs,
      nextTxn: () => w.next(),
      commit,
      shardCount: 3,
    });
    expect(result).toMatchObject({ slotsTotal: 100, sent: 100, acked: 100, failed: 0, skipped: 0, inflight: 0, unfinished: 0 });
    expect(result.commitLatency.totalCount).toBe(100);
    expect(result.lastLsn).toBe(100n);
    for (let shard = 0; shard < 3; shard++) {
      const last = touched.reduce((max, shards, i) => (shards.includes(shard) ? i + 1 : max), 0);
      expect(result.lastLsnByShard[shard]).toBe(BigInt(last));
    }
  });

  it("skips (and counts) slots while the in-flight window is full, never queueing them", async () => {
    const w = workload();
    const pending: Array<() => void> = [];
    let lsn = 0n;
    const commit: CommitFn = () =>
      new Promise((resolve) =>
        pending.push(() => {
          lsn += 1n;
          resolve(lsn);
        }),
      );
    let live: OpenLoopProgress | undefined;
    const done = runOpenLoop(
      {
        rate: 5000,
        durationS: 0.02,
        inflightMax: 10,
        drainTimeoutMs: 5000,
        clock: monotonicNs,
        nextTxn: () => w.next(),
        commit,
        shardCount: 3,
      },
      (p) => (live = p),
    );
    // Every slot has been either sent or skipped once the sender stops; nothing was acked meanwhile.
    await waitFor("every slot sent or skipped", () => live !== undefined && live.sent + live.skipped >= 100, {
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    expect(live!.sent + live!.skipped).toBe(100);
    expect(live!.sent).toBe(10);
    for (const release of pending) release();
    const result = await done;
    expect(result).toMatchObject({ slotsTotal: 100, sent: 10, skipped: 90, acked: 10 });
  });

  it("counts failures with their messages and reports commits still out at the drain bound", async () => {
    const w = workload();
    let calls = 0;
    const commit: CommitFn = (): Promise<bigint> => {
      calls += 1;
      if (calls % 2 === 0) return Promise.reject(new Error("RESOURCE_EXHAUSTED: queue full"));
      if (calls === 3) return new Promise<bigint>(() => {}); // never answers
      return Promise.resolve(BigInt(calls));
    };
    const result = await runOpenLoop({
      rate: 1000,
      durationS: 0.01,
      inflightMax: 100,
      drainTimeoutMs: 50,
      clock: monotonicNs,
      nextTxn: () => w.next(),
      commit,
      shardCount: 3,
    });
    expect(result).toMatchObject({ sent: 10, failed: 5, acked: 4, unfinished: 1 });
    expect(result.errors).toEqual(["RESOURCE_EXHAUSTED: queue full"]);
  });
});

describe("Workload", () => {
  it("draws distinct keys per transaction and names every shard it touches", () => {
    const w = new Workload({ keysPerTxn: 10, valueBytes: 1024, keySpace: 10_000, shardCount: 20, seed: 42 });
    for (let i = 0; i < 200; i++) {
      const txn = w.next();
      expect(new Set(txn.keys).size).toBe(10);
      expect(txn.values.every((v) => v.length === 1024)).toBe(true);
      expect(txn.shards.length).toBeGreaterThan(0);
      expect([...txn.shards].sort((a, b) => a - b)).toEqual(txn.shards);
      expect(txn.shards.every((s) => s >= 0 && s < 20)).toBe(true);
    }
  });

  it("is repeatable from its seed", () => {
    const a = new Workload({ keysPerTxn: 3, valueBytes: 4, keySpace: 50, shardCount: 3, seed: 9 });
    const b = new Workload({ keysPerTxn: 3, valueBytes: 4, keySpace: 50, shardCount: 3, seed: 9 });
    expect(a.next()).toEqual(b.next());
  });
});
