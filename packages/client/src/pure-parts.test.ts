import { INSECURE } from "@logplayer/tls";
import type { ReplicaStatus, StatusResponse } from "@logplayer/proto";
import { chooseLogStore } from "./leader-choice";
import { clusterProblems, clusterStatusJson, formatClusterStatus, toJson } from "./lpctl-format";
import { compareKeys, mergeScanResults } from "./scan-merge";
import { Backoff, DEFAULT_TRANSACTION_LIMITS, grpcMessageBytesMax } from "@logplayer/common";
import { resolveOptions, withClusterLimits } from "./options";
import { withReadRetry, withRetry, type ReadRetryPolicy } from "./call";
import { isRetryableCommit } from "./client";
import { clientErrorFor, UnavailableError, InvalidArgumentError, DeadlineExceededError } from "./errors";
import { status as Status } from "@grpc/grpc-js";

const item = (key: string): { key: string; value: Buffer } => ({ key, value: Buffer.from(key.toUpperCase()) });

describe("scan merge", () => {
  it("merges per-shard results in key order and cuts at the limit", () => {
    const merged = mergeScanResults([[item("a"), item("d")], [item("b"), item("e")], [item("c")]], 4);
    expect(merged.map((i) => i.key)).toEqual(["a", "b", "c", "d"]);
    expect(merged[0]!.value.toString()).toBe("A");
  });

  it("orders keys by UTF-8 bytes, as SQLite does, not by UTF-16 units", () => {
    // U+FF5E sorts after U+1F600 in UTF-16 (0xFF5E > 0xD83D) but before it in UTF-8 (EF.. < F0..).
    expect(compareKeys("\uff5e", "\u{1f600}")).toBeLessThan(0);
    expect(mergeScanResults([[item("\u{1f600}")], [item("\uff5e")]], 10).map((i) => i.key)).toEqual(["\uff5e", "\u{1f600}"]);
  });

  it("refuses a key served by two shards", () => {
    expect(() => mergeScanResults([[item("a")], [item("a")]], 10)).toThrow(/two shards/);
  });
});

function status(role: string, leaderAddress = ""): StatusResponse {
  return {
    protocolVersion: 1,
    clusterId: "c",
    shardMap: { shardCount: 1, hash: "fnv1a32" },
    firstLsn: 1n,
    lastLsn: 0n,
    commitLsn: 0n,
    role,
    term: 1n,
    leaderAddress,
    replicaId: "r",
    replicas: [],
    limits: undefined,
    shardAddresses: [],
    trimPoint: 0n,
    snapshotLsn: 0n,
    walBytes: 0n,
    voters: [],
    learners: [],
  };
}

describe("chooseLogStore", () => {
  it("prefers the replica that says it is the leader", () => {
    expect(
      chooseLogStore([
        { address: "a:1", status: status("follower") },
        { address: "b:1", status: status("LEADER") },
      ])?.address,
    ).toBe("b:1");
  });
  it("otherwise the configured replica others name as leader, else the first that answered", () => {
    const probes = [
      { address: "a:1", status: status("follower", "c:1") },
      { address: "c:1", status: status("candidate") },
    ];
    expect(chooseLogStore(probes)?.address).toBe("c:1");
    expect(
      chooseLogStore([
        { address: "a:1", status: undefined },
        { address: "b:1", status: status("") },
      ])?.address,
    ).toBe("b:1");
    expect(chooseLogStore([{ address: "a:1", status: undefined }])).toBeNull();
  });
});

