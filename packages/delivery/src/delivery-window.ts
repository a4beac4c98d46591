import { assert } from "@logplayer/base";

/** The two LSNs a shard checks, remembered for each sent part so a Gap can be matched. */
export interface SentPart {
  readonly lsn: bigint;
  readonly prevLsn: bigint;
}

/** A batch written to a target's stream and not yet acknowledged. */
export interface SentBatch {
  readonly lastLsn: bigint;
  readonly bytes: number;
  readonly parts: readonly SentPart[];
}

/**
 * The paper's `popped` map: batches written but not yet covered by an Ack.
 * Bounded by batch count and bytes; when full the target stops sending
 * until acks free room. We keep only positions, not mutations: a lost batch
 * is re-read from the LogStore, never resent from memory.
 */
export class DeliveryWindow {
  #batches: SentBatch[] = [];
  #bytes = 0;

  constructor(
    private readonly batchesMax: number,
    private readonly bytesMax: number,
  ) {
    assert(batchesMax >= 1 && bytesMax >= 1, "delivery window: limits must be positive");
  }

  get batchCount(): number {
    return this.#batches.length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Full means: do not send. An empty window is never full, so one oversized batch can still go. */
  isFull(): boolean {
    return this.#batches.length >= this.batchesMax || this.#bytes >= this.bytesMax;
  }

  add(batch: SentBatch): void {
    assert(!this.isFull(), "delivery window: add while full");
    assert(batch.parts.length > 0, "delivery window: empty batch");
    const last = this.#batches[this.#batches.length - 1];
    assert(last === undefined || batch.lastLsn > last.lastLsn, "delivery window: batches out of LSN order");
    this.#batches.push(batch);
    this.#bytes += batch.bytes;
  }

  /** Drops every batch whose last LSN is covered by appliedLsn; returns how many. */
  release(appliedLsn: bigint): number {
    let released = 0;
    while (released < this.#batches.length && this.#batches[released]!.lastLsn <= appliedLsn) {
      this.#bytes -= this.#batches[released]!.bytes;
      released += 1;
    }
    if (released > 0) this.#batches = this.#batches.slice(released);
    assert(this.#bytes >= 0, "delivery window: negative byte count");
    return released;
  }

  /** True when a part with exactly these LSNs was sent in the current window. */
  holdsPart(lsn: bigint, prevLsn: bigint): boolean {
    for (const batch of this.#batches) {
      if (batch.lastLsn < lsn) continue;
      return batch.parts.some((p) => p.lsn === lsn && p.prevLsn === prevLsn);
    }
    return false;
  }

  clear(): void {
    this.#batches = [];
    this.#bytes = 0;
  }
}
