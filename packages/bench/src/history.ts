#!/usr/bin/env node
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { freePorts, LOOPBACK_HOST, parseFlags, parseIntegerInRange, runMain } from "@logplayer/common";
import {
  type AppendRequest,
  type AppendResponse,
  LogStoreClient,
  MutationKind,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type ReportTrimPointRequest,
  type ReportTrimPointResponse,
  type StatusRequest,
  type StatusResponse,
} from "@logplayer/proto";
import { channelCredentialsFor, INSECURE } from "@logplayer/tls";
import { scrapeMetrics } from "./group-commit";

/*
 * The restart time of a LogStore with a long history: one single-replica
 * LogStore (any build: --logstore-main names its dist/main.js, so an older
 * checkout can be measured the same way) is given --bytes of appends of large
 * entries, stopped, then started --restarts times; each start is timed from
 * spawn to /readyz 200 and a Status answer. With --report-trim-point the tool
 * also reports the trim point every few seconds as a LogPlayer does once every
 * shard has caught up (the newest acknowledged LSN), so the LogStore trims as
 * it would in a cluster whose shards keep up. See docs/benchmarks.md.
 */

interface HistoryFlags {
  logstoreMain: string;
  bytes: number;
  entryBytes: number;
  inflight: number;
  restarts: number;
  reportTrimPoint: boolean;
  segmentBytesMax?: number;
  dataDir?: string;
  keepData: boolean;
  readyTimeoutS: number;
}

const MIB = 1024 * 1024;
const SHARD_COUNT = 1;
const VALUE_BYTES_MAX = 250_000;
const TRIM_REPORT_INTERVAL_MS = 2_000;
const STOP_TIMEOUT_MS = 120_000;
const PROBE_INTERVAL_MS = 50;
const TRIM_WAIT_ATTEMPTS_MAX = 600;
/** USER_HZ: the unit of /proc/PID/stat's CPU times on Linux. */
const CLOCK_TICKS_PER_S = 100;

function parseSize(name: string): (value: string) => number {
  return (value) => {
    const match = /^(\d+(?:\.\d+)?)(|K|M|G|KiB|MiB|GiB)$/i.exec(value.trim());
    if (match === null) throw new InvalidArgumentError(`${name} must be a size such as 512MiB or 10GiB, got "${value}"`);
    const unit = match[2]!.toUpperCase().replace("IB", "");
    const bytes = Math.floor(Number(match[1]) * ({ "": 1, K: 1024, M: MIB, G: 1024 * MIB }[unit] ?? Number.NaN));
    if (!(bytes >= 0)) throw new InvalidArgumentError(`${name} must be a size, got "${value}"`);
    return bytes;
  };
}

function parseOptions(argv: readonly string[]): HistoryFlags {
  const int = (name: string, min: number, max: number) => parseIntegerInRange(name, min, max);
  const command = new Command("history")
    .description("Gives one LogStore a long history of large appends, then times its restarts (spawn to ready).")
    .requiredOption("--logstore-main <file>", "the LogStore build to run: <checkout>/services/logstore/dist/main.js")
    .option("--bytes <size>", "history to append (e.g. 10GiB; 0: only time restarts of --data-dir)", parseSize("--bytes"), 1024 * MIB)
    .option("--entry-bytes <size>", "bytes of values per entry (PUTs of at most 250,000 bytes)", parseSize("--entry-bytes"), 1_000_000)
    .option("--inflight <n>", "appends in flight", int("--inflight", 1, 256), 16)
    .option("--restarts <n>", "timed restarts after the fill", int("--restarts", 0, 100), 3)
    .option("--report-trim-point", "report the newest acknowledged LSN as the trim point (shards caught up), so the LogStore trims", false)
    .option("--segment-bytes-max <n>", "the LogStore's WAL segment size (default: its own)", int("--segment-bytes-max", 4096, 2 ** 31))
    .option("--data-dir <dir>", "the LogStore's data directory (default: a new temporary one)")
    .option("--ready-timeout-s <n>", "longest wait for a start to be ready", int("--ready-timeout-s", 1, 24 * 3600), 1800)
    .option("--keep-data", "keep the data directory", false);
  return parseFlags(command, argv).opts<HistoryFlags>();
}

interface Running {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly grpcPort: number;
  readonly metricsPort: number;
}

