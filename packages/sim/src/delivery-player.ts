import { EventEmitter } from "node:events";
import {
  assert,
  DEFAULT_TRANSACTION_LIMITS,
  LpError,
  silentLogger,
  Status,
  type BackoffConfig,
  type Logger,
  type ShardMapConfig,
} from "@logplayer/common";
import type { DeliveryLimits, Dispatcher } from "@logplayer/delivery";
import {
  LogStorePool,
  PlayerDriver,
  type CommitLsnSource,
  type DeliverCall,
  type LogReader,
  type PlayerClock,
  type ReadCall,
  type ShardConnector,
  type TimerHandle,
} from "@logplayer/logplayer";
import type { DeliverRequest, DeliverResponse, ReadRequest, ReadResponse } from "@logplayer/proto";
import type { SimNodeId } from "./network";
import { replicaAddress, shardNode, type DeliveryEnv, type DeliveryMessage } from "./delivery-messages";

/**
 * TEST-ONLY broken transport under the real LogPlayer:
 * "ignore-recovery-term" cross-wires recovery reads — every response of a
 * target's reads arrives on its NEWEST read call, whatever read it belongs
 * to — and never cancels a read at the LogStore, so stale recovery entries
 * reach a newer term as if they were the current read's.
 */
export type BrokenPlayer = "ignore-recovery-term";

export interface SimPlayerConfig {
  readonly shardMap: ShardMapConfig;
  readonly limits: DeliveryLimits;
  /** The transport's keepalive period: dead or unreachable peers break their calls. */
  readonly keepaliveMs: number;
  /** A Read call with a message missing (or nothing heard at all) for this long is broken, as TCP would end it. */
  readonly readSilenceMs: number;
  /** The core's health checker (--ack-timeout-ms). */
  readonly ackTimeoutMs: number;
  readonly startWaitMs: number;
  readonly recoveryStreamsMax: number;
  readonly backoff: BackoffConfig;
  /** The core's leader-move rate limit (--leader-move-interval-ms). */
  readonly leaderMoveIntervalMs: number;
  readonly brokenPlayer?: BrokenPlayer;
}

/** Counters summed over a LogPlayer's incarnations, for the run's stats. */
export interface PlayerTotals {
  [name: string]: number;
}

/** One simulated Shard.Deliver call: requests become network messages, responses arrive as 'data'. */
class SimDeliverCall extends EventEmitter implements DeliverCall {
  open = true;
  constructor(
    readonly streamId: number,
    readonly target: number,
    /** The shard incarnation the keepalive watches: the one that answered, or the one up at connect. */
    public shardIncarnation: number,
    private readonly transport: SimPlayer,
  ) {
    super();
  }

  write(request: DeliverRequest, written: () => void): boolean {
    if (!this.open) return true;
    const body = request.body;
    const shard = shardNode(this.target);
    if (body?.$case === "hello") this.transport.send(shard, { kind: "hello", streamId: this.streamId });
    else if (body?.$case === "batch") {
      this.transport.send(shard, { kind: "batch", streamId: this.streamId, parts: body.value.parts, commitLsn: body.value.commitLsn });
    }
    // The write callback: the bytes left for the socket, whatever the network then does with them.
    this.transport.later(this.transport.env.sim.prng.between(0, 2), () => {
      if (this.open) written();
    });
    return true;
  }

  cancel(): void {
    this.open = false;
    this.transport.forgetStream(this.streamId);
  }

  fail(code: Status, message: string): void {
    if (!this.open) return;
    this.open = false;
    this.transport.forgetStream(this.streamId);
    this.emit("error", new LpError(code, message));
  }
}

type ReadMessage = Extract<DeliveryMessage, { kind: "entries" | "read-end" }>;

/**
 * One simulated LogStore.Read call. The network under it loses and reorders
 * messages; a Read stream over TCP does neither: it delivers in order or
 * breaks. So messages are put back in order by sequence number, and a
 * message missing for readSilenceMs (seen from a later one or from the
 * LogStore's keepalive count) breaks the call, as does silence.
 */
class SimReadCall extends EventEmitter implements ReadCall {
  open = true;
  #nextSeq = 1;
  readonly #early = new Map<number, ReadMessage>();
  #peerSentCount = 0;
  #missingSinceMs: number | null = null;
  lastHeardMs: number;

  constructor(
    readonly readId: number,
    readonly target: number | null,
    /** The LogStore replica's node it reads from. */
    readonly replicaNode: SimNodeId,
    readonly logstoreIncarnation: number,
    private readonly transport: SimPlayer,
  ) {
    super();
    this.lastHeardMs = transport.env.sim.nowMs;
  }

