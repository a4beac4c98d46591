import { messageFromWire, messageToWire } from "@logplayer/logstore";
import { RaftMessage } from "@logplayer/proto";
import { RAFT_NUMBER_MAX } from "@logplayer/raft";
import type { Entry, Message, NodeId } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import type { Prng } from "./prng";
import { proposalEntry } from "./sim-raft-node";

/**
 * An authenticated but broken replica: it sends Step messages that no correct
 * replica could send, each impossible for a reason the receiver can see from
 * what it holds itself (a commit or an index past every log, entries with a
 * gap or terms out of order, a payload that is not the LogEntry at its index,
 * a sender that is not a peer voter, a number past the range Raft can reach).
 * The Raft scenario injects them into a running replica's production driver,
 * through the wire encoding the Replication service decodes, and requires each
 * to be refused and counted, with every safety property holding.
 *
 * Not covered, and not detectable by the receiver: a well-formed lie consistent
 * with its own state (a false ack at an index the leader holds, a vote request
 * claiming a longer log, a second leader's append in a term, a commit within
 * the log). An authenticated replica is trusted not to tell those: that is
 * Byzantine behaviour, out of Raft's fault model (docs/model-checking.md).
 */
export const ATTACK_KINDS = [
  "heartbeat-commit-past-log",
  "ack-past-log",
  "hint-past-log",
  "hint-term-above-term",
  "append-gap",
  "append-term-order",
  "append-prev-term-above-term",
  "append-bad-payload",
  "from-self",
  "from-stranger",
  "to-elsewhere",
  "vote-last-term-above-term",
  "number-out-of-range",
] as const;

export type AttackKind = (typeof ATTACK_KINDS)[number];

/** One forged message, as data: the scenario builds it against the target's state when it is sent. */
export interface Attack {
  readonly kind: AttackKind;
  /** Simulated ms after the previous attack (the first: after the run starts). */
  readonly delayMs: number;
  /** The target replica and the authenticated peer the message claims to come from: indexes, taken modulo the nodes. */
  readonly target: number;
  readonly sender: number;
  /** The message's term: the target's current term plus this, kept within [0, RAFT_NUMBER_MAX]. */
  readonly termDelta: number;
  /** Random material: how far past a bound, which entry, which variant. */
  readonly big: bigint;
  readonly small: number;
  readonly bytes: Uint8Array;
}

/** What the scenario knows when it sends an attack: the target's state and the longest log anywhere. */
export interface ForgeContext {
  readonly nodes: number;
  readonly target: {
    readonly id: NodeId;
    readonly term: bigint;
    readonly lastIndex: bigint;
    readonly lastTerm: bigint;
    readonly rejoining: boolean;
  };
  /** The highest last index any replica's log has reached: no correct replica names an index past it. */
  readonly lastIndexMax: bigint;
}

/** Proposal ids of forged entries: far above the client's, so one that landed would show in the final check. */
const FORGED_PROPOSAL_ID_BASE = 1_000_000_000;
const UINT64_MAX = 2n ** 64n - 1n;
/** Far enough past every log that the logs cannot grow to it before the message is checked. */
const PAST_EVERY_LOG = 2n ** 20n;

/**
 * The message `attack` describes against `context`, or undefined when it has
 * no impossible form there (a heartbeat's commit past the log is legal for a
 * rejoining replica).
 */
export function forgeMessage(attack: Attack, context: ForgeContext): Message | undefined {
  const { target } = context;
  const from = otherNode(attack.sender, target.id, context.nodes);
  const to = target.id;
  const term = clampTerm(target.term + BigInt(attack.termDelta));
  const beyond = context.lastIndexMax + PAST_EVERY_LOG + (attack.big % 2n ** 40n);
  const within = (bound: bigint): bigint => attack.big % (bound + 1n);
  const variant = attack.small % 4;
  // Appends otherwise as a leader of the target's term or a later one would send them: only what the attack breaks is wrong.
  const appendTerm = term > target.term ? term : target.term;
  switch (attack.kind) {
    case "heartbeat-commit-past-log":
      return target.rejoining ? undefined : { type: "heartbeat", from, to, term, commit: beyond };
    case "ack-past-log":
      return { type: "append-response", from, to, term, reject: variant % 2 === 1, index: beyond, hintIndex: 0n, hintTerm: 0n };
    case "hint-past-log":
      return { type: "append-response", from, to, term, reject: true, index: within(target.lastIndex), hintIndex: beyond, hintTerm: 0n };
    case "hint-term-above-term": {
      const index = within(target.lastIndex);
      return { type: "append-response", from, to, term, reject: true, index, hintIndex: index, hintTerm: term + 1n + (attack.big % 1000n) };
    }
    case "append-gap": {
      const entries = forgedEntries(attack, target.lastIndex + 1n, appendTerm);
      const at = attack.small % entries.length;
      // From the entry at `at` on, every index skips ahead: a hole (or, at 0, a first entry not after prevIndex).
      const skip = 1n + (attack.big % 5n);
      const gapped = entries.map((entry, i) => (i < at ? entry : forgedEntry(entry.index + skip, entry.term, attack)));
      return append(from, to, appendTerm, target, gapped);
    }
    case "append-term-order": {
      const entries = forgedEntries(attack, target.lastIndex + 1n, appendTerm);
      const at = attack.small % entries.length;
      // Above the message's term, or (variant) below the entry before it.
      const below = variant >= 2 && at > 0 && appendTerm > 0n;
      const badTerm = below ? appendTerm - 1n : appendTerm + 1n + (attack.big % 3n);
      const bad = entries.map((entry, i) => (i === at ? forgedEntry(entry.index, badTerm, attack) : entry));
      return append(from, to, appendTerm, target, bad);
    }
    case "append-prev-term-above-term":
      return {
        type: "append",
        from,
        to,
        term,
        prevIndex: within(target.lastIndex),
        prevTerm: term + 1n + (attack.big % 100n),
        entries: [],
        commit: 0n,
      };
    case "append-bad-payload": {
      const entries = forgedEntries(attack, target.lastIndex + 1n, appendTerm);
      const at = attack.small % entries.length;
      const bad = entries.map((entry, i) => (i === at ? { ...entry, data: badPayload(entry, attack) } : entry));
      return append(from, to, appendTerm, target, bad);
    }
    case "from-self":
      return { type: "heartbeat", from: to, to, term, commit: 0n };
    case "from-stranger":
      // Nobody (0), or a replica id outside the voters.
      return { type: "heartbeat", from: variant === 0 ? 0 : context.nodes + 1 + attack.small, to, term, commit: 0n };
    case "to-elsewhere":
      // The Replication service drops it before the driver; the driver refuses it too.
      return { type: "heartbeat", from, to: otherNode(attack.sender + 1, to, context.nodes), term, commit: 0n };
    case "vote-last-term-above-term":
      return {
        type: variant % 2 === 0 ? "vote" : "pre-vote",
        from,
        to,
        term,
        lastIndex: within(context.lastIndexMax),
        lastTerm: term + 1n + (attack.big % 100n),
      };
    case "number-out-of-range": {
      // Past any term or index a cluster can reach, yet carried by the wire's uint64.
      const huge = RAFT_NUMBER_MAX + 1n + (attack.big % (UINT64_MAX - RAFT_NUMBER_MAX));
      if (variant === 0) return { type: "vote", from, to, term, lastIndex: huge, lastTerm: 0n };
      if (variant === 1) return { type: "heartbeat-response", from, to, term: huge };
      if (variant === 2) return { type: "vote", from, to, term: huge, lastIndex: target.lastIndex, lastTerm: target.lastTerm };
      return { type: "append", from, to, term: huge, prevIndex: target.lastIndex, prevTerm: target.lastTerm, entries: [], commit: 0n };
    }
  }
}

