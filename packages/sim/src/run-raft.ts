#!/usr/bin/env node
import { Command } from "commander";
import { envOption, parseIntegerInRange, runMain, parseFlags } from "@logplayer/common";
import { runRaftScenario } from "./raft-cluster";
import type { RaftScenarioOptions, RaftScenarioResult } from "./raft-cluster";
import { addSeedOptions, runSeeds, type SeedOptions } from "./seed-cli";

/**
 * Runs the Raft scenario for one seed (--seed) or many (--seeds N, from
 * --first-seed). Exit 0 when every run passed, 1 on the first violation,
 * after printing the command that replays it.
 */

/**
 * Test-only faults of the core (`faults`), of the LogStore's Raft driver (`driverFaults`), under its WAL
 * (`fileFaults`), and of its start on an empty data directory (`blankVoterAfterWipe`, with disk wipes).
 */
const FAULTS: Record<string, Pick<RaftScenarioOptions, "faults" | "driverFaults" | "fileFaults" | "blankVoterAfterWipe" | "diskWipes">> = {
  "unsafe-commit-previous-term": { faults: { unsafeCommitPreviousTermEntries: true } },
  "skip-log-matching-check": { faults: { skipLogMatchingCheck: true } },
  "send-before-persist": { driverFaults: { sendBeforePersist: true } },
  "ack-before-durable": { fileFaults: { ackBeforeDurable: true } },
  "blank-voter-after-wipe": { blankVoterAfterWipe: true, diskWipes: true },
};

function describe(result: RaftScenarioResult): string {
  const { stats } = result;
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.simulatedMs} ms simulated, ${stats.crashes} crashes, ` +
    `term ${stats.termMax}, committed ${stats.committed}, proposed ${stats.proposed}, acked ${stats.acked}, ` +
    `WAL: ${stats.truncations} truncations, ${stats.tornWrites} torn writes, ${stats.tornTailsCut} torn tails cut` +
    (stats.diskWipes > 0 ? `, ${stats.diskWipes} disk wipes` : "")
  );
}

interface RunRaftOptions extends SeedOptions {
  nodes: number;
  fault?: string;
  diskWipes?: boolean;
}

function parseOptions(argv: readonly string[]): RunRaftOptions {
  const command = new Command()
    .name("run-raft")
    .description("Deterministic simulation of the Raft core under crashes, partitions and a lossy network");
  const configured = addSeedOptions(command, 3000)
    .addOption(envOption("--nodes <n>", "Raft nodes", "LP_SIM_NODES", "3").argParser(parseIntegerInRange("--nodes", 1, 9)))
    .addOption(envOption("--fault <name>", `test-only fault (core, driver, WAL files): ${Object.keys(FAULTS).join(", ")}`, "LP_SIM_FAULT"))
    .addOption(
      envOption(
        "--disk-wipes",
        "some crashes also wipe the node's disk (it restarts with no WAL and no hard state, and rejoins as the LogStore does)",
        "LP_SIM_DISK_WIPES",
      ),
    );
  return parseFlags(configured, argv).opts<RunRaftOptions>();
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  // Defaults arrive as strings when the parser is not run on them.
  const steps = Number(options.steps);
  const nodes = Number(options.nodes);
  const faults = options.fault === undefined ? undefined : FAULTS[options.fault];
  if (options.fault !== undefined && faults === undefined) throw new Error(`--fault: unknown fault "${options.fault}"`);
  const diskWipes = options.diskWipes === true ? { diskWipes: true } : {};
  const run = await runSeeds(options, (seed) => runRaftScenario({ seed, steps, nodes, ...faults, ...diskWipes }), describe);
  if (run.failed) return;
  process.stdout.write(`all ${run.passed} seed(s) from ${run.first} passed (${steps} steps, ${nodes} nodes)\n`);
}

runMain("run-raft", () => main(process.argv));
