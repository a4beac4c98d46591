/**
 * A self-contained HTML page (inline SVG, no script, no external resource)
 * beside a benchmark's JSON: latency CDFs and the delay breakdown as stacked
 * bars. Pure: data in, text out.
 */

/** One latency distribution: [percentile 0-100, ms] pairs, percentile ascending. */
export interface CdfSeries {
  name: string;
  points: readonly (readonly [number, number])[];
}

/** One stacked bar: each segment's mean in ms (means add up; percentiles do not). */
export interface BreakdownBar {
  name: string;
  segments: readonly { name: string; ms: number }[];
}

export interface HtmlReportInput {
  title: string;
  /** Lines shown under the title (the config, the machine, the load). */
  notes: readonly string[];
  cdfs: readonly CdfSeries[];
  bars: readonly BreakdownBar[];
  /** A preformatted text table (the terminal report), shown last. */
  text: string;
}

/** The percentiles a CDF is drawn through. */
export const CDF_PERCENTILES = [
  0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 92.5, 95, 97, 98, 99, 99.5, 99.7, 99.9, 99.95, 99.99, 100,
] as const;

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const fmt = (n: number): string => (Math.round(n * 10) / 10).toString();

/** Latency CDF: x = ms on a log scale, y = share of samples at or below it. */
export function renderCdfSvg(series: readonly CdfSeries[]): string {
  const width = 760;
  const height = 360;
  const left = 60;
  const right = 180;
  const top = 20;
  const bottom = 50;
  const all = series.flatMap((s) => s.points.map(([, ms]) => ms)).filter((ms) => ms > 0);
  if (all.length === 0) return "<p>no latency samples</p>";
  const lo = 10 ** Math.floor(Math.log10(Math.min(...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (ms: number): number =>
    left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1)) * (width - left - right);
  const y = (percent: number): number => top + (1 - percent / 100) * (height - top - bottom);
  const parts: string[] = [];
  for (let decade = lo; decade <= hi * 1.0001; decade *= 10) {
    parts.push(
      `<line x1="${fmt(x(decade))}" y1="${top}" x2="${fmt(x(decade))}" y2="${height - bottom}" stroke="#ddd"/>`,
      `<text x="${fmt(x(decade))}" y="${height - bottom + 16}" text-anchor="middle" font-size="11">${decade >= 1 ? decade : decade.toPrecision(1)}</text>`,
    );
  }
  for (const percent of [0, 25, 50, 75, 90, 99]) {
    parts.push(
      `<line x1="${left}" y1="${fmt(y(percent))}" x2="${width - right}" y2="${fmt(y(percent))}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${fmt(y(percent) + 4)}" text-anchor="end" font-size="11">${percent}%</text>`,
    );
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle" font-size="12">latency, ms (log scale)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!;
    const path = s.points.map(([percent, ms], j) => `${j === 0 ? "M" : "L"}${fmt(x(ms))},${fmt(y(percent))}`).join(" ");
    parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"/>`);
    const legendY = top + 10 + i * 18;
    parts.push(
      `<rect x="${width - right + 10}" y="${legendY - 9}" width="12" height="12" fill="${color}"/>`,
      `<text x="${width - right + 28}" y="${legendY + 1}" font-size="11">${escapeHtml(s.name)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img">${parts.join("")}</svg>`;
}

/** The breakdown: one horizontal bar per system, a colour per segment, widths in mean ms. */
export function renderBreakdownSvg(bars: readonly BreakdownBar[]): string {
  if (bars.length === 0) return "<p>no delay breakdown (tracing was off)</p>";
  const width = 760;
  const left = 150;
  // Room for the total printed after the longest bar.
  const right = 80;
  const barHeight = 26;
  const names = [...new Set(bars.flatMap((bar) => bar.segments.map((segment) => segment.name)))];
  const totals = bars.map((bar) => bar.segments.reduce((sum, segment) => sum + Math.max(0, segment.ms), 0));
  const scale = (width - left - right) / Math.max(...totals, 1e-9);
  const parts: string[] = [];
  bars.forEach((bar, i) => {
    const rowY = 10 + i * (barHeight + 14);
    parts.push(`<text x="${left - 8}" y="${rowY + 17}" text-anchor="end" font-size="12">${escapeHtml(bar.name)}</text>`);
    let at = left;
    for (const segment of bar.segments) {
      const w = Math.max(0, segment.ms) * scale;
      const color = COLORS[names.indexOf(segment.name) % COLORS.length]!;
      parts.push(
        `<rect x="${fmt(at)}" y="${rowY}" width="${fmt(w)}" height="${barHeight}" fill="${color}">` +
          `<title>${escapeHtml(`${segment.name}: ${segment.ms.toFixed(3)} ms mean`)}</title></rect>`,
      );
      at += w;
    }
    parts.push(`<text x="${fmt(Math.min(at + 4, width - right))}" y="${rowY + 17}" font-size="11">${totals[i]!.toFixed(2)} ms</text>`);
  });
  const legendTop = 10 + bars.length * (barHeight + 14) + 6;
  names.forEach((name, i) => {
    const legendY = legendTop + i * 18;
    parts.push(
      `<rect x="${left}" y="${legendY}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${left + 18}" y="${legendY + 10}" font-size="11">${escapeHtml(name)}</text>`,
    );
  });
  const height = legendTop + names.length * 18 + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img">${parts.join("")}</svg>`;
}

export function renderHtmlReport(input: HtmlReportInput): string {
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(input.title)}</title>`,
    "<style>body{font-family:sans-serif;margin:2em;max-width:60em}pre{font-size:12px;background:#f6f6f6;padding:1em;overflow-x:auto}</style>",
    "</head><body>",
    `<h1>${escapeHtml(input.title)}</h1>`,
    ...input.notes.map((note) => `<p>${escapeHtml(note)}</p>`),
    "<h2>Latency CDFs</h2>",
    renderCdfSvg(input.cdfs),
    "<h2>Delay breakdown (mean ms per hop)</h2>",
    renderBreakdownSvg(input.bars),
    "<h2>Report</h2>",
    `<pre>${escapeHtml(input.text)}</pre>`,
    "</body></html>",
    "",
  ].join("\n");
}
