import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { credentials, Metadata } from "@grpc/grpc-js";
import { createShardMap, freePorts, shardForKey, Status } from "@logplayer/common";
import {
  LogStoreClient,
  MutationKind,
  PROTOCOL_VERSION,
  ShardClient,
  type Mutation,
  type ShardStatusResponse,
  type StatusResponse,
} from "@logplayer/proto";
import { parseSegmentFileName } from "@logplayer/wal";
import { waitFor } from "@logplayer/testing";

/**
 * Real processes, small WAL segments: one LogStore, two shards, one
 * LogPlayer reporting the trim point often. Segments go once both shards
 * have made their entries durable; while a shard is stopped, nothing at or
 * above the LSN it can be restored to goes, however much is written; once it
 * is back and caught up, the segments below the new trim point go. The trim
 * point survives a LogStore restart, and a Read below the first LSN is
 * refused with OUT_OF_RANGE naming it. Every APPEND token lands exactly once.
 */

// Plain text: this file drives the services with raw clients; mTLS and roles are tested in tests/e2e/security.process.test.ts.
const ROOT = path.resolve(__dirname, "../../..");
const SHARDS = 2;
const CLUSTER_ID = "trim-process-test";
const READY_TIMEOUT_MS = 20_000;
const WAIT_MS = 60_000;
/** The smallest segment the WAL allows: a 1 KB transaction fills one in four. */
const SEGMENT_BYTES = 4096;
const VALUE = "v".repeat(1000);

interface Running {
  child: ChildProcess;
  grpcPort: number;
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
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number };
        if (record.msg === "ready" && typeof record.grpcPort === "number") {
          clearTimeout(timer);
          resolve({ child, grpcPort: record.grpcPort });
        }
      } catch {
        // not a JSON line
      }
    });
  });
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

const logstoreDir = (): string => path.join(tmp, "logstore");

function startLogStore(port: number): Promise<Running> {
  return start("logstore", [
    ...["--data-dir", logstoreDir(), "--shard-count", String(SHARDS), "--cluster-id", CLUSTER_ID],
    ...["--listen", `127.0.0.1:${port}`, "--metrics-port", "-1", "--segment-bytes-max", String(SEGMENT_BYTES)],
  ]);
}

function startShard(id: number, port: number): Promise<Running> {
  return start("shard", [
    ...["--shard-id", String(id), "--cluster-id", CLUSTER_ID, "--shard-count", String(SHARDS)],
    ...["--data-dir", path.join(tmp, `shard-${id}`), "--listen", `127.0.0.1:${port}`, "--metrics-port", "-1"],
    ...["--checkpoint-interval-ms", "100"],
  ]);
}

function startPlayer(logstorePort: number, shardPorts: readonly number[]): Promise<Running> {
  return start("logplayer", [
    ...["--logstore", `127.0.0.1:${logstorePort}`, "--shards", shardPorts.map((p) => `127.0.0.1:${p}`).join(",")],
    ...["--listen", "127.0.0.1:0", "--metrics-port", "-1", "--ack-timeout-ms", "2000", "--backoff-max-ms", "300"],
    ...["--start-wait-ms", "200", "--trim-report-interval-ms", "100"],
  ]);
}

function unary<T>(
  call: (metadata: Metadata, options: { deadline: Date }, done: (err: Error | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) => {
    call(new Metadata({ waitForReady: true }), { deadline: new Date(Date.now() + 10_000) }, (err, value) =>
      err ? reject(err) : resolve(value as T),
    );
  });
}

const logStatus = (client: LogStoreClient): Promise<StatusResponse> => unary((m, o, done) => client.status({}, m, o, done));
const shardStatus = (client: ShardClient): Promise<ShardStatusResponse> => unary((m, o, done) => client.status({}, m, o, done));

/** Transaction i appends "i," to one key of each shard's eight (keys spread by hash) and carries a 1 KB PUT. */
function transaction(i: number): Mutation[] {
  return [
    { kind: MutationKind.MUTATION_KIND_APPEND, key: `list-${i % 8}`, value: Buffer.from(`${i},`), delta: 0n },
    { kind: MutationKind.MUTATION_KIND_PUT, key: `bulk-${i % 5}`, value: Buffer.from(VALUE), delta: 0n },
  ];
}

/** Appends transactions [from, to) one after another (anonymous appends: no dedupe state to lose). */
async function appendRange(client: LogStoreClient, from: number, to: number): Promise<bigint> {
  let lsn = 0n;
  for (let i = from; i < to; i++) {
    const request = { txn: { mutations: transaction(i) }, commitTimeNs: 0n, clientId: "", clientSeq: 0n, sessionLsn: 0n };
    lsn = (await unary<{ lsn: bigint }>((m, o, done) => client.append(request, m, o, done))).lsn;
  }
  return lsn;
}

/** The lowest first LSN of the segment files on disk. */
function firstSegmentLsn(): bigint {
  const lsns = fs
    .readdirSync(path.join(logstoreDir(), "wal"))
    .map(parseSegmentFileName)
    .filter((lsn): lsn is bigint => lsn !== null);
  return lsns.reduce((low, lsn) => (lsn < low ? lsn : low));
}

