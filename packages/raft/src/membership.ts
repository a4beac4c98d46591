import { assert } from "@logplayer/base";
import { LEARNERS_MAX, VOTERS_MAX } from "./config";
import type { Entry, NodeId } from "./types";

/**
 * Membership changes, one server at a time (Raft thesis §4.1, §4.2.1), with
 * learners (etcd raft's non-voting members).
 *
 * Why one server at a time rather than joint consensus: adding or removing a
 * single voter makes every majority of the old voters intersect every majority
 * of the new ones, so no separate joint phase is needed, and a change is one
 * ordinary log entry. Every real need of the LogStore (grow 3 -> 5, replace a
 * dead replica, bring back a wiped one) is a sequence of single steps; joint
 * consensus only buys arbitrary changes in one step, at the price of a second
 * entry, a two-majority quorum and more states to get wrong.
 *
 * The rules that make it safe (each one enforced in RaftNode):
 * 1. A node uses the LATEST configuration in its log, committed or not: a
 *    change takes effect when its entry is appended, and is undone if the entry
 *    is truncated away by a new leader.
 * 2. At most one change is in flight: a leader refuses a change while an
 *    earlier config entry in its log is uncommitted.
 * 3. A leader refuses a change until it has committed an entry of its own term
 *    (the fix to the single-server algorithm found after the thesis, raft-dev
 *    2015): otherwise a leader elected in the old configuration could append a
 *    change while an uncommitted change of an earlier leader, in another log,
 *    is later committed, and two disjoint majorities could elect two leaders.
 * 4. Learners receive the log but never vote, never campaign and are not
 *    counted in any quorum, so a slow new replica cannot stall commits; it is
 *    promoted only once it has caught up to the leader's commit index.
 * 5. A node ignores answers (acks, vote answers) from nodes that are not
 *    members in its view: a removed node's acknowledgements never count. It
 *    does take a leader's appends, heartbeats and snapshots and vote requests
 *    from a non-member (thesis §4.2.1): its log may hold an uncommitted change
 *    removing that node, or lack the one adding it, and that node may be the
 *    only one able to repair the log or win an election (the simulator found
 *    both deadlocks otherwise). A removed node that does not know it cannot
 *    disrupt: its log lacks the committed removal, so pre-vote and the leader
 *    lease stop it. checkIncomingMessage takes these from the adapter's known
 *    peers only (MessageCheckView.peers), anything from strangers is refused.
 * 6. A leader whose own removal commits steps down; a node that is not a voter
 *    in its own membership never campaigns, unless its own removal is still
 *    uncommitted in its log (RaftNode.mayCampaign says why).
 */

/** Bytes of opaque context a change may carry (the LogStore: the replica's address). */
export const CONFIG_CONTEXT_BYTES_MAX = 1024;

export type ConfigChangeType = "add-learner" | "promote" | "remove";

export interface ConfigChange {
  readonly type: ConfigChangeType;
  readonly node: NodeId;
  /** Opaque to the core, at most CONFIG_CONTEXT_BYTES_MAX bytes. */
  readonly context: Uint8Array;
}

