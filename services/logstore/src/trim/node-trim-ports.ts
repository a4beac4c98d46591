import { promises as fs } from "node:fs";
import path from "node:path";
import { assert } from "@logplayer/common";
import { parseSegmentFileName, type Wal } from "@logplayer/wal";
import { writeFileAtomically } from "../atomic-file";
import type { SegmentSummary } from "@logplayer/delivery";
import type { LogCompactor, TrimPointStore } from "./trimmer";

/** The trim point's file in the data directory, next to cluster.json. */
export const TRIM_POINT_FILE = "trim-point.json";

/** trim-point.json: {"trimPoint": "<decimal LSN>"}, written crash-safely. */
export class TrimPointFile implements TrimPointStore {
  readonly #file: string;

  constructor(dataDir: string) {
    this.#file = path.join(dataDir, TRIM_POINT_FILE);
  }

  async load(): Promise<bigint> {
    let text: string;
    try {
      text = await fs.readFile(this.#file, "utf8");
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0n;
      throw err;
    }
    const parsed = JSON.parse(text) as { trimPoint?: unknown };
    const value = parsed.trimPoint;
    if (typeof value !== "string" || !/^\d{1,20}$/.test(value)) throw new Error(`${this.#file}: trimPoint is not a decimal LSN`);
    return BigInt(value);
  }

  async save(trimPoint: bigint): Promise<void> {
    await writeFileAtomically(this.#file, `${JSON.stringify({ trimPoint: trimPoint.toString() })}\n`);
  }
}

/** The segment files in `walDir`, oldest first, the last one ending at `lastLsn`. */
export async function listWalSegments(walDir: string, lastLsn: bigint): Promise<SegmentSummary[]> {
  const found: { firstLsn: bigint; name: string }[] = [];
  for (const name of await fs.readdir(walDir)) {
    const firstLsn = parseSegmentFileName(name);
    if (firstLsn !== null) found.push({ firstLsn, name });
  }
  found.sort((a, b) => (a.firstLsn < b.firstLsn ? -1 : a.firstLsn > b.firstLsn ? 1 : 0));
  const segments: SegmentSummary[] = [];
  for (let i = 0; i < found.length; i++) {
    const { firstLsn, name } = found[i]!;
    let stat: { size: number; mtimeMs: number };
    try {
      stat = await fs.stat(path.join(walDir, name));
    } catch (err: unknown) {
      // Deleted between the listing and now: a trim of this same replica, which runs one pass at a time, did not.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    const next = found[i + 1];
    const segmentLast = next === undefined ? lastLsn : next.firstLsn - 1n;
    segments.push({ firstLsn, lastLsn: segmentLast, bytes: stat.size, lastWriteMs: stat.mtimeMs });
  }
  return segments;
}

/** Snapshots the replicated state, then deletes WAL segments at or below min(lsn, snapshot index) (LogStoreNode.compactLogTo). */
export type CompactLog = (lsn: bigint) => Promise<{ readonly snapshotIndex: bigint }>;

/**
 * The WAL as a LogCompactor: deletion goes through the LogStore's
 * compactLogTo, which first snapshots what the deleted entries built (the
 * dedupe sessions), so a restart does not lose it.
 */
export class WalCompactor implements LogCompactor {
  readonly #wal: Wal;
  readonly #walDir: string;
  readonly #compactLog: CompactLog;
  #snapshotLsn = 0n;

  constructor(wal: Wal, walDir: string, compactLog: CompactLog) {
    this.#wal = wal;
    this.#walDir = walDir;
    this.#compactLog = compactLog;
  }

  get snapshotLsn(): bigint {
    return this.#snapshotLsn;
  }

  get firstLsn(): bigint {
    return this.#wal.firstLsn;
  }

  segments(): Promise<SegmentSummary[]> {
    return listWalSegments(this.#walDir, this.#wal.lastLsn);
  }

  async compactTo(lsn: bigint): Promise<void> {
    assert(lsn >= this.#wal.firstLsn, `compaction to ${lsn} below the first LSN ${this.#wal.firstLsn}`);
    const { snapshotIndex } = await this.#compactLog(lsn);
    this.#snapshotLsn = snapshotIndex;
  }
}
