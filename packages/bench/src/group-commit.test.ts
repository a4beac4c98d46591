import { parseGroupCommitCounters, summarizeGroupCommits, type GroupCommitCounters } from "./group-commit";

const scrape = (appends: { ok: number; duplicate: number }, groups: number, entries: number, writeSeconds: number): string => `
# HELP lp_logstore_appends_total Append calls by outcome
# TYPE lp_logstore_appends_total counter
lp_logstore_appends_total{outcome="ok",service="logstore"} ${appends.ok}
lp_logstore_appends_total{outcome="duplicate",service="logstore"} ${appends.duplicate}
lp_logstore_group_commit_entries_bucket{le="1",service="logstore"} 3
lp_logstore_group_commit_entries_sum{service="logstore"} ${entries}
lp_logstore_group_commit_entries_count{service="logstore"} ${groups}
lp_logstore_durable_write_seconds_sum{service="logstore"} ${writeSeconds}
lp_logstore_durable_write_seconds_count{service="logstore"} ${groups}
lp_logstore_commit_lsn{service="logstore"} 4242
`;

describe("group-commit summary from the LogStore's /metrics", () => {
  test("the counters are read and summed over label sets; other series are ignored", () => {
    expect(parseGroupCommitCounters(scrape({ ok: 90, duplicate: 10 }, 40, 100, 0.08))).toEqual({
      appends: 100,
      groupCommits: 40,
      entries: 100,
      durableWriteSeconds: 0.08,
    });
    expect(parseGroupCommitCounters("garbage\n# only comments")).toEqual({
      appends: 0,
      groupCommits: 0,
      entries: 0,
      durableWriteSeconds: 0,
    });
  });

  test("the summary covers the interval between two scrapes, from the replica that took the most appends", () => {
    const counters = (appends: number, groupCommits: number, entries: number, durableWriteSeconds: number): GroupCommitCounters => ({
      appends,
      groupCommits,
      entries,
      durableWriteSeconds,
    });
    const summary = summarizeGroupCommits([
      // A follower: it writes the log too, but takes no appends.
      { replica: "logstore-2", before: counters(0, 10, 30, 0.01), after: counters(0, 510, 3030, 0.81) },
      { replica: "logstore-1", before: counters(500, 100, 500, 0.2), after: counters(10_500, 3_600, 10_500, 6.2) },
    ]);
    expect(summary).not.toBeNull();
    expect(summary!.replica).toBe("logstore-1");
    expect(summary!.groupCommits).toBe(3_500);
    expect(summary!.entriesPerGroup).toBeCloseTo(10_000 / 3_500, 9);
    expect(summary!.durableWriteMeanMs).toBeCloseTo((6.0 / 3_500) * 1000, 9);
  });

  test("no group commit in the interval gives no summary", () => {
    const same: GroupCommitCounters = { appends: 5, groupCommits: 5, entries: 5, durableWriteSeconds: 0.01 };
    expect(summarizeGroupCommits([{ replica: "logstore", before: same, after: same }])).toBeNull();
    expect(summarizeGroupCommits([])).toBeNull();
  });
});