/** Voters and learners, each sorted ascending, disjoint. */
export interface Membership {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

// ---- encoding ------------------------------------------------------------------

const ENCODING_VERSION = 1;
/** version (1) + type (1) + node (4, big-endian) + context length (2, big-endian). */
const HEADER_BYTES = 8;
const TYPE_CODES: Readonly<Record<ConfigChangeType, number>> = { "add-learner": 1, promote: 2, remove: 3 };
const TYPES_BY_CODE: ReadonlyMap<number, ConfigChangeType> = new Map(
  Object.entries(TYPE_CODES).map(([type, code]) => [code, type as ConfigChangeType]),
);
/** Node ids travel as uint32. */
const NODE_ID_MAX = 0xffff_ffff;

/** The data of a "config" entry. Throws on a change decodeConfigChange would refuse (a caller bug). */
export function encodeConfigChange(change: ConfigChange): Uint8Array {
  const problem = configChangeShapeProblem(change);
  if (problem !== null) throw new RangeError(`raft: cannot encode config change: ${problem}`);
  const bytes = new Uint8Array(HEADER_BYTES + change.context.length);
  const view = new DataView(bytes.buffer);
  view.setUint8(0, ENCODING_VERSION);
  view.setUint8(1, TYPE_CODES[change.type]);
  view.setUint32(2, change.node);
  view.setUint16(6, change.context.length);
  bytes.set(change.context, HEADER_BYTES);
  return bytes;
}

/** The change a "config" entry's data holds, or why it is malformed (it may come off the network). */
export function decodeConfigChange(bytes: Uint8Array): ConfigChange | string {
  if (!(bytes instanceof Uint8Array)) return "config change is not bytes";
  if (bytes.length < HEADER_BYTES) return `config change of ${bytes.length} bytes is shorter than its ${HEADER_BYTES}-byte header`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint8(0);
  if (version !== ENCODING_VERSION) return `config change encoding version ${version}, expected ${ENCODING_VERSION}`;
  const type = TYPES_BY_CODE.get(view.getUint8(1));
  if (type === undefined) return `config change type code ${view.getUint8(1)} is unknown`;
  const node = view.getUint32(2);
  if (node === 0) return "config change names node 0";
  const contextLength = view.getUint16(6);
  if (contextLength > CONFIG_CONTEXT_BYTES_MAX)
    return `config change context of ${contextLength} bytes exceeds ${CONFIG_CONTEXT_BYTES_MAX}`;
  if (bytes.length !== HEADER_BYTES + contextLength) {
    return `config change is ${bytes.length} bytes, its header says ${HEADER_BYTES + contextLength}`;
  }
  return { type, node, context: bytes.slice(HEADER_BYTES) };
}

function configChangeShapeProblem(change: ConfigChange): string | null {
  if (!Object.hasOwn(TYPE_CODES, change.type)) return `unknown change type ${String(change.type)}`;
  if (!Number.isInteger(change.node) || change.node <= 0 || change.node > NODE_ID_MAX) {
    return `node id must be an integer in [1, ${NODE_ID_MAX}], got ${change.node}`;
  }
  if (!(change.context instanceof Uint8Array)) return "context must be a Uint8Array";
  if (change.context.length > CONFIG_CONTEXT_BYTES_MAX) {
    return `context of ${change.context.length} bytes exceeds ${CONFIG_CONTEXT_BYTES_MAX}`;
  }
  return null;
}

// ---- applying --------------------------------------------------------------------

export function makeMembership(voters: readonly NodeId[], learners: readonly NodeId[]): Membership {
  const learnerSet = new Set(learners);
  const sortedVoters = [...new Set(voters)].sort((a, b) => a - b);
  return {
    voters: sortedVoters,
    learners: [...learnerSet].filter((id) => !sortedVoters.includes(id)).sort((a, b) => a - b),
  };
}

export function sameMembership(a: Membership, b: Membership): boolean {
  return sameIds(a.voters, b.voters) && sameIds(a.learners, b.learners);
}

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id, position) => id === b[position]);
}

export function isMember(membership: Membership, id: NodeId): boolean {
  return membership.voters.includes(id) || membership.learners.includes(id);
}

/**
 * Why `change` may not be proposed on top of `membership`, or null. The
 * leader checks this before appending; followers never do (see applyConfigChange).
 */
