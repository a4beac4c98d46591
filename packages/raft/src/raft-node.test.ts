import { DEFAULT_RAFT_CONFIG, validateRaftConfig } from "./config";
import { RaftError } from "./errors";
import { RaftNode } from "./raft-node";
import { MemoryStorage, entryBytes } from "./storage";
import { Harness, entriesWithTerms } from "./test-harness";
import type { AppendMessage, AppendResponseMessage, Message } from "./types";

const hardState = (term: number, commit: number, vote = 0) => ({ term: BigInt(term), vote, commit: BigInt(commit) });
const isAppendTo = (to: number) => (message: Message) => message.type === "append" && message.to === to;

describe("config", () => {
  const base = { ...DEFAULT_RAFT_CONFIG, id: 1, voters: [1, 2, 3], randomInt: () => 0 };

  test("accepts the defaults", () => {
    expect(() => validateRaftConfig(base)).not.toThrow();
  });

  test.each([
    ["electionTicks <= heartbeatTicks", { electionTicks: 2, heartbeatTicks: 2 }, /electionTicks/],
    ["id not a voter", { id: 4 }, /not among voters/],
    ["duplicate voters", { voters: [1, 1, 2] }, /duplicate/],
    ["zero inflight window", { inflightMessagesMax: 0 }, /inflightMessagesMax/],
    ["zero batch", { entriesPerMessageMax: 0 }, /entriesPerMessageMax/],
    ["negative bytes", { bytesPerMessageMax: -1 }, /bytesPerMessageMax/],
  ])("rejects %s", (_name, change, pattern) => {
    expect(() => validateRaftConfig({ ...base, ...change })).toThrow(pattern);
    expect(() => new RaftNode({ ...base, ...change }, new MemoryStorage())).toThrow(pattern);
    const error: unknown = (() => {
      try {
        validateRaftConfig({ ...base, ...change });
      } catch (err: unknown) {
        return err;
      }
      return undefined;
    })();
    // The core's own error, with no transport code: the adapter maps it.
    expect(RaftError.is(error) && error.code).toBe("invalid-config");
  });

  test("storage below its first index throws a RaftError 'compacted'", () => {
    const storage = new MemoryStorage();
    let error: unknown;
    try {
      storage.entries(0n, 1n, 1024);
    } catch (err: unknown) {
      error = err;
    }
    expect(RaftError.is(error) && error.code).toBe("compacted");
    expect(RaftError.is(new Error("not ours"))).toBe(false);
  });
});

describe("election", () => {
  test("a node whose timeout elapses first is elected and commits its no-op everywhere", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    expect(cluster.raft(1).status()).toMatchObject({ role: "leader", term: 1n, commit: 1n });
    for (const id of [2, 3]) {
      expect(cluster.raft(id).status()).toMatchObject({ role: "follower", leader: 1, term: 1n, vote: 1, commit: 1n });
      expect(cluster.node(id).applied.map((entry) => entry.kind)).toEqual(["leader-noop"]);
    }
  });

  test("the vote is in the Ready that carries the vote response, flagged must-sync", () => {
    const cluster = new Harness(3);
    cluster.tick(1, DEFAULT_RAFT_CONFIG.electionTicks);
    cluster.stabilize((message) => message.type === "pre-vote" || message.type === "pre-vote-response");
    cluster.deliverOne((message) => message.type === "vote" && message.to === 2);
    const ready = cluster.node(2).readies.at(-1);
    expect(ready?.hardState).toEqual(hardState(1, 0, 1));
    expect(ready?.hardStateMustSync).toBe(true);
    expect(ready?.messages).toEqual([expect.objectContaining({ type: "vote-response", reject: false, to: 1 })]);
  });

  test("a candidate with a less up-to-date log is refused", () => {
    const cluster = new Harness(
      3,
      {},
      {
        1: { hardState: hardState(1, 0), entries: entriesWithTerms([1]) },
        2: { hardState: hardState(2, 0), entries: entriesWithTerms([1, 2]) },
        3: { hardState: hardState(2, 0), entries: entriesWithTerms([1, 2]) },
      },
    );
    cluster.elect(1);
    expect(cluster.raft(1).status().role).not.toBe("leader");
    cluster.elect(2);
    expect(cluster.raft(2).status().role).toBe("leader");
  });

  test("a follower refuses proposals and names the leader", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    expect(cluster.propose(2)).toEqual({ ok: false, reason: "not-leader", leaderHint: 1 });
    expect(cluster.propose(1)).toEqual({ ok: true, index: 2n, term: 1n });
  });

  test("a leader refuses proposals beyond uncommittedEntriesMax", () => {
    const cluster = new Harness(3, { uncommittedEntriesMax: 3 });
    cluster.elect(1);
    cluster.isolated.add(2).add(3);
    const results = [1, 2, 3, 4].map(() => cluster.propose(1).ok);
    expect(results).toEqual([true, true, true, false]);
  });
});

