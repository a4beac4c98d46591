import { LpError, Status } from "@logplayer/common";
import { MembershipAdmin, type MemberChange, type MembershipPort } from "./membership-admin";

/** A leader whose changes commit at once; a learner catches up after `catchUpPolls` looks. */
function fakeLeader(voters: number[], learners: number[] = [], catchUpPolls = 0) {
  const state = { voters: [...voters], learners: [...learners], commit: 10n, polls: 0 };
  const addresses = new Map<number, string>(voters.map((id) => [id, `r${id}:1`]));
  const proposed: MemberChange[] = [];
  const port: MembershipPort = {
    leaderMembership: async () => ({ membership: { voters: state.voters, learners: state.learners }, leaderId: 1, commit: state.commit }),
    addressOf: (id) => addresses.get(id),
    proposeAndCommit: async (change) => {
      proposed.push(change);
      const others = (ids: number[]): number[] => ids.filter((id) => id !== change.node);
      state.voters = others(state.voters);
      state.learners = others(state.learners);
      if (change.type === "add-learner") {
        state.learners.push(change.node);
        addresses.set(change.node, change.address);
      }
      if (change.type === "promote") state.voters.push(change.node);
      state.commit++;
    },
    matchOf: (id) => (state.learners.includes(id) && state.polls++ < catchUpPolls ? 0n : state.commit),
    sleep: async () => {},
  };
  return { port, proposed, state, addresses };
}

const LIMITS = { learnerCatchUpTimeoutMs: 1000, catchUpPollMs: 100 };
const codeOf = async (promise: Promise<unknown>): Promise<Status | undefined> =>
  promise.then(
    () => undefined,
    (err: unknown) => (LpError.is(err) ? err.code : undefined),
  );

describe("MembershipAdmin", () => {
  it("adds a replica as a learner, waits for it to catch up, then promotes it", async () => {
    const leader = fakeLeader([1, 2, 3], [], 3);
    const answer = await new MembershipAdmin(leader.port, LIMITS).add(4, "r4:1");
    expect(leader.proposed.map((c) => c.type)).toEqual(["add-learner", "promote"]);
    expect(answer.members.map((m) => [m.replicaId, m.address, m.learner])).toContainEqual([4, "r4:1", false]);
  });

  it("a retry finishes a change an earlier attempt began, and is a no-op once done", async () => {
    const leader = fakeLeader([1, 2, 3], [4]);
    leader.addresses.set(4, "r4:1");
    const admin = new MembershipAdmin(leader.port, LIMITS);
    await admin.add(4, "r4:1");
    await admin.add(4, "r4:1");
    expect(leader.proposed.map((c) => c.type)).toEqual(["promote"]);
    await admin.remove(5);
    expect(leader.proposed).toHaveLength(1);
  });

  it("refuses bad input, a member at another address, the last voter, and a learner that does not catch up", async () => {
    const leader = fakeLeader([1], [], 1_000_000);
    const admin = new MembershipAdmin(leader.port, LIMITS);
    expect(await codeOf(admin.add(0, "a:1"))).toBe(Status.INVALID_ARGUMENT);
    expect(await codeOf(admin.add(2, "no-port"))).toBe(Status.INVALID_ARGUMENT);
    expect(await codeOf(admin.add(1, "elsewhere:1"))).toBe(Status.FAILED_PRECONDITION);
    expect(await codeOf(admin.remove(1))).toBe(Status.FAILED_PRECONDITION);
    expect(await codeOf(admin.add(2, "r2:1"))).toBe(Status.DEADLINE_EXCEEDED);
    expect(leader.state.learners).toEqual([2]);
  });
});
