import { assert, failedPrecondition, invalidArgument, type Logger, type TransactionLimits } from "@logplayer/common";
import type { RefusalLog, TransportSecurity } from "@logplayer/tls";
import { decodeConfigChange, DEFAULT_RAFT_CONFIG, EMPTY_HARD_STATE } from "@logplayer/raft";
import { rebuildDedupeTable } from "../dedupe-rebuild";
import type { DedupeTable } from "../dedupe-table";
import type { Wal, WalDamage } from "@logplayer/wal";
import { AddressBook, addressOfMemberContext } from "./address-book";
import type { MembershipAdminLimits } from "./membership-admin";
import { checkPeerLimits, settleBlankStart, settleDamagedStart, type BlankStartOptions } from "./blank-start-probe";
import { clusterLimitsText, REPLICATED_CLUSTER_MODE, type Peer } from "./peers";
import { checkRaftIdentity, RAFT_STATE_FILE, readRaftState, writeRaftState, type RaftIdentity } from "./raft-state-file";
import { fromRaftError } from "./raft-errors";
import { ReplicatedLog, type ReplicationLimits } from "./replicated-log";
import { WalStorage } from "./wal-storage";
import { DEFAULT_SNAPSHOT_TRANSFER_LIMITS, type SnapshotTransferLimits } from "./snapshot-transfer";
import type { LogStoreSnapshot } from "../snapshot-file";

export interface ReplicationSetup {
  readonly replicaId: number;
  readonly peers: readonly Peer[];
  readonly limits: ReplicationLimits;
  /** Started without --peers: the one voter of its own cluster. */
  readonly singleVoter?: true;
  /** --join: a blank replica of an existing cluster rejoins instead of refusing to start (see blank-start.ts). */
  readonly join?: boolean;
  /** Bounds of InstallSnapshot transfers, sent and received (default DEFAULT_SNAPSHOT_TRANSFER_LIMITS). */
  readonly snapshotLimits?: SnapshotTransferLimits;
  /** Bounds of AddMember on the leader (default DEFAULT_MEMBERSHIP_ADMIN_LIMITS). */
  readonly membershipLimits?: MembershipAdminLimits;
}

/** How a replica with an empty data directory reaches its peers before it has a Raft node. */
export interface BlankStartIo {
  readonly serveWhileDeciding: BlankStartOptions["serveWhileDeciding"];
  readonly probeIntervalMs: number;
  readonly channelCredentials: BlankStartOptions["channelCredentials"];
}

/**
 * The peer-list hash of a LogStore started without --peers: a one-voter Raft
 * (as etcd runs a single node). Not a digest of an address, so the listen
 * address may change between starts; it differs from every real peer list, so
 * such a data directory cannot join a replicated cluster by accident.
 */
export const SINGLE_VOTER_PEERS_HASH = "single-voter";

/** The one-voter setup of a LogStore started without --peers (it has no peer address: clients know it). */
export function singleVoterSetup(limits: ReplicationLimits): ReplicationSetup {
  return { replicaId: 1, peers: [{ id: 1, address: "" }], limits, singleVoter: true };
}

/** How long a starting replica waits for each peer's answer when checking that their cluster limits agree. */
const LIMITS_CHECK_TIMEOUT_MS = 2000;

/** Durable entries the Storage adapter keeps decoded-and-encoded beyond the WAL's cache. */
const RECENT_DURABLE_ENTRIES_MAX = 1024;

/**
 * Opens the replicated mode over a recovered WAL: checks the stored identity
 * (a replica started with another cluster id or replica id, or in another
 * mode, exits 1), fills the (empty) dedupe table from the committed log, and builds the Raft
 * adapter. Sizes the Raft windows below the WAL's append queue, because a
 * full queue makes wal.append throw.
 */
