#!/usr/bin/env node
import { runLpctl } from "./lpctl-run";

// grpc-js gives the dialled IP (127.0.0.1) as the TLS server name, which Node flags as DEP0123 on every run;
// the server's certificate is still checked against that IP. Only that warning is dropped, and only in this CLI.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  if (rest.includes("DEP0123")) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

// Ctrl-C ends `tail` and `watch` cleanly (exit 0); any other command is stopped at once, as before.
const interrupt = new AbortController();
let stoppable = false;
process.once("SIGINT", () => {
  if (!stoppable) process.exit(130);
  interrupt.abort(new Error("interrupted"));
});

// Thin entry point: all the logic is in runLpctl so tests can drive it in-process.
runLpctl(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signal: interrupt.signal,
  onStoppable: () => {
    stoppable = true;
  },
}).then(
  (code) => {
    process.exitCode = code;
    process.removeAllListeners("SIGINT");
  },
  (err: unknown) => {
    process.stderr.write(`lpctl: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
