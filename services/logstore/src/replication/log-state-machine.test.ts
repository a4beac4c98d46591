import { seededRandom } from "@logplayer/common";
import { MutationKind, type LogEntry } from "@logplayer/proto";
import type { Entry } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import { rebuildDedupeTable } from "../dedupe-rebuild";
import { DEFAULT_DEDUPE_LIMITS, DedupeTable, type DedupeLimits } from "../dedupe-table";
import { LogStateMachine, type AppendFailure, type AppendIdentity, type AppendVerdict, type AppendWaiter } from "./log-state-machine";
import { toLogEntry } from "./wal-storage";

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

/** The entry RegisterClient appends: the client id, seq 0, a transaction without mutations. */
function registrationEntry(index: bigint, term: bigint, clientId: string): Entry {
  const entry: LogEntry = { lsn: index, term, commitTimeNs: 0n, clientId, clientSeq: 0n, txn: { mutations: [] } };
  return { index, term, kind: "normal", data: encodeEntryPayload(entry) };
}

function limits(overrides: Partial<DedupeLimits> = {}): DedupeLimits {
  return { ...DEFAULT_DEDUPE_LIMITS, clientsMax: 10, seqsPerClientMax: 10, ...overrides };
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
  const machine = new LogStateMachine(new DedupeTable(limits()), noopLsn - 1n, 4);
  machine.observe({ role: "leader", term, lastIndex: noopLsn });
  machine.apply([noop(noopLsn, term)]);
  expect(machine.leaderReady).toBe(true);
  return machine;
}