export async function openReplication(
  setup: ReplicationSetup,
  clusterId: string,
  dataDir: string,
  wal: Wal,
  dedupe: DedupeTable,
  limits: { transactionLimits: TransactionLimits; messageBytesMax: number; appendQueueMax: number; appendQueueBytesMax: number },
  logger: Logger,
  onFatal: (error: Error) => void,
  transport: { readonly security: TransportSecurity; readonly refusals: RefusalLog },
  blankStartIo?: BlankStartIo,
  snapshot: LogStoreSnapshot | null = null,
): Promise<ReplicatedLog> {
  const { replicaId, peers } = setup;
  const singleVoter = setup.singleVoter === true;
  const identity = replicationIdentity(setup, clusterId, limits.transactionLimits);
  const stored = await readRaftState(dataDir);
  if (stored !== null) checkStartMode(stored.identity, identity);
  if (snapshot !== null) await reconcileWithSnapshot(wal, snapshot, clusterId, logger);
  // An empty data directory of a replicated cluster: a new cluster, or a replica that lost its disk? Its peers know.
  const blank = stored === null && !singleVoter && wal.lastLsn === 0n && blankStartIo !== undefined;
  const storedHardState = blank
    ? await settleBlankStart({ ...blankStartIo, identity, peers, join: setup.join === true }, logger)
    : (stored?.hardState ?? { ...EMPTY_HARD_STATE, term: wal.lastTerm });
  // A replica that did not just ask its peers checks them now: one created with other limits must not join them.
  if (!blank && !singleVoter && blankStartIo !== undefined) {
    await checkPeerLimits({ identity, peers, channelCredentials: blankStartIo.channelCredentials }, LIMITS_CHECK_TIMEOUT_MS, logger);
  }
  if (storedHardState.commit > wal.lastLsn) {
    throw failedPrecondition(
      `raft-state.json says LSN ${storedHardState.commit} is committed but the WAL ends at ${wal.lastLsn}; refusing to start`,
    );
  }
  const snapshotIndex = snapshot?.index ?? 0n;
  const knownHardState = singleVoter ? { ...storedHardState, commit: singleVoterCommit(wal, stored === null, logger) } : storedHardState;
  // The snapshot holds committed entries only; the hard state's commit, written lazily, may lag behind it.
  const hardState = knownHardState.commit < snapshotIndex ? { ...knownHardState, commit: snapshotIndex } : knownHardState;
  if (stored === null) await writeRaftState(dataDir, { identity, hardState });
  assert(dedupe.clientCount === 0, "dedupe table filled before replication opened");
  if (snapshot !== null) dedupe.loadSnapshot(snapshot.dedupe);
  await rebuildDedupeTable(wal, hardState.commit, dedupe);
  logger.info({ dedupeClients: dedupe.clientCount }, "dedupe table rebuilt");
  // In flight per follower and uncommitted on the leader must fit in the WAL's append queue.
  const entriesPerMessageMax = 64;
  // And in bytes: what a leader may have in flight to this replica as a follower fits in a quarter of the WAL's byte
  // bound (the leader's own admission takes at most the other three quarters), so a follower's queue cannot overflow.
  const bytesPerMessageMax = Math.max(1, Math.min(limits.messageBytesMax - 64 * 1024, Math.floor(limits.appendQueueBytesMax / 4)));
  const inflightMessagesByBytes = Math.max(1, Math.floor(limits.appendQueueBytesMax / 4 / bytesPerMessageMax));
  const inflightMessagesMax = Math.max(
    1,
    Math.min(16, inflightMessagesByBytes, Math.floor(limits.appendQueueMax / (2 * entriesPerMessageMax))),
  );
  const uncommittedEntriesMax = Math.max(1, Math.floor(limits.appendQueueMax / 2));
  assert(
    inflightMessagesMax * entriesPerMessageMax <= limits.appendQueueMax || limits.appendQueueMax < 128,
    "raft window exceeds the WAL queue",
  );
  // Entries not yet durable always stay in memory (bounded by the WAL's queue); of the durable ones only a
  // short tail is kept, older reads go to the WAL's own cache (--cache-bytes-max) or to disk.
  const storage = new WalStorage(wal, hardState, RECENT_DURABLE_ENTRIES_MAX);
  if (snapshot !== null)
    storage.setSnapshot({ index: snapshot.index, term: snapshot.term, voters: snapshot.voters, learners: snapshot.learners });
  const config = {
    ...DEFAULT_RAFT_CONFIG,
    id: replicaId,
    // --peers is the starting guess; the snapshot and config entries from the leader say what the membership is. A
    // blank replica that joins with --join (a new member, or a wiped one) is rejoining: it neither votes nor campaigns
    // until it holds every committed entry, by which time the log has told it whether it is a voter or a learner.
    // (Starting it as a learner would keep a wiped former voter a learner in its own view until a snapshot.)
    voters: peers.map((p) => p.id),
    electionTicks: setup.limits.electionTicks,
    heartbeatTicks: setup.limits.heartbeatTicks,
    entriesPerMessageMax,
    inflightMessagesMax,
    uncommittedEntriesMax,
    bytesPerMessageMax,
    appliedIndex: hardState.commit,
  };
  logger.info(
    {
      replicaId,
      peers,
      peersHash: identity.peersHash,
      term: hardState.term.toString(),
      commit: hardState.commit.toString(),
      dedupeClients: dedupe.clientCount,
    },
    "replication state loaded",
  );
  const addresses = new AddressBook(peers);
  for (const member of snapshot?.addresses ?? []) addresses.set(member.id, member.address);
  await learnAddressesFromLog(wal, snapshotIndex + 1n, addresses);
  const options = {
    identity,
    peers,
    addresses,
    dataDir,
    limits: setup.limits,
    transactionLimits: limits.transactionLimits,
    messageBytesMax: limits.messageBytesMax,
    appendQueueMax: limits.appendQueueMax,
    onFatal,
    snapshotLimits: setup.snapshotLimits ?? DEFAULT_SNAPSHOT_TRANSFER_LIMITS,
    security: transport.security,
    refusals: transport.refusals,
  };
  try {
    return new ReplicatedLog(options, wal, storage, config, dedupe, logger, snapshot?.trimLsn ?? 0n);
  } catch (err: unknown) {
    // The core refuses a configuration with its own error; on our side of the wire it is INVALID_ARGUMENT.
    throw fromRaftError(err);
  }
}

