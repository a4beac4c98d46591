import { type AppendMessage, DEFAULT_RAFT_CONFIG, type Entry, MemoryStorage, type Message } from "@logplayer/raft";
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

describe("RaftDriver leading three voters", () => {
  it("sends a new entry to the followers before it is durable here (Raft thesis §10.2.1), and commits it only once it is", () => {
    const storage = new MemoryStorage();
    const sent: Message[] = [];
    const ticks: (() => void)[] = [];
    const writes: (readonly Entry[])[] = [];
    const ports = memoryDriverPorts(storage, writes, (run) => run());
    const driver = new RaftDriver({
      config: { ...DEFAULT_RAFT_CONFIG, id: 1, voters: [1, 2, 3], appliedIndex: 0n },
      storage,
      tickMs: 100,
      ports: {
        ...ports,
        transport: { send: (messages) => sent.push(...messages) },
        clock: {
          ...ports.clock,
          every: (_ms, onTick) => {
            ticks.push(onTick);
            return () => {};
          },
        },
      },
      application: { apply: () => {}, observe: () => {} },
      onFatal: (error) => {
        throw error;
      },
    });
    driver.start();
    // Campaign: the election timeout passes, node 2 grants the pre-vote, then the vote.
    for (let tick = 0; tick < 2 * DEFAULT_RAFT_CONFIG.electionTicks && driver.status().role === "follower"; tick++) ticks[0]!();
    const term = driver.status().term;
    driver.step({ type: "pre-vote-response", from: 2, to: 1, term: term + 1n, reject: false });
    driver.step({ type: "vote-response", from: 2, to: 1, term: driver.status().term, reject: false });
    expect(driver.status().role).toBe("leader");
    const noop = writes.at(-1)!.at(-1)!;
    driver.persisted(noop.index, noop.term);
    for (const from of [2, 3]) {
      driver.step({ type: "append-response", from, to: 1, term: noop.term, reject: false, index: noop.index, hintIndex: 0n, hintTerm: 0n });
    }
    expect(driver.status().commit).toBe(noop.index);

    sent.length = 0;
    driver.proposeData(new Uint8Array([7]), () => {});
    const entry = writes.at(-1)!.at(-1)!;
    // Handed to the log, not reported durable: the appends carrying it are already out.
    const appends = sent.filter((m): m is AppendMessage => m.type === "append" && m.entries.some((e) => e.index === entry.index));
    expect(appends.map((m) => m.to).sort()).toEqual([2, 3]);
    // A follower's durable copy alone is not a majority: the leader counts itself only once its write is durable.
    driver.step({
      type: "append-response",
      from: 2,
      to: 1,
      term: entry.term,
      reject: false,
      index: entry.index,
      hintIndex: 0n,
      hintTerm: 0n,
    });
    expect(driver.status().commit).toBe(noop.index);
    driver.persisted(entry.index, entry.term);
    expect(driver.status().commit).toBe(entry.index);
    driver.stop();
  });
});
