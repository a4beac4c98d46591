// Three LogStore replicas as real processes on 127.0.0.1 (build first). Every
// replica is reached by its peers through a small TCP proxy in front of it, so
// the test can cut a replica off from the others' messages. Appenders retry a
// failed append with the SAME (client id, seq) at the current leader, so the
// final check proves both "no acknowledged append lost" and "none written twice"
// (idempotent appends across leader changes) from the committed log itself.
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { freePorts } from "@logplayer/common";
import { waitFor } from "@logplayer/testing";
import {
  ReplicationClient,
  LogStoreClient,
  MutationKind,
  PROTOCOL_VERSION,
  type AppendRequest,
  type AppendResponse,
  LogEntry,
  type ReadResponse,
  type StatusResponse,
} from "@logplayer/proto";

import { parseSegmentFileName, RECORD_HEADER_BYTES, scanSegment } from "@logplayer/wal";
import { REPLICATED_CLUSTER_MODE } from "./replication/peers";
import { messageToWire } from "./replication/wire";

// Plain text: this file drives the service's own protocol with raw clients; mTLS and roles are tested in tests/e2e/security.process.test.ts.
const MAIN = path.join(__dirname, "..", "dist", "main.js");
const CLUSTER_ID = "repl-test";
const REPLICAS = [1, 2, 3];
/** Stated failover bound with the default timeouts (tick 100 ms, election 10..20 ticks). */
const FAILOVER_BOUND_MS = 5_000;

/** Forwards connections to `target`; cut() drops every connection and refuses new ones until heal(). */
class CutProxy {
  readonly #sockets = new Set<net.Socket>();
  readonly #server: net.Server;
  #cut = false;

