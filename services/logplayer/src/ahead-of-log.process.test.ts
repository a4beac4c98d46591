import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { credentials, Metadata } from "@grpc/grpc-js";
import { createShardMap, freePorts, shardForKey } from "@logplayer/common";
import { LogStoreClient, MutationKind, ShardClient, type AppendResponse, type ShardStatusResponse } from "@logplayer/proto";
import { waitFor } from "@logplayer/testing";

/**
 * Real processes: a shard whose applied LSN is beyond the log's commit LSN.
 * The LogPlayer must stop delivering to it and say so (error line, metric,
 * `lpctl status` exit 1) instead of taking newer entries for duplicates, and
 * keep delivering to the other shards. Two ways to get there: a WAL whose
 * last acknowledged record was damaged (the LogStore refuses to start; an
 * operator then cuts the record off), and a shard database kept from a
 * longer log than a fresh LogStore's.
 */

const ROOT = path.resolve(__dirname, "../../..");
const SHARDS = 2;
const shardMap = createShardMap(SHARDS);
const CLUSTER_ID = "ahead-of-log-test";
const READY_TIMEOUT_MS = 20_000;

interface Running {
  child: ChildProcess;
  grpcPort: number;
  /** -1 when metrics are off. */
  metricsPort: number;
  /** Every stdout line so far (JSON log records). */
  lines: string[];
}

// Plain text (LP_INSECURE=1 for every process): this file drives the delivery protocol with raw clients;
// mTLS and roles are tested in tests/e2e/security.process.test.ts.
const PLAIN_TEXT_ENV = { ...process.env, LP_INSECURE: "1" };
const children = new Set<ChildProcess>();
let tmp = "";

function serviceMain(service: string): string {
  return path.join(ROOT, "services", service, "dist", "main.js");
}

