import { DEFAULT_RAFT_CONFIG, VOTERS_MAX, validateRaftConfig } from "./config";
import { RaftError } from "./errors";
import { CONFIG_CONTEXT_BYTES_MAX, applyConfigChange, decodeConfigChange, encodeConfigChange, makeMembership } from "./membership";
import type { ConfigChange, ConfigChangeType } from "./membership";
import { checkIncomingMessage } from "./message-check";
import { RaftNode } from "./raft-node";
import type { ProposeResult } from "./raft-node";
import { MemoryStorage } from "./storage";
import { Harness } from "./test-harness";
import type { Message, NodeId } from "./types";

function change(type: ConfigChangeType, node: NodeId, context: Uint8Array = new Uint8Array(0)): ConfigChange {
  return { type, node, context };
}

function proposeChange(harness: Harness, id: NodeId, configChange: ConfigChange): ProposeResult {
  const result = harness.raft(id).proposeConfigChange(configChange);
  harness.process(id);
  return result;
}

/** The refusal's reason and its RaftError's code (they must agree). */
function refusal(result: ProposeResult): string {
  if (result.ok) return "accepted";
  if (result.reason === "not-leader" || result.reason === "overloaded") return result.reason;
  expect(RaftError.is(result.error) && result.error.code).toBe(result.reason);
  return result.reason;
}

/** Lets the leader's heartbeat find nodes that missed appends, then delivers until quiet. */
function heartbeatAndStabilize(harness: Harness, leader: NodeId): void {
  harness.tick(leader, DEFAULT_RAFT_CONFIG.heartbeatTicks);
  harness.stabilize();
}

function campaignMessagesFrom(harness: Harness, id: NodeId): Message[] {
  return harness.queue.filter((message) => message.from === id && (message.type === "vote" || message.type === "pre-vote"));
}

describe("config change encoding", () => {
  it("round-trips every change type with its context", () => {
    for (const type of ["add-learner", "promote", "remove"] as const) {
      const original = change(type, 4_000_000_000, new Uint8Array([1, 2, 3]));
      expect(decodeConfigChange(encodeConfigChange(original))).toEqual(original);
    }
    const full = change("add-learner", 7, new Uint8Array(CONFIG_CONTEXT_BYTES_MAX).fill(9));
    expect(decodeConfigChange(encodeConfigChange(full))).toEqual(full);
  });

  it("says why bytes off the network are not a change", () => {
    const good = encodeConfigChange(change("promote", 5, new Uint8Array([1])));
    const patched = (offset: number, value: number): Uint8Array => {
      const bytes = good.slice();
      bytes[offset] = value;
      return bytes;
    };
    expect(decodeConfigChange(good.subarray(0, 7))).toMatch(/shorter than/);
    expect(decodeConfigChange(patched(0, 2))).toMatch(/version 2/);
    expect(decodeConfigChange(patched(1, 9))).toMatch(/type code 9/);
    expect(decodeConfigChange(new Uint8Array([1, 1, 0, 0, 0, 0, 0, 0]))).toMatch(/node 0/);
    expect(decodeConfigChange(good.subarray(0, good.length - 1))).toMatch(/header says/);
    expect(decodeConfigChange(new Uint8Array([...good, 0]))).toMatch(/header says/);
    const tooLong = new Uint8Array(8 + CONFIG_CONTEXT_BYTES_MAX + 1);
    tooLong.set([1, 1, 0, 0, 0, 5, (CONFIG_CONTEXT_BYTES_MAX + 1) >> 8, (CONFIG_CONTEXT_BYTES_MAX + 1) & 0xff]);
    expect(decodeConfigChange(tooLong)).toMatch(/exceeds/);
    expect(() => encodeConfigChange(change("remove", 0))).toThrow(/node id/);
  });

  it("applies changes as total functions: replaying a history from a guessed start converges", () => {
    let membership = makeMembership([1, 2, 3], []);
    membership = applyConfigChange(membership, change("add-learner", 4));
    expect(membership).toEqual({ voters: [1, 2, 3], learners: [4] });
    membership = applyConfigChange(membership, change("promote", 4));
    expect(membership).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    membership = applyConfigChange(membership, change("remove", 2));
    expect(membership).toEqual({ voters: [1, 3, 4], learners: [] });
    // Never no voter at all, whatever the starting guess.
    expect(applyConfigChange(makeMembership([5], []), change("remove", 5))).toEqual({ voters: [5], learners: [] });
  });
});

