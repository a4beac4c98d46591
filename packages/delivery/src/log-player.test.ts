import { createShardMap, shardForKey } from "@logplayer/base";
import { MutationKind, type LogEntry } from "@logplayer/proto";
import { DEFAULT_DELIVERY_LIMITS } from "./delivery-limits";
import { AHEAD_CHECKS_TO_CONFIRM, LogPlayer, type LogPlayerConfig, type PlayerCommand } from "./log-player";

const SHARDS = 2;
const shardMap = createShardMap(SHARDS);
const KEY_FOR_SHARD = [0, 1].map((shard) => {
  for (let i = 0; i < 1000; i++) if (shardForKey(`k${i}`, shardMap) === shard) return `k${i}`;
  throw new Error(`no key for shard ${shard}`);
});

/** The LogStore's commit LSN when the core starts: above every applied LSN the tests' shards report. */
const COMMIT_AT_START = 1000n;

function config(overrides: Partial<LogPlayerConfig> = {}): LogPlayerConfig {
  return {
    shardMap,
    limits: { ...DEFAULT_DELIVERY_LIMITS, recoveryReadEntriesMax: 100 },
    startWaitMs: 100,
    ackTimeoutMs: 1000,
    recoveryStreamsMax: 2,
    backoff: { initialDelayMs: 10, maxDelayMs: 5000, multiplier: 2 },
    random: () => 0.5,
    ...overrides,
  };
}

/** Entry `lsn` touching every shard. */
function entry(lsn: number): LogEntry {
  const mutations = KEY_FOR_SHARD.map((key) => ({ kind: MutationKind.MUTATION_KIND_PUT, key, value: Buffer.from("v"), delta: 0n }));
  return { lsn: BigInt(lsn), term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n };
}

function entries(from: number, to: number): LogEntry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));
}

function kinds(commands: readonly PlayerCommand[]): string[] {
  return commands.map((c) => c.kind);
}

function only<K extends PlayerCommand["kind"]>(commands: readonly PlayerCommand[], kind: K): Extract<PlayerCommand, { kind: K }>[] {
  return commands.filter((c): c is Extract<PlayerCommand, { kind: K }> => c.kind === kind);
}

/** A started core with every shard connected at `applied` and the main stream open. */
function runningCore(applied: readonly bigint[], overrides: Partial<LogPlayerConfig> = {}): { core: LogPlayer; terms: number[] } {
  const core = new LogPlayer(config(overrides));
  core.start(0, COMMIT_AT_START);
  expect(kinds(core.takeCommands())).toEqual(["openStream", "openStream"]);
  const terms = applied.map((lsn, target) => core.connected(target, lsn, 0));
  core.takeCommands();
  expect(core.mainStreamOpen).toBe(true);
  return { core, terms };
}

/** At `nowMs` the target's stream breaks; the core reopens it within its backoff ceiling and the shard answers with `applied`. */
function reconnect(core: LogPlayer, target: number, applied: bigint, nowMs: number): void {
  const queue = core.targets[target]!;
  if (queue.state !== "S") core.disconnected(target, queue.streamTerm, false, nowMs);
  const openAtMs = nowMs + config().backoff.maxDelayMs;
  core.tick(openAtMs);
  expect(only(core.takeCommands(), "openStream")).toEqual([{ kind: "openStream", target, commitLsn: core.dispatcher.commitLsnKnown }]);
  core.connected(target, applied, openAtMs);
}

