import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { createShardMap, DEFAULT_TRANSACTION_LIMITS, grpcChannelOptions, shardForKey, Status } from "@logplayer/common";
import { waitFor } from "@logplayer/testing";
import {
  MutationKind,
  PROTOCOL_VERSION,
  ShardClient,
  type DeliverHello,
  type DeliverRequest,
  type DeliverResponse,
  type Mutation,
  type Part,
} from "@logplayer/proto";

// Plain text: this file drives the service's own protocol with raw clients; mTLS and roles are tested in tests/e2e/security.process.test.ts.
const MAIN = path.resolve(__dirname, "../dist/main.js");
const SHARD_MAP = createShardMap(2);
const CLUSTER = "test-cluster";
const READY_TIMEOUT_MS = 20_000;

interface ShardProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly exited: Promise<number | null>;
  stderr(): string;
}

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "shard-proc-"));
  tempDirs.push(dir);
  return dir;
}

/** Spawns the shard; resolves on its "ready" line, rejects if it exits first. */
function spawnShard(args: string[]): { ready: Promise<ShardProcess>; exited: Promise<number | null>; stderr: () => string } {
  const identity = ["--cluster-id", CLUSTER, "--shard-count", String(SHARD_MAP.shardCount)];
  const child = spawn(
    process.execPath,
    [MAIN, "--listen", "127.0.0.1:0", "--metrics-port", "0", "--log-level", "info", "--insecure", ...identity, ...args],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const ready = new Promise<ShardProcess>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`shard not ready in time; stderr: ${stderr}`)), READY_TIMEOUT_MS);
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const record = JSON.parse(line) as { msg?: string; grpcPort?: number; metricsPort?: number };
        if (record.msg !== "ready") continue;
        clearTimeout(timer);
        resolve({ child, grpcPort: record.grpcPort!, metricsPort: record.metricsPort!, exited, stderr: () => stderr });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`shard exited with ${code} before ready; stderr: ${stderr}`));
    });
  });
  // Callers that expect a start-up failure never await `ready`.
  ready.catch(() => {});
  return { ready, exited, stderr: () => stderr };
}

function clientFor(shard: ShardProcess): ShardClient {
  return new ShardClient(`127.0.0.1:${shard.grpcPort}`, grpc.credentials.createInsecure(), grpcChannelOptions(16 << 20));
}

/** The first key of the form <prefix><n> that routes to `shard`. */
function keyFor(shard: number, prefix = "k"): string {
  for (let i = 0; ; i++) if (shardForKey(`${prefix}${i}`, SHARD_MAP) === shard) return `${prefix}${i}`;
}

function hello(fields: Partial<DeliverHello> = {}): DeliverRequest {
  return {
    body: {
      $case: "hello",
      value: {
        protocolVersion: PROTOCOL_VERSION,
        clusterId: CLUSTER,
        shardMap: SHARD_MAP,
        shardId: 0,
        playerId: "test",
        commitLsn: 0n,
        limits: DEFAULT_TRANSACTION_LIMITS,
        logFirstLsn: 0n,
        ...fields,
      },
    },
  };
}

/** The commit LSN the tests' batches carry: above every part they send. */
const COMMIT_LSN = 1_000_000n;

function batch(...parts: Part[]): DeliverRequest {
  return batchAt(COMMIT_LSN, ...parts);
}

function batchAt(commitLsn: bigint, ...parts: Part[]): DeliverRequest {
  return { body: { $case: "batch", value: { parts, commitLsn } } };
}

function part(lsn: number, prevLsn: number, mutations: Mutation[] = [], times: Partial<Part> = {}): Part {
  return { lsn: BigInt(lsn), prevLsn: BigInt(prevLsn), mutations, commitTimeNs: 0n, dispatchTimeNs: 0n, ...times };
}

const append = (key: string, value: string): Mutation => ({
  kind: MutationKind.MUTATION_KIND_APPEND,
  key,
  value: Buffer.from(value),
  delta: 0n,
});

/** A Deliver stream with awaitable replies and final status. */
class DeliverSession {
  readonly #call: grpc.ClientDuplexStream<DeliverRequest, DeliverResponse>;
  readonly #replies: DeliverResponse[] = [];
  #wake: (() => void) | null = null;
  readonly ended: Promise<grpc.StatusObject>;

