import { DEFAULT_RAFT_CONFIG, MemoryStorage, type Entry } from "@logplayer/raft";
import { memoryDriverPorts } from "./memory-driver-ports.fixture";
import { RaftDriver } from "./raft-driver";

// A one-voter driver over in-memory ports whose soon() only queues its runs, so that a test sees what the
// driver does in the caller's turn and what it leaves for a later one.
function oneVoter(): {
  driver: RaftDriver;
  runSoon: () => void;
  writes: (readonly Entry[])[];
  applied: Entry[];
} {
  const storage = new MemoryStorage();
  const soon: (() => void)[] = [];
  const writes: (readonly Entry[])[] = [];
  const applied: Entry[] = [];
  const driver = new RaftDriver({
    config: { ...DEFAULT_RAFT_CONFIG, id: 1, voters: [1], appliedIndex: 0n },
    storage,
    tickMs: 100,
    ports: memoryDriverPorts(storage, writes, (run) => soon.push(run)),
    application: { apply: (entries) => applied.push(...entries), observe: () => {} },
    onFatal: (error) => {
      throw error;
    },
  });
  const runSoon = (): void => {
    for (const run of soon.splice(0)) run();
  };
  return { driver, runSoon, writes, applied };
}

describe("RaftDriver with one voter", () => {
  it("applies an entry in the turn its durability is reported, not a turn later", () => {
    const { driver, runSoon, writes, applied } = oneVoter();
    driver.start();
    expect(driver.status().role).toBe("leader");
    const noop = writes[0]![0]!;
    driver.persisted(noop.index, noop.term);
    expect(applied.map((e) => e.index)).toEqual([noop.index]);

    driver.proposeData(new Uint8Array([7]), () => {});
    runSoon();
    const entry = writes[1]![0]!;
    driver.persisted(entry.index, entry.term);
    expect(applied.map((e) => e.index)).toEqual([noop.index, entry.index]);
    driver.stop();
  });

  it("proposals made in one turn share one Ready and one log write", () => {
    const { driver, runSoon, writes } = oneVoter();
    driver.start();
    const noop = writes[0]![0]!;
    driver.persisted(noop.index, noop.term);
    const indexes: bigint[] = [];
    for (let i = 0; i < 3; i++) driver.proposeData(new Uint8Array([i]), (result) => indexes.push(result.ok ? result.index : -1n));
    expect(writes).toHaveLength(1);
    runSoon();
    expect(indexes).toEqual([2n, 3n, 4n]);
    expect(writes.slice(1).map((entries) => entries.map((e) => e.index))).toEqual([[2n, 3n, 4n]]);
    driver.stop();
  });
});
