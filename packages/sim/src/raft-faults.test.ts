import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { runRaftScenario } from "./raft-cluster";
import type { RaftScenarioOptions, RaftScenarioResult } from "./raft-cluster";
import type { RaftDriverTestOnlyFaults } from "@logplayer/logstore";
import type { TestOnlyFaults } from "@logplayer/raft";

// The simulator must be able to fail: each test-only fault in the core breaks one
// Raft rule, and a bounded number of seeds must expose it.

const STEPS = 3_000;
/** A bound, not a measure: hundreds of seeds, each awaiting the WAL between events, on a busy machine. */
const SEEDS_TIMEOUT_MS = 900_000;
const REPO_ROOT = path.resolve(__dirname, "../../..");

async function firstViolation(
  faults: TestOnlyFaults,
  seedsMax: number,
  steps = STEPS,
  driverFaults?: RaftDriverTestOnlyFaults,
  fileFaults?: RaftScenarioOptions["fileFaults"],
): Promise<RaftScenarioResult | undefined> {
  for (let seed = 1; seed <= seedsMax; seed++) {
    const result = await runRaftScenario({
      seed,
      steps,
      nodes: 3,
      faults,
      ...(driverFaults === undefined ? {} : { driverFaults }),
      ...(fileFaults === undefined ? {} : { fileFaults }),
    });
    if (!result.ok) return result;
  }
  return undefined;
}

describe("the checkers catch a broken core", () => {
  test("skipLogMatchingCheck is caught as a log-matching violation within 100 seeds", async () => {
    const violation = await firstViolation({ skipLogMatchingCheck: true }, 100);
    expect(violation?.violation).toMatch(/log matching|state-machine safety|leader completeness|durability|exception/);
    expect(violation?.replayCommand).toMatch(
      /^node packages\/sim\/dist\/run-raft\.js --seed \d+ --steps 3000 --nodes 3 --fault skip-log-matching-check$/,
    );
    expect(violation?.traceTail.length).toBeGreaterThan(10);
  });

  // Figure 8 needs a chain of short reigns: unsafe commits happen in most runs, but one
  // turns into an overwrite of a committed entry only in about 1 run in 150-600. With
  // this scenario (the LogStore's RaftDriver over the real WAL and hard-state writer, term and
  // vote fsynced after a simulated delay that a crash can cut short) the first seed that
  // exposes it at 6000 steps is 289 (then 353, 449, 665: 10 in the first 1500). If a change to
  // the core or the scenario moves it past the bound, re-measure with
  //   node packages/sim/dist/run-raft.js --seeds 2000 --steps 6000 --fault unsafe-commit-previous-term
  // and move the bound, rather than dropping the test.
  test(
    "unsafeCommitPreviousTermEntries (Figure 8) is caught within 300 seeds",
    async () => {
      const violation = await firstViolation({ unsafeCommitPreviousTermEntries: true }, 300, 6_000);
      expect(violation?.violation).toMatch(/leader completeness|state-machine safety|durability/);
      expect(violation?.replayCommand).toContain("--fault unsafe-commit-previous-term");
    },
    SEEDS_TIMEOUT_MS,
  );
});

describe("the checkers catch a broken driver", () => {
  // The LogStore's RaftDriver (the one that ships) sending a Ready's messages before its term and
  // vote are durable: a vote is granted, the voter crashes before the fsync, forgets it and votes
  // again in the same term (the scenario's voter churn makes that crash common). First seed that
  // exposes it: 18 (6 in the first 200).
  test(
    "sendBeforePersist is caught as an election-safety violation within 100 seeds",
    async () => {
      const violation = await firstViolation({}, 100, STEPS, { sendBeforePersist: true });
      expect(violation?.violation).toMatch(/election safety|log matching|leader completeness|state-machine safety|durability/);
      expect(violation?.replayCommand).toContain("--fault send-before-persist");
    },
    SEEDS_TIMEOUT_MS,
  );
});

describe("the checkers catch a broken WAL path", () => {
  // The real Wal over files whose writes report success before the device made them durable (as if
  // the WAL acknowledged a group commit before its writev returned): a crash loses entries the
  // WAL reported durable. Caught at seed 1, as the WAL recovering less than it reported durable.
  test("ackBeforeDurable is caught as lost durability within 20 seeds", async () => {
    const violation = await firstViolation({}, 20, STEPS, undefined, { ackBeforeDurable: true });
    expect(violation?.violation).toMatch(/durability|exception: WalCorruptionError/);
    expect(violation?.replayCommand).toContain("--fault ack-before-durable");
  });
});

describe("run-raft CLI", () => {
  const cli = path.join(REPO_ROOT, "packages/sim/dist/run-raft.js");
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { cwd: REPO_ROOT, encoding: "utf8", timeout: 60_000 });

  test("a passing seed exits 0 with its stats", () => {
    const result = run("--seed", "3", "--steps", "500");
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^seed 3: ok, \d+ steps/m);
    expect(result.status).toBe(0);
  });

  test("a violation exits 1 and prints the command that replays it", () => {
    const result = run("--seeds", "100", "--fault", "skip-log-matching-check");
    expect(result.status).toBe(1);
    const replay = /^replay: (node packages\/sim\/dist\/run-raft\.js .*)$/m.exec(result.stdout)?.[1];
    expect(replay).toBeDefined();
    // The printed command reproduces the same violation.
    const again = run(...(replay ?? "").split(" ").slice(2));
    expect(again.status).toBe(1);
    expect(again.stdout.split("\n")[0]).toBe(result.stdout.split("\n")[0]);
  });

  test("bad flags fail with one clear line", () => {
    const result = run("--nodes", "0");
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--nodes/);
  });
});

describe("the checkers catch a replica that votes after losing its disk", () => {
  // Issue #12's scenario 1 under the simulator: with disk wipes, a wiped node that restarts as a blank voter
  // (the LogStore before the fix) lets a stale candidate win and overwrite committed entries; first exposed at
  // seed 1. With the LogStore's rule (ask the peers, rejoin without a vote until caught up) the same seeds pass.
  test(
    "a blank voter after a wipe is caught within 20 seeds; the rejoin rule passes them",
    async () => {
      let caught: RaftScenarioResult | undefined;
      for (let seed = 1; seed <= 20 && caught === undefined; seed++) {
        const result = await runRaftScenario({ seed, steps: STEPS, nodes: 3, diskWipes: true, blankVoterAfterWipe: true });
        if (!result.ok) caught = result;
      }
      expect(caught?.violation).toMatch(/election safety|log matching|leader completeness|state-machine safety|durability/);
      expect(caught?.replayCommand).toContain("--fault blank-voter-after-wipe");
      let wipes = 0;
      for (let seed = 1; seed <= 20; seed++) {
        const result = await runRaftScenario({ seed, steps: STEPS, nodes: 3, diskWipes: true });
        expect([seed, result.violation]).toEqual([seed, undefined]);
        wipes += result.stats.diskWipes;
      }
      expect(wipes).toBeGreaterThan(0);
    },
    SEEDS_TIMEOUT_MS,
  );
});
