// The attacks of issue 13, replayed against the secure default (a launcher-made
// cluster: 3 LogStore replicas, 2 shards, mTLS): without a certificate, with a
// valid certificate of the wrong role, and with a replica certificate speaking
// for another replica. Each is refused with the right status, changes nothing
// (shard applied LSN and data, every replica's log and term), every process
// keeps serving, and the next legitimate request succeeds.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { credentials, type ChannelCredentials, Metadata, type ServiceError, status as Status } from "@grpc/grpc-js";
import { checkHealth, HealthServingStatus, LimitExceededError, type LogPlayerClient, mutation } from "@logplayer/client";
import { LocalCluster } from "@logplayer/cluster";
import {
  type DeliverResponse,
  DeliverHello,
  LogStoreClient,
  MutationKind,
  PartBatch,
  PROTOCOL_VERSION,
  RaftMessage,
  RaftMessageType,
  ReplicationClient,
  ShardClient,
  StepRequest,
  type StatusResponse,
} from "@logplayer/proto";
import { channelCredentialsFor, loadTransportSecurity, type PeerIdentity, TRUST_DOMAIN_DEFAULT, tlsFilesInDir } from "@logplayer/tls";
import { waitFor } from "@logplayer/testing";
import { tempDataDir } from "./harness";

const CALL_TIMEOUT_MS = 5_000;
/** The forged writes use LSN 2^63-1: accepted once, it would freeze the shard for good (issue 13). */
const FORGED_LSN = 2n ** 63n - 1n;
const READ_WAITERS_PER_CALLER = 2;
/** The shard's default --delivery-streams-per-caller-max. */
const DELIVERY_STREAMS_PER_CALLER = 4;
const PLAIN_TEXT_FAILURES: readonly Status[] = [Status.UNAVAILABLE, Status.INTERNAL];

interface Snapshot {
  readonly replicas: { name: string; term: bigint; lastLsn: bigint; commitLsn: bigint }[];
  readonly shardApplied: bigint[];
  readonly victim: string;
}

