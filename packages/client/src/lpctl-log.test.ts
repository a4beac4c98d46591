import { status as Status } from "@grpc/grpc-js";
import { MutationKind, type ShardStatusResponse, type StatusResponse } from "@logplayer/proto";
import type { ClusterStatus, MemberReport } from "./client";
import { UnavailableError } from "./errors";
import { LogGapError, LsnCursor, toLogRecord, watchEventOf } from "./log-cursor";
import { clusterProblems, formatLogRecord, formatMembers, formatWatchLines, membersJson } from "./lpctl-format";
import { mutation } from "./mutations";

describe("LsnCursor", () => {
  it("accepts the next LSN, drops repeats, refuses a gap", () => {
    const cursor = new LsnCursor(3n);
    expect(cursor.accept({ lsn: 2n })).toBe(false);
    expect(cursor.accept({ lsn: 3n })).toBe(true);
    expect(cursor.accept({ lsn: 3n })).toBe(false);
    expect(cursor.next).toBe(4n);
    expect(() => cursor.accept({ lsn: 6n })).toThrow(LogGapError);
    expect(cursor.next).toBe(4n);
  });
  it("starts at LSN 1 when asked for 0", () => {
    expect(new LsnCursor(0n).next).toBe(1n);
  });
});

const entry = (lsn: bigint, mutations = [mutation.put("w:a", "1"), mutation.add("x:n", -3)]) =>
  toLogRecord({ lsn, term: 2n, txn: { mutations }, commitTimeNs: 5n, clientId: "app", clientSeq: 9n });

describe("watch filtering", () => {
  it("keeps only mutations under the prefix, and nothing for an entry without any", () => {
    expect(watchEventOf(entry(4n), "w:")?.mutations.map((m) => m.key)).toEqual(["w:a"]);
    expect(watchEventOf(entry(4n), "y:")).toBeUndefined();
    expect(
      watchEventOf(toLogRecord({ lsn: 1n, term: 1n, txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n }), ""),
    ).toBeUndefined();
  });
});

describe("lpctl tail and watch lines", () => {
  it("prints one line per entry with its writer and quoted keys and values", () => {
    expect(formatLogRecord(entry(4n), false, false)).toBe('lsn=4 term=2 client=app seq=9  put "w:a" "1"; add "x:n" -3\n');
    const registration = toLogRecord({ lsn: 1n, term: 1n, txn: undefined, commitTimeNs: 0n, clientId: "", clientSeq: 0n });
    expect(formatLogRecord(registration, false, false)).toBe("lsn=1 term=1  (no mutations)\n");
    const multiline = entry(5n, [mutation.put("k", "a\nb"), mutation.delete("d")]);
    expect(formatLogRecord(multiline, false, false)).toBe('lsn=5 term=2 client=app seq=9  put "k" "a\\nb"; delete "d"\n');
    expect(formatLogRecord(multiline, true, false)).toContain('put "k" 610a62');
  });
  it("prints JSON lines with LSNs as strings", () => {
    const line = formatLogRecord(entry(4n), false, true);
    expect(line.endsWith("\n")).toBe(true);
    expect(JSON.parse(line)).toEqual({
      lsn: "4",
      term: "2",
      commitTimeNs: "5",
      clientId: "app",
      clientSeq: "9",
      mutations: [
        { kind: "put", key: "w:a", value: "1" },
        { kind: "add", key: "x:n", delta: "-3" },
      ],
    });
  });
  it("prints one watch line per mutation, prefixed by the LSN", () => {
    const m = [mutation.put("w:a", "1"), mutation.delete("w:b")];
    expect(formatWatchLines(7n, m, false, false)).toBe('lsn=7  put "w:a" "1"\nlsn=7  delete "w:b"\n');
    expect(formatWatchLines(7n, m, false, true).split("\n")[1]).toBe('{"lsn":"7","kind":"delete","key":"w:b"}');
    expect(m[1]!.kind).toBe(MutationKind.MUTATION_KIND_DELETE);
  });
});

const members: MemberReport[] = [
  { replicaId: "1", address: "h:1", self: { role: "leader", term: 3n, lastLsn: 10n, commitLsn: 10n, leaderAddress: "h:1" } },
  {
    replicaId: "2",
    address: "h:2",
    self: { role: "follower", term: 3n, lastLsn: 8n, commitLsn: 8n, leaderAddress: "h:1" },
    matchLsn: 8n,
    lag: 2n,
  },
  { replicaId: "3", address: "h:3", error: new UnavailableError(Status.UNAVAILABLE, "LogStore at h:3: connection refused") },
];

describe("lpctl members", () => {
  it("prints each replica's own view, the leader's match and lag for a follower, and a down one", () => {
    expect(formatMembers(members)).toBe(
      "replica 1  h:1  role=leader  term=3  last_lsn=10  commit_lsn=10\n" +
        "replica 2  h:2  role=follower  term=3  last_lsn=8  commit_lsn=8  match_lsn=8  lag=2\n" +
        "replica 3  h:3  down (UNAVAILABLE: LogStore at h:3: connection refused)\n",
    );
    const json = membersJson(members);
    expect(json.map((m) => m["up"])).toEqual([true, true, false]);
    expect(json[1]).toMatchObject({ role: "follower", matchLsn: 8n, lag: 2n });
  });
});

describe("lpctl status verdict", () => {
  const logStore = { role: "leader", leaderAddress: "h:1", commitLsn: 20n, clusterId: "c", limits: undefined } as StatusResponse;
  const shard = (deliveryStreams: number, appliedLsn: bigint) =>
    ({
      shardId: 0,
      clusterId: "c",
      appliedLsn,
      deliveryStreams,
      limits: undefined,
      diskFull: "",
      logUnreachable: "",
    }) as ShardStatusResponse;
  const cluster = (over: Partial<ClusterStatus>): ClusterStatus => ({
    logStoreAddress: "h:1",
    logStore,
    shards: [{ shardId: 0, address: "h:7300", status: shard(1, 20n), lag: 0n }],
    ...over,
  });
  it("is healthy with every replica up and every shard caught up", () => {
    expect(clusterProblems(cluster({ members: members.slice(0, 2) }), { lagMax: 0n })).toEqual([]);
  });
  it("names a replica that does not answer", () => {
    expect(clusterProblems(cluster({ members }))).toEqual(["logstore replica 3 at h:3 does not answer (UNAVAILABLE)"]);
  });
  it("names a shard behind by more than lagMax, and one behind with no delivery stream", () => {
    const behind = cluster({ shards: [{ shardId: 0, address: "h:7300", status: shard(1, 15n), lag: 5n }] });
    expect(clusterProblems(behind, { lagMax: 10n })).toEqual([]);
    expect(clusterProblems(behind, { lagMax: 4n })).toEqual(["shard 0 at h:7300 is 5 entries behind the log's commit LSN (more than 4)"]);
    const stuck = cluster({ shards: [{ shardId: 0, address: "h:7300", status: shard(0, 15n), lag: 5n }] });
    expect(clusterProblems(stuck)).toEqual(["shard 0 at h:7300 has no delivery stream open and is behind"]);
    const idle = cluster({ shards: [{ shardId: 0, address: "h:7300", status: shard(0, 20n), lag: 0n }] });
    expect(clusterProblems(idle)).toEqual([]);
  });
});
