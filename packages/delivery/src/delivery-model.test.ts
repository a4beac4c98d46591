import { assert, createShardMap, seededRandom, shardForKey } from "@logplayer/base";
import { MutationKind, type LogEntry, type Part } from "@logplayer/proto";
import { DEFAULT_DELIVERY_LIMITS, type DeliveryLimits } from "./delivery-limits";
import { Dispatcher } from "./dispatcher";

/**
 * A seeded simulation: the real Dispatcher/TargetQueue against simulated
 * shards (a local model of the (lsn, prevLsn) decision table), streams,
 * recovery reads and faults (disconnects, shard crashes losing unsynced
 * commits, silently dropped batches, LogPlayer restarts, stale events), with
 * one LogPlayer or two at once (the second a restarted twin or a zombie).
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
  target: number;
  term: number;
  nextLsn: bigint;
  toLsn: bigint;
}

/** One LogPlayer process: its Dispatcher and everything in flight for it. */
interface SimPlayer {
  dispatcher: Dispatcher;
  streams: (SimStream | null)[];
  reconnectPending: boolean[];
  reads: SimRead[];
  /** Streams of this player that were closed: their leftovers may still surface. */
  staleStreams: { target: number; stream: SimStream }[];
}

class Simulation {
  readonly log: LogEntry[];
  readonly filtered: bigint[][] = [];
  readonly shards: SimShard[] = [];
  readonly players: SimPlayer[] = [];
  faults = 0;
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
    return {
      dispatcher: new Dispatcher(shardMap, this.limits),
      streams: Array.from({ length: SHARDS }, () => null),
      reconnectPending: Array.from({ length: SHARDS }, () => true),
      reads: [],
      staleStreams: [],
    };
  }

  run(): void {
    // Fault phase.
    for (let step = 0; step < 4000; step++) {
      if (this.rng.chance(0.03)) this.injectFault();
      else this.stepNormal();
    }
    // Faults stop: everything must converge.
    for (let step = 0; step < 400_000; step++) {
      if (this.stepNormal()) continue;
      if (!this.healthCheck()) break;
    }
    for (const p of this.players) this.addTotals(p);
  }

  #execute(p: SimPlayer): void {
    for (const command of p.dispatcher.takeCommands()) {
      const stream = p.streams[command.target] ?? null;
      if (command.kind === "send") {
        assert(stream !== null && stream.streamTerm === command.streamTerm, "send on a stream that is not current");
        stream.toShard.push(command.parts);
        stream.pendingWrites += 1;
      } else if (command.kind === "recoveryRead") {
        assert(command.toLsn <= BigInt(this.log.length), "recovery read beyond the log");
        p.reads.push({ target: command.target, term: command.term, nextLsn: command.fromLsn, toLsn: command.toLsn });
      } else {
        p.reconnectPending[command.target] = true;
      }
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

  #playerOptions(p: SimPlayer, options: [SimPlayer, () => void][]): void {
    const d = p.dispatcher;
    const from = d.mainStreamFromLsn();
    if (d.currentIndex === null && from !== null) options.push([p, () => d.startMainStream(from)]);
    if (d.currentIndex !== null && d.currentIndex < BigInt(this.log.length)) {
      // Entries arrive alone or in bursts (one ReadResponse).
      options.push([p, () => d.dispatchEntries(this.log.slice(Number(d.currentIndex!), Number(d.currentIndex!) + 1 + this.rng.int(4)), 0n)]);
    }
    for (let target = 0; target < SHARDS; target++) {
      if (p.reconnectPending[target]) options.push([p, () => this.connect(p, target)]);
      const stream = p.streams[target];
      if (stream === null || stream === undefined) continue;
      if (stream.toShard.length > 0) options.push([p, () => this.shardReceives(p, target, stream)]);
      if (stream.toPlayer.length > 0) options.push([p, () => this.playerReceives(p, target, stream)]);
      if (stream.pendingWrites > 0) {
        options.push([
          p,
          () => {
            stream.pendingWrites -= 1;
            d.writeCompleted(target, stream.streamTerm);
          },
        ]);
      }
    }
    if (p.reads.length > 0) options.push([p, () => this.serveRead(p)]);
  }

  connect(p: SimPlayer, target: number): void {
    p.reconnectPending[target] = false;
    if (this.rng.chance(0.1)) {
      p.dispatcher.connectFailed(target);
      return;
    }
    const streamTerm = p.dispatcher.connected(target, this.shards[target]!.applied);
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
    if (response.kind === "ack") p.dispatcher.ack(target, stream.streamTerm, response.applied);
    else p.dispatcher.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn });
  }

  serveRead(p: SimPlayer): void {
    const index = this.rng.int(p.reads.length);
    const read = p.reads[index]!;
    if (this.rng.chance(0.05)) {
      p.reads.splice(index, 1);
      p.dispatcher.recoveryFailed(read.target, read.term);
      return;
    }
    const entries: LogEntry[] = [];
    const count = 1 + this.rng.int(3);
    while (entries.length < count && read.nextLsn <= read.toLsn) {
      entries.push(this.log[Number(read.nextLsn) - 1]!);
      read.nextLsn += 1n;
    }
    if (entries.length > 0 && !p.dispatcher.recoveryEntries(read.target, read.term, entries, 0n)) {
      p.reads.splice(index, 1); // refused: the adapter cancels the read
      return;
    }
    if (read.nextLsn > read.toLsn) {
      p.reads.splice(index, 1);
      p.dispatcher.recoveryDone(read.target, read.term);
    }
  }

  /** The health checker: a target with unacked batches and nothing left that could answer is dead. */
  healthCheck(): boolean {
    for (const p of this.players) {
      for (let target = 0; target < SHARDS; target++) {
        const queue = p.dispatcher.targets[target]!;
        if (queue.state !== "S" && queue.windowBatches > 0) {
          this.closeStream(p, target);
          this.#execute(p);
          return true;
        }
      }
    }
    return false;
  }

  closeStream(p: SimPlayer, target: number): void {
    const stream = p.streams[target] ?? null;
    if (stream === null) return;
    // Some written batches still reach the shard; their answers are lost with the stream.
    const delivered = this.rng.int(stream.toShard.length + 1);
    for (const batch of stream.toShard.slice(0, delivered)) this.apply(target, batch);
    p.streams[target] = null;
    p.staleStreams.push({ target, stream });
    p.dispatcher.disconnected(target, stream.streamTerm);
  }

  injectFault(): void {
    this.faults += 1;
    const target = this.rng.int(SHARDS);
    const shard = this.shards[target]!;
    const k = this.rng.int(this.players.length);
    const p = this.players[k]!;
    switch (this.rng.int(7)) {
      case 0: // stream breaks
        this.closeStream(p, target);
        break;
      case 1: // shard crash: every stream to it breaks, commits after the last sync are lost
        for (const q of this.players) this.closeStream(q, target);
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
      default: // ack timeout declared by the health checker
        if (p.dispatcher.targets[target]!.windowBatches > 0) this.closeStream(p, target);
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
    for (const target of p.dispatcher.targets) {
      for (const [name, value] of Object.entries(target.counters)) this.totals.set(name, (this.totals.get(name) ?? 0) + value);
    }
  }

  deliverStale(p: SimPlayer): void {
    if (p.staleStreams.length === 0) return;
    const { target, stream } = this.rng.pick(p.staleStreams);
    const response = stream.toPlayer.shift();
    if (stream.pendingWrites > 0) {
      stream.pendingWrites -= 1;
      p.dispatcher.writeCompleted(target, stream.streamTerm);
    }
    if (response?.kind === "ack") p.dispatcher.ack(target, stream.streamTerm, response.applied + 5n);
    if (response?.kind === "gap") {
      p.dispatcher.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn });
    }
    p.dispatcher.disconnected(target, stream.streamTerm);
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

  test("the seeds exercised every path (overflow, rewind, dummy, recovery, stale events)", () => {
    for (const name of ["overflows", "rewinds", "dummiesQueued", "recoveryReads", "staleEventsDropped", "suspends"]) {
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
    for (const name of ["rewinds", "overflows", "recoveryReads", "dummiesQueued"]) expect(totals.get(`two:${name}`) ?? 0).toBeGreaterThan(0);
  });

  test("roomier limits, longer log", () => {
    const limits = { ...SIM_LIMITS, batchPartsMax: 50, windowBatchesMax: 4, queueEntriesMax: 40, recoveryReadEntriesMax: 20 };
    const sim = new Simulation(new Rng(42), limits, 400);
    sim.run();
    for (let target = 0; target < SHARDS; target++) expect(sim.shards[target]!.appliedReal).toEqual(sim.filtered[target]);
  });
});