/** The identity a replica is started with; refuses a --replica-id that is not in --peers. */
function replicationIdentity(setup: ReplicationSetup, clusterId: string, limits: TransactionLimits): RaftIdentity {
  const { replicaId, peers } = setup;
  if (!peers.some((p) => p.id === replicaId)) {
    throw invalidArgument(`--replica-id ${replicaId} is not in --peers (${peers.map((p) => p.id).join(",")})`);
  }
  const hash = setup.singleVoter === true ? SINGLE_VOTER_PEERS_HASH : REPLICATED_CLUSTER_MODE;
  return { clusterId, replicaId, peersHash: hash, clusterLimits: clusterLimitsText(limits) };
}

/**
 * The WAL's onDamage hook for a replica of a replicated cluster (undefined for
 * a single voter, which has nothing to repair from: its damaged WAL is
 * refused). The entries from the damaged record on are lost, and some may
 * have been acknowledged: before the WAL drops them, this asks every peer
 * for its commit index and writes a rejoining hard state (decideDamagedStart),
 * so that the replica neither votes nor campaigns until the leader's log
 * repair has refilled every committed entry. A crash after that write and
 * before the cut just repeats it on the next start.
 */
export function repairFromPeers(
  setup: ReplicationSetup,
  clusterId: string,
  dataDir: string,
  transactionLimits: TransactionLimits,
  io: BlankStartIo,
  logger: Logger,
): ((damage: WalDamage) => Promise<void>) | undefined {
  if (setup.singleVoter === true) return undefined;
  return async (damage) => {
    const identity = replicationIdentity(setup, clusterId, transactionLimits);
    const stored = await readRaftState(dataDir);
    if (stored === null) {
      throw failedPrecondition(
        `${damage.error.message}; and ${RAFT_STATE_FILE} is missing, so this replica cannot know what it voted: ` +
          "it cannot be repaired from its peers (move the data directory away and start with --join)",
      );
    }
    checkStartMode(stored.identity, identity);
    const { error, keptLastLsn, bytesDropped, segmentsDropped } = damage;
    const dropped = {
      file: error.fileName,
      offset: error.offset,
      problem: error.problem,
      keptLastLsn: keptLastLsn.toString(),
      firstDroppedLsn: (keptLastLsn + 1n).toString(),
      bytesDropped,
      segmentsDropped,
      term: stored.hardState.term.toString(),
      commit: stored.hardState.commit.toString(),
    };
    logger.error(
      dropped,
      "WAL DAMAGED: a record that may have been acknowledged fails its checks. This replica will drop it and every later " +
        "entry, and refill them from its peers; asking every peer for its commit index first",
    );
    const hardState = await settleDamagedStart({ ...io, identity, peers: setup.peers }, stored.hardState, keptLastLsn, logger);
    await writeRaftState(dataDir, { identity: stored.identity, hardState });
    logger.error(
      { ...dropped, votesAgainAtCommit: String(hardState.rejoinUntil) },
      "WAL DAMAGED: dropping the damaged entries; rejoining as a non-voter until the leader has refilled every committed entry",
    );
  };
}

