import { assert } from "@logplayer/base";
import { validateRaftConfig } from "./config";
import type { RaftConfig } from "./config";
import { configChangeRefused } from "./errors";
import type { ConfigChangeRefusal, RaftError } from "./errors";
import { MembershipLog, configChangeProblem, encodeConfigChange, isMember, makeMembership, sameMembership } from "./membership";
import type { ConfigChange, Membership } from "./membership";
import { Progress } from "./progress";
import { isAnswer } from "./message-check";
import { MajorityConfig } from "./quorum";
import { RaftLog } from "./raft-log";
import type { Storage } from "./storage";
import { NO_NODE } from "./types";
import type {
  AppendMessage,
  AppendResponseMessage,
  Entry,
  HardState,
  HeartbeatMessage,
  Message,
  NodeId,
  Role,
  SnapshotMessage,
  SnapshotMeta,
  VoteMessage,
  VoteResponseMessage,
} from "./types";

/**
 * What the node needs done, in this order (the order is the safety argument):
 *
 *   1. Persist `hardState` if present. When `hardStateMustSync` is true (term
 *      or vote changed) it must be DURABLE (fsync) before step 3: a vote or a
 *      term must never be acted on and then forgotten. A commit-only change may
 *      be written lazily.
 *   2. Write the log: if `snapshot` is set, install it (the state it names,
 *      which the adapter received with the snapshot message) DURABLY and
 *      replace the whole log with it (the log continues at snapshot.index
 *      + 1); drop every entry above `truncateAfter` (if set); then append
 *      `entries`. They must be readable through Storage before
 *      advance(); their fsync may complete later and is reported through
 *      RaftNode.persisted(index, term). The core never acknowledges, counts or
 *      applies an entry before that report, which is what lets the leader's
 *      fsync run in parallel with replication.
 *   3. Send `messages` (any order; the network may drop or reorder them).
 *   4. Apply `committedEntries` in order (all are durable locally).
 *   5. Call advance(ready). Nothing may be stepped, ticked or proposed
 *      between ready() and advance().
 */
export interface Ready {
  readonly hardState: HardState | undefined;
  readonly hardStateMustSync: boolean;
  /** A leader's snapshot to install before the entries; it counts as durable and applied from advance() on. */
  readonly snapshot: SnapshotMeta | undefined;
  readonly truncateAfter: bigint | undefined;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  /**
   * The membership, present when it changed since the previous Ready (or,
   * for the first Ready, since construction: read membership() at start). It
   * changes when a config entry is appended, truncated away or replaced by a
   * snapshot; the adapter opens and closes peer links on it.
   */
  readonly membership?: Membership;
}

export type ProposeResult =
  | { readonly ok: true; readonly index: bigint; readonly term: bigint }
  /** Only the leader accepts proposals; `leaderHint` is the leader this node knows of, or 0. */
  | { readonly ok: false; readonly reason: "not-leader"; readonly leaderHint: NodeId }
  /** Too many uncommitted entries (uncommittedEntriesMax): push back on the client. */
  | { readonly ok: false; readonly reason: "overloaded"; readonly leaderHint: NodeId }
  /** proposeConfigChange only: the change is refused now (`error.code` is `reason`, `error.message` says why). */
  | { readonly ok: false; readonly reason: ConfigChangeRefusal; readonly leaderHint: NodeId; readonly error: RaftError };

/** How the adapter's transfer of a snapshot to a follower ended (etcd's ReportSnapshot). */
export type SnapshotOutcome = "finished" | "failed";

export interface RaftStatus {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: bigint;
  readonly vote: NodeId;
  readonly leader: NodeId;
  /** Highest index this node knows to be committed in the cluster. */
  readonly commit: bigint;
  /** Highest committed index that is also durable here: what may be applied. */
  readonly durableCommit: bigint;
  readonly lastIndex: bigint;
  readonly persistedIndex: bigint;
  readonly applied: bigint;
  /** Lost its disk, catching up: neither votes nor campaigns yet (HardState.rejoinUntil). */
  readonly rejoining: boolean;
  /** The membership in effect here (the latest config entry in this node's log). */
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * One Raft peer as a pure state machine, after etcd's raft/RawNode: inputs
 * are step(message), tick(), propose(data) and persisted(index, term);
 * outputs are collected in a Ready. No I/O, no clock, no Math.random.
 */
export class RaftNode {
  private readonly config: RaftConfig;
  private readonly id: NodeId;
  /** Majorities over the voters of the current membership. */
  private quorum: MajorityConfig;
  private readonly memberships: MembershipLog;
  /** The membership the last Ready reported (or the initial one). */
  private reportedMembership: Membership;
  private readonly log: RaftLog;
  private term: bigint;
  private vote: NodeId;
  private leader: NodeId = NO_NODE;
  private role: Role = "follower";
  /** Highest index known committed in the cluster (may exceed persistedIndex). */
  private commit: bigint;
  /** Highest index whose entry (and all before it) is durable here. */
  private persistedIndex: bigint;
  private applied: bigint;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;
  private readonly votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  /** Follower: highest index known to match the current leader's log, to acknowledge once durable. */
  private ackTarget = 0n;
  private ackSent = 0n;
  private messages: Message[] = [];
  private lastHardState: HardState;
  private readyOutstanding: Ready | undefined = undefined;
  /** HardState.rejoinUntil: no votes, no campaigns until the durable commit index reaches it. */
  private rejoinUntil: bigint | undefined;