/** The message as the receiving replica sees it: encoded by the sender's transport, decoded by the Replication service. */
export function throughTheWire(message: Message): Message {
  // Snapshots travel by InstallSnapshot, not Step; no attack forges one.
  if (message.type === "snapshot") return message;
  const decoded = messageFromWire(RaftMessage.decode(RaftMessage.encode(messageToWire(message)).finish()));
  if (decoded === undefined) throw new Error(`sim: a ${message.type} did not survive the wire`);
  return decoded;
}

/** `count` attacks drawn from `prng` (the CLI's --adversary; the property test draws its own with fast-check). */
export function randomAttacks(prng: Prng, count: number): Attack[] {
  return Array.from({ length: count }, () => ({
    kind: prng.pick(ATTACK_KINDS),
    delayMs: prng.between(1, 200),
    target: prng.int(9),
    sender: prng.int(9),
    termDelta: prng.between(-2, 3),
    big: BigInt(prng.int(2 ** 30)) * BigInt(prng.int(2 ** 30)),
    small: prng.int(2 ** 16),
    bytes: Uint8Array.from({ length: prng.int(24) }, () => prng.int(256)),
  }));
}

function append(from: NodeId, to: NodeId, term: bigint, target: ForgeContext["target"], entries: Entry[]): Message {
  return { type: "append", from, to, term, prevIndex: target.lastIndex, prevTerm: target.lastTerm, entries, commit: 0n };
}

/** 1..6 entries from `first` in `term`, each a well-formed LogEntry: only what the attack breaks is wrong. */
function forgedEntries(attack: Attack, first: bigint, term: bigint): Entry[] {
  const count = 1 + (attack.small % 6);
  return Array.from({ length: count }, (_, i) => forgedEntry(first + BigInt(i), term, attack));
}

function forgedEntry(index: bigint, term: bigint, attack: Attack): Entry {
  const entry = proposalEntry(FORGED_PROPOSAL_ID_BASE + (attack.small % 1000), index, term);
  return { index, term, kind: "normal", data: encodeEntryPayload(entry) };
}

/** A payload that is not the LogEntry for (index, term): garbage, another LSN, another term, or no transaction. */
function badPayload(entry: Entry, attack: Attack): Uint8Array {
  const base = proposalEntry(FORGED_PROPOSAL_ID_BASE, entry.index, entry.term);
  switch (Number(attack.big % 4n)) {
    case 0:
      // 0xff opens field 31 with wire type 7, which does not exist: never a valid LogEntry.
      return Uint8Array.from([0xff, ...attack.bytes]);
    case 1:
      return encodeEntryPayload({ ...base, lsn: entry.index + 1n + (attack.big % 5n) });
    case 2:
      return encodeEntryPayload({ ...base, term: entry.term + 1n });
    default:
      return encodeEntryPayload({ ...base, txn: undefined });
  }
}

/** A node id other than `self`, chosen by `pick` among the `nodes` voters (self when it is the only one). */
function otherNode(pick: number, self: NodeId, nodes: number): NodeId {
  if (nodes === 1) return self;
  const offset = 1 + (Math.abs(pick) % (nodes - 1));
  return ((self - 1 + offset) % nodes) + 1;
}

function clampTerm(term: bigint): bigint {
  if (term < 0n) return 0n;
  return term > RAFT_NUMBER_MAX ? RAFT_NUMBER_MAX : term;
}
