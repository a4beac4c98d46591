/*
 * Test fixture (not built into dist): an in-process fake LogStore and fake
 * shards on 127.0.0.1:0, generated service definitions, real gRPC. The fake
 * LogStore applies each append straight to the fake shards, so reads see
 * commits at once; knobs inject failures, hangs and redirects.
 */
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from "@grpc/grpc-js";
import {
  ErrorReason,
  LpError,
  Status,
  addHealthService,
  bindServer,
  createShardMap,
  grpcServerOptions,
  shardForKey,
  unavailable,
} from "@logplayer/common";
import {
  LogStoreService,
  MutationKind,
  PROTOCOL_VERSION,
  ShardService,
  ShardStatusResponse,
  LookupAppendState,
  type AppendRequest,
  type AppendResponse,
  type GetRequest,
  type LookupAppendRequest,
  type LookupAppendResponse,
  type RegisterClientRequest,
  type RegisterClientResponse,
  type LogEntry,
  type Mutation,
  type ReadRequest,
  type ReadResponse,
  type ScanRequest,
  type StatusResponse,
} from "@logplayer/proto";

export const FAKE_CLUSTER_ID = "fake-cluster";

/**
 * What a fake does with the next call: answer, fail with an error, never
 * answer, or do the work and then fail (the answer is lost: a retry must not repeat it).
 */
export type Fault = LpError | "hang" | { readonly applyThenFail: LpError };

export class FakeShard {
  readonly data = new Map<string, Buffer>();
  appliedLsn = 0n;
  readonly gets: GetRequest[] = [];
  readonly scans: ScanRequest[] = [];
  readonly statsResets: boolean[] = [];
  /** Faults for the next reads (get, scan, status), consumed in order. */
  readonly readFaults: Fault[] = [];
  /** Small pages so the client's paging is exercised. */
  scanPageItemsMax = 2;
  server: Server | undefined;
  port = 0;

  constructor(readonly shardId: number) {}

  apply(lsn: bigint, mutations: readonly Mutation[]): void {
    for (const m of mutations) {
      const current = this.data.get(m.key) ?? Buffer.alloc(0);
      if (m.kind === MutationKind.MUTATION_KIND_PUT) this.data.set(m.key, Buffer.from(m.value));
      else if (m.kind === MutationKind.MUTATION_KIND_DELETE) this.data.delete(m.key);
      else if (m.kind === MutationKind.MUTATION_KIND_APPEND) this.data.set(m.key, Buffer.concat([current, m.value]));
      else if (m.kind === MutationKind.MUTATION_KIND_ADD) {
        const base = /^-?\d+$/.test(current.toString()) ? BigInt(current.toString()) : 0n;
        this.data.set(m.key, Buffer.from(BigInt.asIntN(64, base + m.delta).toString()));
      }
    }
    this.appliedLsn = lsn;
  }
}

export class FakeLogStore {
  /** Every append that reached the handler and was not refused by a fault first, retries included. */
  readonly appends: AppendRequest[] = [];
  /** Idempotent appends like the real LogStore: "clientId/seq" -> LSN. */
  readonly #appended = new Map<string, bigint>();
  readonly appendFaults: Fault[] = [];
  /** Client sessions like the real LogStore's (RegisterClient); off: RegisterClient is UNIMPLEMENTED, as in an older one. */
  sessions = false;
  /** clientId -> the LSN of its live session's registration. */
  readonly liveSessions = new Map<string, bigint>();
  readonly registrations: string[] = [];
  /** Called after an append is applied (before its answer, which a fault may then lose). */
  afterAppend: (request: AppendRequest) => void = () => {};
  /** The committed log, LSN 1 first (registrations have no txn). Two fakes may share one array to act as replicas. */
  entries: LogEntry[] = [];
  /** Read faults, one per Read call in order: send this many entries, then fail the stream with UNAVAILABLE. */
  readonly readFailAfter: number[] = [];
  /** When set, a Read starts this many entries before the LSN asked for (a replica repeating what was handed out). */
  readRepeat = 0;
  readonly reads: ReadRequest[] = [];
  /** Fakes sharing this one's `entries`, whose Read streams wake on its commits. */
  readonly mirrors: FakeLogStore[] = [];
  readonly #readers = new Set<() => void>();
  role = "leader";
  leaderAddress = "";
  /** Reported in Status (the LogStore's --shard-addresses). */
  shardAddresses: string[] = [];
  /** Reported in Status: the replica list (empty for a single replica). */
  replicas: StatusResponse["replicas"] = [];
  protocolVersion = PROTOCOL_VERSION;
  commitLsn = 0n;
  server: Server | undefined;
  port = 0;

