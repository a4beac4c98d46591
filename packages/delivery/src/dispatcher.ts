import { assert, shardForKey, type ShardMapConfig } from "@logplayer/base";
import type { LogEntry, Mutation } from "@logplayer/proto";
import { validateDeliveryLimits, type DeliveryLimits } from "./delivery-limits";
import { estimatePartBytes, type PartContent } from "./part-queue";
import { TargetQueue, type DeliveryCommand, type GapReport } from "./target-queue";

/** Splits a transaction's mutations by shard, keeping their order within each shard. */
export function splitByShard(mutations: readonly Mutation[], shardMap: ShardMapConfig): Map<number, Mutation[]> {
  const byShard = new Map<number, Mutation[]>();
  for (const mutation of mutations) {
    const shard = shardForKey(mutation.key, shardMap);
    const list = byShard.get(shard);
    if (list === undefined) byShard.set(shard, [mutation]);
    else list.push(mutation);
  }
  return byShard;
}

/**
 * The paper's Dispatcher and the per-target queues it feeds, as one pure
 * state machine. The adapter feeds it main-stream entries, recovery entries
 * and stream events, then drains `takeCommands()` and executes them. It
 * never blocks: a slow target overflows into recovery instead.
 */
export class Dispatcher {
  readonly targets: readonly TargetQueue[];
  /** The last main-stream entry dispatched; null until the main stream starts. */
  #currentIndex: bigint | null = null;
  /**
   * The highest commit LSN the LogStore has reported (Read responses, Status):
   * every LSN up to it is committed for good. A shard reporting an applied
   * LSN beyond it is held in A until it is known to be reached.
   */
  #commitLsnKnown = 0n;
  #entriesSinceDummy = 0;
  #entriesDispatched = 0;
  #outbox: DeliveryCommand[] = [];
  /** Scratch: which targets got a part during the current dispatchEntries call. */
  readonly #touched: boolean[];
  /** Per target: when its last progress dummy was queued (the caller's ms clock), or null. */
  readonly #progressQueuedAtMs: (number | null)[];
  /** Per target: progress held back by `progressIntervalMs`, queued by `progressTick` when the interval ends. */
  readonly #progressOwed: boolean[];

