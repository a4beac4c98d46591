import { Counter, Gauge, type Readiness, type Registry } from "@logplayer/common";
import type { ReplicaStatus } from "@logplayer/proto";

/** What the Raft metrics read from a replica: its replication status (ReplicatedLog.status()). */
export interface RaftView {
  readonly role: string;
  readonly term: bigint;
  /** "" when no leader is known. */
  readonly leaderAddress: string;
  /** Highest index known committed in the cluster. */
  readonly commitIndex: bigint;
  /** This replica's own row first, then its peers (match and lag known only on the leader). */
  readonly replicas: readonly ReplicaStatus[];
  /** Raft messages from peers refused by validation since start (impossible for this node; dropped). */
  readonly messagesRefused: number;
}

/** Every role a replica reports, each a value of the `role` label (the current one is 1, the others 0). */
export const RAFT_ROLES = ["leader", "follower", "candidate", "pre-candidate", "rejoining"] as const;

/**
 * How often leadership is sampled to count leader changes. An election takes
 * at least an election timeout (hundreds of ms), so a change is rarely
 * missed; lp_raft_term counts every election exactly in any case.
 */
export const LEADERSHIP_SAMPLE_MS = 100;

export interface RaftMetrics {
  /** Stops the leadership sampler. */
  stop(): void;
}

/**
 * The Raft metrics of one replica (names prefixed lp_raft_). Gauges are read
 * from `view` at scrape time; leader changes are counted by a sampler.
 */
export function createRaftMetrics(registry: Registry, replicaId: string, view: () => RaftView): RaftMetrics {
  const registers = [registry];
  const self = (status: RaftView): ReplicaStatus | undefined => status.replicas.find((r) => r.replicaId === replicaId);
  const scalar = (name: string, help: string, read: (status: RaftView) => bigint | number): void => {
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(Number(read(view())));
      },
    });
  };
  new Gauge({
    name: "lp_raft_role",
    help: "1 for this replica's current Raft role (label role), 0 for the others.",
    labelNames: ["role"] as const,
    registers,
    collect() {
      const status = view();
      const role = self(status)?.role ?? status.role;
      for (const candidate of RAFT_ROLES) this.set({ role: candidate }, candidate === role ? 1 : 0);
    },
  });
  new Counter({
    name: "lp_raft_messages_refused_total",
    help: "Raft messages from authenticated peers refused before the core saw them (impossible for this node; dropped).",
    registers,
    collect() {
      this.reset();
      this.inc(view().messagesRefused);
    },
  });
  scalar("lp_raft_term", "Current Raft term (every election increments it).", (s) => s.term);
  scalar("lp_raft_has_leader", "1 when this replica knows a leader (itself included), else 0.", (s) =>
    s.role === "leader" || s.leaderAddress !== "" ? 1 : 0,
  );
  scalar("lp_raft_commit_index", "Highest log index this replica knows is committed in the cluster.", (s) => s.commitIndex);
  scalar(
    "lp_raft_applied_index",
    "Highest committed index applied here (the replica's commit LSN for readers).",
    (s) => self(s)?.commitLsn ?? 0n,
  );
  scalar("lp_raft_last_index", "Last index in this replica's log (committed or not).", (s) => self(s)?.lastLsn ?? 0n);
  scalar("lp_raft_persisted_index", "Last index durable in this replica's WAL.", (s) => self(s)?.matchLsn ?? 0n);
  const followers = (name: string, help: string, read: (peer: ReplicaStatus) => bigint): void => {
    new Gauge({
      name,
      help,
      labelNames: ["peer"] as const,
      registers,
      collect() {
        // Only the leader tracks its followers: elsewhere the series are absent, not stale.
        this.reset();
        const status = view();
        if (status.role !== "leader") return;
        for (const peer of status.replicas) if (peer.replicaId !== replicaId) this.set({ peer: peer.replicaId }, Number(read(peer)));
      },
    });
  };
  followers("lp_raft_follower_match_index", "On the leader: highest index known replicated on follower `peer`.", (p) => p.matchLsn);
  followers("lp_raft_follower_lag_entries", "On the leader: entries follower `peer` is behind the leader's last index.", (p) => p.lag);
  const leaderChanges = new Counter({
    name: "lp_raft_leader_changes_total",
    help: "Times this replica saw a new leader (another replica, or the same one in a new term) since start.",
    registers,
  });
  let lastLeader: string | null = null;
  const sample = (): void => {
    const status = view();
    const leader = status.role === "leader" ? "self" : status.leaderAddress;
    if (leader === "") return;
    const key = `${leader}@${status.term}`;
    if (lastLeader !== null && key !== lastLeader) leaderChanges.inc();
    lastLeader = key;
  };
  sample();
  const timer = setInterval(sample, LEADERSHIP_SAMPLE_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * How far a replica's applied index may trail the commit index it knows and
 * still be ready: a replica catching up serves reads that far behind.
 */
export const READY_APPLY_LAG_ENTRIES_MAX = 10_000n;

/** /readyz of a replica: it knows a leader and has applied the log to within READY_APPLY_LAG_ENTRIES_MAX of its commit index. */
export function replicaReadiness(status: RaftView, appliedIndex: bigint): Readiness {
  if (status.role !== "leader" && status.leaderAddress === "") return { ready: false, reason: `no leader known (role ${status.role})` };
  const behind = status.commitIndex - appliedIndex;
  if (behind > READY_APPLY_LAG_ENTRIES_MAX) {
    return { ready: false, reason: `catching up: applied ${appliedIndex}, ${behind} entries behind commit ${status.commitIndex}` };
  }
  return { ready: true };
}