  /** `ordered` false: deliver at once (the broken, cross-wired transport). */
  receive(seq: number, message: ReadMessage, ordered: boolean): void {
    this.lastHeardMs = this.transport.env.sim.nowMs;
    if (!ordered) {
      this.#deliver(message);
      return;
    }
    if (seq >= this.#nextSeq) this.#early.set(seq, message);
    for (let next = this.#early.get(this.#nextSeq); next !== undefined && this.open; next = this.#early.get(this.#nextSeq)) {
      this.#early.delete(this.#nextSeq);
      this.#nextSeq += 1;
      this.#deliver(next);
    }
    this.#checkMissing();
  }

  /** The LogStore's keepalive: how many messages it has sent on this read. */
  keepalive(sentCount: number): void {
    this.lastHeardMs = this.transport.env.sim.nowMs;
    if (sentCount > this.#peerSentCount) this.#peerSentCount = sentCount;
    this.#checkMissing();
  }

  /** True when the transport would have noticed the stream is broken by now. */
  broken(nowMs: number, silenceMs: number): boolean {
    if (nowMs - this.lastHeardMs > silenceMs) return true;
    return this.#missingSinceMs !== null && nowMs - this.#missingSinceMs > silenceMs;
  }

  cancel(): void {
    if (!this.open) return;
    this.open = false;
    this.transport.forgetRead(this, true);
  }

  fail(code: Status, message: string): void {
    if (!this.open) return;
    this.open = false;
    this.transport.forgetRead(this, true);
    this.emit("error", new LpError(code, message));
  }

  #checkMissing(): void {
    const missing = this.#early.size > 0 || this.#peerSentCount >= this.#nextSeq;
    if (!missing) this.#missingSinceMs = null;
    else this.#missingSinceMs ??= this.transport.env.sim.nowMs;
  }

  #deliver(message: ReadMessage): void {
    if (message.kind === "entries") {
      const leaderAddress = message.leader === null ? "" : replicaAddress(message.leader);
      const response: ReadResponse = {
        entries: [...message.entries],
        commitLsn: message.commitLsn,
        leaderAddress,
        fromLeader: message.fromLeader,
      };
      if (this.target === null) this.transport.countMainMessage(message.fromLeader);
      this.emit("data", response);
      return;
    }
    this.open = false;
    this.transport.forgetRead(this, false);
    if (message.ok) this.emit("end");
    else if (message.trimmed !== undefined) {
      // The production LogStore's words: the fetcher tells a trimmed start from the rest by them.
      const { fromLsn, firstLsn } = message.trimmed;
      this.emit(
        "error",
        new LpError(Status.OUT_OF_RANGE, `LSN ${fromLsn} was trimmed; the log starts at ${firstLsn} (first_lsn ${firstLsn})`),
      );
    } else this.emit("error", new LpError(Status.UNAVAILABLE, "LogStore refused the read"));
  }
}

/**
 * One LogPlayer process: the PRODUCTION PlayerDriver of services/logplayer
 * (the LogPlayer core and its TargetStream, MainStream and RecoveryReads
 * shims) over a simulated transport and clock. This class is only that
 * transport: Deliver and Read calls as network messages, timers on the
 * simulated clock, a keepalive that breaks calls to dead or unreachable
 * peers. It keeps no durable state: a crash loses everything. A pause
 * freezes it (a zombie): its events wait, then run late.
 */
export class SimPlayer {
  incarnation = 0;
  up = false;
  pausedUntilMs = 0;
  driver: PlayerDriver | null = null;
  readonly totals: PlayerTotals = {};
  readonly #logger: Logger = silentLogger();
  #streams = new Map<number, SimDeliverCall>();
  #reads = new Map<number, SimReadCall>();

  constructor(
    readonly node: SimNodeId,
    readonly env: DeliveryEnv,
    private readonly config: SimPlayerConfig,
  ) {}

  get label(): string {
    return `p${this.node}`;
  }

  get dispatcher(): Dispatcher | null {
    return this.driver?.core.dispatcher ?? null;
  }

  /** Recovery reads the core holds, running or waiting (bounded by the targets). */
  get readsOutstanding(): number {
    return this.driver?.core.recoveryReadsOutstanding ?? 0;
  }

