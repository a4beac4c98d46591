/**
 * Wire and storage types of the Raft core. Indexes and terms are bigint, like
 * every LSN in LogPlayer: the Raft index IS the WAL's LSN. Node ids are small
 * positive integers; 0 means "nobody" (no vote, no known leader).
 */

export type NodeId = number;

/** Nobody: no vote cast, no leader known. */
export const NO_NODE: NodeId = 0;

/**
 * "normal" carries application data. "leader-noop" is the empty entry a new
 * leader appends so that it can commit entries of earlier terms (§5.4.2); the
 * application applies it as nothing, but it does occupy an index (an LSN).
 * "config" is a membership change (its data is encodeConfigChange's, see
 * membership.ts): it takes effect in the core when appended; the application
 * applies it as nothing to its own state (it may record the change's context).
 */
export type EntryKind = "normal" | "leader-noop" | "config";

export interface Entry {
  readonly index: bigint;
  readonly term: bigint;
  readonly kind: EntryKind;
  /** Owned by the log once appended: nobody mutates it afterwards. */
  readonly data: Uint8Array;
}

/** What must survive a crash besides the log: term, vote and commit. */
export interface HardState {
  readonly term: bigint;
  readonly vote: NodeId;
  readonly commit: bigint;
  /**
   * Set on a node that lost its disk and came back blank: it may have voted
   * and acknowledged entries before, and remembers none of it, so it neither
   * votes nor campaigns until its durable commit index reaches this index (the
   * highest commit index any peer knew when it came back) and holds a
   * committed entry of its leader's term: then it holds every entry committed
   * before its loss. See RaftNode's "rejoin" section.
   */
  readonly rejoinUntil?: bigint;
}

export const EMPTY_HARD_STATE: HardState = { term: 0n, vote: NO_NODE, commit: 0n };

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: bigint;
}

/** Leader to follower: entries after (prevIndex, prevTerm); may be empty (a probe). */
export interface AppendMessage extends MessageBase {
  readonly type: "append";
  readonly prevIndex: bigint;
  readonly prevTerm: bigint;
  readonly entries: readonly Entry[];
  readonly commit: bigint;
}

/**
 * Follower to leader. Accepted: `index` is the highest index the follower
 * holds DURABLY and knows to match the leader's log. Rejected: `index` is the
 * prevIndex that did not match, and (hintIndex, hintTerm) let the leader skip
 * a whole term of conflicting entries at once (fast backtracking).
 */
export interface AppendResponseMessage extends MessageBase {
  readonly type: "append-response";
  readonly reject: boolean;
  readonly index: bigint;
  readonly hintIndex: bigint;
  readonly hintTerm: bigint;
  /**
   * Set by a rejoining node (HardState.rejoinUntil): its log may end below what
   * it acknowledged before it lost its disk, so a rejection from it whose hint
   * is below the leader's match for it resets that match (Progress.lostLog).
   */
  readonly rejoining?: true;
}

/** Leader to follower: liveness plus a commit index the follower can safely use. */
export interface HeartbeatMessage extends MessageBase {
  readonly type: "heartbeat";
  readonly commit: bigint;
}

export interface HeartbeatResponseMessage extends MessageBase {
  readonly type: "heartbeat-response";
}

/**
 * A vote request. With preVote, `term` is the term the sender WOULD campaign
 * in; nobody changes its term or vote because of a pre-vote.
 */
export interface VoteMessage extends MessageBase {
  readonly type: "vote" | "pre-vote";
  readonly lastIndex: bigint;
  readonly lastTerm: bigint;
}

export interface VoteResponseMessage extends MessageBase {
  readonly type: "vote-response" | "pre-vote-response";
  readonly reject: boolean;
}

/**
 * What a snapshot stands for: the application's state after applying every
 * entry through `index` (whose term is `term`), and the membership then
 * (RaftNode.membershipAt(index)). The core handles only this; the adapter
 * moves and stores the state itself.
 */
export interface SnapshotMeta {
  readonly index: bigint;
  readonly term: bigint;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * Leader to a follower that needs entries the leader has compacted away
 * (etcd's MsgSnap): install this snapshot, then take the log after it. The
 * adapter sends the state with it (LogStore: the InstallSnapshot stream) and
 * steps it into the follower's core only once it holds the state whole.
 */
export interface SnapshotMessage extends MessageBase {
  readonly type: "snapshot";
  readonly snapshot: SnapshotMeta;
}

export type Message =
  | AppendMessage
  | SnapshotMessage
  | AppendResponseMessage
  | HeartbeatMessage
  | HeartbeatResponseMessage
  | VoteMessage
  | VoteResponseMessage;

export type MessageType = Message["type"];

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";
