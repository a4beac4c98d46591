import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import type { LogPlayerClient } from "@logplayer/client";
import { DEFAULT_TRANSACTION_LIMITS, grpcChannelOptions, grpcMessageBytesMax } from "@logplayer/common";
import { LogStoreClient, MutationKind, PROTOCOL_VERSION, type ReadResponse } from "@logplayer/proto";
import type { LoggedTxn, Violation } from "./checker";

/**
 * The adapters that gather the final state once faults have stopped: wait
 * for delivery to catch up, read every key, read the whole log.
 */

const STATUS_TIMEOUT_MS = 2_000;
const CATCH_UP_POLL_MS = 200;

export interface CatchUp {
  /** The LogStore's commit LSN every shard reached; undefined when they did not in time. */
  commitLsn: bigint | undefined;
  violation?: Violation;
}

/**
 * Waits (bounded) until the LogStore has nothing un-committed in hand and
 * every shard has applied its commit LSN. Appends whose client gave up may
 * still become durable after the workload stops, so the commit LSN is only
 * trusted once last == commit.
 */
export async function waitForCatchUp(client: LogPlayerClient, timeoutMs: number): Promise<CatchUp> {
  const deadlineMs = Date.now() + timeoutMs;
  let lastSeen = "no status yet";
  for (;;) {
    try {
      const status = await client.clusterStatus({ timeoutMs: STATUS_TIMEOUT_MS });
      const { commitLsn, lastLsn } = status.logStore;
      const behind = status.shards.filter((s) => s.status === undefined || s.status.appliedLsn < commitLsn);
      const shards = status.shards
        .map((s) => `shard-${s.shardId} ${s.status === undefined ? `down (${s.error?.message ?? "?"})` : `applied ${s.status.appliedLsn}`}`)
        .join(", ");
      lastSeen = `commit ${commitLsn}, last ${lastLsn}; ${shards}`;
      if (lastLsn === commitLsn && behind.length === 0) return { commitLsn };
    } catch (err: unknown) {
      lastSeen = `status failed: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() >= deadlineMs) {
      return {
        commitLsn: undefined,
        violation: { kind: "no-catch-up", detail: `delivery did not catch up within ${timeoutMs} ms: ${lastSeen}` },
      };
    }
    await new Promise((resolve) => setTimeout(resolve, CATCH_UP_POLL_MS));
  }
}

/** Every key's value read with minLsn (missing keys as ""). */
export async function readFinalValues(
  client: LogPlayerClient,
  keys: readonly string[],
  minLsn: bigint,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  for (const key of keys) {
    const read = await client.get(key, { minLsn, timeoutMs });
    values.set(key, read.found ? read.value.toString("utf8") : "");
  }
  return values;
}

/** The log [1, toLsn] from the LogStore at `address`, as APPEND mutations per entry. */
export async function readLog(address: string, toLsn: bigint, timeoutMs: number, security: TransportSecurity): Promise<LoggedTxn[]> {
  const log: LoggedTxn[] = [];
  if (toLsn === 0n) return log;
  const messageBytesMax = grpcMessageBytesMax(DEFAULT_TRANSACTION_LIMITS) * 4;
  const client = new LogStoreClient(address, channelCredentialsFor(security), grpcChannelOptions(messageBytesMax));
  try {
    const call = client.read(
      { protocolVersion: PROTOCOL_VERSION, fromLsn: 1n, toLsn, readerId: "chaos-checker" },
      { deadline: Date.now() + timeoutMs },
    );
    for await (const response of call as AsyncIterable<ReadResponse>) {
      for (const entry of response.entries) {
        const appends = (entry.txn?.mutations ?? [])
          .filter((m) => m.kind === MutationKind.MUTATION_KIND_APPEND)
          .map((m) => ({ key: m.key, value: Buffer.from(m.value).toString("utf8") }));
        log.push({ lsn: entry.lsn, appends });
      }
    }
  } finally {
    client.close();
  }
  const last = log[log.length - 1];
  if (last?.lsn !== toLsn || BigInt(log.length) !== toLsn) {
    throw new Error(`log read returned ${log.length} entries ending at ${last?.lsn ?? 0n}, expected 1..${toLsn}`);
  }
  return log;
}
