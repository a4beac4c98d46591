import { runMembershipScenario } from "./raft-membership";

// A few seeds of run-raft --membership: the CLI runs thousands; these keep the scenario and its checks working.
test.each([1, 2, 3, 4, 5, 6])("seed %i: membership changes under faults keep every Raft safety property", (seed) => {
  const result = runMembershipScenario({ seed, steps: 2000, nodes: 3 });
  expect([result.violation ?? "ok", result.replayCommand, ...result.traceTail].join("\n")).toMatch(/^ok/);
  const { changes } = result.stats;
  expect(changes["add-learner"] + changes.promote + changes.remove).toBeGreaterThan(0);
});
