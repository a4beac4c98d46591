import { credentials, Metadata, type ServerUnaryCall, type sendUnaryData, type ServiceError } from "@grpc/grpc-js";
import {
  assert,
  failedPrecondition,
  grpcChannelOptions,
  LpError,
  Status,
  unavailable,
  validateTransaction,
  type Logger,
  type TransactionLimits,
} from "@logplayer/common";
import {
  ReplicationClient,
  type AppendRequest,
  type AppendResponse,
  type LogEntry,
  type ReplicaStatus,
  type ReplicationServer,
  type StepRequest,
  type StepResponse,
} from "@logplayer/proto";
import { NO_NODE, RaftNode, type Entry, type Message, type RaftConfig, type Ready } from "@logplayer/raft";
import { encodeEntryPayload } from "@logplayer/wal";
import type { Wal } from "@logplayer/wal";
import { appendKey, isIdempotent, tooOldError, type DedupeTable } from "../dedupe-table";
import type { Peer } from "./peers";
import { writeRaftState, type RaftIdentity } from "./raft-state-file";
import { toLogEntry, WalStorage } from "./wal-storage";
import { messageFromWire, messageToWire } from "./wire";

export interface ReplicationLimits {
  /** Milliseconds per Raft tick (election timeout = electionTicks..2*electionTicks ticks). */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Messages waiting for the Step call to one peer; beyond it new ones are dropped (Raft resends). */
  readonly peerQueueMessagesMax: number;
  readonly peerRpcTimeoutMs: number;
  /** Appends waiting for the new leader's first commit or for a duplicate's original. */
  readonly appendWaitersMax: number;
}

export const DEFAULT_REPLICATION_LIMITS: ReplicationLimits = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  peerQueueMessagesMax: 4096,
  peerRpcTimeoutMs: 2000,
  appendWaitersMax: 100_000,
};

export interface ReplicatedLogOptions {
  readonly identity: RaftIdentity;
  readonly peers: readonly Peer[];
  readonly dataDir: string;
  readonly limits: ReplicationLimits;
  readonly transactionLimits: TransactionLimits;
  readonly messageBytesMax: number;
  /** Bounds the WAL's queue: the in-flight windows are sized below it. */
  readonly appendQueueMax: number;
  readonly onFatal: (error: Error) => void;
}

interface PendingAppend {
  readonly term: bigint;
  readonly resolvers: { resolve: (response: AppendResponse) => void; reject: (error: LpError) => void; duplicate: boolean }[];
}

/**
 * One peer's outbound channel: ONE Step call in flight at a time, carrying
 * everything queued meanwhile. Separate concurrent unary calls can be handled
 * out of order by the receiver, and a reordered AppendEntries makes the
 * leader fall back to probing; one call at a time keeps the order and
 * batches under load.
 */
interface PeerLink {
  readonly peer: Peer;
  readonly client: ReplicationClient;
  queue: Message[];
  sending: boolean;
}

/**
 * The Raft adapter: drives a RaftNode over the WAL (its log), raft-state.json
 * (its hard state), gRPC Step calls (its network) and a timer (its clock).
 * Every input (tick, message, proposal, fsync report) runs through one queue,
 * so nothing reaches the node between ready() and advance() even while a
 * Ready waits for an fsync or a truncation.
 */
export class ReplicatedLog {
  readonly #options: ReplicatedLogOptions;
  readonly #wal: Wal;
  readonly #logger: Logger;
  readonly #storage: WalStorage;
  readonly #node: RaftNode;
  readonly #dedupe: DedupeTable;
  readonly #links = new Map<number, PeerLink>();
  readonly #pending = new Map<bigint, PendingAppend>();
  /** "clientId/seq" -> LSN for appends proposed but not yet applied. */
  readonly #pendingKeys = new Map<string, bigint>();
  #inputs: (() => void)[] = [];
  #processing = false;
  #tickQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #appliedLsn: bigint;
  /** The no-op this node appended on winning its term: appends wait until it is applied. */
  #leaderNoopLsn = 0n;
  #leaderTerm = 0n;
  #leaderReadyWaiters: { resolve: () => void; reject: (error: LpError) => void }[] = [];
  #commitListener: (lsn: bigint) => void = () => {};
  #leaderLostListener: () => void = () => {};
  #leaderKnown = false;
  #stopped = false;
  #lastRefusalLogMs = 0;

