import { assert, createShardMap, seededRandom, shardForKey } from "@logplayer/base";
import { MutationKind, type LogEntry, type Part } from "@logplayer/proto";
import { DEFAULT_DELIVERY_LIMITS, type DeliveryLimits } from "./delivery-limits";
import { LogPlayer, type PlayerCommand } from "./log-player";

/**
 * A seeded simulation: the real LogPlayer core (with its Dispatcher and
 * TargetQueues) against simulated shards (a local model of the (lsn, prevLsn)
 * decision table), streams, recovery reads and faults (disconnects, shard
 * crashes losing unsynced commits, silently dropped batches, main-stream
 * breaks, LogPlayer restarts, stale events, time jumps that fire the core's
 * deadlines), with one LogPlayer or two at once (the second a restarted twin
 * or a zombie). It decides nothing itself: it is the transport.
 * Invariant: every shard applies exactly its filtered log, in order, once.
 */

const SHARDS = 3;
const shardMap = createShardMap(SHARDS);

/** Seeded randomness (common's mulberry32), with the helpers the model needs. */
class Rng {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    assert(item !== undefined, "pick from empty list");
    return item;
  }
}

function buildLog(rng: Rng, length: number): LogEntry[] {
  const log: LogEntry[] = [];
  for (let i = 1; i <= length; i++) {
    const mutations = [];
    const count = 1 + rng.int(3);
    for (let m = 0; m < count; m++) {
      // Skewed keys so shard 2 stays quiet for long stretches (dummy parts matter).
      const key = `key-${rng.chance(0.9) ? rng.int(6) : rng.int(1000)}`;
      mutations.push({ kind: MutationKind.MUTATION_KIND_ADD, key, value: Buffer.alloc(0), delta: BigInt(i) });
    }
    log.push({ lsn: BigInt(i), term: 1n, txn: { mutations }, commitTimeNs: 0n, clientId: "", clientSeq: 0n });
  }
  return log;
}

type Response = { kind: "ack"; applied: bigint } | { kind: "gap"; applied: bigint; lsn: bigint; prevLsn: bigint };

interface SimStream {
  streamTerm: number;
  toShard: Part[][];
  toPlayer: Response[];
  pendingWrites: number;
}

interface SimShard {
  applied: bigint;
  appliedReal: bigint[];
  durable: { applied: bigint; realCount: number };
}

interface SimRead {
  readonly readId: number;
  nextLsn: bigint;
  readonly toLsn: bigint;
}

/** One LogPlayer process: its core and the (model) transport in flight for it. */
interface SimPlayer {
  core: LogPlayer;
  streams: (SimStream | null)[];
  /** A stream the core opened and whose HelloReply (or failure) is still due. */
  connecting: boolean[];
  reads: SimRead[];
  /** The main stream's next LSN, or null while it is closed. */
  mainNextLsn: bigint | null;
  /** Streams of this player that were closed: their leftovers may still surface. */
  staleStreams: { target: number; stream: SimStream }[];
  /** A commit-LSN check the core asked for, not answered yet. */
  commitCheckDue: boolean;
}

const CORE_CONFIG = {
  shardMap,
  startWaitMs: 50,
  ackTimeoutMs: 400,
  recoveryStreamsMax: 2,
  backoff: { initialDelayMs: 5, maxDelayMs: 100, multiplier: 2 },
} as const;

/**
 * The harness is only transport: streams, reads and the shards. Every
 * decision (when the main stream starts, which entries are new, which reads
 * run or are stale, when a silent stream is dead, when to reconnect) is the
 * LogPlayer core's. Time advances one ms per step, and jumps to the core's
 * next deadline when nothing else can happen (or as a fault).
 */
class Simulation {
  readonly log: LogEntry[];
  readonly filtered: bigint[][] = [];
  readonly shards: SimShard[] = [];
  readonly players: SimPlayer[] = [];
  faults = 0;
  nowMs = 0;
  /** Counters summed over every player instance, to show which paths ran. */
  readonly totals = new Map<string, number>();

