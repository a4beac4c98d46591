import type { Command } from "commander";
import { envOption, parseIntegerInRange } from "@logplayer/common";

/** The flags every scenario CLI shares: which seeds, how many steps, verbosity. */
export interface SeedOptions {
  seed?: number;
  seeds: number;
  firstSeed: number;
  steps: number;
  verbose?: boolean;
}

export function addSeedOptions(command: Command, defaultSteps: number): Command {
  const seedParser = parseIntegerInRange("--seed", 0, 2 ** 31 - 1);
  return command
    .addOption(envOption("--seed <n>", "run this one seed", "LP_SIM_SEED").argParser(seedParser))
    .addOption(
      envOption("--seeds <n>", "run this many seeds", "LP_SIM_SEEDS", "100").argParser(parseIntegerInRange("--seeds", 1, 10_000_000)),
    )
    .addOption(envOption("--first-seed <n>", "first seed of --seeds", "LP_SIM_FIRST_SEED", "1").argParser(seedParser))
    .addOption(
      envOption("--steps <n>", "events per run with faults on", "LP_SIM_STEPS", String(defaultSteps)).argParser(
        parseIntegerInRange("--steps", 1, 100_000_000),
      ),
    )
    .addOption(envOption("--verbose", "print one line per passing seed", "LP_SIM_VERBOSE"));
}

/** What a failed scenario run reports, whatever the scenario. */
export interface ViolationReport {
  readonly seed: number;
  readonly violation: string | undefined;
  readonly replayCommand: string;
  readonly traceTail: readonly string[];
}

/** The lines a CLI prints for a failed run: the violation, the one command that replays it, the trace tail. */
export function formatViolation(result: ViolationReport): string {
  return [
    `VIOLATION seed ${result.seed}: ${result.violation ?? ""}`,
    `replay: ${result.replayCommand}`,
    "trace tail:",
    ...result.traceTail.map((line) => `  ${line}`),
    "",
  ].join("\n");
}

/**
 * Runs the seeds the options name, one after another (a scenario may be
 * async: the Raft one awaits the WAL's promises between events); stops at the
 * first failure, prints it (after `explain`, e.g. a shrink) and sets exit
 * code 1. Returns the number of seeds that passed.
 */
export async function runSeeds<R extends ViolationReport & { ok: boolean }>(
  options: SeedOptions,
  run: (seed: number) => R | Promise<R>,
  describe: (result: R) => string,
  explain: (failed: R) => R = (failed) => failed,
): Promise<{ first: number; passed: number; failed: boolean }> {
  // Defaults arrive as strings when the parser is not run on them.
  const first = options.seed ?? Number(options.firstSeed);
  const count = options.seed === undefined ? Number(options.seeds) : 1;
  for (let seed = first; seed < first + count; seed++) {
    const result = await run(seed);
    if (!result.ok) {
      process.stdout.write(formatViolation(explain(result)));
      process.exitCode = 1;
      return { first, passed: seed - first, failed: true };
    }
    if (count === 1 || options.verbose === true) process.stdout.write(`${describe(result)}\n`);
  }
  return { first, passed: count, failed: false };
}
