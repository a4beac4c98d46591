import { Backoff as BackoffWithInjectedRandom, DEFAULT_BACKOFF, type BackoffConfig } from "@logplayer/base";

/**
 * The services' backoff: @logplayer/base's Backoff with the process's own
 * randomness as the default. Pure code and simulators use base's and pass a
 * seeded source instead.
 */
export class Backoff extends BackoffWithInjectedRandom {
  constructor(config: BackoffConfig = DEFAULT_BACKOFF, random: () => number = Math.random) {
    super(config, random);
  }
}