describe("pre-vote", () => {
  function partitionAndReturn(preVote: boolean): Harness {
    const cluster = new Harness(3, { preVote });
    cluster.elect(1);
    cluster.isolated.add(3);
    // Node 3 times out again and again while cut off.
    cluster.tick(3, DEFAULT_RAFT_CONFIG.electionTicks * 20);
    cluster.stabilize();
    cluster.isolated.delete(3);
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    return cluster;
  }

  test("a partitioned node rejoining does not disrupt the leader", () => {
    const cluster = partitionAndReturn(true);
    expect(cluster.raft(3).status()).toMatchObject({ term: 1n, role: "follower", leader: 1 });
    expect(cluster.raft(1).status()).toMatchObject({ term: 1n, role: "leader" });
  });

  test("without pre-vote the same node inflates its term and deposes the leader", () => {
    const cluster = partitionAndReturn(false);
    expect(cluster.raft(3).status().term).toBeGreaterThan(1n);
    expect(cluster.raft(1).status().term).toBeGreaterThan(1n);
  });
});

describe("log replication", () => {
  test("entries commit on a majority and are applied in order everywhere", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    for (const byte of [10, 11, 12]) cluster.propose(1, new Uint8Array([byte]));
    cluster.stabilize();
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    for (const id of [1, 2, 3]) {
      expect(cluster.raft(id).status().commit).toBe(4n);
      expect(cluster.node(id).applied.map((entry) => entry.data[0])).toEqual([undefined, 10, 11, 12]);
    }
  });

  test("the leader's own entry counts only once its storage reports it durable", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    cluster.node(1).autoPersist = false;
    cluster.isolated.add(3);
    const result = cluster.propose(1);
    cluster.stabilize();
    // Node 2 holds it durably, the leader only in memory: one durable copy of three.
    expect(cluster.raft(1).progressOf(2)?.match).toBe(2n);
    expect(cluster.raft(1).status().commit).toBe(1n);
    cluster.persistNow(1);
    expect(result.ok && cluster.raft(1).status().commit).toBe(2n);
  });

  test("a follower acknowledges only what it has persisted", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    cluster.node(2).autoPersist = false;
    cluster.isolated.add(3);
    cluster.propose(1);
    cluster.stabilize();
    expect(cluster.raft(1).progressOf(2)?.match).toBe(1n);
    expect(cluster.raft(1).status().commit).toBe(1n);
    cluster.persistNow(2);
    cluster.stabilize();
    expect(cluster.raft(1).status().commit).toBe(2n);
  });

  test("a conflicting uncommitted suffix is truncated and replaced", () => {
    const cluster = new Harness(
      3,
      {},
      {
        1: { hardState: hardState(2, 1), entries: entriesWithTerms([1, 2, 2]) },
        2: { hardState: hardState(1, 1), entries: entriesWithTerms([1, 1, 1, 1]) },
        3: { hardState: hardState(2, 1), entries: entriesWithTerms([1, 2]) },
      },
    );
    cluster.elect(1);
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    const leaderLog = cluster
      .node(1)
      .storage.allEntries()
      .map((entry) => [entry.index, entry.term]);
    expect(leaderLog).toEqual([
      [1n, 1n],
      [2n, 2n],
      [3n, 2n],
      [4n, 3n],
    ]);
    expect(
      cluster
        .node(2)
        .storage.allEntries()
        .map((entry) => [entry.index, entry.term]),
    ).toEqual(leaderLog);
    expect(
      cluster
        .node(2)
        .readies.map((ready) => ready.truncateAfter)
        .filter((after) => after !== undefined),
    ).toEqual([1n]);
    expect(cluster.raft(2).status().commit).toBe(4n);
  });

  test("fast backtracking skips a whole conflicting term in one rejection", () => {
    const conflictingLength = 50;
    const cluster = new Harness(
      3,
      {},
      {
        1: { hardState: hardState(2, 1), entries: entriesWithTerms([1, ...Array<number>(conflictingLength).fill(2)]) },
        2: { hardState: hardState(1, 1), entries: entriesWithTerms([1, ...Array<number>(conflictingLength).fill(1)]) },
        3: { hardState: hardState(2, 1), entries: entriesWithTerms([1]) },
      },
    );
    cluster.elect(1);
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    const rejections = cluster.delivered.filter(
      (message): message is AppendResponseMessage => message.type === "append-response" && message.from === 2 && message.reject,
    );
    // One entry per round trip would need 50 rejections.
    expect(rejections).toHaveLength(1);
    expect(cluster.node(2).storage.lastIndex()).toBe(BigInt(conflictingLength + 2));
    expect(cluster.node(2).storage.term(BigInt(conflictingLength + 1))).toBe(2n);
  });
});

