import type { StatusResponse } from "@logplayer/proto";

/** The LogStore's Status.role of the replica that accepts appends. */
export const LEADER_ROLE = "leader";

export interface ReplicaProbe {
  readonly address: string;
  /** Undefined when the replica did not answer. */
  readonly status: StatusResponse | undefined;
}

export function isLeaderStatus(status: StatusResponse): boolean {
  return status.role.toLowerCase() === LEADER_ROLE;
}

/**
 * Picks the LogStore address to send appends to, from what the configured
 * replicas said about themselves. Pure. In order of preference: a replica
 * that says it is the leader; a configured replica that others name as the
 * leader; the first that answered (a single unreplicated LogStore, or an
 * election in progress: a NotLeaderError will redirect later). Null when
 * none answered.
 */
export function chooseLogStore(probes: readonly ReplicaProbe[]): { address: string; status: StatusResponse } | null {
  const answered = probes.filter((p): p is { address: string; status: StatusResponse } => p.status !== undefined);
  const leader = answered.find((p) => isLeaderStatus(p.status));
  if (leader) return leader;
  for (const probe of answered) {
    const named = answered.find((p) => p.address === probe.status.leaderAddress);
    if (named) return named;
  }
  return answered[0] ?? null;
}
