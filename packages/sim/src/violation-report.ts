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
