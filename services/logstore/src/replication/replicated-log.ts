import {
  assert,
  invalidArgument,
  LpError,
  resourceExhausted,
  Status,
  unavailable,
  validateTransaction,
  type Logger,
  type TransactionLimits,
} from "@logplayer/common";
import {
  LookupAppendState,
  type AppendRequest,
  type AppendResponse,
  type LogEntry,
  type LookupAppendRequest,
  type LookupAppendResponse,
  type ReplicaStatus,
  type ReplicationServer,
} from "@logplayer/proto";
import {
  decodeConfigChange,
  NO_NODE,
  type Entry,
  type Membership,
  type ProposeResult,
  type RaftConfig,
  type RaftStatus,
  type SnapshotMessage,
  type SnapshotMeta,
} from "@logplayer/raft";
import { encodeEntryPayload, RECORD_HEADER_BYTES } from "@logplayer/wal";
import { logStoreTrace } from "../hop-trace-points";
import type { Wal, WalCompaction } from "@logplayer/wal";
import { encodeSnapshotFile, readSnapshotFile, writeSnapshotFile, type LogStoreSnapshot } from "../snapshot-file";
import type { ReceivedSnapshot, SnapshotTransferLimits } from "./snapshot-transfer";
import { isRegistration, sessionExpiredError, tooOldError, type DedupeTable } from "../dedupe-table";
import { LogStateMachine, type AppendFailure, type AppendIdentity, type AppendWaiter } from "./log-state-machine";
import { mathRandom, RaftStateFileWriter, WalLogWriter, walTimerClock } from "./node-ports";
import { callerIdentity, channelCredentialsFor, type RefusalLog, type TransportSecurity } from "@logplayer/tls";
import { PeerTransport } from "./peer-transport";
import { addressOfMemberContext, memberContext, type AddressBook } from "./address-book";
import type { MemberChange, MembershipPort } from "./membership-admin";
import { raftErrorToLpError } from "./raft-errors";
import type { Peer } from "./peers";
import { RaftDriver, type RaftProposer } from "./raft-driver";
import type { RaftIdentity } from "./raft-state-file";
import { createReplicationService } from "./replication-service";
import type { WalStorage } from "./wal-storage";

export interface ReplicationLimits {
  /** Milliseconds per Raft tick (election timeout = electionTicks..2*electionTicks ticks). */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Messages waiting for one peer's stream; beyond it new ones are dropped (Raft resends). */
  readonly peerQueueMessagesMax: number;
  /** Bytes of Raft messages queued or being written to one peer's stream; beyond it new ones are dropped. */
  readonly peerStreamBytesMax: number;
  /** A peer stream with bytes waiting that made no progress for this long is cancelled and reopened. */
  readonly peerRpcTimeoutMs: number;
  /** Appends waiting for the new leader's first commit or for a duplicate's original. */
  readonly appendWaitersMax: number;
}

export const DEFAULT_REPLICATION_LIMITS: ReplicationLimits = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  peerQueueMessagesMax: 4096,
  peerStreamBytesMax: 32 * 1024 * 1024,
  peerRpcTimeoutMs: 2000,
  appendWaitersMax: 100_000,
};

/** How long a leader waits for its own membership change to commit: polls of CONFIG_COMMIT_POLL_MS. */
const CONFIG_COMMIT_POLL_MS = 20;
const CONFIG_COMMIT_POLLS_MAX = 1500;

/** Entries (and bytes) per WAL read while a LookupAppend scans the log. */
const LOOKUP_SCAN_BATCH_ENTRIES_MAX = 4096;
const LOOKUP_SCAN_BATCH_BYTES_MAX = 16 * 1024 * 1024;

/** What one proposal carries: an append's transaction, or a registration (seq 0, no mutations). */
interface Proposal {
  readonly kind: "append" | "registration";
  readonly identity: AppendIdentity;
  readonly txn: LogEntry["txn"];
  readonly commitTimeNs: bigint;
}

/** What compactLogTo did: the snapshot it holds now, and the WAL's compaction. */
export interface LogCompaction extends WalCompaction {
  readonly snapshotIndex: bigint;
}

