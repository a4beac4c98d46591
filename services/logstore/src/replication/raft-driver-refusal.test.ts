import { MutationKind, type LogEntry } from "@logplayer/proto";
import { DEFAULT_RAFT_CONFIG, MemoryStorage, type Entry, type Message } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import { memoryDriverPorts } from "./memory-driver-ports.fixture";
import { RaftDriver } from "./raft-driver";

// The driver refuses, before the core takes it, an append whose entries a correct leader could not send:
// the log port (toLogEntry) asserts on such a payload once the core has taken it, which would exit the replica.

function follower(): { driver: RaftDriver; writes: (readonly Entry[])[]; refused: string[]; fatal: Error[] } {
  const storage = new MemoryStorage();
  const writes: (readonly Entry[])[] = [];
  const refused: string[] = [];
  const fatal: Error[] = [];
  const driver = new RaftDriver({
    config: { ...DEFAULT_RAFT_CONFIG, id: 2, voters: [1, 2, 3], appliedIndex: 0n },
    storage,
    tickMs: 100,
    ports: memoryDriverPorts(storage, writes, (run) => run()),
    application: { apply: () => {}, observe: () => {} },
    onFatal: (error) => fatal.push(error),
    onMessageRefused: (reason) => refused.push(reason),
  });
  return { driver, writes, refused, fatal };
}

const logEntry = (lsn: bigint, term: bigint, withTxn = true): LogEntry => ({
  lsn,
  term,
  txn: withTxn ? { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: "k", value: Buffer.alloc(0), delta: 0n }] } : undefined,
  commitTimeNs: 0n,
  clientId: "c",
  clientSeq: 1n,
});

const appendOf = (data: Uint8Array): Message => ({
  type: "append",
  from: 1,
  to: 2,
  term: 1n,
  prevIndex: 0n,
  prevTerm: 0n,
  entries: [{ index: 1n, term: 1n, kind: "normal", data }],
  commit: 0n,
});

describe("RaftDriver refuses appends whose entries carry no LogEntry for their index and term", () => {
  it.each([
    ["garbage", Uint8Array.from([0xff, 1, 2, 3]), /is not a LogEntry/],
    ["another LSN", encodeEntryPayload(logEntry(7n, 1n)), /carries LogEntry 7\/1/],
    ["another term", encodeEntryPayload(logEntry(1n, 2n)), /carries LogEntry 1\/2/],
    ["no transaction", encodeEntryPayload(logEntry(1n, 1n, false)), /no transaction/],
  ])("%s: refused, counted, nothing written, the driver keeps running", (_name, data, reason) => {
    const { driver, writes, refused, fatal } = follower();
    driver.start();
    driver.step(appendOf(data));
    expect(refused).toEqual([expect.stringMatching(reason)]);
    expect(driver.messagesRefused).toBe(1);
    expect(writes).toEqual([]);
    expect(fatal).toEqual([]);
    // The same append with the right payload is taken.
    driver.step(appendOf(encodeEntryPayload(logEntry(1n, 1n))));
    expect(writes.map((entries) => entries.map((entry) => entry.index))).toEqual([[1n]]);
    expect(driver.messagesRefused).toBe(1);
    driver.stop();
  });
});
