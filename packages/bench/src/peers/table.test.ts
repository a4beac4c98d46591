import { formatPeersTable, interleave, summarizeSystems } from "./table";
import { run } from "./system-run.fixture";

describe("peers table", () => {
  it("interleaves the systems: every one once per repetition, in the same order", () => {
    expect(interleave(["a", "b"], 2)).toEqual([
      { rep: 1, system: "a" },
      { rep: 1, system: "b" },
      { rep: 2, system: "a" },
      { rep: 2, system: "b" },
    ]);
  });

  it("takes the median of the repetitions and the ratio to the first system", () => {
    const rows = summarizeSystems(
      [run("redis", 1, 10), run("cluster", 4, 30), run("redis", 3, 30), run("cluster", 6, 90), run("redis", 2, 20), run("cluster", 8, 60)],
      ["redis", "cluster"],
    );
    expect(rows.map((r) => [r.system, r.reps, r.p50Ms, r.p99Ms, r.p50Ratio, r.p99Ratio])).toEqual([
      ["redis", 3, 2, 20, 1, 1],
      ["cluster", 3, 6, 60, 3, 3],
    ]);
  });

  it("flags a system with failures or unapplied messages and prints one row per system", () => {
    const rows = summarizeSystems([run("redis", 1, 2), run("nats", 1, 2, { failed: 3 })], ["redis", "nats"]);
    const table = formatPeersTable(rows).split("\n");
    expect(table).toHaveLength(3);
    expect(table[1]).not.toContain("INCOMPLETE");
    expect(table[2]).toContain("INCOMPLETE");
  });
});
