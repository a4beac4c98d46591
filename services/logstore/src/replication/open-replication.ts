import { assert, failedPrecondition, invalidArgument, type Logger, type TransactionLimits } from "@logplayer/common";
import { DEFAULT_RAFT_CONFIG, EMPTY_HARD_STATE } from "@logplayer/raft";
import { rebuildDedupeTable } from "../dedupe-rebuild";
import type { DedupeTable } from "../dedupe-table";
import type { Wal } from "@logplayer/wal";
import { peersHash, type Peer } from "./peers";
import { checkRaftIdentity, readRaftState, writeRaftState, type RaftIdentity } from "./raft-state-file";
import { ReplicatedLog, type ReplicationLimits } from "./replicated-log";
import { WalStorage } from "./wal-storage";

export interface ReplicationSetup {
  readonly replicaId: number;
  readonly peers: readonly Peer[];
  readonly limits: ReplicationLimits;
}

/** Durable entries the Storage adapter keeps decoded-and-encoded beyond the WAL's cache. */
const RECENT_DURABLE_ENTRIES_MAX = 1024;

/**
 * Opens the replicated mode over a recovered WAL: checks the stored identity
 * (a replica started with another cluster id, replica id or peer list exits
 * 1), fills the (empty) dedupe table from the committed log, and builds the Raft
 * adapter. Sizes the Raft windows below the WAL's append queue, because a
 * full queue makes wal.append throw.
 */
export async function openReplication(
  setup: ReplicationSetup,
  clusterId: string,
  dataDir: string,
  wal: Wal,
  dedupe: DedupeTable,
  limits: { transactionLimits: TransactionLimits; messageBytesMax: number; appendQueueMax: number },
  logger: Logger,
  onFatal: (error: Error) => void,
): Promise<ReplicatedLog> {
  const { replicaId, peers } = setup;
  if (!peers.some((p) => p.id === replicaId)) {
    throw invalidArgument(`--replica-id ${replicaId} is not in --peers (${peers.map((p) => p.id).join(",")})`);
  }
  const identity: RaftIdentity = { clusterId, replicaId, peersHash: peersHash(peers) };
  const stored = await readRaftState(dataDir);
  if (stored !== null) checkRaftIdentity(stored.identity, identity);
  const hardState = stored?.hardState ?? { ...EMPTY_HARD_STATE, term: wal.lastTerm };
  if (hardState.commit > wal.lastLsn) {
    throw failedPrecondition(`raft-state.json says LSN ${hardState.commit} is committed but the WAL ends at ${wal.lastLsn}; refusing to start`);
  }
  if (stored === null) await writeRaftState(dataDir, { identity, hardState });
  assert(dedupe.clientCount === 0, "dedupe table filled before replication opened");
  await rebuildDedupeTable(wal, hardState.commit, dedupe);
  // In flight per follower and uncommitted on the leader must fit in the WAL's append queue.
  const entriesPerMessageMax = 64;
  const inflightMessagesMax = Math.max(1, Math.min(16, Math.floor(limits.appendQueueMax / (2 * entriesPerMessageMax))));
  const uncommittedEntriesMax = Math.max(1, Math.floor(limits.appendQueueMax / 2));
  assert(inflightMessagesMax * entriesPerMessageMax <= limits.appendQueueMax || limits.appendQueueMax < 128, "raft window exceeds the WAL queue");
  // Entries not yet durable always stay in memory (bounded by the WAL's queue); of the durable ones only a
  // short tail is kept, older reads go to the WAL's own cache (--cache-bytes-max) or to disk.
  const storage = new WalStorage(wal, hardState, RECENT_DURABLE_ENTRIES_MAX);
  const config = {
    ...DEFAULT_RAFT_CONFIG,
    id: replicaId,
    voters: peers.map((p) => p.id),
    electionTicks: setup.limits.electionTicks,
    heartbeatTicks: setup.limits.heartbeatTicks,
    entriesPerMessageMax,
    inflightMessagesMax,
    uncommittedEntriesMax,
    bytesPerMessageMax: Math.max(1, limits.messageBytesMax - 64 * 1024),
    appliedIndex: hardState.commit,
  };
  logger.info(
    { replicaId, peers, peersHash: identity.peersHash, term: hardState.term.toString(), commit: hardState.commit.toString(), dedupeClients: dedupe.clientCount },
    "replication state loaded",
  );
  return new ReplicatedLog(
    { identity, peers, dataDir, limits: setup.limits, transactionLimits: limits.transactionLimits, messageBytesMax: limits.messageBytesMax, appendQueueMax: limits.appendQueueMax, onFatal },
    wal, storage, config, dedupe, logger,
  );
}
