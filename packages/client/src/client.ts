import { status as Status } from "@grpc/grpc-js";
import {
  assert,
  Backoff,
  describeShardMap,
  failedPrecondition,
  grpcChannelOptions,
  invalidArgument,
  monotonicNs,
  parseTransactionLimits,
  shardForKey,
  validateKey,
  validateShardMap,
  validateTransaction,
  type ShardMapConfig,
  type TransactionLimits,
} from "@logplayer/common";
import {
  PartOutcome,
  PROTOCOL_VERSION,
  transactionEncodedBytes,
  type GetOutcomeRequest,
  type GetOutcomeResponse,
  type Transaction,
  LookupAppendState,
  type AppendRequest,
  type AppendResponse,
  type LookupAppendRequest,
  type AddMemberRequest,
  type ListMembersRequest,
  type LogStoreClient,
  type MembersResponse,
  type RemoveMemberRequest,
  type LookupAppendResponse,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type DeliveryStatsRequest,
  type DeliveryStatsResponse,
  type GetRequest,
  type GetResponse,
  type ScanRequest,
  type ScanResponse,
  type ShardStatusRequest,
  type StatusRequest,
  type Mutation,
  type ShardStatusResponse,
  type StatusResponse,
  type ReadResponse,
} from "@logplayer/proto";
import { raceAbort, sleepUnlessAborted, throwIfAborted } from "./abort";
import { LogGapError, LsnCursor, toLogRecord, watchEventOf, type LogRecord, type WatchEvent } from "./log-cursor";
import {
  callUnary,
  sleepMs,
  withReadRetry,
  withRetry,
  type CallTarget,
  type UnaryMethod,
  type ReadRetryPolicy,
  type RetryDecision,
  type RetryPolicy,
} from "./call";
import { channelCredentialsFor } from "@logplayer/tls";
import { Channels } from "./channels";
import { AppendStreams } from "./append-stream";
import { CommitWindow, type SeqLease } from "./commit-window";
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  LimitExceededError,
  NotLeaderError,
  SessionExpiredError,
  UnavailableError,
  UnimplementedError,
  toClientError,
  type AppendIdentity,
  type ClientError,
} from "./errors";
import { chooseLogStore, isLeaderStatus, type ReplicaProbe } from "./leader-choice";
import { checkTimeoutMs, resolveOptions, withClusterLimits, type ClientOptions, type ResolvedOptions } from "./options";
import { compareKeys, mergeScanResults, type ScanItem } from "./scan-merge";

export interface CallOpts {
  /** Deadline of this call (default: the client's timeoutMs). */
  timeoutMs?: number;
  /** Cancels the call (and its retries): it then fails with CancelledError. */
  signal?: AbortSignal;
}

export interface ScanIteratorOpts extends CallOpts {
  /** Every page waits until its shard has applied this LSN (default 0). */
  minLsn?: bigint;
  /** The cursor: only keys after this one (a key an earlier iteration yielded). */
  startAfter?: string;
  /** Items per page and shard (default DEFAULT_SCAN_LIMIT, at most SCAN_LIMIT_MAX). */
  pageSize?: number;
}

export interface ReadLogOpts {
  /** The first LSN wanted (default: the leader's commit LSN + 1, i.e. only entries committed from now on). */
  fromLsn?: bigint;
  /** The last LSN wanted, inclusive (default: none, read until aborted). */
  toLsn?: bigint;
  /** Ends the read with CancelledError. */
  signal?: AbortSignal;
}

export interface CommitOpts extends CallOpts {
  /** The paper's commit time, on the machine's monotonic clock (default: monotonicNs() just before sending). */
  commitTimeNs?: bigint;
}

export interface CommitResult {
  /** LSN of the log entry holding the transaction: pass it as minLsn to read your write. */
  lsn: bigint;
  /** The LogStore already held this (clientId, clientSeq): lsn is the original's. */
  duplicate: boolean;
}

/**
 * Where an idempotent append stands, from the LogStore leader (`lookupAppend`):
 * - `committed` at `lsn`; `in-flight` at `lsn` (not committed yet: ask again);
 * - `not-appended`: not in the log and its session is gone, so no attempt can land any more;
 * - `not-yet-appended`: not in the log now, but its session lives (or it had none) and an attempt
 *   still on its way could land: ask again once the commit's deadline has passed;
 * - `unknown`: the LogStore cannot tell (`detail` says why); read the transaction's keys.
 */
export type AppendLookup =
  | { readonly state: "committed" | "in-flight"; readonly lsn: bigint }
  | { readonly state: "not-appended" | "not-yet-appended"; readonly scannedToLsn: bigint }
  | { readonly state: "unknown"; readonly detail: string };

export interface GetResult {
  found: boolean;
  /** Empty when not found. */
  value: Buffer;
  /** The shard's applied LSN when the read ran (>= minLsn). */
  appliedLsn: bigint;
}

/** What became of one transaction's part on one shard (see Shard.GetOutcome). */
export interface ShardOutcome {
  shardId: number;
  /** "unknown": a rejection older than the shard remembers. */
  outcome: "applied" | "rejected" | "unknown";
  /** For "rejected": which mutation broke which limit, starting with a code such as VALUE_TOO_LARGE. */
  reason: string;
}

export interface TransactionOutcome {
  lsn: bigint;
  /** One per shard the keys route to, in shard order. */
  shards: ShardOutcome[];
  /** True when any shard rejected its part (none of that part's mutations were applied there). */
  rejected: boolean;
}

export interface ScanResult {
  /** In key order (UTF-8 bytes), at most `limit`. */
  items: ScanItem[];
  /** The lowest applied LSN among the pages read (>= minLsn). */
  appliedLsn: bigint;
}

/** One shard's line in a cluster status: its status, or why it could not be read. */
export interface ShardStatusReport {
  shardId: number;
  address: string;
  status?: ShardStatusResponse;
  error?: ClientError;
  /**
   * LogStore commitLsn - shard appliedLsn. Undefined when the shard did not
   * answer, or when the LogStore's commit LSN is behind the shard's applied
   * LSN: a replica that restarted answers with an old commit LSN until it
   * hears from a leader, and a negative lag would mean nothing.
   */
  lag?: bigint;
}

export interface ClusterStatus {
  logStoreAddress: string;
  logStore: StatusResponse;
  shards: ShardStatusReport[];
  /** Every LogStore replica as it answered for itself (absent from reports made without asking them). */
  members?: MemberReport[];
}

/**
 * One LogStore replica: its own Status answer (role, term, last and commit LSN), and what the leader
 * reports of it (match LSN and lag, for a follower); `error` when it did not answer.
 */