describe("LogPlayer core: main stream", () => {
  const running = runningCore;
  test("starts at min(applied) + 1 once every shard answered", () => {
    const core = new LogPlayer(config());
    core.start(0, COMMIT_AT_START);
    core.takeCommands();
    core.connected(0, 7n, 1);
    expect(core.takeCommands()).toEqual([]);
    core.connected(1, 4n, 2);
    expect(only(core.takeCommands(), "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 5n, resumed: false, replica: 0 }]);
  });

  test("starts startWaitMs after the first HelloReply when a shard stays silent", () => {
    const core = new LogPlayer(config());
    core.start(0, COMMIT_AT_START);
    core.takeCommands();
    core.connected(0, 3n, 10);
    expect(core.nextDeadlineMs()).toBe(110);
    core.tick(109);
    expect(only(core.takeCommands(), "openMainStream")).toEqual([]);
    core.tick(110);
    expect(only(core.takeCommands(), "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 4n, resumed: false, replica: 0 }]);
  });

  test("skips re-sent entries and dispatches only the new ones", () => {
    const { core } = running([2n, 2n]);
    core.mainEntries(entries(1, 4), 4n, 0n, 1);
    expect(core.dispatcher.currentIndex).toBe(4n);
    const sent = only(core.takeCommands(), "send");
    expect(sent.map((s) => s.parts.map((p) => p.lsn))).toEqual([
      [3n, 4n],
      [3n, 4n],
    ]);
    expect(kinds(core.takeCommands())).toEqual([]);
  });

  test("progress held back by progressIntervalMs is a deadline, and the tick that reaches it sends it", () => {
    const limits = { ...DEFAULT_DELIVERY_LIMITS, recoveryReadEntriesMax: 100, progressIntervalMs: 5 };
    const { core, terms } = running([0n, 0n], { limits });
    const toShardZero = (lsn: number): LogEntry => ({ ...entry(lsn), txn: { mutations: entry(lsn).txn!.mutations.slice(0, 1) } });
    core.mainEntries([toShardZero(1)], 1n, 0n, 10);
    expect(only(core.takeCommands(), "send").map((s) => [s.target, s.parts.map((p) => p.lsn)])).toEqual([
      [0, [1n]],
      [1, [1n]],
    ]);
    for (const target of [0, 1]) {
      core.writeCompleted(target, terms[target]!, 11);
      core.ack(target, terms[target]!, 1n, 11);
    }
    core.mainEntries([toShardZero(2)], 2n, 0n, 12);
    expect(only(core.takeCommands(), "send").map((s) => s.target)).toEqual([0]);
    expect(core.nextDeadlineMs()).toBe(15);
    core.tick(15);
    const progress = only(core.takeCommands(), "send");
    expect(progress.map((s) => [s.target, s.parts.map((p) => [p.lsn, p.prevLsn, p.mutations.length])])).toEqual([[1, [[2n, 1n, 0]]]]);
  });

  test("a jump closes the main stream and resumes it at currentIndex + 1 after a backoff", () => {
    const { core } = running([0n, 0n]);
    core.mainEntries([entry(1), entry(2), entry(4)], 4n, 0n, 50);
    expect(core.dispatcher.currentIndex).toBe(2n);
    const [close] = only(core.takeCommands(), "closeMainStream");
    expect(close?.reason).toMatch(/jumped from 2 to 4/);
    expect(core.mainStreamOpen).toBe(false);
    core.mainEntries([entry(3)], 4n, 0n, 51); // a late message of the closed stream
    expect(core.dispatcher.currentIndex).toBe(2n);
    const resumeAt = 50 + close!.resumeInMs;
    expect(core.nextDeadlineMs()).toBe(resumeAt);
    core.tick(resumeAt);
    expect(only(core.takeCommands(), "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 3n, resumed: true, replica: 0 }]);
  });

  test("a failed main stream resumes; a second failure report for it changes nothing", () => {
    const { core } = running([0n, 0n]);
    core.mainStreamFailed("LogStore ended the tailing read", 5);
    core.mainStreamFailed("again", 6);
    expect(only(core.takeCommands(), "closeMainStream")).toHaveLength(1);
  });
});

describe("LogPlayer core: the main stream reads from the leader", () => {
  const MOVE_INTERVAL_MS = 1000;
  const replicas = { replicas: { count: 3, leaderMoveIntervalMs: MOVE_INTERVAL_MS } };

  test("opens on the leader when one was reported before the start; on replica 0 otherwise", () => {
    const informed = new LogPlayer(config(replicas));
    informed.leaderReported(2, 0);
    informed.start(0, COMMIT_AT_START);
    informed.connected(0, 0n, 1);
    informed.connected(1, 0n, 1);
    expect(only(informed.takeCommands(), "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 1n, resumed: false, replica: 2 }]);
    const { core } = runningCore([0n, 0n], replicas);
    expect(core.mainStreamReplica).toEqual({ serving: 0, leader: null });
  });

  test("a working stream on a follower moves to the reported leader at once, resuming at currentIndex + 1", () => {
    const { core } = runningCore([0n, 0n], replicas);
    core.mainEntries(entries(1, 3), 3n, 0n, 10);
    core.takeCommands();
    core.leaderReported(0, 11); // the serving replica leads: nothing to do
    expect(only(core.takeCommands(), "moveMainStream")).toEqual([]);
    core.leaderReported(1, 12);
    expect(only(core.takeCommands(), "moveMainStream")).toEqual([{ kind: "moveMainStream", fromLsn: 4n, fromReplica: 0, replica: 1 }]);
    expect(core.mainStreamReplica).toEqual({ serving: 1, leader: 1 });
    expect(core.counters.mainStreamMoves).toBe(1);
    // The new call re-sends what was dispatched; it is skipped, and the rest goes on.
    core.mainEntries(entries(3, 5), 5n, 0n, 13);
    expect(core.dispatcher.currentIndex).toBe(5n);
  });

  test("a flapping leader moves the stream at most once per leaderMoveIntervalMs", () => {
    const { core } = runningCore([0n, 0n], replicas);
    core.leaderReported(1, 10);
    expect(only(core.takeCommands(), "moveMainStream")).toHaveLength(1);
    let moves = 0;
    for (let t = 20; t < 10 + MOVE_INTERVAL_MS; t += 20) {
      core.leaderReported(t % 40 === 0 ? 2 : 0, t);
      moves += only(core.takeCommands(), "moveMainStream").length;
    }
    expect(moves).toBe(0);
    expect(core.nextDeadlineMs()).toBe(10 + MOVE_INTERVAL_MS);
    core.tick(10 + MOVE_INTERVAL_MS);
    const [move] = only(core.takeCommands(), "moveMainStream");
    expect(move?.replica).toBe(core.mainStreamReplica.leader);
    expect(core.counters.mainStreamMoves).toBe(2);
  });

  test("a leader whose stream failed is left for another replica, and moved back to once it had time to recover", () => {
    const { core } = runningCore([0n, 0n], replicas);
    core.leaderReported(1, 10);
    core.takeCommands();
    core.mainStreamFailed("leader unreachable", 20);
    const [close] = only(core.takeCommands(), "closeMainStream");
    core.tick(20 + close!.resumeInMs);
    expect(only(core.takeCommands(), "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 1n, resumed: true, replica: 2 }]);
    core.leaderReported(1, 100); // the fallback replica still names the old leader
    expect(only(core.takeCommands(), "moveMainStream")).toEqual([]);
    const backAtMs = 20 + Math.max(MOVE_INTERVAL_MS, config().backoff.maxDelayMs);
    expect(core.nextDeadlineMs()).toBe(backAtMs);
    core.tick(backAtMs);
    expect(only(core.takeCommands(), "moveMainStream")).toEqual([{ kind: "moveMainStream", fromLsn: 1n, fromReplica: 2, replica: 1 }]);
  });

  test("with no leader known, a failed stream resumes on the next replica in order", () => {
    const { core } = runningCore([0n, 0n], replicas);
    core.mainStreamFailed("gone", 5);
    const [close] = only(core.takeCommands(), "closeMainStream");
    core.tick(5 + close!.resumeInMs);
    expect(only(core.takeCommands(), "openMainStream")[0]?.replica).toBe(1);
    core.leaderReported(null, 6);
    expect(core.mainStreamReplica).toEqual({ serving: 1, leader: null });
  });

  test("leaderMoveIntervalMs 0 never moves a working stream", () => {
    const { core } = runningCore([0n, 0n], { replicas: { count: 3, leaderMoveIntervalMs: 0 } });
    core.leaderReported(2, 10);
    core.tick(100_000);
    expect(only(core.takeCommands(), "moveMainStream")).toEqual([]);
    expect(core.nextDeadlineMs()).toBe(null);
  });
});

describe("LogPlayer core: recovery reads", () => {
  // Long enough that the health checker's deadline never comes first here.
  const running = (applied: readonly bigint[], overrides: Partial<LogPlayerConfig> = {}): ReturnType<typeof runningCore> =>
    runningCore(applied, { ackTimeoutMs: 1_000_000, ...overrides });

  test("a target behind currentIndex gets a read; its entries go out, done ends recovery", () => {
    const { core, terms } = running([0n, 0n]);
    core.mainEntries(entries(1, 5), 5n, 0n, 1);
    core.takeCommands();
    core.disconnected(1, terms[1]!, false, 2);
    core.tick(core.nextDeadlineMs()!);
    expect(kinds(core.takeCommands())).toEqual(["openStream"]);
    core.connected(1, 2n, 100);
    const [read] = only(core.takeCommands(), "startRecoveryRead");
    expect(read).toMatchObject({ target: 1, fromLsn: 3n, toLsn: 5n });
    core.recoveryEntries(read!.readId, entries(3, 5), 0n, 101);
    expect(only(core.takeCommands(), "send")[0]?.parts.map((p) => p.lsn)).toEqual([3n, 4n, 5n]);
    core.recoveryDone(read!.readId, 102);
    expect(core.targets[1]?.state).toBe("N"); // everything read was already sent
    expect(core.recoveryReadsOutstanding).toBe(0);
  });

  test("entries of a read whose term expired are refused and the read is cancelled", () => {
    const { core, terms } = running([0n, 0n]);
    core.mainEntries(entries(1, 5), 5n, 0n, 1);
    core.takeCommands();
    core.disconnected(1, terms[1]!, false, 2);
    core.tick(core.nextDeadlineMs()!);
    core.connected(1, 2n, 100);
    const [stale] = only(core.takeCommands(), "startRecoveryRead");
    // The target reconnects again: a new term, a new read supersedes the old one.
    core.disconnected(1, core.targets[1]!.streamTerm, false, 110);
    expect(only(core.takeCommands(), "cancelRecoveryRead")).toEqual([]);
    core.recoveryEntries(stale!.readId, entries(3, 5), 0n, 111);
    expect(only(core.takeCommands(), "cancelRecoveryRead")).toEqual([{ kind: "cancelRecoveryRead", readId: stale!.readId, target: 1 }]);
    expect(core.targets[1]?.catchUpLength).toBe(0);
    expect(core.recoveryReadsOutstanding).toBe(0);
  });

  test("a new read for a target supersedes (cancels) its running one", () => {
    const { core } = running([0n, 0n]);
    core.mainEntries(entries(1, 5), 5n, 0n, 1);
    core.takeCommands();
    reconnect(core, 1, 1n, 10); // term + 1, a read from 2
    const [first] = only(core.takeCommands(), "startRecoveryRead");
    reconnect(core, 1, 3n, 10_000);
    const commands = core.takeCommands();
    expect(only(commands, "cancelRecoveryRead")).toEqual([{ kind: "cancelRecoveryRead", readId: first!.readId, target: 1 }]);
    expect(only(commands, "startRecoveryRead")).toMatchObject([{ target: 1, fromLsn: 4n, toLsn: 5n }]);
    expect(core.recoveryReadsOutstanding).toBe(1);
  });

  test("at most recoveryStreamsMax reads run; the next starts when one ends", () => {
    const { core } = running([0n, 0n], { recoveryStreamsMax: 1 });
    core.mainEntries(entries(1, 5), 5n, 0n, 1);
    core.takeCommands();
    core.disconnected(0, core.targets[0]!.streamTerm, false, 10);
    core.disconnected(1, core.targets[1]!.streamTerm, false, 10);
    core.tick(5010);
    expect(kinds(core.takeCommands())).toEqual(["openStream", "openStream"]);
    core.connected(0, 1n, 5010);
    core.connected(1, 1n, 5010);
    const started = only(core.takeCommands(), "startRecoveryRead");
    expect(started.map((r) => r.target)).toEqual([0]);
    expect(core.recoveryReadsOutstanding).toBe(2);
    core.recoveryFailed(started[0]!.readId, 10_000);
    const next = only(core.takeCommands(), "startRecoveryRead");
    expect(next.map((r) => r.target)).toEqual([1]); // the retry of target 0 waits its backoff
  });

  test("a failed read is retried after a backoff", () => {
    const { core } = running([0n, 0n]);
    core.mainEntries(entries(1, 5), 5n, 0n, 1);
    reconnect(core, 1, 1n, 10);
    const [read] = only(core.takeCommands(), "startRecoveryRead");
    core.recoveryFailed(read!.readId, 10_000);
    expect(only(core.takeCommands(), "startRecoveryRead")).toEqual([]);
    const due = core.nextDeadlineMs()!;
    expect(due).toBeGreaterThan(10_000);
    core.tick(due);
    expect(only(core.takeCommands(), "startRecoveryRead")).toMatchObject([{ target: 1, fromLsn: 2n, toLsn: 5n }]);
  });
});

describe("LogPlayer core: target streams", () => {
  const running = runningCore;
  test("a refused stream is retried slowly (maxDelayMs), another failure with the backoff", () => {
    const core = new LogPlayer(config());
    core.start(0, COMMIT_AT_START);
    core.takeCommands();
    core.connectFailed(0, true, 10);
    core.connectFailed(1, false, 10);
    expect(core.nextDeadlineMs()).toBe(10 + 5); // target 1: half the first backoff ceiling (random 0.5)
    core.tick(15);
    expect(core.takeCommands()).toEqual([{ kind: "openStream", target: 1, commitLsn: COMMIT_AT_START }]);
    core.tick(5009);
    expect(only(core.takeCommands(), "openStream")).toEqual([]);
    core.tick(5010);
    expect(only(core.takeCommands(), "openStream")).toEqual([{ kind: "openStream", target: 0, commitLsn: COMMIT_AT_START }]);
  });

  test("the health checker closes a stream whose batches stay unacked past ackTimeoutMs", () => {
    const { core, terms } = running([0n, 0n]);
    core.mainEntries(entries(1, 1), 1n, 0n, 100);
    expect(only(core.takeCommands(), "send")).toHaveLength(2);
    core.ack(0, terms[0]!, 1n, 600); // target 0 answers; target 1 stays silent
    core.tick(1099);
    expect(core.takeCommands()).toEqual([]);
    core.tick(1100);
    expect(core.takeCommands()).toEqual([{ kind: "closeStream", target: 1, reason: "no Ack within 1000 ms" }]);
    expect(core.targets[1]?.state).toBe("S");
    expect(core.targets[0]?.state).toBe("N");
    core.tick(core.nextDeadlineMs()!);
    expect(core.takeCommands()).toEqual([{ kind: "openStream", target: 1, commitLsn: COMMIT_AT_START }]);
  });

  test("an idle stream (nothing unacked) is never declared dead; a missing HelloReply is", () => {
    const { core } = running([0n, 0n]);
    core.tick(1_000_000);
    expect(core.takeCommands()).toEqual([]);
    const fresh = new LogPlayer(config());
    fresh.start(0, COMMIT_AT_START);
    fresh.takeCommands();
    fresh.tick(1000);
    const reasons = only(fresh.takeCommands(), "closeStream").map((c) => c.reason);
    expect(reasons).toEqual(["no HelloReply within 1000 ms", "no HelloReply within 1000 ms"]);
  });

  test("events of a stream the core already closed change nothing", () => {
    const { core, terms } = running([0n, 0n]);
    core.disconnected(0, terms[0]!, false, 1);
    core.disconnected(0, terms[0]!, false, 2);
    core.ack(0, terms[0]!, 5n, 3);
    expect(core.targets[0]?.lastAck).toBe(0n);
    expect(core.takeCommands()).toEqual([]);
  });
});

describe("LogPlayer core: the log's commit LSN", () => {
  /** A core started knowing commit `commitLsn`; shard 0 answers at `applied0`, shard 1 at `applied1`. */
  function connectedAt(commitLsn: bigint, applied0: bigint, applied1: bigint): LogPlayer {
    const core = new LogPlayer(config({ ackTimeoutMs: 1_000_000 }));
    core.start(0, commitLsn);
    expect(only(core.takeCommands(), "openStream").map((c) => c.commitLsn)).toEqual([commitLsn, commitLsn]);
    core.connected(0, applied0, 1);
    core.connected(1, applied1, 2);
    return core;
  }

  test("every batch carries the known commit LSN, which covers its parts", () => {
    const { core } = runningCore([0n, 0n]);
    core.mainEntries(entries(1, 3), 3n, 0n, 1);
    const sent = only(core.takeCommands(), "send");
    expect(sent.map((s) => s.commitLsn)).toEqual([COMMIT_AT_START, COMMIT_AT_START]);
  });

  test("a shard beyond the known commit LSN is held (A) and left out of the main stream's start; a check that covers it releases it", () => {
    const core = connectedAt(5n, 7n, 3n);
    expect(core.targets.map((t) => t.state)).toEqual(["A", "N"]);
    const commands = core.takeCommands();
    expect(only(commands, "openMainStream")).toEqual([{ kind: "openMainStream", fromLsn: 4n, resumed: false, replica: 0 }]);
    expect(only(commands, "checkCommitLsn")).toHaveLength(1);
    core.mainEntries(entries(4, 5), 5n, 0n, 3);
    expect(only(core.takeCommands(), "send").map((s) => s.target)).toEqual([1]); // nothing to the held shard
    core.commitLsnChecked(9n, 4); // another LogPlayer had delivered up to 7: the log is there
    expect(core.targets[0]?.state).toBe("N");
    expect(core.targets[0]?.aheadOfLog).toBeNull();
    expect(only(core.takeCommands(), "targetAheadOfLog")).toEqual([]);
    expect(core.dispatcher.commitLsnKnown).toBe(9n);
  });

  test("a main-stream commit LSN that covers a held shard releases it too", () => {
    const core = connectedAt(3n, 5n, 3n);
    core.takeCommands();
    core.mainEntries(entries(4, 6), 6n, 0n, 3);
    expect(core.targets[0]?.state).toBe("N");
    expect(only(core.takeCommands(), "send").map((s) => [s.target, s.parts.map((p) => p.lsn)])).toEqual([
      [0, [6n]],
      [1, [4n, 5n, 6n]],
    ]);
  });

  test(`${AHEAD_CHECKS_TO_CONFIRM} checks below its applied LSN: the shard is declared ahead of the log, for good; the others go on`, () => {
    const core = connectedAt(1n, 2n, 1n);
    const answers = [1n, null, 1n, 1n]; // a failed check (null) confirms nothing
    expect(answers.filter((a) => a !== null)).toHaveLength(AHEAD_CHECKS_TO_CONFIRM);
    for (const [i, answer] of answers.entries()) {
      core.tick(core.nextDeadlineMs() ?? 0);
      expect(only(core.takeCommands(), "checkCommitLsn")).toHaveLength(1);
      expect(core.targets[0]?.aheadOfLog).toBeNull();
      core.commitLsnChecked(answer, core.nextDeadlineMs() ?? 0);
      if (i < answers.length - 1) expect(only(core.takeCommands(), "targetAheadOfLog")).toEqual([]);
    }
    expect(only(core.takeCommands(), "targetAheadOfLog")).toEqual([{ kind: "targetAheadOfLog", target: 0, appliedLsn: 2n, commitLsn: 1n }]);
    expect(core.targets[0]?.aheadOfLog).toEqual({ appliedLsn: 2n, commitLsn: 1n });
    expect(core.nextDeadlineMs()).toBeNull(); // no more checks
    // The log grows back past the shard's LSN: that is another entry under LSN 2, so the shard stays stopped.
    core.mainEntries(entries(2, 4), 4n, 0n, 100);
    expect(core.targets[0]?.state).toBe("A");
    expect(only(core.takeCommands(), "send").map((s) => s.target)).toEqual([1]);
    // It reconnects with the same LSN: still stopped, no new check; restored from an older backup: delivered again.
    reconnect(core, 0, 2n, 100_000);
    expect(core.targets[0]?.state).toBe("A");
    expect(only(core.takeCommands(), "checkCommitLsn")).toEqual([]);
    reconnect(core, 0, 1n, 200_000);
    expect(core.targets[0]?.state).toBe("RF");
    expect(core.targets[0]?.aheadOfLog).toBeNull();
  });

  test("an Ack beyond the known commit LSN holds the shard on its stream until a check covers it", () => {
    const { core, terms } = runningCore([0n, 0n]);
    core.mainEntries(entries(1, 2), 2n, 0n, 1);
    core.takeCommands();
    core.ack(0, terms[0]!, COMMIT_AT_START + 5n, 2);
    expect(core.targets[0]?.state).toBe("A");
    expect(only(core.takeCommands(), "checkCommitLsn")).toHaveLength(1);
    core.writeCompleted(0, terms[0]!, 3); // the write in flight still completes on the same stream
    core.commitLsnChecked(COMMIT_AT_START + 5n, 4);
    expect(core.targets[0]?.state).toBe("N");
    expect(core.targets[0]?.lastAck).toBe(COMMIT_AT_START + 5n);
  });
});
