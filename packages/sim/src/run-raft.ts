#!/usr/bin/env node
import { Command } from "commander";
import { envOption, parseIntegerInRange, runMain, parseFlags } from "@logplayer/common";
import { runRaftScenario } from "./raft-cluster";
import { runMembershipScenario } from "./raft-membership";
import type { MembershipScenarioResult } from "./raft-membership";
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
const FAULTS: Record<
  string,
  Pick<RaftScenarioOptions, "faults" | "driverFaults" | "fileFaults" | "blankVoterAfterWipe" | "diskWipes" | "snapshots" | "snapshotFault">
> = {
  "unsafe-commit-previous-term": { faults: { unsafeCommitPreviousTermEntries: true } },
  "skip-log-matching-check": { faults: { skipLogMatchingCheck: true } },
  "send-before-persist": { driverFaults: { sendBeforePersist: true } },
  "ack-before-durable": { fileFaults: { ackBeforeDurable: true } },
  "blank-voter-after-wipe": { blankVoterAfterWipe: true, diskWipes: true },
  "install-without-persist": { snapshots: true, snapshotFault: "install-without-persist" },
  "compact-above-applied": { snapshots: true, snapshotFault: "compact-above-applied" },
  "install-during-compaction": { snapshots: true, snapshotFault: "install-during-compaction" },
};

function describe(result: RaftScenarioResult): string {
  const { stats } = result;
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.simulatedMs} ms simulated, ${stats.crashes} crashes, ` +
    `term ${stats.termMax}, committed ${stats.committed}, proposed ${stats.proposed}, acked ${stats.acked}, ` +
    `WAL: ${stats.truncations} truncations, ${stats.tornWrites} torn writes, ${stats.tornTailsCut} torn tails cut` +
    (stats.diskWipes > 0 ? `, ${stats.diskWipes} disk wipes` : "") +
    (stats.adversary.injected > 0
      ? `, adversary: ${stats.adversary.injected} forged, ${stats.adversary.refused} refused, ${stats.adversary.lostInCrash} lost in a crash`
      : "") +
    (stats.diskFull.fills > 0
      ? `, disk full: ${stats.diskFull.fills} fills, ${stats.diskFull.noSpaceErrors} ENOSPC, ${stats.diskFull.walReports} WAL reports, ` +
        `${stats.diskFull.refusals} appends refused`
      : "") +
    (stats.snapshots === undefined
      ? ""
      : `, snapshots: ${Object.entries(stats.snapshots)
          .map(([name, count]) => `${name} ${count}`)
          .join(", ")}`)
  );
}

function describeMembershipRun(result: MembershipScenarioResult): string {
  const { stats } = result;
  const changes = Object.entries(stats.changes)
    .map(([type, count]) => `${count} ${type}`)
    .join(", ");
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.crashes} crashes, term ${stats.termMax}, committed ${stats.committed}, ` +
    `changes: ${changes} (${stats.refusedChanges} refused), ${stats.refusedMessages} messages refused, ` +
    `final voters [${stats.votersFinal.join(",")}] learners [${stats.learnersFinal.join(",")}]`
  );
}

interface RunRaftOptions extends SeedOptions {
  nodes: number;
  fault?: string;
  diskWipes?: boolean;
  adversary?: boolean;
  diskFull?: boolean;
  membership?: boolean;
  snapshots?: boolean;
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
    )
    .addOption(
      envOption(
        "--adversary",
        "an authenticated replica gone wrong sends impossible Step messages: each must be refused and counted",
        "LP_SIM_ADVERSARY",
      ),
    )
    .addOption(
      envOption(
        "--disk-full",
        "some replicas' disks fill up for a while (the WAL meets ENOSPC, appends are refused with RESOURCE_EXHAUSTED), then space returns",
        "LP_SIM_DISK_FULL",
      ),
    )
    .addOption(
      envOption(
        "--membership",
        "membership changes under crashes and partitions: learners added, caught up and promoted, voters (the leader too) removed",
        "LP_SIM_MEMBERSHIP",
      ),
    )
    .addOption(
      envOption(
        "--snapshots",
        "nodes compact their logs (snapshot at the applied index, WAL segments deleted) and leaders send InstallSnapshot",
        "LP_SIM_SNAPSHOTS",
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
  if (options.membership === true) {
    if (options.fault !== undefined || options.diskWipes === true || options.adversary === true || options.diskFull === true) {
      throw new Error("--membership runs its own scenario: it takes no --fault, --disk-wipes, --adversary or --disk-full");
    }
    const run = await runSeeds(options, (seed) => runMembershipScenario({ seed, steps, nodes }), describeMembershipRun);
    if (run.failed) return;
    process.stdout.write(`all ${run.passed} membership seed(s) from ${run.first} passed (${steps} steps, ${nodes} initial voters)\n`);
    return;
  }
  const diskWipes = options.diskWipes === true ? { diskWipes: true } : {};
  const adversary = options.adversary === true ? { adversary: {} } : {};
  const diskFull = options.diskFull === true ? { diskFull: true } : {};
  const snapshots = options.snapshots === true ? { snapshots: true } : {};
  const run = await runSeeds(
    options,
    (seed) => runRaftScenario({ seed, steps, nodes, ...snapshots, ...faults, ...diskWipes, ...adversary, ...diskFull }),
    describe,
  );
  if (run.failed) return;
  process.stdout.write(`all ${run.passed} seed(s) from ${run.first} passed (${steps} steps, ${nodes} nodes)\n`);
}

runMain("run-raft", () => main(process.argv));
