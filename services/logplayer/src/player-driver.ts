import type { BackoffConfig, Logger, TransactionLimits } from "@logplayer/common";
import { DEFAULT_LEADER_MOVE_INTERVAL_MS, LogPlayer, type DeliveryLimits, type PlayerCommand } from "@logplayer/delivery";
import type { Part, ShardMap } from "@logplayer/proto";
import { MainStream, RecoveryReads, type LogStorePool } from "./fetcher";
import type { PlayerMetrics } from "./player-metrics";
import type { CommitLsnSource, PlayerClock, ShardConnector, TimerHandle } from "./ports";
import { TargetStream } from "./target-stream";

export interface PlayerDriverConfig {
  readonly clusterId: string;
  readonly shardMap: ShardMap;
  readonly playerId: string;
  readonly limits: DeliveryLimits;
  /** The cluster's transaction limits (LogStore Status), sent in every hello. */
  readonly transactionLimits: TransactionLimits;
  /** The LogStore's first stored LSN as last learned, sent in every hello (absent = 0, unknown). */
  readonly logFirstLsn?: () => bigint;
  readonly recoveryStreamsMax: number;
  readonly ackTimeoutMs: number;
  readonly backoff: BackoffConfig;
  readonly startWaitMs: number;
  /**
   * A working main stream moves to the LogStore leader at most once per this long (0: never moves it; see
   * ReplicaChoiceConfig). Absent: DEFAULT_LEADER_MOVE_INTERVAL_MS.
   */
  readonly leaderMoveIntervalMs?: number;
  /** Uniform in [0, 1): backoff jitter. */
  readonly random: () => number;
}

/** What the driver runs on: one connector per shard (index = shard id), the LogStore replicas, and time. */
export interface PlayerPorts {
  readonly shards: readonly { readonly address: string; readonly connector: ShardConnector }[];
  readonly logstore: LogStorePool;
  /** Asked only when a shard reports more than the LogPlayer knows is committed. */
  readonly commitLsn: CommitLsnSource;
  readonly clock: PlayerClock;
}

/**
 * The LogPlayer process minus its servers: the sans-IO core (LogPlayer from
 * @logplayer/delivery) with thin shims around it. The shims turn calls and
 * timers into the core's events, and the core's commands into calls; they
 * decide nothing. One timer runs, armed for the core's next deadline.
 */
export class PlayerDriver {
  readonly core: LogPlayer;
  readonly #streams: TargetStream[];
  readonly #mainStream: MainStream;
  readonly #recovery: RecoveryReads;
  readonly #clock: PlayerClock;
  readonly #logger: Logger;
  #metrics: PlayerMetrics | null = null;
  #timer: TimerHandle | null = null;
  #timerAtMs: number | null = null;
  #started = false;
  #closed = false;

