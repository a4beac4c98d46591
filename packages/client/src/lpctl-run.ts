import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import {
  envOption,
  invalidArgument,
  listenHost,
  parseAddress,
  parseAddressList,
  parseIntegerInRange,
  parseLsn,
  portOf,
  unavailable,
} from "@logplayer/common";
import { PROTOCOL_VERSION, type Mutation } from "@logplayer/proto";
import { type TlsFlags, type TransportSecurity, tlsOptions, transportSecurityFromFlags } from "@logplayer/tls";
import { LogPlayerClient, SCAN_LIMIT_MAX, DEFAULT_SCAN_LIMIT, type AppendLookup } from "./client";
import { toClientError } from "./errors";
import { checkHealth, HealthServingStatus } from "./health-check";
import { addBackupCommands } from "./lpctl-backup";
import {
  clusterProblems,
  clusterStatusJson,
  formatClusterStatus,
  formatLogRecord,
  formatMembers,
  formatScanLines,
  formatValue,
  formatWatchLines,
  membersAnswerJson,
  membersJson,
  formatMembersAnswer,
  toJson,
} from "./lpctl-format";
import { CancelledError } from "./errors";
import { mutation } from "./mutations";
import { DEFAULT_TIMEOUT_MS, TIMEOUT_MS_MAX, type ClientOptions } from "./options";
import { parseDeltaArg, parseTxnOps, parseValueArg } from "./txn-args";

/** Where lpctl writes, and how it connects: injected so tests run it in-process. */
export interface LpctlIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Default: LogPlayerClient.connect. */
  connect?: (options: ClientOptions) => Promise<LogPlayerClient>;
  /** A value given as `-`. Default: all of process.stdin, up to VALUE_SOURCE_BYTES_MAX. */
  readStdin?: () => Promise<Buffer>;
  /** Ends the commands that run until stopped (tail, watch) cleanly, exit 0: lpctl's entry point fires it on Ctrl-C. */
  signal?: AbortSignal;
  /** Called when a command that `signal` stops starts: until then the entry point lets Ctrl-C kill lpctl. */
  onStoppable?: () => void;
}

/** The most a value read from a file or stdin may hold: the largest gRPC message a LogStore accepts. */
export const VALUE_SOURCE_BYTES_MAX = 64 * 1024 * 1024;
/** How long the "is anything listening?" probe waits for a TCP answer before leaving the verdict to the call itself. */
const LISTEN_PROBE_TIMEOUT_MS = 1_000;

/**
 * Exit codes: 0 success, 1 error (one line on stderr naming the gRPC code), 2 `get` found no such key or
 * `lookup` found the append was not made, 3 `lookup` cannot tell yet.
 */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_NOT_FOUND = 2;
export const EXIT_UNDECIDED = 3;

// Commander does not run defaults through argParser, so they are given parsed.
// The local cluster (`pnpm start`): three LogStore replicas; the client finds the leader among them.
const DEFAULT_LOGSTORE = "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102";
const DEFAULT_SHARDS = "127.0.0.1:7300,127.0.0.1:7301,127.0.0.1:7302";

/** lpctl's certificate in --tls-dir: admin-lpctl.crt/.key, made by `pnpm start`. */
export const LPCTL_CERTIFICATE_NAME = "lpctl";

interface GlobalOptions extends TlsFlags {
  seeds?: string[];
  logstore: string[];
  shards: string[];
  timeoutMs: number;
  json: boolean;
  hex: boolean;
}

/** State shared by the command actions of one run. */
interface Run {
  readonly io: LpctlIo;
  readonly program: Command;
  exitCode: number;
}

function globals(run: Run): GlobalOptions {
  return run.program.opts<GlobalOptions>();
}