describe("withReadRetry", () => {
  const policy = (attemptsMax: number, now: { ms: number }, slept: number[]): ReadRetryPolicy => ({
    backoff: { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2 },
    attemptsMax,
    nowMs: () => now.ms,
    sleepMs: async (ms) => {
      slept.push(ms);
      now.ms += ms;
    },
    random: () => 0.99,
  });
  const down = (): UnavailableError => new UnavailableError(Status.UNAVAILABLE, "down");

  it("retries UNAVAILABLE with growing, capped waits until it succeeds", async () => {
    let calls = 0;
    const slept: number[] = [];
    const result = await withReadRetry(
      async () => {
        if (++calls < 5) throw down();
        return "ok";
      },
      10_000,
      policy(10, { ms: 0 }, slept),
      () => false,
    );
    expect(result).toBe("ok");
    expect(calls).toBe(5);
    expect(slept).toEqual([9, 19, 39, 39]);
  });

  it("gives up with the last error when the next wait would pass the deadline", async () => {
    let calls = 0;
    const slept: number[] = [];
    await expect(
      withReadRetry(
        async () => {
          calls++;
          throw down();
        },
        35,
        policy(100, { ms: 0 }, slept),
        () => false,
      ),
    ).rejects.toThrow(UnavailableError);
    expect(slept).toEqual([9, 19]);
    expect(calls).toBe(3);
  });

  it("stops at attemptsMax and never retries other errors", async () => {
    let calls = 0;
    await expect(
      withReadRetry(
        async () => {
          calls++;
          throw down();
        },
        1e12,
        policy(3, { ms: 0 }, []),
        () => false,
      ),
    ).rejects.toThrow(UnavailableError);
    expect(calls).toBe(3);
    calls = 0;
    const bad = async (): Promise<never> => {
      calls++;
      throw new InvalidArgumentError(Status.INVALID_ARGUMENT, "bad");
    };
    await expect(withReadRetry(bad, 1e12, policy(3, { ms: 0 }, []), () => false)).rejects.toThrow(InvalidArgumentError);
    const late = async (): Promise<never> => {
      calls++;
      throw new DeadlineExceededError(Status.DEADLINE_EXCEEDED, "late");
    };
    await expect(withReadRetry(late, 1e12, policy(3, { ms: 0 }, []), () => false)).rejects.toThrow(DeadlineExceededError);
    expect(calls).toBe(2);
  });

  it("uses the common Backoff so its jitter stays below the cap", () => {
    const backoff = new Backoff({ initialDelayMs: 10, maxDelayMs: 40, multiplier: 2 }, () => 0.5);
    expect([backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs(), backoff.nextDelayMs()]).toEqual([5, 10, 20, 20]);
  });
});

