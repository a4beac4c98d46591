import { assert, createShardMap, shardForKey, type ShardMapConfig } from "@logplayer/common";
import { DEFAULT_DELIVERY_LIMITS, type DeliveryLimits } from "@logplayer/delivery";
import { MutationKind, type Mutation } from "@logplayer/proto";
import { describeNetworkFaults, pickNetworkFaults, SimNetwork, type NetworkFaults, type NetworkWeather, type SimNodeId } from "./network";
import { Simulator, DEFAULT_SIMULATOR_CONFIG } from "./simulator";
import { DeliveryChecker, DeliveryViolation } from "./delivery-checker";
import { SimLogStore } from "./delivery-logstore";
import { LOGSTORE_NODE, describeMessage, shardNode, type DeliveryEnv, type DeliveryMessage } from "./delivery-messages";
import { SimPlayer, type BrokenPlayer, type PlayerTotals } from "./delivery-player";
import { SimShard, type BrokenDecision } from "./delivery-shard";
import { DeliveryLifecycle, drawLifecycle, type LifecycleFault } from "./delivery-lifecycle";

/**
 * The delivery scenario: a LogStore (real WAL framing and recovery on a
 * SimDisk), one or two LogPlayers (each the production PlayerDriver of
 * services/logplayer — the LogPlayer core and its shims — over a simulated
 * transport and clock) and N shards (real planBatch + applyMutation over a SimDisk that
 * loses unsynced commits), on a network that drops, duplicates, delays,
 * reorders and partitions. A client appends transactions of APPEND tokens
 * and reads with min LSNs; a nemesis crashes, restarts and pauses processes.
 * The checker runs after every step; at the end the faults stop and every
 * shard must reach the whole filtered log, exactly once, in order.
 */
export interface DeliveryScenarioOptions {
  readonly seed: number;
  /** Events to run with faults on. */
  readonly steps: number;
  readonly shards: number;
  /** 2: two LogPlayers at once, either of which may pause and come back as a zombie. */
  readonly players: 1 | 2;
  readonly brokenDecision?: BrokenDecision;
  readonly brokenPlayer?: BrokenPlayer;
  /** The storage lifecycle (trimming, backups, database loss and restore); default on. */
  readonly lifecycle?: boolean;
  /** TEST-ONLY broken trimming (needs the lifecycle). */
  readonly lifecycleFault?: LifecycleFault;
  /** Events allowed after healing to reach quiescence before it counts as a liveness failure. */
  readonly quiesceStepsMax?: number;
  /**
   * LogStore replicas serving reads (default 1): with 3, followers learn of commits late, the leader
   * changes, and the LogPlayers' main streams follow it (the core's replica choice).
   */
  readonly logstoreReplicas?: 1 | 3;
}

export interface DeliveryScenarioStats {
  readonly steps: number;
  readonly simulatedMs: number;
  readonly committed: bigint;
  readonly appendsAcked: number;
  readonly readsSent: number;
  readonly readsChecked: number;
  readonly faults: Readonly<Record<string, number>>;
  readonly core: Readonly<PlayerTotals>;
  readonly shardDecisions: { readonly applied: number; readonly duplicates: number; readonly gaps: number };
}

export interface DeliveryScenarioResult {
  readonly ok: boolean;
  readonly seed: number;
  readonly options: DeliveryScenarioOptions;
  readonly violation: string | undefined;
  /** The fault-phase step at which the violation struck; null when it came after healing (or none). */
  readonly failedAtStep: number | null;
  readonly replayCommand: string;
  readonly traceTail: readonly string[];
  readonly stats: DeliveryScenarioStats;
}

interface Envelope {
  readonly from: SimNodeId;
  readonly message: DeliveryMessage;
}

const DEFAULT_QUIESCE_STEPS_MAX = 300_000;
const CLIENT_PENDING_APPENDS_MAX = 64;
const HEALED_NETWORK: NetworkFaults = { dropProbability: 0, duplicateProbability: 0, delayMsMin: 1, delayMsMax: 1 };
const DELIVERY_WEATHER: NetworkWeather = {
  dropProbabilities: [0, 0, 0.01, 0.05, 0.2],
  duplicateProbabilities: [0, 0.02, 0.1],
  delayMsMaxima: [1, 5, 20, 80],
};

