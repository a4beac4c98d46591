import { EventQueue } from "./event-queue";
import { SimNetwork } from "./network";
import { Prng } from "./prng";
import { InvariantViolation, RaftInvariantChecker } from "./raft-checker";
import { SimDisk } from "./sim-disk";
import { SimRaftStateFile } from "./sim-raft-state-file";
import { Simulator } from "./simulator";
import type { Entry, RaftStatus } from "@logplayer/raft";

describe("Prng", () => {
  test("is deterministic per seed and stays in range", () => {
    const a = new Prng(7);
    const b = new Prng(7);
    const drawsA = Array.from({ length: 1000 }, () => a.int(10));
    const drawsB = Array.from({ length: 1000 }, () => b.int(10));
    expect(drawsA).toEqual(drawsB);
    expect(new Set(drawsA)).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    expect(new Prng(8).int(1_000_000)).not.toBe(new Prng(7).int(1_000_000));
  });
});

describe("EventQueue", () => {
  test("pops by time, then by scheduling order", () => {
    const queue = new EventQueue(100);
    const order: string[] = [];
    const times = [5, 1, 3, 1, 9, 0];
    for (const [sequence, timeMs] of times.entries()) queue.push({ timeMs, sequence, run: () => void order.push(`${timeMs}.${sequence}`) });
    for (let event = queue.pop(); event !== undefined; event = queue.pop()) event.run();
    expect(order).toEqual(["0.5", "1.1", "1.3", "3.2", "5.0", "9.4"]);
  });

  test("refuses more than eventsMax events", () => {
    const queue = new EventQueue(1);
    queue.push({ timeMs: 0, sequence: 0, run: () => undefined });
    expect(() => queue.push({ timeMs: 0, sequence: 1, run: () => undefined })).toThrow(/more than 1/);
  });
});

describe("SimNetwork", () => {
  function setup(): { sim: Simulator; network: SimNetwork<string>; received: string[] } {
    const sim = new Simulator({ seed: 1, eventsMax: 10_000, traceLinesMax: 10 });
    const received: string[] = [];
    const network = new SimNetwork<string>(sim, { messagesInFlightMax: 1_000 }, (to, message) => received.push(`${to}:${message}`));
    return { sim, network, received };
  }

  test("a partition cuts messages, including those already on the wire", () => {
    const { sim, network, received } = setup();
    network.send(1, 2, "before");
    network.partition([[1], [2]]);
    network.send(1, 2, "during");
    while (sim.step()) {}
    network.heal();
    network.send(1, 2, "after");
    while (sim.step()) {}
    expect(received).toEqual(["2:after"]);
    expect(network.dropped).toBe(2);
  });

  test("drops, duplicates and reorders as configured", () => {
    const { sim, network, received } = setup();
    network.faults = { dropProbability: 0.3, duplicateProbability: 0.3, delayMsMin: 1, delayMsMax: 50 };
    for (let count = 0; count < 500; count++) network.send(1, 2, String(count));
    while (sim.step()) {}
    const numbers = received.map((line) => Number(line.split(":")[1]));
    expect(numbers.length).toBeLessThan(500 * 1.3);
    expect(new Set(numbers).size).toBeLessThan(500);
    expect(new Set(numbers).size).toBeLessThan(numbers.length);
    expect(numbers).not.toEqual([...numbers].sort((a, b) => a - b));
  });
});

describe("SimDisk", () => {
  test("a crash loses unsynced writes and keeps synced ones", () => {
    const disk = new SimDisk<number[], number>([], (state, write) => [...state, write], 10);
    const first = disk.write(1);
    disk.write(2);
    disk.sync(first);
    disk.write(3);
    expect(disk.crash()).toEqual([1]);
    disk.sync(100);
    expect(disk.durableState()).toEqual([1]);
  });
});

