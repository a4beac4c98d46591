import { assert } from "@logplayer/common";
import { createDelayHistogram, type Histogram, recordDelayUs } from "./delay-histograms";
import { OpenLoopScheduler } from "./schedule";
import type { BenchTxn } from "./workload";

/** Sends one transaction (stamping its commit time right before the send); resolves with its LSN. */
export type CommitFn = (txn: BenchTxn) => Promise<bigint>;

export interface OpenLoopOptions {
  /** Transactions per second. */
  rate: number;
  durationS: number;
  /** Outstanding commits at most; a slot that finds the window full is skipped (and counted). */
  inflightMax: number;
  /** Bound on waiting for outstanding commits after the last send. */
  drainTimeoutMs: number;
  /** Monotonic clock in ns (process.hrtime.bigint in production, a fake in tests). */
  clock: () => bigint;
  nextTxn: () => BenchTxn;
  commit: CommitFn;
  shardCount: number;
}

/** Live counters, updated as the phase runs (the progress bar reads them). */
export interface OpenLoopProgress {
  slotsTotal: number;
  sent: number;
  acked: number;
  failed: number;
  skipped: number;
  inflight: number;
}

export interface OpenLoopResult extends OpenLoopProgress {
  /** Ack time minus the slot's scheduled time, in µs. */
  commitLatency: Histogram;
  startNs: bigint;
  /** When the last ack arrived (startNs if none did). */
  lastAckNs: bigint;
  /** Commits still outstanding when the drain bound ran out. */
  unfinished: number;
  lastLsn: bigint;
  /** Per shard id: the highest acknowledged LSN whose transaction touched that shard (0 = none). */
  lastLsnByShard: bigint[];
  /** The first few distinct commit errors, for the report. */
  errors: string[];
}

const ERRORS_KEPT_MAX = 5;

/**
 * Runs one open-loop phase: slot i is sent at start + i/rate whatever the
 * system does; a late timer sends every slot it missed at once. Latency
 * counts from the scheduled time, so queueing in the client shows up.
 */
export function runOpenLoop(options: OpenLoopOptions, onStart?: (live: OpenLoopProgress) => void): Promise<OpenLoopResult> {
  assert(Number.isFinite(options.durationS) && options.durationS > 0, "duration is positive");
  assert(Number.isInteger(options.inflightMax) && options.inflightMax >= 1, "inflightMax is at least 1");
  const slotsTotal = Math.round(options.rate * options.durationS);
  const startNs = options.clock();
  const scheduler = new OpenLoopScheduler({ startNs, rate: options.rate, slotsTotal });
  const result: OpenLoopResult = {
    slotsTotal,
    sent: 0,
    acked: 0,
    failed: 0,
    skipped: 0,
    inflight: 0,
    commitLatency: createDelayHistogram(),
    startNs,
    lastAckNs: startNs,
    unfinished: 0,
    lastLsn: 0n,
    lastLsnByShard: Array.from({ length: options.shardCount }, () => 0n),
    errors: [],
  };
  onStart?.(result);
  return new Promise((resolve) => {
    let drainTimer: NodeJS.Timeout | undefined;
    const finishIfDrained = (): void => {
      if (!scheduler.done || result.inflight > 0) return;
      clearTimeout(drainTimer);
      resolve(result);
    };
    const send = (slot: number): void => {
      const scheduledNs = scheduler.slotTime(slot);
      const txn = options.nextTxn();
      result.sent += 1;
      result.inflight += 1;
      options
        .commit(txn)
        .then(
          (lsn) => recordAck(result, txn, lsn, scheduledNs, options.clock()),
          (err: unknown) => recordFailure(result, err),
        )
        .finally(() => {
          result.inflight -= 1;
          finishIfDrained();
        });
    };
    const tick = (): void => {
      const { from, to } = scheduler.takeDue(options.clock());
      for (let slot = from; slot < to; slot++) {
        if (result.inflight >= options.inflightMax) result.skipped += 1;
        else send(slot);
      }
      const delayMs = scheduler.delayToNextMs(options.clock());
      if (delayMs !== undefined) {
        setTimeout(tick, Math.floor(delayMs));
        return;
      }
      drainTimer = setTimeout(() => {
        result.unfinished = result.inflight;
        resolve(result);
      }, options.drainTimeoutMs);
      finishIfDrained();
    };
    tick();
  });
}

function recordAck(result: OpenLoopResult, txn: BenchTxn, lsn: bigint, scheduledNs: bigint, ackNs: bigint): void {
  assert(lsn > 0n, `an acknowledged commit has an LSN, got ${lsn}`);
  result.acked += 1;
  recordDelayUs(result.commitLatency, Number(ackNs - scheduledNs) / 1000);
  if (ackNs > result.lastAckNs) result.lastAckNs = ackNs;
  if (lsn > result.lastLsn) result.lastLsn = lsn;
  for (const shard of txn.shards) {
    if (lsn > result.lastLsnByShard[shard]!) result.lastLsnByShard[shard] = lsn;
  }
}

function recordFailure(result: OpenLoopResult, err: unknown): void {
  result.failed += 1;
  const message = err instanceof Error ? err.message : String(err);
  if (result.errors.length < ERRORS_KEPT_MAX && !result.errors.includes(message)) result.errors.push(message);
}
