import { assert, Backoff, type BackoffConfig, type ShardMapConfig } from "@logplayer/common";
import { Dispatcher, type DeliveryCommand, type DeliveryLimits } from "@logplayer/delivery";
import type { LogEntry } from "@logplayer/proto";
import type { SimNodeId } from "./network";
import { LOGSTORE_NODE, shardNode, type DeliveryEnv, type DeliveryMessage } from "./delivery-messages";

/**
 * TEST-ONLY broken LogPlayer adapter (the core stays unchanged):
 * "ignore-recovery-term" feeds every recovery response to the core with the
 * target's CURRENT term instead of the term its read was issued for, and
 * never cancels superseded reads, so stale recovery entries reach a newer term.
 */
export type BrokenPlayer = "ignore-recovery-term";

export interface SimPlayerConfig {
  readonly shardMap: ShardMapConfig;
  readonly limits: DeliveryLimits;
  readonly tickMs: number;
  /** No HelloReply within this long: the attempt failed. */
  readonly connectTimeoutMs: number;
  /** The health checker: batches unacked and no Ack/Gap for this long, the stream is cancelled. */
  readonly ackTimeoutMs: number;
  /** A recovery read with no message for this long has failed. */
  readonly readTimeoutMs: number;
  /** The main stream is restarted when the tail heartbeat shows entries it has not had for this long. */
  readonly mainStallMs: number;
  /** The main stream is restarted when nothing at all arrived on it for this long. */
  readonly mainIdleMs: number;
  /** After the first HelloReply, wait at most this long for the others before starting the main stream. */
  readonly startWaitMs: number;
  readonly recoveryStreamsMax: number;
  /** Closed streams remembered, so their late responses still reach the core stamped with their old term. */
  readonly closedStreamsMax: number;
  readonly backoff: BackoffConfig;
  readonly brokenPlayer?: BrokenPlayer;
}

interface PlayerStream {
  readonly streamId: number;
  readonly target: number;
  shardIncarnation: number;
  /** Null until the HelloReply arrives. */
  streamTerm: number | null;
  /** When the health checker was last (re)armed: hello or batch sent, Ack or Gap received. */
  lastActivityMs: number;
}

interface RecoveryRead {
  readonly readId: number;
  readonly target: number;
  readonly term: number;
  readonly fromLsn: bigint;
  readonly toLsn: bigint;
  readonly notBeforeMs: number;
  logstoreIncarnation: number;
  lastMessageMs: number;
}

interface MainStream {
  readonly readId: number;
  readonly logstoreIncarnation: number;
  lastEntriesMs: number;
  /** Any message, the tail heartbeat included: a silent main stream is a dead one. */
  lastMessageMs: number;
}

/** Counters summed over a LogPlayer's incarnations, for the run's stats. */
export interface PlayerTotals {
  [name: string]: number;
}

/**
 * One LogPlayer process: the REAL Dispatcher, and the adapter that turns its
 * commands into simulated messages (batches, recovery reads, reconnects after
 * a jittered backoff) and feeds back events (HelloReply, Ack, Gap, write
 * completion, recovery entries/done/failed, disconnects). It keeps no durable
 * state: a crash loses everything. A pause freezes it (a zombie): its events
 * wait, then run late against the world that moved on.
 */
export class SimPlayer {
  incarnation = 0;
  up = false;
  pausedUntilMs = 0;
  dispatcher: Dispatcher | null = null;
  readonly totals: PlayerTotals = {};
  #streams: (PlayerStream | null)[] = [];
  #closedStreams = new Map<number, { readonly target: number; readonly streamTerm: number }>();
  #reconnectBackoff: Backoff[] = [];
  #readBackoff: Backoff[] = [];
  #main: MainStream | null = null;
  #mainBackoff: Backoff;
  #mainResumeAtMs = 0;
  #firstConnectMs: number | null = null;
  #reads = new Map<number, RecoveryRead>();
  #readQueue: RecoveryRead[] = [];

  constructor(
    readonly node: SimNodeId,
    private readonly env: DeliveryEnv,
    private readonly config: SimPlayerConfig,
  ) {
    this.#mainBackoff = this.#newBackoff();
  }