export interface ReplicatedLogOptions {
  readonly identity: RaftIdentity;
  /** The members when the log opened, with their addresses (what PeerTransport first links to). */
  readonly peers: readonly Peer[];
  /** Every replica's address: --peers, then the snapshot, then the log's config entries (address-book.ts). */
  readonly addresses: AddressBook;
  readonly dataDir: string;
  readonly limits: ReplicationLimits;
  readonly transactionLimits: TransactionLimits;
  readonly messageBytesMax: number;
  /** Bounds the WAL's queue: the in-flight windows are sized below it. */
  readonly appendQueueMax: number;
  readonly onFatal: (error: Error) => void;
  /** Bounds of InstallSnapshot, sending and receiving. */
  readonly snapshotLimits: SnapshotTransferLimits;
  /** mTLS to the peers and the sender check on Step, or --insecure. */
  readonly security: TransportSecurity;
  readonly refusals: RefusalLog;
}

/**
 * The LogStore's log over Raft: wires the Raft driver to its ports on this
 * machine (the WAL, raft-state.json, gRPC peers, a timer, Math.random) and to
 * the log state machine, and turns their outcomes into gRPC-coded answers.
 */
export class ReplicatedLog {
  readonly #options: ReplicatedLogOptions;
  readonly #logger: Logger;
  readonly #driver: RaftDriver;
  readonly #state: LogStateMachine;
  readonly #transport: PeerTransport;
  readonly #logWriter: WalLogWriter;
  readonly #admissionBytesMax: number;
  readonly #wal: Wal;
  readonly #dedupe: DedupeTable;
  readonly #lookupScanEntriesMax: number;
  #lookupScanRunning = false;
  #commitListener: (lsn: bigint) => void = () => {};
  #leaderLostListener: () => void = () => {};
  #leaderKnown = false;
  /** Started blank with --join and not yet caught up (HardState.rejoinUntil). */
  #rejoining: boolean;
  #stopped = false;
  #lastRefusalLogMs = 0;
  readonly #storage: WalStorage;
  /** The trim point recorded in the snapshots this replica takes (the trimming policy's); 0n for none. */
  #trimLsn: bigint;
  /** compactLogTo runs one at a time. */
  #compaction: Promise<unknown> = Promise.resolve();
  /** Snapshots received (InstallSnapshot) and stepped into the core, by index, until it asks to install one. */
  readonly #receivedSnapshots = new Map<bigint, ReceivedSnapshot>();
  /** Followers a snapshot is being streamed to. */
  readonly #snapshotsInFlight = new Set<number>();