/** Bytes of the segment files on disk (trimming may be under way). */
function walDiskBytes(): number {
  const dir = path.join(logstoreDir(), "wal");
  return (
    fs
      .readdirSync(dir)
      .filter((name) => parseSegmentFileName(name) !== null)
      // A segment trimmed between the listing and its stat counts 0 (statSync answers undefined for it).
      .reduce((sum, name) => sum + (fs.statSync(path.join(dir, name), { throwIfNoEntry: false })?.size ?? 0), 0)
  );
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "lp-trim-"));
});

afterAll(async () => {
  await Promise.all([...children].map((child) => stop(child, "SIGKILL")));
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("segments go only below every shard's restorable LSN: none while a shard is stopped, the old ones once it is back", async () => {
  const [logstorePort, shard0Port, shard1Port] = await freePorts(3);
  let logstore = await startLogStore(logstorePort!);
  const shards = [await startShard(0, shard0Port!), await startShard(1, shard1Port!)];
  const player = await startPlayer(logstorePort!, [shard0Port!, shard1Port!]);
  const log = new LogStoreClient(`127.0.0.1:${logstorePort}`, credentials.createInsecure());
  const shardClients = [shard0Port!, shard1Port!].map((port) => new ShardClient(`127.0.0.1:${port}`, credentials.createInsecure()));
  try {
    // 1. Both shards up: once they have made everything durable, old segments go.
    const firstLoad = await appendRange(log, 0, 40);
    await waitFor("a first trim", async () => (await logStatus(log)).firstLsn > 1n, { timeoutMs: WAIT_MS });
    await waitFor("shard 1 durable through the first load", async () => (await shardStatus(shardClients[1]!)).restorableLsn >= firstLoad, {
      timeoutMs: WAIT_MS,
    });

    // 2. Shard 1 stops at restorable LSN R (nothing is being written meanwhile): whatever is written, LSN R + 1 stays.
    const restorable = (await shardStatus(shardClients[1]!)).restorableLsn;
    await stop(shards[1]!.child, "SIGKILL");
    const secondLoad = await appendRange(log, 40, 120);
    const checkKept = async (): Promise<void> => {
      const status = await logStatus(log);
      expect(status.trimPoint).toBeLessThanOrEqual(restorable);
      expect(status.firstLsn).toBeLessThanOrEqual(restorable + 1n);
      expect(firstSegmentLsn()).toBeLessThanOrEqual(restorable + 1n);
    };
    await waitFor(
      "shard 0 durable through the second load, nothing trimmed past shard 1",
      async () => {
        await checkKept();
        return (await shardStatus(shardClients[0]!)).restorableLsn >= secondLoad;
      },
      { timeoutMs: WAIT_MS },
    );
    await checkKept();
    const pinnedBytes = walDiskBytes();
    expect(pinnedBytes).toBeGreaterThan(SEGMENT_BYTES * 10);

    // 3. Shard 1 back: it catches up from R + 1, and the segments below the new trim point go.
    shards[1] = await startShard(1, shard1Port!);
    await waitFor("shard 1 caught up and durable", async () => (await shardStatus(shardClients[1]!)).restorableLsn >= secondLoad, {
      timeoutMs: WAIT_MS,
    });
    await waitFor("trimmed past R + 1", async () => (await logStatus(log)).firstLsn > restorable + 1n, { timeoutMs: WAIT_MS });
    expect(walDiskBytes()).toBeLessThan(pinnedBytes);
    await waitFor("Status to show the WAL bytes freed", async () => (await logStatus(log)).walBytes < BigInt(pinnedBytes), {
      timeoutMs: WAIT_MS,
    });
    const trimmed = await logStatus(log);

    // 4. The trim point and first LSN survive a restart; a Read below the first LSN names it.
    await stop(logstore.child, "SIGTERM");
    logstore = await startLogStore(logstorePort!);
    const restarted = await logStatus(log);
    expect(restarted.trimPoint).toBeGreaterThanOrEqual(trimmed.trimPoint);
    expect(restarted.firstLsn).toBeGreaterThanOrEqual(trimmed.firstLsn);
    const refusal = await new Promise<Error & { code?: number }>((resolve) => {
      const call = log.read({ protocolVersion: PROTOCOL_VERSION, fromLsn: 1n, toLsn: 0n, readerId: "trim-test" });
      call.on("data", () => undefined);
      call.on("error", resolve);
    });
    expect(refusal.code).toBe(Status.OUT_OF_RANGE);
    expect(refusal.message).toContain(`starts at ${restarted.firstLsn}`);

    // Every token exactly once on its shard.
    const expected = new Map<string, string>();
    for (let i = 0; i < 120; i++) expected.set(`list-${i % 8}`, `${expected.get(`list-${i % 8}`) ?? ""}${i},`);
    const shardMap = createShardMap(SHARDS);
    for (const [key, value] of expected) {
      const client = shardClients[shardForKey(key, shardMap)]!;
      const answer = await unary<{ found: boolean; value: Buffer }>((m, o, done) => client.get({ key, minLsn: secondLoad }, m, o, done));
      expect(Buffer.from(answer.value).toString()).toBe(value);
    }
  } finally {
    log.close();
    for (const client of shardClients) client.close();
    await stop(player.child, "SIGKILL");
  }
}, 240_000);
