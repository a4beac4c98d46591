import fc from "fast-check";
import { AssertionError } from "@logplayer/base";
import { checkIncomingMessage, RAFT_NUMBER_MAX } from "./message-check";
import { Harness } from "./test-harness";
import type { Entry, Message, NodeId } from "./types";

// The core asserts on impossible input (a commit past its log, an ack past the
// leader's log): those are bugs. The adapter runs checkIncomingMessage first,
// so that a buggy or forged peer can never reach one of them.

/** A settled 3-node cluster: node 1 leads with a few entries committed everywhere. */
function settledCluster(): Harness {
  const harness = new Harness(3);
  harness.elect(1);
  for (let i = 0; i < 3; i++) harness.propose(1);
  harness.stabilize();
  return harness;
}

function viewOf(harness: Harness, id: NodeId) {
  return { id, voters: [1, 2, 3], lastIndex: harness.raft(id).status().lastIndex };
}

describe("checkIncomingMessage", () => {
  it("refuses the forged messages that used to exit a replica, which the core alone asserts on", () => {
    const harness = settledCluster();
    const follower = harness.raft(2);
    const { lastIndex, term } = follower.status();
    const heartbeat: Message = { type: "heartbeat", from: 1, to: 2, term, commit: lastIndex + 1_000n };
    expect(checkIncomingMessage(heartbeat, viewOf(harness, 2))).toMatch(/heartbeat commit .* outside/);
    // Without the check, the core's own assertion fires: the check is what stands between the two.
    expect(() => follower.step(heartbeat)).toThrow(AssertionError);

    const leader = settledCluster();
    const leaderStatus = leader.raft(1).status();
    const ack: Message = {
      type: "append-response",
      from: 2,
      to: 1,
      term: leaderStatus.term,
      reject: true,
      index: 2n ** 62n,
      hintIndex: 2n ** 62n,
      hintTerm: 0n,
    };
    expect(checkIncomingMessage(ack, viewOf(leader, 1))).toMatch(/append-response index .* outside/);
    expect(() => leader.raft(1).step(ack)).toThrow(AssertionError);
  });

  it("refuses terms and indexes past RAFT_NUMBER_MAX, which the wire carries but no cluster reaches", () => {
    const view = { id: 2, voters: [1, 2, 3], lastIndex: 5n };
    const past = RAFT_NUMBER_MAX + 1n;
    // A node that adopted a term near 2^64 - 1 would campaign in a term the wire cannot encode.
    expect(checkIncomingMessage({ type: "heartbeat-response", from: 1, to: 2, term: past }, view)).toMatch(/term .* outside/);
    expect(checkIncomingMessage({ type: "heartbeat-response", from: 1, to: 2, term: RAFT_NUMBER_MAX }, view)).toBeNull();
    expect(checkIncomingMessage({ type: "vote", from: 1, to: 2, term: 3n, lastIndex: past, lastTerm: 1n }, view)).toMatch(/impossible/);
    const append: Message = { type: "append", from: 1, to: 2, term: 3n, prevIndex: RAFT_NUMBER_MAX, prevTerm: 1n, entries: [], commit: 0n };
    expect(checkIncomingMessage(append, view)).toBeNull();
    const entries: Entry[] = [{ index: past, term: 1n, kind: "normal", data: new Uint8Array(0) }];
    expect(checkIncomingMessage({ ...append, entries }, view)).toMatch(/past index/);
    expect(checkIncomingMessage({ ...append, commit: past }, view)).toMatch(/commit .* outside/);
  });

  it("lets every message of a normal run through (a correct peer is never refused)", () => {
    const harness = new Harness(3);
    harness.elect(1);
    for (let i = 0; i < 5; i++) {
      harness.propose(1);
      harness.stabilize((message) => {
        expect(checkIncomingMessage(message, viewOf(harness, message.to))).toBeNull();
        return true;
      });
    }
    expect(harness.delivered.length).toBeGreaterThan(10);
  });

  it("property: no message that passes the check makes any node of a live cluster throw", () => {
    const bigIndex = fc.bigInt({ min: -3n, max: 40n });
    const entry = (index: bigint, term: bigint): Entry => ({ index, term, kind: "normal", data: new Uint8Array([1]) });
    // Every message's from, to and term: senders include nobody (0), ourselves and a non-voter (4).
    const envelope = { from: fc.integer({ min: 0, max: 4 }), to: fc.integer({ min: 1, max: 3 }), term: bigIndex };
    const message: fc.Arbitrary<Message> = fc.oneof(
      fc.record({ ...envelope, commit: bigIndex }).map((m): Message => ({ type: "heartbeat", ...m })),
      fc
        .record({
          ...envelope,
          prevIndex: bigIndex,
          prevTerm: bigIndex,
          commit: bigIndex,
          count: fc.integer({ min: 0, max: 4 }),
          entryTerm: bigIndex,
        })
        .map(
          ({ count, entryTerm, ...m }): Message => ({
            type: "append",
            ...m,
            entries: Array.from({ length: count }, (_, i) => entry(m.prevIndex + 1n + BigInt(i), entryTerm)),
          }),
        ),
      fc
        .record({ ...envelope, reject: fc.boolean(), index: bigIndex, hintIndex: bigIndex, hintTerm: bigIndex })
        .map((m): Message => ({ type: "append-response", ...m })),
      fc
        .record({ ...envelope, lastIndex: bigIndex, lastTerm: bigIndex, kind: fc.constantFrom("vote" as const, "pre-vote" as const) })
        .map(({ kind, ...m }): Message => ({ type: kind, ...m })),
      fc
        .record({ ...envelope, reject: fc.boolean(), kind: fc.constantFrom("vote-response" as const, "pre-vote-response" as const) })
        .map(({ kind, ...m }): Message => ({ type: kind, ...m })),
    );
    let refused = 0;
    let stepped = 0;
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 30 }), (messages) => {
        const harness = settledCluster();
        for (const forged of messages) {
          if (checkIncomingMessage(forged, viewOf(harness, forged.to)) !== null) {
            refused++;
            continue;
          }
          stepped++;
          harness.raft(forged.to).step(forged);
          harness.process(forged.to);
        }
      }),
      { numRuns: 300, seed: 42 },
    );
    // Both sides of the check were exercised.
    expect(refused).toBeGreaterThan(100);
    expect(stepped).toBeGreaterThan(100);
  });
});