  constructor(
    readonly shardCount: number,
    private readonly shards: readonly FakeShard[],
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  status(): StatusResponse {
    return {
      protocolVersion: this.protocolVersion,
      clusterId: FAKE_CLUSTER_ID,
      shardMap: createShardMap(this.shardCount),
      firstLsn: 1n,
      lastLsn: this.commitLsn,
      commitLsn: this.commitLsn,
      role: this.role,
      term: 1n,
      leaderAddress: this.leaderAddress,
      replicaId: `replica-${this.port}`,
      replicas: this.replicas,
      limits: undefined,
      shardAddresses: this.shardAddresses,
      trimPoint: 0n,
      snapshotLsn: 0n,
      walBytes: 0n,
      voters: [],
      learners: [],
    };
  }

  registerClient(request: RegisterClientRequest): RegisterClientResponse {
    if (!this.sessions) throw new LpError(Status.UNIMPLEMENTED, "fake LogStore without sessions");
    this.#commitEntry({ lsn: this.commitLsn + 1n, term: 1n, txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n });
    this.registrations.push(request.clientId);
    this.liveSessions.set(request.clientId, this.commitLsn);
    return { sessionLsn: this.commitLsn };
  }

  lookupAppend(request: LookupAppendRequest): LookupAppendResponse {
    const lsn = this.#appended.get(`${request.clientId}/${request.clientSeq}`);
    const state = lsn !== undefined ? LookupAppendState.LOOKUP_APPEND_STATE_COMMITTED : LookupAppendState.LOOKUP_APPEND_STATE_NOT_APPENDED;
    return { state, lsn: lsn ?? 0n, scannedToLsn: this.commitLsn, detail: "" };
  }

  append(request: AppendRequest): AppendResponse {
    this.appends.push(request);
    if (this.sessions && request.clientId !== "" && this.liveSessions.get(request.clientId) !== request.sessionLsn) {
      throw new LpError(Status.FAILED_PRECONDITION, `fake: no live session ${request.sessionLsn}`, { reason: ErrorReason.sessionExpired });
    }
    const key = `${request.clientId}/${request.clientSeq}`;
    const original = request.clientId === "" ? undefined : this.#appended.get(key);
    if (original !== undefined) return { lsn: original, duplicate: true };
    const { txn, commitTimeNs, clientId, clientSeq } = request;
    this.#commitEntry({ lsn: this.commitLsn + 1n, term: 1n, txn, commitTimeNs, clientId, clientSeq });
    if (request.clientId !== "") this.#appended.set(key, this.commitLsn);
    const map = createShardMap(this.shardCount);
    for (const shard of this.shards) {
      const part = (request.txn?.mutations ?? []).filter((m) => shardForKey(m.key, map) === shard.shardId);
      shard.apply(this.commitLsn, part);
    }
    this.afterAppend(request);
    return { lsn: this.commitLsn, duplicate: false };
  }

  #commitEntry(entry: LogEntry): void {
    this.entries.push(entry);
    this.commitLsn = entry.lsn;
    for (const store of [this, ...this.mirrors]) store.wakeReaders();
  }

  wakeReaders(): void {
    for (const wake of this.#readers) wake();
  }

  /** A tailing Read over `entries` (which another fake may fill), one entry per message, with the faults above. */
  async read(call: ServerWritableStream<ReadRequest, ReadResponse>): Promise<void> {
    this.reads.push(call.request);
    const failAfter = this.readFailAfter.shift();
    const asked = call.request.fromLsn - BigInt(this.readRepeat);
    let next = asked < 1n ? 1n : asked;
    let sent = 0;
    let cancelled = false;
    call.on("cancelled", () => (cancelled = true));
    // Bounded: a test's reads end by cancelling, a fault or the server's shutdown.
    while (!cancelled) {
      const entry = this.entries[Number(next) - 1];
      if (entry === undefined) {
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            this.#readers.delete(wake);
            resolve();
          };
          this.#readers.add(wake);
          call.once("cancelled", wake);
        });
        continue;
      }
      if (failAfter !== undefined && sent === failAfter) {
        call.emit("error", unavailable("fake: Read stream broken").toServiceError());
        return;
      }
      call.write({ entries: [entry], commitLsn: BigInt(this.entries.length), leaderAddress: "", fromLeader: true });
      sent += 1;
      next += 1n;
    }
  }
}

/** Answers from `answer()`, unless a fault is queued: then fails with it or never answers. */
function respond<T>(faults: Fault[], callback: sendUnaryData<T>, answer: () => T): void {
  const fault = faults.shift();
  if (fault === "hang") return;
  if (fault !== undefined && "applyThenFail" in fault) {
    answer();
    callback(fault.applyThenFail.toServiceError() as Parameters<sendUnaryData<T>>[0]);
    return;
  }
  if (fault !== undefined) {
    callback(fault.toServiceError() as Parameters<sendUnaryData<T>>[0]);
    return;
  }
  try {
    callback(null, answer());
  } catch (err: unknown) {
    callback(LpError.from(err).toServiceError() as Parameters<sendUnaryData<T>>[0]);
  }
}

