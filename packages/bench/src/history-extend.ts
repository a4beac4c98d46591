#!/usr/bin/env node
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { Command, InvalidArgumentError } from "commander";
import { parseFlags, runMain } from "@logplayer/common";

/*
 * history-extend: makes a stopped LogStore's history long, fast. Appending
 * 10 GB through a LogStore on a loaded host runs at a few MB/s; this opens
 * the LogStore's own WAL in-process (with the WAL package of the checkout
 * given, so an older build's format is written by that build's code) and
 * appends copies of its newest client entry: the next LSNs, the same term,
 * client and session, the next client sequence numbers. The LogStore then
 * starts on a log that looks like a long run of one client's appends (a
 * single voter commits them with its no-op). Run history.js first so the
 * data directory holds a real cluster and at least one client append.
 */

interface ExtendFlags {
  checkout: string;
  dataDir: string;
  bytes: number;
  window: number;
}

/** What this tool uses of a LogEntry (the same fields in every version measured). */
interface EntryShape {
  lsn: bigint;
  term: bigint;
  clientId: string;
  clientSeq: bigint;
  txn?: unknown;
}

/** What this tool uses of @logplayer/wal's Wal (the same in every version measured). */
interface WalShape {
  readonly lastLsn: bigint;
  append(entry: EntryShape, payload: Uint8Array): Promise<void>;
  readRange(fromLsn: bigint, toLsn: bigint, bytesMax: number, entriesMax: number): Promise<EntryShape[]>;
  close(): Promise<void>;
}

interface WalModule {
  Wal: { open(dir: string, limits: Record<string, number>): Promise<{ wal: WalShape }> };
  encodeEntryPayload(entry: EntryShape): Uint8Array;
}

const MIB = 1024 * 1024;
const WAL_LIMITS = { segmentBytesMax: 64 * MIB, cacheBytesMax: 8 * MIB, appendQueueMax: 10_000, appendQueueBytesMax: 256 * MIB };
const LOOK_BACK_ENTRIES = 64n;

function parseSize(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(MiB|GiB)$/.exec(value.trim());
  if (match === null) throw new InvalidArgumentError(`--bytes must be a size such as 512MiB or 10GiB, got "${value}"`);
  return Math.floor(Number(match[1]) * (match[2] === "GiB" ? 1024 * MIB : MIB));
}

function parseOptions(argv: readonly string[]): ExtendFlags {
  const command = new Command("history-extend")
    .description("Appends copies of a stopped LogStore's newest client entry to its own WAL until it holds --bytes more.")
    .requiredOption("--checkout <dir>", "the checkout whose @logplayer/wal wrote this data directory (its services/logstore resolves it)")
    .requiredOption("--data-dir <dir>", "the stopped LogStore's data directory")
    .option("--bytes <size>", "history to add (e.g. 9GiB)", parseSize, 1024 * MIB)
    .option("--window <n>", "appends queued at once", (v) => Number.parseInt(v, 10), 64);
  return parseFlags(command, argv).opts<ExtendFlags>();
}

async function main(): Promise<void> {
  const flags = parseOptions(process.argv);
  const fromLogStore = createRequire(path.join(path.resolve(flags.checkout), "services", "logstore", "package.json"));
  const walModule = fromLogStore("@logplayer/wal") as WalModule;
  const walDir = path.join(flags.dataDir, "wal");
  if (!fs.existsSync(walDir)) throw new Error(`no WAL in ${flags.dataDir}`);
  const { wal } = await walModule.Wal.open(walDir, WAL_LIMITS);
  try {
    const last = wal.lastLsn;
    const from = last > LOOK_BACK_ENTRIES ? last - LOOK_BACK_ENTRIES : 1n;
    const recent = await wal.readRange(from, last, 256 * MIB, Number(LOOK_BACK_ENTRIES) + 1);
    const model = recent.filter((entry) => entry.txn !== undefined && entry.clientId !== "").at(-1);
    if (model === undefined) throw new Error(`no client entry among the last ${LOOK_BACK_ENTRIES} of ${walDir}: run history.js first`);
    const entryBytes = walModule.encodeEntryPayload(model).length;
    const count = Math.ceil(flags.bytes / entryBytes);
    process.stdout.write(`extending ${walDir} from LSN ${last} by ${count} entries of ${entryBytes} bytes (term ${model.term})\n`);
    const started = performance.now();
    const pending = new Set<Promise<void>>();
    for (let i = 1; i <= count; i++) {
      const entry: EntryShape = { ...model, lsn: last + BigInt(i), clientSeq: model.clientSeq + BigInt(i) };
      const done = wal.append(entry, walModule.encodeEntryPayload(entry));
      pending.add(done);
      void done.finally(() => pending.delete(done));
      if (pending.size >= flags.window) await Promise.race(pending);
      if (i % 1000 === 0) {
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(`  ${i} of ${count}, ${((i * entryBytes) / MIB / seconds).toFixed(0)} MiB/s\n`);
      }
    }
    await Promise.all(pending);
    process.stdout.write(`extended to LSN ${wal.lastLsn} in ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  } finally {
    await wal.close();
  }
}

runMain("history-extend", main);