  boot(): void {
    assert(!this.up, `${this.label} booted twice`);
    this.up = true;
    this.incarnation += 1;
    this.pausedUntilMs = 0;
    this.#streams = new Map();
    this.#reads = new Map();
    const prng = this.env.sim.prng;
    const shards = Array.from({ length: this.env.shardCount }, (_, target) => ({
      address: `shard-${target}`,
      connector: this.#connector(target),
    }));
    const logstore = new LogStorePool(
      Array.from({ length: this.env.logstoreReplicas }, (_, replica) => ({
        address: replicaAddress(replica),
        client: this.#reader(replica),
      })),
    );
    const config = {
      clusterId: "sim",
      shardMap: this.config.shardMap,
      playerId: this.label,
      limits: this.config.limits,
      transactionLimits: DEFAULT_TRANSACTION_LIMITS,
      recoveryStreamsMax: this.config.recoveryStreamsMax,
      ackTimeoutMs: this.config.ackTimeoutMs,
      backoff: this.config.backoff,
      startWaitMs: this.config.startWaitMs,
      leaderMoveIntervalMs: this.config.leaderMoveIntervalMs,
      random: () => prng.next(),
    };
    const commitLsn = this.#commitLsnSource();
    this.driver = new PlayerDriver(config, { shards, logstore, commitLsn, clock: this.#clock() }, this.#logger);
    this.env.sim.trace(`${this.label} boots (incarnation ${this.incarnation})`);
    this.driver.start();
    this.#scheduleKeepalive(this.incarnation);
  }

  /** The process dies: nothing survives (the LogPlayer keeps no durable state); its calls and timers die with it. */
  crash(): void {
    if (!this.up) return;
    this.#addTotals();
    this.up = false;
    this.incarnation += 1;
    this.driver = null;
    this.env.sim.trace(`${this.label} CRASHES`);
  }

  pause(untilMs: number): void {
    if (!this.up) return;
    this.pausedUntilMs = Math.max(this.pausedUntilMs, untilMs);
    this.env.sim.trace(`${this.label} PAUSED until t=${untilMs}ms (zombie)`);
  }

  finishTotals(): void {
    if (this.up) this.#addTotals();
  }

  receive(message: DeliveryMessage): void {
    this.#guard(this.incarnation, () => this.#onMessage(message));
  }

  // ---- what the calls use ------------------------------------------------------

  send(to: SimNodeId, message: DeliveryMessage): void {
    this.env.network.send(this.node, to, message);
  }

  /** Runs `run` after `delayMs` in this incarnation (paused: later). */
  later(delayMs: number, run: () => void): void {
    const incarnation = this.incarnation;
    this.env.sim.schedule(delayMs, () => this.#guard(incarnation, run));
  }

  /** A main-stream message reached the core: served by the leader, or by a follower. */
  countMainMessage(fromLeader: boolean): void {
    const name = fromLeader ? "mainMessagesFromLeader" : "mainMessagesFromFollowers";
    this.totals[name] = (this.totals[name] ?? 0) + 1;
  }

  forgetStream(streamId: number): void {
    this.#streams.delete(streamId);
  }

  forgetRead(read: SimReadCall, cancel: boolean): void {
    this.#reads.delete(read.readId);
    if (cancel && this.config.brokenPlayer === undefined) this.send(read.replicaNode, { kind: "cancel", readId: read.readId });
  }

  // ---- internals ---------------------------------------------------------------

  /** Runs `run` for this incarnation: dropped after a crash, delayed while paused. */
  #guard(incarnation: number, run: () => void): void {
    if (incarnation !== this.incarnation || !this.up) return;
    const now = this.env.sim.nowMs;
    if (this.pausedUntilMs > now) {
      this.env.sim.schedule(this.pausedUntilMs - now, () => this.#guard(incarnation, run));
      return;
    }
    run();
  }

  #clock(): PlayerClock {
    const sim = this.env.sim;
    return {
      nowMs: () => sim.nowMs,
      nowNs: () => BigInt(sim.nowMs) * 1_000_000n,
      setTimer: (delayMs: number, fire: () => void): TimerHandle => {
        const timer = { cleared: false };
        this.later(delayMs, () => {
          if (!timer.cleared) fire();
        });
        return timer;
      },
      clearTimer: (timer: TimerHandle) => {
        (timer as { cleared: boolean }).cleared = true;
      },
    };
  }

  #connector(target: number): ShardConnector {
    return {
      deliver: (): DeliverCall => {
        const node = shardNode(target);
        const shardIncarnation = this.env.incarnationOf(node);
        const call = new SimDeliverCall(this.env.nextId(), target, shardIncarnation ?? 0, this);
        if (shardIncarnation === null || !this.env.network.connected(this.node, node)) {
          // Connection refused or unreachable: the attempt fails after a moment.
          this.later(this.env.sim.prng.between(1, 5), () => call.fail(Status.UNAVAILABLE, "shard unreachable"));
          return call;
        }
        this.#streams.set(call.streamId, call);
        return call;
      },
      close: () => undefined,
    };
  }

  /**
   * LogStore.Status of every replica: the highest commit LSN the reachable ones know, after a round trip,
   * or null when none is up and reachable.
   */
  #commitLsnSource(): CommitLsnSource {
    return {
      commitLsn: (done) => {
        this.later(this.env.sim.prng.between(1, 5), () => {
          let highest: bigint | null = null;
          for (let replica = 0; replica < this.env.logstoreReplicas; replica++) {
            const node = this.env.replicaNode(replica);
            if (this.env.incarnationOf(node) === null || !this.env.network.connected(this.node, node)) continue;
            const known = this.env.logstoreCommitLsn(replica);
            if (highest === null || known > highest) highest = known;
          }
          done(highest);
        });
      },
    };
  }