  /** `storage` must hold only durable state: everything in it counts as persisted. */
  constructor(config: RaftConfig, storage: Storage) {
    validateRaftConfig(config);
    this.config = config;
    this.id = config.id;
    this.log = new RaftLog(storage);
    this.memberships = restoreMemberships(config, storage);
    this.quorum = new MajorityConfig(this.memberships.current().voters);
    this.reportedMembership = this.memberships.current();
    const hardState = storage.hardState();
    assert(hardState.commit <= storage.lastIndex(), `raft: hardState.commit ${hardState.commit} beyond lastIndex`);
    this.term = hardState.term;
    this.vote = hardState.vote;
    // A snapshot holds only committed entries; the hard state's commit, written lazily, may lag behind it.
    const snapshotIndex = storage.snapshot()?.index ?? 0n;
    this.commit = hardState.commit > snapshotIndex ? hardState.commit : snapshotIndex;
    this.persistedIndex = storage.lastIndex();
    this.applied = config.appliedIndex;
    this.rejoinUntil = hardState.rejoinUntil;
    assert(this.applied <= this.commit, `raft: appliedIndex ${this.applied} beyond commit ${this.commit}`);
    assert(
      this.applied >= storage.firstIndex() - 1n,
      `raft: appliedIndex ${this.applied} below the compacted prefix (first index ${storage.firstIndex()}): restore the snapshot first`,
    );
    this.lastHardState = hardState;
    this.becomeFollower(this.term, NO_NODE);
  }

  // ---- inputs ---------------------------------------------------------------

  tick(): void {
    this.assertNoReadyOutstanding();
    if (this.role === "leader") this.tickLeader();
    else this.tickElection();
  }

  propose(data: Uint8Array): ProposeResult {
    this.assertNoReadyOutstanding();
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leaderHint: this.leader };
    if (this.log.lastIndex() - this.commit >= BigInt(this.config.uncommittedEntriesMax)) {
      return { ok: false, reason: "overloaded", leaderHint: this.id };
    }
    const entry: Entry = { index: this.log.lastIndex() + 1n, term: this.term, kind: "normal", data };
    this.log.append([entry]);
    this.broadcastAppend(false);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Proposes one membership change (membership.ts says why one at a time, and
   * the rules). It takes effect here at once, on each follower when appended
   * there. Refused unless this node leads, has committed an entry of its term,
   * has no uncommitted change, the change applies to the current membership,
   * and (promote) the learner holds everything committed.
   */
  proposeConfigChange(change: ConfigChange): ProposeResult {
    this.assertNoReadyOutstanding();
    if (this.role !== "leader") return { ok: false, reason: "not-leader", leaderHint: this.leader };
    const refuse = (reason: ConfigChangeRefusal, message: string): ProposeResult => ({
      ok: false,
      reason,
      leaderHint: this.id,
      error: configChangeRefused(reason, `raft: ${change.type} ${change.node} refused: ${message}`),
    });
    if (this.log.term(this.commit) !== this.term) {
      return refuse("leader-term-not-committed", `leader ${this.id} has not committed an entry of its term ${this.term} yet`);
    }
    const pending = this.memberships.lastChangeIndex();
    if (pending > this.commit) return refuse("config-change-pending", `the change at index ${pending} is not committed yet`);
    const problem = configChangeProblem(this.memberships.current(), change);
    if (problem !== null) return refuse("invalid-config-change", problem);
    if (change.type === "promote") {
      const match = this.progress.get(change.node)?.match ?? 0n;
      if (match < this.commit)
        return refuse("learner-not-caught-up", `its log matches through ${match}, the commit index is ${this.commit}`);
    }
    if (this.log.lastIndex() - this.commit >= BigInt(this.config.uncommittedEntriesMax)) {
      return { ok: false, reason: "overloaded", leaderHint: this.id };
    }
    const entry: Entry = { index: this.log.lastIndex() + 1n, term: this.term, kind: "config", data: encodeConfigChange(change) };
    this.log.append([entry]);
    this.onLogReplaced([entry]);
    this.broadcastAppend(false);
    return { ok: true, index: entry.index, term: entry.term };
  }

