import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { credentials, Metadata } from "@grpc/grpc-js";
import { createShardMap, freePorts, shardForKey } from "@logplayer/common";
import { LogStoreClient, MutationKind, ShardClient, type AppendResponse, type GetResponse, type Mutation } from "@logplayer/proto";
import { waitFor } from "@logplayer/testing";

/**
 * Real processes: one LogStore, three shards, one LogPlayer. Transactions
 * use APPEND (not idempotent) so a double or out-of-order delivery shows in
 * the data. The LogPlayer is killed with SIGKILL mid-stream and restarted,
 * a shard is killed and restarted, and the LogStore is killed and restarted
 * (the main stream must resume); every shard must end with exactly the
 * expected values.
 */

// Plain text: this file drives the services with raw clients; mTLS and roles are tested in tests/e2e/security.process.test.ts.
const ROOT = path.resolve(__dirname, "../../..");
const SHARDS = 3;
const shardMap = createShardMap(SHARDS);
const READY_TIMEOUT_MS = 20_000;

interface Running {
  child: ChildProcess;
  grpcPort: number;
  /** -1 when metrics are off. */
  metricsPort: number;
}

const children = new Set<ChildProcess>();
let tmp = "";

function start(service: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [path.join(ROOT, "services", service, "dist", "main.js"), "--insecure", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} not ready in time: ${stderr}`)), READY_TIMEOUT_MS);
    child.on("exit", (code) => reject(new Error(`${service} exited ${code} before ready: ${stderr}`)));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number; metricsPort?: number };
        if (record.msg === "ready" && typeof record.grpcPort === "number") {
          clearTimeout(timer);
          resolve({ child, grpcPort: record.grpcPort, metricsPort: record.metricsPort ?? -1 });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

function killHard(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

/** Shards restart on their port too. */
async function startShard(id: number, port?: number, dir = "shard"): Promise<Running> {
  port ??= (await freePorts(1))[0]!;
  const identity = ["--cluster-id", CLUSTER_ID, "--shard-count", String(SHARDS)];
  const args = ["--shard-id", String(id), ...identity, "--data-dir", path.join(tmp, `${dir}-${id}`)];
  return start("shard", [...args, "--listen", `127.0.0.1:${port}`, "--metrics-port", "-1", "--log-level", "info"]);
}

function startPlayer(logstorePort: number, shardPorts: number[], metricsPort = -1): Promise<Running> {
  return start("logplayer", [
    "--logstore",
    `127.0.0.1:${logstorePort}`,
    "--shards",
    shardPorts.map((p) => `127.0.0.1:${p}`).join(","),
    "--listen",
    "127.0.0.1:0",
    "--metrics-port",
    String(metricsPort),
    "--ack-timeout-ms",
    "2000",
    "--backoff-max-ms",
    "300",
    "--start-wait-ms",
    "200",
    "--log-level",
    "info",
  ]);
}

/**
 * Appends transactions `batch` concurrently, as seqs n + 1. Seq 1 goes alone first: without registration it opens
 * the client's session, and a later seq arriving before it would be refused (SESSION_EXPIRED).
 */
async function appendBatch(client: LogStoreClient, batch: number[]): Promise<AppendResponse[]> {
  const opening = batch[0] === 0 ? [await append(client, transaction(0), 1)] : [];
  const rest = await Promise.all(batch.slice(opening.length).map((n) => append(client, transaction(n), n + 1)));
  return [...opening, ...rest];
}

function append(client: LogStoreClient, mutations: Mutation[], seq: number): Promise<AppendResponse> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10_000);
    const request = { txn: { mutations }, commitTimeNs: 0n, clientId: "process-test", clientSeq: BigInt(seq), sessionLsn: 0n };
    // waitForReady: appends right after the LogStore restarts wait for the channel instead of failing fast.
    client.append(request, new Metadata({ waitForReady: true }), { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function get(client: ShardClient, key: string, minLsn: bigint): Promise<GetResponse> {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 20_000);
    client.get({ key, minLsn }, new Metadata(), { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

/** Transaction i appends "i," to two of 12 list keys (spread over the shards). */
function transaction(i: number): Mutation[] {
  const keys = [`list-${i % 12}`, `list-${(i * 5 + 3) % 12}`];
  if (keys[0] === keys[1]) keys.pop();
  return keys.map((key) => ({ kind: MutationKind.MUTATION_KIND_APPEND, key, value: Buffer.from(`${i},`), delta: 0n }));
}

let logstore: Running;
/** Every LogStore and shard of these tests is one cluster: shards are configured with it, never told by a hello. */
const CLUSTER_ID = "logplayer-process-test";

/** The LogStore restarts on its port: pick it below the ephemeral range, where nothing else can take it meanwhile. */
async function startLogStore(port?: number, dir = "logstore"): Promise<Running> {
  port ??= (await freePorts(1))[0]!;
  return start("logstore", [
    "--data-dir",
    path.join(tmp, dir),
    "--shard-count",
    String(SHARDS),
    "--cluster-id",
    CLUSTER_ID,
    "--listen",
    `127.0.0.1:${port}`,
    "--metrics-port",
    "-1",
    "--log-level",
    "info",
  ]);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "logplayer-process-"));
  logstore = await startLogStore();
});

afterAll(async () => {
  await Promise.all([...children].map(killHard));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("delivers every transaction exactly once, in order, across SIGKILLs of the LogPlayer, a shard and the LogStore", async () => {
  const shards = await Promise.all([0, 1, 2].map((id) => startShard(id)));
  const shardPorts = shards.map((s) => s.grpcPort);
  let player = await startPlayer(logstore.grpcPort, shardPorts);
  const logstoreClient = new LogStoreClient(`127.0.0.1:${logstore.grpcPort}`, credentials.createInsecure());

  const total = 600;
  const expected = new Map<string, string>();
  const lastLsnByShard = new Map<number, bigint>();
  const appendRange = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 10) {
      const batch = Array.from({ length: Math.min(10, to - i) }, (_, k) => i + k);
      const responses = await appendBatch(logstoreClient, batch);
      responses.forEach((response, k) => {
        for (const m of transaction(batch[k]!)) {
          const shard = shardForKey(m.key, shardMap);
          const last = lastLsnByShard.get(shard) ?? 0n;
          if (response.lsn > last) lastLsnByShard.set(shard, response.lsn);
        }
      });
    }
  };

  await appendRange(0, 200);
  // SIGKILL the LogPlayer while appends keep coming, then start a new one: it has no state of its own.
  const appending = appendRange(200, 350);
  await killHard(player.child);
  await appending;
  player = await startPlayer(logstore.grpcPort, shardPorts);
  // SIGKILL shard 1 mid-stream and bring it back on the same port and data directory.
  const more = appendRange(350, 450);
  await killHard(shards[1]!.child);
  await more;
  shards[1] = await startShard(1, shardPorts[1]);
  await appendRange(450, 500);
  // SIGKILL the LogStore: the LogPlayer's main stream breaks and must resume at currentIndex + 1.
  await killHard(logstore.child);
  logstore = await startLogStore(logstore.grpcPort);
  await appendRange(500, total);

  // Appends land in LSN order per list, since each batch of ten is awaited before the next.
  for (let i = 0; i < total; i++) {
    for (const m of transaction(i)) expected.set(m.key, `${expected.get(m.key) ?? ""}${i},`);
  }
  const decoder = new TextDecoder();
  for (const [key, value] of expected) {
    const shard = shardForKey(key, shardMap);
    const client = new ShardClient(`127.0.0.1:${shardPorts[shard]}`, credentials.createInsecure());
    const response = await get(client, key, lastLsnByShard.get(shard)!);
    client.close();
    expect([key, decoder.decode(response.value)]).toEqual([key, value]);
  }
  logstoreClient.close();
  await killHard(player.child);
}, 90_000);

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
  });
}

test("refuses to start when --shards does not match the LogStore's shard map (exit 1, names both counts)", async () => {
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, "services", "logplayer", "dist", "main.js"),
      "--logstore",
      `127.0.0.1:${logstore.grpcPort}`,
      "--shards",
      "127.0.0.1:1,127.0.0.1:2",
      "--listen",
      "127.0.0.1:0",
      "--metrics-port",
      "-1",
      "--insecure",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  expect(await exitOf(child)).toBe(1);
  expect(stderr).toMatch(/--shards lists 2 shard\(s\) but the LogStore's shard map fnv1a32\/3 has 3/);
});

test("/healthz answers at once; /readyz is 503 until the main stream can start, 200 after", async () => {
  const unreachable = await startPlayer(logstore.grpcPort, [1, 2, 3], 0);
  const base = `http://127.0.0.1:${unreachable.metricsPort}`;
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  const waiting = await fetch(`${base}/readyz`);
  expect([waiting.status, await waiting.text()]).toEqual([503, "not ready: waiting for the shards before starting the main stream\n"]);
  unreachable.child.kill("SIGTERM");
  expect(await exitOf(unreachable.child)).toBe(0);

  const shards = await Promise.all([0, 1, 2].map((id) => startShard(id, undefined, "ready-shard")));
  const player = await startPlayer(
    logstore.grpcPort,
    shards.map((s) => s.grpcPort),
    0,
  );
  await waitFor("the LogPlayer reports ready", async () => (await fetch(`http://127.0.0.1:${player.metricsPort}/readyz`)).status === 200, {
    timeoutMs: 20_000,
  });
});

