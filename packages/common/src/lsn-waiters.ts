import { assert } from "@logplayer/base";
import { resourceExhausted } from "./errors";

interface Waiter {
  readonly lsn: bigint;
  readonly resolve: () => void;
}

/**
 * Callers waiting for a position (applied LSN, commit LSN) to reach a value.
 * Bounded: past `waitersMax` a new waiter is refused with RESOURCE_EXHAUSTED.
 * No timers: the adapter owns deadlines and calls `cancel` on expiry.
 */
export class LsnWaiters {
  #waiters = new Set<Waiter>();
  #position: bigint;

  constructor(
    initialPosition: bigint,
    private readonly waitersMax: number,
  ) {
    assert(waitersMax > 0, "waitersMax must be positive");
    this.#position = initialPosition;
  }

  get size(): number {
    return this.#waiters.size;
  }

  /** Resolves once position >= lsn. Returns a cancel function. */
  wait(lsn: bigint, resolve: () => void): () => void {
    if (this.#position >= lsn) {
      resolve();
      return () => {};
    }
    if (this.#waiters.size >= this.waitersMax) {
      throw resourceExhausted(`too many waiting reads (waiters_max ${this.waitersMax})`);
    }
    const waiter: Waiter = { lsn, resolve };
    this.#waiters.add(waiter);
    return () => {
      this.#waiters.delete(waiter);
    };
  }

  advance(position: bigint): void {
    assert(position >= this.#position, `position moved back from ${this.#position} to ${position}`);
    this.#position = position;
    for (const waiter of this.#waiters) {
      if (waiter.lsn <= position) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
  }
}