  /**
   * Starts an election now instead of at the election timeout (etcd's MsgHup).
   * A single voter calls it on start: it wins at once rather than a timeout later.
   */
  campaign(): void {
    this.assertNoReadyOutstanding();
    if (this.role === "leader" || this.rejoining || !this.mayCampaign()) return;
    this.electionElapsed = 0;
    this.runCampaign(this.config.preVote ? "pre-vote" : "vote");
  }

  /**
   * Storage reports that every entry up to `index` is durable, the one at
   * `index` having `term`. A report for an entry that has since been
   * overwritten (its term differs) is ignored.
   */
  persisted(index: bigint, term: bigint): void {
    this.assertNoReadyOutstanding();
    if (index <= this.persistedIndex || this.log.term(index) !== term) return;
    this.persistedIndex = index;
    if (this.role === "leader") {
      if (this.maybeCommit()) this.broadcastAppend(true);
      this.maybeStepDownRemoved();
    } else {
      this.flushAck(false);
      this.maybeFinishRejoin();
    }
  }

  /**
   * The adapter's transfer of a snapshot to follower `to` ended. "failed":
   * send it again (from the next heartbeat answer). "finished": wait for the
   * follower's acknowledgement, then go on with the log after the snapshot.
   */
  reportSnapshot(to: NodeId, outcome: SnapshotOutcome): void {
    this.assertNoReadyOutstanding();
    const progress = this.progress.get(to);
    if (this.role !== "leader" || progress === undefined || progress.state !== "snapshot") return;
    const sent = progress.pendingSnapshot;
    progress.becomeProbe();
    if (outcome === "finished") {
      if (progress.next < sent + 1n) progress.next = sent + 1n;
      progress.probeSent = true;
    }
  }

  step(message: Message): void {
    this.assertNoReadyOutstanding();
    assert(message.to === this.id, `raft: message for ${message.to} stepped into ${this.id}`);
    // Answers from a non-member (a removed node that does not know it) never count. A leader's messages and vote
    // requests are taken from anyone (the adapter's check decides whom): this log may hold an uncommitted change
    // removing the sender, or lack the one adding it, and the sender may be the only one able to repair it (§4.2.1).
    // A removed node cannot disrupt this way: pre-vote and the leader lease stop a candidate whose log lacks the
    // committed removal.
    if (isAnswer(message.type) && !isMember(this.memberships.current(), message.from)) return;
    if (message.term > this.term) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    switch (message.type) {
      case "vote":
      case "pre-vote":
        this.handleVoteRequest(message);
        return;
      default:
        break;
    }
    if (this.role === "leader") this.stepLeader(message);
    else if (this.role === "follower") this.stepFollower(message);
    else this.stepCandidate(message);
  }

  // ---- outputs --------------------------------------------------------------

  hasReady(): boolean {
    return (
      this.messages.length > 0 ||
      !sameMembership(this.memberships.current(), this.reportedMembership) ||
      this.log.hasUnstableWrites() ||
      this.applied < this.durableCommit() ||
      !sameHardState(this.hardState(), this.lastHardState)
    );
  }

  ready(): Ready {
    this.assertNoReadyOutstanding();
    const hardState = this.hardState();
    const changed = !sameHardState(hardState, this.lastHardState);
    assert(hardState.commit >= this.lastHardState.commit, "raft: durable commit went back");
    const writes = this.log.unstableWrites();
    const ready: Ready = {
      hardState: changed ? hardState : undefined,
      hardStateMustSync:
        changed &&
        (hardState.term !== this.lastHardState.term ||
          hardState.vote !== this.lastHardState.vote ||
          hardState.rejoinUntil !== this.lastHardState.rejoinUntil),
      snapshot: writes.snapshot,
      truncateAfter: writes.truncateAfter,
      entries: writes.entries,
      // The snapshot's state is applied by installing it: nothing else is applied in the same Ready.
      committedEntries: writes.snapshot === undefined ? this.nextCommittedEntries() : [],
      messages: this.messages,
      ...(sameMembership(this.memberships.current(), this.reportedMembership) ? {} : { membership: this.memberships.current() }),
    };
    this.messages = [];
    this.reportedMembership = this.memberships.current();
    this.readyOutstanding = ready;
    return ready;
  }

  advance(ready: Ready): void {
    assert(ready === this.readyOutstanding, "raft: advance() without the matching ready()");
    this.readyOutstanding = undefined;
    if (ready.hardState !== undefined) this.lastHardState = ready.hardState;
    if (ready.entries.length > 0 || ready.truncateAfter !== undefined || ready.snapshot !== undefined) this.log.markWritten();
    if (ready.snapshot !== undefined) {
      // Installed durably: it is this node's log up to its index, and its state is the application's.
      const index = ready.snapshot.index;
      if (this.persistedIndex < index) this.persistedIndex = index;
      if (this.applied < index) this.applied = index;
      this.flushAck(false);
      this.maybeFinishRejoin();
    }
    const last = ready.committedEntries[ready.committedEntries.length - 1];
    if (last !== undefined) {
      assert(last.index > this.applied && last.index <= this.durableCommit(), "raft: applied out of range");
      this.applied = last.index;
    }
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.commit,
      durableCommit: this.durableCommit(),
      lastIndex: this.log.lastIndex(),
      persistedIndex: this.persistedIndex,
      applied: this.applied,
      rejoining: this.rejoining,
      voters: this.memberships.current().voters,
      learners: this.memberships.current().learners,
    };
  }

