import { Registry } from "@logplayer/common";
import type { ReplicaStatus } from "@logplayer/proto";
import { createRaftMetrics, READY_APPLY_LAG_ENTRIES_MAX, type RaftView, replicaReadiness } from "./raft-metrics";

function row(replicaId: string, fields: Partial<ReplicaStatus>): ReplicaStatus {
  return {
    replicaId,
    address: `127.0.0.1:710${replicaId}`,
    role: "unknown",
    term: 0n,
    lastLsn: 0n,
    commitLsn: 0n,
    matchLsn: 0n,
    lag: 0n,
    ...fields,
  };
}

const follower: RaftView = {
  role: "follower",
  term: 3n,
  leaderAddress: "127.0.0.1:7101",
  commitIndex: 40n,
  messagesRefused: 0,
  replicas: [row("1", { role: "leader" }), row("2", { role: "follower", term: 3n, lastLsn: 41n, commitLsn: 39n, matchLsn: 41n })],
};

const leader: RaftView = {
  role: "leader",
  term: 4n,
  leaderAddress: "127.0.0.1:7102",
  commitIndex: 50n,
  messagesRefused: 7,
  replicas: [
    row("1", { role: "follower", term: 4n, matchLsn: 45n, lag: 5n }),
    row("2", { role: "leader", term: 4n, lastLsn: 50n, commitLsn: 50n, matchLsn: 50n }),
  ],
};

async function scrape(view: () => RaftView): Promise<string> {
  const registry = new Registry();
  const metrics = createRaftMetrics(registry, "2", view);
  try {
    return await registry.metrics();
  } finally {
    metrics.stop();
  }
}

describe("Raft metrics", () => {
  it("a follower's page says it is a follower, with its term and indexes, and no follower series", async () => {
    const text = await scrape(() => follower);
    expect(text).toMatch(/^lp_raft_role\{role="follower"[^}]*\} 1$/m);
    expect(text).toMatch(/^lp_raft_role\{role="leader"[^}]*\} 0$/m);
    expect(text).toMatch(/^lp_raft_term(\{[^}]*\})? 3$/m);
    expect(text).toMatch(/^lp_raft_commit_index(\{[^}]*\})? 40$/m);
    expect(text).toMatch(/^lp_raft_applied_index(\{[^}]*\})? 39$/m);
    expect(text).toMatch(/^lp_raft_has_leader(\{[^}]*\})? 1$/m);
    expect(text).not.toMatch(/^lp_raft_follower_match_index\{/m);
  });

  it("the leader reports each follower's match index and lag", async () => {
    const text = await scrape(() => leader);
    expect(text).toMatch(/^lp_raft_role\{role="leader"[^}]*\} 1$/m);
    expect(text).toMatch(/^lp_raft_follower_match_index\{peer="1"[^}]*\} 45$/m);
    expect(text).toMatch(/^lp_raft_follower_lag_entries\{peer="1"[^}]*\} 5$/m);
    expect(text).not.toMatch(/^lp_raft_follower_match_index\{peer="2"/m);
    expect(text).toMatch(/^lp_raft_messages_refused_total(\{[^}]*\})? 7$/m);
  });

  it("counts a leader change when the leader or its term changes, not on the first sight", async () => {
    jest.useFakeTimers();
    try {
      const registry = new Registry();
      let view = follower;
      const metrics = createRaftMetrics(registry, "2", () => view);
      jest.advanceTimersByTime(1000);
      view = { ...follower, leaderAddress: "" };
      jest.advanceTimersByTime(1000);
      view = leader;
      jest.advanceTimersByTime(1000);
      view = { ...leader, term: 5n };
      jest.advanceTimersByTime(1000);
      metrics.stop();
      expect(await registry.metrics()).toMatch(/^lp_raft_leader_changes_total(\{[^}]*\})? 2$/m);
    } finally {
      jest.useRealTimers();
    }
  });

  it("/readyz: ready with a leader and applied near the commit index", () => {
    expect(replicaReadiness(follower, 39n)).toEqual({ ready: true });
    expect(replicaReadiness({ ...follower, leaderAddress: "", role: "candidate" }, 39n)).toMatchObject({ ready: false });
    const behind = replicaReadiness({ ...follower, commitIndex: 40n + READY_APPLY_LAG_ENTRIES_MAX + 1n }, 39n);
    expect(behind).toMatchObject({ ready: false, reason: expect.stringContaining("catching up") });
  });
});