async function startLogStore(flags: HistoryFlags, dataDir: string): Promise<Running> {
  const [grpcPort, metricsPort] = (await freePorts(2)) as [number, number];
  const args = [
    flags.logstoreMain,
    "--data-dir",
    dataDir,
    "--listen",
    `${LOOPBACK_HOST}:${grpcPort}`,
    "--metrics-port",
    String(metricsPort),
    "--shard-count",
    String(SHARD_COUNT),
    "--insecure",
    "--log-level",
    "warn",
    ...(flags.segmentBytesMax === undefined ? [] : ["--segment-bytes-max", String(flags.segmentBytesMax)]),
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, grpcPort, metricsPort };
}

async function stopLogStore(running: Running): Promise<void> {
  running.child.kill("SIGTERM");
  const timer = setTimeout(() => running.child.kill("SIGKILL"), STOP_TIMEOUT_MS);
  await running.exited;
  clearTimeout(timer);
}

/** One unary call as a promise (the callback overload: no metadata, no deadline). */
function unary<Req, Res>(call: (req: Req, cb: (err: Error | null, res: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(req, (err, res) => (err === null ? resolve(res) : reject(err)));
  });
}

/**
 * Milliseconds from spawn until /readyz answers 200 and Status answers, and
 * the CPU seconds the LogStore used by then (user + system, from /proc): on
 * a host shared with other work the wall time mostly measures the others.
 */
async function timeStart(flags: HistoryFlags, dataDir: string): Promise<{ running: Running; readyMs: number; cpuS: number }> {
  const started = performance.now();
  const running = await startLogStore(flags, dataDir);
  let gone = false;
  void running.exited.then(() => {
    gone = true;
  });
  const deadline = started + flags.readyTimeoutS * 1000;
  for (;;) {
    if (gone) throw new Error("the LogStore exited while starting");
    if (performance.now() > deadline) throw new Error(`the LogStore was not ready within ${flags.readyTimeoutS} s`);
    try {
      await scrapeMetrics(LOOPBACK_HOST, running.metricsPort, 1_000, "/readyz");
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
    }
  }
  const client = new LogStoreClient(`${LOOPBACK_HOST}:${running.grpcPort}`, channelCredentialsFor(INSECURE));
  try {
    await unary(client.status.bind(client), {});
  } finally {
    client.close();
  }
  return { running, readyMs: performance.now() - started, cpuS: cpuSeconds(running.child.pid) };
}

/** User + system CPU seconds of `pid` so far (Linux /proc; NaN elsewhere). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after "pid (comm) ".
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

/** Appends `flags.bytes` of large entries; returns the entries appended and the last LSN. */
async function fill(flags: HistoryFlags, running: Running, out: (line: string) => void): Promise<{ entries: number; lastLsn: bigint }> {
  const client = new LogStoreClient(`${LOOPBACK_HOST}:${running.grpcPort}`, channelCredentialsFor(INSECURE));
  const clientId = `history-${process.pid}`;
  const { sessionLsn } = await unary<RegisterClientRequest, RegisterClientResponse>(client.registerClient.bind(client), { clientId });
  const valueCount = Math.ceil(flags.entryBytes / VALUE_BYTES_MAX);
  const value = Buffer.alloc(Math.ceil(flags.entryBytes / valueCount));
  for (let i = 0; i < value.length; i++) value[i] = (i * 2654435761) >>> 24;
  const entriesTotal = Math.ceil(flags.bytes / flags.entryBytes);
  let nextSeq = 1;
  let lastLsn = 0n;
  let acked = 0;
  let reported = 0n;
  const started = performance.now();
  const reporter = flags.reportTrimPoint
    ? setInterval(() => {
        if (lastLsn <= reported) return;
        const point = lastLsn;
        unary(client.reportTrimPoint.bind(client), { trimPoint: point, shardCount: SHARD_COUNT, reporterId: clientId }).then(
          () => {
            reported = point;
          },
          (err: unknown) => out(`trim report refused: ${err instanceof Error ? err.message : String(err)}`),
        );
      }, TRIM_REPORT_INTERVAL_MS)
    : undefined;
  const worker = async (): Promise<void> => {
    while (nextSeq <= entriesTotal) {
      const seq = nextSeq++;
      const mutations = Array.from({ length: valueCount }, (_, i) => ({
        kind: MutationKind.MUTATION_KIND_PUT,
        key: `history-${i}`,
        value,
        delta: 0n,
      }));
      const answer = await unary<AppendRequest, AppendResponse>(client.append.bind(client), {
        txn: { mutations },
        commitTimeNs: 0n,
        clientId,
        clientSeq: BigInt(seq),
        sessionLsn,
      });
      if (answer.lsn > lastLsn) lastLsn = answer.lsn;
      acked++;
      if (acked % 1000 === 0) {
        const seconds = (performance.now() - started) / 1000;
        out(`  ${acked} of ${entriesTotal} entries, ${((acked * flags.entryBytes) / MIB / seconds).toFixed(0)} MiB/s`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: flags.inflight }, worker));
    if (reporter !== undefined) {
      // The last report, answered before the LogStore is stopped.
      await unary(client.reportTrimPoint.bind(client), { trimPoint: lastLsn, shardCount: SHARD_COUNT, reporterId: clientId });
    }
  } finally {
    if (reporter !== undefined) clearInterval(reporter);
    client.close();
  }
  return { entries: acked, lastLsn };
}

