// Three LogStore replicas as real processes on 127.0.0.1 (build first): the leader compacts its log while a
// follower is stopped; the follower, restarted, catches up through InstallSnapshot and then the log, and holds
// every entry above the snapshot byte-identical to the leader. Plain text, like the other raw-protocol tests.
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { freePorts } from "@logplayer/common";
import { waitFor } from "@logplayer/testing";
import {
  LogStoreClient,
  MutationKind,
  PROTOCOL_VERSION,
  type AppendResponse,
  type LogEntry,
  type ReadResponse,
  type StatusResponse,
} from "@logplayer/proto";
import { encodeEntryPayload } from "@logplayer/wal";

const MAIN = path.join(__dirname, "..", "dist", "main.js");
const REPLICAS = [1, 2, 3];

interface Replica {
  readonly id: number;
  readonly port: number;
  readonly dataDir: string;
  readonly client: LogStoreClient;
  child: ChildProcess | undefined;
  output: string;
}

let root: string;
let peersFlag: string;
const replicas = new Map<number, Replica>();

async function start(id: number): Promise<void> {
  const replica = replicas.get(id)!;
  const args = [MAIN, "--data-dir", replica.dataDir, "--listen", `127.0.0.1:${replica.port}`, "--metrics-port", "-1"];
  args.push("--replica-id", String(id), "--peers", peersFlag, "--shard-count", "1", "--cluster-id", "snapshot-test");
  args.push("--segment-bytes-max", "4096", "--insecure");
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env["PATH"] ?? "", LP_TEST_ONLY_COMPACT_ON_SIGUSR2: "1" },
  });
  replica.child = child;
  replica.output = "";
  child.stdout!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  await waitFor(`replica ${id} ready`, () => {
    if (child.exitCode !== null) throw new Error(`replica ${id} exited: ${replica.output}`);
    return replica.output.includes('"msg":"ready"');
  });
}

function stop(id: number): Promise<void> {
  const replica = replicas.get(id)!;
  const child = replica.child;
  replica.child = undefined;
  if (child === undefined || child.exitCode !== null) return Promise.resolve();
  child.kill("SIGKILL");
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function status(id: number): Promise<StatusResponse | undefined> {
  return new Promise((resolve) => {
    replicas
      .get(id)!
      .client.status({}, new Metadata(), { deadline: Date.now() + 2000 }, (err, response) => resolve(err === null ? response : undefined));
  });
}

async function leader(): Promise<number | undefined> {
  for (const id of REPLICAS) {
    if (replicas.get(id)!.child !== undefined && (await status(id))?.role === "leader") return id;
  }
  return undefined;
}

function append(id: number, seq: bigint): Promise<AppendResponse> {
  const request = {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `k${seq}`, value: Buffer.alloc(400, Number(seq % 251n)), delta: 0n }] },
    commitTimeNs: 0n,
    clientId: "writer",
    clientSeq: seq,
    sessionLsn: 0n,
  };
  return new Promise((resolve, reject) => {
    replicas
      .get(id)!
      .client.append(request, new Metadata(), { deadline: Date.now() + 5000 }, (err: ServiceError | null, response?: AppendResponse) =>
        err === null ? resolve(response!) : reject(err),
      );
  });
}

function read(id: number, fromLsn: bigint, toLsn: bigint): Promise<LogEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: LogEntry[] = [];
    const call = replicas.get(id)!.client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn, toLsn, readerId: "test" });
    call.on("data", (response: ReadResponse) => entries.push(...response.entries));
    call.on("error", reject);
    call.on("end", () => resolve(entries));
  });
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-snapshot-"));
  const ports = await freePorts(REPLICAS.length);
  peersFlag = REPLICAS.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(",");
  for (const [i, id] of REPLICAS.entries()) {
    const port = ports[i]!;
    const client = new LogStoreClient(`127.0.0.1:${port}`, credentials.createInsecure());
    replicas.set(id, { id, port, dataDir: path.join(root, `r${id}`), client, child: undefined, output: "" });
  }
  await Promise.all(REPLICAS.map((id) => start(id)));
}, 120_000);

afterAll(async () => {
  await Promise.all(REPLICAS.map((id) => stop(id)));
  for (const replica of replicas.values()) replica.client.close();
  await fs.rm(root, { recursive: true, force: true });
});

it("a follower behind the leader's compacted log catches up through InstallSnapshot, then the log", async () => {
  let leaderId: number | undefined;
  await waitFor(
    "a leader",
    async () => {
      leaderId = await leader();
      return leaderId !== undefined;
    },
    { timeoutMs: 30_000 },
  );
  const follower = REPLICAS.find((id) => id !== leaderId)!;
  let seq = 1n;
  for (; seq <= 10n; seq++) await append(leaderId!, seq);
  await stop(follower);
  // Enough entries for several 4 KiB segments while the follower is down.
  for (; seq <= 80n; seq++) await append(leaderId!, seq);
  const leaderReplica = replicas.get(leaderId!)!;
  leaderReplica.child!.kill("SIGUSR2");
  let snapshotIndex = 0n;
  await waitFor("the leader's compaction", () => {
    const match = /"snapshotIndex":"(\d+)","firstLsn":"(\d+)","segmentsDeleted":(\d+)/.exec(leaderReplica.output);
    if (match === null) return false;
    snapshotIndex = BigInt(match[1]!);
    expect(Number(match[3])).toBeGreaterThan(0);
    // The follower stopped at about LSN 12: the leader no longer holds the entries after it.
    expect(BigInt(match[2]!)).toBeGreaterThan(15n);
    return true;
  });
  for (; seq <= 90n; seq++) await append(leaderId!, seq);
  await start(follower);
  const leaderCommit = (await status(leaderId!))!.commitLsn;
  await waitFor("the follower caught up", async () => ((await status(follower))?.commitLsn ?? 0n) >= leaderCommit, { timeoutMs: 60_000 });
  expect(replicas.get(follower)!.output).toContain('"msg":"snapshot installed"');
  const onLeader = await read(leaderId!, snapshotIndex + 1n, leaderCommit);
  const onFollower = await read(follower, snapshotIndex + 1n, leaderCommit);
  expect(onLeader.length).toBe(Number(leaderCommit - snapshotIndex));
  expect(onFollower.map((entry) => Buffer.from(encodeEntryPayload(entry)).toString("hex"))).toEqual(
    onLeader.map((entry) => Buffer.from(encodeEntryPayload(entry)).toString("hex")),
  );
  // The follower's log starts after the snapshot: below it, OUT_OF_RANGE.
  await expect(read(follower, 1n, 2n)).rejects.toMatchObject({ code: 11 });
}, 180_000);
