import { assert, Backoff, type BackoffConfig, type ShardMapConfig } from "@logplayer/base";
import type { LogEntry, Part } from "@logplayer/proto";
import { Dispatcher } from "./dispatcher";
import type { DeliveryLimits } from "./delivery-limits";
import type { GapReport, TargetQueue } from "./target-queue";

/**
 * Commit-LSN checks that must each find a held shard beyond the LogStore's
 * commit LSN before the LogPlayer declares it ahead of the log. More than one,
 * each the backoff's ceiling after the last, so that replicas that lag (a
 * follower a heartbeat behind, a leader elected after the old one died before
 * telling anyone its commit index, whose own index catches up once its no-op
 * commits) do not stop a healthy shard for good.
 */
export const AHEAD_CHECKS_TO_CONFIRM = 3;

/** ReplicaChoiceConfig.leaderMoveIntervalMs unless configured (--leader-move-interval-ms). */
export const DEFAULT_LEADER_MOVE_INTERVAL_MS = 1000;

export interface LogPlayerConfig {
  readonly shardMap: ShardMapConfig;
  readonly limits: DeliveryLimits;
  /** After the first shard answers, how long to wait for the others before starting the main stream. */
  readonly startWaitMs: number;
  /** The health checker: no HelloReply, or no Ack/Gap while batches are unacked, for this long: the stream is dead. */
  readonly ackTimeoutMs: number;
  /** Recovery reads running at once; more wait in FIFO order (at most one per target). */
  readonly recoveryStreamsMax: number;
  /** Reconnects, main-stream resumes and recovery retries wait a capped, jittered backoff. */
  readonly backoff: BackoffConfig;
  /** Uniform in [0, 1): the backoff's jitter. Math.random in production, the seeded PRNG in the simulator. */
  readonly random: () => number;
  /** The LogStore replicas the main stream may read from; absent: one, nothing to choose. */
  readonly replicas?: ReplicaChoiceConfig;
}

/**
 * Which LogStore replica serves the main stream. Every replica serves only
 * committed entries, but a follower learns of a commit a message after the
 * leader, so the main stream reads from the leader when it is known and
 * reachable, and from any replica otherwise.
 */
export interface ReplicaChoiceConfig {
  /** Replicas, named by their index in the adapter's configured order (0 first). */
  readonly count: number;
  /**
   * A working main stream moves to the leader at most once per this long, and
   * a replica whose main stream failed is not moved to again for this long:
   * a flapping leader cannot make the stream thrash. 0: never move a working
   * stream (a failed one still resumes on the leader when it is known).
   */
  readonly leaderMoveIntervalMs: number;
}

/**
 * What the LogPlayer core asks its adapter to do, at once (every delay is
 * the core's: it waits for the tick that reaches it). The adapter executes
 * each command and reports what happens as events.
 */