describe("SimRaftStateFile", () => {
  const record = (term: number) => ({
    identity: { clusterId: "sim", replicaId: 1, peersHash: "sim" },
    hardState: { term: BigInt(term), vote: 1, commit: 0n },
  });

  test("a write is durable once it completes; one a crash cuts short is lost and never resolves", async () => {
    const scheduled: (() => void)[] = [];
    const file = new SimRaftStateFile((complete) => scheduled.push(complete));
    const first = file.write("n1", record(1));
    expect(file.durable.term).toBe(0n);
    scheduled.shift()?.();
    await first;
    expect(file.durable.term).toBe(1n);
    let resolved = false;
    void file.write("n1", record(2)).then(() => (resolved = true));
    file.crash();
    scheduled.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect({ term: file.durable.term, resolved }).toEqual({ term: 1n, resolved: false });
  });
});

describe("RaftInvariantChecker", () => {
  const entry = (index: number, term: number, id: number): Entry => ({
    index: BigInt(index),
    term: BigInt(term),
    kind: "normal",
    data: new Uint8Array([id]),
  });
  const key = (e: Entry): string => String(e.data[0]);
  const emptyLog = { lastIndex: () => 0n, term: () => undefined, entryKey: () => undefined };
  const status = (id: number, term: number, role: RaftStatus["role"], commit = 0): RaftStatus => ({
    id,
    role,
    term: BigInt(term),
    vote: 0,
    leader: 0,
    commit: BigInt(commit),
    durableCommit: 0n,
    lastIndex: 0n,
    persistedIndex: 0n,
    applied: 0n,
    rejoining: false,
    voters: [1, 2, 3],
    learners: [],
  });

  test("two leaders in one term", () => {
    const checker = new RaftInvariantChecker(key);
    checker.checkNode(status(1, 2, "leader"), emptyLog);
    expect(() => checker.checkNode(status(2, 2, "leader"), emptyLog)).toThrow(InvariantViolation);
  });

  test("different entries applied at one index", () => {
    const checker = new RaftInvariantChecker(key);
    checker.onApply(1, entry(1, 1, 5));
    checker.onApply(2, entry(1, 1, 5));
    expect(() => checker.onApply(3, entry(1, 1, 6))).toThrow(/state-machine safety/);
  });

  test("the same (index, term) after a different previous term", () => {
    const checker = new RaftInvariantChecker(key);
    checker.onWrite(1, [entry(2, 3, 9)], 1n);
    expect(() => checker.onWrite(2, [entry(2, 3, 9)], 2n)).toThrow(/log matching/);
  });

  test("a WAL recovering an entry never written there, or with a hole", () => {
    const checker = new RaftInvariantChecker(key);
    checker.onWrite(1, [entry(1, 1, 5), entry(2, 1, 6)], 0n);
    const recovered = (index: number, term: number, id: number) => ({ index: BigInt(index), term: BigInt(term), key: String(id) });
    expect(() => checker.onRecover(1, [recovered(1, 1, 5), recovered(2, 1, 6)])).not.toThrow();
    expect(() => checker.onRecover(1, [recovered(1, 1, 5), recovered(2, 1, 7)])).toThrow(/durability/);
    expect(() => checker.onRecover(1, [recovered(1, 1, 5), recovered(2, 2, 6)])).toThrow(/durability/);
    expect(() => checker.onRecover(1, [recovered(2, 1, 6)])).toThrow(/durability/);
  });

  test("a commit index going back", () => {
    const checker = new RaftInvariantChecker(key);
    checker.checkNode(status(1, 1, "follower", 5), emptyLog);
    expect(() => checker.checkNode(status(1, 1, "follower", 4), emptyLog)).toThrow(/commit monotonic/);
  });

  test("a new leader missing an entry committed in an earlier term", () => {
    const checker = new RaftInvariantChecker(key);
    const log = { lastIndex: () => 1n, term: (index: bigint) => (index <= 1n ? 1n : undefined), entryKey: () => "5" };
    checker.checkNode(status(1, 1, "leader", 1), log);
    // A stale candidate may still win an OLDER term without it: that is legal.
    expect(() => checker.checkNode(status(2, 1, "follower"), emptyLog)).not.toThrow();
    expect(() => checker.checkNode(status(3, 2, "leader"), emptyLog)).toThrow(/leader completeness/);
  });
});
