import type { Entry, MemoryStorage } from "@logplayer/raft";
import type { RaftDriverPorts } from "./raft-driver";

/**
 * Driver ports for unit tests: every write lands in `storage` at once (entries
 * also recorded in `writes`), no network, no timers; `soon` decides when a
 * scheduled run happens (at once, or when the test says).
 */
export function memoryDriverPorts(storage: MemoryStorage, writes: (readonly Entry[])[], soon: (run: () => void) => void): RaftDriverPorts {
  return {
    log: {
      write: (truncateAfter, entries, done) => {
        if (truncateAfter !== undefined) storage.truncateAfter(truncateAfter);
        storage.append(entries);
        if (entries.length > 0) writes.push(entries);
        done();
      },
    },
    hardState: {
      save: (state, _mustSync, done) => {
        storage.setHardState(state);
        done();
      },
    },
    transport: { send: () => {} },
    clock: { every: () => () => {}, soon },
    random: { int: () => 0 },
  };
}