describe("§5.4.2: a leader commits by counting only entries of its own term (Raft paper, Figure 8)", () => {
  // Node 1 led term 2 and wrote index 2 alone; it now leads term 3 with a no-op at index 3.
  // Once node 2 holds index 2, a majority has it, yet it must not commit: a node holding a
  // term-3 entry at index 2 could still be elected and overwrite it (Figure 8 (d)).
  function replicateOldEntry(unsafe: boolean): Harness {
    const cluster = new Harness(
      3,
      { entriesPerMessageMax: 1, testOnlyFaults: { unsafeCommitPreviousTermEntries: unsafe } },
      {
        1: { hardState: hardState(2, 1), entries: entriesWithTerms([1, 2]) },
        2: { hardState: hardState(2, 1), entries: entriesWithTerms([1]) },
        3: { hardState: hardState(2, 1), entries: entriesWithTerms([1]) },
      },
    );
    cluster.isolated.add(3);
    cluster.tick(1, DEFAULT_RAFT_CONFIG.electionTicks);
    // Hold back the term-3 entry once node 2 could accept it; the first probe carrying it is refused anyway.
    const holdBack = (message: Message): boolean =>
      isAppendTo(2)(message) && (message as AppendMessage).entries[0]?.index === 3n && cluster.node(2).storage.lastIndex() >= 2n;
    cluster.stabilize((message) => !holdBack(message));
    expect(cluster.raft(1).status()).toMatchObject({ role: "leader", term: 3n });
    expect(cluster.raft(1).progressOf(2)?.match).toBe(2n);
    return cluster;
  }

  test("index 2 (term 2) on a majority is not committed until the term-3 entry is", () => {
    const cluster = replicateOldEntry(false);
    expect(cluster.raft(1).status()).toMatchObject({ role: "leader", term: 3n, commit: 1n });
    cluster.stabilize();
    expect(cluster.raft(1).status().commit).toBe(3n);
  });

  test("the test-only fault unsafeCommitPreviousTermEntries commits it at once", () => {
    const cluster = replicateOldEntry(true);
    expect(cluster.raft(1).status().commit).toBe(2n);
  });
});