async function withClient<T>(run: Run, body: (client: LogPlayerClient, g: GlobalOptions) => Promise<T>): Promise<T> {
  const g = globals(run);
  await failFastWhenNothingListens(g.seeds ?? g.logstore, Math.min(g.timeoutMs, LISTEN_PROBE_TIMEOUT_MS));
  const connect = run.io.connect ?? LogPlayerClient.connect;
  const common = { timeoutMs: g.timeoutMs, security: lpctlSecurity(g) };
  // With --seeds the shards come from the LogStore's Status, unless --shards (or LP_SHARDS) names them.
  const shardsGiven = run.program.getOptionValueSource("shards") !== "default";
  const client = await connect(
    g.seeds === undefined
      ? { logstore: g.logstore, shards: g.shards, ...common }
      : { seeds: g.seeds, ...(shardsGiven ? { shards: g.shards } : {}), ...common },
  );
  try {
    return await body(client, g);
  } finally {
    client.close();
  }
}

/** mTLS with lpctl's admin certificate (from --tls-dir, default ./data/tls), or --insecure. */
function lpctlSecurity(g: GlobalOptions): TransportSecurity {
  try {
    return transportSecurityFromFlags(g, { role: "admin", defaultFileName: LPCTL_CERTIFICATE_NAME, listenHosts: [] });
  } catch (err: unknown) {
    throw toClientError(invalidArgument(err instanceof Error ? err.message : String(err)));
  }
}

/**
 * A stopped cluster answers a TCP connect with a refusal at once; without
 * this probe the client would retry until its deadline and report that
 * instead. Only when EVERY LogStore address refuses: one refusing replica is
 * normal during a failover, and a timeout or a DNS error is left to the call.
 */
async function failFastWhenNothingListens(addresses: readonly string[], timeoutMs: number): Promise<void> {
  const refused = await Promise.all(addresses.map((address) => connectionRefused(address, timeoutMs)));
  if (refused.every(Boolean)) {
    throw toClientError(
      unavailable(`connection refused at ${addresses.join(", ")}: nothing listens there (is the cluster running? pnpm start)`),
    );
  }
}

function connectionRefused(address: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: listenHost(address), port: portOf(address) });
    const done = (refused: boolean): void => {
      socket.destroy();
      resolve(refused);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(false));
    socket.once("error", (err: NodeJS.ErrnoException) => done(err.code === "ECONNREFUSED"));
  });
}

/**
 * A value argument: `-` reads stdin, `@PATH` reads a file (raw bytes, even
 * with --hex), `@@TEXT` is the literal `@TEXT`; anything else is the value
 * itself (hex with --hex).
 */
async function resolveValueArg(run: Run, text: string): Promise<Buffer> {
  if (text === "-") return (run.io.readStdin ?? readAllStdin)();
  if (text.startsWith("@@")) return parseValueArg(text.slice(1), globals(run).hex);
  if (text.startsWith("@")) return readValueFile(text.slice(1));
  return parseValueArg(text, globals(run).hex);
}

function readValueFile(file: string): Buffer {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (err: unknown) {
    throw toClientError(invalidArgument(`cannot read value file ${file}: ${(err as Error).message}`));
  }
  if (size > VALUE_SOURCE_BYTES_MAX) {
    throw toClientError(invalidArgument(`value file ${file} holds ${size} bytes, more than ${VALUE_SOURCE_BYTES_MAX}`));
  }
  return fs.readFileSync(file);
}

async function readAllStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    bytes += buffer.length;
    if (bytes > VALUE_SOURCE_BYTES_MAX) throw toClientError(invalidArgument(`stdin holds more than ${VALUE_SOURCE_BYTES_MAX} bytes`));
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

async function commitAndReport(run: Run, mutations: () => Mutation[] | Promise<Mutation[]>): Promise<void> {
  const built = await mutations();
  await withClient(run, async (client, g) => {
    const { lsn } = await client.commit(built);
    run.io.stdout(g.json ? `${toJson({ lsn })}\n` : `committed lsn=${lsn}\n`);
  });
}

