import { createShardMap, shardForKey } from "@logplayer/base";
import { MutationKind, type LogEntry, type Mutation } from "@logplayer/proto";
import { DEFAULT_DELIVERY_LIMITS, type DeliveryLimits } from "./delivery-limits";
import { planBatch } from "./apply-decision";
import { DeliveryWindow } from "./delivery-window";
import { Dispatcher } from "./dispatcher";
import { PartQueue } from "./part-queue";
import type { DeliveryCommand } from "./target-queue";

const shardMap = createShardMap(3);

/** A key that routes to `shard`, distinct per `n`. */
function keyFor(shard: number, n: number): string {
  for (let i = 0; ; i++) {
    const key = `k${n}-${i}`;
    if (shardForKey(key, shardMap) === shard) return key;
  }
}

function add(key: string): Mutation {
  return { kind: MutationKind.MUTATION_KIND_ADD, key, value: Buffer.alloc(0), delta: 1n };
}

function entry(lsn: bigint, shards: number[]): LogEntry {
  return {
    lsn,
    term: 1n,
    txn: { mutations: shards.map((s) => add(keyFor(s, Number(lsn)))) },
    commitTimeNs: 0n,
    clientId: "",
    clientSeq: 0n,
  };
}

/**
 * Most tests here drive several batches in flight, so they use a window of
 * 16; the shipped default is one batch (delivery-limits.ts), tested below.
 */
const TEST_LIMITS: DeliveryLimits = { ...DEFAULT_DELIVERY_LIMITS, windowBatchesMax: 16 };

function limits(overrides: Partial<DeliveryLimits>): DeliveryLimits {
  return { ...TEST_LIMITS, ...overrides };
}

function sends(commands: DeliveryCommand[]): Extract<DeliveryCommand, { kind: "send" }>[] {
  return commands.filter((c): c is Extract<DeliveryCommand, { kind: "send" }> => c.kind === "send");
}

/** The LogStore's commit LSN as reported before the tests connect shards: above every applied LSN they report. */
const COMMIT_LSN_KNOWN = 100_000n;

function started(l: Partial<DeliveryLimits> = {}, fromLsn = 1n): Dispatcher {
  const d = new Dispatcher(shardMap, limits(l));
  d.observeCommitLsn(COMMIT_LSN_KNOWN);
  d.startMainStream(fromLsn);
  return d;
}

