import { INSECURE } from "@logplayer/tls";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_APPEND_STREAM_PENDING_MAX } from "./append-stream";
import { createShardMap, DEFAULT_TRANSACTION_LIMITS, LpError, silentLogger, Status } from "@logplayer/common";
import { MutationKind, type AppendRequest, type LogEntry } from "@logplayer/proto";
import { writeClusterMeta } from "./cluster-meta";
import { encodeEntryPayload } from "@logplayer/wal";
import { DEFAULT_DEDUPE_LIMITS, type DedupeLimits } from "./dedupe-table";
import { DEFAULT_READ_LIMITS } from "./read-session";
import { RAFT_STATE_FILE } from "./replication/raft-state-file";
import { startLogStore, WAL_DIRECTORY, type RunningLogStore } from "./start-logstore";
import { DEFAULT_WAL_LIMITS, Wal } from "@logplayer/wal";

// A LogStore without --peers (the one voter of its own Raft) in-process over a real WAL in a temp dir:
// idempotent appends. LSN 1 is the leader's no-op, and every start appends one more.
let dir: string;
const running: RunningLogStore[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-dedupe-"));
});

afterEach(async () => {
  for (const store of running.splice(0)) await store.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function openStore(overrides: Partial<DedupeLimits> = {}): Promise<RunningLogStore> {
  const limits: DedupeLimits = { ...DEFAULT_DEDUPE_LIMITS, clientsMax: 10, seqsPerClientMax: 10, ...overrides };
  const store = await startLogStore(
    {
      dataDir: dir,
      listen: "127.0.0.1:0",
      advertise: undefined,
      metricsPort: -1,
      replicaId: "1",
      shardCount: 1,
      clusterId: "dedupe-test",
      walLimits: DEFAULT_WAL_LIMITS,
      transactionLimits: DEFAULT_TRANSACTION_LIMITS,
      readLimits: DEFAULT_READ_LIMITS,
      appendStreamPendingMax: DEFAULT_APPEND_STREAM_PENDING_MAX,
      shutdownTimeoutMs: 1000,
      dedupeLimits: limits,
      security: INSECURE,
    },
    silentLogger(),
    (error: Error) => {
      throw error;
    },
  );
  running.push(store);
  return store;
}

async function closeStore(store: RunningLogStore): Promise<void> {
  running.splice(running.indexOf(store), 1);
  await store.close();
}

function request(clientId: string, clientSeq: bigint, key = `k-${clientId}-${clientSeq}`): AppendRequest {
  return {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_APPEND, key, value: Buffer.from("x"), delta: 0n }] },
    commitTimeNs: 1n,
    clientId,
    clientSeq,
    sessionLsn: 0n,
  };
}