export function configChangeProblem(membership: Membership, change: ConfigChange): string | null {
  const shape = configChangeShapeProblem(change);
  if (shape !== null) return shape;
  const { node } = change;
  switch (change.type) {
    case "add-learner":
      if (membership.voters.includes(node)) return `node ${node} is already a voter`;
      if (membership.learners.includes(node)) return `node ${node} is already a learner`;
      if (membership.learners.length >= LEARNERS_MAX) return `already ${membership.learners.length} learners (at most ${LEARNERS_MAX})`;
      return null;
    case "promote":
      if (!membership.learners.includes(node)) return `node ${node} is not a learner`;
      if (membership.voters.length >= VOTERS_MAX) return `already ${membership.voters.length} voters (at most ${VOTERS_MAX})`;
      return null;
    case "remove":
      if (!isMember(membership, node)) return `node ${node} is not a member`;
      if (membership.voters.length === 1 && membership.voters[0] === node) return `node ${node} is the last voter`;
      return null;
  }
}

/**
 * The membership after `change`. Total and deterministic, because every node
 * applies every config entry of its log, whatever membership it started from
 * (a joining replica starts from a guess: the current members): add-learner
 * makes the node a learner, promote a voter, remove neither, and a change
 * that would leave no voter is ignored. On a correct history each change
 * passed configChangeProblem at the leader, so these are exactly its effects.
 */
export function applyConfigChange(membership: Membership, change: ConfigChange): Membership {
  const voters = membership.voters.filter((id) => id !== change.node);
  const learners = membership.learners.filter((id) => id !== change.node);
  if (change.type === "promote") return makeMembership([...voters, change.node], learners);
  // Only a replay from a guessed start can get here with the last voter (an old "add-learner" of today's voter).
  if (voters.length === 0) return membership;
  if (change.type === "add-learner") return makeMembership(voters, [...learners, change.node]);
  return makeMembership(voters, learners);
}

// ---- the membership of a log ---------------------------------------------------

/**
 * The membership at each point of a node's log: a base (the snapshot's, or the
 * initial configuration's) plus one step per config entry above it. Entries
 * are appended and truncated with the log, so the membership in effect is
 * always that of the latest config entry the log holds.
 */
export class MembershipLog {
  private base: Membership;
  private baseIndex: bigint;
  /** The membership after each config entry above baseIndex, by index ascending. */
  private readonly steps: { readonly index: bigint; readonly membership: Membership }[] = [];

  constructor(base: Membership, baseIndex: bigint) {
    this.base = base;
    this.baseIndex = baseIndex;
  }

  current(): Membership {
    return this.steps[this.steps.length - 1]?.membership ?? this.base;
  }

  /** Index of the latest config entry, or 0 when the membership comes from the base alone. */
  lastChangeIndex(): bigint {
    return this.steps[this.steps.length - 1]?.index ?? 0n;
  }

  /**
   * The membership in effect at `index` (after applying every entry up to
   * it), for index >= the base's: what a snapshot at `index` must record.
   */
  at(index: bigint): Membership | undefined {
    if (index < this.baseIndex) return undefined;
    let membership = this.base;
    for (const step of this.steps) {
      if (step.index > index) break;
      membership = step.membership;
    }
    return membership;
  }

  /** The log from `entries[0].index` on is now `entries`: drop the steps above, apply the config entries among them. */
  replaceFrom(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.truncateFrom(first.index);
    for (const entry of entries) this.appendEntry(entry);
  }

  /** Entries from `index` on are gone. */
  truncateFrom(index: bigint): void {
    while ((this.steps[this.steps.length - 1]?.index ?? 0n) >= index && this.steps.length > 0) this.steps.pop();
  }

  /** The log was replaced by a snapshot at `index` with `membership`. */
  restore(membership: Membership, index: bigint): void {
    this.base = membership;
    this.baseIndex = index;
    this.steps.length = 0;
  }

  private appendEntry(entry: Entry): void {
    if (entry.kind !== "config" || entry.index <= this.baseIndex) return;
    const change = decodeConfigChange(entry.data);
    // The leader's entries are encoded by encodeConfigChange; checkIncomingMessage drops malformed ones off the network.
    assert(typeof change !== "string", `raft: config entry ${entry.index} is malformed: ${String(change)}`);
    this.steps.push({ index: entry.index, membership: applyConfigChange(this.current(), change) });
  }
}