describe("check-quorum", () => {
  test.each([
    [true, "follower"],
    [false, "leader"],
  ])("with checkQuorum=%s a leader cut off from the majority ends up %s", (checkQuorum, role) => {
    const cluster = new Harness(3, { checkQuorum });
    cluster.elect(1);
    cluster.isolated.add(1);
    const roles = new Set<string>();
    for (let round = 0; round < 2 * DEFAULT_RAFT_CONFIG.electionTicks; round++) {
      cluster.tick(1);
      cluster.stabilize();
      roles.add(cluster.raft(1).status().role);
    }
    // Once stepped down it may campaign (pre-vote) on its own timeout; it never leads again alone.
    expect(cluster.raft(1).status().role === "leader" ? "leader" : "follower").toBe(role);
    expect(roles.has("follower")).toBe(role === "follower");
    expect(cluster.raft(1).status().term).toBe(1n);
  });

  test("a leader that hears from the majority stays leader", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    for (let round = 0; round < 5 * DEFAULT_RAFT_CONFIG.electionTicks; round++) {
      cluster.tick(1);
      cluster.stabilize();
    }
    expect(cluster.raft(1).status()).toMatchObject({ role: "leader", term: 1n });
  });
});

describe("pipelining and batching", () => {
  test("at most inflightMessagesMax appends are outstanding per follower", () => {
    const cluster = new Harness(2, { inflightMessagesMax: 3, entriesPerMessageMax: 1 });
    cluster.elect(1);
    for (let count = 0; count < 10; count++) cluster.propose(1);
    const outstanding = cluster.queue.filter(isAppendTo(2)) as AppendMessage[];
    expect(outstanding.map((message) => message.entries.length)).toEqual([1, 1, 1]);
    expect(cluster.raft(1).progressOf(2)).toMatchObject({ state: "replicate", inflight: 3 });
    // Each acknowledgement opens the window for one more.
    cluster.deliverOne(isAppendTo(2));
    cluster.deliverOne((message) => message.type === "append-response");
    expect(cluster.queue.filter(isAppendTo(2))).toHaveLength(3);
    cluster.stabilize();
    expect(cluster.raft(1).status().commit).toBe(11n);
  });

  test("a message carries at most entriesPerMessageMax entries and bytesPerMessageMax bytes", () => {
    const cluster = new Harness(2, { inflightMessagesMax: 1, entriesPerMessageMax: 4, bytesPerMessageMax: 300 });
    cluster.elect(1);
    cluster.propose(1, new Uint8Array(10));
    for (let count = 0; count < 9; count++) cluster.propose(1, new Uint8Array(10));
    for (let count = 0; count < 4; count++) cluster.propose(1, new Uint8Array(200));
    cluster.stabilize();
    const sizes = cluster.delivered.filter(isAppendTo(2)).map((message) => (message as AppendMessage).entries.length);
    expect(Math.max(...sizes)).toBe(4);
    for (const message of cluster.delivered.filter(isAppendTo(2))) {
      const entries = (message as AppendMessage).entries;
      const bytes = entries.reduce((sum, entry) => sum + entryBytes(entry), 0);
      // A single entry above the limit still goes alone; two never exceed it.
      if (entries.length > 1) expect(bytes).toBeLessThanOrEqual(300);
    }
    expect(cluster.delivered.some((message) => isAppendTo(2)(message) && (message as AppendMessage).entries.length === 1)).toBe(true);
    expect(cluster.raft(2).status().lastIndex).toBe(15n);
  });
});

describe("restart", () => {
  test("term, vote and log survive; committed entries are re-applied from appliedIndex", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    cluster.propose(1);
    cluster.stabilize();
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    cluster.restart(2, 1n);
    expect(cluster.raft(2).status()).toMatchObject({ term: 1n, vote: 1, commit: 2n, lastIndex: 2n, role: "follower" });
    cluster.process(2);
    expect(cluster.node(2).applied.map((entry) => entry.index)).toEqual([2n]);
  });

  test("inputs between ready() and advance() are a bug", () => {
    const cluster = new Harness(1);
    const raft = cluster.raft(1);
    raft.tick();
    const ready = raft.ready();
    expect(() => raft.tick()).toThrow(/between ready\(\) and advance\(\)/);
    raft.advance(ready);
  });
});

