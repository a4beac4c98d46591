import { INSECURE } from "@logplayer/tls";
import { promises as fs } from "node:fs";
import os from "node:os";
import path from "node:path";
import { DEFAULT_APPEND_STREAM_PENDING_MAX } from "./append-stream";
import { DEFAULT_TRANSACTION_LIMITS, silentLogger } from "@logplayer/common";
import { MutationKind, type AppendRequest, type LogEntry } from "@logplayer/proto";
import { DEFAULT_DEDUPE_LIMITS } from "./dedupe-table";
import { DEFAULT_READ_LIMITS } from "./read-session";
import { SNAPSHOT_FILE, readSnapshotFile } from "./snapshot-file";
import { startLogStore, type RunningLogStore } from "./start-logstore";
import { DEFAULT_WAL_LIMITS } from "@logplayer/wal";

// A one-voter LogStore in-process over a real WAL in a temp dir: compactLogTo takes a snapshot and deletes WAL
// segments; a restart loads the snapshot and replays only the log above it, and its dedupe table is whole.
let dir: string;
const running: RunningLogStore[] = [];

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "logstore-snapshot-"));
});

afterEach(async () => {
  for (const store of running.splice(0)) await store.close();
  await fs.rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<RunningLogStore> {
  const store = await startLogStore(
    {
      dataDir: dir,
      listen: "127.0.0.1:0",
      advertise: undefined,
      metricsPort: -1,
      replicaId: "1",
      shardCount: 1,
      clusterId: "snapshot-test",
      walLimits: { ...DEFAULT_WAL_LIMITS, segmentBytesMax: 4096 },
      transactionLimits: DEFAULT_TRANSACTION_LIMITS,
      readLimits: DEFAULT_READ_LIMITS,
      appendStreamPendingMax: DEFAULT_APPEND_STREAM_PENDING_MAX,
      shutdownTimeoutMs: 1000,
      dedupeLimits: DEFAULT_DEDUPE_LIMITS,
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

async function readAll(store: RunningLogStore, fromLsn: bigint, toLsn: bigint): Promise<LogEntry[]> {
  const entries: LogEntry[] = [];
  for (let next = fromLsn; next <= toLsn; ) {
    const batch = await store.node.wal.readRange(next, toLsn, 1 << 24, 10_000);
    if (batch.length === 0) throw new Error(`nothing readable at ${next}`);
    entries.push(...batch);
    next += BigInt(batch.length);
  }
  return entries;
}

function request(clientId: string, clientSeq: bigint, sessionLsn: bigint): AppendRequest {
  return {
    txn: { mutations: [{ kind: MutationKind.MUTATION_KIND_PUT, key: `k-${clientSeq}`, value: Buffer.alloc(300, 7), delta: 0n }] },
    commitTimeNs: 1n,
    clientId,
    clientSeq,
    sessionLsn,
  };
}

describe("log compaction with a snapshot (one voter)", () => {
  it("deletes segments below the snapshot; a restart loads it, keeps the sessions and the log above it", async () => {
    const first = await openStore();
    const { sessionLsn } = await first.node.registerClient({ clientId: "c" });
    const lsns: bigint[] = [];
    for (let seq = 1n; seq <= 60n; seq++) lsns.push((await first.node.append(request("c", seq, sessionLsn))).lsn);
    const segmentsBefore = first.node.wal.segmentCount;
    expect(segmentsBefore).toBeGreaterThan(3);
    const compaction = await first.node.compactLogTo(lsns[40]!);
    expect(compaction.snapshotIndex).toBe(first.node.commitLsn);
    expect(compaction.segmentsDeleted).toBeGreaterThan(0);
    expect(compaction.firstLsn).toBeLessThanOrEqual(lsns[40]! + 1n);
    expect(first.node.wal.firstLsn).toBe(compaction.firstLsn);
    const lastLsn = first.node.wal.lastLsn;
    const kept = await readAll(first, compaction.firstLsn, lastLsn);
    await closeStore(first);
    expect((await readSnapshotFile(dir))?.snapshot.index).toBe(compaction.snapshotIndex);
    await expect(fs.access(path.join(dir, SNAPSHOT_FILE))).resolves.toBeUndefined();

    const second = await openStore();
    expect(second.node.wal.firstLsn).toBe(compaction.firstLsn);
    // The session came back from the snapshot: a retry of an early append (its entry deleted) is still a duplicate.
    expect(await second.node.append(request("c", 3n, sessionLsn))).toEqual({ lsn: lsns[2], duplicate: true });
    expect(await second.node.append(request("c", 60n, sessionLsn))).toEqual({ lsn: lsns[59], duplicate: true });
    const next = await second.node.append(request("c", 61n, sessionLsn));
    expect(next.duplicate).toBe(false);
    expect(await readAll(second, compaction.firstLsn, lastLsn)).toEqual(kept);
    await expect(second.node.wal.readRange(1n, 1n, 1024, 1)).rejects.toMatchObject({ kind: "out-of-range" });
  });
});