  constructor(
    readonly shardMap: ShardMapConfig,
    readonly limits: DeliveryLimits,
  ) {
    validateDeliveryLimits(limits);
    const targets: TargetQueue[] = [];
    for (let shard = 0; shard < shardMap.shardCount; shard++) targets.push(new TargetQueue(shard, limits, this.#outbox));
    this.targets = targets;
    this.#touched = targets.map(() => false);
    this.#progressQueuedAtMs = targets.map(() => null);
    this.#progressOwed = targets.map(() => false);
  }

  get currentIndex(): bigint | null {
    return this.#currentIndex;
  }

  get commitLsnKnown(): bigint {
    return this.#commitLsnKnown;
  }

  get entriesDispatched(): number {
    return this.#entriesDispatched;
  }

  /** Commands produced since the last call, in order. The caller executes them. */
  takeCommands(): DeliveryCommand[] {
    if (this.#outbox.length === 0) return [];
    return this.#outbox.splice(0, this.#outbox.length);
  }

  /**
   * Where the main stream should start: currentIndex + 1 once running;
   * before that min(appliedLsn of connected targets) + 1, or null while no
   * target is connected (the LogPlayer keeps no durable state of its own).
   */
  mainStreamFromLsn(): bigint | null {
    if (this.#currentIndex !== null) return this.#currentIndex + 1n;
    let min: bigint | null = null;
    for (const target of this.targets) {
      // A target in A is ahead of the known log: it cannot say where the log starts.
      if (target.state === "S" || target.state === "A") continue;
      if (min === null || target.lastAck < min) min = target.lastAck;
    }
    return min === null ? null : min + 1n;
  }

  /** Fixes the main stream's start; entries from `fromLsn` on are dispatched. */
  startMainStream(fromLsn: bigint): void {
    assert(this.#currentIndex === null, "main stream already started");
    assert(fromLsn >= 1n, `main stream start ${fromLsn} is not a valid LSN`);
    this.#currentIndex = fromLsn - 1n;
  }

  /** One main-stream entry. LSNs are dense: each must be currentIndex + 1. */
  dispatch(entry: LogEntry, dispatchTimeNs: bigint, commitLsn?: bigint): void {
    this.dispatchEntries([entry], dispatchTimeNs, commitLsn);
  }

  /**
   * Consecutive main-stream entries that arrived together (one ReadResponse).
   * All are queued first, then each touched target sends once: the burst
   * leaves as one batch per target, immediately. `commitLsn` is the LogStore's
   * commit LSN when it sent them (omitted: these are the log's last entries).
   * At the tail of the log every target behind currentIndex also gets a
   * progress dummy (TargetQueue.pushProgressDummy), at most one per
   * `progressIntervalMs` per target when `nowMs` is given (the rest is owed:
   * `progressTick`); while replaying a backlog only the paper's every-E
   * dummies go out.
   */
  dispatchEntries(entries: readonly LogEntry[], dispatchTimeNs: bigint, commitLsn?: bigint, nowMs?: number): void {
    const lastLsn = entries[entries.length - 1]?.lsn;
    // First, so that a target released by this commit LSN gets these entries' parts too.
    this.observeCommitLsn(commitLsn ?? lastLsn ?? 0n);
    const touched = this.#touched;
    for (const entry of entries) this.#dispatchOne(entry, dispatchTimeNs, touched);
    const currentIndex = this.#currentIndex;
    const atTail = currentIndex !== null && (commitLsn === undefined || currentIndex >= commitLsn);
    for (let shard = 0; shard < touched.length; shard++) {
      const target = this.targets[shard]!;
      const progressed = atTail && this.#progress(shard, currentIndex, dispatchTimeNs, nowMs);
      if (!atTail) this.#progressOwed[shard] = false;
      if (!touched[shard] && !progressed) continue;
      touched[shard] = false;
      target.flush();
    }
  }

  /** When owed progress is next due (the caller's ms clock), or null when none is owed. */
  progressDueAtMs(): number | null {
    let due: number | null = null;
    for (let shard = 0; shard < this.#progressOwed.length; shard++) {
      if (!this.#progressOwed[shard]) continue;
      const at = (this.#progressQueuedAtMs[shard] ?? 0) + this.limits.progressIntervalMs;
      if (due === null || at < due) due = at;
    }
    return due;
  }

  /**
   * Queues (and sends, if the stream is idle) the progress owed to targets
   * whose interval has ended: one dummy at currentIndex covers every entry
   * dispatched since. It carries no dispatch time: it dispatches no entry.
   */
  progressTick(nowMs: number): void {
    const currentIndex = this.#currentIndex;
    for (let shard = 0; shard < this.#progressOwed.length; shard++) {
      if (!this.#progressOwed[shard]) continue;
      const at = (this.#progressQueuedAtMs[shard] ?? 0) + this.limits.progressIntervalMs;
      if (at > nowMs) continue;
      this.#progressOwed[shard] = false;
      if (currentIndex !== null && this.#progress(shard, currentIndex, 0n, nowMs)) this.targets[shard]!.flush();
    }
  }

  /** A progress dummy for `shard` now, or owed until its interval ends. Returns whether one was queued. */
  #progress(shard: number, currentIndex: bigint, dispatchTimeNs: bigint, nowMs: number | undefined): boolean {
    const queuedAtMs = this.#progressQueuedAtMs[shard] ?? null;
    if (nowMs !== undefined && queuedAtMs !== null && nowMs < queuedAtMs + this.limits.progressIntervalMs) {
      // Owed only if the target is actually behind; pushProgressDummy decides again when it is due.
      this.#progressOwed[shard] = this.targets[shard]!.needsProgress(currentIndex);
      return false;
    }
    const queued = this.targets[shard]!.pushProgressDummy(currentIndex, dispatchTimeNs);
    if (queued && nowMs !== undefined) this.#progressQueuedAtMs[shard] = nowMs;
    return queued;
  }

  #dispatchOne(entry: LogEntry, dispatchTimeNs: bigint, touched: boolean[]): void {
    assert(this.#currentIndex !== null, "dispatch before the main stream started");
    if (entry.lsn !== this.#currentIndex + 1n) assert(false, `main stream entry ${entry.lsn} after ${this.#currentIndex}`);
    const lsn = entry.lsn;
    this.#currentIndex = lsn;
    this.#entriesDispatched += 1;
    const mutations = entry.txn?.mutations ?? [];
    for (const [shard, shardMutations] of splitByShard(mutations, this.shardMap)) {
      const target = this.targets[shard];
      assert(target !== undefined, "dispatch: shard out of range");
      target.pushNormal(partOf(entry, shardMutations, dispatchTimeNs), lsn);
      touched[shard] = true;
    }
    this.#entriesSinceDummy += 1;
    if (this.#entriesSinceDummy >= this.limits.dummyEveryEntries) {
      this.#entriesSinceDummy = 0;
      for (const target of this.targets) target.maybePushDummy(lsn, dispatchTimeNs);
      touched.fill(true);
    }
  }

  /**
   * Entries of target's recovery read for `term`, in order. Returns false at
   * the first entry refused (stale term, or not the next LSN — then a fresh
   * read was already requested): the caller must cancel this read.
   */
  recoveryEntries(target: number, term: number, entries: readonly LogEntry[], dispatchTimeNs: bigint): boolean {
    const queue = this.#target(target);
    let accepted = true;
    for (const entry of entries) {
      const mutations = (entry.txn?.mutations ?? []).filter((m) => shardForKey(m.key, this.shardMap) === target);
      const part = mutations.length === 0 ? null : partOf(entry, mutations, dispatchTimeNs);
      accepted = queue.recoveryEntry(term, entry.lsn, part);
      if (!accepted) break;
    }
    queue.flush();
    return accepted;
  }

  recoveryDone(target: number, term: number): void {
    this.#target(target).recoveryDone(term);
  }

  recoveryFailed(target: number, term: number): void {
    this.#target(target).recoveryFailed(term);
  }

  /**
   * The LogStore's commit LSN as reported now (Read response, Status). The
   * known commit LSN only grows (a replica that lags reports less than is
   * committed, never more); targets held in A that it now covers are released.
   */
  observeCommitLsn(commitLsn: bigint): void {
    if (commitLsn <= this.#commitLsnKnown) return;
    this.#commitLsnKnown = commitLsn;
    for (const target of this.targets) target.release(commitLsn, this.#currentIndex);
  }

  /** Targets held in A that are not (yet) confirmed ahead of the log: they wait for a commit LSN check. */
  targetsAwaitingCommitCheck(): TargetQueue[] {
    return this.targets.filter((target) => target.state === "A" && target.aheadOfLog === null);
  }

  /** The LogStore confirmed the target's shard is beyond its commit LSN: stop delivering to it. */
  declareAheadOfLog(target: number): void {
    this.#target(target).declareAheadOfLog(this.#commitLsnKnown);
  }

  /**
   * HelloReply on a new stream; returns the stream's term for the adapter to
   * stamp on its events. A shard beyond the known commit LSN is held (A).
   */
  connected(target: number, appliedLsn: bigint): number {
    const queue = this.#target(target);
    const ahead = appliedLsn > this.#commitLsnKnown || (queue.aheadOfLog !== null && appliedLsn >= queue.aheadOfLog.appliedLsn);
    return ahead ? queue.connectedAhead(appliedLsn) : queue.connected(appliedLsn, this.#currentIndex);
  }

  disconnected(target: number, streamTerm: number): void {
    this.#target(target).disconnected(streamTerm);
  }

  connectFailed(target: number): void {
    this.#target(target).connectFailed();
  }

  ack(target: number, streamTerm: number, appliedLsn: bigint): void {
    const queue = this.#target(target);
    if (appliedLsn > this.#commitLsnKnown) queue.aheadReported(streamTerm, appliedLsn);
    else queue.ack(streamTerm, appliedLsn);
  }

  gap(target: number, streamTerm: number, report: GapReport): void {
    const queue = this.#target(target);
    if (report.appliedLsn > this.#commitLsnKnown) queue.aheadReported(streamTerm, report.appliedLsn);
    else queue.gap(streamTerm, report, this.#currentIndex);
  }

  writeCompleted(target: number, streamTerm: number): void {
    this.#target(target).writeCompleted(streamTerm);
  }

  #target(target: number): TargetQueue {
    const queue = this.targets[target];
    if (queue === undefined) assert(false, `target ${target} out of range [0, ${this.targets.length})`);
    return queue;
  }
}

function partOf(entry: LogEntry, mutations: Mutation[], dispatchTimeNs: bigint): PartContent {
  return {
    lsn: entry.lsn,
    mutations,
    commitTimeNs: entry.commitTimeNs,
    dispatchTimeNs,
    bytes: estimatePartBytes(mutations),
  };
}
