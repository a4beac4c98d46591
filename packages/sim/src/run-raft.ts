#!/usr/bin/env node
import { Command } from "commander";
import { envOption, parseIntegerInRange, runMain } from "@logplayer/common";
import type { TestOnlyFaults } from "@logplayer/raft";
import { runRaftScenario } from "./raft-cluster";
import type { RaftScenarioResult } from "./raft-cluster";
import { formatViolation } from "./violation-report";

/**
 * Runs the Raft scenario for one seed (--seed) or many (--seeds N, from
 * --first-seed). Exit 0 when every run passed, 1 on the first violation,
 * after printing the command that replays it.
 */

const FAULTS: Record<string, TestOnlyFaults> = {
  "unsafe-commit-previous-term": { unsafeCommitPreviousTermEntries: true },
  "skip-log-matching-check": { skipLogMatchingCheck: true },
};

function printFailure(result: RaftScenarioResult): void {
  process.stdout.write(formatViolation(result));
}

function describe(result: RaftScenarioResult): string {
  const { stats } = result;
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.simulatedMs} ms simulated, ${stats.crashes} crashes, ` +
    `term ${stats.termMax}, committed ${stats.committed}, proposed ${stats.proposed}, acked ${stats.acked}`
  );
}

interface RunRaftOptions {
  seed?: number;
  seeds: number;
  firstSeed: number;
  steps: number;
  nodes: number;
  fault?: string;
  verbose?: boolean;
}

function parseOptions(argv: readonly string[]): RunRaftOptions {
  const seedParser = parseIntegerInRange("--seed", 0, 2 ** 31 - 1);
  return new Command()
    .name("run-raft")
    .description("Deterministic simulation of the Raft core under crashes, partitions and a lossy network")
    .addOption(envOption("--seed <n>", "run this one seed", "LP_SIM_SEED").argParser(seedParser))
    .addOption(envOption("--seeds <n>", "run this many seeds", "LP_SIM_SEEDS", "100").argParser(parseIntegerInRange("--seeds", 1, 10_000_000)))
    .addOption(envOption("--first-seed <n>", "first seed of --seeds", "LP_SIM_FIRST_SEED", "1").argParser(seedParser))
    .addOption(envOption("--steps <n>", "events per run with faults on", "LP_SIM_STEPS", "3000").argParser(parseIntegerInRange("--steps", 1, 100_000_000)))
    .addOption(envOption("--nodes <n>", "Raft nodes", "LP_SIM_NODES", "3").argParser(parseIntegerInRange("--nodes", 1, 9)))
    .addOption(envOption("--fault <name>", `test-only core fault: ${Object.keys(FAULTS).join(", ")}`, "LP_SIM_FAULT"))
    .addOption(envOption("--verbose", "print one line per passing seed", "LP_SIM_VERBOSE"))
    .parse(argv)
    .opts<RunRaftOptions>();
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  // Defaults arrive as strings when the parser is not run on them.
  const steps = Number(options.steps);
  const nodes = Number(options.nodes);
  const faults = options.fault === undefined ? undefined : FAULTS[options.fault];
  if (options.fault !== undefined && faults === undefined) throw new Error(`--fault: unknown fault "${options.fault}"`);
  const first = options.seed ?? Number(options.firstSeed);
  const count = options.seed === undefined ? Number(options.seeds) : 1;
  for (let seed = first; seed < first + count; seed++) {
    const result = runRaftScenario({ seed, steps, nodes, ...(faults === undefined ? {} : { faults }) });
    if (!result.ok) {
      printFailure(result);
      process.exitCode = 1;
      return;
    }
    if (count === 1 || options.verbose === true) process.stdout.write(`${describe(result)}\n`);
  }
  process.stdout.write(`all ${count} seed(s) from ${first} passed (${steps} steps, ${nodes} nodes)\n`);
}

runMain("run-raft", () => main(process.argv));
