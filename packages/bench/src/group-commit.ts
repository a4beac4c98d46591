import http from "node:http";

/**
 * The LogStore's group commits over the measured phase, from its /metrics.
 * The LogPlayer delay depends on them: a slower durable write makes each
 * group commit, and so each batch every shard receives at once, larger (see
 * docs/benchmarks.md, third cut). Printing them makes runs on a machine
 * whose disk speed drifts comparable.
 */
export interface GroupCommitSummary {
  /** The replica the summary is from: the one that took the most appends (the leader). */
  replica: string;
  groupCommits: number;
  entriesPerGroup: number;
  durableWriteMeanMs: number;
}

/** The counters read from one scrape; sums over label sets. */
export interface GroupCommitCounters {
  appends: number;
  groupCommits: number;
  entries: number;
  durableWriteSeconds: number;
}

const METRICS = {
  appends: "lp_logstore_appends_total",
  groupCommits: "lp_logstore_group_commit_entries_count",
  entries: "lp_logstore_group_commit_entries_sum",
  durableWriteSeconds: "lp_logstore_durable_write_seconds_sum",
} as const;

/** Reads the counters from a Prometheus text exposition. Pure. */
export function parseGroupCommitCounters(text: string): GroupCommitCounters {
  const counters: GroupCommitCounters = { appends: 0, groupCommits: 0, entries: 0, durableWriteSeconds: 0 };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$/.exec(line.trim());
    if (match === null) continue;
    const value = Number(match[2]);
    for (const [field, name] of Object.entries(METRICS) as [keyof GroupCommitCounters, string][]) {
      if (match[1] === name) counters[field] += value;
    }
  }
  return counters;
}

/**
 * The summary between two scrapes of each replica, from the replica whose
 * appends grew most. Null when no replica group-committed in between.
 */
export function summarizeGroupCommits(
  replicas: readonly { replica: string; before: GroupCommitCounters; after: GroupCommitCounters }[],
): GroupCommitSummary | null {
  let best: GroupCommitSummary | null = null;
  let bestAppends = -1;
  for (const { replica, before, after } of replicas) {
    const appends = after.appends - before.appends;
    const groupCommits = after.groupCommits - before.groupCommits;
    if (groupCommits <= 0 || appends <= bestAppends) continue;
    bestAppends = appends;
    best = {
      replica,
      groupCommits,
      entriesPerGroup: (after.entries - before.entries) / groupCommits,
      durableWriteMeanMs: ((after.durableWriteSeconds - before.durableWriteSeconds) / groupCommits) * 1000,
    };
  }
  return best;
}

/** GET http://host:port/metrics, bounded by `timeoutMs`. */
export function scrapeMetrics(host: string, port: number, timeoutMs: number, urlPath = "/metrics"): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host, port, path: urlPath, timeout: timeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        response.statusCode === 200 ? resolve(body) : reject(new Error(`${urlPath} on ${host}:${port}: HTTP ${response.statusCode}`)),
      );
      response.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error(`no ${urlPath} answer from ${host}:${port} within ${timeoutMs} ms`)));
    request.on("error", reject);
  });
}
