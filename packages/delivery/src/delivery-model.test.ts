import { assert, createShardMap, shardForKey } from "@logplayer/common";
import { MutationKind, type LogEntry, type Part } from "@logplayer/proto";
import { DEFAULT_DELIVERY_LIMITS, type DeliveryLimits } from "./delivery-limits";
import { Dispatcher } from "./dispatcher";

/**
 * A seeded simulation: the real Dispatcher/TargetQueue against simulated
 * shards (a local model of the (lsn, prevLsn) decision table), streams,
 * recovery reads and faults (disconnects, shard crashes losing unsynced
 * commits, silently dropped batches, LogPlayer restarts, stale events).
 * Invariant: every shard applies exactly its filtered log, in order, once.
 */

const SHARDS = 3;
const shardMap = createShardMap(SHARDS);

/** mulberry32: small, fast, seedable. */
class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
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
  stream: SimStream | null;
  reconnectPending: boolean;
}

interface SimRead {
  target: number;
  term: number;
  nextLsn: bigint;
  toLsn: bigint;
}

class Simulation {
  readonly log: LogEntry[];
  readonly filtered: bigint[][] = [];
  readonly shards: SimShard[] = [];
  player!: Dispatcher;
  reads: SimRead[] = [];
  /** Streams of the current player that were closed: their leftovers may still surface. */
  staleStreams: { target: number; stream: SimStream }[] = [];
  faults = 0;
  /** Counters summed over every player instance, to show which paths ran. */
  readonly totals = new Map<string, number>();

  constructor(
    readonly rng: Rng,
    readonly limits: DeliveryLimits,
    logLength: number,
  ) {
    this.log = buildLog(rng, logLength);
    for (let s = 0; s < SHARDS; s++) {
      this.filtered.push(this.log.filter((e) => e.txn!.mutations.some((m) => shardForKey(m.key, shardMap) === s)).map((e) => e.lsn));
      this.shards.push({ applied: 0n, appliedReal: [], durable: { applied: 0n, realCount: 0 }, stream: null, reconnectPending: true });
    }
    this.player = new Dispatcher(shardMap, limits);
  }

  run(): void {
    // Fault phase.
    for (let step = 0; step < 4000; step++) {
      if (this.rng.chance(0.03)) this.injectFault();
      else this.stepNormal();
    }
    // Faults stop: everything must converge.
    for (let step = 0; step < 200_000; step++) {
      if (this.stepNormal()) continue;
      if (!this.healthCheck()) break;
    }
    this.addTotals();
  }

