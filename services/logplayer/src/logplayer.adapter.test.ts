import { INSECURE } from "@logplayer/tls";
import { Server, ServerCredentials, status as GrpcStatus, type ServerDuplexStream, type ServerWritableStream } from "@grpc/grpc-js";
import { createShardMap, shardForKey, silentLogger } from "@logplayer/common";
import { DEFAULT_DELIVERY_LIMITS } from "@logplayer/delivery";
import { waitFor } from "@logplayer/testing";
import {
  LogStoreService,
  MutationKind,
  ShardService,
  type DeliverRequest,
  type DeliverResponse,
  type LogEntry,
  type LogStoreServer,
  type ReadRequest,
  type ReadResponse,
  type ShardServer,
} from "@logplayer/proto";
import { startLogPlayer, type RunningLogPlayer } from "./start-logplayer";

/**
 * The service adapters against fake LogStore and shard gRPC servers in this
 * process: where the main stream starts, the ack-timeout health checker, and
 * a shard refusing the hello (FAILED_PRECONDITION) without hurting the others.
 */

const SHARDS = 3;
const shardMap = createShardMap(SHARDS);
const LOG_LENGTH = 30;

function keyFor(shard: number, n: number): string {
  for (let i = 0; ; i++) {
    const key = `k${n}-${i}`;
    if (shardForKey(key, shardMap) === shard) return key;
  }
}