describe("trust boundaries (mTLS + roles) against real processes", () => {
  let cluster: LocalCluster;
  let client: LogPlayerClient;
  let lastLsn = 0n;

  const credentialsOf = (identity: PeerIdentity): ChannelCredentials =>
    channelCredentialsFor(loadTransportSecurity(tlsFilesInDir(cluster.tlsDir, identity), TRUST_DOMAIN_DEFAULT, identity));

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      dataDir: tempDataDir("security"),
      shardCount: 2,
      logPlayers: 1,
      logStoreReplicas: 3,
      ports: "auto",
      logLevel: "info",
      // Small per-caller bound on waiting reads, so that the test can fill one caller's share.
      extraArgs: { shard: ["--read-waiters-per-caller-max", String(READ_WAITERS_PER_CALLER)] },
    });
    client = await cluster.connectClient({ timeoutMs: 10_000 });
    lastLsn = (await client.commit([mutation.put("victim", "legit-0")])).lsn;
    await client.get("victim", { minLsn: lastLsn });
  }, 90_000);

  afterAll(async () => {
    client?.close();
    await cluster?.stop();
  });

  async function replicaStatus(address: string): Promise<StatusResponse> {
    const raw = new LogStoreClient(address, channelCredentialsFor(cluster.adminSecurity));
    try {
      return await new Promise<StatusResponse>((resolve, reject) =>
        raw.status({}, new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err, res) => (err ? reject(err) : resolve(res!))),
      );
    } finally {
      raw.close();
    }
  }

  async function snapshot(): Promise<Snapshot> {
    const replicas = await Promise.all(
      cluster.plan
        .filter((spec) => spec.service === "logstore")
        .map(async (spec) => {
          const s = await replicaStatus(spec.grpcAddress);
          return { name: spec.name, term: s.term, lastLsn: s.lastLsn, commitLsn: s.commitLsn };
        }),
    );
    const report = await client.clusterStatus();
    const shardApplied = report.shards.map((shard) => shard.status?.appliedLsn ?? -1n);
    const victim = (await client.get("victim", { minLsn: lastLsn })).value.toString();
    return { replicas, shardApplied, victim };
  }

  /** Every process answers its health check, and a new commit is applied and read back. */
  async function everythingStillServes(): Promise<void> {
    for (const spec of cluster.plan) {
      const health = await checkHealth(spec.grpcAddress, { timeoutMs: CALL_TIMEOUT_MS, security: cluster.adminSecurity });
      expect([spec.name, health.status]).toEqual([spec.name, HealthServingStatus.SERVING]);
    }
    const value = `legit-${lastLsn + 1n}`;
    lastLsn = (await client.commit([mutation.put("victim", value)])).lsn;
    expect((await client.get("victim", { minLsn: lastLsn })).value.toString()).toBe(value);
  }

  function metric(spec: { metricsPort: number }, name: string, labels: string): Promise<number> {
    return new Promise((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port: spec.metricsPort, path: "/metrics" }, (res) => {
          let body = "";
          res.on("data", (chunk: Buffer) => (body += chunk.toString()));
          res.on("end", () => {
            const line = body.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
            resolve(line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1)));
          });
        })
        .on("error", reject);
    });
  }

  /** Opens Shard.Deliver with `channel`, sends a valid-looking hello (from the shard's own Status) and a forged batch. */
  async function forgedDelivery(shardId: number, channel: ChannelCredentials): Promise<ServiceError> {
    const address = cluster.endpoints.shards[shardId]!;
    const shardStatus = (await client.clusterStatus()).shards[shardId]!.status!;
    const raw = new ShardClient(address, channel);
    try {
      const call = raw.deliver(new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS });
      const ended = new Promise<ServiceError>((resolve) => {
        call.on("error", (err: ServiceError) => resolve(err));
        call.on("data", (_: DeliverResponse) => undefined);
        call.on("end", () => resolve({ code: Status.OK, details: "stream ended without an error" } as ServiceError));
      });
      const hello = DeliverHello.fromPartial({
        protocolVersion: PROTOCOL_VERSION,
        clusterId: shardStatus.clusterId,
        shardMap: shardStatus.shardMap,
        shardId,
        playerId: "attacker",
      });
      const part = {
        lsn: FORGED_LSN,
        prevLsn: shardStatus.appliedLsn,
        mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: "victim", value: Buffer.from("forged"), delta: 0n }],
      };
      call.write({ body: { $case: "hello", value: hello } });
      call.write({ body: { $case: "batch", value: PartBatch.fromPartial({ parts: [part] }) } });
      return await ended;
    } finally {
      raw.close();
    }
  }

  /**
   * Sends replica 1 a heartbeat "from replica 3" at a much higher term with the
   * right cluster id and peer hash (read from its raft-state.json, as an attacker
   * computes them from Status): accepted, it would make replica 1 adopt the term.
   */
  async function forgedStep(channel: ChannelCredentials, via: "step" | "stream" = "step"): Promise<ServiceError | null> {
    const target = cluster.plan.find((spec) => spec.name === "logstore-1")!;
    const stored = JSON.parse(fs.readFileSync(path.join(target.dataDir!, "raft-state.json"), "utf8")) as {
      clusterId: string;
      peersHash: string;
    };
    const term = (await replicaStatus(target.grpcAddress)).term + 5n;
    const message = RaftMessage.fromPartial({ type: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT, from: 3, to: 1, term, commit: 0n });
    const request = StepRequest.fromPartial({ clusterId: stored.clusterId, peersHash: stored.peersHash, messages: [message] });
    const raw = new ReplicationClient(target.grpcAddress, channel);
    try {
      if (via === "step") {
        return await new Promise<ServiceError | null>((resolve) =>
          raw.step(request, new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err) => resolve(err)),
        );
      }
      // The stream replicas use: the refusal ends it with its status (the sender does not end it first).
      return await new Promise<ServiceError | null>((resolve) => {
        const call = raw.stepStream(new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS }, (err) => resolve(err));
        call.write(request);
      });
    } finally {
      raw.close();
    }
  }

  it("a plain-text connection is refused by every gRPC server (no TLS, no service)", async () => {
    const before = await snapshot();
    for (const address of [...cluster.endpoints.logstores, ...cluster.endpoints.shards]) {
      const raw = new LogStoreClient(address, credentials.createInsecure());
      const err = await new Promise<ServiceError | null>((resolve) =>
        raw.append(
          {
            txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: "victim", value: Buffer.from("forged"), delta: 0n }] },
          } as never,
          new Metadata(),
          { deadline: Date.now() + CALL_TIMEOUT_MS },
          (e) => resolve(e),
        ),
      );
      raw.close();
      // The server never speaks HTTP/2 to a plain-text peer, so no handler answers: the client sees the
      // connection fail (UNAVAILABLE) or its HTTP/2 preface rejected (INTERNAL), never a gRPC reply.
      expect([address, PLAIN_TEXT_FAILURES.includes(err?.code ?? Status.OK), err?.details]).toEqual([address, true, err?.details]);
    }
    const delivery = await forgedDelivery(0, credentials.createInsecure());
    expect(PLAIN_TEXT_FAILURES).toContain(delivery.code);
    expect(await snapshot()).toEqual(before);
    await everythingStillServes();
  });

  it("a client certificate on Shard.Deliver is refused with PERMISSION_DENIED and the shard changes nothing", async () => {
    const shard = cluster.plan.find((spec) => spec.name === "shard-0")!;
    const refusedBefore = await metric(shard, "lp_shard_auth_refusals_total", 'reason="permission_denied"');
    const before = await snapshot();
    const err = await forgedDelivery(0, credentialsOf({ role: "client", name: "default" }));
    expect(err.code).toBe(Status.PERMISSION_DENIED);
    expect(err.details).toContain("client/default may not call /logplayer.v1.Shard/Deliver");
    expect(await snapshot()).toEqual(before);
    expect(await metric(shard, "lp_shard_auth_refusals_total", 'reason="permission_denied"')).toBe(refusedBefore + 1);
    await everythingStillServes();
  });

  it("a LogPlayer certificate on Replication.Step is refused with PERMISSION_DENIED and no replica's term or log changes", async () => {
    const before = await snapshot();
    const err = await forgedStep(credentialsOf({ role: "logplayer", name: "main" }));
    expect(err?.code).toBe(Status.PERMISSION_DENIED);
    expect(err?.details).toContain("logplayer/main may not call /logplayer.v1.Replication/Step");
    expect(await snapshot()).toEqual(before);
    await everythingStillServes();
  });

  it("replica 2's certificate sending a message from replica 3 is refused with PERMISSION_DENIED and changes nothing", async () => {
    const replica1 = cluster.plan.find((spec) => spec.name === "logstore-1")!;
    const before = await snapshot();
    const err = await forgedStep(credentialsOf({ role: "logstore-replica", name: "2" }));
    expect(err?.code).toBe(Status.PERMISSION_DENIED);
    expect(err?.details).toContain("replica certificate 2 may not send a Raft message from replica 3");
    // Bounded wait: a refused call leaves nothing queued that could change the term a moment later.
    await waitFor(
      "the refusal to be counted",
      async () => (await metric(replica1, "lp_logstore_auth_refusals_total", 'reason="sender_mismatch"')) === 1,
      {
        timeoutMs: 5_000,
      },
    );
    expect(await snapshot()).toEqual(before);
    await everythingStillServes();
  });

  it("on Replication.StepStream too: a LogPlayer certificate and a replica speaking for another are refused with PERMISSION_DENIED", async () => {
    const before = await snapshot();
    const byPolicy = await forgedStep(credentialsOf({ role: "logplayer", name: "main" }), "stream");
    expect(byPolicy?.code).toBe(Status.PERMISSION_DENIED);
    expect(byPolicy?.details).toContain("logplayer/main may not call /logplayer.v1.Replication/StepStream");
    const forged = await forgedStep(credentialsOf({ role: "logstore-replica", name: "2" }), "stream");
    expect(forged?.code).toBe(Status.PERMISSION_DENIED);
    expect(forged?.details).toContain("replica certificate 2 may not send a Raft message from replica 3");
    expect(await snapshot()).toEqual(before);
    await everythingStillServes();
  });

  it("waiting reads are bounded per caller: one client's share full is RESOURCE_EXHAUSTED for it, not for another identity", async () => {
    const shard = cluster.plan.find((spec) => spec.name === `shard-${client.shardForKey("victim")}`)!;
    const future = lastLsn + 1_000n;
    const waiting = Array.from({ length: READ_WAITERS_PER_CALLER }, () =>
      client.get("victim", { minLsn: future, timeoutMs: 8_000 }).then(
        () => "answered",
        (err: unknown) => (err instanceof Error ? err.name : String(err)),
      ),
    );
    await waitFor("the client's reads to wait", async () => (await metric(shard, "lp_shard_waiting_reads", "")) >= READ_WAITERS_PER_CALLER);
    await expect(client.get("victim", { minLsn: future, timeoutMs: 8_000 })).rejects.toThrow(LimitExceededError);
    await expect(client.get("victim", { minLsn: future, timeoutMs: 8_000 })).rejects.toThrow(/read_waiters_per_caller_max 2/);
    // Another identity (lpctl's admin certificate) is not held back by the client's share: its read waits too.
    const admin = await cluster.connectClient({ timeoutMs: 10_000, security: cluster.adminSecurity });
    try {
      await expect(admin.get("victim", { minLsn: future, timeoutMs: 300 })).rejects.toMatchObject({ name: "DeadlineExceededError" });
    } finally {
      admin.close();
    }
    expect(await Promise.all(waiting)).toEqual(Array(READ_WAITERS_PER_CALLER).fill("DeadlineExceededError"));
    await everythingStillServes();
  });
  it("Deliver streams are bounded per caller: past the LogPlayer identity's share, RESOURCE_EXHAUSTED; the LogPlayer keeps delivering", async () => {
    const shard = cluster.plan.find((spec) => spec.name === "shard-0")!;
    const open = await metric(shard, "lp_shard_delivery_streams", "");
    // The running LogPlayer holds `open` streams as logplayer/main; fill the rest of that identity's share (4).
    const raw = new ShardClient(cluster.endpoints.shards[0]!, credentialsOf({ role: "logplayer", name: "main" }));
    const idle = Array.from({ length: DELIVERY_STREAMS_PER_CALLER - open }, () => raw.deliver());
    for (const call of idle) call.on("error", () => undefined);
    try {
      await waitFor(
        "the idle streams to be open",
        async () => (await metric(shard, "lp_shard_delivery_streams", "")) === DELIVERY_STREAMS_PER_CALLER,
      );
      const refused = raw.deliver(new Metadata(), { deadline: Date.now() + CALL_TIMEOUT_MS });
      const err = await new Promise<ServiceError>((resolve) => refused.on("error", resolve));
      expect(err.code).toBe(Status.RESOURCE_EXHAUSTED);
      expect(err.details).toContain("logplayer/main already has 4 delivery streams open (delivery_streams_per_caller_max 4)");
    } finally {
      for (const call of idle) call.cancel();
      raw.close();
    }
    await waitFor("the idle streams to close", async () => (await metric(shard, "lp_shard_delivery_streams", "")) === open);
    await everythingStillServes();
  });
});

