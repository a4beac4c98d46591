#!/usr/bin/env node
import { runLpctl } from "./lpctl-run";

// Thin entry point: all the logic is in runLpctl so tests can drive it in-process.
runLpctl(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`lpctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
