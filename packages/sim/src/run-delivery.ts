#!/usr/bin/env node
import { Command, Option } from "commander";
import { envOption, parseIntegerInRange, runMain } from "@logplayer/common";
import { runDeliveryScenario, shrinkDeliveryFailure } from "./delivery-cluster";
import type { DeliveryScenarioOptions, DeliveryScenarioResult } from "./delivery-cluster";
import type { BrokenDecision } from "./delivery-shard";
import type { BrokenPlayer } from "./delivery-player";
import { formatViolation } from "./violation-report";

/**
 * Runs the delivery scenario for one seed (--seed) or many (--seeds N, from
 * --first-seed). Exit 0 when every run passed, 1 on the first violation,
 * after printing the (shrunk) command that replays it and its trace tail.
 */

const BROKEN_DECISIONS: readonly BrokenDecision[] = ["apply-any-newer", "non-atomic-applied-lsn"];
const BROKEN_PLAYERS: readonly BrokenPlayer[] = ["ignore-recovery-term"];

function printFailure(result: DeliveryScenarioResult): void {
  process.stdout.write(formatViolation(result));
}

function describe(result: DeliveryScenarioResult): string {
  const { stats } = result;
  const faults = Object.entries(stats.faults).map(([name, count]) => `${name} ${count}`).join(", ");
  const core = ["rewinds", "overflows", "recoveryReads", "dummiesQueued", "staleEventsDropped", "suspends"]
    .map((name) => `${name} ${stats.core[name] ?? 0}`)
    .join(", ");
  const decisions = stats.shardDecisions;
  return (
    `seed ${result.seed}: ok, ${stats.steps} steps, ${stats.simulatedMs} ms simulated, log ${stats.committed} entries, ` +
    `${stats.appendsAcked} appends acked, ${stats.readsChecked} reads checked; faults: ${faults}; core: ${core}; ` +
    `shards applied ${decisions.applied}, duplicates ${decisions.duplicates}, gaps ${decisions.gaps}`
  );
}

interface RunDeliveryOptions {
  seed?: number;
  seeds: number;
  firstSeed: number;
  steps: number;
  shards: number;
  players: number;
  brokenDecision?: BrokenDecision;
  brokenPlayer?: BrokenPlayer;
  shrink: boolean;
  verbose?: boolean;
}

function parseOptions(argv: readonly string[]): RunDeliveryOptions {
  const seedParser = parseIntegerInRange("--seed", 0, 2 ** 31 - 1);
  return new Command()
    .name("run-delivery")
    .description("Deterministic simulation of the real delivery cores (Dispatcher, shard decision, WAL) under crashes, zombies, partitions and a lossy network")
    .addOption(envOption("--seed <n>", "run this one seed", "LP_SIM_SEED").argParser(seedParser))
    .addOption(envOption("--seeds <n>", "run this many seeds", "LP_SIM_SEEDS", "100").argParser(parseIntegerInRange("--seeds", 1, 10_000_000)))
    .addOption(envOption("--first-seed <n>", "first seed of --seeds", "LP_SIM_FIRST_SEED", "1").argParser(seedParser))
    .addOption(envOption("--steps <n>", "events per run with faults on", "LP_SIM_STEPS", "4000").argParser(parseIntegerInRange("--steps", 1, 100_000_000)))
    .addOption(envOption("--shards <n>", "shards", "LP_SIM_SHARDS", "3").argParser(parseIntegerInRange("--shards", 1, 16)))
    .addOption(envOption("--players <n>", "LogPlayers running at once (1 or 2)", "LP_SIM_PLAYERS", "1").argParser(parseIntegerInRange("--players", 1, 2)))
    .addOption(
      new Option("--broken-decision <name>", "TEST-ONLY broken shard decision").choices(BROKEN_DECISIONS).env("LP_SIM_BROKEN_DECISION"),
    )
    .addOption(new Option("--broken-player <name>", "TEST-ONLY broken LogPlayer adapter").choices(BROKEN_PLAYERS).env("LP_SIM_BROKEN_PLAYER"))
    .addOption(envOption("--no-shrink", "print the failing run as found, without shrinking its steps", "LP_SIM_NO_SHRINK"))
    .addOption(envOption("--verbose", "print one line per passing seed", "LP_SIM_VERBOSE"))
    .parse(argv)
    .opts<RunDeliveryOptions>();
}

async function main(argv: readonly string[]): Promise<void> {
  const options = parseOptions(argv);
  // Defaults arrive as strings when the parser is not run on them.
  const base: Omit<DeliveryScenarioOptions, "seed"> = {
    steps: Number(options.steps),
    shards: Number(options.shards),
    players: Number(options.players) === 2 ? 2 : 1,
    ...(options.brokenDecision === undefined ? {} : { brokenDecision: options.brokenDecision }),
    ...(options.brokenPlayer === undefined ? {} : { brokenPlayer: options.brokenPlayer }),
  };
  const first = options.seed ?? Number(options.firstSeed);
  const count = options.seed === undefined ? Number(options.seeds) : 1;
  for (let seed = first; seed < first + count; seed++) {
    const result = runDeliveryScenario({ ...base, seed });
    if (!result.ok) {
      printFailure(options.shrink === false ? result : shrinkDeliveryFailure(result));
      process.exitCode = 1;
      return;
    }
    if (count === 1 || options.verbose === true) process.stdout.write(`${describe(result)}\n`);
  }
  process.stdout.write(`all ${count} seed(s) from ${first} passed (${base.steps} steps, ${base.shards} shards, ${base.players} LogPlayer(s))\n`);
}

runMain("run-delivery", () => main(process.argv));
