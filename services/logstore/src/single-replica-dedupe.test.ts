import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_APPEND_STREAM_PENDING_MAX } from "./append-stream";
import { createRegistry, createShardMap, DEFAULT_TRANSACTION_LIMITS, LpError, silentLogger, Status } from "@logplayer/common";
import { MutationKind, type AppendRequest } from "@logplayer/proto";
import { rebuildDedupeTable } from "./dedupe-rebuild";
import { DedupeTable, type DedupeLimits } from "./dedupe-table";
import { createLogStoreMetrics } from "./metrics";
import { DEFAULT_READ_LIMITS } from "./read-session";
import { LogStoreNode } from "./server";
import { DEFAULT_WAL_LIMITS, Wal } from "@logplayer/wal";

// The single-replica LogStoreNode over a real WAL in a temp dir: idempotent appends without --peers.
let dir: string;
const open: Wal[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-dedupe-"));
});

afterEach(async () => {
  for (const wal of open.splice(0)) await wal.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function openNode(limits: DedupeLimits = { clientsMax: 10, seqsPerClientMax: 10 }): Promise<{ node: LogStoreNode; wal: Wal; dedupe: DedupeTable }> {
  const { wal } = await Wal.open(dir, DEFAULT_WAL_LIMITS);
  open.push(wal);
  const dedupe = new DedupeTable(limits);
  await rebuildDedupeTable(wal, wal.durableLsn, dedupe);
  const config = {
    meta: { clusterId: "dedupe-test", shardMap: createShardMap(1) },
    replicaId: "1",
    advertiseAddress: () => "127.0.0.1:1",
    transactionLimits: DEFAULT_TRANSACTION_LIMITS,
    readLimits: DEFAULT_READ_LIMITS,
    appendStreamPendingMax: DEFAULT_APPEND_STREAM_PENDING_MAX,
    onFatal: (error: Error) => {
      throw error;
    },
    dedupe,
  };
  const node = new LogStoreNode(wal, config, createLogStoreMetrics(createRegistry("logstore")), silentLogger());
  return { node, wal, dedupe };
}

function request(clientId: string, clientSeq: bigint, key = `k-${clientId}-${clientSeq}`): AppendRequest {
  return { txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_APPEND, key, value: Buffer.from("x"), delta: 0n }] }, commitTimeNs: 1n, clientId, clientSeq };
}

describe("single-replica idempotent appends", () => {
  it("a retry arriving while the original is being fsynced waits for it and gets its LSN", async () => {
    const { node, wal } = await openNode();
    // Both calls start before any fsync completes: the second must find the first in flight.
    const original = node.append(request("c", 1n));
    const retry = node.append(request("c", 1n));
    expect(wal.lastLsn).toBe(1n);
    expect(await original).toEqual({ lsn: 1n, duplicate: false });
    expect(await retry).toEqual({ lsn: 1n, duplicate: true });
    // Once durable, the table answers.
    expect(await node.append(request("c", 1n))).toEqual({ lsn: 1n, duplicate: true });
    expect(await node.append(request("c", 2n))).toEqual({ lsn: 2n, duplicate: false });
    expect(await node.append(request("other", 1n))).toEqual({ lsn: 3n, duplicate: false });
    expect(wal.lastLsn).toBe(3n);
  });

  it("appends without a client id are never deduplicated", async () => {
    const { node, wal } = await openNode();
    expect(await node.append(request("", 0n, "same"))).toEqual({ lsn: 1n, duplicate: false });
    expect(await node.append(request("", 0n, "same"))).toEqual({ lsn: 2n, duplicate: false });
    expect(wal.lastLsn).toBe(2n);
  });

  it("refuses a seq older than the client's window instead of risking a second copy", async () => {
    const { node, wal } = await openNode({ clientsMax: 10, seqsPerClientMax: 2 });
    for (let seq = 1n; seq <= 3n; seq++) await node.append(request("c", seq));
    const error: unknown = await node.append(request("c", 1n)).catch((e: unknown) => e);
    expect(LpError.is(error) && error.code).toBe(Status.FAILED_PRECONDITION);
    expect(String(error)).toMatch(/older than the dedupe window \(oldest kept 2\)/);
    expect(await node.append(request("c", 2n))).toEqual({ lsn: 2n, duplicate: true });
    expect(wal.lastLsn).toBe(3n);
  });

  it("a refused append (invalid) leaves nothing in flight: its corrected retry is appended", async () => {
    const { node, wal } = await openNode();
    const bad: AppendRequest = { ...request("c", 1n), txn: { mutations: [] } };
    await expect(node.append(bad)).rejects.toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(await node.append(request("c", 1n))).toEqual({ lsn: 1n, duplicate: false });
    expect(wal.lastLsn).toBe(1n);
  });

  it("the table is rebuilt from the WAL on reopen", async () => {
    const first = await openNode();
    for (let seq = 1n; seq <= 5n; seq++) await first.node.append(request("c", seq));
    await first.wal.close();
    open.splice(0);
    const { node, wal, dedupe } = await openNode();
    expect(dedupe.clientCount).toBe(1);
    expect(await node.append(request("c", 4n))).toEqual({ lsn: 4n, duplicate: true });
    expect(await node.append(request("c", 6n))).toEqual({ lsn: 6n, duplicate: false });
    expect(wal.lastLsn).toBe(6n);
  });
});