describe("TargetQueue state machine", () => {
  test("connect before the main stream: N; main stream starts at min(applied)+1", () => {
    const d = new Dispatcher(shardMap, TEST_LIMITS);
    d.observeCommitLsn(COMMIT_LSN_KNOWN);
    expect(d.mainStreamFromLsn()).toBeNull();
    d.connected(0, 7n);
    d.connected(1, 3n);
    expect(d.targets[0]!.state).toBe("N");
    expect(d.targets[2]!.state).toBe("S");
    expect(d.mainStreamFromLsn()).toBe(4n);
  });

  test("connect behind currentIndex → RF with a recovery read; recovery done → N", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 5n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const term = d.connected(0, 2n);
    const target = d.targets[0]!;
    expect(target.state).toBe("RF");
    expect(d.takeCommands()).toEqual([{ kind: "recoveryRead", target: 0, term, fromLsn: 3n, toLsn: 5n, retry: false }]);
    d.recoveryEntries(0, term, [entry(3n, [0]), entry(4n, [1])], 0n);
    const first = sends(d.takeCommands());
    expect(first.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn]))).toEqual([[[3n, 2n]]]);
    d.recoveryEntries(0, term, [entry(5n, [0])], 0n); // queued: a write is in flight
    expect(sends(d.takeCommands())).toEqual([]);
    d.recoveryDone(0, term);
    expect(target.state).toBe("FC");
    d.writeCompleted(0, term);
    expect(sends(d.takeCommands())[0]!.parts.map((p) => [p.lsn, p.prevLsn])).toEqual([[5n, 3n]]);
    expect(target.state).toBe("N");
  });

  test("catch-up parts are served before normal parts; normal waits until the catch-up range is sent", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 3n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const term = d.connected(0, 0n); // RF: recovery [1, 3]
    d.takeCommands();
    d.dispatch(entry(4n, [0]), 0n); // normal queue, while nothing is fetched yet
    d.dispatch(entry(5n, [0]), 0n);
    expect(sends(d.takeCommands())).toEqual([]);
    d.recoveryEntries(0, term, [entry(1n, [0]), entry(2n, [0])], 0n);
    const sent: bigint[][] = [];
    const drain = (): void => {
      for (let batch = sends(d.takeCommands()); batch.length > 0; batch = sends(d.takeCommands())) {
        for (const s of batch) {
          sent.push(s.parts.map((p) => p.lsn));
          d.writeCompleted(0, term);
        }
      }
    };
    drain();
    expect(sent).toEqual([[1n, 2n]]); // one batch of catch-up only: 3 is not fetched yet, so 4 and 5 wait
    d.recoveryEntries(0, term, [entry(3n, [0])], 0n);
    d.recoveryDone(0, term);
    drain();
    expect(sent.flat()).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(d.targets[0]!.state).toBe("N");
  });

  test("connect at or ahead of currentIndex → N directly, no recovery", () => {
    const d = started();
    d.dispatch(entry(1n, [0]), 0n);
    d.connected(0, 1n);
    expect(d.targets[0]!.state).toBe("N");
    expect(d.takeCommands()).toEqual([]);
  });

  test("a write completion with no write in flight is a programmer error (assert)", () => {
    const d = started();
    const term = d.connected(0, 0n);
    expect(() => d.writeCompleted(0, term)).toThrow(/none in flight/);
  });

  test("events for an expired term or stream are dropped", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 3n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const oldTerm = d.connected(0, 0n);
    d.disconnected(0, oldTerm);
    expect(d.targets[0]!.state).toBe("S");
    expect(d.takeCommands()).toContainEqual({ kind: "reconnect", target: 0 });
    const newTerm = d.connected(0, 1n);
    expect(newTerm).toBeGreaterThan(oldTerm);
    d.takeCommands();
    const target = d.targets[0]!;
    const dropped = target.counters.staleEventsDropped;
    // A recovery entry and a disconnect from the old term change nothing.
    d.recoveryEntries(0, oldTerm, [entry(2n, [0])], 0n);
    d.disconnected(0, oldTerm);
    d.ack(0, oldTerm, 99n);
    expect(target.state).toBe("RF");
    expect(target.catchUpLength).toBe(0);
    expect(target.lastAck).toBe(1n);
    expect(target.counters.staleEventsDropped).toBe(dropped + 3);
    expect(d.takeCommands()).toEqual([]);
  });

  test("disconnect clears both queues and the window", () => {
    const d = started({ windowBatchesMax: 1 });
    const term = d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n);
    d.dispatch(entry(2n, [0]), 0n);
    const t = d.targets[0]!;
    expect(t.windowBatches).toBe(1);
    expect(t.normalLength).toBe(1);
    d.disconnected(0, term);
    expect([t.state, t.windowBatches, t.normalLength, t.catchUpLength, t.writeInFlight]).toEqual(["S", 0, 0, 0, false]);
    d.dispatch(entry(3n, [0]), 0n); // S targets get nothing
    expect(t.normalLength).toBe(0);
  });
});