export interface MemberReport {
  replicaId: string;
  address: string;
  /** Its own Status; undefined when it did not answer (then `error` says why). */
  self?: { role: string; term: bigint; lastLsn: bigint; commitLsn: bigint; leaderAddress: string };
  error?: ClientError;
  /** From the leader's Status: the LSN it knows this replica holds, and how far behind its last LSN that is. */
  matchLsn?: bigint;
  lag?: bigint;
}

export const DEFAULT_SCAN_LIMIT = 1_000;
export const SCAN_LIMIT_MAX = 100_000;

const defaultRetryPolicy = (options: ResolvedOptions): ReadRetryPolicy => ({
  backoff: options.readBackoff,
  attemptsMax: options.readAttemptsMax,
  nowMs: Date.now,
  sleepMs,
  random: Math.random,
});

const commitRetryPolicy = (options: ResolvedOptions): RetryPolicy => ({
  ...defaultRetryPolicy(options),
  backoff: options.commitBackoff,
  attemptsMax: options.commitAttemptsMax,
});

/**
 * A failed append worth sending again with the same (clientId, clientSeq):
 * the LogStore deduplicates, so a retry of an append that did land returns
 * the original LSN. Refusals of the request itself (INVALID_ARGUMENT,
 * RESOURCE_EXHAUSTED, FAILED_PRECONDITION without a leader) are final.
 */
export function isRetryableCommit(error: ClientError): boolean {
  return UnavailableError.is(error) || DeadlineExceededError.is(error) || NotLeaderError.is(error);
}

/**
 * Commits transactions to the LogStore and reads them back from the shards.
 * Every call has a deadline; reads retry UNAVAILABLE within it; commits retry
 * UNAVAILABLE, DEADLINE_EXCEEDED and not-leader refusals with the same
 * client_seq, which the LogStore deduplicates (see README).
 */
export class LogPlayerClient {
  readonly shardMap: ShardMapConfig;
  readonly clusterId: string;
  readonly clientId: string;
  readonly #channels: Channels;
  readonly #options: ResolvedOptions;
  readonly #retryPolicy: ReadRetryPolicy;
  readonly #commitPolicy: RetryPolicy;
  #logStoreAddress: string;
  /** Set when an append failed in a way that may mean the leader moved; the next commit asks the replicas first. */
  #leaderInDoubt = false;
  /**
   * This client's session from RegisterClient (its LSN), opened before the first commit; undefined until
   * then and after the LogStore said it ended. 0: the LogStore has no RegisterClient (an older one).
   */
  #sessionLsn: bigint | undefined;
  #registering: Promise<bigint> | undefined;
  readonly #commitWindow: CommitWindow;
  readonly #appendStreams = new AppendStreams();

  private constructor(channels: Channels, options: ResolvedOptions, logStoreAddress: string, status: StatusResponse) {
    assert(status.shardMap !== undefined, "client: status without shard map");
    this.#channels = channels;
    this.#options = options;
    this.#retryPolicy = defaultRetryPolicy(options);
    this.#commitPolicy = commitRetryPolicy(options);
    this.#commitWindow = new CommitWindow(options.commitsInflightMax, options.commitsQueuedMax);
    this.#logStoreAddress = logStoreAddress;
    this.shardMap = { shardCount: status.shardMap.shardCount, hash: status.shardMap.hash };
    this.clusterId = status.clusterId;
    this.clientId = options.clientId;
  }

  /**
   * Reads the LogStore's Status (the one source of truth for the cluster id
   * and shard map), waiting for it up to timeoutMs. Throws
   * FailedPreconditionError when `shards` does not match the shard map.
   */
  static async connect(options: ClientOptions, opts: { signal?: AbortSignal } = {}): Promise<LogPlayerClient> {
    if (options.seeds !== undefined) return LogPlayerClient.connect(await discoverCluster(options, opts.signal), opts);
    const given = resolveOptions(options);
    const channelCredentials = channelCredentialsFor(given.security);
    let channels = new Channels(
      given.logStoreAddresses,
      given.shardAddresses,
      grpcChannelOptions(given.messageBytesMax),
      channelCredentials,
    );
    try {
      const chosen = await discoverLogStore(channels, Date.now() + given.timeoutMs, defaultRetryPolicy(given), opts.signal);
      checkClusterStatus(chosen.status, given.shardAddresses.length, chosen.address);
      const resolved = withClusterLimits(given, options, clusterLimits(chosen.status, chosen.address));
      if (resolved.messageBytesMax !== given.messageBytesMax) {
        // Channels fix their message cap when made: the cluster's limits need others.
        channels.close();
        channels = new Channels(
          resolved.logStoreAddresses,
          resolved.shardAddresses,
          grpcChannelOptions(resolved.messageBytesMax),
          channelCredentials,
        );
      }
      return new LogPlayerClient(channels, resolved, chosen.address, chosen.status);
    } catch (err: unknown) {
      channels.close();
      throw toClientError(err);
    }
  }

  /** The transaction limits in use: the cluster's unless given in the options. */
  get limits(): TransactionLimits {
    return this.#options.limits;
  }

  /** The session commits go in (the LSN RegisterClient answered), once opened; 0 with a LogStore without sessions. */
  get sessionLsn(): bigint | undefined {
    return this.#sessionLsn;
  }

  /** The address appends currently go to (changes when a NotLeaderError is followed). */
  get logStoreAddress(): string {
    return this.#logStoreAddress;
  }

  shardForKey(key: string): number {
    return shardForKey(key, this.shardMap);
  }