describe("configuration", () => {
  const base = { ...DEFAULT_RAFT_CONFIG, randomInt: () => 0 };

  it("accepts a joining replica: a learner among the current voters", () => {
    expect(() => validateRaftConfig({ ...base, id: 4, voters: [1, 2, 3], learners: [4] })).not.toThrow();
    const raft = new RaftNode({ ...base, id: 4, voters: [1, 2, 3], learners: [4] }, new MemoryStorage());
    expect(raft.membership()).toEqual({ voters: [1, 2, 3], learners: [4] });
  });

  it.each([
    ["a learner that is also a voter", { id: 1, voters: [1, 2], learners: [2] }, /both a voter and a learner/],
    ["duplicate learners", { id: 1, voters: [1], learners: [2, 2] }, /duplicate learner/],
    ["an id in neither list", { id: 5, voters: [1], learners: [2] }, /not among voters/],
    ["too many learners", { id: 1, voters: [1], learners: Array.from({ length: 10 }, (_, i) => i + 2) }, /learners must hold/],
  ])("refuses %s", (_name, membership, pattern) => {
    expect(() => validateRaftConfig({ ...base, ...membership })).toThrow(pattern);
  });
});

describe("membership changes", () => {
  it("a learner gets the log, is never counted toward a commit and never campaigns", () => {
    const harness = new Harness(3);
    harness.elect(1);
    harness.addLearnerNode(4, [1, 2, 3]);
    expect(proposeChange(harness, 1, change("add-learner", 4))).toMatchObject({ ok: true });
    harness.stabilize();
    heartbeatAndStabilize(harness, 1);
    const leader = harness.raft(1);
    expect(leader.membership()).toEqual({ voters: [1, 2, 3], learners: [4] });
    expect(leader.status()).toMatchObject({ voters: [1, 2, 3], learners: [4] });
    expect(harness.raft(4).status().lastIndex).toBe(leader.status().lastIndex);
    expect(leader.progressOf(4)?.match).toBe(leader.status().lastIndex);

    // With both other voters cut off, the learner's acknowledgement alone must not commit anything.
    harness.isolated.add(2).add(3);
    const proposal = harness.propose(1);
    harness.stabilize();
    if (!proposal.ok) throw new Error("proposal refused");
    expect(harness.raft(4).status().persistedIndex).toBe(proposal.index);
    expect(leader.progressOf(4)?.match).toBe(proposal.index);
    expect(leader.status().commit).toBeLessThan(proposal.index);

    // A learner lets its election timeout pass without campaigning.
    harness.queue.length = 0;
    harness.tick(4, 5 * DEFAULT_RAFT_CONFIG.electionTicks);
    harness.raft(4).campaign();
    harness.process(4);
    expect(harness.raft(4).status().role).toBe("follower");
    expect(campaignMessagesFrom(harness, 4)).toEqual([]);
  });

  it("promotes a learner only once it holds everything committed, and then counts it", () => {
    const harness = new Harness(3);
    harness.elect(1);
    harness.addLearnerNode(4, [1, 2, 3]);
    harness.isolated.add(4);
    expect(proposeChange(harness, 1, change("add-learner", 4))).toMatchObject({ ok: true });
    harness.stabilize();
    expect(refusal(proposeChange(harness, 1, change("promote", 4)))).toBe("learner-not-caught-up");

    harness.isolated.delete(4);
    heartbeatAndStabilize(harness, 1);
    expect(proposeChange(harness, 1, change("promote", 4))).toMatchObject({ ok: true });
    harness.stabilize();
    for (const id of [1, 2, 3, 4]) expect(harness.raft(id).membership()).toEqual({ voters: [1, 2, 3, 4], learners: [] });

    // Four voters: the leader and one other are no longer a majority.
    harness.isolated.add(3).add(4);
    const proposal = harness.propose(1);
    harness.stabilize();
    if (!proposal.ok) throw new Error("proposal refused");
    expect(harness.raft(2).status().persistedIndex).toBe(proposal.index);
    expect(harness.raft(1).status().commit).toBeLessThan(proposal.index);
  });

  it("refuses a change from a follower, before the leader commits in its term, and while one is pending", () => {
    const harness = new Harness(3);
    harness.tick(1, DEFAULT_RAFT_CONFIG.electionTicks);
    for (let step = 0; step < 100 && harness.raft(1).status().role !== "leader"; step++) harness.deliverOne();
    expect(harness.raft(1).status().role).toBe("leader");
    expect(refusal(proposeChange(harness, 1, change("add-learner", 4)))).toBe("leader-term-not-committed");
    harness.stabilize();

    const fromFollower = proposeChange(harness, 2, change("add-learner", 4));
    expect(fromFollower).toEqual({ ok: false, reason: "not-leader", leaderHint: 1 });

    expect(proposeChange(harness, 1, change("add-learner", 4))).toMatchObject({ ok: true });
    expect(refusal(proposeChange(harness, 1, change("add-learner", 5)))).toBe("config-change-pending");
    harness.stabilize();
    expect(proposeChange(harness, 1, change("add-learner", 5))).toMatchObject({ ok: true });
  });

  it("refuses changes that do not apply to the membership", () => {
    const harness = new Harness(3);
    harness.elect(1);
    expect(proposeChange(harness, 1, change("add-learner", 4))).toMatchObject({ ok: true });
    harness.stabilize();
    const cases: [ConfigChange, RegExp][] = [
      [change("add-learner", 4), /already a learner/],
      [change("add-learner", 2), /already a voter/],
      [change("promote", 2), /not a learner/],
      [change("promote", 9), /not a learner/],
      [change("remove", 9), /not a member/],
      [change("add-learner", 5, new Uint8Array(CONFIG_CONTEXT_BYTES_MAX + 1)), /exceeds/],
      [change("add-learner", -1), /node id/],
    ];
    for (const [refused, pattern] of cases) {
      const result = proposeChange(harness, 1, refused);
      expect(refusal(result)).toBe("invalid-config-change");
      if (!result.ok && "error" in result) expect(result.error.message).toMatch(pattern);
    }

    const single = new Harness(1);
    single.elect(1);
    const last = proposeChange(single, 1, change("remove", 1));
    expect(refusal(last)).toBe("invalid-config-change");
    if (!last.ok && "error" in last) expect(last.error.message).toMatch(/last voter/);
  });

  it("refuses more than VOTERS_MAX voters and LEARNERS_MAX learners", () => {
    const full = new Harness(VOTERS_MAX);
    full.elect(1);
    full.addLearnerNode(VOTERS_MAX + 1, full.raft(1).membership().voters);
    expect(proposeChange(full, 1, change("add-learner", VOTERS_MAX + 1))).toMatchObject({ ok: true });
    full.stabilize();
    heartbeatAndStabilize(full, 1);
    const promote = proposeChange(full, 1, change("promote", VOTERS_MAX + 1));
    expect(refusal(promote)).toBe("invalid-config-change");

    const single = new Harness(1);
    single.elect(1);
    for (let learner = 2; learner <= 10; learner++) {
      expect(proposeChange(single, 1, change("add-learner", learner))).toMatchObject({ ok: true });
    }
    expect(single.raft(1).membership().learners).toHaveLength(9);
    const tooMany = proposeChange(single, 1, change("add-learner", 11));
    expect(refusal(tooMany)).toBe("invalid-config-change");
  });

  it("removing a follower: its acknowledgements never count again and it never campaigns", () => {
    const harness = new Harness(3);
    harness.elect(1);
    expect(proposeChange(harness, 1, change("remove", 3))).toMatchObject({ ok: true });
    harness.stabilize();
    for (const id of [1, 2, 3]) expect(harness.raft(id).membership()).toEqual({ voters: [1, 2], learners: [] });
    expect(harness.raft(1).progressOf(3)).toBeUndefined();

    harness.isolated.add(2);
    const proposal = harness.propose(1);
    harness.stabilize();
    if (!proposal.ok) throw new Error("proposal refused");
    // An acknowledgement from the removed node (well formed, as it could send one) does not commit it.
    const ack: Message = {
      type: "append-response",
      from: 3,
      to: 1,
      term: proposal.term,
      reject: false,
      index: proposal.index,
      hintIndex: 0n,
      hintTerm: 0n,
    };
    harness.raft(1).step(ack);
    harness.process(1);
    expect(harness.raft(1).status().commit).toBeLessThan(proposal.index);
    const view = { id: 1, ...harness.raft(1).membership(), lastIndex: harness.raft(1).status().lastIndex };
    expect(checkIncomingMessage(ack, view)).toMatch(/not a peer member/);

    harness.queue.length = 0;
    harness.tick(3, 5 * DEFAULT_RAFT_CONFIG.electionTicks);
    expect(harness.raft(3).status().role).toBe("follower");
    expect(campaignMessagesFrom(harness, 3)).toEqual([]);
  });

  it("removing the leader: it leads until the removal commits, then steps down for good", () => {
    // Without check-quorum the followers vote as soon as they are asked (no leader lease to wait out).
    const harness = new Harness(3, { checkQuorum: false });
    harness.elect(1);
    expect(proposeChange(harness, 1, change("remove", 1))).toMatchObject({ ok: true });
    expect(harness.raft(1).status().role).toBe("leader");
    harness.stabilize();
    expect(harness.raft(1).status().role).toBe("follower");
    for (const id of [1, 2, 3]) expect(harness.raft(id).membership()).toEqual({ voters: [2, 3], learners: [] });

    harness.queue.length = 0;
    harness.tick(1, 5 * DEFAULT_RAFT_CONFIG.electionTicks);
    expect(campaignMessagesFrom(harness, 1)).toEqual([]);
    harness.queue.length = 0;
    harness.elect(2);
    expect(harness.raft(2).status().role).toBe("leader");
    const proposal = harness.propose(2);
    harness.stabilize();
    expect(proposal.ok && harness.raft(3).status().commit === proposal.index).toBe(true);
  });

  it("rolls a change back when a new leader truncates its entry away", () => {
    const harness = new Harness(3, { checkQuorum: false });
    harness.elect(1);
    harness.isolated.add(1);
    expect(proposeChange(harness, 1, change("add-learner", 4))).toMatchObject({ ok: true });
    expect(harness.raft(1).membership()).toEqual({ voters: [1, 2, 3], learners: [4] });
    harness.stabilize();
    harness.elect(2);
    expect(harness.raft(2).status().role).toBe("leader");

    harness.isolated.delete(1);
    const readiesBefore = harness.node(1).readies.length;
    heartbeatAndStabilize(harness, 2);
    expect(harness.raft(1).status()).toMatchObject({ role: "follower", leader: 2 });
    expect(harness.raft(1).membership()).toEqual({ voters: [1, 2, 3], learners: [] });
    const reported = harness
      .node(1)
      .readies.slice(readiesBefore)
      .flatMap((ready) => (ready.membership === undefined ? [] : [ready.membership]));
    expect(reported).toEqual([{ voters: [1, 2, 3], learners: [] }]);
  });

  it("reports the membership in a Ready only when it changed", () => {
    const harness = new Harness(3);
    harness.elect(1);
    expect(harness.node(1).readies.every((ready) => ready.membership === undefined)).toBe(true);
    proposeChange(harness, 1, change("add-learner", 4));
    harness.stabilize();
    for (const id of [1, 2, 3]) {
      const reported = harness.node(id).readies.filter((ready) => ready.membership !== undefined);
      expect(reported.map((ready) => ready.membership)).toEqual([{ voters: [1, 2, 3], learners: [4] }]);
    }
  });

  it("a restart recomputes the membership from the snapshot and the config entries above it", () => {
    const harness = new Harness(3);
    harness.elect(1);
    harness.addLearnerNode(4, [1, 2, 3]);
    proposeChange(harness, 1, change("add-learner", 4));
    harness.stabilize();
    heartbeatAndStabilize(harness, 1);
    const snapshotIndex = harness.raft(1).status().applied;
    const atSnapshot = harness.raft(1).membershipAt(snapshotIndex);
    expect(atSnapshot).toEqual({ voters: [1, 2, 3], learners: [4] });
    const term = harness.node(1).storage.term(snapshotIndex) ?? 0n;
    harness.node(1).storage.compact({ index: snapshotIndex, term, ...(atSnapshot ?? { voters: [], learners: [] }) });
    proposeChange(harness, 1, change("remove", 3));
    harness.stabilize();
    expect(harness.raft(1).membershipAt(snapshotIndex)).toEqual({ voters: [1, 2, 3], learners: [4] });

    const expected = { voters: [1, 2], learners: [4] };
    for (const id of [1, 2, 4]) {
      harness.restart(id, harness.raft(id).status().applied);
      expect(harness.raft(id).membership()).toEqual(expected);
    }
    // Without the optional Storage.configEntries, and with it, the same answer.
    const storage = harness.node(2).storage;
    const withIndex = Object.assign(Object.create(storage) as MemoryStorage, {
      configEntries: (lo: bigint, hi: bigint) => storage.entries(lo, hi, Number.MAX_SAFE_INTEGER).filter((e) => e.kind === "config"),
    });
    const config = { ...DEFAULT_RAFT_CONFIG, id: 2, voters: [1, 2, 3], randomInt: () => 0 };
    expect(new RaftNode(config, withIndex).membership()).toEqual(expected);
  });

  it("a learner behind the leader's compacted log gets a snapshot, with its membership, then the log", () => {
    const harness = new Harness(3);
    harness.elect(1);
    for (let i = 0; i < 5; i++) harness.propose(1);
    harness.stabilize();
    const leader = harness.node(1);
    const applied = leader.raft.status().applied;
    const membership = leader.raft.membershipAt(applied);
    if (membership === undefined) throw new Error("no membership");
    leader.storage.compact({ index: applied, term: leader.storage.term(applied) ?? 0n, ...membership });

    harness.addLearnerNode(4, [1, 2, 3]);
    proposeChange(harness, 1, change("add-learner", 4));
    harness.stabilize();
    heartbeatAndStabilize(harness, 1);
    expect(harness.node(4).storage.snapshot()).toEqual({
      index: applied,
      term: leader.storage.term(applied),
      voters: [1, 2, 3],
      learners: [],
    });
    expect(harness.raft(4).status().lastIndex).toBe(leader.raft.status().lastIndex);
    expect(harness.raft(4).membership()).toEqual({ voters: [1, 2, 3], learners: [4] });
  });
});