describe("LogStateMachine", () => {
  test("keeps appends out until the new leader's no-op is applied, then lets the waiters through", () => {
    const machine = new LogStateMachine(new DedupeTable(limits()), 0n, 4);
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
    const machine = new LogStateMachine(new DedupeTable(limits()), 0n, 2);
    machine.observe({ role: "leader", term: 1n, lastIndex: 1n });
    const gateWaiter = { ready: () => {}, failed: () => {} };
    expect(machine.waitLeaderReady(gateWaiter)).toBe(true);
    expect(machine.waitLeaderReady(gateWaiter)).toBe(true);
    expect(machine.waitLeaderReady(gateWaiter)).toBe(false);
  });

  test("answers an applied append, then calls its retry a duplicate with the same LSN", () => {
    const machine = readyLeader();
    const first = waiter();
    expect(machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, first)).toEqual({ kind: "new" });
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n, sessionLsn: 0n }, first);
    machine.apply([normalEntry(2n, 2n, "c", 1n)]);
    expect(first.outcomes).toEqual([{ lsn: 2n, duplicate: false }]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
    expect(machine.pendingCount).toBe(0);
  });

  test("a retry of an append still in flight joins it and gets its outcome, marked duplicate", () => {
    const machine = readyLeader();
    const original = waiter();
    const retry = waiter();
    machine.verdict({ clientId: "c", clientSeq: 7n, sessionLsn: 0n }, original);
    machine.track(2n, 2n, { clientId: "c", clientSeq: 7n, sessionLsn: 0n }, original);
    expect(machine.verdict({ clientId: "c", clientSeq: 7n, sessionLsn: 0n }, retry)).toEqual({ kind: "joined-in-flight", lsn: 2n });
    machine.apply([normalEntry(2n, 2n, "c", 7n)]);
    expect(original.outcomes).toEqual([{ lsn: 2n, duplicate: false }]);
    expect(retry.outcomes).toEqual([{ lsn: 2n, duplicate: true }]);
  });

  test("anonymous appends are never deduplicated", () => {
    const machine = readyLeader();
    const first = waiter();
    machine.track(2n, 2n, { clientId: "", clientSeq: 0n, sessionLsn: 0n }, first);
    expect(machine.verdict({ clientId: "", clientSeq: 0n, sessionLsn: 0n }, waiter())).toEqual({ kind: "new" });
    machine.apply([normalEntry(2n, 2n, "", 0n)]);
    expect(machine.verdict({ clientId: "", clientSeq: 0n, sessionLsn: 0n }, waiter())).toEqual({ kind: "new" });
  });

  test("an entry of another term at the append's LSN fails it as overwritten", () => {
    const machine = readyLeader(2n, 1n);
    const append = waiter();
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n, sessionLsn: 0n }, append);
    // A later leader (term 3) committed its own entry at LSN 2.
    machine.apply([normalEntry(2n, 3n, "d", 1n)]);
    expect(append.outcomes).toEqual(["overwritten"]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, waiter())).toEqual({ kind: "new" });
  });

  test("losing leadership fails every waiter and closes the gate", () => {
    const machine = readyLeader();
    const append = waiter();
    const retry = waiter();
    machine.track(2n, 2n, { clientId: "c", clientSeq: 1n, sessionLsn: 0n }, append);
    machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, retry);
    expect(machine.observe({ role: "follower", term: 3n, lastIndex: 2n })).toEqual({ kind: "lost-leadership", term: 3n });
    expect(append.outcomes).toEqual(["leadership-lost"]);
    expect(retry.outcomes).toEqual(["leadership-lost"]);
    expect(machine.leaderReady).toBe(false);
    // Once the entry commits under the next leader, it is a duplicate.
    machine.apply([normalEntry(2n, 2n, "c", 1n)]);
    expect(append.outcomes).toEqual(["leadership-lost"]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
  });

  test("a gate waiter added before the win is observed fails if the node steps down first", () => {
    const machine = new LogStateMachine(new DedupeTable(limits()), 0n, 4);
    const gate: string[] = [];
    machine.waitLeaderReady({ ready: () => gate.push("ready"), failed: (reason) => gate.push(reason) });
    expect(machine.observe({ role: "follower", term: 2n, lastIndex: 1n })).toBeUndefined();
    expect(gate).toEqual(["leadership-lost"]);
  });

  test("refuses seqs older than the client's window", () => {
    const machine = new LogStateMachine(new DedupeTable(limits({ seqsPerClientMax: 2 })), 0n, 4);
    machine.apply([normalEntry(1n, 1n, "c", 1n), normalEntry(2n, 1n, "c", 2n), normalEntry(3n, 1n, "c", 3n)]);
    expect(machine.verdict({ clientId: "c", clientSeq: 1n, sessionLsn: 0n }, waiter())).toEqual({ kind: "too-old", oldestSeq: 2n });
  });

  test("applies strictly in order", () => {
    const machine = readyLeader();
    expect(() => machine.apply([noop(3n, 2n)])).toThrow(/apply of 3 after 1/);
  });

  test("without registration, seq 1 opens a session (seqs pipelined behind it too); any other seq without one is refused", () => {
    const machine = readyLeader();
    const id = (clientSeq: bigint): AppendIdentity => ({ clientId: "c", clientSeq, sessionLsn: 0n });
    expect(machine.verdict(id(2n), waiter())).toEqual({ kind: "session-expired" });
    expect(machine.verdict(id(1n), waiter())).toEqual({ kind: "new" });
    machine.track(2n, 2n, id(1n), waiter());
    // Seq 1 is in flight: seq 2 rides behind it in the session it opens.
    expect(machine.verdict(id(2n), waiter())).toEqual({ kind: "new" });
    machine.track(3n, 2n, id(2n), waiter());
    machine.apply([normalEntry(2n, 2n, "c", 1n), normalEntry(3n, 2n, "c", 2n)]);
    expect(machine.verdict(id(2n), waiter())).toEqual({ kind: "duplicate", lsn: 3n });
    expect(machine.verdict(id(9n), waiter())).toEqual({ kind: "new" });
  });

  test("without registration, a retry of seq 1 after other clients evicted its session is refused, not a new first append", () => {
    const machine = new LogStateMachine(new DedupeTable(limits({ clientsMax: 3, endedClientsMax: 2 })), 0n, 4);
    machine.apply([normalEntry(1n, 1n, "a", 1n)]);
    const retry: AppendIdentity = { clientId: "a", clientSeq: 1n, sessionLsn: 0n };
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "duplicate", lsn: 1n });
    machine.apply(["x", "y", "z"].map((other, i) => normalEntry(BigInt(2 + i), 1n, other, 1n)));
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "session-expired" });
    // A client id whose session never ended still opens one with seq 1.
    expect(machine.verdict({ ...retry, clientId: "fresh" }, waiter())).toEqual({ kind: "new" });
    // Two more endings push "a" out of the bounded memory of ended ids: then seq 1 opens a session again (documented gap).
    machine.apply(["v", "w"].map((other, i) => normalEntry(BigInt(5 + i), 1n, other, 1n)));
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "new" });
  });

  test("a registered client's retry after other clients evicted its session is refused, never new (issue scenario 3)", () => {
    const machine = new LogStateMachine(new DedupeTable(limits({ clientsMax: 3 })), 0n, 4);
    machine.apply([registrationEntry(1n, 1n, "a"), normalEntry(2n, 1n, "a", 1n)]);
    const retry: AppendIdentity = { clientId: "a", clientSeq: 1n, sessionLsn: 1n };
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
    machine.apply(["x", "y", "z"].map((other, i) => normalEntry(BigInt(3 + i), 1n, other, 1n)));
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "session-expired" });
    expect(machine.verdict({ ...retry, clientSeq: 2n }, waiter())).toEqual({ kind: "session-expired" });
    expect(machine.locate(retry)).toEqual({ kind: "no-session" });
    // A new registration opens a new session; the old session's retries still do not match it.
    machine.apply([registrationEntry(6n, 1n, "a")]);
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "session-expired" });
    expect(machine.verdict({ ...retry, sessionLsn: 6n, clientSeq: 2n }, waiter())).toEqual({ kind: "new" });
  });

  test("a session idle for more than sessionIdleEntriesMax entries expires, counting no-ops; the age is in LSNs", () => {
    const machine = new LogStateMachine(new DedupeTable(limits({ sessionIdleEntriesMax: 3n })), 0n, 4);
    machine.apply([registrationEntry(1n, 1n, "a"), normalEntry(2n, 1n, "a", 1n), noop(3n, 2n), noop(4n, 2n), noop(5n, 2n)]);
    const retry: AppendIdentity = { clientId: "a", clientSeq: 1n, sessionLsn: 1n };
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "duplicate", lsn: 2n });
    expect(machine.locate({ ...retry, clientSeq: 2n })).toEqual({ kind: "absent" });
    machine.apply([normalEntry(6n, 2n, "", 0n)]);
    expect(machine.verdict(retry, waiter())).toEqual({ kind: "session-expired" });
    expect(machine.verdict({ ...retry, clientSeq: 2n }, waiter())).toEqual({ kind: "session-expired" });
  });

  test("a follower that applied the log, then leads, and a table rebuilt from the log give every verdict the leader gives", async () => {
    const dedupeLimits = limits({ clientsMax: 4, seqsPerClientMax: 3, sessionIdleEntriesMax: 12n });
    const live = new LogStateMachine(new DedupeTable(dedupeLimits), 0n, 4);
    // A follower applies what commits, decoding each entry; the leader knows its own proposals' identities.
    const follower = new LogStateMachine(new DedupeTable(dedupeLimits), 0n, 4);
    live.observe({ role: "leader", term: 1n, lastIndex: 1n });
    const log: Entry[] = [noop(1n, 1n)];
    live.apply(log);
    follower.apply(log);
    // Registrations, appends (some retried), anonymous appends and other leaders' no-ops, from a seeded sequence.
    const random = seededRandom(7);
    const next = (n: number): number => Math.floor(random() * n);
    const sessions = new Map<string, bigint>();
    const seqs = new Map<string, bigint>();
    for (let i = 0; i < 300; i++) {
      const index = BigInt(log.length + 1);
      const client = `c${next(7)}`;
      const roll = next(10);
      let entry: Entry;
      if (roll === 0 || !sessions.has(client)) {
        entry = registrationEntry(index, 1n, client);
        sessions.set(client, index);
      } else if (roll === 1) {
        entry = normalEntry(index, 1n, "", 0n);
      } else if (roll === 2) {
        entry = noop(index, 1n);
      } else {
        const seq = (seqs.get(client) ?? 0n) + 1n;
        const identity: AppendIdentity = { clientId: client, clientSeq: seq, sessionLsn: sessions.get(client)! };
        if (live.verdict(identity, waiter()).kind !== "new") continue;
        seqs.set(client, seq);
        entry = normalEntry(index, 1n, client, seq);
        live.track(index, 1n, identity, waiter());
      }
      log.push(entry);
      live.apply([entry]);
      follower.apply([entry]);
    }
    const rebuilt = new DedupeTable(dedupeLimits);
    const wal = {
      firstLsn: 1n,
      readRange: (from: bigint, to: bigint, _bytesMax: number, entriesMax: number) =>
        Promise.resolve(log.slice(Number(from) - 1, Math.min(Number(to), Number(from) - 1 + entriesMax)).map((e) => toLogEntry(e).entry)),
    };
    await rebuildDedupeTable(wal, BigInt(log.length), rebuilt);
    const restarted = new LogStateMachine(rebuilt, BigInt(log.length), 4);
    restarted.observe({ role: "leader", term: 2n, lastIndex: BigInt(log.length + 1) });
    restarted.apply([noop(BigInt(log.length + 1), 2n)]);
    live.apply([noop(BigInt(log.length + 1), 2n)]);
    follower.observe({ role: "leader", term: 2n, lastIndex: BigInt(log.length + 1) });
    follower.apply([noop(BigInt(log.length + 1), 2n)]);
    const verdicts = (machine: LogStateMachine): AppendVerdict[] => {
      const all: AppendVerdict[] = [];
      for (let c = 0; c < 7; c++) {
        for (const sessionLsn of [0n, ...new Set(sessions.values())]) {
          for (let seq = 1n; seq <= 40n; seq++) all.push(machine.verdict({ clientId: `c${c}`, clientSeq: seq, sessionLsn }, waiter()));
        }
      }
      return all;
    };
    const expected = verdicts(live);
    expect(new Set(expected.map((v) => v.kind))).toEqual(new Set(["new", "duplicate", "too-old", "session-expired"]));
    expect(verdicts(restarted)).toEqual(expected);
    expect(verdicts(follower)).toEqual(expected);
    expect(rebuilt.sessionsEnded.evicted + rebuilt.sessionsEnded.expired).toBeGreaterThan(0);
  });
});
