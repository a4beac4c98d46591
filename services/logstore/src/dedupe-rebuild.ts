import { assert } from "@logplayer/common";
import type { DedupeTable } from "./dedupe-table";
import type { Wal } from "@logplayer/wal";

/** Entries per read while scanning the log for the dedupe table. */
const REBUILD_BATCH_ENTRIES_MAX = 4096;
const REBUILD_BATCH_BYTES_MAX = 16 * 1024 * 1024;

/**
 * Fills `dedupe` from the committed log [firstLsn, commitLsn] on start, so a
 * retry after a restart still finds its original. No-op entries (no txn)
 * and anonymous appends are skipped.
 */
export async function rebuildDedupeTable(wal: Wal, commitLsn: bigint, dedupe: DedupeTable): Promise<void> {
  let next = wal.firstLsn;
  while (next <= commitLsn) {
    const entries = await wal.readRange(next, commitLsn, REBUILD_BATCH_BYTES_MAX, REBUILD_BATCH_ENTRIES_MAX);
    assert(entries.length > 0, `dedupe rebuild: no entries at ${next}`);
    for (const entry of entries) {
      if (entry.clientId !== "" && entry.txn !== undefined) dedupe.record(entry.clientId, entry.clientSeq, entry.lsn);
      next = entry.lsn + 1n;
    }
  }
}
