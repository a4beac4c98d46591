import { type Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_HTTP2_WINDOW_BYTES, HTTP2_WINDOW_BYTES_MAX, HTTP2_WINDOW_BYTES_MIN } from "./http2-window";

/** A commander option that also reads an environment variable (shown in --help). */
export function envOption(flags: string, description: string, env: string, defaultValue?: string): Option {
  const option = new Option(flags, description).env(env);
  return defaultValue === undefined ? option : option.default(defaultValue);
}

export function parseIntegerInRange(name: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const parsed = Number(value);
    if (!Number.isInteger(parsed) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got "${value}"`);
    }
    return parsed;
  };
}

export function parseLsn(value: string): bigint {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a non-negative integer LSN, got "${value}"`);
  return BigInt(value);
}

/** "host:port" with a numeric port. */
export function parseAddress(value: string): string {
  const match = /^(.+):(\d{1,5})$/.exec(value);
  if (!match || Number(match[2]) > 65535) throw new InvalidArgumentError(`expected host:port, got "${value}"`);
  return value;
}

export function parseAddressList(value: string): string[] {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (list.length === 0) throw new InvalidArgumentError("expected a comma-separated list of host:port");
  return list.map(parseAddress);
}

/**
 * Parses process.argv for a command that takes flags only. A stray argument
 * is an error, and a "--" right after the script is dropped: `pnpm bench --
 * --rate 5000` hands the "--" to the script, and commander would then read
 * every flag after it as an ignored argument and run with the defaults.
 */
export function parseFlags(command: Command, argv: readonly string[]): Command {
  return command.allowExcessArguments(false).parse(flagsOnlyArgv(argv));
}

/** `argv` without a "--" right after the script (see parseFlags). */
export function flagsOnlyArgv(argv: readonly string[]): string[] {
  const [node, script, ...rest] = argv;
  if (node === undefined || script === undefined || rest[0] !== "--") return [...argv];
  return [node, script, ...rest.slice(1)];
}

/** Runs `main`, printing a clear one-line error and exiting 1 when it throws. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${service}: ${message}\n`);
    process.exit(1);
  });
}

/** The services' --http2-window-bytes flag (see installHttp2Window). */
export function http2WindowOption(): Option {
  return envOption(
    "--http2-window-bytes <n>",
    "HTTP/2 flow-control window (per stream and per connection) advertised by this process's gRPC servers and clients",
    "LP_HTTP2_WINDOW_BYTES",
  )
    .argParser(parseIntegerInRange("--http2-window-bytes", HTTP2_WINDOW_BYTES_MIN, HTTP2_WINDOW_BYTES_MAX))
    .default(DEFAULT_HTTP2_WINDOW_BYTES);
}