  /**
   * Appends the mutations as one transaction (one log entry), exactly once.
   * Throws InvalidArgumentError / LimitExceededError before sending when the
   * transaction breaks the limits. One (clientId, clientSeq) per call: an
   * attempt failing with UNAVAILABLE, DEADLINE_EXCEEDED or a not-leader
   * refusal is sent again with the same seq (to the named leader, or to the
   * leader found among the configured addresses), with backoff, within
   * timeoutMs and commitAttemptsMax; the LogStore answers a retry of an
   * append it already holds with the original LSN (`duplicate: true`).
   */
  async commit(mutations: Mutation[], opts: CommitOpts = {}): Promise<CommitResult> {
    this.#assertOpen();
    const txn: Transaction = { mutations };
    const problem = validateTransaction(txn, transactionEncodedBytes(txn), this.#options.limits);
    if (problem) throw toClientError(problem);
    const { signal } = opts;
    throwIfAborted(signal, "commit");
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const acquiring = this.#commitWindow.acquire(deadlineMs);
    let lease: SeqLease;
    try {
      lease = await raceAbort(acquiring, signal, "commit: waiting for a commit slot (nothing was sent)");
    } catch (err: unknown) {
      acquiring.then(
        (late) => late.release(),
        () => undefined,
      );
      throw err;
    }
    // The slot is held until the last attempt has ended, even when the caller stopped waiting for it.
    const work = this.#commitWithSeq(txn, lease.seq, opts, deadlineMs).finally(() => lease.release());
    return raceAbort(work, signal, "commit (its outcome is unknown: an attempt may still be appended)");
  }

  /**
   * One commit with its seq from the window, kept across retries. A SESSION_EXPIRED refusal of its first
   * attempt leaves nothing of it in the log: it is sent again in a new session. After an earlier attempt
   * that may have landed, the outcome is unknown and the caller gets a SessionExpiredError saying so.
   */
  async #commitWithSeq(txn: Transaction, clientSeq: bigint, opts: CommitOpts, deadlineMs: number): Promise<CommitResult> {
    const commitTimeNs = opts.commitTimeNs ?? monotonicNs();
    let sessionLsn = 0n;
    let attemptsSentInSession = 0;
    const attempt = async (): Promise<CommitResult> => {
      sessionLsn = await this.#session(deadlineMs);
      if (this.#leaderInDoubt) await this.#rediscoverLeader(deadlineMs);
      attemptsSentInSession += 1;
      const request: AppendRequest = { txn, commitTimeNs, clientId: this.clientId, clientSeq, sessionLsn };
      return this.#append(this.#logStoreAddress, request, deadlineMs);
    };
    const leaderDecision = this.#leaderRetryDecision();
    const decide = (error: ClientError): RetryDecision => {
      if (!SessionExpiredError.is(error)) return leaderDecision(error);
      if (attemptsSentInSession !== 1) return "fail";
      this.#sessionEnded(sessionLsn);
      attemptsSentInSession = 0;
      return "now";
    };
    try {
      return await withRetry(attempt, deadlineMs, this.#commitPolicy, decide, this.#cancelled(opts.signal));
    } catch (err: unknown) {
      const error = toClientError(err);
      if (!SessionExpiredError.is(error)) throw error;
      this.#sessionEnded(sessionLsn);
      throw outcomeUnknown(error, { clientId: this.clientId, clientSeq, sessionLsn });
    }
  }

  /**
   * The retry decision for calls that must reach the leader (appends, registrations, lookups): retry
   * UNAVAILABLE, DEADLINE_EXCEEDED and not-leader refusals; a refusal naming another configured replica is
   * followed at once the first time (two replicas naming each other back off).
   */
  #leaderRetryDecision(): (error: ClientError) => RetryDecision {
    let redirects = 0;
    return (error) => {
      if (!isRetryableCommit(error)) return "fail";
      const redirect = this.#redirectTarget(error);
      if (redirect === undefined) {
        this.#leaderInDoubt = true;
        return "backoff";
      }
      this.#logStoreAddress = redirect;
      redirects += 1;
      return redirects === 1 ? "now" : "backoff";
    };
  }

  /** Calls the leader, following redirects and retrying as commits do, within the deadline. */
  #callLeader<T>(call: (address: string) => Promise<T>, deadlineMs: number, signal?: AbortSignal): Promise<T> {
    const attempt = async (): Promise<T> => {
      if (this.#leaderInDoubt) await this.#rediscoverLeader(deadlineMs);
      return call(this.#logStoreAddress);
    };
    return withRetry(attempt, deadlineMs, this.#commitPolicy, this.#leaderRetryDecision(), this.#cancelled(signal), signal);
  }

  /** Whether retries should stop: the client closed, or the caller's signal fired. */
  #cancelled(signal: AbortSignal | undefined): () => boolean {
    return () => this.#channels.closed || signal?.aborted === true;
  }

  /** This client's session, registered on first use (one registration for every commit waiting for it). */
  #session(deadlineMs: number): Promise<bigint> {
    if (this.#sessionLsn !== undefined) return Promise.resolve(this.#sessionLsn);
    this.#registering ??= this.#register(deadlineMs).finally(() => {
      this.#registering = undefined;
    });
    return this.#registering;
  }

  /**
   * RegisterClient: a registration entry in the log opens the session. Retrying it after a lost answer
   * opens another session, which is harmless: the last answer is the one used. A LogStore without
   * RegisterClient (UNIMPLEMENTED) gets appends without registration (session 0).
   */
  async #register(deadlineMs: number): Promise<bigint> {
    const call = (address: string): Promise<RegisterClientResponse> => {
      const client = this.#channels.logStore(address);
      const target: CallTarget = { context: `LogStore at ${address}`, deadlineMs, waitForReady: this.#waitForReady(), client };
      return callUnary<RegisterClientRequest, RegisterClientResponse>(
        (r, m, o, cb) => client.registerClient(r, m, o, cb),
        { clientId: this.clientId },
        target,
      );
    };
    try {
      const { sessionLsn } = await this.#callLeader(call, deadlineMs);
      if (sessionLsn <= 0n) throw new InternalError(Status.INTERNAL, `LogStore registered client ${this.clientId} at LSN ${sessionLsn}`);
      this.#sessionLsn = sessionLsn;
    } catch (err: unknown) {
      const error = toClientError(err);
      if (!UnimplementedError.is(error)) throw error;
      this.#sessionLsn = 0n;
    }
    return this.#sessionLsn;
  }

  /** The LogStore said `sessionLsn` ended: the next commit registers again (unless that already happened). */
  #sessionEnded(sessionLsn: bigint): void {
    if (this.#sessionLsn === sessionLsn) this.#sessionLsn = undefined;
  }