describe("checkIncomingMessage with learners", () => {
  const view = { id: 1, voters: [1, 2, 3], learners: [4], lastIndex: 10n };

  it("takes a learner's answers and refuses any message from a non-member", () => {
    const ack: Message = { type: "append-response", from: 4, to: 1, term: 2n, reject: false, index: 5n, hintIndex: 0n, hintTerm: 0n };
    expect(checkIncomingMessage(ack, view)).toBeNull();
    expect(checkIncomingMessage(ack, { ...view, learners: [] })).toMatch(/not a peer member/);
    expect(checkIncomingMessage({ type: "vote", from: 9, to: 1, term: 3n, lastIndex: 10n, lastTerm: 2n }, view)).toMatch(
      /not a peer member/,
    );
    expect(checkIncomingMessage({ type: "heartbeat", from: 9, to: 1, term: 3n, commit: 1n }, view)).toMatch(/not a peer member/);
    expect(checkIncomingMessage({ type: "heartbeat", from: 4, to: 1, term: 3n, commit: 1n }, view)).toBeNull();
    // A known peer that is not a member (this log lacks its addition, or holds its uncommitted removal) may lead.
    const withPeers = { ...view, peers: [1, 2, 3, 4, 9] };
    expect(checkIncomingMessage({ type: "heartbeat", from: 9, to: 1, term: 3n, commit: 1n }, withPeers)).toBeNull();
    expect(checkIncomingMessage({ type: "vote", from: 9, to: 1, term: 3n, lastIndex: 10n, lastTerm: 2n }, withPeers)).toBeNull();
    expect(checkIncomingMessage({ type: "vote-response", from: 9, to: 1, term: 3n, reject: false }, withPeers)).toMatch(/not a peer/);
    expect(checkIncomingMessage({ ...ack, from: 9 }, withPeers)).toMatch(/not a peer member/);
  });

  it("refuses a malformed config entry and a snapshot whose membership is impossible", () => {
    const config = (data: Uint8Array) => ({ index: 11n, term: 2n, kind: "config" as const, data });
    const append = (data: Uint8Array): Message => ({
      type: "append",
      from: 2,
      to: 1,
      term: 2n,
      prevIndex: 10n,
      prevTerm: 2n,
      entries: [config(data)],
      commit: 0n,
    });
    expect(checkIncomingMessage(append(encodeConfigChange(change("remove", 3))), view)).toBeNull();
    expect(checkIncomingMessage(append(new Uint8Array([1, 7])), view)).toMatch(/shorter/);
    const snapshot = (voters: number[], learners: number[]): Message => ({
      type: "snapshot",
      from: 2,
      to: 1,
      term: 2n,
      snapshot: { index: 5n, term: 2n, voters, learners },
    });
    expect(checkIncomingMessage(snapshot([1, 2], [4]), view)).toBeNull();
    expect(checkIncomingMessage(snapshot([1, 2], [2]), view)).toMatch(/both voter and learner/);
    expect(checkIncomingMessage(snapshot([1, 2], [4, 4]), view)).toMatch(/learners malformed/);
    expect(checkIncomingMessage(snapshot([1, 2], [0]), view)).toMatch(/positive/);
  });
});
