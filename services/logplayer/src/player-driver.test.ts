import { EventEmitter } from "node:events";
import { createShardMap, DEFAULT_TRANSACTION_LIMITS, silentLogger } from "@logplayer/common";
import { DEFAULT_DELIVERY_LIMITS } from "@logplayer/delivery";
import { MutationKind, type DeliverRequest, type DeliverResponse, type ReadRequest, type ReadResponse } from "@logplayer/proto";
import { LogStorePool } from "./fetcher";
import { PlayerDriver } from "./player-driver";
import type { DeliverCall, PlayerClock, ReadCall } from "./ports";

/**
 * The driver on fake ports, with a hand-driven clock: it opens what the core
 * asks, forwards what arrives, and keeps exactly one timer, for the core's
 * next deadline. (The gRPC path is covered by logplayer.adapter.test.ts.)
 */

class FakeDeliverCall extends EventEmitter implements DeliverCall {
  readonly written: DeliverRequest[] = [];
  cancelled = false;
  write(request: DeliverRequest, written: () => void): boolean {
    this.written.push(request);
    queueMicrotask(written);
    return true;
  }
  cancel(): void {
    this.cancelled = true;
  }
  reply(response: DeliverResponse): void {
    this.emit("data", response);
  }
}

class FakeReadCall extends EventEmitter implements ReadCall {
  cancelled = false;
  constructor(
    readonly request: ReadRequest,
    /** The LogStore replica it was opened on. */
    readonly replica = 0,
  ) {
    super();
  }
  cancel(): void {
    this.cancelled = true;
  }
}

class ManualClock implements PlayerClock {
  now = 0;
  readonly timers: { atMs: number; fire: () => void; cleared: boolean }[] = [];
  nowMs(): number {
    return this.now;
  }
  nowNs(): bigint {
    return BigInt(this.now) * 1_000_000n;
  }
  setTimer(delayMs: number, fire: () => void): unknown {
    const timer = { atMs: this.now + delayMs, fire, cleared: false };
    this.timers.push(timer);
    return timer;
  }
  clearTimer(timer: unknown): void {
    (timer as { cleared: boolean }).cleared = true;
  }
  armed(): { atMs: number; fire: () => void; cleared: boolean }[] {
    return this.timers.filter((t) => !t.cleared);
  }
  /** Moves to the earliest armed timer and fires it. */
  fireNext(): void {
    const next = this.armed().sort((a, b) => a.atMs - b.atMs)[0];
    if (next === undefined) throw new Error("no timer armed");
    next.cleared = true;
    this.now = Math.max(this.now, next.atMs);
    next.fire();
  }
}

const SHARDS = 2;
const shardMap = createShardMap(SHARDS);

interface SetUp {
  driver: PlayerDriver;
  clock: ManualClock;
  calls: FakeDeliverCall[][];
  reads: FakeReadCall[];
  /** Commit-LSN checks the driver asked for, answered by the test. */
  commitChecks: ((commitLsn: bigint | null) => void)[];
}

/** `replicas` LogStore replicas, at addresses ls-0, ls-1, ...; every Read call is recorded with its replica. */
function setUp(replicas = 1): SetUp {
  const clock = new ManualClock();
  const calls: FakeDeliverCall[][] = Array.from({ length: SHARDS }, () => []);
  const reads: FakeReadCall[] = [];
  const shards = calls.map((list, target) => ({
    address: `shard-${target}`,
    connector: {
      deliver: (): DeliverCall => {
        const call = new FakeDeliverCall();
        list.push(call);
        return call;
      },
      close: () => undefined,
    },
  }));
  const reader = (replica: number) => ({
    read: (request: ReadRequest): ReadCall => {
      const call = new FakeReadCall(request, replica);
      reads.push(call);
      return call;
    },
    close: () => undefined,
  });
  const config = {
    clusterId: "c",
    shardMap,
    playerId: "p",
    limits: DEFAULT_DELIVERY_LIMITS,
    transactionLimits: DEFAULT_TRANSACTION_LIMITS,
    recoveryStreamsMax: 2,
    ackTimeoutMs: 1000,
    backoff: { initialDelayMs: 10, maxDelayMs: 100, multiplier: 2 },
    startWaitMs: 50,
    random: () => 0.5,
  };
  const logstore = new LogStorePool(
    Array.from({ length: replicas }, (_, replica) => ({ address: `ls-${replica}`, client: reader(replica) })),
  );
  const commitChecks: ((commitLsn: bigint | null) => void)[] = [];
  const commitLsn = { commitLsn: (done: (commitLsn: bigint | null) => void) => void commitChecks.push(done) };
  const driver = new PlayerDriver(config, { shards, logstore, commitLsn, clock }, silentLogger());
  return { driver, clock, calls, reads, commitChecks };
}

function hello(shardId: number, appliedLsn: bigint): DeliverResponse {
  return { body: { $case: "hello", value: { shardId, appliedLsn } } };
}

