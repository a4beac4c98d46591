import { assert } from "./assert";

export interface BackoffConfig {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { initialDelayMs: 50, maxDelayMs: 2000, multiplier: 2 };

/**
 * Capped exponential backoff with full jitter: the n-th retry waits a
 * uniform random time in [0, min(max, initial * multiplier^n)]. Randomness
 * is an input, uniform in [0, 1), with no default here: a simulator passes a
 * seeded one to replay a run, and the service kit's Backoff passes Math.random.
 */
export class Backoff {
  #attempt = 0;
  constructor(
    private readonly config: BackoffConfig,
    private readonly random: () => number,
  ) {
    assert(config.initialDelayMs > 0 && config.maxDelayMs >= config.initialDelayMs, "backoff: bad delays");
    assert(config.multiplier >= 1, "backoff: multiplier < 1");
  }

  get attempt(): number {
    return this.#attempt;
  }

  nextDelayMs(): number {
    const ceiling = Math.min(this.config.maxDelayMs, this.config.initialDelayMs * this.config.multiplier ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 64);
    return Math.max(1, Math.floor(this.random() * ceiling));
  }

  reset(): void {
    this.#attempt = 0;
  }
}