  constructor(
    readonly rng: Rng,
    readonly limits: DeliveryLimits,
    logLength: number,
    playerCount = 1,
  ) {
    this.log = buildLog(rng, logLength);
    for (let s = 0; s < SHARDS; s++) {
      this.filtered.push(this.log.filter((e) => e.txn!.mutations.some((m) => shardForKey(m.key, shardMap) === s)).map((e) => e.lsn));
      this.shards.push({ applied: 0n, appliedReal: [], durable: { applied: 0n, realCount: 0 } });
    }
    for (let k = 0; k < playerCount; k++) this.players.push(this.newPlayer());
  }

  newPlayer(): SimPlayer {
    const p: SimPlayer = {
      core: new LogPlayer({ ...CORE_CONFIG, limits: this.limits, random: () => this.rng.next() }),
      streams: Array.from({ length: SHARDS }, () => null),
      connecting: Array.from({ length: SHARDS }, () => false),
      reads: [],
      mainNextLsn: null,
      staleStreams: [],
      commitCheckDue: false,
    };
    // The commit LSN unknown at start (0): shards that applied anything are held until a check answers.
    p.core.start(this.nowMs);
    this.#execute(p);
    return p;
  }

  run(): void {
    // Fault phase.
    for (let step = 0; step < 4000; step++) {
      this.nowMs += 1;
      if (this.rng.chance(0.03)) this.injectFault();
      else this.stepNormal();
    }
    // Faults stop: everything must converge.
    for (let step = 0; step < 400_000; step++) {
      this.nowMs += 1;
      if (!this.stepNormal() && !this.tickNext()) break;
    }
    for (const p of this.players) this.addTotals(p);
  }

