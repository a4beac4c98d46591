/**
 * When main-stream entries were dispatched, coarsely: consecutive dispatches
 * within SAMPLE_SPACING_NS share one sample holding the earliest time, so a
 * lag read from it is at most that much too high. Samples every target has
 * acknowledged are dropped; at most SAMPLES_MAX are kept (about an hour at
 * the spacing), past which the oldest go and a lag reads as at most that old.
 */
export class DispatchTimeline {
  static readonly SAMPLE_SPACING_NS = 100_000_000n;
  static readonly SAMPLES_MAX = 36_000;
  /** Ascending by lastLsn and atNs. */
  #samples: { lastLsn: bigint; readonly atNs: bigint }[] = [];

  /** Entries up to `lastLsn` were dispatched at `atNs`; `acknowledgedByAll`: the lowest LSN every target acknowledged (asked only for a new sample). */
  dispatched(lastLsn: bigint, atNs: bigint, acknowledgedByAll: () => bigint): void {
    const newest = this.#samples.at(-1);
    if (newest !== undefined && atNs - newest.atNs < DispatchTimeline.SAMPLE_SPACING_NS) {
      newest.lastLsn = lastLsn;
      return;
    }
    this.#samples.push({ lastLsn, atNs });
    const acknowledged = acknowledgedByAll();
    let drop = 0;
    while (drop < this.#samples.length - 1 && (this.#samples[drop]?.lastLsn ?? 0n) <= acknowledged) drop += 1;
    drop = Math.max(drop, this.#samples.length - DispatchTimeline.SAMPLES_MAX);
    if (drop > 0) this.#samples.splice(0, drop);
  }

  /** Seconds since the oldest entry after `acknowledged` was dispatched; 0 when nothing up to `currentIndex` is missing. */
  lagSeconds(acknowledged: bigint, currentIndex: bigint | null, nowNs: bigint): number {
    if (currentIndex === null || acknowledged >= currentIndex) return 0;
    // The first sample holding an entry past `acknowledged` (binary search on lastLsn).
    let low = 0;
    let high = this.#samples.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.#samples[middle]?.lastLsn ?? 0n) > acknowledged) high = middle;
      else low = middle + 1;
    }
    const sample = this.#samples[low];
    if (sample === undefined || nowNs < sample.atNs) return 0;
    return Number(nowNs - sample.atNs) / 1e9;
  }
}