export type PlayerCommand =
  /** Open a Deliver stream to the target and send its hello (carrying `commitLsn`); report connected or connectFailed. */
  | { readonly kind: "openStream"; readonly target: number; readonly commitLsn: bigint }
  /** The health checker gave up on the target's stream: cancel it and report nothing more about it. */
  | { readonly kind: "closeStream"; readonly target: number; readonly reason: string }
  /**
   * Write `parts` as one PartBatch on the stream opened at `streamTerm`, carrying `commitLsn` (the
   * LogStore's commit LSN as known now: at least every part's LSN, never less than before); report writeCompleted.
   */
  | {
      readonly kind: "send";
      readonly target: number;
      readonly streamTerm: number;
      readonly parts: Part[];
      readonly bytes: number;
      readonly commitLsn: bigint;
    }
  /** Open the main stream: Read(fromLsn, tail) on `replica`. `resumed` is false for the first start of this process. */
  | { readonly kind: "openMainStream"; readonly fromLsn: bigint; readonly resumed: boolean; readonly replica: number }
  /**
   * Cancel the working main stream (on `fromReplica`) and open it at once on `replica`, the leader:
   * Read(fromLsn, tail). Entries the old call still delivers must be dropped (the core would skip them anyway).
   */
  | { readonly kind: "moveMainStream"; readonly fromLsn: bigint; readonly fromReplica: number; readonly replica: number }
  /** Cancel the main stream (it failed, or sent something unusable); it is reopened in `resumeInMs`. */
  | { readonly kind: "closeMainStream"; readonly reason: string; readonly resumeInMs: number }
  /** Read [fromLsn, toLsn] for `target`; report its entries, done or failed under `readId`. */
  | {
      readonly kind: "startRecoveryRead";
      readonly readId: number;
      readonly target: number;
      readonly fromLsn: bigint;
      readonly toLsn: bigint;
    }
  /** The read is no longer wanted (superseded, or its term expired): cancel it, report nothing more about it. */
  | { readonly kind: "cancelRecoveryRead"; readonly readId: number; readonly target: number }
  /** Ask the LogStore for its commit LSN (a shard reported more than is known); report commitLsnChecked. */
  | { readonly kind: "checkCommitLsn" }
  /** The target's shard is ahead of the log: delivery to it stopped. Say so loudly; nothing else to do. */
  | { readonly kind: "targetAheadOfLog"; readonly target: number; readonly appliedLsn: bigint; readonly commitLsn: bigint };

/** The transport state of one target's stream, as far as the core knows it. */
interface TargetLink {
  stream: "closed" | "connecting" | "connected";
  streamTerm: number;
  /** When to open a new stream, or null when none is scheduled. */
  reconnectAtMs: number | null;
  /** The last attempt was refused (wrong cluster, map or version): that will not fix itself soon. */
  refused: boolean;
  /** The health checker's deadline: HelloReply or Ack/Gap due by then. */
  ackDeadlineMs: number | null;
  readonly reconnectBackoff: Backoff;
  readonly readBackoff: Backoff;
  /** Commit-LSN checks that found the target's shard beyond the log, while held at `term`. */
  aheadChecks: { term: number; confirmations: number };
}

/** The commit-LSN check: at most one runs; `targets` are the held targets (and their terms) it was asked for. */
interface CommitCheck {
  running: { readonly targets: ReadonlyMap<number, number> } | null;
  /** When the next check may run (after a failed or inconclusive one), or null when none is wanted. */
  atMs: number | null;
  readonly backoff: Backoff;
}

interface RecoveryRead {
  readonly readId: number;
  readonly target: number;
  readonly term: number;
  readonly fromLsn: bigint;
  readonly toLsn: bigint;
  readonly notBeforeMs: number;
}

type MainStreamState = "waiting" | "open" | "resuming";

/** The main stream's replica: where it reads, what the replicas say of the leader, when it last moved or failed. */
interface ReplicaChoice {
  readonly count: number;
  readonly moveIntervalMs: number;
  /** The replica the main stream reads from (or last read from, while it waits to resume). */
  serving: number;
  /** The leader, as last reported; null when unknown. */
  leader: number | null;
  /** When the main stream last failed on each replica: not moved to again for moveIntervalMs. */
  readonly failedAtMs: (number | null)[];
  lastMoveAtMs: number | null;
}

/**
 * The LogPlayer's protocol, sans I/O: the Dispatcher and its target queues
 * plus every decision around them that used to live in the adapters — when
 * the main stream starts and restarts, which main-stream entries are new
 * and which are a jump, which recovery reads are stale, superseded or wait
 * their turn, how long a reconnect waits, and when a silent target is dead.
 * Events in (each with the time it happened), commands out (`takeCommands`),
 * and `tick(nowMs)` once `nextDeadlineMs()` is reached. No timers, no
 * clock, no randomness of its own: the caller passes them in.
 */