  #execute(p: SimPlayer): void {
    for (let commands = p.core.takeCommands(); commands.length > 0; commands = p.core.takeCommands()) {
      for (const command of commands) this.#command(p, command);
    }
  }

  #command(p: SimPlayer, command: PlayerCommand): void {
    switch (command.kind) {
      case "openStream":
        assert(p.streams[command.target] === null && !p.connecting[command.target], "open with a stream open");
        p.connecting[command.target] = true;
        return;
      case "closeStream":
        p.connecting[command.target] = false;
        this.#dropStream(p, command.target);
        return;
      case "send": {
        const stream = p.streams[command.target] ?? null;
        assert(stream !== null && stream.streamTerm === command.streamTerm, "send on a stream that is not current");
        stream.toShard.push(command.parts);
        stream.pendingWrites += 1;
        return;
      }
      case "openMainStream":
        assert(p.mainNextLsn === null, "main stream opened twice");
        p.mainNextLsn = command.fromLsn;
        return;
      case "closeMainStream":
        p.mainNextLsn = null;
        return;
      case "moveMainStream": // one replica: never moved
        p.mainNextLsn = command.fromLsn;
        return;
      case "startRecoveryRead":
        assert(command.toLsn <= BigInt(this.log.length), "recovery read beyond the log");
        p.reads.push({ readId: command.readId, nextLsn: command.fromLsn, toLsn: command.toLsn });
        return;
      case "cancelRecoveryRead":
        p.reads = p.reads.filter((read) => read.readId !== command.readId);
        return;
      case "checkCommitLsn":
        assert(!p.commitCheckDue, "two commit checks at once");
        p.commitCheckDue = true;
        return;
      case "targetAheadOfLog":
        // The whole log is committed from the start: no shard can be ahead of it.
        assert(false, `target ${command.target} declared ahead of the log (applied ${command.appliedLsn}, commit ${command.commitLsn})`);
    }
  }

  /** One random fault-free step; false when nothing can happen. */
  stepNormal(): boolean {
    const options: [SimPlayer, () => void][] = [];
    for (const p of this.players) this.#playerOptions(p, options);
    if (options.length === 0) return false;
    const [p, action] = this.rng.pick(options);
    action();
    this.#execute(p);
    return true;
  }

  /** Time jumps to the earliest deadline of any player's core; false when none waits on time. */
  tickNext(): boolean {
    let next: { p: SimPlayer; atMs: number } | null = null;
    for (const p of this.players) {
      const atMs = p.core.nextDeadlineMs();
      if (atMs !== null && (next === null || atMs < next.atMs)) next = { p, atMs };
    }
    if (next === null) return false;
    this.nowMs = Math.max(this.nowMs, next.atMs);
    next.p.core.tick(this.nowMs);
    this.#execute(next.p);
    return true;
  }

  #playerOptions(p: SimPlayer, options: [SimPlayer, () => void][]): void {
    const core = p.core;
    const mainNext = p.mainNextLsn;
    if (mainNext !== null && mainNext <= BigInt(this.log.length)) {
      // Entries arrive alone or in bursts (one ReadResponse), sometimes with some already sent again.
      options.push([
        p,
        () => {
          const resent = this.rng.chance(0.1) ? Math.min(this.rng.int(3), Number(mainNext) - 1) : 0;
          const first = Number(mainNext) - 1 - resent;
          const entries = this.log.slice(first, Number(mainNext) + this.rng.int(4));
          p.mainNextLsn = BigInt(first + entries.length + 1);
          core.mainEntries(entries, BigInt(this.log.length), 0n, this.nowMs);
        },
      ]);
    }
    for (let target = 0; target < SHARDS; target++) {
      if (p.connecting[target]) options.push([p, () => this.connect(p, target)]);
      const stream = p.streams[target];
      if (stream === null || stream === undefined) continue;
      if (stream.toShard.length > 0) options.push([p, () => this.shardReceives(p, target, stream)]);
      if (stream.toPlayer.length > 0) options.push([p, () => this.playerReceives(p, target, stream)]);
      if (stream.pendingWrites > 0) {
        options.push([
          p,
          () => {
            stream.pendingWrites -= 1;
            core.writeCompleted(target, stream.streamTerm, this.nowMs);
          },
        ]);
      }
    }
    if (p.reads.length > 0) options.push([p, () => this.serveRead(p)]);
    if (p.commitCheckDue) {
      options.push([
        p,
        () => {
          p.commitCheckDue = false;
          // Now and then the LogStore does not answer.
          core.commitLsnChecked(this.rng.chance(0.2) ? null : BigInt(this.log.length), this.nowMs);
        },
      ]);
    }
  }

  connect(p: SimPlayer, target: number): void {
    p.connecting[target] = false;
    if (this.rng.chance(0.1)) {
      p.core.connectFailed(target, this.rng.chance(0.2), this.nowMs);
      return;
    }
    const streamTerm = p.core.connected(target, this.shards[target]!.applied, this.nowMs);
    p.streams[target] = { streamTerm, toShard: [], toPlayer: [], pendingWrites: 0 };
  }

  shardReceives(p: SimPlayer, target: number, stream: SimStream): void {
    const batch = stream.toShard.shift()!;
    const response = this.apply(target, batch);
    if (p.streams[target] === stream) stream.toPlayer.push(response);
  }

  /** The decision table, written here independently of the shard's code. */
  apply(target: number, batch: Part[]): Response {
    const shard = this.shards[target]!;
    const expected = this.filtered[target]!;
    for (const part of batch) {
      if (part.lsn <= shard.applied) continue;
      if (part.prevLsn > shard.applied) return { kind: "gap", applied: shard.applied, lsn: part.lsn, prevLsn: part.prevLsn };
      const nextReal = expected[shard.appliedReal.length];
      if (part.mutations.length === 0) {
        expect(nextReal === undefined || nextReal > part.lsn).toBe(true); // a dummy must not skip a real part
      } else {
        expect(part.lsn).toBe(nextReal); // exactly the next real part: none missing, none twice
        const want = this.log[Number(part.lsn) - 1]!.txn!.mutations.filter((m) => shardForKey(m.key, shardMap) === target);
        expect(part.mutations).toEqual(want);
        shard.appliedReal.push(part.lsn);
      }
      shard.applied = part.lsn;
    }
    return { kind: "ack", applied: shard.applied };
  }

  playerReceives(p: SimPlayer, target: number, stream: SimStream): void {
    const response = stream.toPlayer.shift()!;
    if (response.kind === "ack") p.core.ack(target, stream.streamTerm, response.applied, this.nowMs);
    else p.core.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn }, this.nowMs);
  }

  serveRead(p: SimPlayer): void {
    const read = this.rng.pick(p.reads);
    if (this.rng.chance(0.05)) {
      p.reads = p.reads.filter((each) => each !== read);
      p.core.recoveryFailed(read.readId, this.nowMs);
      return;
    }
    const entries: LogEntry[] = [];
    const count = 1 + this.rng.int(3);
    while (entries.length < count && read.nextLsn <= read.toLsn) {
      entries.push(this.log[Number(read.nextLsn) - 1]!);
      read.nextLsn += 1n;
    }
    if (entries.length > 0) p.core.recoveryEntries(read.readId, entries, 0n, this.nowMs);
    if (read.nextLsn > read.toLsn && p.reads.includes(read)) {
      p.reads = p.reads.filter((each) => each !== read);
      p.core.recoveryDone(read.readId, this.nowMs);
    }
  }

  /** The stream is gone at the transport; some written batches still reach the shard, their answers are lost. */
  #dropStream(p: SimPlayer, target: number): SimStream | null {
    const stream = p.streams[target] ?? null;
    if (stream === null) return null;
    const delivered = this.rng.int(stream.toShard.length + 1);
    for (const batch of stream.toShard.slice(0, delivered)) this.apply(target, batch);
    p.streams[target] = null;
    p.staleStreams.push({ target, stream });
    return stream;
  }

  /** The stream breaks (or its connect attempt fails) and the adapter reports it. */
  breakStream(p: SimPlayer, target: number): void {
    if (p.connecting[target]) {
      p.connecting[target] = false;
      p.core.connectFailed(target, false, this.nowMs);
      return;
    }
    const stream = this.#dropStream(p, target);
    if (stream !== null) p.core.disconnected(target, stream.streamTerm, false, this.nowMs);
  }

  injectFault(): void {
    this.faults += 1;
    const target = this.rng.int(SHARDS);
    const shard = this.shards[target]!;
    const k = this.rng.int(this.players.length);
    const p = this.players[k]!;
    switch (this.rng.int(8)) {
      case 0: // stream breaks
        this.breakStream(p, target);
        break;
      case 1: // shard crash: every stream to it breaks, commits after the last sync are lost
        for (const q of this.players) this.breakStream(q, target);
        shard.applied = shard.durable.applied;
        shard.appliedReal.length = shard.durable.realCount;
        for (const q of this.players) this.#execute(q);
        break;
      case 2: // shard syncs to disk
        shard.durable = { applied: shard.applied, realCount: shard.appliedReal.length };
        break;
      case 3: {
        // a written batch silently vanishes (forces a Gap or the ack timeout)
        const stream = p.streams[target];
        if (stream && stream.toShard.length > 0) stream.toShard.shift();
        break;
      }
      case 4: // LogPlayer restart: no durable state, learns everything again
        this.restartPlayer(k);
        return;
      case 5: // an event from a closed stream surfaces late: the core must ignore it
        this.deliverStale(p);
        break;
      case 6: // the main stream breaks
        if (p.mainNextLsn !== null) p.core.mainStreamFailed("model: main stream broke", this.nowMs);
        break;
      default: // time passes: the core's next deadline (ack timeout, reconnect, retry, start wait) is reached
        this.tickNext();
        break;
    }
    this.#execute(p);
  }

  restartPlayer(k: number): void {
    const old = this.players[k]!;
    old.streams.forEach((stream, t) => {
      if (stream !== null) for (const batch of stream.toShard.slice(0, this.rng.int(stream.toShard.length + 1))) this.apply(t, batch);
    });
    this.addTotals(old);
    this.players[k] = this.newPlayer();
  }

  addTotals(p: SimPlayer): void {
    for (const target of p.core.targets) {
      for (const [name, value] of Object.entries(target.counters)) this.totals.set(name, (this.totals.get(name) ?? 0) + value);
    }
    for (const [name, value] of Object.entries(p.core.counters)) this.totals.set(name, (this.totals.get(name) ?? 0) + value);
  }

  deliverStale(p: SimPlayer): void {
    if (p.staleStreams.length === 0) return;
    const { target, stream } = this.rng.pick(p.staleStreams);
    const response = stream.toPlayer.shift();
    if (stream.pendingWrites > 0) {
      stream.pendingWrites -= 1;
      p.core.writeCompleted(target, stream.streamTerm, this.nowMs);
    }
    if (response?.kind === "ack") p.core.ack(target, stream.streamTerm, response.applied + 5n, this.nowMs);
    if (response?.kind === "gap") {
      p.core.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn }, this.nowMs);
    }
    p.core.disconnected(target, stream.streamTerm, false, this.nowMs);
  }
}