  /** The membership in effect here: that of the latest config entry in this node's log, committed or not. */
  membership(): Membership {
    return this.memberships.current();
  }

  /**
   * The membership after applying every entry up to `index`, for index from
   * this node's snapshot (or 0) to its last index: what a snapshot taken at
   * `index` must record (SnapshotMeta.voters, .learners). Undefined below.
   */
  membershipAt(index: bigint): Membership | undefined {
    if (index > this.log.lastIndex()) return undefined;
    return this.memberships.at(index);
  }

  /** The leader's view of a follower's progress (for tests and status pages). */
  progressOf(id: NodeId): { match: bigint; next: bigint; state: string; inflight: number } | undefined {
    const progress = this.progress.get(id);
    if (progress === undefined) return undefined;
    return { match: progress.match, next: progress.next, state: progress.state, inflight: progress.inflightCount() };
  }

  // ---- terms and roles ------------------------------------------------------

  /** Returns false when the message must be ignored. */
  private stepHigherTerm(message: Message): boolean {
    const isVote = message.type === "vote" || message.type === "pre-vote";
    // Within a leader lease (check-quorum), a vote request cannot unseat a live leader.
    if (isVote && this.inLease()) return false;
    if (message.type === "pre-vote") return true;
    // A granted pre-vote carries the term the candidate is about to use: keep ours.
    if (message.type === "pre-vote-response" && !message.reject) return true;
    const fromLeader = message.type === "append" || message.type === "heartbeat" || message.type === "snapshot";
    this.becomeFollower(message.term, fromLeader ? message.from : NO_NODE);
    return true;
  }

  private stepLowerTerm(message: Message): void {
    if (message.type === "append" || message.type === "heartbeat" || message.type === "snapshot") {
      // A stale leader (it may have been partitioned): tell it our term so it steps
      // down. With pre-vote and check-quorum nothing else would ever reach it.
      this.send({ type: "append-response", to: message.from, term: this.term, reject: true, index: 0n, hintIndex: 0n, hintTerm: 0n });
    } else if (message.type === "pre-vote") {
      this.send({ type: "pre-vote-response", to: message.from, term: this.term, reject: true });
    }
  }

  private inLease(): boolean {
    return this.config.checkQuorum && this.leader !== NO_NODE && this.electionElapsed < this.config.electionTicks;
  }

  private reset(term: bigint): void {
    if (term !== this.term) {
      assert(term > this.term, "raft: term went back");
      this.term = term;
      this.vote = NO_NODE;
      this.ackTarget = 0n;
      this.ackSent = 0n;
    }
    this.leader = NO_NODE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTicks + this.config.randomInt(this.config.electionTicks);
    assert(this.randomizedElectionTimeout >= this.config.electionTicks, "raft: randomInt out of range");
    this.votes.clear();
    this.progress = new Map();
  }

