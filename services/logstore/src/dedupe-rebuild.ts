import { assert } from "@logplayer/common";
import { dedupeEntryOf, type DedupeTable } from "./dedupe-table";
import type { Wal } from "@logplayer/wal";

/** Entries per read while scanning the log for the dedupe table. */
const REBUILD_BATCH_ENTRIES_MAX = 4096;
const REBUILD_BATCH_BYTES_MAX = 16 * 1024 * 1024;

/**
 * Fills `dedupe` from the committed log [firstLsn, commitLsn] on start (from
 * just after its position when it was loaded from a snapshot), so a
 * retry after a restart still finds its original. Every entry goes through
 * `applyEntry`, as it does live (no-ops too: they age the sessions), so the
 * rebuilt table holds the sessions the live one held at commitLsn.
 */
export async function rebuildDedupeTable(wal: Pick<Wal, "firstLsn" | "readRange">, commitLsn: bigint, dedupe: DedupeTable): Promise<void> {
  let next = dedupe.positionLsn > 0n ? dedupe.positionLsn + 1n : wal.firstLsn;
  while (next <= commitLsn) {
    const entries = await wal.readRange(next, commitLsn, REBUILD_BATCH_BYTES_MAX, REBUILD_BATCH_ENTRIES_MAX);
    assert(entries.length > 0, `dedupe rebuild: no entries at ${next}`);
    for (const entry of entries) {
      dedupe.applyEntry(entry.lsn, dedupeEntryOf(entry));
      next = entry.lsn + 1n;
    }
  }
}