const SIM_LIMITS: DeliveryLimits = {
  ...DEFAULT_DELIVERY_LIMITS,
  batchPartsMax: 3,
  windowBatchesMax: 2,
  queueEntriesMax: 6,
  recoveryReadEntriesMax: 3,
  dummyEveryEntries: 7,
};

describe("delivery model: random faults, exactly-once in order", () => {
  const seeds = Array.from({ length: 40 }, (_, i) => 1000 + i * 7919);
  const totals = new Map<string, number>();
  test.each(seeds)("seed %i", (seed) => {
    const sim = new Simulation(new Rng(seed), SIM_LIMITS, 150);
    sim.run();
    for (const [name, value] of sim.totals) totals.set(name, (totals.get(name) ?? 0) + value);
    expect(sim.faults).toBeGreaterThan(0);
    for (let target = 0; target < SHARDS; target++) {
      expect(sim.shards[target]!.appliedReal).toEqual(sim.filtered[target]);
    }
  });

  test("the seeds exercised every path (overflow, rewind, dummy, recovery, stale events, held shards)", () => {
    for (const name of [
      "overflows",
      "rewinds",
      "dummiesQueued",
      "recoveryReads",
      "staleEventsDropped",
      "suspends",
      "aheadHolds",
      "commitChecks",
    ]) {
      expect([name, totals.get(name) ?? 0]).toEqual([name, expect.any(Number)]);
      expect(totals.get(name) ?? 0).toBeGreaterThan(0);
    }
  });

  test.each(seeds.slice(0, 10))("two LogPlayers at once (restarts, zombies), seed %i", (seed) => {
    const sim = new Simulation(new Rng(seed), SIM_LIMITS, 150, 2);
    sim.run();
    for (const [name, value] of sim.totals) totals.set(`two:${name}`, (totals.get(`two:${name}`) ?? 0) + value);
    for (let target = 0; target < SHARDS; target++) {
      expect(sim.shards[target]!.appliedReal).toEqual(sim.filtered[target]);
    }
  });

  test("two-LogPlayer seeds saw their streams interleave (rewinds, overflows, recovery)", () => {
    for (const name of ["rewinds", "overflows", "recoveryReads", "dummiesQueued"])
      expect(totals.get(`two:${name}`) ?? 0).toBeGreaterThan(0);
  });

  test("roomier limits, longer log", () => {
    const limits = { ...SIM_LIMITS, batchPartsMax: 50, windowBatchesMax: 4, queueEntriesMax: 40, recoveryReadEntriesMax: 20 };
    const sim = new Simulation(new Rng(42), limits, 400);
    sim.run();
    for (let target = 0; target < SHARDS; target++) expect(sim.shards[target]!.appliedReal).toEqual(sim.filtered[target]);
  });
});