  #reader(replica: number): LogReader {
    const replicaNode = this.env.replicaNode(replica);
    return {
      read: (request: ReadRequest): ReadCall => {
        const incarnation = this.env.incarnationOf(replicaNode);
        const target = request.toLsn === 0n ? null : Number(/recovery-(\d+)$/.exec(request.readerId)?.[1] ?? -1);
        const call = new SimReadCall(this.env.nextId(), target, replicaNode, incarnation ?? 0, this);
        if (incarnation === null || !this.env.network.connected(this.node, replicaNode)) {
          this.later(this.env.sim.prng.between(1, 5), () => call.fail(Status.UNAVAILABLE, "LogStore unreachable"));
          return call;
        }
        this.#reads.set(call.readId, call);
        if (this.config.brokenPlayer !== undefined) this.#readTargets.set(call.readId, target);
        this.send(replicaNode, { kind: "read", readId: call.readId, fromLsn: request.fromLsn, toLsn: request.toLsn });
        return call;
      },
      close: () => undefined,
    };
  }

  #onMessage(message: DeliveryMessage): void {
    switch (message.kind) {
      case "hello-reply": {
        const call = this.#streams.get(message.streamId);
        if (call === undefined) return;
        call.shardIncarnation = message.shardIncarnation;
        const response: DeliverResponse = { body: { $case: "hello", value: { shardId: call.target, appliedLsn: message.appliedLsn } } };
        call.emit("data", response);
        return;
      }
      case "ack":
      case "gap": {
        const call = this.#streams.get(message.streamId);
        if (call === undefined) return;
        const response: DeliverResponse =
          message.kind === "ack"
            ? { body: { $case: "ack", value: { appliedLsn: message.appliedLsn } } }
            : { body: { $case: "gap", value: message.report } };
        call.emit("data", response);
        return;
      }
      case "entries":
      case "read-end":
        this.#readFor(message.readId)?.receive(message.seq, message, this.config.brokenPlayer === undefined);
        return;
      case "keepalive":
        this.#reads.get(message.readId)?.keepalive(message.sentCount);
        return;
      default:
        assert(false, `${this.label}: unexpected ${message.kind}`);
    }
  }

  /** The call a read's message belongs to; cross-wired to the target's newest read when broken. */
  #readFor(readId: number): SimReadCall | undefined {
    const call = this.#reads.get(readId);
    if (this.config.brokenPlayer === undefined) return call;
    const target = call?.target ?? this.#readTargets.get(readId);
    if (target === undefined || target === null) return call;
    let newest: SimReadCall | undefined;
    for (const each of this.#reads.values()) {
      if (each.target === target && (newest === undefined || each.readId > newest.readId)) newest = each;
    }
    return newest;
  }

  readonly #readTargets = new Map<number, number | null>();

  /** The transport's keepalive: calls to a dead or unreachable peer break; a Read call that lost a message breaks. */
  #scheduleKeepalive(incarnation: number): void {
    this.env.sim.schedule(this.config.keepaliveMs, () => {
      if (incarnation !== this.incarnation) return;
      // A paused process skips its timer; the first one after the pause sees the late deadlines.
      if (this.pausedUntilMs <= this.env.sim.nowMs) this.#guard(incarnation, () => this.#keepalive());
      this.#scheduleKeepalive(incarnation);
    });
  }

  #keepalive(): void {
    const now = this.env.sim.nowMs;
    for (const call of [...this.#streams.values()]) {
      if (!this.env.peerAlive(this.node, shardNode(call.target), call.shardIncarnation)) call.fail(Status.UNAVAILABLE, "shard unreachable");
    }
    for (const call of [...this.#reads.values()]) {
      if (!this.env.peerAlive(this.node, call.replicaNode, call.logstoreIncarnation)) call.fail(Status.UNAVAILABLE, "LogStore unreachable");
      else if (call.broken(now, this.config.readSilenceMs)) call.fail(Status.UNAVAILABLE, "read stream broken (message lost)");
    }
  }

  #addTotals(): void {
    const driver = this.driver;
    if (driver === null) return;
    for (const target of driver.core.targets) {
      for (const [name, value] of Object.entries(target.counters)) this.totals[name] = (this.totals[name] ?? 0) + value;
    }
    for (const [name, value] of Object.entries(driver.core.counters)) this.totals[name] = (this.totals[name] ?? 0) + value;
  }
}