  constructor(
    readonly port: number,
    target: number,
  ) {
    this.#server = net.createServer((inbound) => {
      if (this.#cut) return void inbound.destroy();
      const outbound = net.connect(target, "127.0.0.1");
      for (const socket of [inbound, outbound]) {
        this.#sockets.add(socket);
        socket.on("error", () => {});
        socket.on("close", () => {
          this.#sockets.delete(socket);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve) => this.#server.listen(this.port, "127.0.0.1", resolve));
  }

  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  heal(): void {
    this.#cut = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

interface Replica {
  id: number;
  port: number;
  proxyPort: number;
  dataDir: string;
  child: ChildProcess | undefined;
  client: LogStoreClient;
  output: string;
}

let root: string;
const replicas = new Map<number, Replica>();
const proxies = new Map<number, CutProxy>();
let peersFlag: string;

function spawnReplica(replica: Replica, extra: string[] = []): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      "--data-dir",
      replica.dataDir,
      "--listen",
      `127.0.0.1:${replica.port}`,
      "--metrics-port",
      "-1",
      "--replica-id",
      String(replica.id),
      "--peers",
      peersFlag,
      "--shard-count",
      "2",
      "--cluster-id",
      CLUSTER_ID,
      "--insecure",
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  replica.output = "";
  child.stdout!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  return child;
}

async function startReplica(id: number): Promise<void> {
  const replica = replicas.get(id)!;
  const child = spawnReplica(replica);
  replica.child = child;
  await waitFor(`replica ${id} ready`, () => {
    if (child.exitCode !== null) throw new Error(`replica ${id} exited: ${replica.output}`);
    return replica.output.includes('"msg":"ready"');
  });
}

/** The exit code of a replica that exits, or "ready" (after killing it) for one that starts instead. */
async function exitCodeUnlessReady(child: ChildProcess, replica: Replica): Promise<number | null | "ready"> {
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  await waitFor("the replica to exit or be ready", () => child.exitCode !== null || replica.output.includes('"msg":"ready"'), {
    timeoutMs: 20_000,
  });
  if (child.exitCode !== null) return exited;
  child.kill("SIGKILL");
  await exited;
  return "ready";
}

function kill9(id: number): Promise<void> {
  const child = replicas.get(id)!.child;
  replicas.get(id)!.child = undefined;
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  child.kill("SIGKILL");
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function status(id: number): Promise<StatusResponse | undefined> {
  const client = replicas.get(id)!.client;
  return new Promise((resolve) => {
    client.status({}, new Metadata(), { deadline: Date.now() + 2000 }, (err, response) => resolve(err === null ? response : undefined));
  });
}

/** The id of the replica that says it leads (among `among`), or undefined. */
async function leaderAmong(among: readonly number[]): Promise<number | undefined> {
  for (const id of among) {
    if (replicas.get(id)!.child === undefined) continue;
    const s = await status(id);
    if (s?.role === "leader") return id;
  }
  return undefined;
}

function append(id: number, request: AppendRequest): Promise<AppendResponse> {
  const client = replicas.get(id)!.client;
  return new Promise((resolve, reject) => {
    client.append(request, new Metadata(), { deadline: Date.now() + 3000 }, (err: ServiceError | null, response?: AppendResponse) => {
      if (err !== null) reject(err);
      else resolve(response!);
    });
  });
}

function request(clientId: string, seq: bigint): AppendRequest {
  return {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_APPEND, key: `${clientId}-k`, value: Buffer.from(`${seq};`), delta: 0n }] },
    commitTimeNs: 0n,
    clientId,
    clientSeq: seq,
    sessionLsn: 0n,
  };
}

/** Appenders, each with its own client id, retrying a failed append with the same seq at the leader. */
class Load {
  readonly acked = new Map<string, bigint>();
  #stopping = false;
  readonly #workers: Promise<void>[];

  constructor(
    appenders: number,
    readonly prefix: string,
  ) {
    this.#workers = Array.from({ length: appenders }, (_, i) => this.#run(`${prefix}${i}`));
  }

  get ackedCount(): number {
    return this.acked.size;
  }

  async #run(clientId: string): Promise<void> {
    let seq = 1n;
    let leader: number | undefined;
    while (!this.#stopping) {
      leader ??= await leaderAmong(REPLICAS);
      if (leader === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      try {
        const response = await append(leader, request(clientId, seq));
        this.acked.set(`${clientId}/${seq}`, response.lsn);
        seq++;
      } catch {
        leader = undefined;
      }
    }
    // The last append may have failed with an unknown outcome: finish it, so every seq is settled.
    for (let attempt = 0; attempt < 200; attempt++) {
      const at = await leaderAmong(REPLICAS);
      if (at === undefined) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      try {
        const response = await append(at, request(clientId, seq));
        this.acked.set(`${clientId}/${seq}`, response.lsn);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#workers);
  }
}

function readAll(id: number, toLsn: bigint): Promise<LogEntry[]> {
  const client = replicas.get(id)!.client;
  return new Promise((resolve, reject) => {
    const entries: LogEntry[] = [];
    const call = client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn: 1n, toLsn, readerId: "test" });
    call.on("data", (response: ReadResponse) => entries.push(...response.entries));
    call.on("error", reject);
    call.on("end", () => resolve(entries));
  });
}

/** Every acknowledged append exactly once at its LSN, no (client, seq) twice, and every replica's log the same. */
async function checkLog(acked: Map<string, bigint>): Promise<void> {
  let commitLsn = 0n;
  await waitFor("a leader's commit LSN", async () => {
    const leader = await leaderAmong(REPLICAS);
    commitLsn = leader === undefined ? 0n : ((await status(leader))?.commitLsn ?? 0n);
    return commitLsn > 0n;
  });
  await waitFor("every replica caught up", async () => {
    const all = await Promise.all(REPLICAS.map(async (id) => (await status(id))?.commitLsn ?? 0n));
    return all.every((c) => c >= commitLsn);
  });
  const logs = await Promise.all(REPLICAS.map((id) => readAll(id, commitLsn)));
  for (const log of logs) {
    expect(log.map((e) => e.lsn)).toEqual(logs[0]!.map((e) => e.lsn));
    expect(log.map((e) => `${e.term}/${e.clientId}/${e.clientSeq}`)).toEqual(logs[0]!.map((e) => `${e.term}/${e.clientId}/${e.clientSeq}`));
  }
  const seen = new Map<string, bigint>();
  const twice: string[] = [];
  for (const entry of logs[0]!) {
    if (entry.txn === undefined) continue;
    const key = `${entry.clientId}/${entry.clientSeq}`;
    if (seen.has(key)) twice.push(key);
    seen.set(key, entry.lsn);
  }
  expect(twice).toEqual([]);
  const lost = [...acked].filter(([key, lsn]) => seen.get(key) !== lsn);
  expect(lost).toEqual([]);
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-repl-"));
  const ports = await freePorts(REPLICAS.length * 2);
  peersFlag = REPLICAS.map((id, i) => `${id}=127.0.0.1:${ports[REPLICAS.length + i]}`).join(",");
  for (const [i, id] of REPLICAS.entries()) {
    const replica: Replica = {
      id,
      port: ports[i]!,
      proxyPort: ports[REPLICAS.length + i]!,
      dataDir: path.join(root, `r${id}`),
      child: undefined,
      client: new LogStoreClient(`127.0.0.1:${ports[i]}`, credentials.createInsecure()),
      output: "",
    };
    replicas.set(id, replica);
    const proxy = new CutProxy(replica.proxyPort, replica.port);
    await proxy.listen();
    proxies.set(id, proxy);
  }
  await Promise.all(REPLICAS.map((id) => startReplica(id)));
});

afterAll(async () => {
  await Promise.all(REPLICAS.map((id) => kill9(id)));
  for (const replica of replicas.values()) replica.client.close();
  await Promise.all([...proxies.values()].map((p) => p.close()));
  await fs.rm(root, { recursive: true, force: true });
});

describe("LogStore replication (3 replicas)", () => {
  it("elects one leader and lists every replica in Status", async () => {
    await waitFor("a leader", async () => (await leaderAmong(REPLICAS)) !== undefined);
    const leader = (await leaderAmong(REPLICAS))!;
    const s = (await status(leader))!;
    expect(s.replicas.map((r) => r.replicaId)).toEqual(["1", "2", "3"]);
    expect(s.replicas.filter((r) => r.role === "leader").map((r) => r.replicaId)).toEqual([String(leader)]);
    const follower = REPLICAS.find((id) => id !== leader)!;
    const leaderAddress = `127.0.0.1:${replicas.get(leader)!.proxyPort}`;
    // A follower names the leader once it has heard from it (its first AppendEntries), not at the election.
    await waitFor("the follower to know the leader", async () => (await status(follower))?.leaderAddress === leaderAddress);
    const err = await append(follower, request("probe", 1n)).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(err?.code).toBe(14); // UNAVAILABLE
    expect(err?.details).toBe(`not the leader; the leader is ${leaderAddress}`);
    expect(err?.metadata.get("lp-leader")).toEqual([leaderAddress]);
  });

  it("the same (client id, seq) twice gives one entry and the same LSN", async () => {
    const leader = (await leaderAmong(REPLICAS))!;
    const first = await append(leader, request("idem", 1n));
    const second = await append(leader, request("idem", 1n));
    expect(first.duplicate).toBe(false);
    expect(second).toEqual({ lsn: first.lsn, duplicate: true });
  });

  it("400 concurrent 250 KB appends (past the WAL queue's 64 MB): refusals are RESOURCE_EXHAUSTED, every replica keeps running", async () => {
    const value = Buffer.alloc(250 * 1024, 0x61);
    // On a loaded machine the burst itself can starve the leader's heartbeats and a new leader is elected midway:
    // those appends are refused UNAVAILABLE (retryable, nothing appended). A burst that loses its leader before the
    // queue fills proves nothing, so up to three bursts run, each at the then leader, until one shows both outcomes.
    let shown: { leader: number; acknowledged: bigint[] } | undefined;
    for (let burst = 1; burst <= 3 && shown === undefined; burst++) {
      await waitFor("a leader", async () => (await leaderAmong(REPLICAS)) !== undefined);
      const leader = (await leaderAmong(REPLICAS))!;
      const client = replicas.get(leader)!.client;
      const clientId = `burst-${burst}`;
      // Concurrent appends of one client may arrive in any order: only a registered session accepts them so.
      const sessionLsn = await new Promise<bigint>((resolve, reject) =>
        client.registerClient({ clientId }, new Metadata(), { deadline: Date.now() + 10_000 }, (err, response) =>
          err ? reject(err) : resolve(response!.sessionLsn),
        ),
      );
      const outcomes = await Promise.all(
        Array.from({ length: 400 }, (_, i) => {
          const big: AppendRequest = {
            txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `${clientId}-${i}`, value, delta: 0n }] },
            commitTimeNs: 0n,
            clientId,
            clientSeq: BigInt(i + 1),
            sessionLsn,
          };
          return new Promise<{ lsn: bigint } | { error: ServiceError }>((resolve) =>
            client.append(big, new Metadata(), { deadline: Date.now() + 60_000 }, (err, response) =>
              resolve(err ? { error: err } : { lsn: response!.lsn }),
            ),
          );
        }),
      );
      const refused = outcomes.flatMap((o) => ("error" in o ? [o.error] : []));
      const acknowledged = outcomes.flatMap((o) => ("lsn" in o ? [o.lsn] : []));
      for (const error of refused) {
        if (error.code === 14) continue; // UNAVAILABLE: the leader changed during the burst
        expect([error.code, error.details]).toEqual([8, expect.stringMatching(/append queue is full by bytes/)]);
      }
      for (const id of REPLICAS) expect(replicas.get(id)!.child?.exitCode).toBeNull();
      if (acknowledged.length > 0 && refused.some((error) => error.code === 8)) shown = { leader, acknowledged };
    }
    expect(shown).toBeDefined();
    const { acknowledged } = shown!;
    await waitFor("a leader", async () => (await leaderAmong(REPLICAS)) !== undefined);
    const leader = (await leaderAmong(REPLICAS))!;
    const entries = await readAll(
      leader,
      acknowledged.reduce((a, b) => (a > b ? a : b)),
    );
    const byLsn = new Map(entries.map((e) => [e.lsn, e]));
    for (const lsn of acknowledged) expect(byLsn.get(lsn)?.clientId).toMatch(/^burst-\d$/);
    expect((await append(leader, request("after-burst", 1n))).duplicate).toBe(false);
  });