describe("lpctl status formatting", () => {
  const cluster = {
    logStoreAddress: "h:7100",
    logStore: { ...status("leader"), commitLsn: 9n },
    shards: [
      {
        shardId: 0,
        address: "h:7300",
        lag: 2n,
        status: {
          protocolVersion: 1,
          shardId: 0,
          clusterId: "c",
          shardMap: undefined,
          appliedLsn: 7n,
          durableLsn: 6n,
          restorableLsn: 6n,
          partsApplied: 7n,
          partsDuplicate: 0n,
          gaps: 0n,
          deliveryStreams: 1,
          limits: undefined,
          diskFull: "",
          newestBackupLsn: 0n,
          logUnreachable: "",
        },
      },
      { shardId: 1, address: "h:7301", error: new UnavailableError(Status.UNAVAILABLE, "shard 1 at h:7301: refused") },
    ],
  };
  it("prints the LogStore line and one line per shard, errors inline", () => {
    const text = formatClusterStatus(cluster);
    expect(text).toContain("logstore h:7100  role=leader term=1 commit_lsn=9");
    expect(text).toContain("cluster c  shard_map=fnv1a32/1");
    expect(text).toContain("shard 0  h:7300  applied_lsn=7  durable_lsn=6  restorable_lsn=6  lag=2");
    expect(text).toContain("shard 1  h:7301  error UNAVAILABLE: shard 1 at h:7301: refused");
  });
  it("prints each replica with only what the answering replica knows", () => {
    const replica = (replicaId: string, role: string, lsns: Partial<ReplicaStatus> = {}): ReplicaStatus => ({
      replicaId,
      address: `h:${replicaId}`,
      role,
      term: 0n,
      lastLsn: 0n,
      commitLsn: 0n,
      matchLsn: 0n,
      lag: 0n,
      ...lsns,
    });
    const fromLeader = formatClusterStatus({
      ...cluster,
      logStore: {
        ...status("leader"),
        replicaId: "2",
        commitLsn: 9n,
        replicas: [
          replica("1", "follower", { term: 3n, lastLsn: 8n, matchLsn: 8n, lag: 1n }),
          replica("2", "leader", { term: 3n, lastLsn: 9n, commitLsn: 9n, matchLsn: 9n }),
        ],
      },
    });
    expect(fromLeader).toContain("  replica 1 h:1  role=follower match_lsn=8 lag=1\n");
    expect(fromLeader).toContain("  replica 2 h:2  role=leader term=3 last_lsn=9 commit_lsn=9  (answering)\n");
    const fromFollower = formatClusterStatus({
      ...cluster,
      logStore: {
        ...status("follower"),
        replicaId: "1",
        commitLsn: 9n,
        replicas: [
          replica("1", "follower", { term: 3n, lastLsn: 9n, commitLsn: 9n, matchLsn: 9n }),
          replica("2", "leader"),
          replica("3", "unknown"),
        ],
      },
    });
    expect(fromFollower).toContain("  replica 1 h:1  role=follower term=3 last_lsn=9 commit_lsn=9  (answering)\n");
    expect(fromFollower).toContain("  replica 2 h:2  role=leader\n");
    expect(fromFollower).toContain("  replica 3 h:3  role=unknown\n");
    expect(fromFollower).not.toContain("commit_lsn=0");
  });
  it("a shard ahead of the leader's commit LSN is a problem; ahead of a follower's (which may lag) only a warning", () => {
    const shard0 = cluster.shards[0]!;
    const ahead = { ...cluster, shards: [{ ...shard0, status: { ...shard0.status!, appliedLsn: 12n } }] };
    const message = "shard 0 at h:7300 has applied LSN 12, ahead of the log's commit LSN 9: the log lost entries the shard applied";
    expect(clusterProblems(ahead)).toEqual([message]);
    expect(formatClusterStatus(ahead)).toContain("WARNING: has applied LSN 12, ahead of the log's commit LSN 9");
    expect(clusterProblems(cluster).filter((p) => p.includes("ahead"))).toEqual([]);
    const fromFollower = { ...ahead, logStore: { ...status("follower", "h:7101"), commitLsn: 9n } };
    expect(clusterProblems(fromFollower)).toEqual([]);
  });
  it("shows the cluster's limits, and warns of a shard whose disk is full or whose limits differ", () => {
    const shard0 = cluster.shards[0]!;
    const troubled = {
      ...cluster,
      logStore: { ...cluster.logStore, limits: DEFAULT_TRANSACTION_LIMITS },
      shards: [
        {
          ...shard0,
          status: { ...shard0.status!, diskFull: "disk full: no space left", limits: { ...DEFAULT_TRANSACTION_LIMITS, mutationsMax: 5 } },
        },
      ],
    };
    const text = formatClusterStatus(troubled);
    expect(text).toContain("limits: entry-bytes-max 1048576, mutations-max 1000, key-bytes-max 512, value-bytes-max 262144");
    expect(text).toContain("WARNING: disk full: no space left");
    expect(text).toContain("WARNING: recorded other limits (entry-bytes-max 1048576, mutations-max 5,");
    expect(clusterProblems(troubled)).toEqual([
      "shard 0 at h:7300 disk full: no space left",
      expect.stringMatching(/^shard 0 at h:7300 recorded other limits/),
    ]);
    expect(clusterProblems(cluster)).toEqual(["shard 1 at h:7301 does not answer (UNAVAILABLE)"]);
  });
  it("shows each shard's newest backup LSN, and warns of a shard the log no longer reaches", () => {
    const shard0 = cluster.shards[0]!;
    const reason = "shard 0 has applied_lsn 0 but the log starts at LSN 9 (entries 1..8 were trimmed): ...";
    const stranded = { ...cluster, shards: [{ ...shard0, status: { ...shard0.status!, newestBackupLsn: 5n, logUnreachable: reason } }] };
    const text = formatClusterStatus(stranded);
    expect(text).toContain("lag=2  newest_backup_lsn=5");
    expect(text).toContain(`WARNING: ${reason}`);
    expect(clusterProblems(stranded)).toEqual([`shard 0 at h:7300 ${reason}`]);
  });
  it("prints JSON with LSNs as strings", () => {
    const json = JSON.parse(toJson(clusterStatusJson(cluster))) as {
      logStore: { commitLsn: string };
      shards: { lag?: string; error?: { code: string } }[];
    };
    expect(json.logStore.commitLsn).toBe("9");
    expect(json.shards[0]!.lag).toBe("2");
    expect(json.shards[1]!.error?.code).toBe("UNAVAILABLE");
  });
});