function addMutationCommands(run: Run): void {
  const hex = (): boolean => globals(run).hex;
  run.program
    .command("put")
    .description("set KEY to VALUE (one transaction); VALUE - reads stdin, @FILE reads a file, @@TEXT is the literal @TEXT")
    .argument("<key>")
    .argument("<value>")
    .action((key: string, value: string) => commitAndReport(run, async () => [mutation.put(key, await resolveValueArg(run, value))]));
  run.program
    .command("append")
    .description("append VALUE's bytes to KEY's value (VALUE as for put: -, @FILE, @@TEXT)")
    .argument("<key>")
    .argument("<value>")
    .action((key: string, value: string) => commitAndReport(run, async () => [mutation.append(key, await resolveValueArg(run, value))]));
  run.program
    .command("add")
    .description("add the signed 64-bit integer N to KEY's value")
    .argument("<key>")
    .argument("<n>")
    // So `add KEY -5` reads -5 as N, not as an unknown option.
    .allowUnknownOption(true)
    .action((key: string, n: string) => commitAndReport(run, () => [mutation.add(key, parseDeltaArg(n))]));
  run.program
    .command("delete")
    .description("remove KEY")
    .argument("<key>")
    .action((key: string) => commitAndReport(run, () => [mutation.delete(key)]));
  run.program
    .command("txn")
    .description("commit several mutations as ONE transaction: put:KEY=VALUE append:KEY=VALUE add:KEY=N delete:KEY")
    .argument("<op...>")
    .action((ops: string[]) => commitAndReport(run, () => parseTxnOps(ops, { hex: hex() })));
}

function addReadCommands(run: Run): void {
  run.program
    .command("get")
    .description("print KEY's value; prints (not found) and exits 2 when there is none")
    .argument("<key>")
    .option("--min-lsn <lsn>", "wait until the shard has applied this LSN (read-your-writes)", parseLsn)
    .action((key: string, opts: { minLsn?: bigint }) =>
      withClient(run, async (client, g) => {
        const result = await client.get(key, opts.minLsn === undefined ? {} : { minLsn: opts.minLsn });
        if (!result.found) run.exitCode = EXIT_NOT_FOUND;
        if (g.json) {
          const value = result.found ? formatValue(result.value, g.hex) : null;
          run.io.stdout(`${toJson({ found: result.found, value, appliedLsn: result.appliedLsn })}\n`);
        } else {
          run.io.stdout(result.found ? `${formatValue(result.value, g.hex)}\n` : "(not found)\n");
        }
      }),
    );
  run.program
    .command("scan")
    .description("print KEY<TAB>VALUE lines for keys starting with PREFIX, from every shard, in key order")
    .argument("<prefix>")
    .option("--min-lsn <lsn>", "wait until every shard has applied this LSN", parseLsn)
    .addOption(
      new Option("--limit <n>", "at most this many keys")
        .argParser(parseIntegerInRange("--limit", 1, SCAN_LIMIT_MAX))
        .default(DEFAULT_SCAN_LIMIT),
    )
    .action((prefix: string, opts: { minLsn?: bigint; limit: number }) =>
      withClient(run, async (client, g) => {
        const result = await client.scan(prefix, { limit: opts.limit, ...(opts.minLsn === undefined ? {} : { minLsn: opts.minLsn }) });
        if (g.json) {
          const items = result.items.map((item) => ({ key: item.key, value: formatValue(item.value, g.hex) }));
          run.io.stdout(`${toJson({ items, appliedLsn: result.appliedLsn })}\n`);
        } else {
          run.io.stdout(formatScanLines(result.items, g.hex));
        }
      }),
    );
}

function addOutcomeCommand(run: Run): void {
  run.program
    .command("outcome")
    .description(
      "what became of the transaction at LSN on the shards its KEYs route to: applied, or rejected at apply time " +
        "(a value grown past value_bytes_max) with the reason; exits 1 when any shard rejected it",
    )
    .argument("<lsn>", "the LSN the commit returned", parseLsn)
    .argument("<keys...>", "keys the transaction wrote (they pick the shards to ask)")
    .action((lsn: bigint, keys: string[]) =>
      withClient(run, async (client, g) => {
        const result = await client.outcome(lsn, keys);
        if (g.json) run.io.stdout(`${toJson(result)}\n`);
        else {
          const lines = result.shards.map((s) => `shard ${s.shardId}: ${s.outcome}${s.reason === "" ? "" : ` (${s.reason})`}\n`);
          run.io.stdout(lines.join(""));
        }
        if (result.rejected) run.exitCode = EXIT_ERROR;
      }),
    );
}

