import { assert } from "@logplayer/base";

/**
 * Every bound the LogPlayer's delivery cores respect. Each is a flag on the
 * LogPlayer (see services/logplayer/README.md); names put the unit last.
 */
export interface DeliveryLimits {
  /** Parts in one PartBatch write. */
  batchPartsMax: number;
  /** Estimated bytes in one PartBatch write (a single larger part still goes alone). */
  batchBytesMax: number;
  /**
   * Sent, unacknowledged batches per target; sending stops when reached.
   * The default is one: while a shard applies a batch, what is dispatched
   * meanwhile waits here and leaves as one larger batch on its ack, instead
   * of each group commit becoming a batch of its own that queues in the
   * socket. With 20 shards on 2 cores (per-batch costs dominate) this cut the
   * LogPlayer delay p50 at 1,000 txn/s from 9.3-17.7 to 7.5-11.3 ms in 3 A/B
   * pairs; with 3 shards, and at 5,000 txn/s, it made no measurable
   * difference. A shard far away (a long round trip) may want more.
   */
  windowBatchesMax: number;
  /** Sent, unacknowledged bytes per target. */
  windowBytesMax: number;
  /** Parts waiting in one target's normal queue; more falls back to recovery. */
  queueEntriesMax: number;
  /** Bytes waiting in one target's normal queue. */
  queueBytesMax: number;
  /** Every this many dispatched entries, quiet targets get a dummy part (the paper's E). */
  dummyEveryEntries: number;
  /** Entries one recovery read asks for; bounds the catch-up queue. */
  recoveryReadEntriesMax: number;
  /**
   * At the log's tail, a target the latest entries did not touch gets at most
   * one progress dummy per this many milliseconds; progress owed meanwhile
   * goes out when the interval ends, covering every entry dispatched since.
   * Without it, each LogStore group commit cost every untouched shard a
   * batch, an SQLite transaction and an ack (at 1,000 single-key txn/s over
   * 3 shards, 1.7 progress parts per transaction). The price: a read with a
   * min LSN on a shard the write did not touch waits up to this much longer.
   */
  progressIntervalMs: number;
}

export const DEFAULT_DELIVERY_LIMITS: DeliveryLimits = {
  batchPartsMax: 512,
  batchBytesMax: 1024 * 1024,
  windowBatchesMax: 1,
  windowBytesMax: 16 * 1024 * 1024,
  queueEntriesMax: 20_000,
  queueBytesMax: 64 * 1024 * 1024,
  dummyEveryEntries: 1000,
  recoveryReadEntriesMax: 2000,
  progressIntervalMs: 5,
};

/** Programmer error (asserts) when a limit is nonsense; flags are range-checked before this. */
export function validateDeliveryLimits(limits: DeliveryLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    assert(Number.isSafeInteger(value) && value >= 1, `delivery limit ${name} must be a positive integer, got ${value}`);
  }
  assert(
    limits.recoveryReadEntriesMax <= limits.queueEntriesMax,
    `recoveryReadEntriesMax ${limits.recoveryReadEntriesMax} exceeds queueEntriesMax ${limits.queueEntriesMax}`,
  );
}