  constructor(
    options: ReplicatedLogOptions,
    wal: Wal,
    storage: WalStorage,
    config: Omit<RaftConfig, "randomInt">,
    dedupe: DedupeTable,
    logger: Logger,
    trimLsn = 0n,
  ) {
    this.#options = options;
    this.#storage = storage;
    this.#trimLsn = trimLsn;
    this.#logger = logger;
    this.#rejoining = storage.hardState().rejoinUntil !== undefined;
    this.#wal = wal;
    this.#dedupe = dedupe;
    this.#lookupScanEntriesMax = dedupe.limits.lookupScanEntriesMax;
    this.#state = new LogStateMachine(dedupe, config.appliedIndex, options.limits.appendWaitersMax);
    this.#transport = new PeerTransport({
      identity: options.identity,
      peers: options.peers,
      messageBytesMax: options.messageBytesMax,
      peerQueueMessagesMax: options.limits.peerQueueMessagesMax,
      peerStreamBytesMax: options.limits.peerStreamBytesMax,
      peerRpcTimeoutMs: options.limits.peerRpcTimeoutMs,
      channelCredentials: channelCredentialsFor(options.security),
      onRefused: (text) => this.#logRefusal(text),
      onSnapshot: (message) => this.#sendSnapshot(message),
    });
    this.#logWriter = new WalLogWriter(wal, storage, logger);
    // A quarter of the WAL's byte bound stays free for what this replica must take without refusing: the
    // entries a leader sends it as a follower, a new term's no-op.
    this.#admissionBytesMax = Math.floor((wal.limits.appendQueueBytesMax * 3) / 4);
    this.#driver = new RaftDriver({
      config,
      storage,
      tickMs: options.limits.tickMs,
      ports: {
        log: {
          write: (truncateAfter, entries, done) => {
            this.#learnAddresses(entries);
            this.#logWriter.write(truncateAfter, entries, done);
          },
        },
        hardState: new RaftStateFileWriter(options.dataDir, options.identity, storage),
        transport: {
          send: (messages) => this.#transport.send(messages),
          membershipChanged: (membership) => this.#linkMembers(membership),
        },
        clock: walTimerClock(wal),
        random: mathRandom,
        snapshots: { install: (snapshot, done) => this.#installSnapshot(snapshot, done) },
      },
      application: {
        apply: (entries) => {
          this.#state.apply(entries);
          logStoreTrace.applied(this.#state.appliedLsn);
          this.#commitListener(this.#state.appliedLsn);
        },
        observe: (status) => this.#observe(status),
      },
      onFatal: options.onFatal,
      onMessageRefused: (reason, message) =>
        this.#logRefusal(`refused a Raft ${message.type} from replica ${message.from} (dropped, the node keeps running): ${reason}`),
    });
    wal.onDurable((durableLsn) => {
      logStoreTrace.durable(durableLsn);
      const term = wal.termAt(durableLsn);
      if (term !== undefined) this.#driver.persisted(durableLsn, term);
    });
  }

  /** An add-learner entry names the new replica's address: learned when the entry is written, before its links open. */
  #learnAddresses(entries: readonly Entry[]): void {
    for (const entry of entries) {
      if (entry.kind !== "config") continue;
      const change = decodeConfigChange(entry.data);
      if (typeof change === "string" || change.type !== "add-learner") continue;
      const address = addressOfMemberContext(change.context);
      if (address !== null) this.#options.addresses.set(change.node, address);
    }
  }

  /** Ready.membership: one link per member but this replica, none to a removed one. */
  #linkMembers(membership: Membership): void {
    const members = [...membership.voters, ...membership.learners];
    for (const id of this.#transport.peerIds) if (!members.includes(id)) this.#transport.removePeer(id);
    for (const peer of this.#options.addresses.peersOf(members)) this.#transport.addPeer(peer);
    this.#logger.info({ voters: membership.voters, learners: membership.learners, links: this.#transport.peerIds }, "membership");
  }

  get appliedLsn(): bigint {
    return this.#state.appliedLsn;
  }

  /** The dedupe table's sessions: how many it holds, and how many ended since start, by cause. */
  get sessions(): { readonly live: number; readonly evicted: number; readonly expired: number } {
    const { evicted, expired } = this.#dedupe.sessionsEnded;
    return { live: this.#dedupe.clientCount, evicted, expired };
  }

  /**
   * Compacts the log (issue #14): snapshots the replicated state at the
   * applied index A (snapshot.bin, written crash-safely; skipped when the
   * newest snapshot is already at A), then deletes the WAL segments whose
   * entries are all <= min(lsn, snapshot index). Never deletes an entry above
   * `lsn` nor one the snapshot does not cover; a follower that needs a
   * deleted entry gets the snapshot (InstallSnapshot). `trimLsn`, when given,
   * is recorded in the snapshot as the trim point. Runs one at a time.
   */
  compactLogTo(lsn: bigint, trimLsn?: bigint): Promise<LogCompaction> {
    if (trimLsn !== undefined) this.#trimLsn = trimLsn;
    const run = this.#compaction.then(() => this.#compactLogTo(lsn));
    this.#compaction = run.catch(() => undefined);
    return run;
  }

  async #compactLogTo(lsn: bigint): Promise<LogCompaction> {
    if (this.#stopped) throw unavailable("the LogStore is stopping");
    let snapshot = this.#storage.snapshot();
    const index = this.#dedupe.positionLsn;
    if (index > 0n && (snapshot === undefined || index > snapshot.index)) {
      const term = this.#wal.termAt(index);
      assert(term !== undefined, `compaction: no term for the applied index ${index}`);
      const membership = this.#driver.membershipAt(index) ?? this.#driver.membership();
      const state: LogStoreSnapshot = {
        index,
        term,
        voters: membership.voters,
        learners: membership.learners,
        addresses: this.#options.addresses.peersOf([...membership.voters, ...membership.learners]),
        clusterId: this.#options.identity.clusterId,
        trimLsn: this.#trimLsn,
        dedupe: this.#dedupe.exportSnapshot(),
      };
      await writeSnapshotFile(this.#options.dataDir, encodeSnapshotFile(state));
      snapshot = { index, term, voters: membership.voters, learners: membership.learners };
      this.#storage.setSnapshot(snapshot);
      this.#logger.info({ index: index.toString(), term: term.toString() }, "snapshot taken");
    }
    const snapshotIndex = snapshot?.index ?? 0n;
    const compactTo = lsn < snapshotIndex ? lsn : snapshotIndex;
    const wal = await this.#wal.compactTo(compactTo);
    return { snapshotIndex, ...wal };
  }

  /** Leader: streams snapshot.bin to the follower the core named; the transfer's end goes back to the core. */
  #sendSnapshot(message: SnapshotMessage): void {
    const to = message.to;
    if (this.#snapshotsInFlight.has(to) || this.#stopped) return;
    this.#snapshotsInFlight.add(to);
    const limits = this.#options.snapshotLimits;
    void (async () => {
      const loaded = await readSnapshotFile(this.#options.dataDir);
      if (loaded === null) throw new Error("no snapshot.bin to send");
      const { index, term, voters, learners } = loaded.snapshot;
      this.#logger.info({ to, index: index.toString(), bytes: loaded.bytes.length }, "sending a snapshot");
      const meta = { index, term, voters, learners };
      await this.#transport.sendSnapshot({ identity: this.#options.identity, to, term: message.term, meta, bytes: loaded.bytes }, limits);
    })().then(
      () => {
        this.#snapshotsInFlight.delete(to);
        this.#driver.reportSnapshot(to, "finished");
      },
      (err: unknown) => {
        this.#snapshotsInFlight.delete(to);
        this.#logRefusal(`sending a snapshot to replica ${to} failed: ${err instanceof Error ? err.message : String(err)}`);
        this.#driver.reportSnapshot(to, "failed");
      },
    );
  }

  /** Follower: a whole, checked snapshot arrived; keep it until the core asks to install it, and step its message. */
  #receiveSnapshot(received: ReceivedSnapshot): void {
    if (this.#stopped) throw unavailable("the LogStore is stopping");
    this.#receivedSnapshots.set(received.meta.index, received);
    // At most the two newest: the core installs the newest it restored, older ones it acknowledges without data.
    const indexes = [...this.#receivedSnapshots.keys()].sort((a, b) => (a < b ? 1 : -1));
    for (const old of indexes.slice(2)) this.#receivedSnapshots.delete(old);
    this.#driver.step({
      type: "snapshot",
      from: received.from,
      to: this.#options.identity.replicaId,
      term: received.term,
      snapshot: received.meta,
    });
  }

  /**
   * Ready.snapshot: makes the received snapshot this replica's state, durably:
   * snapshot.bin first, then the WAL emptied to continue after it (a crash in
   * between is finished on the next start: see openReplication), then the
   * in-memory state (dedupe table, applied index, the Raft storage's view).
   */
  #installSnapshot(meta: SnapshotMeta, done: (error?: Error) => void): void {
    const received = this.#receivedSnapshots.get(meta.index);
    if (received === undefined || received.meta.term !== meta.term) {
      done(new Error(`raft asked to install snapshot ${meta.term}/${meta.index}, which this replica did not receive`));
      return;
    }
    // Queued behind any compaction under way: a compaction that began at an older applied index and wrote its
    // snapshot.bin after this install would take the durable snapshot back below the emptied WAL (Raft simulator
    // with --snapshots, seeds 93 and 300). One chain runs both, one at a time.
    const install = this.#compaction.then(async () => {
      await writeSnapshotFile(this.#options.dataDir, received.bytes);
      await this.#wal.resetAfter(meta.index);
      this.#storage.forgetAll();
      this.#storage.setSnapshot(meta);
      this.#dedupe.replaceWithSnapshot(received.state.dedupe);
      this.#state.restoredSnapshot(meta.index);
      this.#trimLsn = received.state.trimLsn;
      for (const member of received.state.addresses) this.#options.addresses.set(member.id, member.address);
      this.#receivedSnapshots.clear();
      this.#logger.info({ index: meta.index.toString(), term: meta.term.toString() }, "snapshot installed");
      this.#commitListener(meta.index);
    });
    this.#compaction = install.catch(() => undefined);
    install.then(
      () => done(),
      (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
    );
  }

  onCommit(listener: (lsn: bigint) => void): void {
    this.#commitListener = listener;
  }

  /** Called when this replica stops knowing a leader (its commit index may stop advancing). */
  onLeaderLost(listener: () => void): void {
    this.#leaderLostListener = listener;
  }

  start(): void {
    this.#driver.start();
  }

  stop(): void {
    this.#stopped = true;
    this.#driver.stop();
    this.#state.failAll("stopped");
    this.#transport.close();
  }

  /** Notices leadership changes: a lost leadership fails every waiting append (the client retries). */
  #observe(status: RaftStatus): void {
    const leaderKnown = status.leader !== NO_NODE;
    if (this.#leaderKnown && !leaderKnown) this.#leaderLostListener();
    this.#leaderKnown = leaderKnown;
    if (this.#rejoining && !status.rejoining) {
      this.#rejoining = false;
      this.#logger.info(
        { term: status.term.toString(), leader: status.leader, durableCommit: status.durableCommit.toString() },
        "rejoined: this replica holds every committed entry and votes again",
      );
    }
    const change = this.#state.observe(status);
    if (change?.kind === "became-leader") {
      this.#logger.info({ term: change.term.toString(), noopLsn: change.noopLsn.toString() }, "became leader");
    } else if (change?.kind === "lost-leadership") {
      this.#logger.info({ term: change.term.toString(), leader: status.leader }, "lost leadership");
    }
  }

  // ---- appends -------------------------------------------------------------------

  /** Appends one transaction through Raft; resolves once it is committed and durable here. */
  async append(request: AppendRequest): Promise<AppendResponse> {
    const { clientId, clientSeq, sessionLsn } = request;
    const identity = { clientId, clientSeq, sessionLsn };
    return this.#submit({ kind: "append", identity, txn: request.txn, commitTimeNs: request.commitTimeNs });
  }

  /**
   * Opens a session for `clientId`: appends its registration entry and
   * resolves with that entry's LSN, the session's id, once committed.
   */
  async register(clientId: string): Promise<bigint> {
    if (clientId === "") throw invalidArgument("RegisterClient needs a client_id");
    const response = await this.#submit({
      kind: "registration",
      identity: { clientId, clientSeq: 0n, sessionLsn: 0n },
      txn: { mutations: [] },
      commitTimeNs: 0n,
    });
    return response.lsn;
  }

  #submit(proposal: Proposal): Promise<AppendResponse> {
    return this.#waitLeaderReady().then(() => this.#proposeAndWait(proposal));
  }

  #proposeAndWait(proposal: Proposal): Promise<AppendResponse> {
    return new Promise<AppendResponse>((resolve, reject) => {
      const waiter: AppendWaiter = {
        committed: (lsn, duplicate) => resolve({ lsn, duplicate }),
        failed: (reason) => reject(this.#failureError(reason)),
      };
      this.#driver.propose((node) => {
        try {
          this.#propose(node, proposal, waiter);
        } catch (err: unknown) {
          if (!(err instanceof LpError)) throw err;
          reject(err);
        }
      });
      if (this.#driver.stopped) reject(unavailable("the LogStore is shutting down"));
    });
  }

  #waitLeaderReady(): Promise<void> {
    if (this.#stopped) return Promise.reject(unavailable("the LogStore is shutting down"));
    // A node that has just won (its first Ready still being written) waits like one whose no-op is not applied yet.
    if (this.#driver.status().role !== "leader") return Promise.reject(this.#notLeader());
    if (this.#state.leaderReady) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiting = this.#state.waitLeaderReady({ ready: resolve, failed: (reason) => reject(this.#failureError(reason)) });
      if (!waiting) reject(new LpError(Status.RESOURCE_EXHAUSTED, "too many appends waiting for the new leader"));
    });
  }

  /**
   * One input of the driver's queue: validation, the verdict and the proposal happen with nothing in between.
   * Bad input is refused before the verdict, so that it gets its own code whatever the client's session.
   */
  #propose(node: RaftProposer, proposal: Proposal, waiter: AppendWaiter): void {
    const status = node.status();
    if (status.role !== "leader" || status.term !== this.#state.leaderTerm || !this.#state.leaderReady) throw this.#notLeader();
    const { identity } = proposal;
    const entry: LogEntry = {
      lsn: status.lastIndex + 1n,
      term: status.term,
      txn: proposal.txn,
      commitTimeNs: proposal.commitTimeNs,
      clientId: identity.clientId,
      clientSeq: identity.clientSeq,
    };
    const payload = encodeEntryPayload(entry);
    if (proposal.kind === "registration") {
      assert(isRegistration(entry), "log: a registration entry that does not read as one");
      const entryBytesMax = this.#options.transactionLimits.entryBytesMax;
      if (payload.length > entryBytesMax)
        throw resourceExhausted(`registration entry of ${payload.length} bytes > entry_bytes_max ${entryBytesMax}`);
    } else {
      const problem = validateTransaction(proposal.txn, payload.length, this.#options.transactionLimits);
      if (problem !== null) throw problem;
      // After the transaction's own checks, so that bad input keeps its code (an empty transaction with seq 0 is not a registration).
      if (identity.clientId !== "" && identity.clientSeq === 0n)
        throw invalidArgument("client_seq must be > 0 in an append with a client_id");
      if (identity.clientId === "" && identity.sessionLsn !== 0n) throw invalidArgument("session_lsn without a client_id");
      const verdict = this.#state.verdict(identity, waiter);
      switch (verdict.kind) {
        case "duplicate":
          waiter.committed(verdict.lsn, true);
          return;
        case "too-old":
          throw tooOldError(identity.clientId, identity.clientSeq, verdict.oldestSeq);
        case "session-expired":
          throw sessionExpiredError(identity.clientId, identity.clientSeq, identity.sessionLsn);
        case "joined-in-flight":
          return;
        case "new":
          break;
      }
    }
    // The Raft window counts entries; this counts bytes, before the entry is in the log at all.
    const pendingBytes = this.#logWriter.pendingBytes + RECORD_HEADER_BYTES + payload.length;
    if (pendingBytes > this.#admissionBytesMax) {
      throw new LpError(
        Status.RESOURCE_EXHAUSTED,
        `append queue is full by bytes (${pendingBytes} would be queued, admission bound ${this.#admissionBytesMax} = 3/4 of ` +
          "append_queue_bytes_max); back off and retry",
      );
    }
    const result = node.propose(payload);
    if (!result.ok) {
      if (result.reason === "overloaded") throw new LpError(Status.RESOURCE_EXHAUSTED, "too many uncommitted appends; back off");
      throw this.#notLeader();
    }
    assert(
      result.index === entry.lsn && result.term === entry.term,
      `proposal landed at ${result.index}/${result.term}, expected ${entry.lsn}/${entry.term}`,
    );
    this.#logWriter.proposed(entry, payload.length + RECORD_HEADER_BYTES);
    logStoreTrace.proposed(entry.lsn, entry.commitTimeNs);
    this.#state.track(entry.lsn, entry.term, identity, waiter);
  }

  /**
   * Where an idempotent append stands (LookupAppend). Leader only: its
   * dedupe table plus its appends in flight cover its whole log. While the
   * session lives the table answers; once it is gone, the committed log from
   * `fromLsn` is searched for (clientId, clientSeq), at most
   * `lookupScanEntriesMax` entries, one scan at a time.
   */
  async lookupAppend(request: LookupAppendRequest): Promise<LookupAppendResponse> {
    const { clientId, clientSeq, sessionLsn } = request;
    if (clientId === "" || clientSeq === 0n) throw invalidArgument("LookupAppend needs a client_id and a client_seq > 0");
    await this.#waitLeaderReady();
    if (this.#lookupScanRunning) throw resourceExhausted("another LookupAppend is scanning the log; retry shortly");
    this.#lookupScanRunning = true;
    try {
      return await this.#lookupLoop({ clientId, clientSeq, sessionLsn }, request.fromLsn);
    } finally {
      this.#lookupScanRunning = false;
    }
  }

  async #lookupLoop(identity: AppendIdentity, fromLsn: bigint): Promise<LookupAppendResponse> {
    const term = this.#state.leaderTerm;
    const answer = (state: LookupAppendState, lsn: bigint, scannedToLsn: bigint, detail = ""): LookupAppendResponse => ({
      state,
      lsn,
      scannedToLsn,
      detail,
    });
    const scanStart = fromLsn > this.#wal.firstLsn ? fromLsn : this.#wal.firstLsn;
    let next = scanStart;
    let budget = this.#lookupScanEntriesMax;
    // Each turn scans what committed since the last one (at least one entry) or answers: at most lookupScanEntriesMax turns.
    for (;;) {
      if (!this.#state.leaderReady || this.#state.leaderTerm !== term) throw this.#notLeader();
      const location = this.#state.locate(identity);
      const appliedLsn = this.#state.appliedLsn;
      switch (location.kind) {
        case "committed":
          return answer(LookupAppendState.LOOKUP_APPEND_STATE_COMMITTED, location.lsn, appliedLsn);
        case "in-flight":
          return answer(LookupAppendState.LOOKUP_APPEND_STATE_IN_FLIGHT, location.lsn, appliedLsn);
        case "absent":
          return answer(LookupAppendState.LOOKUP_APPEND_STATE_NOT_YET_APPENDED, 0n, appliedLsn);
        case "too-old":
          return answer(LookupAppendState.LOOKUP_APPEND_STATE_UNKNOWN, 0n, 0n, "client_seq is older than the session's dedupe window");
        case "no-session":
          break;
      }
      if (next > appliedLsn) {
        // Not in the log, nothing in flight, and no live session: an attempt still on its way will be refused.
        // Without registration a first append (seq 1) opens a new session, so such an attempt could still land.
        if (identity.sessionLsn === 0n) return answer(LookupAppendState.LOOKUP_APPEND_STATE_NOT_YET_APPENDED, 0n, appliedLsn);
        // A session's appends all come after its registration: a search that started later may have missed one.
        if (scanStart > identity.sessionLsn + 1n) {
          const detail = `searched from LSN ${scanStart} only, but the session's appends start after LSN ${identity.sessionLsn}; give from_lsn ${identity.sessionLsn}`;
          return answer(LookupAppendState.LOOKUP_APPEND_STATE_UNKNOWN, 0n, appliedLsn, detail);
        }
        return answer(LookupAppendState.LOOKUP_APPEND_STATE_NOT_APPENDED, 0n, appliedLsn);
      }
      const span = appliedLsn - next + 1n;
      if (span > BigInt(budget)) {
        return answer(
          LookupAppendState.LOOKUP_APPEND_STATE_UNKNOWN,
          0n,
          0n,
          `the session is gone and the log from LSN ${next} to ${appliedLsn} is longer than lookup_scan_entries_max ` +
            `(${this.#lookupScanEntriesMax}); give a later from_lsn or read the transaction's keys`,
        );
      }
      budget -= Number(span);
      const found = await this.#scanFor(identity, next, appliedLsn);
      if (found !== undefined) return answer(LookupAppendState.LOOKUP_APPEND_STATE_COMMITTED, found, appliedLsn);
      next = appliedLsn + 1n;
    }
  }

  /** The LSN of the append (clientId, clientSeq) in the committed range [from, to], if there. */
  async #scanFor(identity: AppendIdentity, from: bigint, to: bigint): Promise<bigint | undefined> {
    let next = from;
    while (next <= to) {
      const entries = await this.#wal.readRange(next, to, LOOKUP_SCAN_BATCH_BYTES_MAX, LOOKUP_SCAN_BATCH_ENTRIES_MAX);
      assert(entries.length > 0, `lookup scan: no entries at ${next}`);
      for (const entry of entries) {
        if (entry.clientId === identity.clientId && entry.clientSeq === identity.clientSeq && entry.txn !== undefined) return entry.lsn;
        next = entry.lsn + 1n;
      }
    }
    return undefined;
  }

  #failureError(reason: AppendFailure): LpError {
    switch (reason) {
      case "overwritten":
        return unavailable("the append was overwritten by a new leader; retry", this.#leaderAddress());
      case "leadership-lost":
        return unavailable("leadership changed before the append committed; retry", this.#leaderAddress());
      case "stopped":
        return unavailable("the LogStore is shutting down");
    }
  }

  /** What MembershipAdmin needs of this replica as leader (AddMember, RemoveMember, ListMembers). */
  membershipPort(): MembershipPort {
    return {
      leaderMembership: async () => {
        await this.#waitLeaderReady();
        const status = this.#driver.status();
        return { membership: this.#driver.membership(), leaderId: status.id, commit: status.commit };
      },
      addressOf: (id) => this.#options.addresses.addressOf(id),
      proposeAndCommit: (change) => this.#proposeConfigChange(change),
      matchOf: (id) => this.#driver.progressOf(id)?.match,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    };
  }

  /** Proposes a membership change and waits (bounded) until it is applied here, the leader. */
  async #proposeConfigChange(change: MemberChange): Promise<void> {
    await this.#waitLeaderReady();
    const context = change.type === "add-learner" ? memberContext(change.address) : new Uint8Array(0);
    const result = await new Promise<ProposeResult>((resolve) =>
      this.#driver.proposeConfigChange({ type: change.type, node: change.node, context }, resolve),
    );
    if (!result.ok) {
      if (result.reason === "not-leader") throw this.#notLeader();
      if (result.reason === "overloaded") throw new LpError(Status.RESOURCE_EXHAUSTED, "too many uncommitted entries; retry");
      throw raftErrorToLpError(result.error);
    }
    this.#logger.info({ change: change.type, node: change.node, index: result.index.toString() }, "membership change proposed");
    for (let poll = 0; poll < CONFIG_COMMIT_POLLS_MAX; poll++) {
      if (this.#state.appliedLsn >= result.index) return;
      const status = this.#driver.status();
      if (this.#stopped || status.role !== "leader" || status.term !== result.term) {
        throw unavailable(`leadership changed before the ${change.type} of ${change.node} committed; retry`, this.#leaderAddress());
      }
      await new Promise((resolve) => setTimeout(resolve, CONFIG_COMMIT_POLL_MS));
    }
    throw new LpError(Status.DEADLINE_EXCEEDED, `the ${change.type} of ${change.node} did not commit in time; retry`);
  }

  #notLeader(): LpError {
    const leader = this.#leaderAddress();
    // The address also travels as lp-leader metadata; the message names it for people reading a log line.
    return unavailable(leader === undefined ? "not the leader (no leader known yet)" : `not the leader; the leader is ${leader}`, leader);
  }

  /** The leader's address as --peers names it ("" when none is known), and whether this replica leads: for every Read response. */
  leader(): { readonly address: string; readonly isLeader: boolean } {
    return { address: this.#leaderAddress() ?? "", isLeader: this.#driver.status().role === "leader" };
  }

  #leaderAddress(): string | undefined {
    const leader = this.#driver.status().leader;
    // A single voter has no peer address; its clients already know it.
    return this.#options.addresses.addressOf(leader);
  }

  /** The Replication service: checks the sender's identity, then queues its messages. */
  service(): ReplicationServer {
    const { security, refusals } = this.#options;
    return createReplicationService(
      this.#options.identity,
      (message) => this.#driver.step(message),
      (text) => this.#logRefusal(text),
      security.mode === "insecure" ? null : { senderOf: (call) => callerIdentity(call, security), refusals },
      () => {
        const status = this.#driver.status();
        return {
          state: status.rejoining ? "rejoining" : "voter",
          term: status.term,
          lastIndex: status.lastIndex,
          commit: status.commit,
        };
      },
      { limits: this.#options.snapshotLimits, receive: (received) => this.#receiveSnapshot(received) },
    );
  }

  #logRefusal(text: string): void {
    const now = Date.now();
    if (now - this.#lastRefusalLogMs < 1000) return;
    this.#lastRefusalLogMs = now;
    this.#logger.error(text);
  }

  // ---- status --------------------------------------------------------------------

  status(): {
    role: string;
    term: bigint;
    leaderAddress: string;
    commitIndex: bigint;
    replicas: ReplicaStatus[];
    messagesRefused: number;
    voters: readonly number[];
    learners: readonly number[];
  } {
    const status = this.#driver.status();
    const membership = this.#driver.membership();
    const replicas = this.#options.addresses.peersOf([...membership.voters, ...membership.learners]).map((peer): ReplicaStatus => {
      const learner = membership.learners.includes(peer.id);
      if (peer.id === status.id) {
        return {
          replicaId: String(peer.id),
          address: peer.address,
          role: status.rejoining ? "rejoining" : learner ? "learner" : status.role,
          term: status.term,
          lastLsn: status.lastIndex,
          commitLsn: this.#state.appliedLsn,
          matchLsn: status.persistedIndex,
          lag: 0n,
        };
      }
      const progress = status.role === "leader" ? this.#driver.progressOf(peer.id) : undefined;
      const role = peer.id === status.leader ? "leader" : learner ? "learner" : progress !== undefined ? "follower" : "unknown";
      const match = progress?.match ?? 0n;
      return {
        replicaId: String(peer.id),
        address: peer.address,
        role,
        term: progress !== undefined ? status.term : 0n,
        lastLsn: match,
        commitLsn: 0n,
        matchLsn: match,
        lag: progress !== undefined ? status.lastIndex - match : 0n,
      };
    });
    const { messagesRefused } = this.#driver;
    return {
      role: status.role,
      term: status.term,
      leaderAddress: this.#leaderAddress() ?? "",
      commitIndex: status.commit,
      replicas,
      messagesRefused,
      voters: membership.voters,
      learners: membership.learners,
    };
  }
}