export class DeliveryCluster {
  readonly sim: Simulator;
  readonly checker: DeliveryChecker;
  readonly logStore: SimLogStore;
  readonly shards: SimShard[] = [];
  readonly players: SimPlayer[] = [];
  readonly #network: SimNetwork<Envelope>;
  readonly #env: DeliveryEnv;
  readonly #shardMap: ShardMapConfig;
  readonly #clientNode: SimNodeId;
  readonly #replicas: number;
  readonly #keys: string[];
  readonly #limits: DeliveryLimits;
  readonly #nemesisGapMsMax: number;
  readonly #clientGapMsMax: number;
  #faultsOn = true;
  #nextId = 1;
  #clientSeq = 0n;
  #lastAckedLsn = 0n;
  #readsSent = 0;
  readonly #acked: { readonly lsn: bigint; readonly clientSeq: bigint }[] = [];
  readonly #faultCounts: Record<string, number> = {};
  readonly #lifecycle: DeliveryLifecycle | null;

  constructor(private readonly options: DeliveryScenarioOptions) {
    assert(options.shards >= 1 && options.shards <= 16, `sim: shards must be 1..16, got ${options.shards}`);
    this.sim = new Simulator({ ...DEFAULT_SIMULATOR_CONFIG, seed: options.seed, traceLinesMax: 60, eventsMax: 200_000 });
    const prng = this.sim.prng;
    this.#shardMap = createShardMap(options.shards);
    this.checker = new DeliveryChecker(this.#shardMap);
    this.#limits = drawLimits(this.sim);
    this.#nemesisGapMsMax = prng.pick([60, 200, 600]);
    this.#clientGapMsMax = prng.pick([3, 10, 30]);
    // Few keys, skewed: some shards stay quiet for long stretches, so dummies matter.
    this.#keys = Array.from({ length: prng.between(options.shards, options.shards * 4) }, (_, i) => `k${i}`);
    this.#clientNode = 1 + options.shards + options.players;
    this.#replicas = options.logstoreReplicas ?? 1;
    const messages = new SimNetwork<Envelope>(this.sim, { messagesInFlightMax: 50_000 }, (to, envelope) => this.#deliver(to, envelope));
    this.#network = messages;
    this.#env = this.#makeEnv();
    const lifecycle = options.lifecycle === false ? null : drawLifecycle(options.seed, options.shards, options.lifecycleFault);
    this.logStore = new SimLogStore(this.#env, {
      ...(lifecycle === null ? {} : { lifecycle: lifecycle.config }),
      fsyncMsMax: prng.pick([0, 3, 15]),
      readEntriesPerMessageMax: prng.pick([1, 4, 32]),
      keepaliveMs: 50,
      pendingAppendsMax: CLIENT_PENDING_APPENDS_MAX,
      readsMax: 16,
      replicas: this.#replicas,
      followerLagMsMax: 30,
      // One replica draws nothing more (its seeds replay as before).
      leaderAtStart: this.#replicas > 1 ? prng.int(this.#replicas) : 0,
    });
    const syncEveryMsMax = prng.pick([5, 40, 200]);
    for (let shard = 0; shard < options.shards; shard++) {
      this.shards.push(
        new SimShard(shard, this.#env, {
          pendingCommitsMax: 100_000,
          syncEveryMsMax,
          waitingGetsMax: 16,
          getWaitMsMax: 500,
          ...(options.brokenDecision === undefined ? {} : { brokenDecision: options.brokenDecision }),
          backupsOn: lifecycle?.config.backupsOn[shard] ?? false,
        }),
      );
    }
    for (let k = 0; k < options.players; k++) {
      this.players.push(
        new SimPlayer(1 + options.shards + k, this.#env, {
          shardMap: this.#shardMap,
          limits: this.#limits,
          keepaliveMs: 20,
          readSilenceMs: 300,
          ackTimeoutMs: prng.pick([150, 400, 1000]),
          startWaitMs: 100,
          recoveryStreamsMax: 2,
          backoff: { initialDelayMs: 5, maxDelayMs: 200, multiplier: 2 },
          // Scaled to the runs' few simulated seconds; one replica draws nothing more (its seeds replay as before).
          leaderMoveIntervalMs: this.#replicas > 1 ? prng.pick([20, 100, 400]) : 1000,
          ...(options.brokenPlayer === undefined ? {} : { brokenPlayer: options.brokenPlayer }),
        }),
      );
    }
    if (lifecycle !== null) {
      const parts = {
        sim: this.sim,
        checker: this.checker,
        logStore: this.logStore,
        shards: this.shards,
        reporter: this.players[0] as SimPlayer,
        connected: (a: SimNodeId, b: SimNodeId) => this.#network.connected(a, b),
        faultsOn: () => this.#faultsOn,
      };
      this.#lifecycle = new DeliveryLifecycle(parts, lifecycle.config, lifecycle.prng);
    } else {
      this.#lifecycle = null;
    }
  }

  get limits(): DeliveryLimits {
    return this.#limits;
  }

  run(): DeliveryScenarioResult {
    let violation: string | undefined;
    let failedAtStep: number | null = null;
    let step = 0;
    try {
      this.#start();
      for (; step < this.options.steps; step++) {
        if (!this.sim.step()) break;
        this.#checkStep();
      }
      step = -1;
      this.#healAll();
      this.#runUntilQuiescent();
      this.#checkFinal();
    } catch (error: unknown) {
      failedAtStep = step >= 0 ? step : null;
      if (error instanceof DeliveryViolation) violation = error.message;
      else violation = `exception: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    }
    return this.#result(violation, failedAtStep);
  }

  #makeEnv(): DeliveryEnv {
    return {
      sim: this.sim,
      network: {
        send: (from, to, message) => this.#network.send(from, to, { from, message }),
        connected: (a, b) => this.#network.connected(a, b),
      },
      checker: this.checker,
      shardCount: this.options.shards,
      peerAlive: (from, node, incarnation) => this.#incarnationOf(node) === incarnation && this.#network.connected(from, node),
      incarnationOf: (node) => this.#incarnationOf(node),
      nextId: () => this.#nextId++,
      logstoreReplicas: this.#replicas,
      replicaNode: (replica) => this.#replicaNode(replica),
      logstoreCommitLsn: (replica) => this.logStore.knownCommitLsn(replica),
    };
  }

  /** Replica 0 is LOGSTORE_NODE; the others come after the client. */
  #replicaNode(replica: number): SimNodeId {
    assert(replica >= 0 && replica < this.#replicas, `sim: no LogStore replica ${replica}`);
    return replica === 0 ? LOGSTORE_NODE : this.#clientNode + replica;
  }

  /** The LogStore replica at `node`, or null. */
  #replicaAt(node: SimNodeId): number | null {
    if (node === LOGSTORE_NODE) return 0;
    const replica = node - this.#clientNode;
    return replica >= 1 && replica < this.#replicas ? replica : null;
  }

  #incarnationOf(node: SimNodeId): number | null {
    if (this.#replicaAt(node) !== null) return this.logStore.up ? this.logStore.incarnation : null;
    if (node === this.#clientNode) return 1;
    const shard = this.shards[node - 1];
    if (shard !== undefined) return shard.up ? shard.incarnation : null;
    const player = this.players[node - 1 - this.options.shards];
    assert(player !== undefined, `sim: unknown node ${node}`);
    return player.up ? player.incarnation : null;
  }

  #deliver(to: SimNodeId, envelope: Envelope): void {
    const { from, message } = envelope;
    if (message.kind !== "keepalive" && message.kind !== "get" && message.kind !== "get-reply" && message.kind !== "batch") {
      this.sim.trace(`n${to} <- n${from} ${describeMessage(message)}`);
    }
    const replica = this.#replicaAt(to);
    if (replica !== null) this.logStore.receive(from, message, replica);
    else if (to === this.#clientNode) this.#clientReceives(message);
    else if (to <= this.options.shards) this.shards[to - 1]?.receive(from, message);
    else this.players[to - 1 - this.options.shards]?.receive(message);
  }

  #start(): void {
    this.logStore.boot();
    for (const shard of this.shards) shard.boot();
    for (const player of this.players) player.boot();
    this.#scheduleClient();
    this.#scheduleReads();
    this.#scheduleNemesis();
    this.#lifecycle?.start();
  }

  // ---- client ----------------------------------------------------------------

  #scheduleClient(): void {
    this.sim.schedule(this.sim.prng.between(1, this.#clientGapMsMax), () => {
      if (!this.#faultsOn) return;
      this.#appendOne();
      this.#scheduleClient();
    });
  }

  /** A transaction of 1-4 APPENDs, each a token unique to this attempt: a double apply shows in the data. */
  #appendOne(): void {
    const prng = this.sim.prng;
    const seq = ++this.#clientSeq;
    const mutations: Mutation[] = [];
    const count = prng.between(1, 4);
    for (let i = 0; i < count; i++) {
      const key = prng.chance(0.7) ? (this.#keys[prng.int(Math.min(3, this.#keys.length))] ?? "k0") : prng.pick(this.#keys);
      mutations.push({ kind: MutationKind.MUTATION_KIND_APPEND, key, value: Buffer.from(`t${seq}.${i};`), delta: 0n });
    }
    this.logStore.append({ mutations }, seq, (lsn) => {
      this.#acked.push({ lsn, clientSeq: seq });
      if (lsn > this.#lastAckedLsn) this.#lastAckedLsn = lsn;
    });
  }

  #scheduleReads(): void {
    this.sim.schedule(this.sim.prng.between(5, 40), () => {
      if (!this.#faultsOn) return;
      const prng = this.sim.prng;
      const key = prng.pick(this.#keys);
      const minLsn = prng.chance(0.7) ? this.#lastAckedLsn : BigInt(prng.between(0, Number(this.#lastAckedLsn)));
      const shard = shardForKey(key, this.#shardMap);
      this.#readsSent += 1;
      this.#network.send(this.#clientNode, shardNode(shard), {
        from: this.#clientNode,
        message: { kind: "get", getId: this.#nextId++, key, minLsn },
      });
      this.#scheduleReads();
    });
  }

  #clientReceives(message: DeliveryMessage): void {
    assert(message.kind === "get-reply", `client: unexpected ${message.kind}`);
    this.checker.checkRead(shardForKey(message.key, this.#shardMap), message.key, message.minLsn, message.appliedLsn, message.value);
  }

  // ---- nemesis ---------------------------------------------------------------

  #scheduleNemesis(): void {
    this.sim.schedule(this.sim.prng.between(5, this.#nemesisGapMsMax), () => {
      if (!this.#faultsOn) return;
      this.#nemesisAction();
      this.#scheduleNemesis();
    });
  }

  #count(fault: string): void {
    this.#faultCounts[fault] = (this.#faultCounts[fault] ?? 0) + 1;
  }

  #nemesisAction(): void {
    const prng = this.sim.prng;
    // One LogStore replica draws as it always did (its seeds replay as before); three add leader changes.
    const choice = prng.int(this.#replicas > 1 ? 16 : 14);
    if (choice >= 14) {
      this.logStore.changeLeader((this.logStore.leader + 1 + prng.int(this.#replicas - 1)) % this.#replicas);
      return;
    }
    if (choice < 3) {
      const shard = prng.pick(this.shards);
      if (!shard.up) return;
      this.#count("shardCrashes");
      shard.crash();
      this.#restartLater(prng.between(5, 600), () => !shard.up && shard.boot());
    } else if (choice < 5) {
      const player = prng.pick(this.players);
      if (!player.up) return;
      this.#count("playerCrashes");
      player.crash();
      this.#restartLater(prng.between(5, 600), () => !player.up && player.boot());
    } else if (choice < 7) {
      const player = prng.pick(this.players);
      this.#count("playerPauses");
      player.pause(this.sim.nowMs + prng.between(20, 1_500));
    } else if (choice < 8) {
      if (!this.logStore.up) return;
      this.#count("logStoreCrashes");
      this.logStore.crash(prng.chance(0.5));
      this.#restartLater(prng.between(5, 300), () => !this.logStore.up && this.logStore.boot());
    } else if (choice < 10) {
      this.#partition();
    } else if (choice < 11) {
      this.#network.heal();
      this.sim.trace("nemesis: heal the partition");
    } else {
      this.#changeNetwork();
    }
  }

  #restartLater(delayMs: number, restart: () => void): void {
    this.sim.schedule(delayMs, () => {
      if (this.#faultsOn) restart();
    });
  }

  #partition(): void {
    this.#count("partitions");
    const prng = this.sim.prng;
    const groups: SimNodeId[][] = [[], []];
    const nodes = [
      ...Array.from({ length: this.#replicas }, (_, replica) => this.#replicaNode(replica)),
      ...this.shards.map((shard) => shard.node),
      ...this.players.map((player) => player.node),
      this.#clientNode,
    ];
    for (const node of nodes) groups[prng.int(2)]?.push(node);
    this.#network.partition(groups);
    this.sim.trace(`nemesis: partition [${groups[0]?.join(",")}] | [${groups[1]?.join(",")}]`);
  }

  #changeNetwork(): void {
    this.#count("networkChanges");
    const faults = pickNetworkFaults(this.sim.prng, DELIVERY_WEATHER);
    this.#network.faults = faults;
    this.sim.trace(describeNetworkFaults(faults));
  }

  // ---- checks ----------------------------------------------------------------

  /** After every step (the shards check their own state as it changes): bounded queues. */
  #checkStep(): void {
    this.#lifecycle?.check();
    for (const player of this.players) {
      const dispatcher = player.dispatcher;
      if (dispatcher === null) continue;
      this.checker.checkBounded(dispatcher.targets, this.#limits, player.label);
      this.checker.checkCommitKnowledge(dispatcher, player.label);
      if (this.options.brokenPlayer === undefined && player.readsOutstanding > this.options.shards) {
        this.checker.fail(`bounded: ${player.label} holds ${player.readsOutstanding} recovery reads for ${this.options.shards} targets`);
      }
    }
  }

  #healAll(): void {
    this.#faultsOn = false;
    this.#network.heal();
    this.#network.faults = HEALED_NETWORK;
    if (!this.logStore.up) this.logStore.boot();
    for (const shard of this.shards) if (!shard.up) shard.boot();
    for (const player of this.players) if (!player.up) player.boot();
    this.sim.trace("heal: network reliable, every process running, the client stops");
  }

  #runUntilQuiescent(): void {
    const stepsMax = this.options.quiesceStepsMax ?? DEFAULT_QUIESCE_STEPS_MAX;
    for (let step = 0; step < stepsMax; step++) {
      if (!this.sim.step()) break;
      this.#checkStep();
      if (step % 20 === 0 && this.#quiescent()) return;
    }
    const where = this.shards.map((shard) => `shard ${shard.index} at ${shard.appliedLsn}`).join(", ");
    this.checker.fail(`liveness: no quiescence within ${stepsMax} steps after healing (log at ${this.checker.lastCommitted}; ${where})`);
  }

  #quiescent(): boolean {
    if (this.logStore.pendingAppends > 0) return false;
    const last = this.checker.lastCommitted;
    return this.shards.every((shard) => shard.up && shard.appliedLsn === last);
  }

  #checkFinal(): void {
    for (const shard of this.shards) this.checker.checkComplete(shard);
    for (const { lsn, clientSeq } of this.#acked) {
      const entry = this.logStore.committed[Number(lsn) - 1];
      if (entry?.clientSeq !== clientSeq) this.checker.fail(`durability: acknowledged append ${clientSeq} at LSN ${lsn} is not in the log`);
    }
  }

  #result(violation: string | undefined, failedAtStep: number | null): DeliveryScenarioResult {
    const { seed, steps, shards, players, brokenDecision, brokenPlayer, lifecycle, lifecycleFault } = this.options;
    const flags = [
      lifecycle === false ? " --no-lifecycle" : "",
      lifecycleFault === undefined ? "" : ` --fault ${lifecycleFault}`,
      brokenDecision === undefined ? "" : ` --broken-decision ${brokenDecision}`,
      brokenPlayer === undefined ? "" : ` --broken-player ${brokenPlayer}`,
      ` --logstore-replicas ${this.#replicas}`,
    ].join("");
    const core: PlayerTotals = {};
    for (const player of this.players) {
      player.finishTotals();
      for (const [name, value] of Object.entries(player.totals)) core[name] = (core[name] ?? 0) + value;
    }
    const shardDecisions = { applied: 0, duplicates: 0, gaps: 0 };
    for (const shard of this.shards) {
      shardDecisions.applied += shard.stats.applied;
      shardDecisions.duplicates += shard.stats.duplicates;
      shardDecisions.gaps += shard.stats.gaps;
    }
    return {
      ok: violation === undefined,
      seed,
      options: this.options,
      violation,
      failedAtStep,
      replayCommand: `node packages/sim/dist/run-delivery.js --seed ${seed} --steps ${steps} --shards ${shards} --players ${players}${flags}`,
      traceTail: this.sim.traceTail(),
      stats: {
        steps: this.sim.stepCount,
        simulatedMs: this.sim.nowMs,
        committed: this.checker.lastCommitted,
        appendsAcked: this.#acked.length,
        readsSent: this.#readsSent,
        readsChecked: this.checker.readsChecked,
        faults: {
          ...this.#faultCounts,
          tornTails: this.logStore.stats.tornTails,
          leaderChanges: this.logStore.stats.leaderChanges,
          ...this.#lifecycle?.stats,
        },
        core,
        shardDecisions,
      },
    };
  }
}

