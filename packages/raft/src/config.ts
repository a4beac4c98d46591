import { invalidConfig } from "./errors";
import type { NodeId } from "./types";

/**
 * Test-only fault switches. Each one breaks a Raft safety rule on purpose so
 * that the simulator's checkers can be shown to catch it. Never set them
 * outside tests: all default to off.
 */
export interface TestOnlyFaults {
  /** Commit by counting replicas for entries of earlier terms (violates §5.4.2, Figure 8). */
  readonly unsafeCommitPreviousTermEntries?: boolean;
  /** Followers append without checking (prevIndex, prevTerm) (violates log matching). */
  readonly skipLogMatchingCheck?: boolean;
}

export interface RaftConfig {
  /** This node; must be one of `voters` or `learners`. */
  readonly id: NodeId;
  /**
   * The voters at the start of the log, used only when storage holds no
   * snapshot (a snapshot records its own membership). Config entries in the
   * log change the membership from there (membership.ts).
   */
  readonly voters: readonly NodeId[];
  /**
   * The learners at the start of the log (none if absent). A joining replica
   * starts as voters = the current members, learners = [itself].
   */
  readonly learners?: readonly NodeId[];
  /** Ticks without hearing from a leader before campaigning; randomized into [electionTicks, 2*electionTicks). */
  readonly electionTicks: number;
  /** Ticks between a leader's heartbeats; must be below electionTicks. */
  readonly heartbeatTicks: number;
  /** Run a pre-vote round before a real election, so a partitioned node cannot disrupt the cluster on return. */
  readonly preVote: boolean;
  /** A leader that has not heard from a quorum within an election timeout steps down. */
  readonly checkQuorum: boolean;
  /** AppendEntries messages in flight per follower while replicating (pipelining window). */
  readonly inflightMessagesMax: number;
  /** Entries per AppendEntries message. */
  readonly entriesPerMessageMax: number;
  /** Entry bytes per AppendEntries message (a single larger entry is still sent alone). */
  readonly bytesPerMessageMax: number;
  /** Entries a leader holds beyond its commit index before refusing proposals (backpressure). */
  readonly uncommittedEntriesMax: number;
  /** Committed entries handed out in one Ready. */
  readonly committedEntriesPerReadyMax: number;
  /** Highest index the application has already applied (on restart); 0 to re-apply from the start. */
  readonly appliedIndex: bigint;
  /** Injected randomness: an integer in [0, bound). The core never calls Math.random. */
  readonly randomInt: (bound: number) => number;
  readonly testOnlyFaults?: TestOnlyFaults;
}

export type RaftConfigDefaults = Omit<RaftConfig, "id" | "voters" | "randomInt">;

export const DEFAULT_RAFT_CONFIG: RaftConfigDefaults = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  inflightMessagesMax: 64,
  entriesPerMessageMax: 256,
  bytesPerMessageMax: 1024 * 1024,
  uncommittedEntriesMax: 16_384,
  committedEntriesPerReadyMax: 1024,
  appliedIndex: 0n,
};

/** Voters in one cluster: more makes no sense for a WAL and bounds quorum work. */
export const VOTERS_MAX = 9;

/** Learners in one cluster: each one costs the leader a replication stream. */
export const LEARNERS_MAX = 9;

/** Throws a RaftError "invalid-config" on the first broken rule. */
export function validateRaftConfig(config: RaftConfig): void {
  const { id, voters } = config;
  if (!Number.isInteger(id) || id <= 0) throw invalidConfig(`raft: id must be a positive integer, got ${id}`);
  if (voters.length === 0 || voters.length > VOTERS_MAX) {
    throw invalidConfig(`raft: voters must hold 1..${VOTERS_MAX} ids, got ${voters.length}`);
  }
  if (new Set(voters).size !== voters.length) throw invalidConfig(`raft: duplicate voter ids in [${voters.join(",")}]`);
  for (const voter of voters) {
    if (!Number.isInteger(voter) || voter <= 0) throw invalidConfig(`raft: voter ids must be positive integers, got ${voter}`);
  }
  const learners = config.learners ?? [];
  if (learners.length > LEARNERS_MAX) throw invalidConfig(`raft: learners must hold 0..${LEARNERS_MAX} ids, got ${learners.length}`);
  if (new Set(learners).size !== learners.length) throw invalidConfig(`raft: duplicate learner ids in [${learners.join(",")}]`);
  for (const learner of learners) {
    if (!Number.isInteger(learner) || learner <= 0) throw invalidConfig(`raft: learner ids must be positive integers, got ${learner}`);
    if (voters.includes(learner)) throw invalidConfig(`raft: ${learner} is both a voter and a learner`);
  }
  if (!voters.includes(id) && !learners.includes(id)) {
    throw invalidConfig(`raft: id ${id} is not among voters [${voters.join(",")}] nor learners [${learners.join(",")}]`);
  }
  positive("heartbeatTicks", config.heartbeatTicks);
  positive("electionTicks", config.electionTicks);
  if (config.electionTicks <= config.heartbeatTicks) {
    throw invalidConfig(`raft: electionTicks (${config.electionTicks}) must exceed heartbeatTicks (${config.heartbeatTicks})`);
  }
  positive("inflightMessagesMax", config.inflightMessagesMax);
  positive("entriesPerMessageMax", config.entriesPerMessageMax);
  positive("bytesPerMessageMax", config.bytesPerMessageMax);
  positive("uncommittedEntriesMax", config.uncommittedEntriesMax);
  positive("committedEntriesPerReadyMax", config.committedEntriesPerReadyMax);
  if (config.appliedIndex < 0n) throw invalidConfig(`raft: appliedIndex must be >= 0, got ${config.appliedIndex}`);
}

function positive(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw invalidConfig(`raft: ${name} must be a positive integer, got ${value}`);
  }
}
