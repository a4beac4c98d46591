import { assert } from "@logplayer/common";

/**
 * A seeded pseudo-random generator (mulberry32: 32-bit state, fast, good
 * enough to explore schedules). Every random choice in a simulation comes
 * from one of these, so a seed replays the run exactly.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `prng: seed must be an integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, bound). */
  int(bound: number): number {
    assert(Number.isSafeInteger(bound) && bound > 0, `prng: bound must be a positive integer, got ${bound}`);
    return Math.floor(this.next() * bound);
  }

  /** Uniform integer in [min, max]. */
  between(min: number, max: number): number {
    assert(min <= max, `prng: empty range [${min}, ${max}]`);
    return min + this.int(max - min + 1);
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    assert(item !== undefined, "prng: pick from an empty list");
    return item;
  }

  /** An independent generator derived from this one (e.g. one per node). */
  fork(): Prng {
    return new Prng(this.int(0x7fffffff));
  }
}