test("opens every stream, starts the main stream at min(applied) + 1, and keeps one timer for the core's deadline", () => {
  const { driver, clock, calls, reads } = setUp();
  driver.start(10n);
  expect(calls.map((list) => list.length)).toEqual([1, 1]);
  expect(calls[0]![0]!.written[0]?.body?.$case).toBe("hello");
  expect(clock.armed().map((t) => t.atMs)).toEqual([1000]); // HelloReplies due
  calls[0]![0]!.reply(hello(0, 4n));
  calls[1]![0]!.reply(hello(1, 2n));
  expect(reads.map((r) => [r.request.fromLsn, r.request.toLsn])).toEqual([[3n, 0n]]);
  expect(clock.armed()).toEqual([]); // nothing waits on time any more
  driver.close();
});

test("a silent shard: the core's ack deadline fires through the timer, the call is cancelled and reopened after the backoff", () => {
  const { driver, clock, calls, reads } = setUp();
  driver.start();
  calls[0]![0]!.reply(hello(0, 0n));
  calls[1]![0]!.reply(hello(1, 0n));
  const main = reads[0]!;
  const mutations = [0, 1, 2, 3].map((i) => ({ kind: MutationKind.MUTATION_KIND_PUT, key: `k${i}`, value: Buffer.from("v"), delta: 0n }));
  const entry = { lsn: 1n, term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
  const response: ReadResponse = { entries: [entry], commitLsn: 1n, leaderAddress: "", fromLeader: true };
  clock.now = 10;
  main.emit("data", response);
  const sentTo = calls.map((list) => list[0]!.written.filter((w) => w.body?.$case === "batch").length);
  expect(sentTo.reduce((a, b) => a + b)).toBeGreaterThan(0);
  expect(clock.armed().map((t) => t.atMs)).toEqual([1010]);
  clock.fireNext(); // no Ack: every stream with a batch unacked is abandoned
  const abandoned = calls.map((list) => list[0]!.cancelled);
  expect(abandoned).toEqual(sentTo.map((n) => n > 0));
  clock.fireNext(); // the reconnect backoff
  expect(calls.map((list) => list.length)).toEqual(sentTo.map((n) => (n > 0 ? 2 : 1)));
  driver.close();
});

test("hello and batches carry the known commit LSN; a shard ahead of the log is checked through the port, then stopped", () => {
  const { driver, calls, reads, commitChecks } = setUp();
  driver.start(3n);
  const helloOf = (call: FakeDeliverCall) => (call.written[0]?.body?.$case === "hello" ? call.written[0].body.value : null);
  expect(calls.map((list) => helloOf(list[0]!)?.commitLsn)).toEqual([3n, 3n]);
  calls[0]![0]!.reply(hello(0, 5n)); // ahead of what the LogStore said at start
  calls[1]![0]!.reply(hello(1, 3n));
  expect(commitChecks).toHaveLength(1);
  expect(driver.core.targets[0]?.state).toBe("A");
  const main = reads[0]!;
  const mutations = [0, 1, 2, 3].map((i) => ({ kind: MutationKind.MUTATION_KIND_PUT, key: `k${i}`, value: Buffer.from("v"), delta: 0n }));
  const entry = { lsn: 4n, term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
  main.emit("data", { entries: [entry], commitLsn: 4n, leaderAddress: "", fromLeader: true } satisfies ReadResponse);
  const batches = (call: FakeDeliverCall) => call.written.flatMap((w) => (w.body?.$case === "batch" ? [w.body.value] : []));
  expect(batches(calls[0]![0]!)).toEqual([]);
  expect(batches(calls[1]![0]!).map((b) => [b.commitLsn, b.parts.map((p) => p.lsn)])).toEqual([[4n, [4n]]]);
  commitChecks.shift()!(4n);
  expect(driver.core.targets[0]?.aheadOfLog).toBeNull(); // one check is not enough
  driver.close();
});

test("the main stream starts on the leader Status named, and moves to a new leader a Read response names", () => {
  const { driver, calls, reads } = setUp(3);
  driver.start(0n, "ls-2");
  calls[0]![0]!.reply(hello(0, 0n));
  calls[1]![0]!.reply(hello(1, 0n));
  expect(reads.map((r) => r.replica)).toEqual([2]);
  const mutations = [0, 1, 2, 3].map((i) => ({ kind: MutationKind.MUTATION_KIND_PUT, key: `k${i}`, value: Buffer.from("v"), delta: 0n }));
  const entry = (lsn: bigint) => ({ lsn, term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n });
  reads[0]!.emit("data", { entries: [entry(1n)], commitLsn: 1n, leaderAddress: "ls-2", fromLeader: true } satisfies ReadResponse);
  expect(reads).toHaveLength(1);
  // Replica 2 lost the lead to replica 1: the call ends, a new one reads from replica 1 where the old one stopped.
  reads[0]!.emit("data", { entries: [entry(2n)], commitLsn: 2n, leaderAddress: "ls-1", fromLeader: false } satisfies ReadResponse);
  expect(reads[0]!.cancelled).toBe(true);
  expect(reads.slice(1).map((r) => [r.replica, r.request.fromLsn, r.request.toLsn])).toEqual([[1, 3n, 0n]]);
  expect(driver.core.dispatcher.currentIndex).toBe(2n);
  // An address that is not one of --logstore names no leader: nothing moves.
  reads[1]!.emit("data", { entries: [entry(3n)], commitLsn: 3n, leaderAddress: "elsewhere:1", fromLeader: false } satisfies ReadResponse);
  expect(reads).toHaveLength(2);
  expect(driver.core.counters.mainStreamMoves).toBe(1);
  driver.close();
});