/**
 * A single voter's commit index on start: its whole recovered WAL. Every entry
 * in it was written by this node as leader and a quorum of one is this node,
 * so a durable entry is a committed one (the hard state's commit is written
 * lazily and may lag). This also opens a data directory made before the
 * LogStore ran as a one-voter Raft: a WAL of term-1 entries from LSN 1 and no
 * raft-state.json (written now), whose entries were all acknowledged once durable.
 */
function singleVoterCommit(wal: Wal, legacy: boolean, logger: Logger): bigint {
  if (legacy && wal.lastLsn > 0n) {
    logger.info({ lastLsn: wal.lastLsn.toString() }, `single-replica data directory without ${RAFT_STATE_FILE}: its entries are committed`);
  }
  return wal.lastLsn;
}

/**
 * Makes the WAL continue the snapshot (snapshot.bin), the state of every entry
 * through snapshot.index: the WAL must hold that entry with the snapshot's
 * term, or start just after it. Otherwise a snapshot install was cut short by
 * a crash (its WAL reset had not finished) or the WAL holds a log the
 * snapshot replaced: it is emptied to continue after the snapshot. A WAL that
 * starts further on leaves a gap nothing can fill: refused.
 */
async function reconcileWithSnapshot(wal: Wal, snapshot: LogStoreSnapshot, clusterId: string, logger: Logger): Promise<void> {
  if (snapshot.clusterId !== clusterId) {
    throw failedPrecondition(`snapshot.bin belongs to cluster "${snapshot.clusterId}", this replica to "${clusterId}"; refusing to start`);
  }
  const { index, term } = snapshot;
  if (wal.firstLsn > index + 1n) {
    throw failedPrecondition(
      `the WAL starts at LSN ${wal.firstLsn} but snapshot.bin ends at ${index}: entries are missing; refusing to start`,
    );
  }
  if (wal.firstLsn === index + 1n || wal.termAt(index) === term) return;
  logger.warn(
    {
      snapshotIndex: index.toString(),
      snapshotTerm: term.toString(),
      walFirstLsn: wal.firstLsn.toString(),
      walLastLsn: wal.lastLsn.toString(),
    },
    "the WAL does not continue snapshot.bin (a snapshot install was interrupted): emptying it to continue after the snapshot",
  );
  await wal.resetAfter(index);
}

/** A data directory keeps its mode: one voter (no --peers) or a member of a replicated cluster. */
function checkStartMode(stored: RaftIdentity, started: RaftIdentity): void {
  if (stored.peersHash === SINGLE_VOTER_PEERS_HASH && started.peersHash !== SINGLE_VOTER_PEERS_HASH) {
    throw failedPrecondition("this data directory belongs to a LogStore started without --peers; it cannot join a replicated cluster");
  }
  if (stored.peersHash !== SINGLE_VOTER_PEERS_HASH && started.peersHash === SINGLE_VOTER_PEERS_HASH) {
    throw failedPrecondition(
      `this data directory belongs to replica ${stored.replicaId} of a replicated cluster: start it with its --replica-id and --peers`,
    );
  }
  checkRaftIdentity(stored, started);
}

/** Entries (and bytes) per WAL read while looking for config entries on start. */
const CONFIG_SCAN_BATCH_ENTRIES_MAX = 4096;
const CONFIG_SCAN_BATCH_BYTES_MAX = 16 * 1024 * 1024;

/** The addresses named by the add-learner entries of the log from `from` (above the snapshot) to its end, in log order. */
async function learnAddressesFromLog(wal: Wal, from: bigint, addresses: AddressBook): Promise<void> {
  let next = from > wal.firstLsn ? from : wal.firstLsn;
  while (next <= wal.lastLsn) {
    const entries = await wal.readRange(next, wal.lastLsn, CONFIG_SCAN_BATCH_BYTES_MAX, CONFIG_SCAN_BATCH_ENTRIES_MAX);
    assert(entries.length > 0, `config scan: no entries at ${next}`);
    for (const entry of entries) {
      next = entry.lsn + 1n;
      if (entry.configChange === undefined) continue;
      const change = decodeConfigChange(entry.configChange);
      if (typeof change === "string" || change.type !== "add-learner") continue;
      const address = addressOfMemberContext(change.context);
      if (address !== null) addresses.set(change.node, address);
    }
  }
}