  it("forged Steps (a heartbeat committing past a follower's log, an ack past the leader's log) are dropped: every replica keeps running", async () => {
    await waitFor("a leader", async () => (await leaderAmong(REPLICAS)) !== undefined);
    const leader = (await leaderAmong(REPLICAS))!;
    const follower = REPLICAS.find((id) => id !== leader)!;
    const { term } = (await status(leader))!;
    // Everything an attacker needs is public: the cluster id (from Status) and the cluster's mode.
    const hash = REPLICATED_CLUSTER_MODE;
    const forge = (to: number, message: Parameters<typeof messageToWire>[0]): Promise<ServiceError | null> => {
      const client = new ReplicationClient(`127.0.0.1:${replicas.get(to)!.port}`, credentials.createInsecure());
      return new Promise((resolve) =>
        client.step({ clusterId: CLUSTER_ID, peersHash: hash, messages: [messageToWire(message)], clusterLimits: "" }, (err) => {
          client.close();
          resolve(err);
        }),
      );
    };
    await forge(follower, { type: "heartbeat", from: leader, to: follower, term, commit: 2n ** 62n });
    await forge(leader, {
      type: "append-response",
      from: follower,
      to: leader,
      term,
      reject: true,
      index: 2n ** 62n,
      hintIndex: 2n ** 62n,
      hintTerm: 0n,
    });
    await waitFor(
      "both refusals logged",
      () =>
        replicas.get(follower)!.output.includes("refused a Raft heartbeat") &&
        replicas.get(leader)!.output.includes("refused a Raft append-response"),
    );
    for (const id of REPLICAS) expect(replicas.get(id)!.child?.exitCode).toBeNull();
    expect((await append(leader, request("after-forgery", 1n))).duplicate).toBe(false);
    expect((await status(leader))?.role).toBe("leader");
  });