function addLookupCommand(run: Run): void {
  run.program
    .command("lookup")
    .description(
      "where an idempotent append stands, after a commit whose outcome is unknown: committed lsn=N (exit 0), " +
        "not appended (exit 2), or not known yet (in flight, its session still lives, or the LogStore cannot tell: exit 3)",
    )
    .argument("<client-id>")
    .argument("<client-seq>", "the commit's client_seq", parseLsn)
    .option("--session-lsn <lsn>", "the session the commit was sent in (the error message names it); 0 = none", parseLsn)
    .option("--from-lsn <lsn>", "where the search of the log starts once the session is gone (default: the session's LSN)", parseLsn)
    .action((clientId: string, clientSeq: bigint, opts: { sessionLsn?: bigint; fromLsn?: bigint }) =>
      withClient(run, async (client, g) => {
        const found = await client.lookupAppend(
          { clientId, clientSeq, sessionLsn: opts.sessionLsn ?? 0n },
          opts.fromLsn === undefined ? {} : { fromLsn: opts.fromLsn },
        );
        run.exitCode = found.state === "committed" ? EXIT_OK : found.state === "not-appended" ? EXIT_NOT_FOUND : EXIT_UNDECIDED;
        run.io.stdout(g.json ? `${toJson(found)}\n` : `${formatAppendLookup(found)}\n`);
      }),
    );
}

function formatAppendLookup(found: AppendLookup): string {
  switch (found.state) {
    case "committed":
      return `committed lsn=${found.lsn}`;
    case "in-flight":
      return `in flight lsn=${found.lsn} (not committed yet: ask again)`;
    case "not-appended":
      return `not appended (not in the log up to lsn ${found.scannedToLsn}, and its session is gone: no attempt can land any more)`;
    case "not-yet-appended":
      return (
        `not appended yet (not in the log up to lsn ${found.scannedToLsn}; its session lives, so an attempt still on its way ` +
        "could land: ask again after the commit's deadline)"
      );
    case "unknown":
      return `unknown: ${found.detail}`;
  }
}

function addStatusCommands(run: Run): void {
  run.program
    .command("status")
    .description(
      "the LogStore's role, term, commit LSN, cluster id and shard map; every shard's applied/durable LSN and lag, or its error; " +
        "exits 1 when the cluster is not healthy (no leader known, a replica not answering or not leader/follower, " +
        "a shard not answering, not the one listed, ahead of the log's commit LSN, behind it by more than --lag-max, " +
        "or behind with no delivery stream open)",
    )
    .option("--lag-max <entries>", "unhealthy when a shard is more than this many entries behind the log's commit LSN", parseLsn)
    .action((opts: { lagMax?: bigint }) =>
      withClient(run, async (client, g) => {
        const status = await client.clusterStatus();
        const problems = clusterProblems(status, opts.lagMax === undefined ? {} : { lagMax: opts.lagMax });
        const json = { ...clusterStatusJson(status), healthy: problems.length === 0, problems };
        run.io.stdout(g.json ? `${toJson(json)}\n` : formatClusterStatus(status));
        if (problems.length > 0) {
          run.io.stderr(problems.map((problem) => `lpctl: unhealthy: ${problem}\n`).join(""));
          run.exitCode = EXIT_ERROR;
        }
      }),
    );
  run.program
    .command("health")
    .description("grpc.health.v1 Check on any service; exit 0 when SERVING, 1 otherwise")
    .argument("<address>", "host:port", parseAddress)
    .option("--service <name>", "the health service name to ask about", "")
    .action(async (address: string, opts: { service: string }) => {
      const g = globals(run);
      const result = await checkHealth(address, { service: opts.service, timeoutMs: g.timeoutMs, security: lpctlSecurity(g) });
      run.io.stdout(g.json ? `${toJson({ address, status: result.statusName })}\n` : `${result.statusName}\n`);
      if (result.status !== HealthServingStatus.SERVING) run.exitCode = EXIT_ERROR;
    });
}

/** Runs a command that reads until stopped: Ctrl-C (io.signal) ends it with exit 0, like reaching --to. */
async function untilStopped(run: Run, body: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const stop = new AbortController();
  const outer = run.io.signal;
  const onStop = (): void => stop.abort(outer?.reason);
  if (outer?.aborted) onStop();
  outer?.addEventListener("abort", onStop, { once: true });
  run.io.onStoppable?.();
  try {
    await body(stop.signal);
  } catch (err: unknown) {
    if (!(stop.signal.aborted && CancelledError.is(err))) throw err;
  } finally {
    outer?.removeEventListener("abort", onStop);
  }
}

