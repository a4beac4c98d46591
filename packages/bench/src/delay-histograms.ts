import * as hdr from "hdr-histogram-js";
import { assert } from "@logplayer/common";

export type Histogram = hdr.Histogram;

/** Every histogram here counts microseconds; 3 significant digits (0.1% resolution). */
const SIGNIFICANT_DIGITS = 3;

export function createDelayHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 2,
    numberOfSignificantValueDigits: SIGNIFICANT_DIGITS,
    useWebAssembly: false,
  });
}

/** Records a delay in µs; delays under 1 µs (or negative from clock reads racing) count as 1 µs. */
export function recordDelayUs(histogram: Histogram, delayUs: number): void {
  assert(Number.isFinite(delayUs), `delay ${delayUs} is a number`);
  histogram.recordValue(Math.max(1, Math.round(delayUs)));
}

/** A shard's compressed-base64 histogram; an empty string (nothing recorded) is an empty histogram. */
export function decodeDelayHistogram(encoded: string): Histogram {
  if (encoded === "") return createDelayHistogram();
  return hdr.decodeFromCompressedBase64(encoded, 32, false);
}

/** One histogram holding every input's counts (inputs are left unchanged). */
export function mergeHistograms(histograms: readonly Histogram[]): Histogram {
  const merged = createDelayHistogram();
  for (const histogram of histograms) merged.add(histogram);
  const expected = histograms.reduce((sum, h) => sum + h.totalCount, 0);
  assert(merged.totalCount === expected, `merged count ${merged.totalCount} is the sum of the inputs' ${expected}`);
  return merged;
}

/** What the table and the JSON report for one measure, in milliseconds; null fields when nothing was recorded. */
export interface DelaySummary {
  count: number;
  meanMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  p999Ms: number | null;
  maxMs: number | null;
}

export function summarizeUs(histogram: Histogram): DelaySummary {
  const count = histogram.totalCount;
  if (count === 0) return { count, meanMs: null, p50Ms: null, p99Ms: null, p999Ms: null, maxMs: null };
  const ms = (us: number): number => us / 1000;
  const maxUs = histogram.maxValue;
  // A percentile is reported as its bucket's highest equivalent value, which can
  // exceed the largest value recorded; never print a p99.9 above the max.
  const percentileUs = (p: number): number => Math.min(histogram.getValueAtPercentile(p), maxUs);
  return {
    count,
    meanMs: ms(histogram.mean),
    p50Ms: ms(percentileUs(50)),
    p99Ms: ms(percentileUs(99)),
    p999Ms: ms(percentileUs(99.9)),
    maxMs: ms(maxUs),
  };
}

export interface SummaryRow {
  name: string;
  summary: DelaySummary;
}

const COLUMNS = ["count", "mean", "p50", "p99", "p99.9", "max"] as const;

/** A time in ms with 3 decimals, "-" when there is none (no samples). */
export function formatMs(ms: number | null): string {
  return ms === null ? "-" : ms.toFixed(3);
}

/** A fixed-width text table, times in ms with 3 decimals. Pure. */
export function formatSummaryTable(rows: readonly SummaryRow[]): string {
  const body = rows.map(({ name, summary: s }) => [
    name,
    String(s.count),
    formatMs(s.meanMs),
    formatMs(s.p50Ms),
    formatMs(s.p99Ms),
    formatMs(s.p999Ms),
    formatMs(s.maxMs),
  ]);
  const header = ["(ms)", ...COLUMNS];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...body.map(line)].join("\n");
}

/** [percentile, ms] through `percentiles` (ascending), for a CDF plot; empty when nothing was recorded. */
export function cdfPoints(histogram: Histogram, percentiles: readonly number[]): [number, number][] {
  if (histogram.totalCount === 0) return [];
  const maxUs = histogram.maxValue;
  return percentiles.map((p) => [p, (p >= 100 ? maxUs : Math.min(histogram.getValueAtPercentile(p), maxUs)) / 1000]);
}