  it("kill -9 of the leader under load: a new leader within the bound, nothing lost or doubled", async () => {
    const load = new Load(6, "kill-");
    await waitFor("acks before the kill", () => load.ackedCount >= 100);
    const oldLeader = (await leaderAmong(REPLICAS))!;
    const killedAt = Date.now();
    await kill9(oldLeader);
    const survivors = REPLICAS.filter((id) => id !== oldLeader);
    await waitFor("a new leader", async () => (await leaderAmong(survivors)) !== undefined, { timeoutMs: FAILOVER_BOUND_MS });
    const failoverMs = Date.now() - killedAt;
    const ackedAtElection = load.ackedCount;
    await waitFor("acks after the failover", () => load.ackedCount >= ackedAtElection + 100);
    // Idempotency across the leader change: an append acknowledged by the old leader is answered from the log.
    const newLeader = (await leaderAmong(survivors))!;
    const again = await append(newLeader, request("idem", 1n));
    expect(again.duplicate).toBe(true);
    await startReplica(oldLeader);
    await waitFor("acks after the restart", () => load.ackedCount >= ackedAtElection + 200);
    await load.stop();
    process.stdout.write(`failover: new leader ${failoverMs} ms after kill -9 (bound ${FAILOVER_BOUND_MS} ms)\n`);
    await checkLog(load.acked);
  });