  get label(): string {
    return `p${this.node}`;
  }

  boot(): void {
    assert(!this.up, `${this.label} booted twice`);
    this.up = true;
    this.incarnation += 1;
    this.pausedUntilMs = 0;
    const shards = this.env.shardCount;
    this.dispatcher = new Dispatcher(this.config.shardMap, this.config.limits);
    this.#streams = Array.from({ length: shards }, () => null);
    this.#closedStreams = new Map();
    this.#reconnectBackoff = Array.from({ length: shards }, () => this.#newBackoff());
    this.#readBackoff = Array.from({ length: shards }, () => this.#newBackoff());
    this.#main = null;
    this.#mainBackoff = this.#newBackoff();
    this.#mainResumeAtMs = 0;
    this.#firstConnectMs = null;
    this.#reads = new Map();
    this.#readQueue = [];
    this.env.sim.trace(`${this.label} boots (incarnation ${this.incarnation})`);
    for (let target = 0; target < shards; target++) this.#connect(target);
    this.#scheduleTick(this.incarnation);
  }

  /** The process dies: nothing survives (the LogPlayer keeps no durable state). */
  crash(): void {
    if (!this.up) return;
    this.#addTotals();
    this.up = false;
    this.incarnation += 1;
    this.dispatcher = null;
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

  /** Commands still owed to the core: reads queued or running (bounded by the targets). */
  get readsOutstanding(): number {
    return this.#reads.size + this.#readQueue.length;
  }

  receive(message: DeliveryMessage): void {
    this.#guard(this.incarnation, () => this.#onMessage(message));
  }

  /** Runs `run` for this incarnation: dropped after a crash, delayed while paused; then executes commands. */
  #guard(incarnation: number, run: () => void): void {
    if (incarnation !== this.incarnation || !this.up) return;
    const now = this.env.sim.nowMs;
    if (this.pausedUntilMs > now) {
      this.env.sim.schedule(this.pausedUntilMs - now, () => this.#guard(incarnation, run));
      return;
    }
    run();
    this.#execute();
  }

  #schedule(delayMs: number, run: () => void): void {
    const incarnation = this.incarnation;
    this.env.sim.schedule(delayMs, () => this.#guard(incarnation, run));
  }

  #core(): Dispatcher {
    const dispatcher = this.dispatcher;
    assert(dispatcher !== null, `${this.label}: no dispatcher while up`);
    return dispatcher;
  }

  #execute(): void {
    for (const command of this.#core().takeCommands()) this.#command(command);
  }

