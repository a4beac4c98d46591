import { assert } from "@logplayer/base";

/**
 * What each caller holds of a resource that is also bounded in total (Read
 * streams, Deliver streams, read waiters), so that one caller cannot take it
 * all. Only callers holding at least one slot are remembered, so the map is
 * bounded by the resource's total limit.
 */
export class CallerSlots {
  readonly #held = new Map<string, number>();

  constructor(readonly perCallerMax: number) {
    assert(Number.isInteger(perCallerMax) && perCallerMax >= 1, `per-caller limit must be a positive integer, got ${perCallerMax}`);
  }

  /** A release function (idempotent), or null when `caller` already holds perCallerMax slots. */
  tryAcquire(caller: string): (() => void) | null {
    const held = this.#held.get(caller) ?? 0;
    if (held >= this.perCallerMax) return null;
    this.#held.set(caller, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#held.get(caller) ?? 0) - 1;
      assert(left >= 0, `caller ${caller} released a slot it did not hold`);
      if (left === 0) this.#held.delete(caller);
      else this.#held.set(caller, left);
    };
  }

  heldBy(caller: string): number {
    return this.#held.get(caller) ?? 0;
  }
}