function start(service: string, args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [serviceMain(service), ...args], { stdio: ["ignore", "pipe", "pipe"], env: PLAIN_TEXT_ENV });
  children.add(child);
  child.on("exit", () => children.delete(child));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${service} not ready in time: ${stderr}`)), READY_TIMEOUT_MS);
    child.on("exit", (code) => reject(new Error(`${service} exited ${code} before ready: ${stderr}`)));
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line);
      try {
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number; metricsPort?: number };
        if (record.msg === "ready" && typeof record.grpcPort === "number") {
          clearTimeout(timer);
          resolve({ child, grpcPort: record.grpcPort, metricsPort: record.metricsPort ?? -1, lines });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

/** Runs a process to its end: exit code and everything it printed. */
function runToExit(file: string, args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "pipe"], env: PLAIN_TEXT_ENV });
  children.add(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), READY_TIMEOUT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, output });
    });
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

function logstoreArgs(dir: string, port: number): string[] {
  const cluster = ["--cluster-id", CLUSTER_ID, "--shard-count", String(SHARDS)];
  return ["--data-dir", path.join(tmp, dir), ...cluster, "--listen", `127.0.0.1:${port}`, "--metrics-port", "-1", "--log-level", "info"];
}

function startShard(id: number, dir: string, port: number): Promise<Running> {
  const identity = ["--cluster-id", CLUSTER_ID, "--shard-count", String(SHARDS)];
  const args = ["--shard-id", String(id), ...identity, "--data-dir", path.join(tmp, dir), "--listen", `127.0.0.1:${port}`];
  return start("shard", [...args, "--metrics-port", "-1", "--log-level", "info"]);
}

function startPlayer(logstorePort: number, shardPorts: readonly number[]): Promise<Running> {
  const addresses = shardPorts.map((p) => `127.0.0.1:${p}`).join(",");
  const timing = ["--ack-timeout-ms", "2000", "--backoff-max-ms", "300", "--start-wait-ms", "200"];
  const args = ["--logstore", `127.0.0.1:${logstorePort}`, "--shards", addresses, "--listen", "127.0.0.1:0", ...timing];
  return start("logplayer", [...args, "--metrics-port", "0", "--log-level", "info"]);
}

/** One PUT per transaction; `seq` numbers the client's appends. */
function put(client: LogStoreClient, key: string, value: string, seq: number): Promise<AppendResponse> {
  const mutations = [{ kind: MutationKind.MUTATION_KIND_PUT, key, value: Buffer.from(value), delta: 0n }];
  const request = { txn: { mutations }, commitTimeNs: 0n, clientId: `ahead-${process.pid}-${key}`, clientSeq: BigInt(seq), sessionLsn: 0n };
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 10_000);
    client.append(request, new Metadata({ waitForReady: true }), { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

function shardStatus(port: number): Promise<ShardStatusResponse> {
  const client = new ShardClient(`127.0.0.1:${port}`, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.status({}, new Metadata({ waitForReady: true }), { deadline: new Date(Date.now() + 5000) }, (err, response) => {
      client.close();
      if (err) reject(err);
      else resolve(response);
    });
  });
}

async function fetchMetrics(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  return response.text();
}

function lpctlStatus(logstorePort: number, shardPorts: readonly number[]): Promise<{ code: number | null; output: string }> {
  const addresses = ["--logstore", `127.0.0.1:${logstorePort}`, "--shards", shardPorts.map((p) => `127.0.0.1:${p}`).join(",")];
  return runToExit(path.join(ROOT, "packages", "client", "dist", "lpctl.js"), [...addresses, "--timeout-ms", "5000", "status"]);
}

/** The first key of the form <prefix><n> that routes to `shard`. */
function keyFor(shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (shardForKey(`${prefix}${i}`, shardMap) === shard) return `${prefix}${i}`;
}

/** The LogPlayer's error line for `shard`, once it has found it ahead of the log. */
function aheadLine(player: Running, shard: number): { appliedLsn?: string; commitLsn?: string; level?: string } | undefined {
  for (const line of player.lines) {
    if (!line.includes(`shard ${shard} is ahead of the log`)) continue;
    return JSON.parse(line) as { appliedLsn?: string; commitLsn?: string; level?: string };
  }
  return undefined;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ahead-of-log-"));
});

afterAll(async () => {
  await Promise.all([...children].map(stop));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("a shard kept from a longer log is stopped loudly while the other shard goes on", async () => {
  const [logstorePort, ...shardPorts] = await freePorts(1 + SHARDS);
  // A first log: five puts on shard 1's keys, applied there.
  let logstore = await start("logstore", logstoreArgs("long-log", logstorePort!));
  let shards = await Promise.all([0, 1].map((id) => startShard(id, `long-shard-${id}`, shardPorts[id]!)));
  let player = await startPlayer(logstorePort!, shardPorts);
  let client = new LogStoreClient(`127.0.0.1:${logstorePort}`, credentials.createInsecure());
  let last = 0n;
  for (let i = 1; i <= 5; i++) last = (await put(client, keyFor(1, "old"), `v${i}`, i)).lsn;
  await waitFor("shard 1 to apply the first log", async () => (await shardStatus(shardPorts[1]!)).appliedLsn >= last);
  const shard1Applied = (await shardStatus(shardPorts[1]!)).appliedLsn;
  client.close();
  await Promise.all([logstore.child, player.child, ...shards.map((s) => s.child)].map(stop));

  // A fresh, shorter log of the same cluster; shard 0 starts empty, shard 1 keeps its database.
  logstore = await start("logstore", logstoreArgs("short-log", logstorePort!));
  shards = await Promise.all([startShard(0, "fresh-shard-0", shardPorts[0]!), startShard(1, "long-shard-1", shardPorts[1]!)]);
  player = await startPlayer(logstorePort!, shardPorts);
  client = new LogStoreClient(`127.0.0.1:${logstorePort}`, credentials.createInsecure());
  const first = await put(client, keyFor(0, "new"), "a", 1);
  expect(first.lsn).toBeLessThan(shard1Applied); // the fresh log is shorter than what shard 1 applied
  await waitFor("the LogPlayer to stop shard 1 as ahead of the log", async () => aheadLine(player, 1) !== undefined);
  const line = aheadLine(player, 1)!;
  expect(line).toMatchObject({ level: "error", appliedLsn: shard1Applied.toString() });
  expect(BigInt(line.commitLsn!)).toBeLessThan(shard1Applied);
  const metrics = await fetchMetrics(player.metricsPort);
  expect(metrics).toMatch(/^lp_player_target_ahead_of_log\{target="1"[^}]*\} 1$/m);
  expect(metrics).toMatch(/^lp_player_target_ahead_of_log\{target="0"[^}]*\} 0$/m);
  // Shard 0 goes on: a later put is applied there.
  const second = await put(client, keyFor(0, "new"), "b", 2);
  await waitFor("shard 0 to apply the new log", async () => (await shardStatus(shardPorts[0]!)).appliedLsn >= second.lsn);
  expect((await shardStatus(shardPorts[1]!)).appliedLsn).toBe(shard1Applied);
  const status = await lpctlStatus(logstorePort!, shardPorts);
  expect(status.code).toBe(1);
  expect(status.output).toMatch(new RegExp(`unhealthy: shard 1 at \\S+ has applied LSN ${shard1Applied}, ahead of the log's commit LSN`));
  expect(status.output).not.toMatch(/unhealthy: shard 0/);
  client.close();
  await Promise.all([logstore.child, player.child, ...shards.map((s) => s.child)].map(stop));
});

