// LogStore replicas as real processes on 127.0.0.1 (build first), plain text: under append load, replicas 4 and 5
// join (--join, as learners, then promoted by AddMember), the leader is killed -9 in the middle of the second
// AddMember and the retried call finishes it, then two of the first replicas are removed. Every acknowledged
// append is in the log exactly once on every remaining replica. Then a follower loses its disk, is removed, and comes
// back under its id as a new member (--join, blank) through the leader's snapshot.
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
  type MembersResponse,
  type ReadResponse,
  type StatusResponse,
} from "@logplayer/proto";

const MAIN = path.join(__dirname, "..", "dist", "main.js");
const IDS = [1, 2, 3, 4, 5];

interface Replica {
  readonly id: number;
  readonly port: number;
  readonly dataDir: string;
  readonly client: LogStoreClient;
  child: ChildProcess | undefined;
  output: string;
}

let root: string;
const replicas = new Map<number, Replica>();
const peersOf = (ids: readonly number[]): string => ids.map((id) => `${id}=127.0.0.1:${replicas.get(id)!.port}`).join(",");

async function start(id: number, peers: readonly number[], join: boolean): Promise<void> {
  const replica = replicas.get(id)!;
  const args = [MAIN, "--data-dir", replica.dataDir, "--listen", `127.0.0.1:${replica.port}`, "--metrics-port", "-1"];
  args.push("--replica-id", String(id), "--peers", peersOf(peers), "--shard-count", "1", "--cluster-id", "membership-test");
  args.push("--segment-bytes-max", "65536", "--insecure", ...(join ? ["--join"] : []));
  const env = { PATH: process.env["PATH"] ?? "", LP_TEST_ONLY_COMPACT_ON_SIGUSR2: "1" };
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env });
  replica.child = child;
  replica.output = "";
  child.stdout!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (replica.output += chunk.toString("utf8")));
  await waitFor(
    `replica ${id} ready`,
    () => {
      if (child.exitCode !== null) throw new Error(`replica ${id} exited: ${replica.output}`);
      return replica.output.includes('"msg":"ready"');
    },
    { timeoutMs: 30_000 },
  );
}

function kill(id: number): Promise<void> {
  const replica = replicas.get(id)!;
  const child = replica.child;
  replica.child = undefined;
  if (child === undefined || child.exitCode !== null) return Promise.resolve();
  child.kill("SIGKILL");
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

function unary<T>(id: number, invoke: (client: LogStoreClient, deadline: Date, cb: (err: ServiceError | null, r?: T) => void) => void) {
  return new Promise<T>((resolve, reject) =>
    invoke(replicas.get(id)!.client, new Date(Date.now() + 90_000), (err, response) => (err === null ? resolve(response!) : reject(err))),
  );
}

function status(id: number): Promise<StatusResponse | undefined> {
  return new Promise((resolve) =>
    replicas
      .get(id)!
      .client.status({}, new Metadata(), { deadline: Date.now() + 2000 }, (err, response) => resolve(err === null ? response : undefined)),
  );
}

async function leader(): Promise<number | undefined> {
  for (const id of IDS) if (replicas.get(id)!.child !== undefined && (await status(id))?.role === "leader") return id;
  return undefined;
}

async function waitLeader(): Promise<number> {
  let id: number | undefined;
  await waitFor(
    "a leader",
    async () => {
      id = await leader();
      return id !== undefined;
    },
    { timeoutMs: 30_000 },
  );
  return id!;
}

function append(id: number, seq: bigint): Promise<AppendResponse> {
  const request = {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `k${seq}`, value: Buffer.alloc(200, 1), delta: 0n }] },
    commitTimeNs: 0n,
    clientId: "writer",
    clientSeq: seq,
    sessionLsn: 0n,
  };
  return new Promise((resolve, reject) =>
    replicas
      .get(id)!
      .client.append(request, new Metadata(), { deadline: Date.now() + 3000 }, (err, response) =>
        err === null ? resolve(response!) : reject(err),
      ),
  );
}

