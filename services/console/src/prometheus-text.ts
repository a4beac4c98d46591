/** One sample of a Prometheus text exposition: `name{labels} value`. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text format (comments skipped, unparsable lines ignored): enough for our own services' /metrics. */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = SAMPLE_LINE.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? "").matchAll(LABEL)) {
      labels[label[1] ?? ""] = (label[2] ?? "").replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
    }
    const value = match[3] === "+Inf" ? Number.POSITIVE_INFINITY : Number(match[3]);
    if (!Number.isNaN(value)) samples.push({ name: match[1] ?? "", labels, value });
  }
  return samples;
}

/** The samples named `name` whose labels include `where`. */
export function select(samples: readonly Sample[], name: string, where: Readonly<Record<string, string>> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v));
}

/** A histogram's cumulative bucket counts, by upper bound ascending (+Inf last), summed over the given samples. */
export function histogramBuckets(samples: readonly Sample[], name: string): { le: number; count: number }[] {
  const byBound = new Map<number, number>();
  for (const sample of select(samples, `${name}_bucket`)) {
    const bound = sample.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
    byBound.set(bound, (byBound.get(bound) ?? 0) + sample.value);
  }
  return [...byBound.entries()].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count }));
}