  private becomeFollower(term: bigint, leader: NodeId): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // Neither term nor vote changes: a pre-vote round leaves no trace if it fails.
    this.votes.clear();
    this.leader = NO_NODE;
    this.role = "pre-candidate";
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1n);
    this.vote = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", `raft: becomeLeader from ${this.role}`);
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    const next = this.log.lastIndex() + 1n;
    this.trackMembers(next);
    // An entry of the new term: committing it commits every earlier entry (§5.4.2).
    this.log.append([{ index: next, term: this.term, kind: "leader-noop", data: new Uint8Array(0) }]);
    this.maybeCommit();
    this.broadcastAppend(true);
  }

  private runCampaign(kind: "pre-vote" | "vote"): void {
    if (kind === "pre-vote") this.becomePreCandidate();
    else this.becomeCandidate();
    const voteTerm = kind === "pre-vote" ? this.term + 1n : this.term;
    this.votes.set(this.id, true);
    if (this.quorum.voteResult(this.votes) === "won") {
      if (kind === "pre-vote") this.runCampaign("vote");
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const voter of this.quorum.voters) {
      if (voter !== this.id) this.send({ type: kind, to: voter, term: voteTerm, lastIndex, lastTerm });
    }
  }

  private tickElection(): void {
    this.electionElapsed++;
    // Learners and removed nodes never campaign.
    if (!this.mayCampaign()) {
      if (this.electionElapsed >= this.randomizedElectionTimeout) this.electionElapsed = 0;
      return;
    }
    // A rejoining node waits for a leader to find it; it must not start elections it may not vote in.
    if (this.rejoining && this.electionElapsed >= this.randomizedElectionTimeout) this.electionElapsed = 0;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.runCampaign(this.config.preVote ? "pre-vote" : "vote");
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum) {
        const active = (id: NodeId): boolean => id === this.id || this.progress.get(id)?.recentActive === true;
        if (!this.quorum.hasQuorum(active)) {
          this.becomeFollower(this.term, NO_NODE);
          return;
        }
        for (const progress of this.progress.values()) progress.recentActive = false;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      for (const [id, progress] of this.progress) {
        const commit = progress.match < this.commit ? progress.match : this.commit;
        this.send({ type: "heartbeat", to: id, term: this.term, commit });
      }
    }
  }

  // ---- votes ----------------------------------------------------------------

  private handleVoteRequest(message: VoteMessage): void {
    const preVote = message.type === "pre-vote";
    const canVote =
      this.vote === message.from || (this.vote === NO_NODE && this.leader === NO_NODE) || (preVote && message.term > this.term);
    const responseType = preVote ? "pre-vote-response" : "vote-response";
    if (canVote && !this.rejoining && this.log.isUpToDate(message.lastIndex, message.lastTerm)) {
      this.send({ type: responseType, to: message.from, term: message.term, reject: false });
      if (!preVote) {
        this.electionElapsed = 0;
        this.vote = message.from;
      }
    } else {
      this.send({ type: responseType, to: message.from, term: this.term, reject: true });
    }
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case "append":
      case "heartbeat":
      case "snapshot":
        this.becomeFollower(this.term, message.from);
        this.stepFollower(message);
        return;
      case "vote-response":
      case "pre-vote-response":
        this.handleVoteResponse(message);
        return;
      default:
        return;
    }
  }

  private handleVoteResponse(message: VoteResponseMessage): void {
    const expected = this.role === "pre-candidate" ? "pre-vote-response" : "vote-response";
    if (message.type !== expected) return;
    this.votes.set(message.from, !message.reject);
    const result = this.quorum.voteResult(this.votes);
    if (result === "won") {
      if (this.role === "pre-candidate") this.runCampaign("vote");
      else this.becomeLeader();
    } else if (result === "lost") {
      this.becomeFollower(this.term, NO_NODE);
    }
  }

  // ---- follower -------------------------------------------------------------

  private stepFollower(message: Message): void {
    if (message.type !== "append" && message.type !== "heartbeat" && message.type !== "snapshot") return;
    this.electionElapsed = 0;
    this.leader = message.from;
    if (message.type === "append") this.handleAppend(message);
    else if (message.type === "snapshot") this.handleSnapshot(message);
    else this.handleHeartbeat(message);
    this.maybeFinishRejoin();
  }

  // ---- rejoin ---------------------------------------------------------------

  /**
   * A node that lost its disk may have voted and acknowledged entries it no
   * longer holds: a vote from it could elect a candidate that misses a
   * committed entry. It votes again once its durable commit index (learned
   * from a leader, so its log up to there is the committed log) covers every
   * entry committed before the loss. Two conditions, one for each way a
   * committed entry is known:
   * - it holds a committed entry of its current leader's term: committing it
   *   committed every entry of earlier terms (§5.4.2), all at lower indexes;
   * - and reaches `rejoinUntil`, the highest commit index any peer knew when
   *   it came back: the leader that committed an entry of its own term knows
   *   it for as long as it leads that term (a restart ends its leadership, and
   *   a later term falls under the first condition). A peer's commit index
   *   after a restart is only what its hard state kept, which is why the first
   *   condition is needed too.
   * The adapter also starts it in a term at least that of every vote it may
   * have cast, with its vote spent in that term: see HardState.rejoinUntil.
   */
  private get rejoining(): boolean {
    return this.rejoinUntil !== undefined;
  }

  private maybeFinishRejoin(): void {
    if (this.rejoinUntil === undefined || this.role !== "follower" || this.leader === NO_NODE) return;
    const durable = this.durableCommit();
    if (durable > 0n && durable >= this.rejoinUntil && this.log.term(durable) === this.term) this.rejoinUntil = undefined;
  }

  private handleAppend(message: AppendMessage): void {
    if (message.prevIndex < this.commit) {
      // Everything up to our commit index matches every leader's log.
      this.noteAckTarget(this.commit);
      this.flushAck(true);
      return;
    }
    const skipCheck = this.config.testOnlyFaults?.skipLogMatchingCheck === true;
    const canAppend = skipCheck ? message.prevIndex <= this.log.lastIndex() : this.log.matchTerm(message.prevIndex, message.prevTerm);
    if (!canAppend) {
      const probe = message.prevIndex < this.log.lastIndex() ? message.prevIndex : this.log.lastIndex();
      const hint = this.log.findConflictByTerm(probe, message.prevTerm);
      this.send({
        type: "append-response",
        to: message.from,
        term: this.term,
        reject: true,
        index: message.prevIndex,
        hintIndex: hint.index,
        hintTerm: hint.term,
        ...(this.rejoining ? { rejoining: true as const } : {}),
      });
      return;
    }
    const lastNewIndex = message.prevIndex + BigInt(message.entries.length);
    const conflict = this.log.findConflict(message.entries);
    if (conflict !== 0n) {
      assert(conflict > this.commit, `raft: entry ${conflict} conflicts with committed ${this.commit}`);
      const first = message.entries[0];
      assert(first !== undefined, "raft: conflict without entries");
      const replaced = message.entries.slice(Number(conflict - first.index));
      this.log.truncateAndAppend(replaced);
      this.onLogReplaced(replaced);
      if (this.persistedIndex >= conflict) this.persistedIndex = conflict - 1n;
    }
    this.commitTo(message.commit < lastNewIndex ? message.commit : lastNewIndex);
    this.noteAckTarget(lastNewIndex);
    this.flushAck(true);
  }

  /**
   * A leader's snapshot (etcd's handleSnapshot/restore). Already covered by our
   * commit index: acknowledge that. Our log holds its last entry (same term):
   * the log up to it matches, commit to it. Otherwise the log is replaced by
   * the snapshot (next Ready) and acknowledged once it is installed.
   */
  private handleSnapshot(message: SnapshotMessage): void {
    const snapshot = message.snapshot;
    if (snapshot.index <= this.commit) {
      this.noteAckTarget(this.commit);
      this.flushAck(true);
      return;
    }
    if (this.log.matchTerm(snapshot.index, snapshot.term)) {
      this.commitTo(snapshot.index);
      this.noteAckTarget(snapshot.index);
      this.flushAck(true);
      return;
    }
    // What is durable and known to match is now only up to the old commit index: the rest is replaced.
    if (this.persistedIndex > this.commit) this.persistedIndex = this.commit;
    this.log.restore(snapshot);
    this.memberships.restore(makeMembership(snapshot.voters, snapshot.learners), snapshot.index);
    this.onMembershipMaybeChanged();
    this.commit = snapshot.index;
    this.noteAckTarget(snapshot.index);
  }

  private handleHeartbeat(message: HeartbeatMessage): void {
    if (message.commit > this.log.lastIndex()) {
      // Only a rejoining node gets here (the adapter refuses such a heartbeat otherwise): the leader's match for
      // us predates our lost disk. Tell it where our log ends, so that it probes from there.
      assert(this.rejoining, `raft: heartbeat commit ${message.commit} beyond lastIndex ${this.log.lastIndex()}`);
      const lastIndex = this.log.lastIndex();
      const hintTerm = this.log.term(lastIndex) ?? 0n;
      this.send({
        type: "append-response",
        to: message.from,
        term: this.term,
        reject: true,
        index: message.commit,
        hintIndex: lastIndex,
        hintTerm,
        rejoining: true,
      });
      return;
    }
    // The leader sends min(our match, its commit), so this never passes our log.
    this.commitTo(message.commit);
    this.send({ type: "heartbeat-response", to: message.from, term: this.term });
  }

  private noteAckTarget(index: bigint): void {
    if (index > this.ackTarget) this.ackTarget = index;
  }

  /**
   * Acknowledges what is both durable here and known to match the leader.
   * New progress is always reported; with `force` (an append just arrived)
   * a complete acknowledgement is repeated too, in case the last one was
   * lost. An append whose entries are not durable yet is answered by
   * persisted() instead.
   */
  private flushAck(force: boolean): void {
    if (this.leader === NO_NODE) return;
    const index = this.ackTarget < this.persistedIndex ? this.ackTarget : this.persistedIndex;
    if (index <= this.ackSent && !(force && index === this.ackTarget)) return;
    if (index > this.ackSent) this.ackSent = index;
    this.send({ type: "append-response", to: this.leader, term: this.term, reject: false, index, hintIndex: 0n, hintTerm: 0n });
  }

  // ---- leader ---------------------------------------------------------------

  private stepLeader(message: Message): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    if (message.type === "append-response") {
      progress.recentActive = true;
      this.handleAppendResponse(message, progress);
    } else if (message.type === "heartbeat-response") {
      progress.recentActive = true;
      progress.onHeartbeatResponse();
      if (progress.match < this.log.lastIndex()) this.sendAppend(message.from, progress, true);
    }
  }

  private handleAppendResponse(message: AppendResponseMessage, progress: Progress): void {
    if (message.reject && message.rejoining === true && message.hintIndex < progress.match) {
      progress.lostLog(message.hintIndex);
      this.sendAppend(message.from, progress, true);
      return;
    }
    if (message.reject) {
      const matchHint = message.hintTerm > 0n ? this.log.findConflictByTerm(message.hintIndex, message.hintTerm).index : message.hintIndex;
      if (progress.maybeDecrTo(message.index, matchHint)) this.sendAppend(message.from, progress, true);
      return;
    }
    const wasPaused = progress.isPaused();
    if (progress.maybeUpdate(message.index)) {
      if (progress.state === "probe") progress.becomeReplicate();
      // The snapshot arrived (or the log caught up some other way): go on with the entries after it.
      else if (progress.state === "snapshot" && progress.match + 1n >= this.log.firstIndex()) progress.becomeReplicate();
      if (this.maybeCommit()) this.broadcastAppend(true);
      // It was waiting on us: even an empty append tells it the current commit index.
      else if (wasPaused) this.sendAppend(message.from, progress, true);
      if (this.maybeStepDownRemoved()) return;
    }
    for (let sends = 0; sends < this.config.inflightMessagesMax; sends++) {
      if (!this.sendAppend(message.from, progress, false)) break;
    }
  }

  /** Sends the next AppendEntries to `to` unless its window is full. Returns true if one was sent. */
  private sendAppend(to: NodeId, progress: Progress, sendIfEmpty: boolean): boolean {
    if (progress.isPaused()) return false;
    const prevIndex = progress.next - 1n;
    const lastIndex = this.log.lastIndex();
    assert(prevIndex <= lastIndex, `raft: prevIndex ${prevIndex} beyond lastIndex ${lastIndex}`);
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || progress.next < this.log.firstIndex()) return this.sendSnapshot(to, progress);
    let entries: Entry[] = [];
    if (progress.next <= lastIndex) {
      const limit = progress.next + BigInt(this.config.entriesPerMessageMax);
      const hi = limit < lastIndex + 1n ? limit : lastIndex + 1n;
      entries = this.log.slice(progress.next, hi, this.config.bytesPerMessageMax);
    }
    if (entries.length === 0 && !sendIfEmpty && progress.state === "replicate") return false;
    this.send({ type: "append", to, term: this.term, prevIndex, prevTerm, entries, commit: this.commit });
    progress.sentEntries(entries.length, prevIndex + BigInt(entries.length));
    return true;
  }

  /** The follower needs entries we compacted away: send our snapshot instead (etcd's MsgSnap). */
  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    const snapshot = this.log.snapshot();
    assert(snapshot !== undefined, `raft: entries before ${this.log.firstIndex()} are compacted but there is no snapshot`);
    this.send({ type: "snapshot", to, term: this.term, snapshot });
    progress.becomeSnapshot(snapshot.index);
    return true;
  }

  private broadcastAppend(sendIfEmpty: boolean): void {
    for (const [id, progress] of this.progress) this.sendAppend(id, progress, sendIfEmpty);
  }

  /** Advances commit to what a majority holds durably, if that entry is of our term. */
  private maybeCommit(): boolean {
    const index = this.quorum.committedIndex((id) => (id === this.id ? this.persistedIndex : (this.progress.get(id)?.match ?? 0n)));
    if (index <= this.commit) return false;
    const unsafe = this.config.testOnlyFaults?.unsafeCommitPreviousTermEntries === true;
    // §5.4.2: counting replicas commits only entries of the current term.
    if (!unsafe && this.log.term(index) !== this.term) return false;
    const changePending = this.memberships.lastChangeIndex() > this.commit;
    this.commitTo(index);
    if (changePending && this.memberships.lastChangeIndex() <= this.commit) this.sayGoodbyeToRemoved();
    return true;
  }

  // ---- membership -----------------------------------------------------------

  private isVoter(): boolean {
    return this.memberships.current().voters.includes(this.id);
  }

  /**
   * A voter campaigns; so does a node whose own removal is in its log but not
   * committed (it counts votes over its latest voters, without its own, and
   * steps down once it commits the removal): its log may be the only one that
   * can win, and without it the others could wait on its vote forever (the
   * simulator found that deadlock). A learner or a node whose removal
   * committed never campaigns.
   */
  private mayCampaign(): boolean {
    if (this.isVoter()) return true;
    if (this.memberships.lastChangeIndex() <= this.commit) return false;
    return this.memberships.at(this.commit)?.voters.includes(this.id) ?? false;
  }

  /** `entries` were just written over the log from their first index on: config entries among them take effect. */
  private onLogReplaced(entries: readonly Entry[]): void {
    this.memberships.replaceFrom(entries);
    this.onMembershipMaybeChanged();
  }

  private onMembershipMaybeChanged(): void {
    const { voters } = this.memberships.current();
    if (!sameIds(voters, this.quorum.voters)) this.quorum = new MajorityConfig(voters);
    if (this.role === "leader") this.trackMembers(this.log.lastIndex() + 1n);
  }

  /**
   * Leader: a progress for every member but itself (voters and learners), and
   * for a node whose removal is not committed yet, so that it gets the entry
   * removing it and stops campaigning; none for anyone else. Only voters of the
   * current membership are ever counted (this.quorum).
   */
  private trackMembers(next: bigint): void {
    const { voters, learners } = this.memberships.current();
    const members = new Set([...voters, ...learners]);
    if (this.memberships.lastChangeIndex() > this.commit) {
      const committed = this.memberships.at(this.commit);
      for (const id of [...(committed?.voters ?? []), ...(committed?.learners ?? [])]) members.add(id);
    }
    members.delete(this.id);
    for (const id of this.progress.keys()) {
      if (!members.has(id)) this.progress.delete(id);
    }
    for (const id of members) {
      // A new member starts probing from our log's end, like a follower after an election.
      if (!this.progress.has(id)) this.progress.set(id, new Progress(next, this.config.inflightMessagesMax));
    }
  }

  /**
   * The change committed: one last append tells a node it removed that its
   * removal committed (so that it stops campaigning: mayCampaign), then it
   * gets nothing more. If that message is lost, its pre-votes fail harmlessly.
   */
  private sayGoodbyeToRemoved(): void {
    const { voters, learners } = this.memberships.current();
    for (const [id, progress] of this.progress) {
      if (voters.includes(id) || learners.includes(id)) continue;
      progress.onHeartbeatResponse();
      this.sendAppend(id, progress, true);
    }
    this.trackMembers(this.log.lastIndex() + 1n);
  }

  /**
   * A leader that is no longer a voter (it proposed its own removal) leads
   * until that change commits (thesis §4.2.2), then steps down; not a voter,
   * it never campaigns again. Returns true when it stepped down.
   */
  private maybeStepDownRemoved(): boolean {
    if (this.role !== "leader" || this.isVoter() || this.memberships.lastChangeIndex() > this.commit) return false;
    this.becomeFollower(this.term, NO_NODE);
    return true;
  }

  // ---- shared ---------------------------------------------------------------

  private commitTo(index: bigint): void {
    if (index <= this.commit) return;
    assert(index <= this.log.lastIndex(), `raft: commit ${index} beyond lastIndex ${this.log.lastIndex()}; log corrupted?`);
    this.commit = index;
  }

  private durableCommit(): bigint {
    return this.commit < this.persistedIndex ? this.commit : this.persistedIndex;
  }

  private hardState(): HardState {
    const state = { term: this.term, vote: this.vote, commit: this.durableCommit() };
    return this.rejoinUntil !== undefined ? { ...state, rejoinUntil: this.rejoinUntil } : state;
  }

  private nextCommittedEntries(): Entry[] {
    const limit = this.durableCommit();
    if (this.applied >= limit) return [];
    const hiMax = this.applied + 1n + BigInt(this.config.committedEntriesPerReadyMax);
    const hi = hiMax < limit + 1n ? hiMax : limit + 1n;
    return this.log.slice(this.applied + 1n, hi, Number.MAX_SAFE_INTEGER);
  }

  private send(message: DistributiveOmit<Message, "from">): void {
    this.messages.push({ ...message, from: this.id } as Message);
  }

  private assertNoReadyOutstanding(): void {
    assert(this.readyOutstanding === undefined, "raft: input between ready() and advance()");
  }
}

