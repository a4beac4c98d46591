import { promises as fs } from "node:fs";
import path from "node:path";
import { failedPrecondition } from "@logplayer/common";
import type { HardState } from "@logplayer/raft";
import { writeFileAtomically } from "../atomic-file";

/**
 * raft-state.json in the data directory: Raft's hard state (term, vote,
 * commit) plus the identity it belongs to (cluster id, replica id, the
 * cluster's mode in `peersHash`: see REPLICATED_CLUSTER_MODE). Written atomically (temp file, fsync, rename, fsync directory), so a
 * crash leaves either the old or the new state.
 */
export const RAFT_STATE_FILE = "raft-state.json";
const FORMAT_VERSION = 1;

export interface RaftIdentity {
  readonly clusterId: string;
  readonly replicaId: number;
  readonly peersHash: string;
  /** clusterLimitsText of cluster.json: sent and checked with every message, not stored here (cluster.json holds it). */
  readonly clusterLimits?: string;
}

export interface RaftStateRecord {
  readonly identity: RaftIdentity;
  readonly hardState: HardState;
}

export async function readRaftState(dataDir: string): Promise<RaftStateRecord | null> {
  const filePath = path.join(dataDir, RAFT_STATE_FILE);
  let text: string;
  try {
    text = await fs.readFile(filePath, "utf8");
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
  return parseRaftState(text, filePath);
}

export function parseRaftState(text: string, filePath: string): RaftStateRecord {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(text) as Record<string, unknown>;
  } catch (err: unknown) {
    throw failedPrecondition(`${filePath} is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { formatVersion, clusterId, replicaId, peersHash, term, vote, commit, rejoinUntil } = record;
  if (
    formatVersion !== FORMAT_VERSION ||
    typeof clusterId !== "string" ||
    typeof replicaId !== "number" ||
    typeof peersHash !== "string" ||
    typeof term !== "string" ||
    typeof vote !== "number" ||
    typeof commit !== "string" ||
    (rejoinUntil !== undefined && (typeof rejoinUntil !== "string" || !/^\d{1,20}$/.test(rejoinUntil)))
  ) {
    throw failedPrecondition(`${filePath} is malformed`);
  }
  const hardState = { term: BigInt(term), vote, commit: BigInt(commit) };
  return {
    identity: { clusterId, replicaId, peersHash },
    hardState: typeof rejoinUntil === "string" ? { ...hardState, rejoinUntil: BigInt(rejoinUntil) } : hardState,
  };
}

/** Refuses to run a replica whose stored identity differs from the one it was started with. */
export function checkRaftIdentity(stored: RaftIdentity, started: RaftIdentity): void {
  if (stored.clusterId !== started.clusterId) {
    throw failedPrecondition(
      `${RAFT_STATE_FILE} belongs to cluster "${stored.clusterId}", but this replica was started for "${started.clusterId}"`,
    );
  }
  if (stored.replicaId !== started.replicaId) {
    throw failedPrecondition(`${RAFT_STATE_FILE} belongs to replica ${stored.replicaId}, but --replica-id is ${started.replicaId}`);
  }
  // peersHash is the cluster's mode (single voter or replicated), checked by openReplication; a data directory made when it
  // was a digest of --peers holds a digest here, and is a replicated one. Membership itself lives in the log, not here.
}

export async function writeRaftState(dataDir: string, state: RaftStateRecord): Promise<void> {
  const { identity, hardState } = state;
  const text = JSON.stringify({
    formatVersion: FORMAT_VERSION,
    clusterId: identity.clusterId,
    replicaId: identity.replicaId,
    peersHash: identity.peersHash,
    term: hardState.term.toString(),
    vote: hardState.vote,
    commit: hardState.commit.toString(),
    ...(hardState.rejoinUntil !== undefined ? { rejoinUntil: hardState.rejoinUntil.toString() } : {}),
  });
  const filePath = path.join(dataDir, RAFT_STATE_FILE);
  await writeFileAtomically(filePath, text);
}
