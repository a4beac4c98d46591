import { failedPrecondition, invalidArgument, LpError, Status } from "@logplayer/common";
import type { Member, MembersResponse } from "@logplayer/proto";
import { memberAddressProblem } from "./peers";

/** Voters and learners, as the leader's Raft core has them (its latest config entry, committed or not). */
export interface MembershipView {
  readonly voters: readonly number[];
  readonly learners: readonly number[];
}

/** One membership change, as the admin RPC proposes it (the core's ConfigChange, with the address as context). */
export type MemberChange =
  | { readonly type: "add-learner"; readonly node: number; readonly address: string }
  | { readonly type: "promote" | "remove"; readonly node: number };

/**
 * What MembershipAdmin needs of the leader (ReplicatedLog provides it). Every
 * method throws UNAVAILABLE naming the leader when this replica does not lead.
 */
export interface MembershipPort {
  /** Waits until this replica leads and has committed an entry of its term, then reads its membership. */
  leaderMembership(): Promise<{ readonly membership: MembershipView; readonly leaderId: number; readonly commit: bigint }>;
  addressOf(id: number): string | undefined;
  /** Proposes `change` and resolves once its entry is committed; rejects with the core's refusal as an LpError. */
  proposeAndCommit(change: MemberChange): Promise<void>;
  /** The highest index the leader knows replica `id` holds (its match), or undefined when it tracks none. */
  matchOf(id: number): bigint | undefined;
  /** Resolves after `ms` (a timer; the caller bounds the waits). */
  sleep(ms: number): Promise<void>;
}

export interface MembershipAdminLimits {
  /** How long AddMember waits for a new learner to hold the leader's commit LSN before promoting it (--learner-catch-up-timeout-ms). */
  readonly learnerCatchUpTimeoutMs: number;
  /** How often it looks at the learner's progress meanwhile. */
  readonly catchUpPollMs: number;
}

export const DEFAULT_MEMBERSHIP_ADMIN_LIMITS: MembershipAdminLimits = { learnerCatchUpTimeoutMs: 60_000, catchUpPollMs: 100 };

/** Raft ids travel as uint32; 0 is "nobody". */
const REPLICA_ID_MAX = 0xffff_ffff;

/** Steps one AddMember or RemoveMember takes at most: add-learner, promote, and one re-read each. */
const CHANGE_STEPS_MAX = 4;

/**
 * The admin side of membership changes (AddMember, RemoveMember,
 * ListMembers), one replica at a time, on the leader. Each call looks at the
 * membership as it is and takes the next step toward the asked one, so a
 * retry after a crash or a lost answer finishes what an earlier attempt began:
 * - add: absent -> add-learner (the address in the entry) -> wait until the
 *   learner holds the leader's commit index (bounded) -> promote; a learner
 *   with the same address goes straight to the wait; a voter with the same
 *   address is done; one with another address is FAILED_PRECONDITION
 *   (remove it first).
 * - remove: a voter or learner -> remove; absent is done.
 */
export class MembershipAdmin {
  readonly #port: MembershipPort;
  readonly #limits: MembershipAdminLimits;
  /** One change at a time through this replica: the core refuses a second anyway while the first is uncommitted. */
  #busy = false;

  constructor(port: MembershipPort, limits: MembershipAdminLimits) {
    this.#port = port;
    this.#limits = limits;
  }

  async list(): Promise<MembersResponse> {
    return this.#answer();
  }

  async add(replicaId: number, address: string): Promise<MembersResponse> {
    checkReplicaId(replicaId);
    const problem = memberAddressProblem(address);
    if (problem !== null) throw invalidArgument(`AddMember: ${problem}`);
    return this.#exclusive(async () => {
      for (let step = 0; step < CHANGE_STEPS_MAX; step++) {
        const { membership } = await this.#port.leaderMembership();
        const known = this.#port.addressOf(replicaId);
        const isVoter = membership.voters.includes(replicaId);
        const isLearner = membership.learners.includes(replicaId);
        if ((isVoter || isLearner) && known !== address) {
          throw failedPrecondition(
            `replica ${replicaId} is already a ${isVoter ? "voter" : "learner"} at ${known ?? "an unknown address"}, not ${address}: ` +
              "remove it first to move it",
          );
        }
        if (isVoter) return this.#answer();
        if (isLearner) {
          await this.#waitCaughtUp(replicaId);
          await this.#port.proposeAndCommit({ type: "promote", node: replicaId });
        } else {
          await this.#port.proposeAndCommit({ type: "add-learner", node: replicaId, address });
        }
      }
      throw new LpError(Status.ABORTED, `AddMember ${replicaId}: the membership kept changing under this call; retry`);
    });
  }

  async remove(replicaId: number): Promise<MembersResponse> {
    checkReplicaId(replicaId);
    return this.#exclusive(async () => {
      for (let step = 0; step < CHANGE_STEPS_MAX; step++) {
        const { membership } = await this.#port.leaderMembership();
        if (!membership.voters.includes(replicaId) && !membership.learners.includes(replicaId)) return this.#answer();
        if (membership.voters.length === 1 && membership.voters[0] === replicaId) {
          throw failedPrecondition(`replica ${replicaId} is the last voter: removing it would leave no cluster`);
        }
        await this.#port.proposeAndCommit({ type: "remove", node: replicaId });
      }
      throw new LpError(Status.ABORTED, `RemoveMember ${replicaId}: the membership kept changing under this call; retry`);
    });
  }

  /** Waits until the learner's log matches through the leader's commit index, at most learnerCatchUpTimeoutMs. */
  async #waitCaughtUp(replicaId: number): Promise<void> {
    const { learnerCatchUpTimeoutMs, catchUpPollMs } = this.#limits;
    const polls = Math.max(1, Math.ceil(learnerCatchUpTimeoutMs / catchUpPollMs));
    let match: bigint | undefined;
    let commit = 0n;
    for (let poll = 0; poll <= polls; poll++) {
      ({ commit } = await this.#port.leaderMembership());
      match = this.#port.matchOf(replicaId);
      if (match !== undefined && match >= commit) return;
      if (poll < polls) await this.#port.sleep(catchUpPollMs);
    }
    throw new LpError(
      Status.DEADLINE_EXCEEDED,
      `learner ${replicaId} holds the log through ${match ?? "nothing yet"}, the leader's commit LSN is ${commit}, after ` +
        `learner_catch_up_timeout_ms ${learnerCatchUpTimeoutMs}: it stays a learner (is it running, and reachable at its address?); ` +
        "AddMember again to retry the promotion, or RemoveMember",
    );
  }

  async #exclusive<T>(run: () => Promise<T>): Promise<T> {
    if (this.#busy) throw failedPrecondition("another membership change is running on this leader; retry once it ends");
    this.#busy = true;
    try {
      return await run();
    } finally {
      this.#busy = false;
    }
  }

  async #answer(): Promise<MembersResponse> {
    const { membership, leaderId, commit } = await this.#port.leaderMembership();
    const member = (id: number, learner: boolean): Member => ({ replicaId: id, address: this.#port.addressOf(id) ?? "", learner });
    const members = [...membership.voters.map((id) => member(id, false)), ...membership.learners.map((id) => member(id, true))];
    return { members: members.sort((a, b) => a.replicaId - b.replicaId), leaderId, commitLsn: commit };
  }
}

function checkReplicaId(replicaId: number): void {
  if (!Number.isInteger(replicaId) || replicaId < 1 || replicaId > REPLICA_ID_MAX) {
    throw invalidArgument(`replica_id must be an integer in 1..${REPLICA_ID_MAX}, got ${replicaId}`);
  }
}