  it("a leader cut off from its followers steps down; after healing nothing is lost or doubled", async () => {
    const load = new Load(4, "cut-");
    await waitFor("acks before the cut", () => load.ackedCount >= 50);
    const oldLeader = (await leaderAmong(REPLICAS))!;
    // A tailing reader of the replica being cut off must be told to go elsewhere.
    let tailError: ServiceError | undefined;
    const tail = replicas.get(oldLeader)!.client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn: 1n, toLsn: 0n, readerId: "tail" });
    tail.on("data", () => {});
    tail.on("error", (err: ServiceError) => (tailError = err));
    proxies.get(oldLeader)!.cut();
    const others = REPLICAS.filter((id) => id !== oldLeader);
    await waitFor("a leader among the others", async () => (await leaderAmong(others)) !== undefined, { timeoutMs: FAILOVER_BOUND_MS * 2 });
    await waitFor("the old leader to step down", async () => (await status(oldLeader))?.role !== "leader", {
      timeoutMs: FAILOVER_BOUND_MS * 2,
    });
    await waitFor("the cut-off replica to end its tailing read", () => tailError !== undefined);
    expect(tailError!.code).toBe(14); // UNAVAILABLE: read from another replica
    const acked = load.ackedCount;
    await waitFor("acks during the partition", () => load.ackedCount >= acked + 50);
    proxies.get(oldLeader)!.heal();
    await waitFor("the old leader to catch up", async () => {
      const leader = await leaderAmong(REPLICAS);
      if (leader === undefined) return false;
      const [a, b] = await Promise.all([status(leader), status(oldLeader)]);
      return a !== undefined && b !== undefined && b.commitLsn >= a.commitLsn - 5n;
    });
    await load.stop();
    await checkLog(load.acked);
  });

  it("all replicas killed at once and restarted: the log and its acks survive", async () => {
    const load = new Load(4, "all-");
    await waitFor("acks before the crash", () => load.ackedCount >= 50);
    await Promise.all(REPLICAS.map((id) => kill9(id)));
    await Promise.all(REPLICAS.map((id) => startReplica(id)));
    await waitFor("a leader after the restart", async () => (await leaderAmong(REPLICAS)) !== undefined);
    const acked = load.ackedCount;
    await waitFor("acks after the restart", () => load.ackedCount >= acked + 50);
    await load.stop();
    await checkLog(load.acked);
  });

  // Another --peers list is no longer refused: membership lives in the log (config entries), --peers only bootstraps it.
  it("refuses to run with another cluster id", async () => {
    const replica = replicas.get(3)!;
    await kill9(3);
    const wrongCluster = spawnReplica(replica, ["--cluster-id", "another-cluster"]);
    const code2 = await new Promise<number | null>((resolve) => wrongCluster.once("exit", resolve));
    expect(code2).toBe(1);
    expect(replica.output).toMatch(/cluster id/);
    await startReplica(3);
  });

  it("refuses to start a replica whose cluster limits differ from its peers', naming both values", async () => {
    // Replica 3 as if created with --value-bytes-max 400000 while (1) and (2) were created with the default.
    const replica = replicas.get(3)!;
    await kill9(3);
    const metaFile = path.join(replica.dataDir, "cluster.json");
    const original = await fs.readFile(metaFile, "utf8");
    const meta = JSON.parse(original) as { limits: { valueBytesMax: number } };
    const ours = meta.limits.valueBytesMax;
    await fs.writeFile(metaFile, JSON.stringify({ ...meta, limits: { ...meta.limits, valueBytesMax: 400_000 } }));
    const other = spawnReplica(replica);
    expect(await exitCodeUnlessReady(other, replica)).toBe(1);
    expect(replica.output).toMatch(
      new RegExp(`cluster limits mismatch: the sender has [^"]*value-bytes-max 400000, replica [12] has [^"]*value-bytes-max ${ours}`),
    );
    // A blank replica with other limits is refused the same way (it asks its peers before anything else).
    await fs.writeFile(metaFile, original);
    const blankReplica: Replica = { ...replica, dataDir: path.join(root, "r3-blank") };
    const blank = spawnReplica(blankReplica, ["--join", "--value-bytes-max", "400000"]);
    expect(await exitCodeUnlessReady(blank, blankReplica)).toBe(1);
    expect(blankReplica.output).toMatch(/cluster limits mismatch: the sender has [^"]*value-bytes-max 400000/);
    await startReplica(3);
  });

  it("a follower whose WAL has a damaged acknowledged record in the middle drops it, is refilled by the leader, and nothing is lost", async () => {
    // Issue #12: a replicated LogStore repairs a damaged local record from its peers (a single replica refuses to start).
    const acked = new Map<string, bigint>();
    for (let seq = 1n; seq <= 30n; seq++) {
      await waitFor("an append acknowledged", async () => {
        const leader = await leaderAmong(REPLICAS);
        if (leader === undefined) return false;
        acked.set(`damaged/${seq}`, (await append(leader, request("damaged", seq)).catch(() => ({ lsn: 0n }))).lsn);
        return acked.get(`damaged/${seq}`)! > 0n;
      });
    }
    const lsns = [...acked.values()];
    const lastAcked = lsns[lsns.length - 1]!;
    const leader = (await leaderAmong(REPLICAS))!;
    const followerId = REPLICAS.find((id) => id !== leader)!;
    await waitFor("the follower to hold every acknowledged entry", async () => ((await status(followerId))?.commitLsn ?? 0n) >= lastAcked);
    await kill9(followerId);
    // One bit of an acknowledged record in the middle of the follower's WAL segment that holds it.
    const damagedLsn = lsns[Math.floor(lsns.length / 2)]!;
    const walDir = path.join(replicas.get(followerId)!.dataDir, "wal");
    const names = (await fs.readdir(walDir)).filter((name) => parseSegmentFileName(name) !== null).sort();
    const fileName = names.filter((name) => parseSegmentFileName(name)! <= damagedLsn).pop()!;
    const segment = path.join(walDir, fileName);
    const bytes = await fs.readFile(segment);
    const scan = scanSegment({ fileName, bytes }, null, fileName === names[names.length - 1]);
    expect(scan.index.lastLsn).toBeGreaterThan(damagedLsn);
    bytes[scan.index.offsetOf(damagedLsn) + RECORD_HEADER_BYTES + 5]! ^= 0x04;
    await fs.writeFile(segment, bytes);
    await startReplica(followerId);
    const output = replicas.get(followerId)!.output;
    expect(output).toMatch(new RegExp(`"keptLastLsn":"${damagedLsn - 1n}"[^\\n]*WAL DAMAGED: dropped the damaged record`));
    await waitFor(
      "the follower rejoined",
      () => replicas.get(followerId)!.output.includes("rejoined: this replica holds every committed entry"),
      {
        timeoutMs: 15_000,
      },
    );
    // The cluster goes on acknowledging, and every replica holds every entry byte for byte.
    for (let seq = 31n; seq <= 35n; seq++) {
      await waitFor("an append acknowledged after the repair", async () => {
        const at = await leaderAmong(REPLICAS);
        if (at === undefined) return false;
        acked.set(`damaged/${seq}`, (await append(at, request("damaged", seq)).catch(() => ({ lsn: 0n }))).lsn);
        return acked.get(`damaged/${seq}`)! > 0n;
      });
    }
    await checkLog(acked);
    const upTo = acked.get("damaged/35")!;
    await waitFor("every replica committed the last append", async () =>
      (await Promise.all(REPLICAS.map(async (id) => (await status(id))?.commitLsn ?? 0n))).every((c) => c >= upTo),
    );
    const logs = await Promise.all(REPLICAS.map((id) => readAll(id, upTo)));
    const encoded = logs.map((log) => log.map((entry) => Buffer.from(LogEntry.encode(entry).finish()).toString("hex")));
    expect(encoded[0]!.length).toBe(Number(upTo));
    for (const log of encoded) expect(log).toEqual(encoded[0]);
  });

  it("a replica that lost its disk refuses to start as a voter, rejoins with --join, and no acknowledged append is lost", async () => {
    // Issue #12, scenario 1. (3) has taken part (it holds the first leader's no-op); then it is cut off, so what
    // (1) and (2) acknowledge is durable on them alone.
    await waitFor("(3) to hold a committed entry", async () => ((await status(3))?.commitLsn ?? 0n) > 0n);
    proxies.get(3)!.cut();
    const pair = [1, 2];
    await waitFor("a leader among (1) and (2)", async () => (await leaderAmong(pair)) !== undefined, { timeoutMs: FAILOVER_BOUND_MS * 2 });
    const acked = new Map<string, bigint>();
    for (let seq = 1n; seq <= 5n; seq++) {
      const leader = (await leaderAmong(pair))!;
      acked.set(`wiped/${seq}`, (await append(leader, request("wiped", seq))).lsn);
    }
    // (1) and (2) go down, (1)'s data directory is lost, (3) — stale — is back.
    await Promise.all(pair.map((id) => kill9(id)));
    await fs.rm(replicas.get(1)!.dataDir, { recursive: true, force: true });
    proxies.get(3)!.heal();
    const replica = replicas.get(1)!;
    const sameFlags = spawnReplica(replica);
    const code = await new Promise<number | null>((resolve) => sameFlags.once("exit", resolve));
    expect(code).toBe(1);
    expect(replica.output).toMatch(/data directory is empty, but replica 3 of this cluster is in term \d+.*--join/);
    // With --join it waits for (2): without every peer's term it cannot know which terms it may already have voted in.
    replica.child = spawnReplica(replica, ["--join"]);
    await waitFor("(1) to wait for (2)", () => /"missing":\[2\].*waiting for these replicas/.test(replica.output), { timeoutMs: 15_000 });
    expect(await leaderAmong([3])).toBeUndefined();
    await startReplica(2);
    await waitFor("(1) ready", () => replica.output.includes('"msg":"ready"'), { timeoutMs: 15_000 });
    await waitFor("(1) rejoined", () => replica.output.includes("rejoined: this replica holds every committed entry"), {
      timeoutMs: 15_000,
    });
    await checkLog(acked);
  });
});
