import type { Logger } from "@logplayer/common";
import type { LogEntry } from "@logplayer/proto";
import type { Entry, HardState } from "@logplayer/raft";
import type { Wal } from "@logplayer/wal";
import type { Completion, HardStateWriter, RaftClock, RaftLogWriter, RaftRandom } from "./raft-driver";
import { writeRaftState, type RaftIdentity, type RaftStateRecord } from "./raft-state-file";
import { toLogEntry, type WalStorage } from "./wal-storage";

// The Raft driver's ports on a real machine: the WAL, raft-state.json, timers and Math.random.

/** The log port over the WAL: truncation awaits the WAL; appends are queued for its group commit. */
export class WalLogWriter implements RaftLogWriter {
  readonly #wal: Wal;
  readonly #storage: WalStorage;
  readonly #logger: Logger;
  /**
   * LogEntries this leader just built for its proposals, by LSN, so that
   * writing them needs no decode. Each is taken by the next log write (the
   * core writes every proposal in the Ready that follows it); bounded by the
   * core's uncommitted-entries limit all the same.
   */
  readonly #proposed = new Map<bigint, { readonly entry: LogEntry; readonly recordBytes: number }>();

  constructor(wal: Wal, storage: WalStorage, logger: Logger) {
    this.#wal = wal;
    this.#storage = storage;
    this.#logger = logger;
  }

  /** Record bytes of the proposals kept in #proposed: on their way to the WAL's queue, not in it yet. */
  #proposedBytes = 0;

  /** Keeps the LogEntry of a proposal just accepted at its LSN (the core writes it in the next Ready). */
  proposed(entry: LogEntry, recordBytes: number): void {
    this.#proposed.set(entry.lsn, { entry, recordBytes });
    this.#proposedBytes += recordBytes;
  }

  /**
   * Bytes this replica has committed itself to write and not yet made
   * durable: the WAL's queue plus the proposals on their way to it. The
   * leader's admission keeps this under the WAL's byte bound, so a burst of
   * large appends is refused at the door instead of overflowing the queue.
   */
  get pendingBytes(): number {
    return this.#wal.unackedBytes + this.#proposedBytes;
  }

  write(truncateAfter: bigint | undefined, entries: readonly Entry[], done: Completion): void {
    if (truncateAfter === undefined || truncateAfter >= this.#wal.lastLsn) {
      this.#append(entries);
      done();
      return;
    }
    const lastLsn = this.#wal.lastLsn.toString();
    this.#logger.warn({ after: truncateAfter.toString(), lastLsn }, "truncating a conflicting uncommitted suffix");
    this.#storage.truncateAfter(truncateAfter);
    this.#wal.truncateAfter(truncateAfter).then(
      () => {
        this.#append(entries);
        done();
      },
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  }

  #append(entries: readonly Entry[]): void {
    for (const entry of entries) {
      this.#storage.remember(entry);
      const proposal = this.#proposed.get(entry.index);
      if (proposal !== undefined) {
        this.#proposed.delete(entry.index);
        this.#proposedBytes -= proposal.recordBytes;
      }
      const built = proposal?.entry;
      const known = built !== undefined && built.term === entry.term ? built : undefined;
      const { entry: logEntry, payload } = known !== undefined ? { entry: known, payload: entry.data } : toLogEntry(entry);
      // Durability comes back through wal.onDurable; a write failure is fatal via the WAL observer.
      this.#wal.append(logEntry, payload).catch(() => {});
    }
  }
}

/**
 * Writes raft-state.json in `dataDir` atomically and durably (old or new after a crash, new once it resolves):
 * writeRaftState on a real machine, a simulated file in the simulator.
 */
export type RaftStateWrite = (dataDir: string, record: RaftStateRecord) => Promise<void>;

/** The first wait before writing raft-state.json again on a full disk, and the longest (doubling in between). */
const DISK_FULL_RETRY_MS_FIRST = 10;
const DISK_FULL_RETRY_MS_LAST = 1_000;

/**
 * The hard-state port: mirrored into the Storage port at once, raft-state.json
 * fsynced when it must be. On a full disk (ENOSPC, EDQUOT) the write is retried
 * with backoff until there is room, as the WAL's writes are: the driver waits
 * for it (nothing that needs the new term or vote durable happens meanwhile),
 * and the old file stays whole. Any other failure is the driver's to treat as fatal.
 */
export class RaftStateFileWriter implements HardStateWriter {
  readonly #dataDir: string;
  readonly #identity: RaftIdentity;
  readonly #storage: WalStorage;
  readonly #writeState: RaftStateWrite;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(
    dataDir: string,
    identity: RaftIdentity,
    storage: WalStorage,
    writeState: RaftStateWrite = writeRaftState,
    /** Waits between retries on a full disk: timers here, the simulated clock in the simulator. */
    sleep: (ms: number) => Promise<void> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  ) {
    this.#dataDir = dataDir;
    this.#identity = identity;
    this.#storage = storage;
    this.#writeState = writeState;
    this.#sleep = sleep;
  }

  save(state: HardState, mustSync: boolean, done: Completion): void {
    this.#storage.setHardState(state);
    if (!mustSync) {
      done();
      return;
    }
    this.#writeUntilRoom({ identity: this.#identity, hardState: state }).then(
      () => done(),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  }

  async #writeUntilRoom(record: RaftStateRecord): Promise<void> {
    for (let retryMs = DISK_FULL_RETRY_MS_FIRST; ; retryMs = Math.min(retryMs * 2, DISK_FULL_RETRY_MS_LAST)) {
      try {
        await this.#writeState(this.#dataDir, record);
        return;
      } catch (err: unknown) {
        const code = (err as { code?: unknown } | null)?.code;
        if (code !== "ENOSPC" && code !== "EDQUOT") throw err;
      }
      await this.#sleep(retryMs);
    }
  }
}

/**
 * Timers, and a soon() that batches only when batching gains something. While
 * the WAL writes, whatever arrives waits for its next round anyway: the run
 * comes after this turn's I/O callbacks (setImmediate), so the inputs of the
 * whole turn share one Ready and one write. With the WAL idle, waiting for the
 * end of the turn would only delay the write: the run comes as soon as the
 * current callback is done (a microtask), and what arrives after it finds the
 * WAL writing and is batched as above.
 */
export function walTimerClock(wal: Pick<Wal, "unackedCount">): RaftClock {
  return {
    every(intervalMs, onTick) {
      const timer = setInterval(onTick, intervalMs);
      return () => clearInterval(timer);
    },
    soon: (run) => (wal.unackedCount === 0 ? queueMicrotask(run) : setImmediate(run)),
  };
}

export const mathRandom: RaftRandom = {
  int: (bound) => Math.floor(Math.random() * bound),
};