describe("commit retry policy", () => {
  it("retries UNAVAILABLE, DEADLINE_EXCEEDED and not-leader refusals, nothing else", () => {
    const retryable = (code: Status, leaderAddress?: string): boolean =>
      isRetryableCommit(clientErrorFor(code, "x", leaderAddress === undefined ? {} : { leaderAddress }));
    expect(retryable(Status.UNAVAILABLE)).toBe(true);
    expect(retryable(Status.DEADLINE_EXCEEDED)).toBe(true);
    expect(retryable(Status.UNAVAILABLE, "h:1")).toBe(true);
    expect(retryable(Status.FAILED_PRECONDITION, "h:1")).toBe(true);
    for (const code of [
      Status.INVALID_ARGUMENT,
      Status.RESOURCE_EXHAUSTED,
      Status.FAILED_PRECONDITION,
      Status.CANCELLED,
      Status.INTERNAL,
    ]) {
      expect({ code, retryable: retryable(code) }).toEqual({ code, retryable: false });
    }
  });

  it("a 'now' decision retries without waiting; 'backoff' waits; neither starts past the deadline", async () => {
    const now = { ms: 0 };
    const slept: number[] = [];
    const policy: ReadRetryPolicy = {
      backoff: { initialDelayMs: 10, maxDelayMs: 40, multiplier: 2 },
      attemptsMax: 100,
      nowMs: () => now.ms,
      sleepMs: async (ms) => {
        slept.push(ms);
        now.ms += ms;
      },
      random: () => 0.99,
    };
    const decisions = ["now", "backoff", "now", "backoff"] as const;
    let calls = 0;
    const started: number[] = [];
    const result = await withRetry(
      async () => {
        started.push(now.ms);
        if (++calls <= decisions.length) throw new UnavailableError(Status.UNAVAILABLE, "down");
        return calls;
      },
      1_000,
      policy,
      () => decisions[calls - 1]!,
      () => false,
    );
    expect(result).toBe(5);
    expect(slept).toEqual([9, 19]);
    expect(started).toEqual([0, 0, 9, 9, 28]);
    now.ms = 0;
    started.splice(0);
    await expect(
      withRetry(
        async () => {
          started.push(now.ms);
          now.ms += 30;
          throw new UnavailableError(Status.UNAVAILABLE, "slow");
        },
        100,
        policy,
        () => "backoff",
        () => false,
      ),
    ).rejects.toThrow(UnavailableError);
    // Attempts start at 0, 30+9 and 69+19; the next wait (39) would end past 100, so the loop gives up.
    expect(started).toEqual([0, 39, 88]);
  });
});

describe("withClusterLimits", () => {
  // Plain text: no certificate to look up for options resolved without a cluster.
  const addresses = { logstore: "h:7100", shards: ["h:7300"], security: INSECURE };
  const cluster = { ...DEFAULT_TRANSACTION_LIMITS, valueBytesMax: 4 * 1024 * 1024 };

  it("takes the cluster's limits and derives the message cap from them, so the largest value can be read", () => {
    const resolved = withClusterLimits(resolveOptions(addresses), addresses, cluster);
    expect(resolved.limits).toEqual(cluster);
    expect(resolved.messageBytesMax).toBe(grpcMessageBytesMax(cluster));
    expect(resolved.messageBytesMax).toBeGreaterThan(cluster.valueBytesMax + cluster.keyBytesMax);
  });

  it("keeps what the caller gave, and the defaults for a LogStore that reports no limits", () => {
    const given = { ...addresses, limits: DEFAULT_TRANSACTION_LIMITS };
    expect(withClusterLimits(resolveOptions(given), given, cluster).limits).toBe(DEFAULT_TRANSACTION_LIMITS);
    const capped = { ...addresses, messageBytesMax: 8 * 1024 * 1024 };
    expect(withClusterLimits(resolveOptions(capped), capped, cluster).messageBytesMax).toBe(8 * 1024 * 1024);
    const resolved = resolveOptions(addresses);
    expect(withClusterLimits(resolved, addresses, null)).toBe(resolved);
  });
});
