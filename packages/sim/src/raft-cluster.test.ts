import { runRaftScenario } from "./raft-cluster";
import type { RaftScenarioOptions, RaftScenarioResult } from "./raft-cluster";

const STEPS = 3_000;
/** A bound, not a measure: hundreds of seeds, each awaiting the WAL between events, on a busy machine. */
const SEEDS_TIMEOUT_MS = 900_000;

async function runSeeds(first: number, count: number, options: Omit<RaftScenarioOptions, "seed">): Promise<RaftScenarioResult[]> {
  const results: RaftScenarioResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = await runRaftScenario({ ...options, seed });
    results.push(result);
    if (!result.ok) break;
  }
  return results;
}

function report(result: RaftScenarioResult | undefined): string {
  return result === undefined ? "" : [result.violation, result.replayCommand, ...result.traceTail].join("\n");
}

describe("raft cluster under faults", () => {
  test(
    "200 seeds of 3 nodes keep every safety property and every acknowledged proposal",
    async () => {
      const results = await runSeeds(1, 200, { steps: STEPS, nodes: 3 });
      const failed = results.find((result) => !result.ok);
      expect(report(failed)).toBe("");
      expect(results).toHaveLength(200);
      // The runs did exercise the faults: crashes, elections, acknowledged proposals.
      expect(results.reduce((sum, result) => sum + result.stats.crashes, 0)).toBeGreaterThan(200);
      expect(results.filter((result) => result.stats.termMax >= 3n).length).toBeGreaterThan(100);
      // Progress despite the faults (a few seeds are all churn and acknowledge nothing).
      expect(results.filter((result) => result.stats.acked > 0).length).toBeGreaterThan(180);
      expect(results.reduce((sum, result) => sum + result.stats.acked, 0)).toBeGreaterThan(5_000);
      // The real WAL's crash paths ran: truncations of conflicting suffixes, writes torn by a crash, torn tails cut.
      const walTotal = (stat: "truncations" | "tornWrites" | "tornTailsCut"): number =>
        results.reduce((sum, result) => sum + result.stats[stat], 0);
      expect({
        truncations: walTotal("truncations") > 50,
        tornWrites: walTotal("tornWrites") > 10,
        tornTailsCut: walTotal("tornTailsCut") > 10,
      }).toEqual({ truncations: true, tornWrites: true, tornTailsCut: true });
    },
    SEEDS_TIMEOUT_MS,
  );

  test(
    "50 seeds of 5 nodes",
    async () => {
      const failed = (await runSeeds(1_000, 50, { steps: STEPS, nodes: 5 })).find((result) => !result.ok);
      expect(report(failed)).toBe("");
    },
    SEEDS_TIMEOUT_MS,
  );

  test(
    "25 seeds with full disks: appends refused (RESOURCE_EXHAUSTED), nothing acknowledged lost or torn, writes resume",
    async () => {
      const results = await runSeeds(2_000, 25, { steps: STEPS, nodes: 3, diskFull: true });
      const failed = results.find((result) => !result.ok);
      expect(report(failed)).toBe("");
      expect(results).toHaveLength(25);
      const total = (stat: "fills" | "noSpaceErrors" | "walReports" | "refusals"): number =>
        results.reduce((sum, result) => sum + result.stats.diskFull[stat], 0);
      // The disks did fill, the WAL met ENOSPC and said so, and the client was refused while it did.
      expect({ noSpace: total("noSpaceErrors") > 25, walReports: total("walReports") > 25, refusals: total("refusals") > 25 }).toEqual({
        noSpace: true,
        walReports: true,
        refusals: true,
      });
      // Writes resume once space is back: the final check needs one leader and every replica caught up. Progress
      // during the faults too, though a seed whose disks are all full for seconds of its ~6 s may acknowledge nothing.
      expect(results.filter((result) => result.stats.acked > 0).length).toBeGreaterThan(15);
    },
    SEEDS_TIMEOUT_MS,
  );

  test("a seed replays exactly", async () => {
    // The WAL's promises settle between simulated events, so the same seed gives the same run.
    const first = await runRaftScenario({ seed: 42, steps: STEPS, nodes: 3 });
    const second = await runRaftScenario({ seed: 42, steps: STEPS, nodes: 3 });
    expect(second.stats).toEqual(first.stats);
    expect(second.traceTail).toEqual(first.traceTail);
  });
});