describe("rejoin after a lost disk", () => {
  /**
   * Issue #12's scenario 1: (1) leads term 1 and commits an entry with (2)
   * while (3) is cut off; then (2) is down and (1) comes back blank. Had (1)
   * forgotten everything, its vote would elect stale (3) and the committed
   * entry would be overwritten.
   */
  function committedOnOneAndTwo(): { cluster: Harness; committed: bigint } {
    const cluster = new Harness(3);
    cluster.elect(1);
    cluster.isolated.add(3);
    const proposal = cluster.propose(1, new Uint8Array([42]));
    cluster.stabilize();
    if (!proposal.ok) throw new Error("proposal refused");
    expect(cluster.raft(1).status().commit).toBe(proposal.index);
    expect(cluster.raft(3).status().lastIndex).toBeLessThan(proposal.index);
    return { cluster, committed: proposal.index };
  }

  /** What the LogStore writes for a blank replica that joins: the peers' highest term with its vote spent, and commit. */
  const rejoinState = (cluster: Harness, id: number) => {
    const max = (values: bigint[]): bigint => values.reduce((a, b) => (a > b ? a : b), 0n);
    const peers = [...cluster.nodes.values()].filter((node) => node.id !== id).map((node) => node.raft.status());
    return { term: max(peers.map((p) => p.term)), vote: id, commit: 0n, rejoinUntil: max(peers.map((p) => p.commit)) };
  };

  test("a rejoining node refuses votes and never campaigns, so a stale candidate cannot win", () => {
    const { cluster } = committedOnOneAndTwo();
    cluster.wipe(1, rejoinState(cluster, 1));
    const deliveredBefore = cluster.delivered.length;
    cluster.isolated.clear();
    cluster.isolated.add(2);
    for (let round = 0; round < 5; round++) {
      cluster.tick(3, DEFAULT_RAFT_CONFIG.electionTicks * 2);
      cluster.tick(1, DEFAULT_RAFT_CONFIG.electionTicks * 2);
      cluster.stabilize();
    }
    expect(cluster.raft(3).status().role).not.toBe("leader");
    expect(cluster.raft(1).status()).toMatchObject({ role: "follower", rejoining: true });
    const afterWipe = cluster.delivered.slice(deliveredBefore);
    const refusals = afterWipe.filter((m) => m.from === 1 && (m.type === "pre-vote-response" || m.type === "vote-response"));
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.every((m) => (m.type === "pre-vote-response" || m.type === "vote-response") && m.reject)).toBe(true);
    expect(afterWipe.some((m) => m.from === 1 && (m.type === "pre-vote" || m.type === "vote"))).toBe(false);
  });

  test("it votes again once it holds a committed entry of the leader's term, with every committed entry", () => {
    const { cluster, committed } = committedOnOneAndTwo();
    const entry = cluster.node(1).storage.allEntries()[Number(committed) - 1];
    cluster.wipe(1, rejoinState(cluster, 1));
    cluster.isolated.clear();
    // (3)'s lease on the old leader runs out first; then (2), the up-to-date one, campaigns.
    cluster.tick(3, DEFAULT_RAFT_CONFIG.electionTicks);
    cluster.stabilize();
    cluster.elect(2);
    expect(cluster.raft(2).status().role).toBe("leader");
    const status = cluster.raft(1).status();
    expect(status).toMatchObject({ role: "follower", leader: 2, rejoining: false });
    expect(cluster.node(1).storage.allEntries()[Number(committed) - 1]).toEqual(entry);
    // The flag's end is durable at once: a restart must not find it set and, worse, not find it cleared too early.
    const flip = cluster.node(1).readies.find((ready) => ready.hardState !== undefined && ready.hardState.rejoinUntil === undefined);
    expect(flip?.hardStateMustSync).toBe(true);
    expect(cluster.node(1).storage.hardState().rejoinUntil).toBeUndefined();
  });

  test("a leader whose match for a follower predates its lost disk probes it again, and it catches up with no new proposal", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    for (let i = 0; i < 3; i++) cluster.propose(1);
    cluster.stabilize();
    const last = cluster.raft(1).status().lastIndex;
    expect(cluster.raft(1).progressOf(3)?.match).toBe(last);
    cluster.wipe(3, { term: cluster.raft(1).status().term, vote: 3, commit: 0n, rejoinUntil: cluster.raft(1).status().commit });
    // Idle leader: only heartbeats, naming a commit beyond the blank log. The rejoining node says where its log ends.
    cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
    cluster.stabilize();
    expect(cluster.delivered.some((m) => m.from === 3 && m.type === "append-response" && m.reject && m.rejoining === true)).toBe(true);
    expect(cluster.raft(3).status()).toMatchObject({ lastIndex: last, durableCommit: last, rejoining: false });
    expect(cluster.raft(1).progressOf(3)?.match).toBe(last);
  });

  /** Node 1, leading `term`, sends node 2 an append; node 2 processes its Readies. */
  const leaderAppendsTo2 =
    (cluster: Harness, term: bigint) =>
    (entries: ReturnType<typeof entriesWithTerms>, prevIndex: bigint, prevTerm: bigint, commit: bigint): void => {
      cluster.raft(2).step({ type: "append", from: 1, to: 2, term, prevIndex, prevTerm, entries, commit });
      cluster.process(2);
    };

  test("reaching the peers' commit index is not enough without a committed entry of the leader's term", () => {
    // Simulator seed 167 with disk wipes: the peers had restarted and reported commit 0 (a commit index is kept
    // lazily), while entries of term 1 had been committed with the wiped node's lost copy.
    const cluster = new Harness(3);
    cluster.wipe(2, { term: 2n, vote: 2, commit: 0n, rejoinUntil: 0n });
    const append = leaderAppendsTo2(cluster, 2n);
    append(entriesWithTerms([1, 1]), 0n, 0n, 2n);
    expect(cluster.raft(2).status()).toMatchObject({ durableCommit: 2n, rejoining: true });
    append(entriesWithTerms([2], 3), 2n, 1n, 3n);
    expect(cluster.raft(2).status()).toMatchObject({ commit: 3n, rejoining: false });
  });

  test("it keeps rejoining until its durable commit reaches the peers' commit index, even in the leader's own term", () => {
    // Simulator seed 11225 with disk wipes: a rejoining node of term 1 that stopped at the first committed term-1
    // entry it held (11) voted for a replica missing entries up to 107, committed in term 1 with its lost copy.
    const cluster = new Harness(3);
    cluster.wipe(2, { term: 1n, vote: 2, commit: 0n, rejoinUntil: 5n });
    const append = leaderAppendsTo2(cluster, 1n);
    append(entriesWithTerms([1, 1, 1]), 0n, 0n, 5n);
    expect(cluster.raft(2).status()).toMatchObject({ commit: 3n, durableCommit: 3n, rejoining: true });
    expect(cluster.queue.some((m) => m.from === 2 && m.type === "append-response" && !m.reject)).toBe(true);
    append(entriesWithTerms([1, 1], 4), 3n, 1n, 5n);
    expect(cluster.raft(2).status()).toMatchObject({ commit: 5n, rejoining: false });
  });
});

