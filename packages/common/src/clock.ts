/**
 * Monotonic time in nanoseconds. On Linux this is CLOCK_MONOTONIC, shared by
 * every process on the machine, so the client's commit time, the LogPlayer's
 * dispatch time and the shard's receive time are on one clock.
 */
export function monotonicNs(): bigint {
  return process.hrtime.bigint();
}

export function nsToUs(ns: bigint): number {
  return Number(ns / 1000n);
}