describe("batching and the window", () => {
  test("one write in flight: what accumulates goes out as the next batch", () => {
    const d = started();
    const term = d.connected(0, 0n);
    for (let lsn = 1n; lsn <= 4n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    let batches = sends(d.takeCommands());
    expect(batches.map((b) => b.parts.length)).toEqual([1]);
    d.writeCompleted(0, term);
    batches = sends(d.takeCommands());
    expect(batches.map((b) => b.parts.map((p) => [p.lsn, p.prevLsn]))).toEqual([
      [
        [2n, 1n],
        [3n, 2n],
        [4n, 3n],
      ],
    ]);
  });

  test("a burst (one ReadResponse) leaves as one batch per target, at once", () => {
    const d = started();
    d.connected(0, 0n);
    d.connected(1, 0n);
    d.dispatchEntries([entry(1n, [0]), entry(2n, [0, 1]), entry(3n, [0]), entry(4n, [1])], 0n);
    const batches = sends(d.takeCommands());
    // Target 0 is not touched by the last entry: a progress dummy at 4 closes its burst.
    expect(batches.map((b) => [b.target, b.parts.map((p) => [p.lsn, p.mutations.length])])).toEqual([
      [
        0,
        [
          [1n, 1],
          [2n, 1],
          [3n, 1],
          [4n, 0],
        ],
      ],
      [
        1,
        [
          [2n, 1],
          [4n, 1],
        ],
      ],
    ]);
  });

  test("with the default window of one batch, what is dispatched before the ack goes out together after it", () => {
    const d = new Dispatcher(shardMap, DEFAULT_DELIVERY_LIMITS);
    d.startMainStream(1n);
    const term = d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n);
    expect(sends(d.takeCommands()).map((b) => b.parts.map((p) => p.lsn))).toEqual([[1n]]);
    d.writeCompleted(0, term);
    // Written but not acked: the shard is still applying it, so the next parts wait and coalesce.
    for (let lsn = 2n; lsn <= 4n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    expect(sends(d.takeCommands())).toEqual([]);
    d.ack(0, term, 1n);
    expect(sends(d.takeCommands()).map((b) => b.parts.map((p) => [p.lsn, p.prevLsn]))).toEqual([
      [
        [2n, 1n],
        [3n, 2n],
        [4n, 3n],
      ],
    ]);
  });

  test("batchPartsMax caps a batch", () => {
    const d = started({ batchPartsMax: 2 });
    const term = d.connected(0, 0n);
    for (let lsn = 1n; lsn <= 6n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    d.takeCommands();
    d.writeCompleted(0, term);
    expect(sends(d.takeCommands())[0]!.parts.length).toBe(2);
  });

  test("a full window stops sending until an ack frees it", () => {
    const d = started({ windowBatchesMax: 2 });
    const term = d.connected(0, 0n);
    const t = d.targets[0]!;
    d.dispatch(entry(1n, [0]), 0n);
    d.writeCompleted(0, term);
    d.dispatch(entry(2n, [0]), 0n);
    d.writeCompleted(0, term);
    expect(sends(d.takeCommands()).length).toBe(2);
    d.dispatch(entry(3n, [0]), 0n);
    expect(sends(d.takeCommands())).toEqual([]);
    expect(t.windowBatches).toBe(2);
    d.ack(0, term, 1n);
    const next = sends(d.takeCommands());
    expect(next.map((b) => b.parts[0]!.lsn)).toEqual([3n]);
  });

  test("DeliveryWindow releases by applied LSN and matches sent parts", () => {
    const w = new DeliveryWindow(3, 1000);
    w.add({ lastLsn: 2n, bytes: 10, parts: [{ lsn: 2n, prevLsn: 1n }] });
    w.add({
      lastLsn: 5n,
      bytes: 10,
      parts: [
        { lsn: 4n, prevLsn: 2n },
        { lsn: 5n, prevLsn: 4n },
      ],
    });
    expect(w.holdsPart(4n, 2n)).toBe(true);
    expect(w.holdsPart(4n, 3n)).toBe(false);
    expect(w.release(4n)).toBe(1);
    expect(w.batchCount).toBe(1);
    expect(w.release(5n)).toBe(1);
    expect(w.bytes).toBe(0);
  });
});

describe("overflow, gaps and dummies", () => {
  test("normal-queue overflow drops the queue and recovers the range instead (bounded memory)", () => {
    const d = started({ queueEntriesMax: 4, recoveryReadEntriesMax: 2, windowBatchesMax: 1 });
    const term = d.connected(0, 0n);
    const t = d.targets[0]!;
    for (let lsn = 1n; lsn <= 50n; lsn++) {
      d.dispatch(entry(lsn, [0, 1]), 0n);
      expect(t.normalLength).toBeLessThanOrEqual(4);
      expect(t.catchUpLength).toBeLessThanOrEqual(4);
    }
    expect(t.counters.overflows).toBeGreaterThan(0);
    expect(t.state).toBe("RF");
    // Batch 1 ([1]) is in flight; recovery starts right after it.
    const reads = d.takeCommands().filter((c) => c.kind === "recoveryRead");
    expect(reads[0]).toMatchObject({ fromLsn: 2n, toLsn: 3n, term });
    // Another target is untouched by the slow one.
    expect(d.targets[1]!.state).toBe("S");
  });

  test("a gap on a sent part rewinds: new term, recovery from the shard's applied LSN", () => {
    const d = started();
    const streamTerm = d.connected(0, 0n);
    for (let lsn = 1n; lsn <= 3n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const t = d.targets[0]!;
    const termBefore = t.term;
    d.gap(0, streamTerm, { appliedLsn: 0n, lsn: 1n, prevLsn: 0n });
    expect(t.term).toBe(termBefore + 1);
    expect(t.state).toBe("RF");
    expect(t.lastSentLsn).toBe(0n);
    const cmds = d.takeCommands();
    expect(cmds).toContainEqual({ kind: "recoveryRead", target: 0, term: t.term, fromLsn: 1n, toLsn: 3n, retry: false });
    // An echo gap for a part sent before the rewind does not rewind again.
    d.gap(0, streamTerm, { appliedLsn: 0n, lsn: 2n, prevLsn: 1n });
    expect(t.term).toBe(termBefore + 1);
    expect(t.counters.rewinds).toBe(1);
  });

  test("at the tail, a quiet target follows currentIndex with one progress dummy, replaced while a write is in flight", () => {
    const d = started();
    const quietTerm = d.connected(1, 0n);
    d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n);
    const first = sends(d.takeCommands()).filter((s) => s.target === 1);
    expect(first.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length]))).toEqual([[[1n, 0n, 0]]]);
    // Its write is still in flight: later dummies replace each other instead of piling up.
    for (let lsn = 2n; lsn <= 9n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    expect(d.targets[1]!.normalLength).toBe(1);
    d.writeCompleted(1, quietTerm);
    const next = sends(d.takeCommands()).filter((s) => s.target === 1);
    expect(next.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length]))).toEqual([[[9n, 1n, 0]]]);
  });

  test("progress to a quiet target goes out at most once per progressIntervalMs; what is owed meanwhile follows in one dummy", () => {
    const d = started({ windowBatchesMax: 1, progressIntervalMs: 5 });
    const quietTerm = d.connected(1, 0n);
    d.connected(0, 0n);
    const toQuiet = (): bigint[][][] =>
      sends(d.takeCommands())
        .filter((s) => s.target === 1)
        .map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, BigInt(p.mutations.length)]));
    d.dispatchEntries([entry(1n, [0])], 10n, 1n, 100);
    expect(toQuiet()).toEqual([[[1n, 0n, 0n]]]);
    d.ack(1, quietTerm, 1n);
    d.writeCompleted(1, quietTerm);
    // Within the interval: nothing is queued for the quiet target, however many entries pass it by.
    for (let lsn = 2n; lsn <= 6n; lsn++) d.dispatchEntries([entry(lsn, [0])], 10n, lsn, 101);
    expect(toQuiet()).toEqual([]);
    expect(d.targets[1]!.normalLength).toBe(0);
    expect(d.progressDueAtMs()).toBe(105);
    d.progressTick(104);
    expect(toQuiet()).toEqual([]);
    // Due: one dummy at currentIndex covers 2..6, following the chain, with no dispatch time of its own.
    d.progressTick(105);
    const owed = sends(d.takeCommands()).filter((s) => s.target === 1);
    expect(owed.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length, p.dispatchTimeNs]))).toEqual([[[6n, 1n, 0, 0n]]]);
    expect(d.progressDueAtMs()).toBeNull();
    // A target that a later entry touched owes nothing.
    d.ack(1, quietTerm, 6n);
    d.writeCompleted(1, quietTerm);
    d.dispatchEntries([entry(7n, [0])], 10n, 7n, 106);
    d.dispatchEntries([entry(8n, [1])], 10n, 8n, 107);
    d.takeCommands();
    d.progressTick(200);
    expect(toQuiet()).toEqual([]);
  });

  test("progress owed to a target that reconnects behind is not queued again at the recovery range's end", () => {
    const d = started({ windowBatchesMax: 1, progressIntervalMs: 5 });
    d.connected(1, 0n);
    d.connected(0, 0n);
    d.dispatchEntries([entry(1n, [0])], 10n, 1n, 100);
    d.dispatchEntries([entry(2n, [0])], 10n, 2n, 101); // progress to target 1 owed until 105
    expect(d.progressDueAtMs()).toBe(105);
    d.connected(1, 0n); // reconnects: RF, recovery [1, 2] closed by a dummy at 2
    d.takeCommands();
    d.progressTick(105);
    expect(d.targets[1]!.normalLength).toBe(0);
    const term = d.targets[1]!.term;
    expect(d.recoveryEntries(1, term, [entry(1n, [0]), entry(2n, [0])], 0n)).toBe(true);
    d.recoveryDone(1, term);
    const toOne = sends(d.takeCommands()).filter((s) => s.target === 1);
    expect(toOne.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn]))).toEqual([[[2n, 0n]]]);
  });

  test("a recovery range that ends on entries not touching the target is closed by a dummy", () => {
    const d = started();
    d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n);
    d.dispatch(entry(2n, [1]), 0n);
    d.dispatch(entry(3n, [1]), 0n);
    d.takeCommands();
    const term = d.connected(2, 0n); // shard 2 missed 1..3, and none of them touch it
    const read = d.takeCommands().find((c) => c.kind === "recoveryRead");
    expect(read).toMatchObject({ target: 2, fromLsn: 1n, toLsn: 3n });
    expect(d.recoveryEntries(2, d.targets[2]!.term, [entry(1n, [0]), entry(2n, [1]), entry(3n, [1])], 0n)).toBe(true);
    d.recoveryDone(2, d.targets[2]!.term);
    const toTwo = sends(d.takeCommands()).filter((s) => s.target === 2);
    expect(toTwo.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length]))).toEqual([[[3n, 0n, 0]]]);
    expect(term).toBeGreaterThan(0);
  });

  test("dummy parts every E entries for a target more than E behind", () => {
    const d = started({ dummyEveryEntries: 5 });
    const term = d.connected(1, 0n);
    d.connected(0, 0n);
    // Replaying a backlog (commit LSN 100): only the every-E dummies, no progress dummies.
    for (let lsn = 1n; lsn <= 12n; lsn++) d.dispatch(entry(lsn, [0]), 0n, 100n);
    const toQuiet = sends(d.takeCommands()).filter((s) => s.target === 1);
    // At 5 it is exactly E behind (no dummy); at 10 it is 10 behind → dummy at 10.
    expect(toQuiet.map((s) => s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length]))).toEqual([[[10n, 0n, 0]]]);
    d.writeCompleted(1, term);
    expect(d.targets[1]!.counters.dummiesQueued).toBe(1);
  });

  test("prev_lsn chain restarts at the shard's applied LSN on reconnect and skips acknowledged entries", () => {
    const d = started();
    let term = d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n);
    d.dispatch(entry(2n, [1]), 0n);
    d.dispatch(entry(3n, [0]), 0n);
    d.disconnected(0, term);
    d.takeCommands();
    term = d.connected(0, 1n);
    const read = d.takeCommands().find((c) => c.kind === "recoveryRead");
    expect(read).toMatchObject({ fromLsn: 2n, toLsn: 3n });
    d.recoveryEntries(0, term, [entry(2n, [1]), entry(3n, [0])], 0n);
    d.recoveryDone(0, term);
    d.dispatch(entry(4n, [0]), 0n);
    d.writeCompleted(0, term);
    const parts = sends(d.takeCommands()).flatMap((s) => s.parts.map((p) => [p.lsn, p.prevLsn]));
    expect(parts).toEqual([
      [3n, 1n],
      [4n, 3n],
    ]);
  });

  test("recovery failure retries the unread rest with backoff", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 4n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const term = d.connected(0, 0n);
    d.takeCommands();
    d.recoveryEntries(0, term, [entry(1n, [0])], 0n);
    d.recoveryFailed(0, term);
    expect(d.takeCommands().find((c) => c.kind === "recoveryRead")).toMatchObject({ fromLsn: 2n, toLsn: 4n, retry: true });
  });

  // Found by the delivery simulator with trimming (seed 2): a gap report older than an ack started the range at 46
  // while the shard had applied 46; the log was then trimmed to start at 47, and re-reading from 46 failed forever.
  test("a retried recovery read starts after what the shard acknowledged meanwhile", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 6n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const term = d.connected(0, 0n);
    expect(d.takeCommands().find((c) => c.kind === "recoveryRead")).toMatchObject({ fromLsn: 1n, toLsn: 6n });
    d.ack(0, term, 3n);
    d.recoveryFailed(0, term);
    expect(d.takeCommands().find((c) => c.kind === "recoveryRead")).toMatchObject({ fromLsn: 4n, toLsn: 6n, retry: true });
    d.recoveryEntries(
      0,
      term,
      [4n, 5n, 6n].map((lsn) => entry(lsn, [0])),
      0n,
    );
    // The catch-up chain follows the shard's acknowledged position.
    expect(sends(d.takeCommands()).flatMap((s) => s.parts.map((p) => [p.prevLsn, p.lsn]))[0]).toEqual([3n, 4n]);
  });

  // Found by the delivery simulator (packages/sim, seed 100187): every entry of the last
  // chunk arrived, then the read failed (its end was lost). With nothing left to read, the
  // retry asked for nothing and the target stayed in RF, its normal queue never sent.
  test("a read that fails after delivering its whole range completes the recovery", () => {
    const d = started();
    for (let lsn = 1n; lsn <= 3n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const term = d.connected(0, 0n);
    d.takeCommands();
    d.recoveryEntries(0, term, [entry(1n, [0]), entry(2n, [0]), entry(3n, [0])], 0n);
    expect(sends(d.takeCommands()).flatMap((s) => s.parts.map((p) => p.lsn))).toEqual([1n, 2n, 3n]);
    d.dispatch(entry(4n, [0]), 0n);
    d.recoveryFailed(0, term);
    // Nothing to re-read; the catch-up queue is already sent, so the target is back in N.
    expect(d.takeCommands().filter((c) => c.kind === "recoveryRead")).toEqual([]);
    expect(d.targets[0]!.state).toBe("N");
    d.writeCompleted(0, term);
    expect(sends(d.takeCommands()).flatMap((s) => s.parts.map((p) => [p.lsn, p.prevLsn]))).toEqual([[4n, 3n]]);
  });
});

