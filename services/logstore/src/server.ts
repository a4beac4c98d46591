import type { ServerDuplexStream, ServerUnaryCall, ServerWritableStream, sendUnaryData } from "@grpc/grpc-js";
import {
  AssertionError,
  CallerSlots,
  invalidArgument,
  LpError,
  LsnWaiters,
  Status,
  unavailable,
  type Logger,
  type TransactionLimits,
} from "@logplayer/common";
import {
  PROTOCOL_VERSION,
  type AppendRequest,
  type AppendResponse,
  type AppendStreamResponse,
  type LogStoreServer,
  type AddMemberRequest,
  type ListMembersRequest,
  type LookupAppendRequest,
  type LookupAppendResponse,
  type MembersResponse,
  type RemoveMemberRequest,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type ReportTrimPointRequest,
  type ReportTrimPointResponse,
  type ReadRequest,
  type ReadResponse,
  type StatusRequest,
  type StatusResponse,
} from "@logplayer/proto";
import { logStoreTrace } from "./hop-trace-points";
import { AppendStreamSession } from "./append-stream";
import { diskFullRefusal } from "./disk-full";
import type { ClusterMeta } from "./cluster-meta";
import type { LogStoreMetrics } from "./metrics";
import { ReadSession, type ReadLimits } from "./read-session";
import { DEFAULT_MEMBERSHIP_ADMIN_LIMITS, MembershipAdmin, type MembershipAdminLimits } from "./replication/membership-admin";
import type { LogCompaction, ReplicatedLog } from "./replication/replicated-log";
import type { Wal } from "@logplayer/wal";
import type { Trimmer } from "./trim/trimmer";

export interface LogStoreConfig {
  readonly meta: ClusterMeta;
  readonly replicaId: string;
  /** Address clients should use for this replica; reported as the leader's (known once bound). */
  readonly advertiseAddress: () => string;
  /** Where clients reach the shards, index = shard id (--shard-addresses); reported in Status. */
  readonly shardAddresses?: readonly string[];
  readonly transactionLimits: TransactionLimits;
  readonly readLimits: ReadLimits;
  /** Appends in flight on one AppendStream; past it the stream is paused. */
  readonly appendStreamPendingMax: number;
  /** Called on a broken invariant: the process must not carry on. */
  readonly onFatal: (error: Error) => void;
  /** The log: Raft over the WAL, with --peers or as the one voter without them. */
  readonly replication: ReplicatedLog;
  /** Started without --peers: Status shows no replica list and this replica as the leader, as before Raft. */
  readonly singleVoter: boolean;
  /** Who a call is from, for per-caller limits (the certificate's identity; the peer's host when insecure). */
  readonly callerOf: (call: ServerWritableStream<ReadRequest, ReadResponse>) => string;
  /** This replica's trimming; absent: ReportTrimPoint is UNIMPLEMENTED and nothing is trimmed. */
  readonly trimmer?: Trimmer;
  /** Bounds of AddMember (--learner-catch-up-timeout-ms); default DEFAULT_MEMBERSHIP_ADMIN_LIMITS. */
  readonly membershipLimits?: MembershipAdminLimits;
}

/** One LogStore replica: appends go through its Raft log, reads serve what it has committed and made durable. */
export class LogStoreNode {
  readonly #wal: Wal;
  readonly #config: LogStoreConfig;
  readonly #metrics: LogStoreMetrics;
  readonly #logger: Logger;
  readonly #commitWaiters: LsnWaiters;
  readonly #readers = new Set<ReadSession>();
  readonly #readerSlots: CallerSlots;
  readonly #appendStreams = new Set<AppendStreamSession>();
  #commitLsn: bigint;
  #stopping = false;
  #membership: MembershipAdmin | undefined;
  /** What lp_logstore_dedupe_sessions_ended_total already counts. */
  #sessionsEndedCounted = { evicted: 0, expired: 0 };

