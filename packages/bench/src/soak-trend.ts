/**
 * Whether a soak series grows without bound: a least-squares slope over the
 * last half of the samples, extrapolated to one hour, compared with the
 * series' size. A bounded series (a WAL trimmed in a sawtooth, a heap that
 * settles) has a slope near 0 over its last half; one that keeps growing
 * (nothing trimmed, a leak) does not.
 */

export interface TrendSample {
  /** Seconds since the run started. */
  readonly tS: number;
  readonly value: number;
}

export interface GrowthBound {
  /** Growth per hour allowed, as a percentage of the last half's mean. */
  readonly relativePctPerHour: number;
  /** Growth per hour always allowed (noise in a small series), in the series' unit. */
  readonly absolutePerHour: number;
  /**
   * Rise from the first sample to the last always allowed, in the series'
   * unit: a cache that fills to a declared size (a shard's SQLite page cache)
   * and warm-up. Growth is judged a leak only past it.
   */
  readonly riseAllowed: number;
}

export interface TrendVerdict {
  readonly first: number;
  readonly last: number;
  /** Mean over the last half. */
  readonly mean: number;
  /** Fitted slope over the last half, per hour; null with fewer than two samples there. */
  readonly slopePerHour: number | null;
  /** The growth per hour the bound allows for this series. */
  readonly allowedPerHour: number;
  /** Last minus first. */
  readonly rise: number;
  readonly riseAllowed: number;
  readonly grows: boolean;
}

/** Least-squares slope of value over tS (per second); null with fewer than two distinct times. */
export function fitSlope(samples: readonly TrendSample[]): number | null {
  if (samples.length < 2) return null;
  const n = samples.length;
  const meanT = samples.reduce((sum, s) => sum + s.tS, 0) / n;
  const meanV = samples.reduce((sum, s) => sum + s.value, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const s of samples) {
    covariance += (s.tS - meanT) * (s.value - meanV);
    variance += (s.tS - meanT) ** 2;
  }
  return variance === 0 ? null : covariance / variance;
}

/** The verdict on one series (at least one sample). */
export function judgeTrend(samples: readonly TrendSample[], bound: GrowthBound): TrendVerdict {
  if (samples.length === 0) throw new RangeError("judgeTrend needs at least one sample");
  const lastHalf = samples.slice(Math.floor(samples.length / 2));
  const mean = lastHalf.reduce((sum, s) => sum + s.value, 0) / lastHalf.length;
  const slope = fitSlope(lastHalf);
  const slopePerHour = slope === null ? null : slope * 3600;
  const allowedPerHour = Math.max((mean * bound.relativePctPerHour) / 100, bound.absolutePerHour);
  const first = samples[0]!.value;
  const last = samples[samples.length - 1]!.value;
  const rise = last - first;
  return {
    first,
    last,
    mean,
    slopePerHour,
    allowedPerHour,
    rise,
    riseAllowed: bound.riseAllowed,
    grows: slopePerHour !== null && slopePerHour > allowedPerHour && rise > bound.riseAllowed,
  };
}