describe("starting without TLS is a choice, and only on loopback", () => {
  const ROOT = path.resolve(__dirname, "..", "..");
  const main = (service: string): string => path.join(ROOT, "services", service, "dist", "main.js");
  const run = (service: string, args: string[]): { status: number | null; stderr: string } => {
    const result = spawnSync(process.execPath, [main(service), ...args], { encoding: "utf8", timeout: 20_000 });
    return { status: result.status, stderr: result.stderr };
  };
  const SERVICE_ARGS: Record<string, string[]> = {
    logstore: ["--data-dir", path.join(tempDataDir("insecure-flags"), "logstore"), "--shard-count", "1", "--metrics-port", "-1"],
    shard: [
      "--shard-id",
      "0",
      "--shard-count",
      "1",
      "--cluster-id",
      "c",
      "--data-dir",
      tempDataDir("insecure-flags-shard"),
      "--metrics-port",
      "-1",
    ],
    logplayer: ["--logstore", "127.0.0.1:1", "--shards", "127.0.0.1:2", "--metrics-port", "-1"],
  };

  it.each(Object.keys(SERVICE_ARGS))(
    "%s: --insecure on 0.0.0.0 exits 1 naming --insecure-allow-remote; no certificate exits 1 saying where to get one",
    (service) => {
      const remote = run(service, [...SERVICE_ARGS[service]!, "--listen", "0.0.0.0:0", "--insecure"]);
      expect([remote.status, remote.stderr]).toEqual([1, expect.stringContaining("--insecure-allow-remote")]);
      const missing = run(service, [
        ...SERVICE_ARGS[service]!,
        "--listen",
        "127.0.0.1:0",
        "--tls-dir",
        path.join(tempDataDir("no-tls"), "tls"),
      ]);
      expect([missing.status, missing.stderr]).toEqual([
        1,
        expect.stringMatching(/TLS CA certificate .*ca\.crt not found: `pnpm start` makes/),
      ]);
    },
  );
});