  constructor(options: ReplicatedLogOptions, wal: Wal, storage: WalStorage, config: Omit<RaftConfig, "randomInt">, dedupe: DedupeTable, logger: Logger) {
    this.#options = options;
    this.#wal = wal;
    this.#logger = logger;
    this.#storage = storage;
    this.#dedupe = dedupe;
    this.#node = new RaftNode({ ...config, randomInt: (bound) => Math.floor(Math.random() * bound) }, storage);
    this.#appliedLsn = config.appliedIndex;
    for (const peer of options.peers) {
      if (peer.id === options.identity.replicaId) continue;
      const client = new ReplicationClient(peer.address, credentials.createInsecure(), grpcChannelOptions(options.messageBytesMax));
      this.#links.set(peer.id, { peer, client, queue: [], sending: false });
    }
    wal.onDurable((durableLsn) => {
      const term = wal.termAt(durableLsn);
      if (term !== undefined) this.#enqueue(() => this.#node.persisted(durableLsn, term));
    });
  }

  get appliedLsn(): bigint {
    return this.#appliedLsn;
  }

  onCommit(listener: (lsn: bigint) => void): void {
    this.#commitListener = listener;
  }

  /** Called when this replica stops knowing a leader (its commit index may stop advancing). */
  onLeaderLost(listener: () => void): void {
    this.#leaderLostListener = listener;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#tickQueued) return;
      this.#tickQueued = true;
      this.#enqueue(() => {
        this.#tickQueued = false;
        this.#node.tick();
      });
    }, this.#options.limits.tickMs);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#failPending(unavailable("the LogStore is shutting down"));
    for (const link of this.#links.values()) link.client.close();
  }

  // ---- the input queue --------------------------------------------------------

  #enqueue(input: () => void): void {
    if (this.#stopped) return;
    this.#inputs.push(input);
    if (!this.#processing) void this.#process();
  }

  async #process(): Promise<void> {
    assert(!this.#processing, "two Raft processing loops");
    this.#processing = true;
    try {
      while (!this.#stopped && (this.#inputs.length > 0 || this.#node.hasReady())) {
        const inputs = this.#inputs;
        this.#inputs = [];
        for (const input of inputs) input();
        while (this.#node.hasReady()) {
          const ready = this.#node.ready();
          const io = this.#handleReady(ready);
          if (io !== undefined) await io;
          this.#node.advance(ready);
          this.#afterAdvance();
        }
      }
    } catch (err: unknown) {
      this.#options.onFatal(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#processing = false;
    }
  }

  /** Carries out a Ready in the documented order. Returns a promise only when it must wait for disk. */
  #handleReady(ready: Ready): Promise<void> | undefined {
    const { hardState } = ready;
    if (hardState !== undefined) this.#storage.setHardState(hardState);
    const mustSync = hardState !== undefined && ready.hardStateMustSync;
    const truncate = ready.truncateAfter !== undefined && ready.truncateAfter < this.#wal.lastLsn;
    if (!mustSync && !truncate) {
      this.#finishReady(ready);
      return undefined;
    }
    return (async () => {
      if (mustSync) await writeRaftState(this.#options.dataDir, { identity: this.#options.identity, hardState: this.#storage.hardState() });
      if (truncate && ready.truncateAfter !== undefined) {
        this.#logger.warn({ after: ready.truncateAfter.toString(), lastLsn: this.#wal.lastLsn.toString() }, "truncating a conflicting uncommitted suffix");
        this.#storage.truncateAfter(ready.truncateAfter);
        await this.#wal.truncateAfter(ready.truncateAfter);
      }
      this.#finishReady(ready);
    })();
  }

  #finishReady(ready: Ready): void {
    // After stop() the WAL is closing: what is left of this Ready is dropped, like a crash would.
    if (this.#stopped) return;
    for (const entry of ready.entries) this.#appendToWal(entry);
    this.#send(ready.messages);
    if (ready.committedEntries.length > 0) this.#apply(ready.committedEntries);
  }

  #appendToWal(entry: Entry): void {
    this.#storage.remember(entry);
    const { entry: logEntry, payload } = toLogEntry(entry);
    // Durability comes back through wal.onDurable; a write failure is fatal via the WAL observer.
    this.#wal.append(logEntry, payload).catch(() => {});
  }

  // ---- applying committed entries ----------------------------------------------

  #apply(entries: readonly Entry[]): void {
    for (const entry of entries) {
      assert(entry.index === this.#appliedLsn + 1n, `apply of ${entry.index} after ${this.#appliedLsn}`);
      this.#appliedLsn = entry.index;
      const pending = this.#pending.get(entry.index);
      this.#pending.delete(entry.index);
      if (entry.kind === "normal") {
        const { entry: logEntry } = toLogEntry(entry);
        if (isIdempotent(logEntry)) {
          this.#dedupe.record(logEntry.clientId, logEntry.clientSeq, entry.index);
          this.#pendingKeys.delete(appendKey(logEntry.clientId, logEntry.clientSeq));
        }
      }
      if (pending === undefined) continue;
      for (const waiter of pending.resolvers) {
        if (pending.term === entry.term) waiter.resolve({ lsn: entry.index, duplicate: waiter.duplicate });
        else waiter.reject(unavailable("the append was overwritten by a new leader; retry", this.#leaderAddress()));
      }
    }
    this.#commitListener(this.#appliedLsn);
    if (this.#leaderNoopLsn > 0n && this.#appliedLsn >= this.#leaderNoopLsn) {
      const waiters = this.#leaderReadyWaiters;
      this.#leaderReadyWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
  }

  /** Notices leadership changes: a lost leadership fails every waiting append (the client retries). */
  #afterAdvance(): void {
    const status = this.#node.status();
    const leaderKnown = status.leader !== NO_NODE;
    if (this.#leaderKnown && !leaderKnown) this.#leaderLostListener();
    this.#leaderKnown = leaderKnown;
    if (status.role === "leader" && this.#leaderTerm !== status.term) {
      this.#leaderTerm = status.term;
      this.#leaderNoopLsn = status.lastIndex;
      this.#logger.info({ term: status.term.toString(), noopLsn: status.lastIndex.toString() }, "became leader");
    } else if (status.role !== "leader" && this.#leaderTerm !== 0n) {
      this.#logger.info({ term: status.term.toString(), leader: status.leader }, "lost leadership");
      this.#leaderTerm = 0n;
      this.#leaderNoopLsn = 0n;
      this.#failPending(unavailable("leadership changed before the append committed; retry", this.#leaderAddress()));
    }
  }

  #failPending(error: LpError): void {
    for (const pending of this.#pending.values()) for (const waiter of pending.resolvers) waiter.reject(error);
    this.#pending.clear();
    this.#pendingKeys.clear();
    const waiters = this.#leaderReadyWaiters;
    this.#leaderReadyWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }

  // ---- appends -------------------------------------------------------------------

  /** Appends one transaction through Raft; resolves once it is committed and durable here. */
  async append(request: AppendRequest): Promise<AppendResponse> {
    await this.#waitLeaderReady();
    return new Promise<AppendResponse>((resolve, reject) => {
      this.#enqueue(() => {
        try {
          this.#propose(request, resolve, reject);
        } catch (err: unknown) {
          if (!(err instanceof LpError)) throw err;
          reject(err);
        }
      });
    });
  }

  #waitLeaderReady(): Promise<void> {
    if (this.#stopped) return Promise.reject(unavailable("the LogStore is shutting down"));
    const status = this.#node.status();
    if (status.role !== "leader") return Promise.reject(this.#notLeader());
    if (this.#appliedLsn >= this.#leaderNoopLsn) return Promise.resolve();
    if (this.#leaderReadyWaiters.length >= this.#options.limits.appendWaitersMax) {
      return Promise.reject(new LpError(Status.RESOURCE_EXHAUSTED, "too many appends waiting for the new leader"));
    }
    return new Promise((resolve, reject) => this.#leaderReadyWaiters.push({ resolve, reject }));
  }

  #propose(request: AppendRequest, resolve: (r: AppendResponse) => void, reject: (e: LpError) => void): void {
    const status = this.#node.status();
    if (status.role !== "leader" || this.#appliedLsn < this.#leaderNoopLsn) throw this.#notLeader();
    if (isIdempotent(request)) {
      const verdict = this.#dedupe.lookup(request.clientId, request.clientSeq);
      if (verdict.kind === "duplicate") return resolve({ lsn: verdict.lsn, duplicate: true });
      if (verdict.kind === "too-old") throw tooOldError(request.clientId, request.clientSeq, verdict.oldestSeq);
      const inflightLsn = this.#pendingKeys.get(appendKey(request.clientId, request.clientSeq));
      const inflight = inflightLsn === undefined ? undefined : this.#pending.get(inflightLsn);
      if (inflight !== undefined) {
        // The original is still uncommitted: answer with its outcome.
        inflight.resolvers.push({ resolve, reject, duplicate: true });
        return;
      }
    }
    const entry: LogEntry = {
      lsn: status.lastIndex + 1n, term: status.term, txn: request.txn,
      commitTimeNs: request.commitTimeNs, clientId: request.clientId, clientSeq: request.clientSeq,
    };
    const payload = encodeEntryPayload(entry);
    const problem = validateTransaction(request.txn, payload.length, this.#options.transactionLimits);
    if (problem !== null) throw problem;
    const result = this.#node.propose(payload);
    if (!result.ok) {
      if (result.reason === "overloaded") throw new LpError(Status.RESOURCE_EXHAUSTED, "too many uncommitted appends; back off");
      throw this.#notLeader();
    }
    assert(result.index === entry.lsn && result.term === entry.term, `proposal landed at ${result.index}/${result.term}, expected ${entry.lsn}/${entry.term}`);
    this.#pending.set(entry.lsn, { term: entry.term, resolvers: [{ resolve, reject, duplicate: false }] });
    if (isIdempotent(request)) this.#pendingKeys.set(appendKey(request.clientId, request.clientSeq), entry.lsn);
  }

  #notLeader(): LpError {
    return unavailable("not the leader", this.#leaderAddress());
  }

  #leaderAddress(): string | undefined {
    const leader = this.#node.status().leader;
    return this.#options.peers.find((p) => p.id === leader)?.address;
  }

  // ---- the network ---------------------------------------------------------------

  #send(messages: readonly Message[]): void {
    for (const message of messages) {
      const link = this.#links.get(message.to);
      if (link === undefined || link.queue.length >= this.#options.limits.peerQueueMessagesMax) continue;
      link.queue.push(message);
    }
    for (const link of this.#links.values()) if (!link.sending && link.queue.length > 0) this.#flush(link);
  }

  /** Sends the queued messages that fit in one gRPC message; the next call starts when this one returns. */
  #flush(link: PeerLink): void {
    assert(!link.sending && link.queue.length > 0, "flush without messages or while sending");
    const bytesMax = this.#options.messageBytesMax - STEP_OVERHEAD_BYTES;
    let bytes = 0;
    let count = 0;
    while (count < link.queue.length) {
      bytes += messageBytes(link.queue[count]!);
      if (count > 0 && bytes > bytesMax) break;
      count++;
    }
    const batch = link.queue.splice(0, count);
    link.sending = true;
    const request: StepRequest = {
      clusterId: this.#options.identity.clusterId,
      peersHash: this.#options.identity.peersHash,
      messages: batch.map(messageToWire),
    };
    const deadline = Date.now() + this.#options.limits.peerRpcTimeoutMs;
    link.client.step(request, new Metadata(), { deadline }, (err: ServiceError | null) => {
      link.sending = false;
      // A failed call loses its messages, like a lossy network: Raft resends what matters.
      if (err !== null && err.code === Status.FAILED_PRECONDITION) this.#logRefusal(`replica ${link.peer.id} at ${link.peer.address} refused our messages: ${err.details}`);
      if (!this.#stopped && link.queue.length > 0) this.#flush(link);
    });
  }

  /** The Replication service: checks the sender's identity, then queues its messages. */
  service(): ReplicationServer {
    return {
      step: (call: ServerUnaryCall<StepRequest, StepResponse>, callback: sendUnaryData<StepResponse>) => {
        const { clusterId, peersHash, messages } = call.request;
        const { identity } = this.#options;
        if (clusterId !== identity.clusterId || peersHash !== identity.peersHash) {
          const reason =
            `cluster/peer mismatch: sender has cluster "${clusterId}" peers hash ${peersHash}, ` +
            `replica ${identity.replicaId} has cluster "${identity.clusterId}" peers hash ${identity.peersHash}`;
          this.#logRefusal(`refused Raft messages: ${reason}`);
          callback(failedPrecondition(reason).toServiceError());
          return;
        }
        for (const wire of messages) {
          const message = messageFromWire(wire);
          if (message === undefined || message.to !== identity.replicaId) continue;
          this.#enqueue(() => this.#node.step(message));
        }
        callback(null, {});
      },
    };
  }

  #logRefusal(text: string): void {
    const now = Date.now();
    if (now - this.#lastRefusalLogMs < 1000) return;
    this.#lastRefusalLogMs = now;
    this.#logger.error(text);
  }

  // ---- status --------------------------------------------------------------------

  status(): { role: string; term: bigint; leaderAddress: string; replicas: ReplicaStatus[] } {
    const status = this.#node.status();
    const replicas = this.#options.peers.map((peer): ReplicaStatus => {
      if (peer.id === status.id) {
        return {
          replicaId: String(peer.id), address: peer.address, role: status.role, term: status.term,
          lastLsn: status.lastIndex, commitLsn: this.#appliedLsn, matchLsn: status.persistedIndex, lag: 0n,
        };
      }
      const progress = status.role === "leader" ? this.#node.progressOf(peer.id) : undefined;
      const role = peer.id === status.leader ? "leader" : progress !== undefined ? "follower" : "unknown";
      const match = progress?.match ?? 0n;
      return {
        replicaId: String(peer.id), address: peer.address, role, term: progress !== undefined ? status.term : 0n,
        lastLsn: match, commitLsn: 0n, matchLsn: match, lag: progress !== undefined ? status.lastIndex - match : 0n,
      };
    });
    return { role: status.role, term: status.term, leaderAddress: this.#leaderAddress() ?? "", replicas };
  }
}

/** Room for the request's own fields next to the messages' entries. */
const STEP_OVERHEAD_BYTES = 16 * 1024;

/** An upper estimate of a message's encoded size. */
function messageBytes(message: Message): number {
  if (message.type !== "append") return 64;
  return message.entries.reduce((sum, entry) => sum + entry.data.length + 32, 64);
}