describe("snapshots", () => {
  const meta = (index: number, term: number) => ({ index: BigInt(index), term: BigInt(term), voters: [1, 2, 3], learners: [] });
  const snapshotTo = (to: number, index: number, term: number): Message => ({
    type: "snapshot",
    from: 1,
    to,
    term: BigInt(term),
    snapshot: meta(index, term),
  });

  test("a snapshot at or below the commit index is acknowledged at the commit index and not installed", () => {
    const cluster = new Harness(3, {}, { 2: { hardState: hardState(1, 3), entries: entriesWithTerms([1, 1, 1]) } });
    cluster.raft(2).step(snapshotTo(2, 2, 1));
    cluster.process(2);
    expect(cluster.node(2).readies.some((ready) => ready.snapshot !== undefined)).toBe(false);
    expect(cluster.queue).toContainEqual(expect.objectContaining({ type: "append-response", to: 1, reject: false, index: 3n }));
    expect(cluster.node(2).storage.firstIndex()).toBe(1n);
  });

  test("a snapshot whose last entry the log holds commits to it and keeps the log", () => {
    const cluster = new Harness(3, {}, { 2: { hardState: hardState(1, 1), entries: entriesWithTerms([1, 1, 1, 1]) } });
    cluster.raft(2).step(snapshotTo(2, 3, 1));
    cluster.process(2);
    expect(cluster.node(2).readies.some((ready) => ready.snapshot !== undefined)).toBe(false);
    expect(cluster.raft(2).status()).toMatchObject({ commit: 3n, lastIndex: 4n, applied: 3n });
    expect(cluster.node(2).storage.allEntries()).toHaveLength(4);
  });

  test("a snapshot the log does not match replaces the log, is acknowledged only once installed, and counts as applied", () => {
    const cluster = new Harness(3, {}, { 2: { hardState: hardState(1, 1), entries: entriesWithTerms([1, 1, 1]) } });
    cluster.node(2).autoPersist = false;
    cluster.raft(2).step(snapshotTo(2, 5, 2));
    expect(cluster.raft(2).status()).toMatchObject({ commit: 5n, lastIndex: 5n, persistedIndex: 1n });
    const ready = cluster.raft(2).ready();
    expect(ready.snapshot).toEqual(meta(5, 2));
    expect(ready.committedEntries).toEqual([]);
    expect(ready.messages.filter((message) => message.type === "append-response")).toEqual([]);
    cluster.node(2).storage.installSnapshot(ready.snapshot!);
    cluster.raft(2).advance(ready);
    expect(cluster.raft(2).status()).toMatchObject({ persistedIndex: 5n, applied: 5n, durableCommit: 5n });
    const next = cluster.raft(2).ready();
    expect(next.messages).toContainEqual(expect.objectContaining({ type: "append-response", reject: false, index: 5n }));
    cluster.raft(2).advance(next);
  });

  test("a leader sends its snapshot to a follower behind its first index, and replicates after it once acknowledged", () => {
    const cluster = new Harness(3);
    cluster.elect(1);
    cluster.isolated.add(3);
    for (let i = 0; i < 5; i++) cluster.propose(1);
    cluster.stabilize();
    cluster.node(1).storage.compact(meta(4, 1));
    cluster.isolated.delete(3);
    cluster.propose(1);
    for (let i = 0; i < 5; i++) {
      cluster.tick(1, DEFAULT_RAFT_CONFIG.heartbeatTicks);
      cluster.stabilize();
    }
    expect(cluster.delivered).toContainEqual(expect.objectContaining({ type: "snapshot", to: 3, snapshot: meta(4, 1) }));
    expect(cluster.node(3).storage.snapshot()).toEqual(meta(4, 1));
    expect(cluster.raft(3).status()).toMatchObject({ commit: 7n, lastIndex: 7n, applied: 7n });
    expect(cluster.node(3).storage.allEntries()).toEqual(cluster.node(1).storage.allEntries().slice(-3));
    expect(cluster.raft(1).progressOf(3)).toMatchObject({ state: "replicate", match: 7n });
  });

  test("a restart needs the application's state to cover the compacted prefix", () => {
    const storage = new MemoryStorage(hardState(1, 4), entriesWithTerms([1, 1, 1, 1]));
    storage.compact(meta(3, 1));
    const config = { ...DEFAULT_RAFT_CONFIG, id: 1, voters: [1, 2, 3], randomInt: () => 0 };
    expect(() => new RaftNode({ ...config, appliedIndex: 1n }, storage)).toThrow(/below the compacted prefix/);
    expect(new RaftNode({ ...config, appliedIndex: 3n }, storage).status()).toMatchObject({ commit: 4n, applied: 3n });
  });
});