function readRange(opts: { from?: bigint; to?: bigint }, signal: AbortSignal): { fromLsn?: bigint; toLsn?: bigint; signal: AbortSignal } {
  return { signal, ...(opts.from === undefined ? {} : { fromLsn: opts.from }), ...(opts.to === undefined ? {} : { toLsn: opts.to }) };
}

function addLogCommands(run: Run): void {
  run.program
    .command("tail")
    .description(
      "print committed log entries, one line each (--json: one JSON object per line), from --from (default: the next to commit) " +
        "until --to or Ctrl-C; rides through a replica failure without skipping or repeating an LSN",
    )
    .option("--from <lsn>", "the first LSN to print (1: the whole log)", parseLsn)
    .option("--to <lsn>", "the last LSN to print, then exit", parseLsn)
    .action((opts: { from?: bigint; to?: bigint }) =>
      withClient(run, (client, g) =>
        untilStopped(run, async (signal) => {
          for await (const record of client.readLog(readRange(opts, signal))) run.io.stdout(formatLogRecord(record, g.hex, g.json));
        }),
      ),
    );
  run.program
    .command("watch")
    .description(
      "print committed mutations on keys starting with PREFIX, one line each with its transaction's LSN (--json: one JSON object " +
        "per line), from --from (default: the next to commit) until --to or Ctrl-C",
    )
    .argument("<prefix>")
    .option("--from <lsn>", "the first LSN to look at (1: the whole log)", parseLsn)
    .option("--to <lsn>", "the last LSN to look at, then exit", parseLsn)
    .action((prefix: string, opts: { from?: bigint; to?: bigint }) =>
      withClient(run, (client, g) =>
        untilStopped(run, async (signal) => {
          for await (const event of client.watch(prefix, readRange(opts, signal)))
            run.io.stdout(formatWatchLines(event.lsn, event.mutations, g.hex, g.json));
        }),
      ),
    );
  const listMembers = (): Promise<void> =>
    withClient(run, async (client, g) => {
      const members = await client.members();
      run.io.stdout(g.json ? `${toJson({ members: membersJson(members) })}\n` : formatMembers(members));
      if (members.some((m) => m.self === undefined)) run.exitCode = EXIT_ERROR;
    });
  const listHelp =
    "the LogStore replicas: each one's id, address, role (leader, follower, learner...), term, last and commit LSN as it " +
    "reports them, and for a follower the match LSN and lag the leader reports; exits 1 when one does not answer";
  const members = run.program
    .command("members")
    .description(`${listHelp} (same as members list); members add / members remove change them (admin role)`)
    .action(listMembers);
  members.command("list").description(listHelp).action(listMembers);
  members
    .command("add")
    .description(
      "add LogStore replica ID at HOST:PORT: the leader appends it as a learner, waits until it holds the commit LSN " +
        "(its --learner-catch-up-timeout-ms), then promotes it to voter. Start the replica first, with --join and the " +
        "current members in --peers. Idempotent: run it again after a failure to finish the change. Exits 1 on refusal",
    )
    .argument("<id=host:port>", "the new replica's Raft id and the address its peers reach it at", parseMemberArgument)
    .action((member: { id: number; address: string }) =>
      withClient(run, async (client, g) => {
        const answer = await client.addMember(member.id, member.address);
        run.io.stdout(g.json ? `${toJson(membersAnswerJson(answer))}\n` : formatMembersAnswer(`added replica ${member.id}`, answer));
      }),
    );
  members
    .command("remove")
    .description(
      "remove LogStore replica ID (voter or learner) from the cluster, through the leader; then stop it. Idempotent: " +
        "removing a replica that is not a member succeeds. Exits 1 on refusal (e.g. the last voter)",
    )
    .argument("<id>", "the replica's Raft id", parseReplicaId)
    .action((id: number) =>
      withClient(run, async (client, g) => {
        const answer = await client.removeMember(id);
        run.io.stdout(g.json ? `${toJson(membersAnswerJson(answer))}\n` : formatMembersAnswer(`removed replica ${id}`, answer));
      }),
    );
}