  #waitForReady(): boolean {
    // With one address, waiting for the connection rides through a restart; with several, a dead replica must fail fast.
    return this.#channels.logStoreAddresses.length === 1;
  }

  /**
   * Asks the LogStore leader where an append stands: by default one of this client's, in its current
   * session (pass `err.append` of a SessionExpiredError). When the session is gone the LogStore searches
   * its log from `fromLsn` (default: the session's LSN, where its appends start), up to a bound.
   */
  async lookupAppend(
    append: Partial<AppendIdentity> & { readonly clientSeq: bigint },
    opts: { fromLsn?: bigint } & CallOpts = {},
  ): Promise<AppendLookup> {
    this.#assertOpen();
    const sessionLsn = append.sessionLsn ?? this.#sessionLsn ?? 0n;
    const request: LookupAppendRequest = {
      clientId: append.clientId ?? this.clientId,
      clientSeq: checkLsn(append.clientSeq, "clientSeq"),
      sessionLsn: checkLsn(sessionLsn, "sessionLsn"),
      fromLsn: checkLsn(opts.fromLsn ?? sessionLsn, "fromLsn"),
    };
    if (request.clientId === "" || request.clientSeq === 0n) {
      throw toClientError(invalidArgument("lookupAppend needs a client id and a client seq > 0"));
    }
    const lookup =
      (client: LogStoreClient): UnaryMethod<LookupAppendRequest, LookupAppendResponse> =>
      (r, m, o, cb) =>
        client.lookupAppend(r, m, o, cb);
    return toAppendLookup(await this.#unaryOnLeader(lookup, request, opts));
  }

  /**
   * Adds LogStore replica `replicaId`, reachable at `address` (host:port), to the cluster, through the
   * leader: it joins as a learner, catches up, then becomes a voter. Idempotent: a retry (this method
   * retries itself on UNAVAILABLE, e.g. across a leader crash) finishes a change an earlier attempt began.
   * Needs the admin role. The answer is the membership after the change.
   */
  async addMember(replicaId: number, address: string, opts: CallOpts = {}): Promise<MembersResponse> {
    const request: AddMemberRequest = { replicaId, address };
    return this.#unaryOnLeader((client) => (r, m, o, cb) => client.addMember(r, m, o, cb), request, opts);
  }

  /** Removes LogStore replica `replicaId` from the cluster (voter or learner), through the leader. Idempotent. */
  async removeMember(replicaId: number, opts: CallOpts = {}): Promise<MembersResponse> {
    const request: RemoveMemberRequest = { replicaId };
    return this.#unaryOnLeader((client) => (r, m, o, cb) => client.removeMember(r, m, o, cb), request, opts);
  }

  /** The LogStore's voters and learners with their addresses, as the leader has them. */
  async listMembers(opts: CallOpts = {}): Promise<MembersResponse> {
    const request: ListMembersRequest = {};
    return this.#unaryOnLeader((client) => (r, m, o, cb) => client.listMembers(r, m, o, cb), request, opts);
  }

  /** One unary LogStore call on the leader, found and followed by #callLeader. */
  #unaryOnLeader<Request, Response>(
    method: (client: LogStoreClient) => UnaryMethod<Request, Response>,
    request: Request,
    opts: CallOpts,
  ): Promise<Response> {
    this.#assertOpen();
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const call = (address: string): Promise<Response> => {
      const client = this.#channels.logStore(address);
      const target: CallTarget = {
        context: `LogStore at ${address}`,
        deadlineMs,
        waitForReady: this.#waitForReady(),
        client,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      };
      return callUnary(method(client), request, target);
    };
    return this.#callLeader(call, deadlineMs, opts.signal);
  }

  /**
   * With several LogStore addresses, asks them who leads now, one round
   * bounded by leaderProbeTimeoutMs (a dead replica must not eat the whole
   * deadline). Best effort: when no replica answers in time the append goes
   * to the old address, and the retry loop carries on.
   */
  async #rediscoverLeader(deadlineMs: number): Promise<void> {
    this.#leaderInDoubt = false;
    if (this.#channels.logStoreAddresses.length < 2) return;
    const probeDeadlineMs = Math.min(deadlineMs, Date.now() + this.#options.leaderProbeTimeoutMs);
    try {
      const chosen = await discoverLogStore(this.#channels, probeDeadlineMs, this.#retryPolicy);
      if (chosen.status.clusterId !== this.clusterId) {
        throw failedPrecondition(
          `LogStore at ${chosen.address} belongs to cluster ${JSON.stringify(chosen.status.clusterId)}, not ${JSON.stringify(this.clusterId)}`,
        );
      }
      this.#logStoreAddress = chosen.address;
    } catch (err: unknown) {
      const error = toClientError(err);
      if (FailedPreconditionError.is(error)) throw error;
    }
  }

  async #append(address: string, request: AppendRequest, deadlineMs: number): Promise<CommitResult> {
    const client = this.#channels.logStore(address);
    // With one address, waiting for the connection rides through a restart; with several, a dead replica must fail fast so the retry finds the new leader.
    const waitForReady = this.#channels.logStoreAddresses.length === 1;
    if (this.#options.appendStream && this.#appendStreams.usable(address)) {
      try {
        return await this.#appendStreams.append(address, client, waitForReady, request, deadlineMs);
      } catch (err: unknown) {
        // An older LogStore without AppendStream: the same append goes by unary Append at once.
        if (!(UnimplementedError.is(err) && !this.#appendStreams.usable(address))) throw err;
      }
    }
    const target: CallTarget = { context: `LogStore at ${address}`, deadlineMs, waitForReady, client };
    const response = await callUnary<AppendRequest, AppendResponse>((r, m, o, cb) => client.append(r, m, o, cb), request, target);
    if (response.lsn <= 0n)
      throw new InternalError(Status.INTERNAL, `LogStore at ${address}: append acknowledged with LSN ${response.lsn}`);
    return { lsn: response.lsn, duplicate: response.duplicate };
  }

  /** The configured address a NotLeaderError points to, if it is another one. */
  #redirectTarget(err: unknown): string | undefined {
    if (!NotLeaderError.is(err)) return undefined;
    const leader = err.leaderAddress;
    if (leader === this.#logStoreAddress || !this.#channels.logStoreAddresses.includes(leader)) return undefined;
    return leader;
  }

  /**
   * Reads one key from its shard once the shard has applied `minLsn`
   * (default 0: whatever it has). A missing key is `found: false`, not an
   * error. DeadlineExceededError when the shard does not reach minLsn in time.
   */
  async get(key: string, opts: { minLsn?: bigint } & CallOpts = {}): Promise<GetResult> {
    this.#assertOpen();
    this.#checkKey(key);
    const minLsn = checkLsn(opts.minLsn ?? 0n);
    const shardId = this.shardForKey(key);
    const client = this.#channels.shard(shardId);
    const response = await this.#read(this.#shardContext(shardId), opts, (target) =>
      callUnary<GetRequest, GetResponse>((r, m, o, cb) => client.get(r, m, o, cb), { key, minLsn }, { ...target, client }),
    );
    if (response.appliedLsn < minLsn) {
      throw new InternalError(
        Status.INTERNAL,
        `${this.#shardContext(shardId)}: read at applied LSN ${response.appliedLsn} < min LSN ${minLsn}`,
      );
    }
    return { found: response.found, value: response.value, appliedLsn: response.appliedLsn };
  }

  /**
   * Reads keys starting with `prefix` from EVERY shard (keys with one prefix
   * spread over all of them), paging each shard, and merges them in key
   * order, at most `limit` (default DEFAULT_SCAN_LIMIT, at most
   * SCAN_LIMIT_MAX). Not a snapshot: each page reflects at least minLsn.
   */
  async scan(prefix: string, opts: { minLsn?: bigint; limit?: number } & CallOpts = {}): Promise<ScanResult> {
    this.#assertOpen();
    if (prefix !== "") this.#checkKey(prefix);
    const minLsn = checkLsn(opts.minLsn ?? 0n);
    const limit = opts.limit ?? DEFAULT_SCAN_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > SCAN_LIMIT_MAX) {
      throw toClientError(invalidArgument(`scan limit must be an integer in [1, ${SCAN_LIMIT_MAX}], got ${limit}`));
    }
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const perShard = await Promise.all(
      this.#channels.shardAddresses.map((_, shardId) => this.#scanShard(shardId, prefix, minLsn, limit, deadlineMs, opts.signal)),
    );
    const appliedLsn = perShard.reduce((low, shard) => (shard.appliedLsn < low ? shard.appliedLsn : low), perShard[0]!.appliedLsn);
    return {
      items: mergeScanResults(
        perShard.map((s) => s.items),
        limit,
      ),
      appliedLsn,
    };
  }

  /**
   * Keys starting with `prefix`, in key order (UTF-8 bytes, as `scan`), from every shard, read lazily: one
   * page of at most `pageSize` (default DEFAULT_SCAN_LIMIT, at most SCAN_LIMIT_MAX) per shard at a time,
   * the next page of a shard only once its last one is used up, so any number of keys can be walked. Each
   * item's key is the cursor: resume after it with `startAfter`. Every page waits for `minLsn` and has its
   * own deadline (`timeoutMs`). Not a snapshot.
   */
  async *scanIterator(prefix: string, opts: ScanIteratorOpts = {}): AsyncGenerator<ScanItem, void, undefined> {
    this.#assertOpen();
    if (prefix !== "") this.#checkKey(prefix);
    if (opts.startAfter !== undefined && opts.startAfter !== "") this.#checkKey(opts.startAfter);
    const minLsn = checkLsn(opts.minLsn ?? 0n);
    const pageSize = opts.pageSize ?? DEFAULT_SCAN_LIMIT;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > SCAN_LIMIT_MAX) {
      throw toClientError(invalidArgument(`scan page size must be an integer in [1, ${SCAN_LIMIT_MAX}], got ${pageSize}`));
    }
    const shards = this.#channels.shardAddresses.map((_, shardId) => ({
      shardId,
      items: [] as ScanItem[],
      next: 0,
      more: true,
      startAfter: opts.startAfter ?? "",
    }));
    // Each round yields one item or ends; each shard's pages advance past its last key, so this ends.
    for (;;) {
      const empty = shards.filter((shard) => shard.next === shard.items.length && shard.more);
      await Promise.all(
        empty.map(async (shard) => {
          const request: ScanRequest = { prefix, minLsn, limit: pageSize, startAfter: shard.startAfter };
          const page = await this.#scanPage(shard.shardId, request, opts);
          const last = page.items[page.items.length - 1];
          if (page.more && last === undefined)
            throw new InternalError(Status.INTERNAL, `${this.#shardContext(shard.shardId)}: scan page says "more" but holds no items`);
          Object.assign(shard, { items: page.items, next: 0, more: page.more, startAfter: last?.key ?? shard.startAfter });
        }),
      );
      let lowest: (typeof shards)[number] | undefined;
      for (const shard of shards) {
        if (shard.next === shard.items.length) continue;
        if (lowest === undefined || compareKeys(shard.items[shard.next]!.key, lowest.items[lowest.next]!.key) < 0) lowest = shard;
      }
      if (lowest === undefined) return;
      const item = lowest.items[lowest.next]!;
      lowest.next += 1;
      yield { key: item.key, value: item.value };
    }
  }

  /** One scan page of one shard, retried as a read; checked to reflect minLsn. */
  async #scanPage(shardId: number, request: ScanRequest, opts: CallOpts): Promise<ScanResponse> {
    const client = this.#channels.shard(shardId);
    const context = this.#shardContext(shardId);
    const page = await this.#read(context, opts, (target) =>
      callUnary<ScanRequest, ScanResponse>((r, m, o, cb) => client.scan(r, m, o, cb), request, { ...target, client }),
    );
    if (page.appliedLsn < request.minLsn)
      throw new InternalError(Status.INTERNAL, `${context}: scan at applied LSN ${page.appliedLsn} < min LSN ${request.minLsn}`);
    return page;
  }

  /** Pages through one shard until it has `limit` matches or no more. Each page is one retried read. */
  async #scanShard(
    shardId: number,
    prefix: string,
    minLsn: bigint,
    limit: number,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<{ items: ScanItem[]; appliedLsn: bigint }> {
    const client = this.#channels.shard(shardId);
    const context = this.#shardContext(shardId);
    const items: ScanItem[] = [];
    let appliedLsn: bigint | undefined;
    let startAfter = "";
    // Each page either ends the loop or returns at least one item, so this runs at most `limit` times.
    while (items.length < limit) {
      const request = { prefix, minLsn, limit: limit - items.length, startAfter };
      const target: CallTarget = { context, deadlineMs, waitForReady: true, client, ...(signal === undefined ? {} : { signal }) };
      const page = await withReadRetry(
        () => callUnary<ScanRequest, ScanResponse>((r, m, o, cb) => client.scan(r, m, o, cb), request, target),
        deadlineMs,
        this.#retryPolicy,
        this.#cancelled(signal),
        signal,
      );
      if (page.appliedLsn < minLsn)
        throw new InternalError(Status.INTERNAL, `${context}: scan at applied LSN ${page.appliedLsn} < min LSN ${minLsn}`);
      appliedLsn = appliedLsn === undefined || page.appliedLsn < appliedLsn ? page.appliedLsn : appliedLsn;
      for (const item of page.items) items.push({ key: item.key, value: item.value });
      if (!page.more) break;
      const last = page.items[page.items.length - 1];
      if (last === undefined) throw new InternalError(Status.INTERNAL, `${context}: scan page says "more" but holds no items`);
      startAfter = last.key;
    }
    assert(appliedLsn !== undefined, "scan: no page read");
    return { items: items.slice(0, limit), appliedLsn };
  }

  /**
   * What became of the transaction committed at `lsn` on the shards its
   * `keys` route to, once each has applied it (waiting like a read with
   * minLsn = lsn). A shard rejects its part as a whole when applying it
   * would break a limit (a value grown past value_bytes_max by APPEND): the
   * log holds the transaction, but none of its mutations on that shard took
   * effect. Other shards' parts are independent (see docs/delivery-protocol.md).
   */
  async outcome(lsn: bigint, keys: readonly string[], opts: CallOpts = {}): Promise<TransactionOutcome> {
    this.#assertOpen();
    if (checkLsn(lsn) === 0n) throw toClientError(invalidArgument("lsn must be at least 1"));
    if (keys.length === 0) throw toClientError(invalidArgument("outcome needs at least one key of the transaction"));
    for (const key of keys) this.#checkKey(key);
    const shardIds = [...new Set(keys.map((key) => this.shardForKey(key)))].sort((a, b) => a - b);
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const shards = await Promise.all(
      shardIds.map(async (shardId): Promise<ShardOutcome> => {
        const client = this.#channels.shard(shardId);
        const target: CallTarget = { context: this.#shardContext(shardId), deadlineMs, waitForReady: true, client, ...signalOf(opts) };
        const response = await withReadRetry(
          () => callUnary<GetOutcomeRequest, GetOutcomeResponse>((r, m, o, cb) => client.getOutcome(r, m, o, cb), { lsn }, target),
          deadlineMs,
          this.#retryPolicy,
          this.#cancelled(opts.signal),
          opts.signal,
        );
        return { shardId, outcome: outcomeName(response.outcome, target.context), reason: response.reason };
      }),
    );
    return { lsn, shards, rejected: shards.some((shard) => shard.outcome === "rejected") };
  }

  /** The LogStore's Status (role, term, commit LSN...), retried on UNAVAILABLE. */
  async logStoreStatus(opts: CallOpts = {}): Promise<StatusResponse> {
    this.#assertOpen();
    const address = this.#logStoreAddress;
    return this.#read(`LogStore at ${address}`, opts, (target) => logStoreStatusCall(this.#channels, address, target));
  }

  /** One shard's Status, retried on UNAVAILABLE. InvalidArgumentError for an unknown shard id. */
  async shardStatus(shardId: number, opts: CallOpts = {}): Promise<ShardStatusResponse> {
    this.#assertOpen();
    this.#checkShardId(shardId);
    const client = this.#channels.shard(shardId);
    return this.#read(this.#shardContext(shardId), opts, (target) =>
      callUnary<ShardStatusRequest, ShardStatusResponse>((r, m, o, cb) => client.status(r, m, o, cb), {}, { ...target, client }),
    );
  }

  /**
   * The LogStore's status and every shard's status or its error, with lag.
   * Never throws for a dead shard: shards are probed once without waiting for
   * a connection, so one dead shard does not stall the report. Throws when
   * the LogStore cannot be read within the deadline.
   */
  async clusterStatus(opts: CallOpts = {}): Promise<ClusterStatus> {
    this.#assertOpen();
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    // Shards first: a commit LSN read afterwards is >= every applied LSN read, unless the replica that answers does not know it yet.
    const shards = await Promise.all(this.#channels.shardAddresses.map((_, shardId) => this.#probeShard(shardId, deadlineMs, opts.signal)));
    throwIfAborted(opts.signal, "clusterStatus");
    const address = this.#logStoreAddress;
    const target: CallTarget = { context: `LogStore at ${address}`, deadlineMs, waitForReady: true, ...signalOf(opts) };
    const logStore = await withReadRetry(
      () => logStoreStatusCall(this.#channels, address, target),
      deadlineMs,
      this.#retryPolicy,
      this.#cancelled(opts.signal),
      opts.signal,
    );
    for (const shard of shards) {
      if (shard.status !== undefined && logStore.commitLsn >= shard.status.appliedLsn)
        shard.lag = logStore.commitLsn - shard.status.appliedLsn;
    }
    const members = await this.#membersFrom(address, logStore, deadlineMs, opts.signal);
    return { logStoreAddress: address, logStore, shards, members };
  }

  /**
   * Every LogStore replica, as the answering replica lists them and as each answers for itself (asked once,
   * without waiting for a connection, so a replica that is down shows as an error at once). A single
   * replica (no replication) is listed alone. Throws when no replica's Status can be read.
   */
  async members(opts: CallOpts = {}): Promise<MemberReport[]> {
    this.#assertOpen();
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const address = this.#logStoreAddress;
    const target: CallTarget = { context: `LogStore at ${address}`, deadlineMs, waitForReady: true, ...signalOf(opts) };
    const answering = await withReadRetry(
      () => logStoreStatusCall(this.#channels, address, target),
      deadlineMs,
      this.#retryPolicy,
      this.#cancelled(opts.signal),
      opts.signal,
    );
    return this.#membersFrom(address, answering, deadlineMs, opts.signal);
  }

  async #membersFrom(address: string, answering: StatusResponse, deadlineMs: number, signal?: AbortSignal): Promise<MemberReport[]> {
    const listed =
      answering.replicas.length > 0
        ? answering.replicas.map((r) => ({ replicaId: r.replicaId, address: r.address }))
        : [{ replicaId: answering.replicaId, address }];
    const answers = await Promise.all(
      listed.map(async (replica) => {
        if (replica.address === address) return { status: answering };
        const target: CallTarget = { context: `LogStore at ${replica.address}`, deadlineMs, waitForReady: false, ...signalOf({ signal }) };
        try {
          return { status: await logStoreStatusCall(this.#channels, replica.address, target) };
        } catch (err: unknown) {
          return { error: toClientError(err) };
        }
      }),
    );
    const leader = answers.find((a) => a.status?.role === "leader")?.status;
    return listed.map((replica, index): MemberReport => {
      const { status, error } = answers[index]!;
      const seenByLeader = leader?.replicas.find((r) => r.replicaId === replica.replicaId);
      const isFollower = seenByLeader !== undefined && status?.role !== "leader";
      return {
        ...replica,
        ...(status === undefined
          ? {}
          : {
              self: {
                role: status.role,
                term: status.term,
                lastLsn: status.lastLsn,
                commitLsn: status.commitLsn,
                leaderAddress: status.leaderAddress,
              },
            }),
        ...(error === undefined ? {} : { error }),
        ...(isFollower ? { matchLsn: seenByLeader.matchLsn, lag: seenByLeader.lag } : {}),
      };
    });
  }

  async #probeShard(shardId: number, deadlineMs: number, signal: AbortSignal | undefined): Promise<ShardStatusReport> {
    const address = this.#channels.shardAddress(shardId);
    const client = this.#channels.shard(shardId);
    const target: CallTarget = { context: this.#shardContext(shardId), deadlineMs, waitForReady: false, ...signalOf({ signal }) };
    try {
      const status = await callUnary<ShardStatusRequest, ShardStatusResponse>((r, m, o, cb) => client.status(r, m, o, cb), {}, target);
      return { shardId, address, status };
    } catch (err: unknown) {
      return { shardId, address, error: toClientError(err) };
    }
  }

  /**
   * A shard's delay histograms. With `reset` the call changes state, so it
   * is not retried (a retry could discard a histogram nobody read).
   */
  async deliveryStats(shardId: number, opts: { reset?: boolean } & CallOpts = {}): Promise<DeliveryStatsResponse> {
    this.#assertOpen();
    this.#checkShardId(shardId);
    const client = this.#channels.shard(shardId);
    const request = { reset: opts.reset ?? false };
    const call = (target: CallTarget): Promise<DeliveryStatsResponse> =>
      callUnary<DeliveryStatsRequest, DeliveryStatsResponse>((r, m, o, cb) => client.deliveryStats(r, m, o, cb), request, {
        ...target,
        client,
      });
    const context = this.#shardContext(shardId);
    if (request.reset) return call({ context, deadlineMs: this.#deadlineMs(opts.timeoutMs), waitForReady: true, ...signalOf(opts) });
    return this.#read(context, opts, call);
  }

  /**
   * The committed log from `fromLsn` (default: the next entry to commit, so only new ones), in LSN order,
   * one record per entry, until `toLsn` (inclusive; default: forever) or `signal` aborts (CancelledError).
   * Reads from any replica (each serves what it knows is committed); when a stream fails it resumes at the
   * next LSN on the next replica, with backoff, so no LSN is skipped or repeated. Gives up with the last
   * error after readAttemptsMax failed attempts in a row, or at once on an error a retry cannot fix.
   */
  async *readLog(opts: ReadLogOpts = {}): AsyncGenerator<LogRecord, void, undefined> {
    this.#assertOpen();
    const { signal } = opts;
    const toLsn = opts.toLsn === undefined ? undefined : checkLsn(opts.toLsn, "toLsn");
    const fromLsn =
      opts.fromLsn === undefined ? (await this.logStoreStatus(signal === undefined ? {} : { signal })).commitLsn + 1n : opts.fromLsn;
    const cursor = new LsnCursor(checkLsn(fromLsn, "fromLsn"));
    const addresses = this.#channels.logStoreAddresses;
    let replica = Math.max(0, addresses.indexOf(this.#logStoreAddress));
    const backoff = new Backoff(this.#options.readBackoff, Math.random);
    let failures = 0;
    while (toLsn === undefined || cursor.next <= toLsn) {
      const address = addresses[replica]!;
      const context = `LogStore at ${address}`;
      throwIfAborted(signal, context);
      const call = this.#channels.logStore(address).read({
        protocolVersion: PROTOCOL_VERSION,
        fromLsn: cursor.next,
        // Always a tailing read: a to_lsn past the replica's commit LSN would be refused.
        toLsn: 0n,
        readerId: `${this.clientId}/read-log`,
      });
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel, { once: true });
      let failure: ClientError;
      try {
        for await (const response of call as AsyncIterable<ReadResponse>) {
          for (const entry of response.entries) {
            if (!cursor.accept(entry)) continue;
            failures = 0;
            backoff.reset();
            yield toLogRecord(entry);
            if (toLsn !== undefined && cursor.next > toLsn) return;
          }
        }
        failure = new UnavailableError(Status.UNAVAILABLE, `${context}: the Read stream ended`);
      } catch (err: unknown) {
        throwIfAborted(signal, context);
        failure =
          err instanceof LogGapError ? new UnavailableError(Status.UNAVAILABLE, `${context}: ${err.message}`) : toClientError(err, context);
        if (!UnavailableError.is(failure) && !LimitExceededError.is(failure)) throw failure;
      } finally {
        signal?.removeEventListener("abort", cancel);
        call.cancel();
      }
      failures += 1;
      if (failures >= this.#options.readAttemptsMax || this.#channels.closed) throw failure;
      replica = (replica + 1) % addresses.length;
      await sleepUnlessAborted(backoff.nextDelayMs(), signal, context);
    }
  }

  /**
   * Committed mutations on keys starting with `prefix`, one event per transaction that has any (see
   * readLog for fromLsn, resuming and failures). Resume after an event with fromLsn = event.lsn + 1n.
   */
  async *watch(prefix: string, opts: ReadLogOpts = {}): AsyncGenerator<WatchEvent, void, undefined> {
    if (prefix !== "") this.#checkKey(prefix);
    for await (const record of this.readLog(opts)) {
      const event = watchEventOf(record, prefix);
      if (event !== undefined) yield event;
    }
  }

  /** Closes every channel. Idempotent; later calls throw CancelledError. */
  close(): void {
    this.#appendStreams.close();
    this.#channels.close();
  }

  #read<T>(context: string, opts: CallOpts, run: (target: CallTarget) => Promise<T>): Promise<T> {
    const deadlineMs = this.#deadlineMs(opts.timeoutMs);
    const target: CallTarget = { context, deadlineMs, waitForReady: true, ...signalOf(opts) };
    return withReadRetry(() => run(target), deadlineMs, this.#retryPolicy, this.#cancelled(opts.signal), opts.signal);
  }

  #deadlineMs(timeoutMs: number | undefined): number {
    return Date.now() + (timeoutMs === undefined ? this.#options.timeoutMs : checkTimeoutMs(timeoutMs));
  }

  #assertOpen(): void {
    if (this.#channels.closed) throw new CancelledError(Status.CANCELLED, "client is closed");
  }

  #checkKey(key: string): void {
    const problem = validateKey(key, this.#options.limits);
    if (problem) throw toClientError(problem);
  }

  #checkShardId(shardId: number): void {
    if (!Number.isInteger(shardId) || shardId < 0 || shardId >= this.shardMap.shardCount) {
      throw toClientError(invalidArgument(`shard id must be an integer in [0, ${this.shardMap.shardCount - 1}], got ${shardId}`));
    }
  }

  #shardContext(shardId: number): string {
    return `shard ${shardId} at ${this.#channels.shardAddress(shardId)}`;
  }
}

function outcomeName(outcome: PartOutcome, context: string): ShardOutcome["outcome"] {
  switch (outcome) {
    case PartOutcome.PART_OUTCOME_APPLIED:
      return "applied";
    case PartOutcome.PART_OUTCOME_REJECTED:
      return "rejected";
    case PartOutcome.PART_OUTCOME_UNKNOWN:
      return "unknown";
    default:
      throw new InternalError(Status.INTERNAL, `${context}: unknown part outcome ${outcome}`);
  }
}

/** The `signal` field of a CallTarget, present only when the caller gave one (exactOptionalPropertyTypes). */
function signalOf(opts: { signal?: AbortSignal | undefined }): { signal?: AbortSignal } {
  return opts.signal === undefined ? {} : { signal: opts.signal };
}

function checkLsn(lsn: bigint, name = "minLsn"): bigint {
  if (typeof lsn !== "bigint" || lsn < 0n || lsn >= 2n ** 64n)
    throw toClientError(invalidArgument(`${name} must be a bigint in [0, 2^64), got ${String(lsn)}`));
  return lsn;
}

/**
 * The error commit() throws when its session ended after an attempt that may have landed: the LogStore
 * refused the retry, so whether the transaction is in the log is unknown. Says how to find out.
 */
function outcomeUnknown(refusal: SessionExpiredError, append: AppendIdentity): SessionExpiredError {
  const { clientId, clientSeq, sessionLsn } = append;
  return new SessionExpiredError(
    Status.FAILED_PRECONDITION,
    `the outcome of this commit is unknown: an attempt may have been appended, but the LogStore no longer holds session ` +
      `${sessionLsn} of client ${clientId} (evicted by other clients or expired) and refused the retry of client_seq ${clientSeq} ` +
      `rather than risk appending it twice. Find out with lookupAppend(err.append) ` +
      `(lpctl lookup ${clientId} ${clientSeq} --session-lsn ${sessionLsn}), or read the transaction's keys (${refusal.message})`,
    { cause: refusal, append },
  );
}

function toAppendLookup(response: LookupAppendResponse): AppendLookup {
  switch (response.state) {
    case LookupAppendState.LOOKUP_APPEND_STATE_COMMITTED:
      return { state: "committed", lsn: response.lsn };
    case LookupAppendState.LOOKUP_APPEND_STATE_IN_FLIGHT:
      return { state: "in-flight", lsn: response.lsn };
    case LookupAppendState.LOOKUP_APPEND_STATE_NOT_APPENDED:
      return { state: "not-appended", scannedToLsn: response.scannedToLsn };
    case LookupAppendState.LOOKUP_APPEND_STATE_NOT_YET_APPENDED:
      return { state: "not-yet-appended", scannedToLsn: response.scannedToLsn };
    case LookupAppendState.LOOKUP_APPEND_STATE_UNKNOWN:
      return { state: "unknown", detail: response.detail };
    default:
      return { state: "unknown", detail: `the LogStore answered state ${response.state}, which this client does not know` };
  }
}

function logStoreStatusCall(channels: Channels, address: string, target: CallTarget): Promise<StatusResponse> {
  const client = channels.logStore(address);
  return callUnary<StatusRequest, StatusResponse>((r, m, o, cb) => client.status(r, m, o, cb), {}, { ...target, client });
}

/** The cluster's limits from Status; null from a LogStore that predates recorded limits. */
function clusterLimits(status: StatusResponse, address: string): TransactionLimits | null {
  if (status.limits === undefined) return null;
  const limits = parseTransactionLimits(status.limits);
  if (limits === null) throw failedPrecondition(`LogStore at ${address} reported malformed limits: ${JSON.stringify(status.limits)}`);
  return limits;
}

/** The LogStore's answer must describe a cluster this client can talk to. */
function checkClusterStatus(status: StatusResponse, shardAddressCount: number, address: string): void {
  if (status.protocolVersion !== PROTOCOL_VERSION) {
    throw failedPrecondition(`LogStore at ${address} speaks protocol version ${status.protocolVersion}, this client ${PROTOCOL_VERSION}`);
  }
  if (status.shardMap === undefined) throw failedPrecondition(`LogStore at ${address} reported no shard map`);
  validateShardMap(status.shardMap);
  if (status.shardMap.shardCount !== shardAddressCount) {
    throw failedPrecondition(
      `the cluster's shard map (${describeShardMap(status.shardMap)}) has ${status.shardMap.shardCount} shards but ${shardAddressCount} shard addresses were given`,
    );
  }
}

/**
 * Discovery: the cluster's addresses from the Status of any seed (the leader's when it answers first): every
 * replica's address (the seed's own for a single replica) and the shard addresses it reports, unless `shards`
 * is given. The options that come back name `logstore` and `shards`, as if the caller had listed them.
 */
async function discoverCluster(options: ClientOptions, signal: AbortSignal | undefined): Promise<ClientOptions> {
  const given = resolveOptions(options);
  const channels = new Channels(
    given.logStoreAddresses,
    [],
    grpcChannelOptions(given.messageBytesMax),
    channelCredentialsFor(given.security),
  );
  try {
    const { address, status } = await discoverLogStore(channels, Date.now() + given.timeoutMs, defaultRetryPolicy(given), signal);
    const shards = options.shards ?? status.shardAddresses;
    if (shards.length === 0) {
      throw failedPrecondition(
        `LogStore at ${address} reports no shard addresses (start it with --shard-addresses), so the shards cannot be discovered: give shards`,
      );
    }
    const { seeds: _seeds, ...rest } = options;
    const replicas = status.replicas.map((replica) => replica.address).filter((a) => a !== "");
    return { ...rest, logstore: replicas.length > 0 ? replicas : [address], shards: [...shards] };
  } catch (err: unknown) {
    throw toClientError(err);
  } finally {
    channels.close();
  }
}

/** Finds the LogStore replica to append to among the configured ones, each status read retried within the deadline. */
function discoverLogStore(
  channels: Channels,
  deadlineMs: number,
  policy: ReadRetryPolicy,
  signal?: AbortSignal,
): Promise<{ address: string; status: StatusResponse }> {
  const readStatus = (address: string): Promise<StatusResponse> =>
    withReadRetry(
      () =>
        logStoreStatusCall(channels, address, {
          context: `LogStore at ${address}`,
          deadlineMs,
          waitForReady: true,
          ...signalOf({ signal }),
        }),
      deadlineMs,
      policy,
      () => channels.closed || signal?.aborted === true,
      signal,
    );
  return probeReplicas(channels.logStoreAddresses, readStatus);
}

/**
 * Asks every configured LogStore replica for its status at once; settles as
 * soon as one says it is the leader, otherwise when all have answered or
 * failed (then `chooseLogStore` decides). Rejects with the first error when
 * none answered.
 */
function probeReplicas(
  addresses: readonly string[],
  readStatus: (address: string) => Promise<StatusResponse>,
): Promise<{ address: string; status: StatusResponse }> {
  return new Promise((resolve, reject) => {
    const probes: ReplicaProbe[] = addresses.map((address) => ({ address, status: undefined }));
    const errors: unknown[] = [];
    let pending = addresses.length;
    const settleOne = (): void => {
      pending -= 1;
      if (pending > 0) return;
      const chosen = chooseLogStore(probes);
      if (chosen) resolve(chosen);
      else reject(errors[0]);
    };
    addresses.forEach((address, index) => {
      readStatus(address).then(
        (status) => {
          probes[index] = { address, status };
          if (isLeaderStatus(status)) resolve({ address, status });
          settleOne();
        },
        (err: unknown) => {
          errors.push(err);
          settleOne();
        },
      );
    });
  });
}
