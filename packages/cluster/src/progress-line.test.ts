import type { ClusterStatus } from "@logplayer/client";
import { commitRate, formatProgressLine } from "./progress-line";

// Only the fields the progress line reads; the rest of the proto messages do not matter here.
// Lag as LogPlayerClient.clusterStatus computes it: unknown when the commit LSN is behind the shard.
function status(commitLsn: bigint, applied: Array<bigint | undefined>): ClusterStatus {
  return {
    logStoreAddress: "127.0.0.1:7100",
    logStore: { commitLsn, leaderAddress: "127.0.0.1:7100" },
    shards: applied.map((appliedLsn, shardId) =>
      appliedLsn === undefined
        ? { shardId, address: `127.0.0.1:${7300 + shardId}`, error: { codeName: "UNAVAILABLE" } }
        : {
            shardId,
            address: `127.0.0.1:${7300 + shardId}`,
            status: { appliedLsn },
            lag: commitLsn >= appliedLsn ? commitLsn - appliedLsn : undefined,
          },
    ),
  } as unknown as ClusterStatus;
}

describe("formatProgressLine", () => {
  it("shows the leader, the replicas that answer and the commit rate", () => {
    const replicated = {
      ...status(300n, [300n]),
      members: [
        { replicaId: "1", address: "a", self: { role: "leader" } },
        { replicaId: "2", address: "b", error: { codeName: "UNAVAILABLE" } },
        { replicaId: "3", address: "c", self: { role: "follower" } },
      ],
    } as unknown as ClusterStatus;
    const line = formatProgressLine({ status: replicated, statusError: undefined, dead: [], commitRate: 998.6 }, 500);
    expect(line).toBe("leader 127.0.0.1:7100 | replicas 2/3 up (replica 2 down) | commit 300 (999/s) | shard-0 300 lag 0");
  });

  it("says so when no leader is known", () => {
    const leaderless = { ...status(7n, [7n]), logStore: { commitLsn: 7n, leaderAddress: "" } } as unknown as ClusterStatus;
    expect(formatProgressLine({ status: leaderless, statusError: undefined, dead: [] }, 500)).toBe(
      "no leader | commit 7 | shard-0 7 lag 0",
    );
  });

  it("computes the commit rate from two readings, and none without a usable pair", () => {
    expect(commitRate({ commitLsn: 100n, atMs: 1_000 }, { commitLsn: 600n, atMs: 1_500 })).toBe(1000);
    expect(commitRate(undefined, { commitLsn: 600n, atMs: 1_500 })).toBeUndefined();
    expect(commitRate({ commitLsn: 600n, atMs: 1_500 }, { commitLsn: 600n, atMs: 1_500 })).toBeUndefined();
    expect(commitRate({ commitLsn: 700n, atMs: 1_000 }, { commitLsn: 600n, atMs: 1_500 })).toBeUndefined();
  });

  it("shows the commit LSN and every shard's applied LSN and lag", () => {
    const line = formatProgressLine({ status: status(120n, [120n, 117n, 0n]), statusError: undefined, dead: [] }, 500);
    expect(line).toBe("leader 127.0.0.1:7100 | commit 120 | shard-0 120 lag 0 | shard-1 117 lag 3 | shard-2 0 lag 120");
  });

  it("shows no negative lag while the answering replica does not know the commit LSN yet", () => {
    const line = formatProgressLine({ status: status(0n, [2n, 2n]), statusError: undefined, dead: [] }, 500);
    expect(line).toBe("leader 127.0.0.1:7100 | commit 0 | shard-0 2 lag ? | shard-1 2 lag ?");
  });

  it("names a dead process and the log to read, and a shard that does not answer", () => {
    const line = formatProgressLine(
      {
        status: status(5n, [5n, undefined]),
        statusError: undefined,
        dead: [{ name: "shard-1", exit: "exit code 1", logFile: "data/logs/shard-1.log" }],
      },
      500,
    );
    expect(line).toBe(
      "leader 127.0.0.1:7100 | commit 5 | shard-0 5 lag 0 | shard-1 down (UNAVAILABLE) | !! shard-1 died (exit code 1), see data/logs/shard-1.log",
    );
  });

  it("says when the LogStore cannot be read, on one line, cut to the terminal width", () => {
    const line = formatProgressLine({ status: undefined, statusError: "deadline exceeded\nstack...", dead: [] }, 500);
    expect(line).toBe("logstore unreachable: deadline exceeded");
    const cut = formatProgressLine({ status: status(1n, [1n, 1n, 1n]), statusError: undefined, dead: [] }, 20);
    expect(cut).toHaveLength(20);
    expect(cut.endsWith("…")).toBe(true);
  });
});