/**
 * Reports the commit LSN as the trim point (every shard caught up) and waits
 * until the LogStore has trimmed its WAL to the segment holding it.
 */
async function trimToCommit(running: Running, out: (line: string) => void): Promise<void> {
  const client = new LogStoreClient(`${LOOPBACK_HOST}:${running.grpcPort}`, channelCredentialsFor(INSECURE));
  try {
    const status = await unary<StatusRequest, StatusResponse>(client.status.bind(client), {});
    const point = status.commitLsn;
    await unary<ReportTrimPointRequest, ReportTrimPointResponse>(client.reportTrimPoint.bind(client), {
      trimPoint: point,
      shardCount: SHARD_COUNT,
      reporterId: "history",
    });
    for (let attempt = 0; ; attempt++) {
      const now = await unary<StatusRequest, StatusResponse>(client.status.bind(client), {});
      if (now.walBytes < 256 * MIB) {
        out(
          `trimmed: trim point ${point}, first LSN ${now.firstLsn}, snapshot LSN ${now.snapshotLsn}, WAL ${(Number(now.walBytes) / MIB).toFixed(0)} MiB`,
        );
        return;
      }
      if (attempt > TRIM_WAIT_ATTEMPTS_MAX) throw new Error(`the WAL was not trimmed: ${now.walBytes} bytes, first LSN ${now.firstLsn}`);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  } finally {
    client.close();
  }
}

function directoryBytes(dir: string): number {
  let total = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += directoryBytes(full);
    else if (entry.isFile()) total += fs.statSync(full).size;
  }
  return total;
}

async function main(): Promise<void> {
  const flags = parseOptions(process.argv);
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  const dataDir = flags.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), "lp-history-"));
  try {
    const first = await timeStart(flags, dataDir);
    const historyBefore = directoryBytes(dataDir);
    out(
      `first start (data directory ${(historyBefore / MIB).toFixed(0)} MiB): ready in ${first.readyMs.toFixed(0)} ms, ` +
        `${first.cpuS.toFixed(1)} CPU s`,
    );
    out(`history: ${flags.bytes} bytes in entries of ${flags.entryBytes} into ${dataDir} (${flags.logstoreMain})`);
    const fillStarted = performance.now();
    const filled = flags.bytes === 0 ? { entries: 0, lastLsn: 0n } : await fill(flags, first.running, out);
    if (flags.bytes === 0 && flags.reportTrimPoint) await trimToCommit(first.running, out);
    const fillS = (performance.now() - fillStarted) / 1000;
    await stopLogStore(first.running);
    const diskBytes = directoryBytes(dataDir);
    out(
      `filled: ${filled.entries} entries, last LSN ${filled.lastLsn}, in ${fillS.toFixed(0)} s; data directory ${(diskBytes / MIB).toFixed(0)} MiB`,
    );
    const readyMs: number[] = [];
    const readyCpuS: number[] = [];
    for (let i = 0; i < flags.restarts; i++) {
      const { running, readyMs: ms, cpuS } = await timeStart(flags, dataDir);
      readyMs.push(ms);
      readyCpuS.push(cpuS);
      out(
        `restart ${i + 1} (data directory ${(directoryBytes(dataDir) / MIB).toFixed(0)} MiB): ready in ${ms.toFixed(0)} ms, ` +
          `${cpuS.toFixed(1)} CPU s (RSS ${(rssBytes(running.child.pid) / MIB).toFixed(0)} MiB)`,
      );
      await stopLogStore(running);
    }
    out(
      JSON.stringify({
        logstoreMain: flags.logstoreMain,
        historyBytes: filled.entries * flags.entryBytes,
        entries: filled.entries,
        reportTrimPoint: flags.reportTrimPoint,
        dataDirBytes: diskBytes,
        readyMs: readyMs.map((ms) => Math.round(ms)),
        readyCpuS: readyCpuS.map((cpu) => Number(cpu.toFixed(1))),
      }),
    );
  } finally {
    if (flags.keepData) process.stderr.write(`data kept in ${dataDir}\n`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

function rssBytes(pid: number | undefined): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

runMain("history", main);