/** `ID=HOST:PORT` of `lpctl members add`. */
function parseMemberArgument(text: string): { id: number; address: string } {
  const match = /^(\d{1,10})=(.+)$/.exec(text);
  if (match === null) throw new InvalidArgumentError(`expected ID=HOST:PORT (e.g. 4=10.0.0.4:7001), got "${text}"`);
  const address = match[2]!;
  if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):\d{1,5}$/.test(address)) {
    throw new InvalidArgumentError(`"${address}" is not HOST:PORT`);
  }
  return { id: parseReplicaId(match[1]!), address };
}

function parseReplicaId(text: string): number {
  const id = /^\d{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff_ffff) throw new InvalidArgumentError(`a replica id is an integer >= 1, got "${text}"`);
  return id;
}

/** The client package's version, from its package.json (dist/ sits beside it). */
function clientVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "package.json"), "utf8")) as { version?: unknown };
  return typeof manifest.version === "string" ? manifest.version : "unknown";
}

function buildProgram(run: Run): void {
  run.program
    .name("lpctl")
    .description("Command-line client for a LogPlayer cluster.")
    .version(`lpctl ${clientVersion()} (protocol version ${PROTOCOL_VERSION})`, "-V, --version")
    .addOption(
      envOption("--logstore <addresses>", "LogStore address(es), comma-separated host:port", "LP_LOGSTORE")
        .argParser(parseAddressList)
        .default(DEFAULT_LOGSTORE.split(","), DEFAULT_LOGSTORE),
    )
    .addOption(
      envOption(
        "--seeds <addresses>",
        "discovery: any LogStore replica(s), comma-separated; the replicas and shards are read from its Status (instead of --logstore)",
        "LP_SEEDS",
      )
        .argParser(parseAddressList)
        .conflicts("logstore"),
    )
    .addOption(
      envOption("--shards <addresses>", "shard addresses in shard-id order, comma-separated", "LP_SHARDS")
        .argParser(parseAddressList)
        .default(DEFAULT_SHARDS.split(","), DEFAULT_SHARDS),
    )
    .addOption(
      envOption("--timeout-ms <ms>", "deadline of every call", "LP_TIMEOUT_MS")
        .argParser(parseIntegerInRange("--timeout-ms", 1, TIMEOUT_MS_MAX))
        .default(DEFAULT_TIMEOUT_MS),
    )
    .option("--json", "machine-readable output (one JSON document; LSNs as strings)", false)
    .option("--hex", "values are hex-encoded bytes, in arguments and output", false);
  // lpctl listens on nothing, so --insecure needs no --insecure-allow-remote here.
  for (const option of tlsOptions()) if (option.long !== "--insecure-allow-remote") run.program.addOption(option);
  run.program.exitOverride().configureOutput({ writeOut: run.io.stdout, writeErr: run.io.stderr }).showHelpAfterError(false);
  addMutationCommands(run);
  addReadCommands(run);
  addOutcomeCommand(run);
  addStatusCommands(run);
  addLookupCommand(run);
  addLogCommands(run);
  addBackupCommands(run.program, {
    stdout: run.io.stdout,
    shards: () => globals(run).shards,
    json: () => globals(run).json,
    security: () => lpctlSecurity(globals(run)),
  });
}

/**
 * Runs lpctl with `argv` (the arguments after the program name) and returns
 * its exit code. Never throws and never calls process.exit.
 */
export async function runLpctl(argv: readonly string[], io: LpctlIo): Promise<number> {
  const run: Run = { io, program: new Command(), exitCode: EXIT_OK };
  buildProgram(run);
  try {
    await run.program.parseAsync([...argv], { from: "user" });
    return run.exitCode;
  } catch (err: unknown) {
    // Commander already printed its own message (usage errors, --help).
    if (err instanceof CommanderError) return err.exitCode;
    const error = toClientError(err);
    io.stderr(`lpctl: ${error.codeName}: ${error.message}\n`);
    return EXIT_ERROR;
  }
}