  constructor(
    config: PlayerDriverConfig,
    private readonly ports: PlayerPorts,
    logger: Logger,
  ) {
    this.#clock = ports.clock;
    this.#logger = logger;
    this.core = new LogPlayer({
      shardMap: config.shardMap,
      limits: config.limits,
      startWaitMs: config.startWaitMs,
      ackTimeoutMs: config.ackTimeoutMs,
      recoveryStreamsMax: config.recoveryStreamsMax,
      backoff: config.backoff,
      random: config.random,
      replicas: {
        count: ports.logstore.count,
        leaderMoveIntervalMs: config.leaderMoveIntervalMs ?? DEFAULT_LEADER_MOVE_INTERVAL_MS,
      },
    });
    this.#mainStream = new MainStream(
      ports.logstore,
      config.playerId,
      {
        entries: (entries, commitLsn, leader) =>
          this.#step((now) => {
            const before = this.core.dispatcher.currentIndex ?? 0n;
            this.core.mainEntries(entries, commitLsn, this.#clock.nowNs(), now);
            const dispatched = (this.core.dispatcher.currentIndex ?? 0n) - before;
            if (dispatched > 0n) {
              this.#metrics?.entriesDispatched.inc(Number(dispatched));
              this.#metrics?.dispatchTimeline.dispatched(before + dispatched, this.#clock.nowNs(), () => this.#acknowledgedByAll());
            }
            // After the entries in hand: a move then resumes past them.
            if (leader !== null && leader !== this.core.mainStreamReplica.leader) this.core.leaderReported(leader, now);
          }),
        failed: (reason) => this.#step((now) => this.core.mainStreamFailed(reason, now)),
      },
      logger,
    );
    this.#recovery = new RecoveryReads(
      ports.logstore,
      config.playerId,
      {
        entries: (readId, entries) => this.#step((now) => this.core.recoveryEntries(readId, entries, this.#clock.nowNs(), now)),
        done: (readId) => this.#step((now) => this.core.recoveryDone(readId, now)),
        failed: (readId) => this.#step((now) => this.core.recoveryFailed(readId, now)),
      },
      logger,
    );
    this.#streams = ports.shards.map(({ address, connector }, target) => {
      const streamConfig = {
        target,
        address,
        clusterId: config.clusterId,
        shardMap: config.shardMap,
        playerId: config.playerId,
        limits: config.transactionLimits,
        logFirstLsn: config.logFirstLsn ?? (() => 0n),
      };
      return new TargetStream(
        streamConfig,
        connector,
        {
          helloReply: (shard, appliedLsn) =>
            this.#step((now) => {
              const streamTerm = this.core.connected(shard, appliedLsn, now);
              this.#streams[shard]?.established(streamTerm, appliedLsn);
            }),
          failed: (shard, streamTerm, refused) =>
            this.#step((now) => {
              if (streamTerm === 0) this.core.connectFailed(shard, refused, now);
              else this.core.disconnected(shard, streamTerm, refused, now);
            }),
          ack: (shard, streamTerm, appliedLsn) => this.#step((now) => this.core.ack(shard, streamTerm, appliedLsn, now)),
          gap: (shard, streamTerm, report) =>
            this.#step((now) => {
              this.#metrics?.gapsReceived.inc({ target: String(shard) });
              this.core.gap(shard, streamTerm, report, now);
            }),
          writeCompleted: (shard, streamTerm, parts) =>
            this.#step((now) => {
              this.#observeWrite(parts);
              this.core.writeCompleted(shard, streamTerm, now);
            }),
        },
        logger,
      );
    });
  }

  /** Metrics are optional (the simulator runs without them); the owner registers them before start. */
  useMetrics(metrics: PlayerMetrics): void {
    this.#metrics = metrics;
  }

  /**
   * `commitLsn`: the LogStore's, if the owner asked it before starting (0: unknown). `leaderAddress`: the
   * leader as a replica's Status named it, so that the main stream starts there ("" or unknown: replica 0).
   */
  start(commitLsn = 0n, leaderAddress = ""): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    const leader = this.ports.logstore.indexOf(leaderAddress);
    this.#step((now) => {
      if (leader !== null) this.core.leaderReported(leader, now);
      this.core.start(now, commitLsn);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#mainStream.close();
    this.#recovery.close();
    for (const stream of this.#streams) stream.close();
    for (const shard of this.ports.shards) shard.connector.close();
    this.ports.logstore.close();
  }

  /** Feeds one event to the core, executes what it asks, re-arms the timer. */
  #step(event: (nowMs: number) => void): void {
    if (this.#closed) return;
    event(this.#clock.nowMs());
    for (let commands = this.core.takeCommands(); commands.length > 0 && !this.#closed; commands = this.core.takeCommands()) {
      for (const command of commands) this.#execute(command);
    }
    this.#armTimer();
  }

  #execute(command: PlayerCommand): void {
    const label = (target: number): { target: string } => ({ target: String(target) });
    switch (command.kind) {
      case "openStream":
        this.#metrics?.reconnects.inc(label(command.target));
        this.#streams[command.target]?.open(command.commitLsn);
        break;
      case "closeStream":
        this.#metrics?.ackTimeouts.inc(label(command.target));
        this.#streams[command.target]?.abandon(command.reason);
        break;
      case "send":
        this.#metrics?.partsSent.inc(label(command.target), command.parts.length);
        this.#metrics?.batchesSent.inc(label(command.target));
        this.#streams[command.target]?.send(command.streamTerm, command.parts, command.commitLsn);
        break;
      case "openMainStream":
        if (command.resumed) this.#metrics?.mainStreamRestarts.inc();
        this.#mainStream.open(command.fromLsn, command.replica);
        break;
      case "moveMainStream":
        this.#metrics?.mainStreamMoves.inc();
        this.#mainStream.move(command.fromLsn, command.replica);
        break;
      case "closeMainStream":
        this.#mainStream.stop(command.reason, command.resumeInMs);
        break;
      case "startRecoveryRead":
        this.#metrics?.recoveryStreamsStarted.inc(label(command.target));
        this.#recovery.start(command.readId, command.target, command.fromLsn, command.toLsn);
        break;
      case "cancelRecoveryRead":
        this.#recovery.cancel(command.readId);
        break;
      case "checkCommitLsn":
        this.ports.commitLsn.commitLsn((commitLsn) => this.#step((now) => this.core.commitLsnChecked(commitLsn, now)));
        break;
      case "targetAheadOfLog":
        this.#reportAheadOfLog(command.target, command.appliedLsn, command.commitLsn);
        break;
    }
  }

  /** Loud on purpose: a shard ahead of the log holds entries the log no longer has (or hands out again under their LSNs). */
  #reportAheadOfLog(target: number, appliedLsn: bigint, commitLsn: bigint): void {
    const address = this.ports.shards[target]?.address ?? "?";
    this.#logger.error(
      { target, address, appliedLsn: appliedLsn.toString(), commitLsn: commitLsn.toString() },
      `shard ${target} is ahead of the log: it has applied LSN ${appliedLsn} but the LogStore has committed only up to ` +
        `${commitLsn}; delivery to it is stopped (the log lost acknowledged entries, or the shard's data is from another log). ` +
        "Restore the LogStore or the shard, then restart the LogPlayer",
    );
  }

  /** One timer, for the core's next deadline; a tick runs whatever is due. */
  #armTimer(): void {
    const deadlineMs = this.core.nextDeadlineMs();
    if (deadlineMs === this.#timerAtMs || this.#closed) return;
    if (this.#timer !== null) this.#clock.clearTimer(this.#timer);
    this.#timer = null;
    this.#timerAtMs = deadlineMs;
    if (deadlineMs === null) return;
    const delayMs = Math.max(0, Math.ceil(deadlineMs - this.#clock.nowMs()));
    this.#timer = this.#clock.setTimer(delayMs, () => {
      this.#timer = null;
      this.#timerAtMs = null;
      this.#step((now) => this.core.tick(now));
    });
  }

  /** The lowest LSN every shard has acknowledged. */
  #acknowledgedByAll(): bigint {
    let lowest: bigint | null = null;
    for (const target of this.core.dispatcher.targets) if (lowest === null || target.lastAck < lowest) lowest = target.lastAck;
    return lowest ?? 0n;
  }

  #observeWrite(parts: readonly Part[]): void {
    const histogram = this.#metrics?.dispatchToWriteSeconds;
    if (histogram === undefined) return;
    // Once per batch, for its oldest part (parts are in LSN order): an
    // observation per part cost ~7% of the LogPlayer's CPU at 1,000 txn/s.
    const oldest = parts[0];
    if (oldest !== undefined) histogram.observe(Number(this.#clock.nowNs() - oldest.dispatchTimeNs) / 1e9);
  }
}
