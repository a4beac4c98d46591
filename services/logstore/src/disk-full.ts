import { resourceExhausted, type LpError } from "@logplayer/common";
import type { Wal } from "@logplayer/wal";

/**
 * What the LogStore answers a write (an append, a client registration) while
 * its WAL's disk is full: RESOURCE_EXHAUSTED before the entry enters the Raft
 * log (what is there already waits in the WAL's queue for room, retried with
 * backoff), or null when there is room. The simulator's client asks it too.
 */
export function diskFullRefusal(wal: Pick<Wal, "diskFull">): LpError | null {
  const diskFull = wal.diskFull;
  return diskFull === null ? null : resourceExhausted(`${diskFull}; retry once space is freed (reads keep working)`);
}
