import { runDeliveryScenario } from "./delivery-cluster";
import type { DeliveryScenarioOptions, DeliveryScenarioResult } from "./delivery-cluster";

// The real delivery cores under every fault the scenario knows; the checker runs
// after every step and at quiescence. CI runs a bounded number of seeds here;
// `node packages/sim/dist/run-delivery.js --seeds N` runs many more.

const STEPS = 4_000;

function runSeeds(first: number, count: number, options: Omit<DeliveryScenarioOptions, "seed">): DeliveryScenarioResult[] {
  const results: DeliveryScenarioResult[] = [];
  for (let seed = first; seed < first + count; seed++) {
    const result = runDeliveryScenario({ ...options, seed });
    results.push(result);
    if (!result.ok) break;
  }
  return results;
}

function report(result: DeliveryScenarioResult | undefined): string {
  return result === undefined ? "" : [result.violation, result.replayCommand, ...result.traceTail].join("\n");
}

function sum(results: readonly DeliveryScenarioResult[], pick: (result: DeliveryScenarioResult) => number): number {
  return results.reduce((total, result) => total + pick(result), 0);
}

describe("delivery scenario under faults", () => {
  test("60 seeds with one LogPlayer: exactly-once in order, atomic, read-your-writes, bounded", () => {
    const results = runSeeds(1, 60, { steps: STEPS, shards: 3, players: 1 });
    expect(report(results.find((result) => !result.ok))).toBe("");
    expect(results).toHaveLength(60);
    // The seeds did exercise the faults and the cores' recovery paths.
    for (const fault of ["shardCrashes", "playerCrashes", "playerPauses", "logStoreCrashes", "partitions", "networkChanges", "tornTails"]) {
      expect([fault, sum(results, (result) => result.stats.faults[fault] ?? 0)]).toEqual([fault, expect.any(Number)]);
      expect(sum(results, (result) => result.stats.faults[fault] ?? 0)).toBeGreaterThan(0);
    }
    for (const path of ["rewinds", "overflows", "recoveryReads", "dummiesQueued", "staleEventsDropped", "suspends"]) {
      expect([path, sum(results, (result) => result.stats.core[path] ?? 0) > 0]).toEqual([path, true]);
    }
    expect(sum(results, (result) => result.stats.shardDecisions.duplicates)).toBeGreaterThan(0);
    expect(sum(results, (result) => result.stats.shardDecisions.gaps)).toBeGreaterThan(0);
    expect(sum(results, (result) => result.stats.readsChecked)).toBeGreaterThan(600);
    expect(results.every((result) => result.stats.committed > 50n)).toBe(true);
  });

  test("30 seeds with two LogPlayers at once (crashes, zombies)", () => {
    const results = runSeeds(1_000, 30, { steps: STEPS, shards: 3, players: 2 });
    expect(report(results.find((result) => !result.ok))).toBe("");
    expect(results).toHaveLength(30);
    expect(sum(results, (result) => result.stats.faults["playerPauses"] ?? 0)).toBeGreaterThan(30);
    // Two chains on one shard: the shard refuses the other's parts as duplicates and gaps.
    expect(sum(results, (result) => result.stats.shardDecisions.gaps)).toBeGreaterThan(30);
  });

  test("30 seeds with three LogStore replicas: followers learn commits late, the leader changes, main streams follow it", () => {
    const results = runSeeds(3_000, 30, { steps: STEPS, shards: 3, players: 2, logstoreReplicas: 3 });
    expect(report(results.find((result) => !result.ok))).toBe("");
    expect(results).toHaveLength(30);
    expect(sum(results, (result) => result.stats.faults["leaderChanges"] ?? 0)).toBeGreaterThan(30);
    expect(sum(results, (result) => result.stats.core["mainStreamMoves"] ?? 0)).toBeGreaterThan(30);
    // The core's choice shows: most main-stream messages came from the leader, despite the changes.
    const fromLeader = sum(results, (result) => result.stats.core["mainMessagesFromLeader"] ?? 0);
    const fromFollowers = sum(results, (result) => result.stats.core["mainMessagesFromFollowers"] ?? 0);
    expect(fromLeader).toBeGreaterThan(2 * fromFollowers);
  });

  test("one shard and five shards", () => {
    for (const shards of [1, 5]) {
      const failed = runSeeds(2_000, 5, { steps: STEPS, shards, players: 2 }).find((result) => !result.ok);
      expect(report(failed)).toBe("");
    }
  });

  test("a seed replays exactly", () => {
    const first = runDeliveryScenario({ seed: 42, steps: STEPS, shards: 3, players: 2 });
    const second = runDeliveryScenario({ seed: 42, steps: STEPS, shards: 3, players: 2 });
    expect(first.ok).toBe(true);
    expect(second.stats).toEqual(first.stats);
    expect(second.traceTail).toEqual(first.traceTail);
    expect(runDeliveryScenario({ seed: 43, steps: STEPS, shards: 3, players: 2 }).traceTail).not.toEqual(first.traceTail);
  });
});