  #command(command: DeliveryCommand): void {
    switch (command.kind) {
      case "send": {
        const stream = this.#streams[command.target];
        assert(stream !== null && stream !== undefined && stream.streamTerm === command.streamTerm, `${this.label}: send on a stream that is not current`);
        stream.lastActivityMs = this.env.sim.nowMs;
        this.env.network.send(this.node, shardNode(command.target), { kind: "batch", streamId: stream.streamId, parts: command.parts });
        // The write callback: the bytes left for the socket, whatever the network then does with them.
        const streamTerm = command.streamTerm;
        this.#schedule(this.env.sim.prng.between(0, 2), () => this.#core().writeCompleted(command.target, streamTerm));
        return;
      }
      case "recoveryRead":
        this.#queueRead(command.target, command.term, command.fromLsn, command.toLsn, command.retry);
        return;
      case "reconnect": {
        const backoff = this.#reconnectBackoff[command.target];
        assert(backoff !== undefined, "reconnect: target out of range");
        this.#schedule(backoff.nextDelayMs(), () => this.#connect(command.target));
        return;
      }
    }
  }

  #newBackoff(): Backoff {
    const prng = this.env.sim.prng;
    return new Backoff(this.config.backoff, () => prng.next());
  }

  // ---- Deliver streams ---------------------------------------------------------

  #connect(target: number): void {
    const node = shardNode(target);
    const shardIncarnation = this.env.incarnationOf(node);
    assert(this.#streams[target] === null, `${this.label}: connect to target ${target} with a stream open`);
    if (shardIncarnation === null || !this.env.network.connected(this.node, node)) {
      // Connection refused or unreachable: the attempt fails after a moment.
      this.#schedule(this.env.sim.prng.between(1, 5), () => this.#core().connectFailed(target));
      return;
    }
    const stream: PlayerStream = { streamId: this.env.nextId(), target, shardIncarnation, streamTerm: null, lastActivityMs: this.env.sim.nowMs };
    this.#streams[target] = stream;
    this.env.network.send(this.node, node, { kind: "hello", streamId: stream.streamId });
  }

  #closeStream(target: number): void {
    const stream = this.#streams[target];
    if (stream === null || stream === undefined) return;
    this.#streams[target] = null;
    if (stream.streamTerm === null) {
      this.#core().connectFailed(target);
      return;
    }
    this.#closedStreams.set(stream.streamId, { target, streamTerm: stream.streamTerm });
    if (this.#closedStreams.size > this.config.closedStreamsMax) {
      const oldest = this.#closedStreams.keys().next().value;
      if (oldest !== undefined) this.#closedStreams.delete(oldest);
    }
    this.env.sim.trace(`${this.label} closes stream s${stream.streamId} to shard ${target}`);
    this.#core().disconnected(target, stream.streamTerm);
  }

  #onMessage(message: DeliveryMessage): void {
    switch (message.kind) {
      case "hello-reply":
        this.#onHelloReply(message.streamId, message.appliedLsn, message.shardIncarnation);
        return;
      case "ack":
      case "gap":
        this.#onStreamResponse(message);
        return;
      case "entries":
      case "tail":
      case "read-end":
        if (this.#main !== null && message.readId === this.#main.readId) this.#onMainMessage(this.#main, message);
        else this.#onRecoveryMessage(message);
        return;
      default:
        assert(false, `${this.label}: unexpected ${message.kind}`);
    }
  }

  #onHelloReply(streamId: number, appliedLsn: bigint, shardIncarnation: number): void {
    const stream = this.#streams.find((each) => each !== null && each.streamId === streamId);
    if (stream === undefined || stream === null || stream.streamTerm !== null) return;
    stream.shardIncarnation = shardIncarnation;
    stream.lastActivityMs = this.env.sim.nowMs;
    stream.streamTerm = this.#core().connected(stream.target, appliedLsn);
    this.#reconnectBackoff[stream.target]?.reset();
    if (this.#firstConnectMs === null) this.#firstConnectMs = this.env.sim.nowMs;
    this.env.sim.trace(`${this.label} connected to shard ${stream.target} (s${streamId}, applied ${appliedLsn}, term ${stream.streamTerm})`);
    this.#maybeStartMain();
  }

  #onStreamResponse(message: Extract<DeliveryMessage, { kind: "ack" | "gap" }>): void {
    const current = this.#streams.find((each) => each !== null && each.streamId === message.streamId && each.streamTerm !== null);
    let target: number;
    let streamTerm: number;
    if (current !== undefined && current !== null && current.streamTerm !== null) {
      current.lastActivityMs = this.env.sim.nowMs;
      target = current.target;
      streamTerm = current.streamTerm;
    } else {
      // A late answer on a stream already closed: stamped with its old term, the core must drop it.
      const closed = this.#closedStreams.get(message.streamId);
      if (closed === undefined) return;
      target = closed.target;
      streamTerm = closed.streamTerm;
    }
    if (message.kind === "ack") this.#core().ack(target, streamTerm, message.appliedLsn);
    else this.#core().gap(target, streamTerm, message.report);
  }

  // ---- the main stream -----------------------------------------------------

  #maybeStartMain(): void {
    if (this.#main !== null || this.env.sim.nowMs < this.#mainResumeAtMs) return;
    const core = this.#core();
    if (core.currentIndex === null) {
      const allConnected = core.targets.every((target) => target.state !== "S");
      const waited = this.#firstConnectMs !== null && this.env.sim.nowMs - this.#firstConnectMs >= this.config.startWaitMs;
      const from = core.mainStreamFromLsn();
      if (from === null || !(allConnected || waited)) return;
      core.startMainStream(from);
      this.env.sim.trace(`${this.label} starts the main stream at ${from}`);
    }
    const logstoreIncarnation = this.env.incarnationOf(LOGSTORE_NODE);
    if (logstoreIncarnation === null || !this.env.network.connected(this.node, LOGSTORE_NODE)) {
      this.#mainResumeAtMs = this.env.sim.nowMs + this.#mainBackoff.nextDelayMs();
      return;
    }
    const from = core.mainStreamFromLsn();
    assert(from !== null, "main stream without a start");
    this.#main = { readId: this.env.nextId(), logstoreIncarnation, lastEntriesMs: this.env.sim.nowMs, lastMessageMs: this.env.sim.nowMs };
    this.env.network.send(this.node, LOGSTORE_NODE, { kind: "read", readId: this.#main.readId, fromLsn: from, toLsn: 0n });
  }

  /** Cancels the main stream; it resumes at currentIndex + 1, after a backoff when `backoff`. */
  #restartMain(reason: string, backoff: boolean): void {
    const main = this.#main;
    if (main === null) return;
    this.env.network.send(this.node, LOGSTORE_NODE, { kind: "cancel", readId: main.readId });
    this.#main = null;
    this.#mainResumeAtMs = this.env.sim.nowMs + (backoff ? this.#mainBackoff.nextDelayMs() : 0);
    this.env.sim.trace(`${this.label} restarts the main stream (${reason})`);
  }

  #onMainMessage(main: MainStream, message: Extract<DeliveryMessage, { kind: "entries" | "tail" | "read-end" }>): void {
    const core = this.#core();
    const currentIndex = core.currentIndex;
    assert(currentIndex !== null, "main stream messages before its start");
    main.lastMessageMs = this.env.sim.nowMs;
    if (message.kind === "read-end") {
      this.#restartMain("read ended", true);
    } else if (message.kind === "tail") {
      if (message.commitLsn > currentIndex && this.env.sim.nowMs - main.lastEntriesMs > this.config.mainStallMs) this.#restartMain("stalled", false);
    } else {
      main.lastEntriesMs = this.env.sim.nowMs;
      const fresh = message.entries.filter((entry) => entry.lsn > currentIndex);
      if (fresh.length === 0) return;
      if (!consecutiveFrom(fresh, currentIndex + 1n)) {
        this.#restartMain(`LSN jump to ${fresh[0]?.lsn} after ${currentIndex}`, false);
        return;
      }
      this.#mainBackoff.reset();
      core.dispatchEntries(fresh, this.#nowNs(), message.commitLsn);
    }
  }

  // ---- recovery reads --------------------------------------------------------

  #queueRead(target: number, term: number, fromLsn: bigint, toLsn: bigint, retry: boolean): void {
    const backoff = this.#readBackoff[target];
    assert(backoff !== undefined, "recovery read: target out of range");
    if (this.config.brokenPlayer === undefined) {
      // A new read supersedes any older one of the target: cancel it.
      for (const read of [...this.#reads.values()]) if (read.target === target) this.#endRead(read, true);
      this.#readQueue = this.#readQueue.filter((read) => read.target !== target);
    }
    if (!retry) backoff.reset();
    this.env.sim.trace(`${this.label} wants recovery [${fromLsn}, ${toLsn}] for shard ${target} term ${term}${retry ? " (retry)" : ""}`);
    const notBeforeMs = this.env.sim.nowMs + (retry ? backoff.nextDelayMs() : 0);
    this.#readQueue.push({ readId: this.env.nextId(), target, term, fromLsn, toLsn, notBeforeMs, logstoreIncarnation: 0, lastMessageMs: 0 });
    this.#startReads();
  }

  /** Starts queued reads, FIFO, while fewer than recoveryStreamsMax run. */
  #startReads(): void {
    const now = this.env.sim.nowMs;
    while (this.#reads.size < this.config.recoveryStreamsMax) {
      const position = this.#readQueue.findIndex((read) => read.notBeforeMs <= now);
      if (position === -1) return;
      const [read] = this.#readQueue.splice(position, 1);
      assert(read !== undefined, "recovery read queue hole");
      const logstoreIncarnation = this.env.incarnationOf(LOGSTORE_NODE);
      if (logstoreIncarnation === null || !this.env.network.connected(this.node, LOGSTORE_NODE)) {
        this.#core().recoveryFailed(read.target, read.term);
        continue;
      }
      read.logstoreIncarnation = logstoreIncarnation;
      read.lastMessageMs = now;
      this.#reads.set(read.readId, read);
      this.env.network.send(this.node, LOGSTORE_NODE, { kind: "read", readId: read.readId, fromLsn: read.fromLsn, toLsn: read.toLsn });
    }
  }

  #endRead(read: RecoveryRead, cancel: boolean): void {
    this.#reads.delete(read.readId);
    if (cancel) this.env.network.send(this.node, LOGSTORE_NODE, { kind: "cancel", readId: read.readId });
  }

  #onRecoveryMessage(message: Extract<DeliveryMessage, { kind: "entries" | "tail" | "read-end" }>): void {
    const read = this.#reads.get(message.readId);
    if (read === undefined || message.kind === "tail") return;
    read.lastMessageMs = this.env.sim.nowMs;
    const core = this.#core();
    const broken = this.config.brokenPlayer === "ignore-recovery-term";
    const term = broken ? (core.targets[read.target]?.term ?? read.term) : read.term;
    if (message.kind === "entries") {
      const accepted = core.recoveryEntries(read.target, term, message.entries, this.#nowNs());
      if (!accepted && !broken) this.#endRead(read, true);
    } else {
      this.#endRead(read, false);
      if (message.ok) core.recoveryDone(read.target, term);
      else core.recoveryFailed(read.target, term);
    }
  }

  // ---- the periodic checks: health checker, keepalive, timeouts ----------------

  #scheduleTick(incarnation: number): void {
    this.env.sim.schedule(this.config.tickMs, () => {
      if (incarnation !== this.incarnation) return;
      // A paused process skips its timer; the first tick after the pause sees the late deadlines.
      if (this.pausedUntilMs <= this.env.sim.nowMs) this.#guard(incarnation, () => this.#tick());
      this.#scheduleTick(incarnation);
    });
  }

  #tick(): void {
    const now = this.env.sim.nowMs;
    for (const stream of this.#streams) {
      if (stream === null) continue;
      const alive = this.env.peerAlive(this.node, shardNode(stream.target), stream.shardIncarnation);
      const waiting = stream.streamTerm === null || (this.#core().targets[stream.target]?.windowBatches ?? 0) > 0;
      const timeoutMs = stream.streamTerm === null ? this.config.connectTimeoutMs : this.config.ackTimeoutMs;
      if (!alive || (waiting && now - stream.lastActivityMs > timeoutMs)) this.#closeStream(stream.target);
    }
    const main = this.#main;
    if (main !== null && !this.env.peerAlive(this.node, LOGSTORE_NODE, main.logstoreIncarnation)) this.#restartMain("LogStore unreachable", true);
    else if (main !== null && now - main.lastMessageMs > this.config.mainIdleMs) this.#restartMain("silent", true);
    for (const read of [...this.#reads.values()]) {
      if (this.env.peerAlive(this.node, LOGSTORE_NODE, read.logstoreIncarnation) && now - read.lastMessageMs <= this.config.readTimeoutMs) continue;
      this.#endRead(read, true);
      this.env.sim.trace(`${this.label} recovery read r${read.readId} for shard ${read.target} timed out`);
      this.#core().recoveryFailed(read.target, read.term);
    }
    this.#startReads();
    this.#maybeStartMain();
  }

  #nowNs(): bigint {
    return BigInt(this.env.sim.nowMs) * 1_000_000n;
  }

  #addTotals(): void {
    const dispatcher = this.dispatcher;
    if (dispatcher === null) return;
    for (const target of dispatcher.targets) {
      for (const [name, value] of Object.entries(target.counters)) this.totals[name] = (this.totals[name] ?? 0) + value;
    }
  }
}

function consecutiveFrom(entries: readonly LogEntry[], firstLsn: bigint): boolean {
  return entries.every((entry, i) => entry.lsn === firstLsn + BigInt(i));
}
