import type { RaftStateRecord } from "@logplayer/logstore";
import { EMPTY_HARD_STATE, type HardState } from "@logplayer/raft";

/**
 * One replica's raft-state.json on a simulated disk, for the production
 * RaftStateFileWriter to write through its `writeState` seam. Like
 * writeRaftState (temp file, fsync, rename, fsync directory), a write is
 * atomic and is durable when it resolves, which `schedule` decides (after a
 * simulated fsync). A crash during a write keeps the old state (the rename
 * had not reached the disk: a new state surviving would be durable early,
 * which is always safe and so tests nothing), and the write never resolves.
 * On a full disk (`isFull` when the write completes) it fails with ENOSPC and
 * the old state stays, as the temp file's write would.
 */
export class SimRaftStateFile {
  #durable: HardState = EMPTY_HARD_STATE;
  #generation = 0;

  constructor(
    private readonly schedule: (complete: () => void) => void,
    private readonly isFull: () => boolean = () => false,
  ) {}

  /** What a process starting now reads. */
  get durable(): HardState {
    return this.#durable;
  }

  /** A RaftStateWrite: the data directory is this file's own, so it is not looked at. */
  readonly write = (_dataDir: string, record: RaftStateRecord): Promise<void> => {
    const generation = this.#generation;
    return new Promise<void>((resolve, reject) => {
      this.schedule(() => {
        if (generation !== this.#generation) return;
        if (this.isFull()) {
          reject(Object.assign(new Error("ENOSPC: no space left on device (sim raft-state.json)"), { code: "ENOSPC" }));
          return;
        }
        this.#durable = record.hardState;
        resolve();
      });
    });
  };

  /** Power loss: see the class comment. */
  crash(): void {
    this.#generation++;
  }
}