  #execute(): void {
    for (const command of this.player.takeCommands()) {
      const shard = this.shards[command.target]!;
      if (command.kind === "send") {
        assert(shard.stream !== null && shard.stream.streamTerm === command.streamTerm, "send on a stream that is not current");
        shard.stream.toShard.push(command.parts);
        shard.stream.pendingWrites += 1;
      } else if (command.kind === "recoveryRead") {
        assert(command.toLsn <= BigInt(this.log.length), "recovery read beyond the log");
        this.reads.push({ target: command.target, term: command.term, nextLsn: command.fromLsn, toLsn: command.toLsn });
      } else {
        shard.reconnectPending = true;
      }
    }
  }

  /** One random fault-free step; false when nothing can happen. */
  stepNormal(): boolean {
    const options: (() => void)[] = [];
    const player = this.player;
    const from = player.mainStreamFromLsn();
    if (player.currentIndex === null && from !== null) options.push(() => player.startMainStream(from));
    if (player.currentIndex !== null && player.currentIndex < BigInt(this.log.length)) {
      options.push(() => player.dispatch(this.log[Number(player.currentIndex!)]!, 0n));
    }
    this.shards.forEach((shard, target) => {
      if (shard.reconnectPending) options.push(() => this.connect(target));
      const stream = shard.stream;
      if (stream === null) return;
      if (stream.toShard.length > 0) options.push(() => this.shardReceives(target, stream));
      if (stream.toPlayer.length > 0) options.push(() => this.playerReceives(target, stream));
      if (stream.pendingWrites > 0) {
        options.push(() => {
          stream.pendingWrites -= 1;
          player.writeCompleted(target, stream.streamTerm);
        });
      }
    });
    if (this.reads.length > 0) options.push(() => this.serveRead());
    if (options.length === 0) return false;
    this.rng.pick(options)();
    this.#execute();
    return true;
  }

  connect(target: number): void {
    const shard = this.shards[target]!;
    shard.reconnectPending = false;
    if (this.rng.chance(0.1)) {
      this.player.connectFailed(target);
      return;
    }
    const streamTerm = this.player.connected(target, shard.applied);
    shard.stream = { streamTerm, toShard: [], toPlayer: [], pendingWrites: 0 };
  }

  shardReceives(target: number, stream: SimStream): void {
    const batch = stream.toShard.shift()!;
    const response = this.apply(target, batch);
    if (this.shards[target]!.stream === stream) stream.toPlayer.push(response);
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

  playerReceives(target: number, stream: SimStream): void {
    const response = stream.toPlayer.shift()!;
    if (response.kind === "ack") this.player.ack(target, stream.streamTerm, response.applied);
    else this.player.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn });
  }

  serveRead(): void {
    const index = this.rng.int(this.reads.length);
    const read = this.reads[index]!;
    if (this.rng.chance(0.05)) {
      this.reads.splice(index, 1);
      this.player.recoveryFailed(read.target, read.term);
      return;
    }
    const entries: LogEntry[] = [];
    const count = 1 + this.rng.int(3);
    while (entries.length < count && read.nextLsn <= read.toLsn) {
      entries.push(this.log[Number(read.nextLsn) - 1]!);
      read.nextLsn += 1n;
    }
    if (entries.length > 0 && !this.player.recoveryEntries(read.target, read.term, entries, 0n)) {
      this.reads.splice(index, 1); // refused: the adapter cancels the read
      return;
    }
    if (read.nextLsn > read.toLsn) {
      this.reads.splice(index, 1);
      this.player.recoveryDone(read.target, read.term);
    }
  }

  /** The health checker: a target with unacked batches and nothing left that could answer is dead. */
  healthCheck(): boolean {
    for (let target = 0; target < SHARDS; target++) {
      const queue = this.player.targets[target]!;
      if (queue.state !== "S" && queue.windowBatches > 0) {
        this.closeStream(target);
        this.#execute();
        return true;
      }
    }
    return false;
  }

  closeStream(target: number): void {
    const shard = this.shards[target]!;
    const stream = shard.stream;
    if (stream === null) return;
    // Some written batches still reach the shard; their answers are lost with the stream.
    const delivered = this.rng.int(stream.toShard.length + 1);
    for (const batch of stream.toShard.slice(0, delivered)) this.apply(target, batch);
    shard.stream = null;
    this.staleStreams.push({ target, stream });
    this.player.disconnected(target, stream.streamTerm);
  }

  injectFault(): void {
    this.faults += 1;
    const target = this.rng.int(SHARDS);
    const shard = this.shards[target]!;
    switch (this.rng.int(7)) {
      case 0: // stream breaks
        this.closeStream(target);
        break;
      case 1: // shard crash: commits after the last sync are lost
        this.closeStream(target);
        shard.applied = shard.durable.applied;
        shard.appliedReal.length = shard.durable.realCount;
        break;
      case 2: // shard syncs to disk
        shard.durable = { applied: shard.applied, realCount: shard.appliedReal.length };
        break;
      case 3: // a written batch silently vanishes (forces a Gap or the ack timeout)
        if (shard.stream !== null && shard.stream.toShard.length > 0) shard.stream.toShard.shift();
        break;
      case 4: // LogPlayer restart: no durable state, learns everything again
        for (let t = 0; t < SHARDS; t++) {
          const s = this.shards[t]!;
          const stream = s.stream;
          if (stream !== null) for (const batch of stream.toShard.slice(0, this.rng.int(stream.toShard.length + 1))) this.apply(t, batch);
          s.stream = null;
          s.reconnectPending = true;
        }
        this.addTotals();
        this.player = new Dispatcher(shardMap, this.limits);
        this.reads = [];
        this.staleStreams = [];
        break;
      case 5: // an event from a closed stream surfaces late: the core must ignore it
        this.deliverStale();
        break;
      default: // ack timeout declared by the health checker
        if (this.player.targets[target]!.windowBatches > 0) this.closeStream(target);
        break;
    }
    this.#execute();
  }

  addTotals(): void {
    for (const target of this.player.targets) {
      for (const [name, value] of Object.entries(target.counters)) this.totals.set(name, (this.totals.get(name) ?? 0) + value);
    }
  }

  deliverStale(): void {
    if (this.staleStreams.length === 0) return;
    const { target, stream } = this.rng.pick(this.staleStreams);
    const response = stream.toPlayer.shift();
    if (stream.pendingWrites > 0) {
      stream.pendingWrites -= 1;
      this.player.writeCompleted(target, stream.streamTerm);
    }
    if (response?.kind === "ack") this.player.ack(target, stream.streamTerm, response.applied + 5n);
    if (response?.kind === "gap") {
      this.player.gap(target, stream.streamTerm, { appliedLsn: response.applied, lsn: response.lsn, prevLsn: response.prevLsn });
    }
    this.player.disconnected(target, stream.streamTerm);
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

  test("roomier limits, longer log", () => {
    const limits = { ...SIM_LIMITS, batchPartsMax: 50, windowBatchesMax: 4, queueEntriesMax: 40, recoveryReadEntriesMax: 20 };
    const sim = new Simulation(new Rng(42), limits, 400);
    sim.run();
    for (let target = 0; target < SHARDS; target++) expect(sim.shards[target]!.appliedReal).toEqual(sim.filtered[target]);
  });
});