function scanPage(shard: FakeShard, request: ScanRequest): { items: { key: string; value: Buffer }[]; appliedLsn: bigint; more: boolean } {
  const keys = [...shard.data.keys()]
    .filter((key) => key.startsWith(request.prefix) && (request.startAfter === "" || key > request.startAfter))
    .sort();
  const pageMax = Math.min(request.limit === 0 ? shard.scanPageItemsMax : request.limit, shard.scanPageItemsMax);
  const page = keys.slice(0, pageMax);
  return {
    items: page.map((key) => ({ key, value: shard.data.get(key)! })),
    appliedLsn: shard.appliedLsn,
    more: keys.length > page.length,
  };
}

export async function startShard(shard: FakeShard, port = 0): Promise<void> {
  const server = new Server(grpcServerOptions({ messageBytesMax: 4 * 1024 * 1024, concurrentStreamsMax: 100 }));
  server.addService(ShardService, {
    deliver: () => undefined,
    get: (call: ServerUnaryCall<GetRequest, unknown>, callback: sendUnaryData<unknown>) => {
      shard.gets.push(call.request);
      respond(shard.readFaults, callback, () => {
        if (shard.appliedLsn < call.request.minLsn) throw unavailable("fake shard is behind min_lsn");
        const value = shard.data.get(call.request.key);
        return { found: value !== undefined, value: value ?? Buffer.alloc(0), appliedLsn: shard.appliedLsn };
      });
    },
    scan: (call: ServerUnaryCall<ScanRequest, unknown>, callback: sendUnaryData<unknown>) => {
      shard.scans.push(call.request);
      respond(shard.readFaults, callback, () => scanPage(shard, call.request));
    },
    status: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      // fromPartial: every field a newer proto adds gets its default, so the reply always encodes.
      respond(shard.readFaults, callback, () =>
        ShardStatusResponse.fromPartial({
          protocolVersion: PROTOCOL_VERSION,
          shardId: shard.shardId,
          clusterId: FAKE_CLUSTER_ID,
          shardMap: undefined,
          appliedLsn: shard.appliedLsn,
          durableLsn: shard.appliedLsn,
          restorableLsn: shard.appliedLsn,
          partsApplied: shard.appliedLsn,
          partsDuplicate: 0n,
          gaps: 0n,
          deliveryStreams: 1,
        }),
      ),
    deliveryStats: (call: ServerUnaryCall<{ reset: boolean }, unknown>, callback: sendUnaryData<unknown>) => {
      shard.statsResets.push(call.request.reset);
      respond(shard.readFaults, callback, () => ({ playerDelayUs: "p", applyDelayUs: "a", sqliteCommitDelayUs: "s", parts: 7n }));
    },
  });
  addHealthService(server).setStatus("", "SERVING");
  shard.port = await bindServer(server, `127.0.0.1:${port}`, ServerCredentials.createInsecure());
  shard.server = server;
}

export async function startLogStore(logStore: FakeLogStore): Promise<void> {
  const server = new Server(grpcServerOptions({ messageBytesMax: 4 * 1024 * 1024, concurrentStreamsMax: 100 }));
  server.addService(LogStoreService, {
    append: (call: ServerUnaryCall<AppendRequest, AppendResponse>, callback: sendUnaryData<AppendResponse>) =>
      respond(logStore.appendFaults, callback, () => logStore.append(call.request)),
    read: (call: ServerWritableStream<ReadRequest, ReadResponse>) => void logStore.read(call),
    status: (_call: ServerUnaryCall<unknown, StatusResponse>, callback: sendUnaryData<StatusResponse>) => callback(null, logStore.status()),
    registerClient: (
      call: ServerUnaryCall<RegisterClientRequest, RegisterClientResponse>,
      callback: sendUnaryData<RegisterClientResponse>,
    ) => respond([], callback, () => logStore.registerClient(call.request)),
    lookupAppend: (call: ServerUnaryCall<LookupAppendRequest, LookupAppendResponse>, callback: sendUnaryData<LookupAppendResponse>) =>
      respond([], callback, () => logStore.lookupAppend(call.request)),
  });
  logStore.port = await bindServer(server, "127.0.0.1:0", ServerCredentials.createInsecure());
  logStore.server = server;
}

export interface FakeCluster {
  logStore: FakeLogStore;
  shards: FakeShard[];
  shardAddresses: string[];
  close(): void;
}

export async function startFakeCluster(shardCount: number): Promise<FakeCluster> {
  const shards = Array.from({ length: shardCount }, (_, id) => new FakeShard(id));
  for (const shard of shards) await startShard(shard);
  const logStore = new FakeLogStore(shardCount, shards);
  await startLogStore(logStore);
  return {
    logStore,
    shards,
    shardAddresses: shards.map((s) => `127.0.0.1:${s.port}`),
    close: () => {
      logStore.server?.forceShutdown();
      for (const shard of shards) shard.server?.forceShutdown();
    },
  };
}
