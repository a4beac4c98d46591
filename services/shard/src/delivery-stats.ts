import * as hdr from "hdr-histogram-js";
import { nsToUs } from "@logplayer/common";
import type { DeliveryStatsResponse, Part } from "@logplayer/proto";

/** Where the two delays also go, in seconds: the shard's Prometheus histograms. */
export interface DelayObservers {
  readonly playerDelaySeconds: { observe(seconds: number): void };
  readonly applyDelaySeconds: { observe(seconds: number): void };
}

/** Delays above this are clamped: one hour, in microseconds. */
const DELAY_US_MAX = 3_600_000_000;

function buildDelayHistogram(): hdr.Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: DELAY_US_MAX,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/**
 * The paper's delivery measures, recorded per part as it arrives, all on
 * CLOCK_MONOTONIC (shared by every process on the machine):
 *   player delay        = received - dispatch_time_ns  (the LogPlayer delay)
 *   apply delay         = received - commit_time_ns
 *   sqlite commit delay = SQLite commit - commit_time_ns (applied parts only)
 * A time of 0 means "unknown" and is not recorded; a negative delay (clocks
 * from another machine) is not recorded either.
 */
export class DeliveryStats {
  #playerDelayUs = buildDelayHistogram();
  #applyDelayUs = buildDelayHistogram();
  #sqliteCommitDelayUs = buildDelayHistogram();
  #parts = 0n;

  constructor(private readonly observers: DelayObservers | null = null) {}

  recordReceived(part: Part, receivedNs: bigint): void {
    this.#parts += 1n;
    const playerDelayUs = record(this.#playerDelayUs, part.dispatchTimeNs, receivedNs);
    const applyDelayUs = record(this.#applyDelayUs, part.commitTimeNs, receivedNs);
    if (this.observers === null) return;
    if (playerDelayUs !== null) this.observers.playerDelaySeconds.observe(playerDelayUs / 1e6);
    if (applyDelayUs !== null) this.observers.applyDelaySeconds.observe(applyDelayUs / 1e6);
  }

  recordCommitted(part: Part, committedNs: bigint): void {
    record(this.#sqliteCommitDelayUs, part.commitTimeNs, committedNs);
  }

  /** Encodes the histograms (values in µs), clearing them when `reset`. */
  snapshot(reset: boolean): DeliveryStatsResponse {
    const response: DeliveryStatsResponse = {
      playerDelayUs: hdr.encodeIntoCompressedBase64(this.#playerDelayUs),
      applyDelayUs: hdr.encodeIntoCompressedBase64(this.#applyDelayUs),
      sqliteCommitDelayUs: hdr.encodeIntoCompressedBase64(this.#sqliteCommitDelayUs),
      parts: this.#parts,
    };
    if (reset) {
      this.#playerDelayUs.reset();
      this.#applyDelayUs.reset();
      this.#sqliteCommitDelayUs.reset();
      this.#parts = 0n;
    }
    return response;
  }
}

/** Records one delay; returns it in µs, or null when unknown (not recorded). */
function record(histogram: hdr.Histogram, startNs: bigint, endNs: bigint): number | null {
  if (startNs === 0n || endNs < startNs) return null;
  const delayUs = Math.min(nsToUs(endNs - startNs), DELAY_US_MAX);
  histogram.recordValue(delayUs);
  return delayUs;
}