/** Small limits, drawn per seed, so that batching, windows, overflow and chunked recovery all run. */
function drawLimits(sim: Simulator): DeliveryLimits {
  const prng = sim.prng;
  const queueEntriesMax = prng.pick([4, 8, 64]);
  return {
    ...DEFAULT_DELIVERY_LIMITS,
    batchPartsMax: prng.pick([1, 3, 16]),
    batchBytesMax: prng.pick([200, 64 * 1024]),
    windowBatchesMax: prng.pick([1, 2, 4]),
    queueEntriesMax,
    recoveryReadEntriesMax: Math.min(queueEntriesMax, prng.pick([2, 4, 32])),
    dummyEveryEntries: prng.pick([3, 7, 50]),
  };
}

export function runDeliveryScenario(options: DeliveryScenarioOptions): DeliveryScenarioResult {
  return new DeliveryCluster(options).run();
}

/**
 * A simple shrink: a violation during the fault phase replays with --steps
 * cut to the step that failed; one after healing is retried with fewer fault
 * steps (halving) while it still fails. Returns the smallest failing run.
 */
export function shrinkDeliveryFailure(failed: DeliveryScenarioResult, attemptsMax = 8): DeliveryScenarioResult {
  assert(!failed.ok, "shrink: the run did not fail");
  if (failed.failedAtStep !== null) {
    const shorter = runDeliveryScenario({ ...failed.options, steps: failed.failedAtStep + 1 });
    return shorter.ok ? failed : shorter;
  }
  let best = failed;
  for (let attempt = 0; attempt < attemptsMax && best.options.steps > 1; attempt++) {
    const candidate = runDeliveryScenario({ ...best.options, steps: Math.floor(best.options.steps / 2) });
    if (candidate.ok) break;
    best = candidate;
  }
  return best;
}
