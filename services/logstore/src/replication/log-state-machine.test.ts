import { MutationKind, type LogEntry } from "@logplayer/proto";
import type { Entry } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import { DedupeTable } from "../dedupe-table";
import { LogStateMachine, type AppendFailure, type AppendWaiter } from "./log-state-machine";

// The log state machine alone: no WAL, no Raft node, no timers. Entries are built as Raft would commit them.

function normalEntry(index: bigint, term: bigint, clientId: string, clientSeq: bigint): Entry {
  const entry: LogEntry = {
    lsn: index,
    term,
    commitTimeNs: 1n,
    clientId,
    clientSeq,
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `k${index}`, value: Buffer.from("v"), delta: 0n }] },
  };
  return { index, term, kind: "normal", data: encodeEntryPayload(entry) };
}

function noop(index: bigint, term: bigint): Entry {
  return { index, term, kind: "leader-noop", data: new Uint8Array(0) };
}

interface RecordingWaiter extends AppendWaiter {
  readonly outcomes: (string | { lsn: bigint; duplicate: boolean })[];
}

function waiter(): RecordingWaiter {
  const outcomes: RecordingWaiter["outcomes"] = [];
  return {
    outcomes,
    committed: (lsn, duplicate) => outcomes.push({ lsn, duplicate }),
    failed: (reason: AppendFailure) => outcomes.push(reason),
  };
}

/** A state machine leading term `term` whose no-op sits at `noopLsn` and is applied. */
function readyLeader(term = 2n, noopLsn = 1n): LogStateMachine {
  const machine = new LogStateMachine(new DedupeTable({ clientsMax: 10, seqsPerClientMax: 10 }), noopLsn - 1n, 4);
  machine.observe({ role: "leader", term, lastIndex: noopLsn });
  machine.apply([noop(noopLsn, term)]);
  expect(machine.leaderReady).toBe(true);
  return machine;
}

describe("LogStateMachine", () => {
  test("keeps appends out until the new leader's no-op is applied, then lets the waiters through", () => {
    const machine = new LogStateMachine(new DedupeTable({ clientsMax: 10, seqsPerClientMax: 10 }), 0n, 4);
    const gate: string[] = [];
    machine.observe({ role: "leader", term: 1n, lastIndex: 1n });
    expect(machine.leaderReady).toBe(false);
    expect(machine.waitLeaderReady({ ready: () => gate.push("ready"), failed: (reason) => gate.push(reason) })).toBe(true);
    expect(gate).toEqual([]);
    machine.apply([noop(1n, 1n)]);
    expect(gate).toEqual(["ready"]);
    expect(machine.leaderReady).toBe(true);
  });

  test("bounds the callers waiting at the gate", () => {
    const machine = new LogStateMachine(new DedupeTable({ clientsMax: 10, seqsPerClientMax: 10 }), 0n, 2);
    machine.observe({ role: "leader", term: 1n, lastIndex: 1n });
    const gateWaiter = { ready: () => {}, failed: () => {} };
    expect(machine.waitLeaderReady(gateWaiter)).toBe(true);
    expect(machine.waitLeaderReady(gateWaiter)).toBe(true);
    expect(machine.waitLeaderReady(gateWaiter)).toBe(false);
  });

  test("answers an applied append, then calls its retry a duplicate with the same LSN", () => {
    const machine = readyLeader();
    const first = waiter();
    expect(machine.verdict({ clientId: "c", clientSeq: 1n }, first)).toEqual({ kind: "new" });
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n }, first);
    machine.apply([normalEntry(2n, 2n, "c", 1n)]);
    expect(first.outcomes).toEqual([{ lsn: 2n, duplicate: false }]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n }, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
    expect(machine.pendingCount).toBe(0);
  });

  test("a retry of an append still in flight joins it and gets its outcome, marked duplicate", () => {
    const machine = readyLeader();
    const original = waiter();
    const retry = waiter();
    machine.verdict({ clientId: "c", clientSeq: 7n }, original);
    machine.track(2n, 2n, { clientId: "c", clientSeq: 7n }, original);
    expect(machine.verdict({ clientId: "c", clientSeq: 7n }, retry)).toEqual({ kind: "joined-in-flight", lsn: 2n });
    machine.apply([normalEntry(2n, 2n, "c", 7n)]);
    expect(original.outcomes).toEqual([{ lsn: 2n, duplicate: false }]);
    expect(retry.outcomes).toEqual([{ lsn: 2n, duplicate: true }]);
  });

  test("anonymous appends are never deduplicated", () => {
    const machine = readyLeader();
    const first = waiter();
    machine.track(2n, 2n, { clientId: "", clientSeq: 0n }, first);
    expect(machine.verdict({ clientId: "", clientSeq: 0n }, waiter())).toEqual({ kind: "new" });
    machine.apply([normalEntry(2n, 2n, "", 0n)]);
    expect(machine.verdict({ clientId: "", clientSeq: 0n }, waiter())).toEqual({ kind: "new" });
  });

  test("an entry of another term at the append's LSN fails it as overwritten", () => {
    const machine = readyLeader(2n, 1n);
    const append = waiter();
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n }, append);
    // A later leader (term 3) committed its own entry at LSN 2.
    machine.apply([normalEntry(2n, 3n, "d", 1n)]);
    expect(append.outcomes).toEqual(["overwritten"]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n }, waiter())).toEqual({ kind: "new" });
  });

  test("losing leadership fails every waiter and closes the gate", () => {
    const machine = readyLeader();
    const append = waiter();
    const retry = waiter();
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n }, append);
    machine.verdict({ clientId: "c", clientSeq: 1n }, retry);
    expect(machine.observe({ role: "follower", term: 3n, lastIndex: 2n })).toEqual({ kind: "lost-leadership", term: 3n });
    expect(append.outcomes).toEqual(["leadership-lost"]);
    expect(retry.outcomes).toEqual(["leadership-lost"]);
    expect(machine.leaderReady).toBe(false);
    // Once the entry commits under the next leader, it is a duplicate.
    machine.apply([normalEntry(2n, 2n, "c", 1n)]);
    expect(append.outcomes).toEqual(["leadership-lost"]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n }, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
  });

  test("a gate waiter added before the win is observed fails if the node steps down first", () => {
    const machine = new LogStateMachine(new DedupeTable({ clientsMax: 10, seqsPerClientMax: 10 }), 0n, 4);
    const gate: string[] = [];
    machine.waitLeaderReady({ ready: () => gate.push("ready"), failed: (reason) => gate.push(reason) });
    expect(machine.observe({ role: "follower", term: 2n, lastIndex: 1n })).toBeUndefined();
    expect(gate).toEqual(["leadership-lost"]);
  });

  test("refuses seqs older than the client's window", () => {
    const machine = new LogStateMachine(new DedupeTable({ clientsMax: 10, seqsPerClientMax: 2 }), 0n, 4);
    machine.apply([normalEntry(1n, 1n, "c", 1n), normalEntry(2n, 1n, "c", 2n), normalEntry(3n, 1n, "c", 3n)]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n }, waiter())).toEqual({ kind: "too-old", oldestSeq: 2n });
  });

  test("applies strictly in order", () => {
    const machine = readyLeader();
    expect(() => machine.apply([noop(3n, 2n)])).toThrow(/apply of 3 after 1/);
  });
});