/** Appends seq 1, 2, ... to whoever leads, retrying each seq until acknowledged (dedupe keeps a retry single). */
function appendLoad(): { stop: () => Promise<bigint> } {
  let stopping = false;
  let acknowledged = 0n;
  const run = (async () => {
    for (let seq = 1n; !stopping; seq++) {
      for (let attempt = 0; attempt < 2000; attempt++) {
        const id = await leader();
        if (
          id !== undefined &&
          (await append(id, seq).then(
            () => true,
            () => false,
          ))
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      acknowledged = seq;
    }
  })();
  return {
    stop: async () => {
      stopping = true;
      await run;
      return acknowledged;
    },
  };
}

function addMember(on: number, id: number): Promise<MembersResponse> {
  const address = `127.0.0.1:${replicas.get(id)!.port}`;
  return unary(on, (client, deadline, cb) => client.addMember({ replicaId: id, address }, new Metadata(), { deadline }, cb));
}

function removeMember(on: number, id: number): Promise<MembersResponse> {
  return unary(on, (client, deadline, cb) => client.removeMember({ replicaId: id }, new Metadata(), { deadline }, cb));
}

/** Retries a membership call on whoever leads until it answers (it is idempotent), bounded. */
async function onLeader(call: (leaderId: number) => Promise<MembersResponse>): Promise<MembersResponse> {
  let answer: MembersResponse | undefined;
  await waitFor(
    "the membership change",
    async () => {
      answer = await call(await waitLeader()).catch(() => undefined);
      return answer !== undefined;
    },
    { timeoutMs: 90_000 },
  );
  return answer!;
}

function read(id: number, toLsn: bigint, fromLsn = 1n): Promise<LogEntry[]> {
  return new Promise((resolve, reject) => {
    const entries: LogEntry[] = [];
    const call = replicas.get(id)!.client.read({ protocolVersion: PROTOCOL_VERSION, fromLsn, toLsn, readerId: "test" });
    call.on("data", (response: ReadResponse) => entries.push(...response.entries));
    call.on("error", reject);
    call.on("end", () => resolve(entries));
  });
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-membership-"));
  const ports = await freePorts(IDS.length);
  for (const [i, id] of IDS.entries()) {
    const client = new LogStoreClient(`127.0.0.1:${ports[i]}`, credentials.createInsecure());
    replicas.set(id, { id, port: ports[i]!, dataDir: path.join(root, `r${id}`), client, child: undefined, output: "" });
  }
  await Promise.all([1, 2, 3].map((id) => start(id, [1, 2, 3], false)));
}, 120_000);

afterAll(async () => {
  await Promise.all(IDS.map((id) => kill(id)));
  for (const replica of replicas.values()) replica.client.close();
  await fs.rm(root, { recursive: true, force: true });
});

it("grows 3 -> 5 under load (a leader killed -9 in the middle of a change), then removes two: every acknowledged append once", async () => {
  await waitLeader();
  const load = appendLoad();
  await start(4, [1, 2, 3, 4], true);
  const withFour = await onLeader((id) => addMember(id, 4));
  expect(withFour.members.map((m) => [m.replicaId, m.learner])).toContainEqual([4, false]);

  await start(5, [1, 2, 3, 4, 5], true);
  const oldLeader = await waitLeader();
  const firstAttempt = addMember(oldLeader, 5).catch((err: ServiceError) => err);
  await waitFor("the learner 5 appended", async () => ((await status(oldLeader))?.learners ?? []).includes(5), { timeoutMs: 30_000 });
  await kill(oldLeader);
  expect(await firstAttempt).toHaveProperty("code");
  await start(oldLeader, [1, 2, 3], false);
  const withFive = await onLeader((id) => addMember(id, 5));
  expect(withFive.members.map((m) => [m.replicaId, m.learner])).toEqual(IDS.map((id) => [id, false]));

  const removed = [1, 2, 3].filter((id) => id !== oldLeader).slice(0, 2);
  for (const id of removed) await onLeader((leaderId) => removeMember(leaderId, id));
  for (const id of removed) await kill(id);
  const acknowledged = await load.stop();
  const remaining = IDS.filter((id) => !removed.includes(id));
  const last = await append(await waitLeader(), acknowledged + 1n);
  for (const id of remaining) {
    await waitFor(`replica ${id} caught up`, async () => ((await status(id))?.commitLsn ?? 0n) >= last.lsn, { timeoutMs: 30_000 });
    const seqs = (await read(id, last.lsn)).filter((e) => e.clientId === "writer").map((e) => e.clientSeq);
    expect(seqs.length).toBe(new Set(seqs).size);
    for (let seq = 1n; seq <= acknowledged + 1n; seq++) expect([id, seq, seqs.includes(seq)]).toEqual([id, seq, true]);
    expect((await status(id))!.voters).toEqual(remaining);
  }
}, 240_000);

it("a follower whose disk was wiped is removed and comes back under its id through the leader's snapshot", async () => {
  const members = (await status(await waitLeader()))!.voters;
  const leaderId = await waitLeader();
  const wiped = members.find((id) => id !== leaderId)!;
  await kill(wiped);
  await fs.rm(replicas.get(wiped)!.dataDir, { recursive: true, force: true });
  await onLeader((id) => removeMember(id, wiped));
  // Entries the wiped replica never had, then a compaction on the leader: its log no longer starts at 1.
  const base = 1_000_000n;
  for (let seq = 1n; seq <= 300n; seq++) await append(leaderId, base + seq);
  const leaderReplica = replicas.get(leaderId)!;
  leaderReplica.output = "";
  leaderReplica.child!.kill("SIGUSR2");
  let snapshotIndex = 0n;
  await waitFor("the leader's compaction", () => {
    const match = /"snapshotIndex":"(\d+)","firstLsn":"(\d+)","segmentsDeleted":(\d+)/.exec(leaderReplica.output);
    if (match === null) return false;
    snapshotIndex = BigInt(match[1]!);
    expect(BigInt(match[2]!)).toBeGreaterThan(1n);
    return true;
  });
  await start(wiped, members, true);
  const back = await onLeader((id) => addMember(id, wiped));
  expect(back.members.map((m) => [m.replicaId, m.learner])).toContainEqual([wiped, false]);
  const last = await append(leaderId, base + 301n);
  await waitFor("the wiped replica caught up", async () => ((await status(wiped))?.commitLsn ?? 0n) >= last.lsn, { timeoutMs: 60_000 });
  expect(replicas.get(wiped)!.output).toContain('"msg":"snapshot installed"');
  // Its log starts after the snapshot and matches the leader's above it.
  await expect(read(wiped, 1n)).rejects.toMatchObject({ code: 11 });
  const onLeaderLog = await read(leaderId, last.lsn, snapshotIndex + 1n);
  const onWiped = await read(wiped, last.lsn, snapshotIndex + 1n);
  expect(onWiped.map((e) => [e.lsn, e.clientId, e.clientSeq])).toEqual(onLeaderLog.map((e) => [e.lsn, e.clientId, e.clientSeq]));
  expect((await status(wiped))!.voters).toEqual([...members].sort((a, b) => a - b));
}, 180_000);
