import { cellOf, formatIssueTable, tableRows, unsustainedReason } from "./issue-table";
import { delay, run } from "./system-run.fixture";

describe("the issue table's plan", () => {
  it("runs 20 shards on the cluster only, every other row on every system", () => {
    const rows = tableRows(["redis", "nats", "cluster-1", "cluster-3"]);
    expect(rows.map((r) => r.workload.shards)).toEqual([3, 3, 3, 20]);
    expect(rows[3]!.systems).toEqual(["cluster-1", "cluster-3"]);
    expect(rows[1]!.systems).toEqual(["redis", "nats", "cluster-1", "cluster-3"]);
    expect(rows[2]!.workload).toMatchObject({ keysPerTxn: 10, valueBytes: 1024 });
  });
});

describe("the sustained-rate verdict", () => {
  it("accepts a rate achieved within 5 % with a p99 near the first rate's", () => {
    expect(unsustainedReason(4000, [run("x", 1, 12, { throughputPerS: 3900 }), run("x", 1, 15, { throughputPerS: 3990 })], 9)).toBeNull();
  });

  it("refuses a rate one repetition fell short of", () => {
    expect(unsustainedReason(4000, [run("x", 1, 12, { throughputPerS: 3990 }), run("x", 1, 12, { throughputPerS: 3700 })], 9)).toMatch(
      /achieved 3700/,
    );
  });

  it("refuses a p99 that jumped past 10x the first rate's, or past a second", () => {
    expect(unsustainedReason(8000, [run("x", 5, 95, { throughputPerS: 8000 })], 9)).toMatch(/jumped/);
    expect(unsustainedReason(8000, [run("x", 5, 1500, { throughputPerS: 8000 })], null)).toMatch(/over 1000 ms/);
  });

  it("refuses failures, unapplied messages and an empty rung", () => {
    expect(unsustainedReason(1000, [run("x", 1, 2, { failed: 3 })], null)).toMatch(/3 sends failed/);
    expect(unsustainedReason(1000, [run("x", 1, 2, { allApplied: false })], null)).toMatch(/not everything was applied/);
    expect(unsustainedReason(1000, [], null)).toBe("no run");
  });
});

describe("the issue table's text", () => {
  it("shows medians per cell, the ladder, CPU of the first row and LogPlayer delay where the issue sets targets", () => {
    const systems = ["redis", "cluster-3"];
    const rows = tableRows(systems);
    const text = formatIssueTable({
      systems,
      rows: rows.map((row, i) => ({
        row,
        cells: new Map(
          row.systems.map((system) => [
            system,
            cellOf([
              run(system, 1 + i, 10 + i, { cpuMsPerTxn: 0.5, ...(system === "redis" ? {} : { logPlayerDelay: delay(0.3, 2) }) }),
              run(system, 3 + i, 30 + i, { cpuMsPerTxn: 0.7, ...(system === "redis" ? {} : { logPlayerDelay: delay(0.5, 4) }) }),
            ]),
          ]),
        ),
      })),
      ladder: [
        { system: "redis", maxSustained: 20000, stoppedAt: { rate: 25000, reason: "achieved 21000/s" } },
        { system: "cluster-3", maxSustained: null, stoppedAt: { rate: 1000, reason: "p99 1500.0 ms over 1000 ms" } },
      ],
    });
    const lines = text.split("\n");
    expect(lines[2]).toBe("| 200 B, 1,000 txn/s | 2.00 / 20.0 | 2.00 / 20.0 |");
    expect(lines[5]).toBe("| 10 KB, 1,000 txn/s, 20 shards | — | 5.00 / 23.0 |");
    expect(text).toContain(
      "| max sustained, 200 B, 3 shards | 20,000/s (at 25000/s: achieved 21000/s) | none (at 1000/s: p99 1500.0 ms over 1000 ms) |",
    );
    expect(text).toContain("| CPU per transaction, 200 B, 1,000 txn/s (all processes) | 0.60 ms | 0.60 ms |");
    expect(text).toContain("| LogPlayer delay (dispatch → received), 200 B, 1,000 txn/s | — | 0.40 / 3.00 |");
    expect(text).toContain("| LogPlayer delay (dispatch → received), 10 KB, 1,000 txn/s, 20 shards | — | 0.40 / 3.00 |");
    expect(text).not.toContain("LogPlayer delay (dispatch → received), 200 B, 5,000");
  });

  it("marks a cell with failures as incomplete", () => {
    expect(cellOf([run("x", 1, 2), run("x", 1, 2, { failed: 1 })]).incomplete).toBe(true);
    expect(cellOf([run("x", 1, 2)]).incomplete).toBe(false);
  });
});