export class LogPlayer {
  readonly dispatcher: Dispatcher;
  readonly #config: LogPlayerConfig;
  readonly #links: TargetLink[];
  readonly #mainBackoff: Backoff;
  #main: MainStreamState = "waiting";
  #mainResumeAtMs: number | null = null;
  /** Set at the first HelloReply while some shard is still missing. */
  #startWaitDeadlineMs: number | null = null;
  #started = false;
  #nowMs = 0;
  #nextReadId = 1;
  readonly #readsRunning = new Map<number, RecoveryRead>();
  readonly #readsWaiting: RecoveryRead[] = [];
  #outbox: PlayerCommand[] = [];
  readonly #commitCheck: CommitCheck;
  readonly #replica: ReplicaChoice;
  readonly counters = {
    mainStreamMoves: 0,
    mainStreamJumps: 0,
    readsSuperseded: 0,
    readsCancelled: 0,
    ackTimeouts: 0,
    commitChecks: 0,
    targetsAheadOfLog: 0,
  };

  constructor(config: LogPlayerConfig) {
    assert(config.startWaitMs >= 0 && config.ackTimeoutMs >= 1, "log player: bad timeouts");
    assert(Number.isSafeInteger(config.recoveryStreamsMax) && config.recoveryStreamsMax >= 1, "recoveryStreamsMax must be at least 1");
    this.#config = config;
    this.dispatcher = new Dispatcher(config.shardMap, config.limits);
    this.#links = this.dispatcher.targets.map(() => ({
      stream: "closed",
      streamTerm: 0,
      reconnectAtMs: null,
      refused: false,
      ackDeadlineMs: null,
      reconnectBackoff: new Backoff(config.backoff, config.random),
      readBackoff: new Backoff(config.backoff, config.random),
      aheadChecks: { term: 0, confirmations: 0 },
    }));
    this.#mainBackoff = new Backoff(config.backoff, config.random);
    this.#commitCheck = { running: null, atMs: null, backoff: new Backoff(config.backoff, config.random) };
    const replicas = config.replicas ?? { count: 1, leaderMoveIntervalMs: 0 };
    assert(Number.isSafeInteger(replicas.count) && replicas.count >= 1, "replicas.count must be at least 1");
    assert(Number.isFinite(replicas.leaderMoveIntervalMs) && replicas.leaderMoveIntervalMs >= 0, "leaderMoveIntervalMs must be >= 0");
    this.#replica = {
      count: replicas.count,
      moveIntervalMs: replicas.leaderMoveIntervalMs,
      serving: 0,
      leader: null,
      failedAtMs: Array.from({ length: replicas.count }, () => null),
      lastMoveAtMs: null,
    };
  }

  get targets(): readonly TargetQueue[] {
    return this.dispatcher.targets;
  }

  get mainStreamOpen(): boolean {
    return this.#main === "open";
  }

  /** The replica the main stream reads from (or will resume on), and the leader as last reported. */
  get mainStreamReplica(): { readonly serving: number; readonly leader: number | null } {
    return { serving: this.#replica.serving, leader: this.#replica.leader };
  }

  /** Recovery reads running or waiting; at most one per target. */
  get recoveryReadsOutstanding(): number {
    return this.#readsRunning.size + this.#readsWaiting.length;
  }

  /** Commands produced since the last call, in order. */
  takeCommands(): PlayerCommand[] {
    if (this.#outbox.length === 0) return [];
    const commands = this.#outbox;
    this.#outbox = [];
    return commands;
  }

  /** When the next tick is due, or null when nothing waits on time. */
  nextDeadlineMs(): number | null {
    let next: number | null = null;
    const consider = (at: number | null): void => {
      if (at !== null && (next === null || at < next)) next = at;
    };
    for (const link of this.#links) {
      consider(link.reconnectAtMs);
      consider(link.ackDeadlineMs);
    }
    consider(this.#startWaitDeadlineMs);
    consider(this.#mainResumeAtMs);
    consider(this.dispatcher.progressDueAtMs());
    if (this.#commitCheck.running === null) consider(this.#commitCheck.atMs);
    if (this.#readsRunning.size < this.#config.recoveryStreamsMax) for (const read of this.#readsWaiting) consider(read.notBeforeMs);
    consider(this.#leaderMoveDueMs());
    return next;
  }

  /**
   * The process starts: connect to every shard (the core keeps no durable
   * state; the shards tell it where they are). `commitLsn`: the LogStore's,
   * when the adapter asked it first (0 when unknown: a shard with anything
   * applied is then held until the first check or Read response).
   */
  start(nowMs: number, commitLsn = 0n): void {
    assert(!this.#started, "log player started twice");
    this.#started = true;
    this.#advance(nowMs);
    this.dispatcher.observeCommitLsn(commitLsn);
    for (let target = 0; target < this.#links.length; target++) this.#openStream(target);
  }

  /** Runs whatever is due by `nowMs`: reconnects, the health checker, the main stream's start or resume, waiting reads, owed progress. */
  tick(nowMs: number): void {
    this.#advance(nowMs);
    this.#links.forEach((link, target) => {
      if (link.reconnectAtMs !== null && link.reconnectAtMs <= nowMs) {
        link.reconnectAtMs = null;
        if (link.stream === "closed") this.#openStream(target);
      }
      if (link.ackDeadlineMs !== null && link.ackDeadlineMs <= nowMs) this.#ackDeadlinePassed(target, link);
    });
    if (this.#startWaitDeadlineMs !== null && this.#startWaitDeadlineMs <= nowMs) {
      this.#startWaitDeadlineMs = null;
      this.#startMainStreamNow();
    }
    if (this.#mainResumeAtMs !== null && this.#mainResumeAtMs <= nowMs) {
      this.#mainResumeAtMs = null;
      this.#openMainStream(true);
    }
    this.dispatcher.progressTick(nowMs);
    this.#maybeMoveToLeader();
    this.#drain();
  }

  // ---- Deliver streams ---------------------------------------------------------

  /** HelloReply on the stream opened for `target`. Returns the stream's term, which the adapter stamps on its events. */
  connected(target: number, appliedLsn: bigint, nowMs: number): number {
    this.#advance(nowMs);
    const link = this.#link(target);
    assert(link.stream === "connecting", `target ${target}: HelloReply with no stream opening (${link.stream})`);
    link.stream = "connected";
    link.refused = false;
    link.ackDeadlineMs = null;
    link.streamTerm = this.dispatcher.connected(target, appliedLsn);
    this.#maybeStartMainStream();
    this.#drain();
    return link.streamTerm;
  }

  /** The stream opened for `target` failed before its HelloReply; `refused` when the shard refused our identity. */
  connectFailed(target: number, refused: boolean, nowMs: number): void {
    this.#advance(nowMs);
    const link = this.#link(target);
    if (link.stream !== "connecting") return;
    link.stream = "closed";
    link.refused = refused;
    link.ackDeadlineMs = null;
    this.dispatcher.connectFailed(target);
    this.#drain();
  }

  /** The connected stream at `streamTerm` broke; `refused` when the shard refused our identity. */
  disconnected(target: number, streamTerm: number, refused: boolean, nowMs: number): void {
    this.#advance(nowMs);
    const link = this.#link(target);
    if (link.stream !== "connected" || link.streamTerm !== streamTerm) return;
    this.#closeLink(link, refused);
    this.dispatcher.disconnected(target, streamTerm);
    this.#drain();
  }

  ack(target: number, streamTerm: number, appliedLsn: bigint, nowMs: number): void {
    this.#advance(nowMs);
    this.dispatcher.ack(target, streamTerm, appliedLsn);
    this.#heardFrom(target, streamTerm);
    this.#drain();
  }

  gap(target: number, streamTerm: number, report: GapReport, nowMs: number): void {
    this.#advance(nowMs);
    this.dispatcher.gap(target, streamTerm, report);
    this.#heardFrom(target, streamTerm);
    this.#drain();
  }

  writeCompleted(target: number, streamTerm: number, nowMs: number): void {
    this.#advance(nowMs);
    this.dispatcher.writeCompleted(target, streamTerm);
    this.#drain();
  }

  // ---- the main stream -------------------------------------------------------

  /**
   * One message of the main stream: consecutive entries and the LogStore's
   * commit LSN. What was already dispatched (re-sent after a resume) is
   * skipped; a jump past currentIndex + 1 restarts the stream there.
   */
  mainEntries(entries: readonly LogEntry[], commitLsn: bigint, dispatchTimeNs: bigint, nowMs: number): void {
    this.#advance(nowMs);
    const currentIndex = this.dispatcher.currentIndex;
    if (this.#main !== "open" || currentIndex === null) return;
    this.#mainBackoff.reset();
    let first = 0;
    while (first < entries.length && entries[first]!.lsn <= currentIndex) first += 1;
    let end = first;
    while (end < entries.length && entries[end]!.lsn === currentIndex + 1n + BigInt(end - first)) end += 1;
    if (end > first) {
      const fresh = first === 0 && end === entries.length ? entries : entries.slice(first, end);
      this.dispatcher.dispatchEntries(fresh, dispatchTimeNs, commitLsn, nowMs);
    }
    if (end < entries.length) {
      this.counters.mainStreamJumps += 1;
      this.#closeMainStream(`main stream jumped from ${this.dispatcher.currentIndex} to ${entries[end]!.lsn}`);
    }
    this.#drain();
  }

  /** The main stream failed or ended (it tails forever, so an end is a failure too). */
  mainStreamFailed(reason: string, nowMs: number): void {
    this.#advance(nowMs);
    if (this.#main !== "open") return;
    this.#replica.failedAtMs[this.#replica.serving] = this.#nowMs;
    this.#closeMainStream(reason);
    this.#drain();
  }

  /**
   * What a LogStore replica says of the leader (a Read response, a Status
   * answer): `leader` is its index, or null when the replica knows none.
   * The latest report wins; moving the stream to it is rate-limited.
   */
  leaderReported(leader: number | null, nowMs: number): void {
    this.#advance(nowMs);
    assert(
      leader === null || (Number.isSafeInteger(leader) && leader >= 0 && leader < this.#replica.count),
      `leader ${leader} out of range`,
    );
    this.#replica.leader = leader;
    this.#maybeMoveToLeader();
    this.#drain();
  }

  // ---- the commit LSN -----------------------------------------------------------

  /**
   * The answer to checkCommitLsn: the LogStore's commit LSN, or null when
   * it could not be learned. Held targets it covers are released; one it
   * finds beyond the log for the AHEAD_CHECKS_TO_CONFIRM-th time is declared
   * ahead of the log (delivery to it stops for good: `targetAheadOfLog`).
   */
  commitLsnChecked(commitLsn: bigint | null, nowMs: number): void {
    this.#advance(nowMs);
    const check = this.#commitCheck;
    const running = check.running;
    if (running === null) return;
    check.running = null;
    // A failed check is retried with the backoff; an answered one that leaves a shard held, at the ceiling.
    check.atMs = this.#nowMs + (commitLsn === null ? check.backoff.nextDelayMs() : this.#config.backoff.maxDelayMs);
    if (commitLsn !== null) {
      this.dispatcher.observeCommitLsn(commitLsn);
      for (const [target, term] of running.targets) this.#confirmAhead(target, term);
      this.#maybeStartMainStream();
    }
    this.#drain();
  }

  #confirmAhead(target: number, term: number): void {
    const queue = this.dispatcher.targets[target]!;
    if (queue.state !== "A" || queue.aheadOfLog !== null || queue.term !== term) return; // released, or held anew since
    const link = this.#link(target);
    if (link.aheadChecks.term !== term) link.aheadChecks = { term, confirmations: 0 };
    link.aheadChecks.confirmations += 1;
    if (link.aheadChecks.confirmations < AHEAD_CHECKS_TO_CONFIRM) return;
    this.dispatcher.declareAheadOfLog(target);
    this.counters.targetsAheadOfLog += 1;
    this.#outbox.push({ kind: "targetAheadOfLog", target, appliedLsn: queue.lastAck, commitLsn: this.dispatcher.commitLsnKnown });
  }

  /** While some target is held and not yet declared, one check runs, the next after a backoff. */
  #maybeCheckCommitLsn(): void {
    const check = this.#commitCheck;
    if (check.running !== null) return;
    const held = this.dispatcher.targetsAwaitingCommitCheck();
    if (held.length === 0) {
      check.atMs = null;
      check.backoff.reset();
      return;
    }
    check.atMs ??= this.#nowMs;
    if (check.atMs > this.#nowMs) return;
    check.atMs = null;
    check.running = { targets: new Map(held.map((queue) => [queue.target, queue.term])) };
    this.counters.commitChecks += 1;
    this.#outbox.push({ kind: "checkCommitLsn" });
  }

  // ---- recovery reads --------------------------------------------------------

  /** Entries of a running recovery read. A read whose term expired, or that the target refused, is cancelled. */
  recoveryEntries(readId: number, entries: readonly LogEntry[], dispatchTimeNs: bigint, nowMs: number): void {
    this.#advance(nowMs);
    const read = this.#readsRunning.get(readId);
    if (read === undefined) return;
    if (!this.#readIsCurrent(read)) {
      this.#cancelRead(read);
    } else {
      const accepted = this.dispatcher.recoveryEntries(read.target, read.term, entries, dispatchTimeNs);
      if ((!accepted || !this.#readIsCurrent(read)) && this.#readsRunning.has(readId)) this.#cancelRead(read);
    }
    this.#drain();
  }

  /** The recovery read ended normally. */
  recoveryDone(readId: number, nowMs: number): void {
    this.#endRead(readId, nowMs, (read) => {
      this.#link(read.target).readBackoff.reset();
      this.dispatcher.recoveryDone(read.target, read.term);
    });
  }

  recoveryFailed(readId: number, nowMs: number): void {
    this.#endRead(readId, nowMs, (read) => this.dispatcher.recoveryFailed(read.target, read.term));
  }

  /** A running read ended: forget it and tell the dispatcher how; an unknown (cancelled) read changes nothing. */
  #endRead(readId: number, nowMs: number, ended: (read: RecoveryRead) => void): void {
    this.#advance(nowMs);
    const read = this.#readsRunning.get(readId);
    if (read === undefined) return;
    this.#readsRunning.delete(readId);
    ended(read);
    this.#drain();
  }

  // ---- internals ---------------------------------------------------------------

  #advance(nowMs: number): void {
    assert(Number.isFinite(nowMs), "log player: time must be a finite number");
    // Time never runs backwards for the core, whatever the caller's clock does.
    if (nowMs > this.#nowMs) this.#nowMs = nowMs;
  }

  #link(target: number): TargetLink {
    const link = this.#links[target];
    if (link === undefined) assert(false, `target ${target} out of range [0, ${this.#links.length})`);
    return link;
  }

  #openStream(target: number): void {
    const link = this.#link(target);
    assert(link.stream === "closed", `target ${target}: open with a stream ${link.stream}`);
    link.stream = "connecting";
    link.ackDeadlineMs = this.#nowMs + this.#config.ackTimeoutMs; // a HelloReply is due too
    this.#outbox.push({ kind: "openStream", target, commitLsn: this.dispatcher.commitLsnKnown });
  }

  #closeLink(link: TargetLink, refused: boolean): void {
    link.stream = "closed";
    link.streamTerm = 0;
    link.refused = refused;
    link.ackDeadlineMs = null;
  }

  /** An Ack or Gap: the target is alive; the deadline runs again only while batches wait for their ack. */
  #heardFrom(target: number, streamTerm: number): void {
    const link = this.#link(target);
    if (link.stream !== "connected" || link.streamTerm !== streamTerm) return;
    link.reconnectBackoff.reset();
    link.ackDeadlineMs = this.dispatcher.targets[target]!.windowBatches > 0 ? this.#nowMs + this.#config.ackTimeoutMs : null;
  }

  #ackDeadlinePassed(target: number, link: TargetLink): void {
    link.ackDeadlineMs = null;
    if (link.stream === "connected" && this.dispatcher.targets[target]!.windowBatches === 0) return;
    this.counters.ackTimeouts += 1;
    const waiting = link.stream === "connected" ? "Ack" : "HelloReply";
    this.#outbox.push({ kind: "closeStream", target, reason: `no ${waiting} within ${this.#config.ackTimeoutMs} ms` });
    if (link.stream === "connecting") {
      this.#closeLink(link, false);
      this.dispatcher.connectFailed(target);
    } else if (link.stream === "connected") {
      const streamTerm = link.streamTerm;
      this.#closeLink(link, false);
      this.dispatcher.disconnected(target, streamTerm);
    }
  }

  /** The main stream starts once every shard answered, or startWaitMs after the first did. */
  #maybeStartMainStream(): void {
    if (this.dispatcher.currentIndex !== null) return;
    if (this.dispatcher.targets.every((t) => t.state === "S")) return; // nobody answered yet
    if (this.dispatcher.targets.every((t) => t.state !== "S")) {
      this.#startMainStreamNow();
      return;
    }
    this.#startWaitDeadlineMs ??= this.#nowMs + this.#config.startWaitMs;
  }

  #startMainStreamNow(): void {
    this.#startWaitDeadlineMs = null;
    if (this.dispatcher.currentIndex !== null) return;
    const fromLsn = this.dispatcher.mainStreamFromLsn();
    if (fromLsn === null) return; // every shard dropped again; the next HelloReply tries again
    this.dispatcher.startMainStream(fromLsn);
    this.#openMainStream(false);
  }

  #openMainStream(resumed: boolean): void {
    const fromLsn = this.dispatcher.mainStreamFromLsn();
    assert(fromLsn !== null && this.dispatcher.currentIndex !== null, "main stream opened before its start was fixed");
    assert(this.#main !== "open", "main stream opened twice");
    this.#main = "open";
    this.#replica.serving = this.#replicaToOpen();
    this.#outbox.push({ kind: "openMainStream", fromLsn, resumed, replica: this.#replica.serving });
  }

  /**
   * Where a (re)opened main stream reads: the leader when known and reachable;
   * else the replica it read from, unless that one just failed (then the next).
   */
  #replicaToOpen(): number {
    const choice = this.#replica;
    const leader = choice.leader;
    if (leader !== null && !this.#failedRecently(leader)) return leader;
    return this.#failedRecently(choice.serving) ? (choice.serving + 1) % choice.count : choice.serving;
  }

  #failedRecently(replica: number): boolean {
    const failedAtMs = this.#replica.failedAtMs[replica] ?? null;
    return failedAtMs !== null && this.#nowMs < failedAtMs + Math.max(this.#replica.moveIntervalMs, this.#config.backoff.maxDelayMs);
  }

  /** When a working main stream may next move to the leader, or null when no move is wanted. */
  #leaderMoveDueMs(): number | null {
    const choice = this.#replica;
    if (this.#main !== "open" || choice.moveIntervalMs === 0 || choice.leader === null || choice.leader === choice.serving) return null;
    const failedAtMs = choice.failedAtMs[choice.leader] ?? null;
    const reachableAtMs = failedAtMs === null ? 0 : failedAtMs + Math.max(choice.moveIntervalMs, this.#config.backoff.maxDelayMs);
    const allowedAtMs = choice.lastMoveAtMs === null ? 0 : choice.lastMoveAtMs + choice.moveIntervalMs;
    return Math.max(reachableAtMs, allowedAtMs);
  }

  /** Moves a working main stream to the leader once that is due; it resumes at currentIndex + 1 there. */
  #maybeMoveToLeader(): void {
    const dueMs = this.#leaderMoveDueMs();
    if (dueMs === null || dueMs > this.#nowMs) return;
    const choice = this.#replica;
    const fromLsn = this.dispatcher.mainStreamFromLsn();
    assert(fromLsn !== null && choice.leader !== null, "main stream moved before its start was fixed");
    const fromReplica = choice.serving;
    choice.serving = choice.leader;
    choice.lastMoveAtMs = this.#nowMs;
    this.counters.mainStreamMoves += 1;
    this.#mainBackoff.reset();
    this.#outbox.push({ kind: "moveMainStream", fromLsn, fromReplica, replica: choice.serving });
  }

  #closeMainStream(reason: string): void {
    assert(this.#main === "open", "closing a main stream that is not open");
    const resumeInMs = this.#mainBackoff.nextDelayMs();
    this.#main = "resuming";
    this.#mainResumeAtMs = this.#nowMs + resumeInMs;
    this.#outbox.push({ kind: "closeMainStream", reason, resumeInMs });
  }

  #readIsCurrent(read: RecoveryRead): boolean {
    const queue = this.dispatcher.targets[read.target]!;
    return queue.term === read.term && queue.state === "RF";
  }

  #cancelRead(read: RecoveryRead): void {
    this.counters.readsCancelled += 1;
    this.#readsRunning.delete(read.readId);
    this.#outbox.push({ kind: "cancelRecoveryRead", readId: read.readId, target: read.target });
  }

  /** A new read for a target supersedes its older one: cancel it if running, forget it if waiting. */
  #queueRead(target: number, term: number, fromLsn: bigint, toLsn: bigint, retry: boolean): void {
    for (const running of this.#readsRunning.values()) {
      if (running.target !== target) continue;
      this.counters.readsSuperseded += 1;
      this.#cancelRead(running);
    }
    const waiting = this.#readsWaiting.findIndex((read) => read.target === target);
    if (waiting !== -1) this.#readsWaiting.splice(waiting, 1);
    const notBeforeMs = retry ? this.#nowMs + this.#link(target).readBackoff.nextDelayMs() : this.#nowMs;
    this.#readsWaiting.push({ readId: this.#nextReadId++, target, term, fromLsn, toLsn, notBeforeMs });
  }

  /** Starts waiting reads that are due, oldest first, while fewer than recoveryStreamsMax run. */
  #startReads(): void {
    for (let i = 0; i < this.#readsWaiting.length && this.#readsRunning.size < this.#config.recoveryStreamsMax; ) {
      const read = this.#readsWaiting[i]!;
      if (read.notBeforeMs > this.#nowMs) {
        i += 1;
        continue;
      }
      this.#readsWaiting.splice(i, 1);
      this.#readsRunning.set(read.readId, read);
      this.#outbox.push({ kind: "startRecoveryRead", readId: read.readId, target: read.target, fromLsn: read.fromLsn, toLsn: read.toLsn });
    }
  }

  /** Turns the dispatcher's commands into the core's, then starts the reads that may run. */
  #drain(): void {
    for (let commands = this.dispatcher.takeCommands(); commands.length > 0; commands = this.dispatcher.takeCommands()) {
      for (const command of commands) {
        switch (command.kind) {
          case "send": {
            const link = this.#link(command.target);
            link.ackDeadlineMs ??= this.#nowMs + this.#config.ackTimeoutMs;
            const commitLsn = this.dispatcher.commitLsnKnown;
            const lastLsn = command.parts[command.parts.length - 1]?.lsn ?? 0n;
            assert(lastLsn <= commitLsn, `target ${command.target}: part ${lastLsn} sent beyond the known commit LSN ${commitLsn}`);
            this.#outbox.push({ ...command, commitLsn });
            break;
          }
          case "recoveryRead":
            this.#queueRead(command.target, command.term, command.fromLsn, command.toLsn, command.retry);
            break;
          case "reconnect": {
            const link = this.#link(command.target);
            if (link.stream !== "closed" || link.reconnectAtMs !== null) break;
            // A refused identity will not fix itself soon: retry slowly.
            const delayMs = link.refused ? this.#config.backoff.maxDelayMs : link.reconnectBackoff.nextDelayMs();
            link.reconnectAtMs = this.#nowMs + delayMs;
            break;
          }
        }
      }
    }
    this.#startReads();
    this.#maybeCheckCommitLsn();
  }
}
