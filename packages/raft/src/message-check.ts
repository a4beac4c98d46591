import type { NodeId } from "./types";
import type { Message, SnapshotMeta } from "./types";
import { LEARNERS_MAX, VOTERS_MAX } from "./config";
import { decodeConfigChange } from "./membership";

/**
 * The largest term or index a message may carry. A term grows by one per
 * election and an index by one per entry: no cluster reaches 2^63 of either,
 * while the wire carries up to 2^64 - 1. A node that adopted a term near that
 * would campaign in a term the wire cannot encode.
 */
export const RAFT_NUMBER_MAX = 2n ** 63n - 1n;

/** What a node knows that bounds the messages it can be sent: its id, its membership (RaftNode.membership()), its log's end. */
export interface MessageCheckView {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  /** Learners send answers (append-response, heartbeat-response) like any member; absent means none. */
  readonly learners?: readonly NodeId[];
  /**
   * Replicas of this cluster beyond the members (the adapter's authenticated peers, e.g. its address book):
   * a leader's append, heartbeat or snapshot and a vote request are taken from them too (membership.ts,
   * rule 5). Absent means the members only.
   */
  readonly peers?: readonly NodeId[];
  readonly lastIndex: bigint;
  /** HardState.rejoinUntil set: a leader's heartbeat may name a commit beyond this node's (lost) log. */
  readonly rejoining?: boolean;
}

/**
 * Why `message` is impossible for a node in `view` (a string), or null when a
 * correct peer could have sent it. Pure.
 *
 * The core asserts on its own invariants (a commit past the log's end, a
 * progress past the leader's log): those assertions catch OUR bugs. A
 * message off the network, even from an authenticated peer, may be buggy or
 * forged, so the adapter runs this check first and drops what fails it,
 * which Raft tolerates like any lost message. It checks shape and bounds, not
 * truth: a well-formed lie from a voter (a forged ack) is for authentication
 * to stop.
 */
export function checkIncomingMessage(message: Message, view: MessageCheckView): string | null {
  if (message.to !== view.id) return `addressed to ${message.to}, this is ${view.id}`;
  // A non-member may be a removed node that does not know it: its votes and answers must not count (membership.ts rule 5).
  // A leader's messages and vote requests are taken from any known peer: this node's log may not know it as a member yet.
  const member = view.voters.includes(message.from) || (view.learners ?? []).includes(message.from);
  const knownPeer = !isAnswer(message.type) && (view.peers ?? []).includes(message.from);
  if (message.from === view.id || !(member || knownPeer)) return `${message.type} from ${message.from}, which is not a peer member`;
  if (message.term < 0n || message.term > RAFT_NUMBER_MAX) return `term ${message.term} outside [0, ${RAFT_NUMBER_MAX}]`;
  switch (message.type) {
    case "append":
      // Its entries' payloads are the adapter's to check (the core does not read them).
      return checkAppend(message.prevIndex, message.prevTerm, message.term, message.entries, message.commit);
    case "snapshot":
      return checkSnapshot(message.snapshot, message.term);
    case "heartbeat":
      // A leader sends min(our match, its commit): never past what we hold.
      return message.commit < 0n || message.commit > RAFT_NUMBER_MAX || (message.commit > view.lastIndex && view.rejoining !== true)
        ? `heartbeat commit ${message.commit} outside [0, ${view.lastIndex}] (this node's log)`
        : null;
    case "append-response":
      // Acks and rejections name indexes of the leader's own log.
      if (message.index < 0n || message.index > view.lastIndex)
        return `append-response index ${message.index} outside [0, ${view.lastIndex}]`;
      if (message.hintIndex < 0n || message.hintIndex > view.lastIndex) {
        return `append-response hint ${message.hintIndex} outside [0, ${view.lastIndex}]`;
      }
      if (message.hintTerm < 0n || message.hintTerm > message.term) return `append-response hint term ${message.hintTerm} above its term`;
      return null;
    case "vote":
    case "pre-vote":
      if (message.lastIndex < 0n || message.lastIndex > RAFT_NUMBER_MAX || message.lastTerm < 0n || message.lastTerm > message.term) {
        return `${message.type} with last entry ${message.lastIndex}/${message.lastTerm} impossible in term ${message.term}`;
      }
      return null;
    case "heartbeat-response":
    case "vote-response":
    case "pre-vote-response":
      return null;
  }
}

/** An answer to this node's request: only a member's counts, or is even read. */
export function isAnswer(type: Message["type"]): boolean {
  return type === "append-response" || type === "heartbeat-response" || type === "vote-response" || type === "pre-vote-response";
}

function checkSnapshot(snapshot: SnapshotMeta, term: bigint): string | null {
  if (snapshot.index < 1n || snapshot.term < 1n || snapshot.term > term) {
    return `snapshot at ${snapshot.term}/${snapshot.index} impossible in term ${term}`;
  }
  const { voters, learners } = snapshot;
  if (!Array.isArray(voters) || !Array.isArray(learners)) return "snapshot membership malformed";
  if (voters.length < 1 || voters.length > VOTERS_MAX || new Set(voters).size !== voters.length) return "snapshot voters malformed";
  if (!voters.every((voter) => Number.isInteger(voter) && voter > 0)) return "snapshot voter ids must be positive integers";
  if (learners.length > LEARNERS_MAX || new Set(learners).size !== learners.length) return "snapshot learners malformed";
  if (!learners.every((learner) => Number.isInteger(learner) && learner > 0)) return "snapshot learner ids must be positive integers";
  if (learners.some((learner) => voters.includes(learner))) return "snapshot names a node both voter and learner";
  return null;
}

function checkAppend(
  prevIndex: bigint,
  prevTerm: bigint,
  term: bigint,
  entries: readonly { readonly index: bigint; readonly term: bigint; readonly kind: string; readonly data: Uint8Array }[],
  commit: bigint,
): string | null {
  if (prevIndex < 0n || prevTerm < 0n || prevTerm > term) return `append after ${prevIndex}/${prevTerm} impossible in term ${term}`;
  if (prevIndex > RAFT_NUMBER_MAX - BigInt(entries.length)) return `append after ${prevIndex} past index ${RAFT_NUMBER_MAX}`;
  if (commit < 0n || commit > RAFT_NUMBER_MAX) return `append with commit ${commit} outside [0, ${RAFT_NUMBER_MAX}]`;
  let previousTerm = prevTerm;
  for (const [i, entry] of entries.entries()) {
    if (entry.index !== prevIndex + 1n + BigInt(i))
      return `append entry ${i} has index ${entry.index}, expected ${prevIndex + 1n + BigInt(i)}`;
    if (entry.term < previousTerm || entry.term > term) return `append entry ${entry.index} has term ${entry.term} out of order`;
    if (entry.kind === "config") {
      // The core reads config entries itself: a malformed one must not reach it.
      const change = decodeConfigChange(entry.data);
      if (typeof change === "string") return `append entry ${entry.index}: ${change}`;
    }
    previousTerm = entry.term;
  }
  return null;
}