type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  return a.length === b.length && a.every((id, position) => id === b[position]);
}

/**
 * The membership of a node's log at construction: the snapshot's (or the
 * configuration's initial one when there is no snapshot), then each config
 * entry in the log above it. Storage.configEntries, when present, spares
 * reading the whole log.
 */
function restoreMemberships(config: RaftConfig, storage: Storage): MembershipLog {
  const snapshot = storage.snapshot();
  const base =
    snapshot !== undefined ? makeMembership(snapshot.voters, snapshot.learners) : makeMembership(config.voters, config.learners ?? []);
  const memberships = new MembershipLog(base, snapshot?.index ?? 0n);
  const lo = snapshot !== undefined && snapshot.index + 1n > storage.firstIndex() ? snapshot.index + 1n : storage.firstIndex();
  const hi = storage.lastIndex() + 1n;
  if (lo >= hi) return memberships;
  if (storage.configEntries !== undefined) {
    memberships.replaceFrom(storage.configEntries(lo, hi));
    return memberships;
  }
  for (let next = lo; next < hi; ) {
    const chunk = storage.entries(next, hi, RESTORE_SCAN_BYTES);
    memberships.replaceFrom(chunk.filter((entry) => entry.kind === "config"));
    next += BigInt(chunk.length);
  }
  return memberships;
}

/** Bytes read per step when scanning the log for config entries at construction. */
const RESTORE_SCAN_BYTES = 1024 * 1024;

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit && a.rejoinUntil === b.rejoinUntil;
}