describe("single-replica idempotent appends", () => {
  it("a retry arriving while the original is being fsynced waits for it and gets its LSN", async () => {
    const { node } = await openStore();
    // Both calls start before any fsync completes: the second must find the first in flight.
    const original = node.append(request("c", 1n));
    const retry = node.append(request("c", 1n));
    expect(await original).toEqual({ lsn: 2n, duplicate: false });
    expect(await retry).toEqual({ lsn: 2n, duplicate: true });
    // Once committed, the table answers.
    expect(await node.append(request("c", 1n))).toEqual({ lsn: 2n, duplicate: true });
    expect(await node.append(request("c", 2n))).toEqual({ lsn: 3n, duplicate: false });
    expect(await node.append(request("other", 1n))).toEqual({ lsn: 4n, duplicate: false });
    expect(node.wal.lastLsn).toBe(4n);
  });

  it("appends without a client id are never deduplicated", async () => {
    const { node } = await openStore();
    expect(await node.append(request("", 0n, "same"))).toEqual({ lsn: 2n, duplicate: false });
    expect(await node.append(request("", 0n, "same"))).toEqual({ lsn: 3n, duplicate: false });
    expect(node.wal.lastLsn).toBe(3n);
  });

  it("refuses a seq older than the client's window instead of risking a second copy", async () => {
    const { node } = await openStore({ seqsPerClientMax: 2 });
    for (let seq = 1n; seq <= 3n; seq++) await node.append(request("c", seq));
    const error: unknown = await node.append(request("c", 1n)).catch((e: unknown) => e);
    expect(LpError.is(error) && error.code).toBe(Status.FAILED_PRECONDITION);
    expect(String(error)).toMatch(/older than the dedupe window \(oldest kept 2\)/);
    expect(await node.append(request("c", 2n))).toEqual({ lsn: 3n, duplicate: true });
    expect(node.wal.lastLsn).toBe(4n);
  });

  it("a refused append (invalid) leaves nothing in flight: its corrected retry is appended", async () => {
    const { node } = await openStore();
    const bad: AppendRequest = { ...request("c", 1n), txn: { mutations: [] } };
    await expect(node.append(bad)).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(await node.append(request("c", 1n))).toEqual({ lsn: 2n, duplicate: false });
    expect(node.wal.lastLsn).toBe(2n);
  });

  it("an idempotent append with client_seq 0 is INVALID_ARGUMENT after the transaction's own checks; only RegisterClient registers", async () => {
    const { node } = await openStore();
    await expect(node.append(request("c", 0n))).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT, message: /client_seq must be > 0/ });
    // What a registration entry holds (seq 0, no mutations), sent as an append: refused as an empty transaction.
    await expect(node.append({ ...request("c", 0n), txn: { mutations: [] } })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
      message: /empty/,
    });
    expect(node.wal.lastLsn).toBe(1n);
    const { sessionLsn } = await node.registerClient({ clientId: "c" });
    expect(sessionLsn).toBe(2n);
    expect(await node.append({ ...request("c", 5n), sessionLsn })).toEqual({ lsn: 3n, duplicate: false });
    await expect(node.append(request("c", 5n))).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "SESSION_EXPIRED" });
  });

  it("the table is rebuilt from the WAL on reopen", async () => {
    const first = await openStore();
    for (let seq = 1n; seq <= 5n; seq++) await first.node.append(request("c", seq));
    await closeStore(first);
    const { node } = await openStore();
    // 1 no-op, c/1..c/5 at 2..6, the second start's no-op at 7.
    expect(await node.append(request("c", 4n))).toEqual({ lsn: 5n, duplicate: true });
    expect(await node.append(request("c", 6n))).toEqual({ lsn: 8n, duplicate: false });
    expect(node.wal.lastLsn).toBe(8n);
  });

  it("opens a data directory written before the one-voter Raft: its entries count as committed", async () => {
    // What the single-replica mode left: cluster.json and a WAL of term-1 entries from LSN 1, no raft-state.json.
    await writeClusterMeta(dir, { clusterId: "dedupe-test", shardMap: createShardMap(1), limits: DEFAULT_TRANSACTION_LIMITS });
    const { wal } = await Wal.open(path.join(dir, WAL_DIRECTORY), DEFAULT_WAL_LIMITS, {}, { createIfMissing: true });
    for (let seq = 1n; seq <= 3n; seq++) {
      const entry: LogEntry = { lsn: seq, term: 1n, commitTimeNs: 1n, clientId: "old", clientSeq: seq, txn: request("old", seq).txn };
      await wal.append(entry, encodeEntryPayload(entry));
    }
    await wal.close();
    const { node } = await openStore();
    await expect(fs.access(path.join(dir, RAFT_STATE_FILE))).resolves.toBeUndefined();
    expect(node.commitLsn).toBeGreaterThanOrEqual(3n);
    expect(await node.append(request("old", 2n))).toEqual({ lsn: 2n, duplicate: true });
    // The new term's no-op follows the old entries.
    expect(await node.append(request("old", 4n))).toEqual({ lsn: 5n, duplicate: false });
    expect(node.status()).toMatchObject({ role: "leader", commitLsn: 5n, replicas: [] });
  });
});
