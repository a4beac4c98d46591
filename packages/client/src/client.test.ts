import { INSECURE } from "@logplayer/tls";
import { waitFor } from "@logplayer/testing";
import { status as Status } from "@grpc/grpc-js";
import { failedPrecondition, invalidArgument, LpError, resourceExhausted, unavailable } from "@logplayer/common";
import { MutationKind } from "@logplayer/proto";
import { LogPlayerClient } from "./client";
import {
  CancelledError,
  DeadlineExceededError,
  FailedPreconditionError,
  InvalidArgumentError,
  LimitExceededError,
  NotLeaderError,
  SessionExpiredError,
  UnavailableError,
} from "./errors";
import { FakeLogStore, startFakeCluster, startLogStore, startShard, type FakeCluster } from "./fake-cluster.fixture";
import { mutation } from "./mutations";
import type { ClientOptions } from "./options";

const FAST_RETRY = {
  readBackoff: { initialDelayMs: 5, maxDelayMs: 50, multiplier: 2 },
  commitBackoff: { initialDelayMs: 5, maxDelayMs: 50, multiplier: 2 },
};
const FAST_COMMIT = { timeoutMs: 3_000 };

describe("LogPlayerClient against fake services", () => {
  let cluster: FakeCluster;
  let client: LogPlayerClient;
  const extra: { close(): void }[] = [];

  const options = (overrides: Partial<ClientOptions> = {}): ClientOptions => ({
    logstore: cluster.logStore.address,
    shards: cluster.shardAddresses,
    timeoutMs: 3_000,
    // The fake cluster serves plain text.
    security: INSECURE,
    ...FAST_RETRY,
    ...overrides,
  });

  beforeEach(async () => {
    cluster = await startFakeCluster(3);
    client = await LogPlayerClient.connect(options({ clientId: "test-client" }));
  });

  afterEach(() => {
    client.close();
    for (const thing of extra.splice(0)) thing.close();
    cluster.close();
  });

  it("connect reads the cluster id and shard map from the LogStore", () => {
    expect(client.clusterId).toBe("fake-cluster");
    expect(client.shardMap).toEqual({ shardCount: 3, hash: "fnv1a32" });
    expect(client.shardForKey("a")).toBeGreaterThanOrEqual(0);
  });

  it("commit sends one transaction with client id, increasing seq and commit time, and returns its LSN", async () => {
    const first = await client.commit([mutation.put("a", "1"), mutation.add("b", 5), mutation.append("c", "x"), mutation.delete("d")]);
    const second = await client.commit([mutation.put("a", "2")], { commitTimeNs: 1234n });
    expect(first.lsn).toBe(1n);
    expect(second.lsn).toBe(2n);
    const [a1, a2] = cluster.logStore.appends;
    expect(a1!.txn!.mutations.map((m) => m.kind)).toEqual([
      MutationKind.MUTATION_KIND_PUT,
      MutationKind.MUTATION_KIND_ADD,
      MutationKind.MUTATION_KIND_APPEND,
      MutationKind.MUTATION_KIND_DELETE,
    ]);
    expect([a1!.clientId, a1!.clientSeq, a2!.clientSeq]).toEqual(["test-client", 1n, 2n]);
    expect(a1!.commitTimeNs).toBeGreaterThan(0n);
    expect(a2!.commitTimeNs).toBe(1234n);
  });

  it("get with minLsn passes min_lsn to the key's shard and reads the write", async () => {
    const { lsn } = await client.commit([mutation.put("user:1", "alice")]);
    const result = await client.get("user:1", { minLsn: lsn });
    expect(result).toEqual({ found: true, value: Buffer.from("alice"), appliedLsn: lsn });
    const shard = cluster.shards[client.shardForKey("user:1")]!;
    expect(shard.gets.map((g) => [g.key, g.minLsn])).toEqual([["user:1", lsn]]);
    for (const other of cluster.shards) if (other !== shard) expect(other.gets).toHaveLength(0);
    const missing = await client.get("nobody");
    expect(missing.found).toBe(false);
    expect(missing.value.length).toBe(0);
  });

  it("checks keys and transactions before sending", async () => {
    await expect(client.get("")).rejects.toThrow(InvalidArgumentError);
    await expect(client.commit([mutation.put("bad\nkey", "v")])).rejects.toThrow(InvalidArgumentError);
    await expect(client.commit([])).rejects.toThrow(InvalidArgumentError);
    await expect(client.commit([mutation.put("k".repeat(600), "v")])).rejects.toThrow(/key_bytes_max/);
    await expect(client.commit([mutation.put("big", Buffer.alloc(300 * 1024))])).rejects.toThrow(LimitExceededError);
    expect(cluster.logStore.appends).toHaveLength(0);
    expect(cluster.shards.every((s) => s.gets.length === 0)).toBe(true);
  });

  it("a call the server never answers ends with DeadlineExceededError; a commit's one attempt gets the whole deadline", async () => {
    cluster.logStore.appendFaults.push("hang", "hang");
    await expect(client.commit([mutation.put("a", "1")], { timeoutMs: 300 })).rejects.toThrow(DeadlineExceededError);
    expect(cluster.logStore.appendFaults).toHaveLength(1);
    const shard = cluster.shards[client.shardForKey("a")]!;
    shard.readFaults.push("hang");
    await expect(client.get("a", { timeoutMs: 300 })).rejects.toThrow(DeadlineExceededError);
  });

  it("retries a read that fails with UNAVAILABLE", async () => {
    await client.commit([mutation.put("r", "v")]);
    const shard = cluster.shards[client.shardForKey("r")]!;
    shard.readFaults.push(unavailable("restarting"), unavailable("restarting"));
    const result = await client.get("r");
    expect(result.value.toString()).toBe("v");
    expect(shard.gets).toHaveLength(3);
  });

  it("a commit whose answer was lost is retried with the same seq and returns the original LSN", async () => {
    // The fake applies the first attempt, then fails it with UNAVAILABLE; the retry finds it and answers duplicate.
    cluster.logStore.appendFaults.push({ applyThenFail: unavailable("connection reset") });
    const result = await client.commit([mutation.add("counter", 1)], FAST_COMMIT);
    expect(result).toEqual({ lsn: 1n, duplicate: true });
    expect(cluster.logStore.appends.map((a) => [a.clientId, a.clientSeq])).toEqual([
      ["test-client", 1n],
      ["test-client", 1n],
    ]);
    expect(cluster.logStore.commitLsn).toBe(1n);
    expect((await client.get("counter", { minLsn: result.lsn })).value.toString()).toBe("1");
    // The next logical commit takes the next seq.
    expect(await client.commit([mutation.add("counter", 1)])).toEqual({ lsn: 2n, duplicate: false });
    expect(cluster.logStore.appends[2]!.clientSeq).toBe(2n);
  });

  it("retries a commit on DEADLINE_EXCEEDED and on a not-leader refusal without a leader named", async () => {
    cluster.logStore.appendFaults.push(new LpError(Status.DEADLINE_EXCEEDED, "server gave up"), unavailable("not the leader"));
    expect(await client.commit([mutation.put("a", "1")], FAST_COMMIT)).toEqual({ lsn: 1n, duplicate: false });
    expect(cluster.logStore.appendFaults).toHaveLength(0);
  });

  it("keeps retrying a commit only within its deadline, and at most commitAttemptsMax times", async () => {
    // Attempts are not the limit here: only the deadline can end this commit.
    const patient = await LogPlayerClient.connect(options({ commitAttemptsMax: 10_000 }));
    extra.push(patient);
    for (let i = 0; i < 10_000; i++) cluster.logStore.appendFaults.push(unavailable("down"));
    // The last refusal, or the deadline itself when it runs out during an attempt (a busy machine).
    const failure: unknown = await patient.commit([mutation.put("a", "1")], { timeoutMs: 300 }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(UnavailableError.is(failure) || DeadlineExceededError.is(failure)).toBe(true);
    const attempts = 10_000 - cluster.logStore.appendFaults.length;
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(10_000);
    const capped = await LogPlayerClient.connect(options({ ...FAST_COMMIT, commitAttemptsMax: 3, timeoutMs: 60_000 }));
    extra.push(capped);
    cluster.logStore.appendFaults.splice(0, cluster.logStore.appendFaults.length, ...Array.from({ length: 10 }, () => unavailable("down")));
    await expect(capped.commit([mutation.put("a", "1")])).rejects.toThrow(UnavailableError);
    expect(cluster.logStore.appendFaults).toHaveLength(7);
    expect(cluster.logStore.appends).toHaveLength(0);
  });

  it("does not retry a read failing with another code, nor a commit refused with INVALID_ARGUMENT, RESOURCE_EXHAUSTED or FAILED_PRECONDITION", async () => {
    const shard = cluster.shards[client.shardForKey("r")]!;
    shard.readFaults.push(failedPrecondition("wrong cluster"));
    await expect(client.get("r")).rejects.toThrow(FailedPreconditionError);
    expect(shard.gets).toHaveLength(1);
    // Had any been retried, the next attempt (no fault left) would have succeeded.
    cluster.logStore.appendFaults.push(resourceExhausted("queue full"));
    await expect(client.commit([mutation.add("n", 1)], FAST_COMMIT)).rejects.toThrow(LimitExceededError);
    cluster.logStore.appendFaults.push(invalidArgument("bad mutation"));
    await expect(client.commit([mutation.add("n", 1)], FAST_COMMIT)).rejects.toThrow(InvalidArgumentError);
    cluster.logStore.appendFaults.push(failedPrecondition("client_seq 1 is older than the dedupe window"));
    await expect(client.commit([mutation.add("n", 1)], FAST_COMMIT)).rejects.toThrow(FailedPreconditionError);
    expect(cluster.logStore.appends).toHaveLength(0);
  });

  it("NotLeaderError carries the leader's address when it is not a configured one (after the attempts run out)", async () => {
    const limited = await LogPlayerClient.connect(options({ ...FAST_COMMIT, commitAttemptsMax: 2 }));
    extra.push(limited);
    cluster.logStore.appendFaults.push(unavailable("not the leader", "10.9.9.9:7100"), unavailable("not the leader", "10.9.9.9:7100"));
    const error: unknown = await limited.commit([mutation.put("a", "1")]).catch((e: unknown) => e);
    expect(NotLeaderError.is(error)).toBe(true);
    expect((error as NotLeaderError).leaderAddress).toBe("10.9.9.9:7100");
    expect((error as NotLeaderError).code).toBe(Status.UNAVAILABLE);
    expect(cluster.logStore.appendFaults).toHaveLength(0);
  });

  it("follows a NotLeaderError to another configured LogStore, keeping the client seq", async () => {
    const leader = new FakeLogStore(3, cluster.shards);
    await startLogStore(leader);
    extra.push({ close: () => leader.server?.forceShutdown() });
    // The stale replica still believes it leads when the client connects, then refuses the append.
    const redirected = await LogPlayerClient.connect(options({ logstore: [cluster.logStore.address, leader.address], clientId: "r" }));
    extra.push(redirected);
    leader.role = "follower";
    cluster.logStore.appendFaults.push(unavailable("not the leader", leader.address));
    const { lsn } = await redirected.commit([mutation.put("a", "1")]);
    expect(lsn).toBe(1n);
    expect(leader.appends.map((a) => [a.clientId, a.clientSeq])).toEqual([["r", 1n]]);
    expect(redirected.logStoreAddress).toBe(leader.address);
    await redirected.commit([mutation.put("a", "2")]);
    expect(leader.appends).toHaveLength(2);
  });

  it("an UNAVAILABLE append is retried, same seq, on the replica that leads now", async () => {
    const next = new FakeLogStore(3, cluster.shards);
    await startLogStore(next);
    extra.push({ close: () => next.server?.forceShutdown() });
    next.role = "follower";
    const failover = await LogPlayerClient.connect(
      options({ ...FAST_COMMIT, logstore: [cluster.logStore.address, next.address], clientId: "f" }),
    );
    extra.push(failover);
    expect(failover.logStoreAddress).toBe(cluster.logStore.address);
    cluster.logStore.role = "follower";
    next.role = "leader";
    // The old leader wrote the append but lost its answer; the new one has it (the log is replicated) and says duplicate.
    cluster.logStore.appendFaults.push({ applyThenFail: unavailable("stepping down") });
    next.append({ txn: { mutations: [] }, commitTimeNs: 0n, clientId: "f", clientSeq: 1n, sessionLsn: 0n });
    next.appends.splice(0);
    const result = await failover.commit([mutation.add("n", 1)]);
    expect(result).toEqual({ lsn: 1n, duplicate: true });
    expect(failover.logStoreAddress).toBe(next.address);
    expect(cluster.logStore.appends.map((a) => a.clientSeq)).toEqual([1n]);
    expect(next.appends.map((a) => [a.clientId, a.clientSeq])).toEqual([["f", 1n]]);
  });

  it("connect picks the replica that says it is the leader", async () => {
    const leader = new FakeLogStore(3, cluster.shards);
    await startLogStore(leader);
    extra.push({ close: () => leader.server?.forceShutdown() });
    cluster.logStore.role = "follower";
    const picked = await LogPlayerClient.connect(options({ logstore: [cluster.logStore.address, leader.address] }));
    extra.push(picked);
    expect(picked.logStoreAddress).toBe(leader.address);
  });

  it("connect refuses a shard list that does not match the shard map, or another protocol version", async () => {
    await expect(LogPlayerClient.connect(options({ shards: cluster.shardAddresses.slice(0, 2) }))).rejects.toThrow(FailedPreconditionError);
    await expect(LogPlayerClient.connect(options({ shards: cluster.shardAddresses.slice(0, 2) }))).rejects.toThrow(
      /fnv1a32\/3\) has 3 shards but 2/,
    );
    cluster.logStore.protocolVersion = 99;
    await expect(LogPlayerClient.connect(options())).rejects.toThrow(/protocol version 99/);
    await expect(LogPlayerClient.connect(options({ shards: ["nohostport"] }))).rejects.toThrow(InvalidArgumentError);
  });

  it("connect({ seeds }) learns the replicas and the shards, in shard-id order, from one replica's Status", async () => {
    const follower = new FakeLogStore(3, cluster.shards);
    follower.role = "follower";
    await startLogStore(follower);
    extra.push({ close: () => follower.server?.forceShutdown() });
    const replicas = [cluster.logStore.address, follower.address].map((address, i) => ({
      replicaId: String(i + 1),
      address,
      role: i === 0 ? "leader" : "follower",
      term: 1n,
      lastLsn: 0n,
      commitLsn: 0n,
      matchLsn: 0n,
      lag: 0n,
    }));
    for (const store of [cluster.logStore, follower]) {
      store.replicas = replicas;
      store.shardAddresses = [...cluster.shardAddresses];
    }
    const { logstore: _l, shards: _s, ...rest } = options();
    const discovered = await LogPlayerClient.connect({ ...rest, seeds: [follower.address] });
    extra.push(discovered);
    expect(discovered.logStoreAddress).toBe(cluster.logStore.address);
    const { lsn } = await discovered.commit([mutation.put("seed:a", "1"), mutation.put("seed:b", "2"), mutation.put("seed:c", "3")]);
    for (const key of ["seed:a", "seed:b", "seed:c"]) {
      expect((await discovered.get(key, { minLsn: lsn })).found).toBe(true);
      expect(cluster.shards[discovered.shardForKey(key)]!.gets.some((g) => g.key === key)).toBe(true);
    }
    // A LogStore that reports no shard addresses cannot be discovered from; seeds and logstore together are refused.
    follower.shardAddresses = [];
    cluster.logStore.shardAddresses = [];
    await expect(LogPlayerClient.connect({ ...rest, seeds: [follower.address] })).rejects.toThrow(/--shard-addresses/);
    await expect(LogPlayerClient.connect({ ...options(), seeds: [follower.address] })).rejects.toThrow(InvalidArgumentError);
  });

  it("scan pages through every shard and merges in key order up to the limit", async () => {
    const keys = ["p:03", "p:01", "p:07", "p:05", "p:02", "p:06", "p:04", "q:1"];
    const { lsn } = await client.commit(keys.map((k) => mutation.put(k, `v${k}`)));
    const all = await client.scan("p:", { minLsn: lsn });
    expect(all.items.map((i) => i.key)).toEqual(["p:01", "p:02", "p:03", "p:04", "p:05", "p:06", "p:07"]);
    expect(all.items[0]!.value.toString()).toBe("vp:01");
    expect(all.appliedLsn).toBe(lsn);
    for (const shard of cluster.shards) expect(shard.scans.every((s) => s.minLsn === lsn && s.prefix === "p:")).toBe(true);
    // The fake serves 2 items per page, so some shard needed a second page starting after its last key.
    expect(cluster.shards.some((s) => s.scans.some((r) => r.startAfter !== ""))).toBe(true);
    const limited = await client.scan("p:", { limit: 3 });
    expect(limited.items.map((i) => i.key)).toEqual(["p:01", "p:02", "p:03"]);
    await expect(client.scan("p:", { limit: 0 })).rejects.toThrow(InvalidArgumentError);
  });

  it("scanIterator walks every key under the prefix in key order, a page per shard at a time, and resumes after a cursor", async () => {
    const keys = Array.from({ length: 25 }, (_, i) => `it:${String(i).padStart(2, "0")}`);
    const { lsn } = await client.commit([...keys.map((k) => mutation.put(k, k)), mutation.put("iu:0", "x")]);
    const walked: string[] = [];
    for await (const item of client.scanIterator("it:", { minLsn: lsn, pageSize: 3 })) walked.push(item.key);
    expect(walked).toEqual(keys);
    // Lazily: stopping after 4 items leaves most pages unread.
    const scansBefore = cluster.shards.reduce((n, shard) => n + shard.scans.length, 0);
    const firstFour: string[] = [];
    for await (const item of client.scanIterator("it:", { pageSize: 2 })) {
      firstFour.push(item.key);
      if (firstFour.length === 4) break;
    }
    expect(firstFour).toEqual(keys.slice(0, 4));
    expect(cluster.shards.reduce((n, shard) => n + shard.scans.length, 0) - scansBefore).toBeLessThan(8);
    const resumed: string[] = [];
    for await (const item of client.scanIterator("it:", { startAfter: firstFour[3]! })) resumed.push(item.key);
    expect(resumed).toEqual(keys.slice(4));
  });

  it("an AbortSignal ends a waiting read, a waiting commit and connect with CancelledError", async () => {
    const aborted = AbortSignal.abort(new Error("stop"));
    await expect(client.get("a", { signal: aborted })).rejects.toThrow(/aborted by the caller's signal \(stop\)/);
    const gets = cluster.shards.reduce((n, shard) => n + shard.gets.length, 0);
    expect(gets).toBe(0);
    for (const shard of cluster.shards) shard.readFaults.push("hang");
    const stopGet = new AbortController();
    const get = client.get("a", { signal: stopGet.signal, timeoutMs: 60_000 }).catch((err: unknown) => err);
    await waitFor("the get to reach its shard", () => cluster.shards.some((shard) => shard.gets.length > 0), { timeoutMs: 5_000 });
    stopGet.abort();
    expect(CancelledError.is(await get)).toBe(true);
    cluster.logStore.appendFaults.push("hang");
    const stopCommit = new AbortController();
    const commit = client.commit([mutation.put("a", "1")], { signal: stopCommit.signal, timeoutMs: 60_000 }).catch((err: unknown) => err);
    await waitFor("the append to reach the LogStore", () => cluster.logStore.appendFaults.length === 0, { timeoutMs: 5_000 });
    stopCommit.abort();
    const error = await commit;
    expect(CancelledError.is(error)).toBe(true);
    expect((error as Error).message).toMatch(/outcome is unknown/);
    await expect(LogPlayerClient.connect(options(), { signal: aborted })).rejects.toThrow(CancelledError);
    await expect(client.scanIterator("", { signal: aborted }).next()).rejects.toThrow(CancelledError);
  });

  it("clusterStatus reports a dead shard's error without throwing, and lag for the others", async () => {
    await client.commit([mutation.put("a", "1")]);
    cluster.shards[0]!.appliedLsn = 0n;
    cluster.shards[2]!.server!.forceShutdown();
    const status = await client.clusterStatus();
    expect(status.logStore.commitLsn).toBe(1n);
    expect(status.logStoreAddress).toBe(cluster.logStore.address);
    expect(status.shards.map((s) => s.lag)).toEqual([1n, 0n, undefined]);
    expect(UnavailableError.is(status.shards[2]!.error)).toBe(true);
    expect(status.shards[2]!.address).toBe(cluster.shardAddresses[2]);
  });

  it("clusterStatus gives no lag, rather than a negative one, when the LogStore's commit LSN is behind a shard", async () => {
    await client.commit([mutation.put("a", "1")]);
    // As a restarted replica answers before it hears from a leader.
    cluster.logStore.commitLsn = 0n;
    const status = await client.clusterStatus();
    expect(status.shards.map((s) => s.status?.appliedLsn)).toEqual([1n, 1n, 1n]);
    expect(status.shards.map((s) => s.lag)).toEqual([undefined, undefined, undefined]);
  });

  it("readLog hands out every committed entry once, in order, across a broken stream and a replica that repeats", async () => {
    const replica = new FakeLogStore(3, cluster.shards);
    replica.entries = cluster.logStore.entries;
    cluster.logStore.mirrors.push(replica);
    replica.role = "follower";
    replica.readRepeat = 2;
    await startLogStore(replica);
    extra.push({ close: () => replica.server?.forceShutdown() });
    for (let i = 1; i <= 6; i++) await client.commit([mutation.put(`k${i}`, String(i))]);
    const reader = await LogPlayerClient.connect(options({ logstore: [cluster.logStore.address, replica.address] }));
    extra.push(reader);
    // The first replica breaks after 2 entries; the second resumes at LSN 3 but starts 2 entries early.
    cluster.logStore.readFailAfter.push(2);
    const lsns: bigint[] = [];
    const keys: string[] = [];
    for await (const record of reader.readLog({ fromLsn: 1n, toLsn: 8n })) {
      lsns.push(record.lsn);
      keys.push(...record.mutations.map((m) => m.key));
      // Entries committed while the read is under way arrive too.
      if (record.lsn === 6n) await client.commit([mutation.put("k7", "7"), mutation.put("other", "x")]);
      if (record.lsn === 7n) await client.commit([mutation.put("k8", "8")]);
    }
    expect(lsns).toEqual([1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n]);
    expect(keys).toEqual(["k1", "k2", "k3", "k4", "k5", "k6", "k7", "other", "k8"]);
    expect(cluster.logStore.reads.map((r) => r.fromLsn)).toEqual([1n]);
    expect(replica.reads.map((r) => r.fromLsn)).toEqual([3n]);
  });

  it("watch yields only mutations under the prefix, resumes from an LSN, and ends with CancelledError on abort", async () => {
    await client.commit([mutation.put("w:a", "1"), mutation.put("x:a", "1")]);
    await client.commit([mutation.put("x:b", "2")]);
    await client.commit([mutation.add("w:n", 3), mutation.delete("w:a")]);
    const events: { lsn: bigint; keys: string[] }[] = [];
    for await (const event of client.watch("w:", { fromLsn: 1n, toLsn: 3n })) {
      events.push({ lsn: event.lsn, keys: event.mutations.map((m) => m.key) });
    }
    expect(events).toEqual([
      { lsn: 1n, keys: ["w:a"] },
      { lsn: 3n, keys: ["w:n", "w:a"] },
    ]);
    const resumed: bigint[] = [];
    for await (const event of client.watch("w:", { fromLsn: 2n, toLsn: 3n })) resumed.push(event.lsn);
    expect(resumed).toEqual([3n]);
    // Without fromLsn: only what commits from now on; the abort ends the wait for more.
    const stop = new AbortController();
    const seen: bigint[] = [];
    const watching = (async (): Promise<unknown> => {
      for await (const event of client.watch("w:", { signal: stop.signal })) {
        seen.push(event.lsn);
        stop.abort();
      }
      return "ended without an error";
    })().catch((err: unknown) => err);
    await waitFor("the third Read call", () => cluster.logStore.reads.length === 3, { timeoutMs: 5_000 });
    await client.commit([mutation.put("w:z", "z")]);
    expect(CancelledError.is(await watching)).toBe(true);
    expect(seen).toEqual([4n]);
  });

  it("members lists each replica as it answers for itself, and one that does not answer as down", async () => {
    const down = new FakeLogStore(3, cluster.shards);
    await startLogStore(down);
    const downAddress = down.address;
    down.server!.forceShutdown();
    const leaderStatus = cluster.logStore.status.bind(cluster.logStore);
    cluster.logStore.status = () => ({
      ...leaderStatus(),
      replicaId: "1",
      replicas: [
        { replicaId: "1", address: cluster.logStore.address, role: "leader", term: 1n, lastLsn: 0n, commitLsn: 0n, matchLsn: 0n, lag: 0n },
        { replicaId: "2", address: downAddress, role: "follower", term: 1n, lastLsn: 0n, commitLsn: 0n, matchLsn: 0n, lag: 4n },
      ],
    });
    const members = await client.members();
    expect(members.map((m) => [m.replicaId, m.self?.role, m.lag])).toEqual([
      ["1", "leader", undefined],
      ["2", undefined, 4n],
    ]);
    expect(UnavailableError.is(members[1]!.error)).toBe(true);
    expect((await client.clusterStatus()).members?.map((m) => m.self === undefined)).toEqual([false, true]);
  });

  it("status and deliveryStats reach the right shard; a reset is passed through", async () => {
    expect((await client.shardStatus(1)).shardId).toBe(1);
    expect((await client.logStoreStatus()).role).toBe("leader");
    const stats = await client.deliveryStats(2, { reset: true });
    expect(stats.parts).toBe(7n);
    expect(cluster.shards[2]!.statsResets).toEqual([true]);
    await expect(client.shardStatus(3)).rejects.toThrow(InvalidArgumentError);
  });

  it("rides through a shard restart: a get issued while it is down completes when it is back", async () => {
    await client.commit([mutation.put("k", "kept")]);
    const shard = cluster.shards[client.shardForKey("k")]!;
    const port = shard.port;
    await new Promise<void>((resolve) => shard.server!.tryShutdown(() => resolve()));
    const pending = client.get("k", { timeoutMs: 10_000 });
    await startShard(shard, port);
    expect((await pending).value.toString()).toBe("kept");
  });

  it("a closed client refuses calls", async () => {
    client.close();
    await expect(client.get("a")).rejects.toThrow(CancelledError);
    client.close();
  });
});

describe("LogPlayerClient sessions (a fake LogStore with RegisterClient)", () => {
  let cluster: FakeCluster;
  let client: LogPlayerClient;

  beforeEach(async () => {
    cluster = await startFakeCluster(3);
    cluster.logStore.sessions = true;
    client = await LogPlayerClient.connect({
      logstore: cluster.logStore.address,
      shards: cluster.shardAddresses,
      timeoutMs: 3_000,
      clientId: "s-client",
      // The fake cluster serves plain text.
      security: INSECURE,
      ...FAST_RETRY,
    });
  });

  afterEach(() => {
    client.close();
    cluster.close();
  });

  it("registers once before its first commit and sends every append in that session", async () => {
    expect(client.sessionLsn).toBeUndefined();
    await Promise.all([client.commit([mutation.put("a", "1")]), client.commit([mutation.put("b", "2")])]);
    expect(cluster.logStore.registrations).toEqual(["s-client"]);
    expect(client.sessionLsn).toBe(1n);
    expect(cluster.logStore.appends.map((a) => a.sessionLsn)).toEqual([1n, 1n]);
  });

  it("a first attempt refused SESSION_EXPIRED appended nothing: the commit registers again and is sent in the new session", async () => {
    await client.commit([mutation.put("a", "1")]);
    cluster.logStore.liveSessions.delete("s-client"); // evicted by other clients
    const result = await client.commit([mutation.append("log", "x")]);
    expect(result).toEqual({ lsn: 4n, duplicate: false });
    expect(cluster.logStore.registrations).toEqual(["s-client", "s-client"]);
    expect(client.sessionLsn).toBe(3n);
    expect(cluster.shards[client.shardForKey("log")]!.data.get("log")?.toString()).toBe("x");
  });

  it("SESSION_EXPIRED after an attempt that may have landed: SessionExpiredError, outcome unknown, and lookupAppend finds it", async () => {
    await client.commit([mutation.put("a", "1")]);
    // Seq 2 is applied, then its session ends and its answer is lost: the retry is refused.
    cluster.logStore.afterAppend = (request) => {
      if (request.clientSeq === 2n) cluster.logStore.liveSessions.delete(request.clientId);
    };
    cluster.logStore.appendFaults.push({ applyThenFail: unavailable("answer lost") });
    const error: unknown = await client.commit([mutation.append("log", "x")], FAST_COMMIT).catch((e: unknown) => e);
    expect(SessionExpiredError.is(error)).toBe(true);
    const expired = error as SessionExpiredError;
    expect(expired.code).toBe(Status.FAILED_PRECONDITION);
    expect(expired.append).toEqual({ clientId: "s-client", clientSeq: 2n, sessionLsn: 1n });
    expect(expired.message).toMatch(/outcome of this commit is unknown/);
    expect(expired.message).toMatch(/lpctl lookup s-client 2 --session-lsn 1/);
    expect(FailedPreconditionError.is(error)).toBe(false);
    expect(await client.lookupAppend(expired.append)).toEqual({ state: "committed", lsn: 3n });
    expect(await client.lookupAppend({ clientSeq: 9n })).toEqual({ state: "not-appended", scannedToLsn: 3n });
    // The next commit opens a new session.
    expect((await client.commit([mutation.put("b", "2")])).lsn).toBe(5n);
    expect(client.sessionLsn).toBe(4n);
  });

  it("a LogStore without RegisterClient gets appends without registration (session 0)", async () => {
    cluster.logStore.sessions = false;
    expect((await client.commit([mutation.put("a", "1")])).lsn).toBe(1n);
    expect(client.sessionLsn).toBe(0n);
    expect(cluster.logStore.appends[0]!.sessionLsn).toBe(0n);
  });
});