/** Entry i touches shard i % 3 and, every other entry, shard (i + 1) % 3. */
const log: LogEntry[] = Array.from({ length: LOG_LENGTH }, (_, index) => {
  const lsn = index + 1;
  const shards = lsn % 2 === 0 ? [lsn % SHARDS, (lsn + 1) % SHARDS] : [lsn % SHARDS];
  const mutations = shards.map((s) => ({
    kind: MutationKind.MUTATION_KIND_PUT,
    key: keyFor(s, lsn),
    value: Buffer.from([lsn]),
    delta: 0n,
  }));
  return { lsn: BigInt(lsn), term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
});

const mainReads: bigint[] = [];

const logstore: LogStoreServer = {
  append: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  appendStream: (call) => call.emit("error", { code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  registerClient: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  lookupAppend: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  reportTrimPoint: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  addMember: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  removeMember: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  listMembers: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  status: (_call, callback) =>
    callback(null, {
      protocolVersion: 1,
      clusterId: "fake-cluster",
      shardMap,
      // Below every fake shard's applied LSN + 1; each hello must carry it.
      firstLsn: 2n,
      lastLsn: BigInt(LOG_LENGTH),
      commitLsn: BigInt(LOG_LENGTH),
      role: "leader",
      term: 1n,
      leaderAddress: "",
      replicaId: "1",
      replicas: [],
      limits: undefined,
      shardAddresses: [],
      trimPoint: 0n,
      snapshotLsn: 0n,
      walBytes: 0n,
      voters: [],
      learners: [],
    }),
  read: (call: ServerWritableStream<ReadRequest, ReadResponse>) => {
    const { fromLsn, toLsn } = call.request;
    if (toLsn === 0n) mainReads.push(fromLsn);
    const last = toLsn === 0n ? BigInt(LOG_LENGTH) : toLsn;
    const entries = log.filter((e) => e.lsn >= fromLsn && e.lsn <= last);
    call.write({ entries, commitLsn: BigInt(LOG_LENGTH), leaderAddress: "", fromLeader: true });
    if (toLsn !== 0n) call.end(); // the main stream stays open, tailing
  },
};

/** A shard model: applies by the (lsn, prevLsn) rule, records what it applied. */
class FakeShard {
  applied: bigint;
  readonly initialApplied: bigint;
  readonly appliedLsns: bigint[] = [];
  hellos = 0;
  readonly logFirstLsns: bigint[] = [];
  constructor(
    readonly id: number,
    initialApplied: bigint,
    /** Which hello numbers (1-based) to refuse or to leave unacknowledged. */
    readonly behaviour: { refuseHello?: number; silentStream?: number } = {},
  ) {
    this.applied = initialApplied;
    this.initialApplied = initialApplied;
  }

  readonly service: ShardServer = {
    deliver: (call: ServerDuplexStream<DeliverRequest, DeliverResponse>) => {
      let helloNumber = 0;
      call.on("data", (request: DeliverRequest) => {
        const body = request.body;
        if (body?.$case === "hello") {
          this.hellos += 1;
          this.logFirstLsns.push(body.value.logFirstLsn);
          helloNumber = this.hellos;
          if (helloNumber === this.behaviour.refuseHello) {
            call.emit("error", { code: GrpcStatus.FAILED_PRECONDITION, details: "cluster id mismatch (fake)" });
            return;
          }
          call.write({ body: { $case: "hello", value: { shardId: this.id, appliedLsn: this.applied } } });
          return;
        }
        if (body?.$case !== "batch" || helloNumber === this.behaviour.silentStream) return;
        call.write(this.#apply(body.value.parts));
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    },
    get: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
    getOutcome: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
    scan: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
    status: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
    deliveryStats: (_call, callback) => callback({ code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
    backup: (call) => call.emit("error", { code: GrpcStatus.UNIMPLEMENTED, details: "fake" }),
  };

  #apply(parts: { lsn: bigint; prevLsn: bigint; mutations: unknown[] }[]): DeliverResponse {
    for (const part of parts) {
      if (part.lsn <= this.applied) continue;
      if (part.prevLsn > this.applied) {
        return { body: { $case: "gap", value: { appliedLsn: this.applied, lsn: part.lsn, prevLsn: part.prevLsn } } };
      }
      if (part.mutations.length > 0) this.appliedLsns.push(part.lsn);
      this.applied = part.lsn;
    }
    return { body: { $case: "ack", value: { appliedLsn: this.applied } } };
  }

  expectedLsns(): bigint[] {
    return log
      .filter((e) => e.lsn > this.initialApplied && e.txn!.mutations.some((m) => shardForKey(m.key, shardMap) === this.id))
      .map((e) => e.lsn);
  }
}

async function serve(add: (server: Server) => void): Promise<{ server: Server; port: number }> {
  const server = new Server();
  add(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port };
}

const servers: Server[] = [];
let player: RunningLogPlayer | null = null;

afterAll(async () => {
  await player?.close();
  for (const server of servers) server.forceShutdown();
});

test("starts at min(applied)+1, survives a silent shard and a refused hello, delivers everything once", async () => {
  const shards = [
    new FakeShard(0, 5n),
    new FakeShard(1, 3n, { silentStream: 1 }), // first stream never acks: the health checker must act
    new FakeShard(2, 7n, { refuseHello: 1 }), // first hello refused: retried, others unaffected
  ];
  const store = await serve((s) => s.addService(LogStoreService, logstore));
  servers.push(store.server);
  const shardServers = await Promise.all(shards.map((shard) => serve((s) => s.addService(ShardService, shard.service))));
  servers.push(...shardServers.map((s) => s.server));

  player = await startLogPlayer(
    {
      logstoreAddresses: [`127.0.0.1:${store.port}`],
      shardAddresses: shardServers.map((s) => `127.0.0.1:${s.port}`),
      playerId: "adapter-test",
      listen: "127.0.0.1:0",
      metricsPort: -1,
      limits: { ...DEFAULT_DELIVERY_LIMITS, batchPartsMax: 4, dummyEveryEntries: 1000 },
      recoveryStreamsMax: 2,
      ackTimeoutMs: 300,
      backoff: { initialDelayMs: 10, maxDelayMs: 100, multiplier: 2 },
      startWaitMs: 5000, // long: the start must come from "all shards answered", not from the timer
      messageBytesMax: 4 * 1024 * 1024,
      statusTimeoutMs: 2000,
      // The fakes serve plain text; transport security is tested against the real services.
      security: INSECURE,
    },
    silentLogger(),
  );

  await waitFor("every shard to apply its entries", () => shards.every((s) => s.appliedLsns.length === s.expectedLsns().length), {
    timeoutMs: 15_000,
  });
  for (const shard of shards) expect(shard.appliedLsns).toEqual(shard.expectedLsns());
  // startWaitMs is long, so the main stream started once all three had answered: at min(5, 3, 7) + 1.
  expect(mainReads[0]).toBe(4n);
  expect(shards[1]!.hellos).toBeGreaterThanOrEqual(2);
  expect(shards[2]!.hellos).toBeGreaterThanOrEqual(2);
  for (const shard of shards) expect(new Set(shard.logFirstLsns)).toEqual(new Set([2n]));
}, 30_000);