  constructor(wal: Wal, config: LogStoreConfig, metrics: LogStoreMetrics, logger: Logger) {
    this.#wal = wal;
    this.#config = config;
    this.#metrics = metrics;
    this.#logger = logger;
    // Committed = applied: committed in the cluster and durable here.
    const { replication } = config;
    this.#commitLsn = replication.appliedLsn;
    this.#commitWaiters = new LsnWaiters(this.#commitLsn, config.readLimits.readersMax);
    this.#readerSlots = new CallerSlots(config.readLimits.readersPerCallerMax);
    metrics.commitLsn.set(Number(this.#commitLsn));
    this.#countSessions();
    replication.onCommit((lsn) => this.#advanceCommit(lsn));
    // A replica cut off from the leader would keep its tailing readers waiting silently; end
    // their streams so that readers with several addresses (the LogPlayer) move to another replica.
    replication.onLeaderLost(() => {
      const error = unavailable("this replica lost contact with the leader; read from another replica");
      for (const session of this.#readers) session.stop(error);
    });
  }

  get commitLsn(): bigint {
    return this.#commitLsn;
  }

  get wal(): Wal {
    return this.#wal;
  }

  /**
   * Compacts this replica's log up to `lsn` at most (issue #14): snapshots the
   * replicated state at the applied index, then deletes the WAL segments it
   * and `lsn` cover. See ReplicatedLog.compactLogTo. For the trimming policy.
   */
  compactLogTo(lsn: bigint, trimLsn?: bigint): Promise<LogCompaction> {
    return this.#config.replication.compactLogTo(lsn, trimLsn);
  }

  get readLimits(): ReadLimits {
    return this.#config.readLimits;
  }

  #advanceCommit(durableLsn: bigint): void {
    if (durableLsn <= this.#commitLsn) return;
    this.#commitLsn = durableLsn;
    this.#metrics.commitLsn.set(Number(durableLsn));
    this.#countSessions();
    this.#commitWaiters.advance(durableLsn);
  }

  #countSessions(): void {
    const sessions = this.#config.replication.sessions;
    this.#metrics.dedupeSessions.set(sessions.live);
    const counted = this.#sessionsEndedCounted;
    if (sessions.evicted > counted.evicted) this.#metrics.dedupeSessionsEnded.inc({ cause: "evicted" }, sessions.evicted - counted.evicted);
    if (sessions.expired > counted.expired) this.#metrics.dedupeSessionsEnded.inc({ cause: "expired" }, sessions.expired - counted.expired);
    this.#sessionsEndedCounted = { evicted: sessions.evicted, expired: sessions.expired };
  }

  /** Who leads, as every Read response says it (a reader on a follower moves to the leader); a single voter leads. */
  leaderView(): { readonly leaderAddress: string; readonly fromLeader: boolean } {
    if (this.#config.singleVoter) return { leaderAddress: this.#config.advertiseAddress(), fromLeader: true };
    const leader = this.#config.replication.leader();
    return { leaderAddress: leader.address, fromLeader: leader.isLeader };
  }

  /** Waits until commitLsn >= lsn. Returns a cancel function. Bounded by readersMax. */
  waitForCommit(lsn: bigint, resolve: () => void): () => void {
    return this.#commitWaiters.wait(lsn, resolve);
  }

  /**
   * Appends one transaction through the Raft log: a retry of an append
   * already made is answered with its original LSN. Resolves once committed
   * and durable here.
   */
  async append(request: AppendRequest): Promise<AppendResponse> {
    logStoreTrace.received(request.commitTimeNs);
    if (this.#stopping) throw unavailable("the LogStore is shutting down");
    // Refused before it enters the Raft log: what is already there waits in the WAL's queue for room.
    const diskFull = diskFullRefusal(this.#wal);
    if (diskFull !== null) throw diskFull;
    return this.#config.replication.append(request);
  }

  /** Opens a client session (a registration entry); resolves with its LSN once committed and durable here. */
  async registerClient(request: RegisterClientRequest): Promise<RegisterClientResponse> {
    if (this.#stopping) throw unavailable("the LogStore is shutting down");
    const diskFull = diskFullRefusal(this.#wal);
    if (diskFull !== null) throw diskFull;
    return { sessionLsn: await this.#config.replication.register(request.clientId) };
  }

  /** Where an idempotent append stands (leader only). */
  async lookupAppend(request: LookupAppendRequest): Promise<LookupAppendResponse> {
    if (this.#stopping) throw unavailable("the LogStore is shutting down");
    return this.#config.replication.lookupAppend(request);
  }

  /** AddMember / RemoveMember / ListMembers (leader only; see replication/membership-admin.ts). */
  addMember(request: AddMemberRequest): Promise<MembersResponse> {
    return this.#membershipAdmin().add(request.replicaId, request.address);
  }

  removeMember(request: RemoveMemberRequest): Promise<MembersResponse> {
    return this.#membershipAdmin().remove(request.replicaId);
  }

  listMembers(_request: ListMembersRequest): Promise<MembersResponse> {
    return this.#membershipAdmin().list();
  }

  #membershipAdmin(): MembershipAdmin {
    if (this.#stopping) throw unavailable("the LogStore is shutting down");
    if (this.#config.singleVoter) {
      throw new LpError(Status.FAILED_PRECONDITION, "this LogStore runs without --peers (one voter): it has no membership to change");
    }
    this.#membership ??= new MembershipAdmin(
      this.#config.replication.membershipPort(),
      this.#config.membershipLimits ?? DEFAULT_MEMBERSHIP_ADMIN_LIMITS,
    );
    return this.#membership;
  }

  /** A LogPlayer's trim point: checked, persisted, then acted on (see trim-rule.ts in @logplayer/delivery). */
  async reportTrimPoint(request: ReportTrimPointRequest): Promise<ReportTrimPointResponse> {
    if (this.#stopping) throw unavailable("the LogStore is shutting down");
    const { trimmer } = this.#config;
    if (trimmer === undefined) throw new LpError(Status.UNIMPLEMENTED, "this LogStore does not trim");
    const outcome = await trimmer.report({ trimPoint: request.trimPoint, shardCount: request.shardCount });
    if (outcome.kind === "refused")
      throw invalidArgument(`trim point from ${request.reporterId || "an unnamed reporter"} refused: ${outcome.reason}`);
    return { trimPoint: outcome.trimPoint, firstLsn: outcome.firstLsn };
  }

  status(): StatusResponse {
    const { meta, advertiseAddress, replicaId, replication, singleVoter } = this.#config;
    const raft = replication.status();
    return {
      protocolVersion: PROTOCOL_VERSION,
      clusterId: meta.clusterId,
      shardMap: { shardCount: meta.shardMap.shardCount, hash: meta.shardMap.hash },
      firstLsn: this.#wal.firstLsn,
      lastLsn: this.#wal.lastLsn,
      commitLsn: this.#commitLsn,
      role: raft.role,
      term: raft.term,
      leaderAddress: singleVoter ? advertiseAddress() : raft.leaderAddress,
      replicaId,
      replicas: singleVoter ? [] : raft.replicas,
      voters: singleVoter ? [] : [...raft.voters],
      learners: singleVoter ? [] : [...raft.learners],
      limits: { ...meta.limits },
      shardAddresses: [...(this.#config.shardAddresses ?? [])],
      trimPoint: this.#config.trimmer?.trimPoint ?? 0n,
      snapshotLsn: this.#config.trimmer?.snapshotLsn ?? 0n,
      walBytes: BigInt(this.#config.trimmer?.walBytes ?? 0),
    };
  }

  /** Starts a Read stream; refuses past readersMax (RESOURCE_EXHAUSTED). */
  read(call: ServerWritableStream<ReadRequest, ReadResponse>): void {
    const session = new ReadSession(call, this, this.#logger);
    if (this.#stopping) {
      session.refuse(unavailable("the LogStore is shutting down"));
      return;
    }
    if (this.#readers.size >= this.#config.readLimits.readersMax) {
      session.refuse(new LpError(Status.RESOURCE_EXHAUSTED, `too many readers (readers_max ${this.#config.readLimits.readersMax})`));
      return;
    }
    const caller = this.#config.callerOf(call);
    const releaseSlot = this.#readerSlots.tryAcquire(caller);
    if (releaseSlot === null) {
      const max = this.#readerSlots.perCallerMax;
      session.refuse(
        new LpError(Status.RESOURCE_EXHAUSTED, `${caller} already has ${max} Read streams open (readers_per_caller_max ${max})`),
      );
      return;
    }
    this.#readers.add(session);
    this.#metrics.activeReaders.set(this.#readers.size);
    session.run().then(
      () => {
        releaseSlot();
        this.#closeReader(session);
      },
      (err: unknown) => {
        releaseSlot();
        this.#closeReader(session);
        this.reportUnexpected(err);
      },
    );
  }

  /** Serves one AppendStream: pipelined appends, each answered by its client_seq. */
  appendStream(
    call: ServerDuplexStream<AppendRequest, AppendStreamResponse>,
    onAnswer: (outcome: "ok" | "duplicate" | LpError, startedNs: bigint) => void,
  ): void {
    const session = new AppendStreamSession(
      call,
      { append: (request) => this.append(request), onAnswer, onUnexpected: (err) => this.reportUnexpected(err) },
      this.#config.appendStreamPendingMax,
      this.#logger,
    );
    if (this.#stopping) {
      session.stop(unavailable("the LogStore is shutting down"));
      return;
    }
    this.#appendStreams.add(session);
    const forget = (): void => {
      this.#appendStreams.delete(session);
    };
    call.on("close", forget);
    call.on("finish", forget);
    call.on("cancelled", forget);
    session.start();
  }

  countEntriesRead(entries: number): void {
    this.#metrics.entriesRead.inc(entries);
  }

  #closeReader(session: ReadSession): void {
    this.#readers.delete(session);
    this.#metrics.activeReaders.set(this.#readers.size);
  }

  /** Refuses new work and ends every Read stream with UNAVAILABLE. */
  stop(): void {
    this.#stopping = true;
    this.#config.replication.stop();
    for (const session of this.#readers) session.stop(unavailable("the LogStore is shutting down"));
    for (const session of this.#appendStreams) session.stop(unavailable("the LogStore is shutting down"));
    this.#appendStreams.clear();
  }

  /** Broken invariants crash the process; everything else was already answered. */
  reportUnexpected(err: unknown): void {
    if (err instanceof AssertionError) this.#config.onFatal(err);
  }
}

/** The gRPC handlers: thin, everything is decided by LogStoreNode. */
export function createLogStoreService(node: LogStoreNode, metrics: LogStoreMetrics, logger: Logger): LogStoreServer {
  const countAnswer = (outcome: "ok" | "duplicate" | LpError, startedNs: bigint): void => {
    if (typeof outcome === "string") {
      metrics.appends.inc({ outcome });
      metrics.appendLatency.observe(Number(process.hrtime.bigint() - startedNs) / 1e9);
      return;
    }
    // A refusal with a machine-readable reason (SESSION_EXPIRED) is counted under it, not its status.
    metrics.appends.inc({ outcome: outcome.reason || (Status[outcome.code] ?? String(outcome.code)) });
    if (outcome.code === Status.INTERNAL) logger.error({ err: outcome }, "append failed");
  };
  return {
    append(call: ServerUnaryCall<AppendRequest, AppendResponse>, callback: sendUnaryData<AppendResponse>): void {
      const started = process.hrtime.bigint();
      node.append(call.request).then(
        (response) => {
          countAnswer(response.duplicate ? "duplicate" : "ok", started);
          callback(null, response);
        },
        (err: unknown) => {
          const error = LpError.from(err);
          countAnswer(error, started);
          callback(error.toServiceError());
          node.reportUnexpected(err);
        },
      );
    },
    appendStream(call: ServerDuplexStream<AppendRequest, AppendStreamResponse>): void {
      node.appendStream(call, countAnswer);
    },
    read(call: ServerWritableStream<ReadRequest, ReadResponse>): void {
      node.read(call);
    },
    status(_call: ServerUnaryCall<StatusRequest, StatusResponse>, callback: sendUnaryData<StatusResponse>): void {
      callback(null, node.status());
    },
    registerClient(
      call: ServerUnaryCall<RegisterClientRequest, RegisterClientResponse>,
      callback: sendUnaryData<RegisterClientResponse>,
    ): void {
      answerUnary(node.registerClient(call.request), callback, node, logger);
    },
    lookupAppend(call: ServerUnaryCall<LookupAppendRequest, LookupAppendResponse>, callback: sendUnaryData<LookupAppendResponse>): void {
      answerUnary(node.lookupAppend(call.request), callback, node, logger);
    },
    reportTrimPoint(
      call: ServerUnaryCall<ReportTrimPointRequest, ReportTrimPointResponse>,
      callback: sendUnaryData<ReportTrimPointResponse>,
    ): void {
      answerUnary(node.reportTrimPoint(call.request), callback, node, logger);
    },
    addMember(call: ServerUnaryCall<AddMemberRequest, MembersResponse>, callback: sendUnaryData<MembersResponse>): void {
      answerUnary(
        Promise.resolve().then(() => node.addMember(call.request)),
        callback,
        node,
        logger,
      );
    },
    removeMember(call: ServerUnaryCall<RemoveMemberRequest, MembersResponse>, callback: sendUnaryData<MembersResponse>): void {
      answerUnary(
        Promise.resolve().then(() => node.removeMember(call.request)),
        callback,
        node,
        logger,
      );
    },
    listMembers(call: ServerUnaryCall<ListMembersRequest, MembersResponse>, callback: sendUnaryData<MembersResponse>): void {
      answerUnary(
        Promise.resolve().then(() => node.listMembers(call.request)),
        callback,
        node,
        logger,
      );
    },
  };
}

/** Answers a unary call from a promise: a refusal goes back as its status, a broken invariant stops the process. */
function answerUnary<T>(result: Promise<T>, callback: sendUnaryData<T>, node: LogStoreNode, logger: Logger): void {
  result.then(
    (response) => callback(null, response),
    (err: unknown) => {
      const error = LpError.from(err);
      if (error.code === Status.INTERNAL) logger.error({ err: error }, "call failed");
      callback(error.toServiceError());
      node.reportUnexpected(err);
    },
  );
}
