#!/usr/bin/env node
import { Command, Option } from "commander";
import { envOption, parseIntegerInRange, runMain, parseFlags } from "@logplayer/common";
import { runDeliveryScenario, shrinkDeliveryFailure } from "./delivery-cluster";
import type { DeliveryScenarioOptions, DeliveryScenarioResult } from "./delivery-cluster";
import type { BrokenDecision } from "./delivery-shard";
import type { BrokenPlayer } from "./delivery-player";
import type { LifecycleFault } from "./delivery-lifecycle";
import { addSeedOptions, runSeeds, type SeedOptions } from "./seed-cli";

/**
 * Runs the delivery scenario for one seed (--seed) or many (--seeds N, from
 * --first-seed). Exit 0 when every run passed, 1 on the first violation,
 * after printing the (shrunk) command that replays it and its trace tail.
 */

const BROKEN_DECISIONS: readonly BrokenDecision[] = ["apply-any-newer", "non-atomic-applied-lsn"];
const BROKEN_PLAYERS: readonly BrokenPlayer[] = ["ignore-recovery-term"];
const LIFECYCLE_FAULTS: readonly LifecycleFault[] = ["trim-one-past"];

function describe(result: DeliveryScenarioResult): string {
  const { stats } = result;
  const faults = Object.entries(stats.faults)
    .map(([name, count]) => `${name} ${count}`)
    .join(", ");
  const core = [
    "rewinds",
    "overflows",
    "recoveryReads",
    "dummiesQueued",
    "staleEventsDropped",
    "suspends",
    "aheadHolds",
    "commitChecks",
    "mainStreamMoves",
    "mainMessagesFromLeader",
    "mainMessagesFromFollowers",
  ]
    .map((name) => `${name} ${stats.core[name] ?? 0}`)
    .join(", ");
  const decisions = stats.shardDecisions;
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.simulatedMs} ms simulated, log ${stats.committed} entries, ` +
    `${stats.appendsAcked} appends acked, ${stats.readsChecked} reads checked; faults: ${faults}; core: ${core}; ` +
    `shards applied ${decisions.applied}, duplicates ${decisions.duplicates}, gaps ${decisions.gaps}`
  );
}

interface RunDeliveryOptions extends SeedOptions {
  shards: number;
  players: number;
  logstoreReplicas: number;
  brokenDecision?: BrokenDecision;
  brokenPlayer?: BrokenPlayer;
  lifecycle: boolean;
  fault?: LifecycleFault;
  shrink: boolean;
}

function parseOptions(argv: readonly string[]): RunDeliveryOptions {
  const command = new Command()
    .name("run-delivery")
    .description(
      "Deterministic simulation of the production LogPlayer (core and adapters) and the real shard decision and WAL cores " +
        "under crashes, zombies, partitions and a lossy network",
    );
  const configured = addSeedOptions(command, 4000)
    .addOption(envOption("--shards <n>", "shards", "LP_SIM_SHARDS", "3").argParser(parseIntegerInRange("--shards", 1, 16)))
    .addOption(
      envOption("--players <n>", "LogPlayers running at once (1 or 2)", "LP_SIM_PLAYERS", "1").argParser(
        parseIntegerInRange("--players", 1, 2),
      ),
    )
    .addOption(
      envOption(
        "--logstore-replicas <n>",
        "LogStore replicas serving reads (1, or 3: followers learn commits late, the leader changes)",
        "LP_SIM_LOGSTORE_REPLICAS",
        "3",
      ).choices(["1", "3"]),
    )
    .addOption(
      new Option("--broken-decision <name>", "TEST-ONLY broken shard decision").choices(BROKEN_DECISIONS).env("LP_SIM_BROKEN_DECISION"),
    )
    .addOption(
      new Option("--broken-player <name>", "TEST-ONLY broken LogPlayer transport").choices(BROKEN_PLAYERS).env("LP_SIM_BROKEN_PLAYER"),
    )
    .addOption(
      envOption(
        "--no-lifecycle",
        "no storage lifecycle (by default the LogStore trims by the production rule, shards take backups and lose their database)",
        "LP_SIM_NO_LIFECYCLE",
      ),
    )
    .addOption(new Option("--fault <name>", "TEST-ONLY broken trimming").choices(LIFECYCLE_FAULTS).env("LP_SIM_FAULT"))
    .addOption(envOption("--no-shrink", "print the failing run as found, without shrinking its steps", "LP_SIM_NO_SHRINK"));
  return parseFlags(configured, argv).opts<RunDeliveryOptions>();
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  // Defaults arrive as strings when the parser is not run on them.
  const base: Omit<DeliveryScenarioOptions, "seed"> = {
    steps: Number(options.steps),
    shards: Number(options.shards),
    players: Number(options.players) === 2 ? 2 : 1,
    logstoreReplicas: Number(options.logstoreReplicas) === 1 ? 1 : 3,
    ...(options.brokenDecision === undefined ? {} : { brokenDecision: options.brokenDecision }),
    ...(options.brokenPlayer === undefined ? {} : { brokenPlayer: options.brokenPlayer }),
    ...(options.lifecycle === false ? { lifecycle: false } : {}),
    ...(options.fault === undefined ? {} : { lifecycleFault: options.fault }),
  };
  const run = await runSeeds(
    options,
    (seed) => runDeliveryScenario({ ...base, seed }),
    describe,
    (failed) => (options.shrink === false ? failed : shrinkDeliveryFailure(failed)),
  );
  if (run.failed) return;
  process.stdout.write(
    `all ${run.passed} seed(s) from ${run.first} passed (${base.steps} steps, ${base.shards} shards, ${base.players} LogPlayer(s), ` +
      `${base.logstoreReplicas} LogStore replica(s))\n`,
  );
}

runMain("run-delivery", () => main(process.argv));