test("a bit flipped in the last acknowledged WAL record: the LogStore refuses to start; on an older WAL, the shards are stopped", async () => {
  const [logstorePort, ...shardPorts] = await freePorts(1 + SHARDS);
  let logstore = await start("logstore", logstoreArgs("flipped-log", logstorePort!));
  let shards = await Promise.all([0, 1].map((id) => startShard(id, `flipped-shard-${id}`, shardPorts[id]!)));
  let player = await startPlayer(logstorePort!, shardPorts);
  let client = new LogStoreClient(`127.0.0.1:${logstorePort}`, credentials.createInsecure());
  const walDir = path.join(tmp, "flipped-log", "wal");
  const backupDir = path.join(tmp, "flipped-log-backup");
  await put(client, keyFor(0, "k"), "one", 1);
  // The operator's backup of the WAL, taken between two appends (every record in it is durable).
  fs.cpSync(walDir, backupDir, { recursive: true });
  await put(client, keyFor(1, "k"), "two", 1);
  const lastAcked = await put(client, keyFor(1, "k"), "three", 2);
  // Progress dummies bring both shards to the last LSN.
  for (const port of shardPorts) {
    await waitFor("every shard to apply the last put", async () => (await shardStatus(port)).appliedLsn >= lastAcked.lsn);
  }
  client.close();
  await Promise.all([logstore.child, player.child, ...shards.map((s) => s.child)].map(stop));

  // One bit of the last record's payload (the file's last byte) flips: the LogStore says where, and does not start.
  const segments = fs.readdirSync(walDir).filter((name) => name.endsWith(".seg"));
  const segment = path.join(walDir, segments.sort().at(-1)!);
  const bytes = fs.readFileSync(segment);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x10, bytes.length - 1);
  fs.writeFileSync(segment, bytes);
  const refused = await runToExit(serviceMain("logstore"), logstoreArgs("flipped-log", logstorePort!));
  expect(refused.code).toBe(1);
  const where = `WAL corrupt in ${path.basename(segment)} at offset \\d+: the last record is whole but .*LSN ${lastAcked.lsn}`;
  expect(refused.output).toMatch(new RegExp(where));
  expect(refused.output).toMatch(/refusing to start/);

  // The operator restores the older WAL from the backup and restarts the whole cluster.
  fs.rmSync(walDir, { recursive: true });
  fs.cpSync(backupDir, walDir, { recursive: true });
  logstore = await start("logstore", logstoreArgs("flipped-log", logstorePort!));
  shards = await Promise.all([0, 1].map((id) => startShard(id, `flipped-shard-${id}`, shardPorts[id]!)));
  player = await startPlayer(logstorePort!, shardPorts);
  for (const shard of [0, 1]) {
    await waitFor(`the LogPlayer to stop shard ${shard} as ahead of the log`, async () => aheadLine(player, shard) !== undefined);
    const line = aheadLine(player, shard)!;
    expect(line).toMatchObject({ level: "error", appliedLsn: lastAcked.lsn.toString() });
    expect(BigInt(line.commitLsn!)).toBeLessThan(lastAcked.lsn);
  }
  const metrics = await fetchMetrics(player.metricsPort);
  expect(metrics).toMatch(/^lp_player_target_ahead_of_log\{target="0"[^}]*\} 1$/m);
  expect(metrics).toMatch(/^lp_player_target_ahead_of_log\{target="1"[^}]*\} 1$/m);
  // While the log is behind them, lpctl status sees it too.
  const status = await lpctlStatus(logstorePort!, shardPorts);
  expect(status.code).toBe(1);
  for (const shard of [0, 1])
    expect(status.output).toMatch(new RegExp(`unhealthy: shard ${shard} at \\S+ has applied LSN ${lastAcked.lsn}`));
  // The log hands out an LSN the shards applied already, for another entry: they must not take it for a duplicate.
  client = new LogStoreClient(`127.0.0.1:${logstorePort}`, credentials.createInsecure());
  const reissued = await put(client, keyFor(1, "k4-"), "four", 1);
  expect(reissued.lsn).toBeLessThanOrEqual(lastAcked.lsn);
  // Every shard is stopped, so the main stream does not even start: nothing is sent.
  expect(/^lp_player_current_index(?:\{[^}]*\})? 0$/m.test(await fetchMetrics(player.metricsPort))).toBe(true);
  // Nothing was sent to either shard: their applied LSN and data are those of the old log.
  expect((await fetchMetrics(player.metricsPort)).match(/^lp_player_parts_sent_total\{target="[01]"[^}]*\} [1-9]/m)).toBeNull();
  for (const port of shardPorts) expect((await shardStatus(port)).appliedLsn).toBe(lastAcked.lsn);
  client.close();
});