test("SIGTERM shuts down cleanly with exit 0, also with shards unreachable", async () => {
  const player = await startPlayer(logstore.grpcPort, [1, 2, 3]);
  player.child.kill("SIGTERM");
  expect(await exitOf(player.child)).toBe(0);
});

test("two LogPlayers at once, one paused mid-stream (a zombie) and resumed: still exactly once, in order", async () => {
  const store = await startLogStore(undefined, "logstore-twins");
  const shards = await Promise.all([0, 1, 2].map((id) => startShard(id, undefined, "twin-shard")));
  const shardPorts = shards.map((s) => s.grpcPort);
  const players = [await startPlayer(store.grpcPort, shardPorts), await startPlayer(store.grpcPort, shardPorts)];
  const client = new LogStoreClient(`127.0.0.1:${store.grpcPort}`, credentials.createInsecure());
  const lastLsnByShard = new Map<number, bigint>();
  const appendRange = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 10) {
      const batch = Array.from({ length: Math.min(10, to - i) }, (_, k) => i + k);
      const responses = await appendBatch(client, batch);
      responses.forEach((response, k) => {
        for (const m of transaction(batch[k]!)) {
          const shard = shardForKey(m.key, shardMap);
          if (response.lsn > (lastLsnByShard.get(shard) ?? 0n)) lastLsnByShard.set(shard, response.lsn);
        }
      });
    }
  };
  await appendRange(0, 100);
  // Freeze one LogPlayer with whatever it had queued and in flight; the other carries on.
  players[0]!.child.kill("SIGSTOP");
  await appendRange(100, 250);
  players[0]!.child.kill("SIGCONT"); // the zombie wakes up and sends its stale batches
  await appendRange(250, 400);

  const expected = new Map<string, string>();
  for (let i = 0; i < 400; i++) for (const m of transaction(i)) expected.set(m.key, `${expected.get(m.key) ?? ""}${i},`);
  const decoder = new TextDecoder();
  for (const [key, value] of expected) {
    const shard = shardForKey(key, shardMap);
    const reader = new ShardClient(`127.0.0.1:${shardPorts[shard]}`, credentials.createInsecure());
    const response = await get(reader, key, lastLsnByShard.get(shard)!);
    reader.close();
    expect([key, decoder.decode(response.value)]).toEqual([key, value]);
  }
  client.close();
}, 90_000);
