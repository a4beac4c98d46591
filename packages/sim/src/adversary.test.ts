import fc from "fast-check";
import { ATTACK_KINDS, type Attack, type AttackKind } from "./adversary";
import { runRaftScenario } from "./raft-cluster";

// Issue #13: an authenticated replica that sends impossible Step messages can neither exit a replica
// nor break a safety property, and every such message is refused and counted.
//
// The Raft scenario (the LogStore's RaftDriver over the real WAL, a crashing nemesis and a lossy network)
// runs with an adversary: fast-check draws the attacks (which kind, when, at whom, claiming which peer,
// with which terms, amounts and bytes) and the scenario forges each against the target's state when it is
// sent, then passes it through the Replication wire encoding and steps it into the target's driver, as the
// Replication service does once the sender's certificate checked out. Covered: a commit or an index past
// every log, a hint term above the message's term, appends with a gap or terms out of order or a previous
// term above their term, entries whose payload is not the LogEntry at their index and term, a sender that
// is the receiver or no voter, a receiver that is someone else, a vote whose last term is above its term,
// and terms or indexes past 2^63 - 1 (the wire carries up to 2^64 - 1).
//
// Not covered, by design: a forged but plausible message (an ack at an index the leader holds, a vote
// request claiming a longer log, a second leader's append, a commit within the receiver's log) can break
// Raft's safety; no receiver can tell it from the truth. An authenticated replica is trusted not to lie
// plausibly (Byzantine faults are out of scope: docs/model-checking.md), and the Replication service's
// certificate check (a process test) stops a replica from speaking for another.
//
// More runs: LP_ADVERSARY_RUNS=500 npx jest packages/sim/src/adversary.test.ts
// (or, with attacks drawn from the seed instead: node packages/sim/dist/run-raft.js --seeds 2000 --adversary)

const RUNS = Number(process.env.LP_ADVERSARY_RUNS ?? "20");
const STEPS = 1_500;
/** A bound, not a measure: each run awaits the WAL between events, on a busy machine. */
const TIMEOUT_MS = 600_000;

const attack: fc.Arbitrary<Attack> = fc.record({
  kind: fc.constantFrom(...ATTACK_KINDS),
  delayMs: fc.integer({ min: 1, max: 150 }),
  target: fc.nat({ max: 8 }),
  sender: fc.nat({ max: 8 }),
  termDelta: fc.integer({ min: -3, max: 3 }),
  big: fc.bigInt({ min: 0n, max: 2n ** 62n }),
  small: fc.nat({ max: 0xffff }),
  bytes: fc.uint8Array({ maxLength: 32 }),
});

test(
  "property: impossible Step messages from an authenticated replica are refused and counted, and break nothing",
  async () => {
    const refusedByKind = new Map<AttackKind, number>();
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.array(attack, { minLength: 5, maxLength: 40 }), async (seed, attacks) => {
        const result = await runRaftScenario({ seed, steps: STEPS, nodes: 3, adversary: { attacks } });
        // No replica exited (a fatal error ends the run as a violation) and every safety property held.
        expect([result.violation ?? "ok", result.replayCommand, ...result.traceTail].join("\n")).toMatch(/^ok/);
        const { adversary } = result.stats;
        // Each forged message that reached a running driver was refused by it, or dropped unread by a crash.
        expect(adversary.refused + adversary.lostInCrash).toBe(adversary.injected);
        refused += adversary.refused;
        for (const [kind, count] of Object.entries(adversary.refusedByKind)) {
          refusedByKind.set(kind as AttackKind, (refusedByKind.get(kind as AttackKind) ?? 0) + count);
        }
      }),
      { seed: 13, numRuns: RUNS, endOnFailure: true },
    );
    expect(refused).toBeGreaterThan(RUNS * 5);
    // Every kind of attack reached a replica and was refused.
    expect(ATTACK_KINDS.filter((kind) => (refusedByKind.get(kind) ?? 0) === 0)).toEqual([]);
  },
  TIMEOUT_MS,
);
