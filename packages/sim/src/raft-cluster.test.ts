import { runRaftScenario } from "./raft-cluster";
import type { RaftScenarioOptions, RaftScenarioResult } from "./raft-cluster";

const STEPS = 3_000;

function runSeeds(first: number, count: number, options: Omit<RaftScenarioOptions, "seed">): RaftScenarioResult[] {
  const results: RaftScenarioResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = runRaftScenario({ ...options, seed });
    results.push(result);
    if (!result.ok) break;
  }
  return results;
}

function report(result: RaftScenarioResult | undefined): string {
  return result === undefined ? "" : [result.violation, result.replayCommand, ...result.traceTail].join("\n");
}

describe("raft cluster under faults", () => {
  test("200 seeds of 3 nodes keep every safety property and every acknowledged proposal", () => {
    const results = runSeeds(1, 200, { steps: STEPS, nodes: 3 });
    const failed = results.find((result) => !result.ok);
    expect(report(failed)).toBe("");
    expect(results).toHaveLength(200);
    // The runs did exercise the faults: crashes, elections, acknowledged proposals.
    expect(results.reduce((sum, result) => sum + result.stats.crashes, 0)).toBeGreaterThan(200);
    expect(results.filter((result) => result.stats.termMax >= 3n).length).toBeGreaterThan(100);
    // Progress despite the faults (a few seeds are all churn and acknowledge nothing).
    expect(results.filter((result) => result.stats.acked > 0).length).toBeGreaterThan(180);
    expect(results.reduce((sum, result) => sum + result.stats.acked, 0)).toBeGreaterThan(5_000);
  });

  test("50 seeds of 5 nodes", () => {
    const failed = runSeeds(1_000, 50, { steps: STEPS, nodes: 5 }).find((result) => !result.ok);
    expect(report(failed)).toBe("");
  });

  test("a seed replays exactly", () => {
    const first = runRaftScenario({ seed: 42, steps: STEPS, nodes: 3 });
    const second = runRaftScenario({ seed: 42, steps: STEPS, nodes: 3 });
    expect(second.stats).toEqual(first.stats);
    expect(second.traceTail).toEqual(first.traceTail);
  });
});