describe("prevLsn is fixed when a part is queued, not when it is sent", () => {
  /**
   * Runs `during` with the next PartQueue.shift() also losing the part behind the one it takes (as a
   * queue bug would): the sender takes the head, and the part after it never leaves.
   */
  function losingOnePart(during: () => void): void {
    const shift = PartQueue.prototype.shift;
    let lost = false;
    const spy = jest.spyOn(PartQueue.prototype, "shift").mockImplementation(function (this: PartQueue) {
      if (!lost) {
        lost = true;
        shift.call(this);
      }
      return shift.call(this);
    });
    try {
      during();
    } finally {
      spy.mockRestore();
    }
    expect(lost).toBe(true);
  }

  test("main stream: a part lost in the normal queue shows up as a Gap at the shard", () => {
    const d = started({ windowBatchesMax: 1 });
    const streamTerm = d.connected(0, 0n);
    d.dispatch(entry(1n, [0]), 0n); // sent at once; 2..4 wait for its ack
    for (let lsn = 2n; lsn <= 4n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    expect(sends(d.takeCommands()).map((c) => c.parts.map((p) => p.lsn))).toEqual([[1n]]);
    d.writeCompleted(0, streamTerm);
    losingOnePart(() => d.ack(0, streamTerm, 1n));
    const sent = sends(d.takeCommands()).flatMap((c) => c.parts);
    expect(sent.map((p) => [p.prevLsn, p.lsn])).toEqual([
      [1n, 2n],
      [3n, 4n],
    ]);
    // Were prevLsn the last part sent (2), the shard would apply 4 and never see 3.
    expect(planBatch(1n, sent).gap).toEqual({ lsn: 4n, prevLsn: 3n });
  });

  test("recovery: a part lost in the catch-up queue shows up as a Gap at the shard", () => {
    const d = started({ windowBatchesMax: 1 });
    for (let lsn = 1n; lsn <= 4n; lsn++) d.dispatch(entry(lsn, [0]), 0n);
    const streamTerm = d.connected(0, 0n); // behind currentIndex 4: recovery reads [1, 4]
    const t = d.targets[0]!;
    d.takeCommands();
    losingOnePart(() =>
      d.recoveryEntries(
        0,
        t.term,
        [1n, 2n, 3n, 4n].map((lsn) => entry(lsn, [0])),
        0n,
      ),
    );
    const first = sends(d.takeCommands()).flatMap((c) => c.parts);
    expect(first.map((p) => [p.prevLsn, p.lsn])).toEqual([
      [0n, 1n],
      [2n, 3n],
      [3n, 4n],
    ]);
    expect(planBatch(0n, first).gap).toEqual({ lsn: 3n, prevLsn: 2n });
    d.gap(0, streamTerm, { appliedLsn: 1n, lsn: 3n, prevLsn: 2n });
    expect(t.counters.rewinds).toBe(1); // the LogPlayer rewinds and re-reads from the shard's position
  });
});