  constructor(client: ShardClient) {
    this.#call = client.deliver();
    this.#call.on("data", (reply: DeliverResponse) => {
      this.#replies.push(reply);
      this.#wake?.();
    });
    this.ended = new Promise((resolve) => this.#call.on("status", resolve));
    this.#call.on("error", () => {}); // the status event carries the outcome
    void this.ended.then(() => this.#wake?.());
  }

  send(request: DeliverRequest): void {
    this.#call.write(request);
  }

  async next(timeoutMs = 10_000): Promise<DeliverResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.#replies.length === 0) {
      if (Date.now() > deadline) throw new Error("no Deliver reply in time");
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    return this.#replies.shift()!;
  }

  close(): void {
    this.#call.end();
  }

  cancel(): void {
    this.#call.cancel();
  }
}

function unary<Req, Res>(
  method: (
    req: Req,
    metadata: grpc.Metadata,
    options: Partial<grpc.CallOptions>,
    cb: (err: grpc.ServiceError | null, res: Res) => void,
  ) => grpc.ClientUnaryCall,
  request: Req,
  deadlineMs = 15_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

function get(client: ShardClient, key: string, minLsn = 0n, deadlineMs?: number) {
  return unary(client.get.bind(client), { key, minLsn }, deadlineMs);
}
function status(client: ShardClient) {
  return unary(client.status.bind(client), {});
}

async function errorOf(promise: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await promise;
  } catch (err: unknown) {
    return err as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

function fetchMetrics(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path: "/metrics" }, (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

afterAll(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe("shard process", () => {
  let shard: ShardProcess;
  let client: ShardClient;
  const dataDir = tempDir();
  const key = keyFor(0);

  beforeAll(async () => {
    shard = await spawnShard(["--shard-id", "0", "--data-dir", dataDir, "--read-wait-ms-max", "300"]).ready;
    client = clientFor(shard);
  });
  afterAll(() => client?.close());

  test("a stream that does not start with a hello is refused with INVALID_ARGUMENT", async () => {
    const session = new DeliverSession(client);
    session.send(batch(part(1, 0)));
    expect((await session.ended).code).toBe(Status.INVALID_ARGUMENT);
    expect((await status(client)).appliedLsn).toBe(0n);
  });

  test("hello, batches, acks, a gap, and the data is readable", async () => {
    const session = new DeliverSession(client);
    session.send(hello());
    expect(await session.next()).toEqual({ body: { $case: "hello", value: { shardId: 0, appliedLsn: 0n } } });
    session.send(batch(part(1, 0, [append(key, "a")]), part(3, 1, [append(key, "b")])));
    expect((await session.next()).body).toEqual({ $case: "ack", value: { appliedLsn: 3n } });
    session.send(batch(part(4, 3), part(7, 6, [append(key, "never")])));
    expect((await session.next()).body).toEqual({ $case: "gap", value: { appliedLsn: 4n, lsn: 7n, prevLsn: 6n } });
    // The stream stays open after a gap: the LogPlayer rewinds on it.
    session.send(batch(part(3, 1, [append(key, "b")]), part(6, 4, [append(key, "c")]), part(7, 6)));
    expect((await session.next()).body).toEqual({ $case: "ack", value: { appliedLsn: 7n } });
    session.close();
    expect((await session.ended).code).toBe(Status.OK);
    const read = await get(client, key, 7n);
    expect(read).toMatchObject({ found: true, appliedLsn: 7n });
    expect(Buffer.from(read.value).toString()).toBe("abc");
    const s = await status(client);
    expect(s).toMatchObject({ shardId: 0, clusterId: CLUSTER, appliedLsn: 7n, partsApplied: 5n, partsDuplicate: 1n, gaps: 1n });
    expect(s.shardMap).toEqual(SHARD_MAP);
  });

  test.each([
    ["protocol version", { protocolVersion: PROTOCOL_VERSION + 1 }, /protocol version/],
    ["shard id", { shardId: 1 }, /shard 1.*shard 0/],
    ["cluster id", { clusterId: "other-cluster" }, /"other-cluster".*"test-cluster"/],
    ["shard map", { shardMap: createShardMap(3) }, /fnv1a32\/3.*fnv1a32\/2/],
  ])("a hello with another %s is refused with FAILED_PRECONDITION naming both", async (_what, fields, message) => {
    const session = new DeliverSession(client);
    session.send(hello(fields));
    const ended = await session.ended;
    expect(ended.code).toBe(Status.FAILED_PRECONDITION);
    expect(ended.details).toMatch(message);
  });

  test("a hello whose log starts past applied_lsn + 1 (trimmed) is refused, and Status says why until a hello passes", async () => {
    const { appliedLsn } = await status(client);
    const session = new DeliverSession(client);
    session.send(hello({ logFirstLsn: appliedLsn + 2n }));
    const ended = await session.ended;
    expect(ended.code).toBe(Status.FAILED_PRECONDITION);
    expect(ended.details).toContain(`has applied_lsn ${appliedLsn} but the log starts at LSN ${appliedLsn + 2n}`);
    expect(ended.details).toContain("no --backup-dir is set");
    expect((await status(client)).logUnreachable).toBe(ended.details);
    const reaching = new DeliverSession(client);
    reaching.send(hello({ logFirstLsn: appliedLsn + 1n }));
    expect((await reaching.next()).body?.$case).toBe("hello");
    expect((await status(client)).logUnreachable).toBe("");
    reaching.cancel();
  });

  test("a batch with a key of another shard is refused and nothing in it is applied", async () => {
    const before = await status(client);
    const session = new DeliverSession(client);
    session.send(hello());
    await session.next();
    const next = Number(before.appliedLsn) + 1;
    session.send(batch(part(next, Number(before.appliedLsn), [append(key, "x")]), part(next + 1, next, [append(keyFor(1), "y")])));
    const ended = await session.ended;
    expect(ended.code).toBe(Status.INVALID_ARGUMENT);
    expect(ended.details).toMatch(/belongs to shard 1/);
    expect((await status(client)).appliedLsn).toBe(before.appliedLsn);
    expect(Buffer.from((await get(client, key)).value).toString()).toBe("abc");
    const misrouted = await errorOf(get(client, keyFor(1)));
    expect(misrouted.code).toBe(Status.INVALID_ARGUMENT);
    expect(misrouted.details).toMatch(/belongs to shard 1, not shard 0/);
    // Refused reads are counted under their status name.
    expect(await fetchMetrics(shard.metricsPort)).toMatch(
      /^lp_shard_reads_total\{method="get",outcome="INVALID_ARGUMENT"[^}]*\} [1-9]\d*$/m,
    );
  });

  test("the commit-LSN fence: a part beyond the batch's commit LSN, or a commit LSN below the stream's last, is refused", async () => {
    const before = await status(client);
    const next = before.appliedLsn + 1n;
    const beyond = new DeliverSession(client);
    beyond.send(hello({ commitLsn: before.appliedLsn }));
    await beyond.next();
    // A LogPlayer that says the log is committed up to `next`, and sends `next + 1`.
    beyond.send(batchAt(next, part(Number(next), Number(before.appliedLsn), [append(key, "x")]), part(Number(next) + 1, Number(next))));
    const refused = await beyond.ended;
    expect(refused.code).toBe(Status.INVALID_ARGUMENT);
    expect(refused.details).toMatch(`part ${next + 1n} is beyond the batch's commit_lsn ${next}`);
    const backwards = new DeliverSession(client);
    backwards.send(hello({ commitLsn: next + 5n }));
    await backwards.next();
    backwards.send(batchAt(next + 4n, part(Number(next), Number(before.appliedLsn), [append(key, "x")])));
    const wentBack = await backwards.ended;
    expect(wentBack.code).toBe(Status.INVALID_ARGUMENT);
    expect(wentBack.details).toMatch(`batch commit_lsn ${next + 4n} is below ${next + 5n}`);
    // Nothing changed, and the next good stream is served.
    expect((await status(client)).appliedLsn).toBe(before.appliedLsn);
    expect(Buffer.from((await get(client, key)).value).toString()).toBe("abc");
    const good = new DeliverSession(client);
    good.send(hello({ commitLsn: next }));
    await good.next();
    good.send(batchAt(next, part(Number(next), Number(before.appliedLsn))));
    expect((await good.next()).body).toEqual({ $case: "ack", value: { appliedLsn: next } });
    good.close();
    await good.ended;
  });

  test("a Get with min_lsn waits until a later batch applies it", async () => {
    const applied = Number((await status(client)).appliedLsn);
    const waitingKey = keyFor(0, "wait");
    const pending = get(client, waitingKey, BigInt(applied + 1), 10_000);
    await waitFor("the read to wait", async () => /lp_shard_waiting_reads\{[^}]*\} 1\b/.test(await fetchMetrics(shard.metricsPort)));
    const session = new DeliverSession(client);
    session.send(hello());
    await session.next();
    session.send(batch(part(applied + 1, applied, [append(waitingKey, "late")])));
    const read = await pending;
    expect(read.found).toBe(true);
    expect(Buffer.from(read.value).toString()).toBe("late");
    expect(read.appliedLsn).toBe(BigInt(applied + 1));
    session.close();
    await session.ended;
  });

  test("a Get whose min_lsn is never reached fails with DEADLINE_EXCEEDED naming both LSNs", async () => {
    const applied = (await status(client)).appliedLsn;
    const capped = await errorOf(get(client, key, 1000n, 10_000));
    expect(capped.code).toBe(Status.DEADLINE_EXCEEDED);
    expect(capped.details).toContain(`applied_lsn ${applied} did not reach min_lsn 1000`);
    // A short call deadline ends the wait too (the message may come from either side).
    expect((await errorOf(get(client, key, 1000n, 150))).code).toBe(Status.DEADLINE_EXCEEDED);
  });

  test("Scan returns keys with a prefix in order, paged", async () => {
    const scan = (prefix: string, startAfter: string, limit: number) =>
      unary(client.scan.bind(client), { prefix, minLsn: 0n, limit, startAfter });
    const first = await scan("", "", 1);
    expect(first.items).toHaveLength(1);
    expect(first.more).toBe(true);
    const rest = await scan("", first.items[0]!.key, 100);
    expect(rest.more).toBe(false);
    const keys = [...first.items, ...rest.items].map((i) => i.key);
    expect(keys).toEqual([key, keyFor(0, "wait")].sort());
    expect((await errorOf(scan("bad\u0001", "", 1))).code).toBe(Status.INVALID_ARGUMENT);
  });

  test("DeliveryStats reports histograms of the delays of parts with times", async () => {
    const applied = Number((await status(client)).appliedLsn);
    const session = new DeliverSession(client);
    session.send(hello());
    await session.next();
    const now = process.hrtime.bigint();
    session.send(batch(part(applied + 1, applied, [], { commitTimeNs: now - 5_000_000n, dispatchTimeNs: now - 1_000_000n })));
    await session.next();
    session.close();
    await session.ended;
    const stats = await unary(client.deliveryStats.bind(client), { reset: true });
    expect(stats.parts).toBeGreaterThanOrEqual(1n);
    const player = hdr.decodeFromCompressedBase64(stats.playerDelayUs);
    const apply = hdr.decodeFromCompressedBase64(stats.applyDelayUs);
    const sqlite = hdr.decodeFromCompressedBase64(stats.sqliteCommitDelayUs);
    expect([player.totalCount, apply.totalCount, sqlite.totalCount]).toEqual([1, 1, 1]);
    expect(player.minNonZeroValue).toBeGreaterThanOrEqual(1000);
    expect(apply.minNonZeroValue).toBeGreaterThanOrEqual(5000);
    const cleared = await unary(client.deliveryStats.bind(client), { reset: false });
    expect(cleared.parts).toBe(0n);
  });

  test("a second shard process on the same data directory is refused, naming the holder's pid; the first keeps serving", async () => {
    const second = spawnShard(["--shard-id", "0", "--data-dir", dataDir]);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toContain(`data directory ${dataDir} is in use by shard 0 (pid ${shard.child.pid}`);
    expect((await status(client)).appliedLsn).toBeGreaterThanOrEqual(0n);
  });

  test("SIGTERM ends open streams with UNAVAILABLE and exits 0; another --shard-id is then refused", async () => {
    const session = new DeliverSession(client);
    session.send(hello());
    await session.next();
    shard.child.kill("SIGTERM");
    expect((await session.ended).code).toBe(Status.UNAVAILABLE);
    expect(await shard.exited).toBe(0);
    const wrong = spawnShard(["--shard-id", "1", "--data-dir", dataDir]);
    expect(await wrong.exited).toBe(1);
    expect(wrong.stderr()).toMatch(/holds shard 0, but --shard-id is 1/);
    expect(wrong.stderr().trim().split("\n")).toHaveLength(1);
  });
});

describe("shard process checkpoints", () => {
  test("the timer syncs the WAL off the event loop, checkpoints, and advances durable_lsn to applied_lsn", async () => {
    const shard = await spawnShard(["--shard-id", "0", "--data-dir", tempDir(), "--checkpoint-interval-ms", "100"]).ready;
    const client = clientFor(shard);
    try {
      const session = new DeliverSession(client);
      session.send(hello());
      await session.next();
      session.send(batch(part(1, 0, [append(keyFor(0), "a")]), part(2, 1, [append(keyFor(0), "b")])));
      expect((await session.next()).body).toEqual({ $case: "ack", value: { appliedLsn: 2n } });
      await waitFor("durable_lsn to reach 2", async () => (await status(client)).durableLsn === 2n);
      const metrics = await fetchMetrics(shard.metricsPort);
      const count = (name: string): number => Number(new RegExp(`^${name}_count\\{[^}]*\\} (\\d+)$`, "m").exec(metrics)?.[1] ?? "0");
      expect(count("lp_shard_wal_sync_ahead_seconds")).toBeGreaterThanOrEqual(1);
      expect(count("lp_shard_checkpoint_seconds")).toBeGreaterThanOrEqual(1);
      session.close();
    } finally {
      client.close();
      shard.child.kill("SIGTERM");
      await shard.exited;
    }
  });
});

describe("shard process killed with SIGKILL while batches stream", () => {
  test("restarts with applied_lsn and data consistent: every applied APPEND exactly once", async () => {
    const dataDir = tempDir();
    const keys = [keyFor(0, "a"), keyFor(0, "b"), keyFor(0, "c")];
    const tokensFor = (lsn: number) => keys.filter((_k, i) => (lsn + i) % 2 === 0 || i === 2);
    const first = await spawnShard(["--shard-id", "0", "--data-dir", dataDir]).ready;
    const client = clientFor(first);
    const session = new DeliverSession(client);
    session.send(hello());
    await session.next();
    // Pipeline many batches of 10 parts, then kill once some are acked.
    const batches = 1000;
    for (let b = 0; b < batches; b++) {
      const parts = Array.from({ length: 10 }, (_x, i) => {
        const lsn = b * 10 + i + 1;
        return part(
          lsn,
          lsn - 1,
          tokensFor(lsn).map((k) => append(k, `${lsn},`)),
        );
      });
      session.send(batch(...parts));
    }
    let ackedLsn = 0n;
    for (let acks = 0; acks < 20; acks++) {
      const reply = await session.next();
      if (reply.body?.$case === "ack") ackedLsn = reply.body.value.appliedLsn;
    }
    first.child.kill("SIGKILL");
    await first.exited;
    session.cancel();
    client.close();

    const second = await spawnShard(["--shard-id", "0", "--data-dir", dataDir]).ready;
    const client2 = clientFor(second);
    const applied = (await status(client2)).appliedLsn;
    expect(applied).toBeGreaterThanOrEqual(ackedLsn);
    expect(applied % 10n).toBe(0n); // whole batches only: one transaction each
    for (const k of keys) {
      const value = Buffer.from((await get(client2, k)).value).toString();
      const expected = Array.from({ length: Number(applied) }, (_x, i) => i + 1)
        .filter((lsn) => tokensFor(lsn).includes(k))
        .map((lsn) => `${lsn},`)
        .join("");
      expect(value).toBe(expected);
    }
    // Delivery resumes where the shard says: re-sent parts are duplicates.
    const session2 = new DeliverSession(client2);
    session2.send(hello());
    const greeting = await session2.next();
    expect(greeting.body).toEqual({ $case: "hello", value: { shardId: 0, appliedLsn: applied } });
    const lsn = Number(applied);
    session2.send(batch(part(lsn, lsn - 1, [append(keys[2]!, "dup,")]), part(lsn + 1, lsn, [append(keys[2]!, "new,")])));
    expect((await session2.next()).body).toEqual({ $case: "ack", value: { appliedLsn: applied + 1n } });
    expect(Buffer.from((await get(client2, keys[2]!)).value).toString()).toMatch(/,new,$/);
    expect(Buffer.from((await get(client2, keys[2]!)).value).toString()).not.toContain("dup");
    session2.close();
    await session2.ended;
    client2.close();
    second.child.kill("SIGTERM");
    expect(await second.exited).toBe(0);
  });
});
