import * as hdr from "hdr-histogram-js";
import {
  createDelayHistogram,
  decodeDelayHistogram,
  formatSummaryTable,
  mergeHistograms,
  recordDelayUs,
  summarizeUs,
} from "./delay-histograms";

/** What a shard sends: a histogram in compressed base64. */
function encoded(valuesUs: number[]): string {
  const h = createDelayHistogram();
  for (const v of valuesUs) h.recordValue(v);
  return hdr.encodeIntoCompressedBase64(h);
}

describe("delay histograms", () => {
  it("merges shards' encoded histograms into one, keeping every count", () => {
    // Shard 0: 1..900 µs; shard 1: 100 slow parts of 10 ms; shard 2: nothing yet.
    const shard0 = encoded(Array.from({ length: 900 }, (_, i) => i + 1));
    const shard1 = encoded(Array(100).fill(10_000));
    const merged = mergeHistograms([shard0, shard1, ""].map(decodeDelayHistogram));
    const summary = summarizeUs(merged);
    expect(summary.count).toBe(1000);
    // p50 sits in shard 0's range, p99 and max in shard 1's: only true if both were merged.
    expect(summary.p50Ms).toBeCloseTo(0.5, 2);
    expect(summary.p99Ms).toBeCloseTo(10, 1);
    expect(summary.maxMs).toBeCloseTo(10, 1);
    expect(summary.meanMs).toBeCloseTo((450.5 * 900 + 10_000 * 100) / 1000 / 1000, 2);
  });

  it("p99.9 separates a rare tail the p99 does not show", () => {
    const h = createDelayHistogram();
    for (let i = 0; i < 9990; i++) recordDelayUs(h, 200);
    for (let i = 0; i < 10; i++) recordDelayUs(h, 50_000);
    const s = summarizeUs(h);
    expect(s.p99Ms).toBeCloseTo(0.2, 2);
    expect(s.p999Ms).toBeCloseTo(0.2, 2);
    recordDelayUs(h, 50_000);
    recordDelayUs(h, 50_000);
    expect(summarizeUs(h).p999Ms).toBeCloseTo(50, 0);
  });

  it("never reports a percentile above the max", () => {
    const h = createDelayHistogram();
    for (let i = 0; i < 1000; i++) recordDelayUs(h, 6_167_866 + i);
    const s = summarizeUs(h);
    expect(s.p999Ms!).toBeLessThanOrEqual(s.maxMs!);
    expect(s.p99Ms!).toBeLessThanOrEqual(s.p999Ms!);
  });

  it("records sub-microsecond and negative delays as 1 µs rather than failing", () => {
    const h = createDelayHistogram();
    recordDelayUs(h, -3);
    recordDelayUs(h, 0.2);
    expect(h.totalCount).toBe(2);
    expect(h.maxValue).toBe(1);
  });

  it("an empty measure reports its count and dashes", () => {
    const s = summarizeUs(createDelayHistogram());
    expect(s).toEqual({ count: 0, meanMs: null, p50Ms: null, p99Ms: null, p999Ms: null, maxMs: null });
    const table = formatSummaryTable([
      { name: "LogPlayer delay", summary: { count: 3, meanMs: 0.25, p50Ms: 0.2, p99Ms: 0.5, p999Ms: 0.5, maxMs: 0.5 } },
      { name: "apply delay", summary: s },
    ]);
    const lines = table.split("\n");
    expect(lines[0]).toMatch(/^\(ms\)\s+count\s+mean\s+p50\s+p99\s+p99\.9\s+max$/);
    expect(lines[1]).toMatch(/^LogPlayer delay\s+3\s+0\.250\s+0\.200\s+0\.500\s+0\.500\s+0\.500$/);
    expect(lines[2]).toMatch(/^apply delay\s+0\s+-\s+-\s+-\s+-\s+-$/);
  });
});
