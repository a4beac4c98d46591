import { assert } from "@logplayer/base";
import type { Part } from "@logplayer/proto";
import { DeliveryWindow, type SentPart } from "./delivery-window";
import type { DeliveryLimits } from "./delivery-limits";
import { PartQueue, estimatePartBytes, type PartContent } from "./part-queue";

/**
 * The paper's four queue states:
 * N  normal: target up, nothing missing;
 * RF recovery fetching: target up, missed entries still being read from the LogStore;
 * FC fetching completed: all missed entries read, not all sent yet;
 * S  suspended: no stream (down, disconnected, or not yet connected).
 * Ours:
 * A  ahead: connected, but the shard reports an applied LSN beyond the log's
 *    commit LSN as the LogPlayer knows it. Nothing is sent: the shard would
 *    take newer entries for duplicates. Released when the commit LSN is known
 *    to reach it, or kept for good once the LogPlayer confirmed the shard is
 *    ahead of the log (`aheadOfLog`).
 */
export type TargetState = "N" | "RF" | "FC" | "S" | "A";

/** A shard found ahead of the log: what it reported, and the commit LSN the LogStore confirmed. */
export interface AheadOfLog {
  readonly appliedLsn: bigint;
  readonly commitLsn: bigint;
}

/**
 * What a TargetQueue asks its adapter to do. Commands carry the term they
 * belong to; the adapter echoes it back on the events they cause.
 */
export type DeliveryCommand =
  /** Write `parts` as one PartBatch on the stream opened at `streamTerm`; call writeCompleted when done. */
  | { readonly kind: "send"; readonly target: number; readonly streamTerm: number; readonly parts: Part[]; readonly bytes: number }
  /** Read [fromLsn, toLsn] from the LogStore for this target; `retry` asks for a backoff delay first. */
  | {
      readonly kind: "recoveryRead";
      readonly target: number;
      readonly term: number;
      readonly fromLsn: bigint;
      readonly toLsn: bigint;
      readonly retry: boolean;
    }
  /** Open a new stream to the target after a backoff delay (the old one, if any, is gone). */
  | { readonly kind: "reconnect"; readonly target: number };

/** The Gap message a shard sends when a part does not follow on from its applied LSN. */
export interface GapReport {
  readonly appliedLsn: bigint;
  readonly lsn: bigint;
  readonly prevLsn: bigint;
}

/** Monotonic counters, read by the adapter's metrics. */
export interface TargetCounters {
  partsSent: number;
  batchesSent: number;
  dummiesQueued: number;
  overflows: number;
  rewinds: number;
  recoveryReads: number;
  connects: number;
  suspends: number;
  staleEventsDropped: number;
  /** Times the target entered A (its shard reported an applied LSN beyond the known commit LSN). */
  aheadHolds: number;
}

/** The missed range being re-read: [nextLsn, toLsn], one chunk in flight at most. */
interface RecoveryRange {
  nextLsn: bigint;
  toLsn: bigint;
  /** Last LSN of the chunk being read, or null when no read is in flight. */
  chunkToLsn: bigint | null;
}

/**
 * One target (shard): the paper's target queue plus its stream's write
 * state, window and lastAck. Pure: events in, commands out (into a shared
 * outbox). `term` increments on every (re)connect and rewind; recovery
 * events for another term are dropped. `streamTerm` is the term at which the
 * current stream connected; stream events for another stream are dropped.
 */
export class TargetQueue {
  #state: TargetState = "S";
  #term = 0;
  #streamTerm = 0;
  #lastAck = 0n;
  /** The LSN of the last part sent on the stream (only to keep the send order ascending). */
  #lastSentLsn = 0n;
  /**
   * prevLsn of the next part queued for the main stream: the part queued before it on the normal
   * chain, or, while recovering, the end of the recovery range (the catch-up chain ends there).
   */
  #normalPrevLsn = 0n;
  /** prevLsn of the next part read for recovery: the part read before it, or the shard's position. */
  #catchUpPrevLsn = 0n;
  /** Highest LSN known to the target or queued for it; drives dummy parts. */
  #lastQueuedLsn = 0n;
  #writeInFlight = false;
  #recovery: RecoveryRange | null = null;
  #aheadOfLog: AheadOfLog | null = null;
  readonly #normal = new PartQueue();
  readonly #catchUp = new PartQueue();
  readonly #window: DeliveryWindow;
  readonly counters: TargetCounters = {
    partsSent: 0,
    batchesSent: 0,
    dummiesQueued: 0,
    overflows: 0,
    rewinds: 0,
    recoveryReads: 0,
    connects: 0,
    suspends: 0,
    staleEventsDropped: 0,
    aheadHolds: 0,
  };

  constructor(
    readonly target: number,
    private readonly limits: DeliveryLimits,
    private readonly outbox: DeliveryCommand[],
  ) {
    this.#window = new DeliveryWindow(limits.windowBatchesMax, limits.windowBytesMax);
  }

  get state(): TargetState {
    return this.#state;
  }
  get term(): number {
    return this.#term;
  }
  get streamTerm(): number {
    return this.#streamTerm;
  }
  get lastAck(): bigint {
    return this.#lastAck;
  }
  /** The LSN of the last part sent on the current stream (the shard's position after a connect or rewind). */
  get lastSentLsn(): bigint {
    return this.#lastSentLsn;
  }
  get normalLength(): number {
    return this.#normal.length;
  }
  get catchUpLength(): number {
    return this.#catchUp.length;
  }
  get queuedBytes(): number {
    return this.#normal.bytes + this.#catchUp.bytes;
  }
  get windowBatches(): number {
    return this.#window.batchCount;
  }
  get writeInFlight(): boolean {
    return this.#writeInFlight;
  }
  /** Set once the LogPlayer confirmed this shard is ahead of the log; delivery to it has stopped. */
  get aheadOfLog(): AheadOfLog | null {
    return this.#aheadOfLog;
  }

  /**
   * HelloReply arrived on a new stream: the shard has applied `appliedLsn`.
   * Returns the stream's term, which the adapter stamps on its events.
   * `currentIndex` is null before the main stream started.
   */
  connected(appliedLsn: bigint, currentIndex: bigint | null): number {
    if (this.#state !== "S") this.#suspend();
    this.#term += 1;
    this.#streamTerm = this.#term;
    this.counters.connects += 1;
    // Set, not max: a shard that lost unsynced commits reports a lower LSN and must get them again.
    this.#lastAck = appliedLsn;
    this.#aheadOfLog = null;
    this.#restartChainAt(appliedLsn, currentIndex);
    return this.#streamTerm;
  }

  /**
   * HelloReply from a shard whose applied LSN is beyond the log's commit LSN
   * as far as the LogPlayer knows it: the stream is kept, nothing is sent
   * (A). A shard already found ahead of the log stays so unless it now
   * reports less than it did then (it was restored). Returns the stream's term.
   */
  connectedAhead(appliedLsn: bigint): number {
    if (this.#state !== "S") this.#suspend();
    this.#term += 1;
    this.#streamTerm = this.#term;
    this.counters.connects += 1;
    this.#lastAck = appliedLsn;
    if (this.#aheadOfLog !== null && appliedLsn < this.#aheadOfLog.appliedLsn) this.#aheadOfLog = null;
    this.#enterAhead();
    return this.#streamTerm;
  }

  /**
   * An Ack or Gap on the current stream reported `appliedLsn`, beyond the
   * known commit LSN (another LogPlayer knew more, or the log lost entries):
   * stop sending (A). The stream and its write in flight stay; a new term
   * expires the recovery reads.
   */
  aheadReported(streamTerm: number, appliedLsn: bigint): void {
    if (!this.#isCurrentStream(streamTerm)) return;
    if (appliedLsn > this.#lastAck) this.#lastAck = appliedLsn;
    if (this.#state === "A") return;
    this.#clearQueues();
    this.#term += 1;
    this.#enterAhead();
  }

  /**
   * The commit LSN is now known to reach the shard's applied LSN: leave A as
   * on a connect (term + 1, chains from lastAck). Not once the shard was found
   * ahead of the log: a log that grew back past a lost LSN hands out another
   * entry under it. Returns whether the target was released.
   */
  release(commitLsnKnown: bigint, currentIndex: bigint | null): boolean {
    if (this.#state !== "A" || this.#aheadOfLog !== null || this.#lastAck > commitLsnKnown) return false;
    this.#term += 1;
    this.#restartChainAt(this.#lastAck, currentIndex);
    return true;
  }

  /** The LogPlayer confirmed the shard is ahead of the log (the LogStore's commit LSN is `commitLsn`): stay in A. */
  declareAheadOfLog(commitLsn: bigint): void {
    assert(this.#state === "A", `target ${this.target}: declared ahead of the log in state ${this.#state}`);
    assert(this.#lastAck > commitLsn, `target ${this.target}: applied ${this.#lastAck} is not ahead of commit ${commitLsn}`);
    this.#aheadOfLog = { appliedLsn: this.#lastAck, commitLsn };
  }

  /** The stream broke, or the health checker declared the target dead. */
  disconnected(streamTerm: number): void {
    if (!this.#isCurrentStream(streamTerm)) return;
    this.#suspend();
    this.outbox.push({ kind: "reconnect", target: this.target });
  }

  /** A stream attempt failed before its HelloReply. */
  connectFailed(): void {
    if (this.#state === "S") this.outbox.push({ kind: "reconnect", target: this.target });
  }

  ack(streamTerm: number, appliedLsn: bigint): void {
    if (!this.#isCurrentStream(streamTerm)) return;
    if (appliedLsn > this.#lastAck) this.#lastAck = appliedLsn;
    this.#window.release(appliedLsn);
    this.#pump();
  }

  writeCompleted(streamTerm: number): void {
    if (!this.#isCurrentStream(streamTerm)) return;
    if (!this.#writeInFlight) assert(false, `target ${this.target}: write completed with none in flight`);
    this.#writeInFlight = false;
    this.#pump();
  }

  /**
   * The shard refused a part. Only a gap on a part of the current window
   * rewinds; gaps on parts sent before an earlier rewind are expected echoes.
   */
  gap(streamTerm: number, report: GapReport, currentIndex: bigint | null): void {
    if (!this.#isCurrentStream(streamTerm)) return;
    if (report.appliedLsn > this.#lastAck) this.#lastAck = report.appliedLsn;
    if (!this.#window.holdsPart(report.lsn, report.prevLsn)) {
      this.counters.staleEventsDropped += 1;
      this.#window.release(report.appliedLsn);
      this.#pump();
      return;
    }
    // Rewind: a new term on the same stream, the chain restarting at the shard's position.
    this.counters.rewinds += 1;
    this.#clearQueues();
    this.#term += 1;
    this.#restartChainAt(this.#lastAck, currentIndex);
  }

  /**
   * A part of a main-stream entry (or a dummy). Dropped in S or when already
   * acknowledged. Does not send: the dispatcher calls flush() once per input
   * batch, so a burst of entries leaves as one write instead of one alone
   * plus the rest a write-callback later.
   */
  pushNormal(part: PartContent, currentIndex: bigint): void {
    if (this.#state === "S" || this.#state === "A" || part.lsn <= this.#lastAck) return;
    if (part.lsn > currentIndex) assert(false, `target ${this.target}: part ${part.lsn} beyond currentIndex ${currentIndex}`);
    const queue = this.#normal;
    const overflows =
      queue.length > 0 && (queue.length + 1 > this.limits.queueEntriesMax || queue.bytes + part.bytes > this.limits.queueBytesMax);
    if (overflows) {
      this.#overflow(currentIndex);
      return;
    }
    // Dispatch time: the part follows whatever this chain queued last, whether or not that is ever sent.
    queue.push({ ...part, prevLsn: this.#normalPrevLsn });
    this.#normalPrevLsn = part.lsn;
    if (part.lsn > this.#lastQueuedLsn) this.#lastQueuedLsn = part.lsn;
  }

  /** sendNext: send what is queued if the stream is idle and the window has room. */
  flush(): void {
    this.#pump();
  }

  /** The paper's dummy entry: an empty part at currentIndex for a target more than E behind. */
  maybePushDummy(currentIndex: bigint, dispatchTimeNs: bigint): void {
    if (this.#state === "S" || this.#state === "A") return;
    const known = this.#lastQueuedLsn > this.#lastAck ? this.#lastQueuedLsn : this.#lastAck;
    if (currentIndex - known <= BigInt(this.limits.dummyEveryEntries)) return;
    this.counters.dummiesQueued += 1;
    this.pushNormal(dummyPart(currentIndex, dispatchTimeNs), currentIndex);
  }

  /**
   * Whether the target is connected and neither knows nor has queued every
   * entry up to currentIndex. In RF the normal chain starts at the recovery
   * range's end, which the catch-up chain closes: nothing to add up to there.
   */
  needsProgress(currentIndex: bigint): boolean {
    if (this.#state === "S" || this.#state === "A") return false;
    let known = this.#lastQueuedLsn > this.#lastAck ? this.#lastQueuedLsn : this.#lastAck;
    if (this.#normalPrevLsn > known) known = this.#normalPrevLsn;
    return known < currentIndex;
  }

  /**
   * Progress for read-your-writes (our addition): after a burst of main-stream
   * entries, a target that the last of them did not touch gets a dummy at
   * currentIndex, so its applied LSN reaches the end of the log and a read with
   * min LSN = currentIndex does not wait for the next write that touches it.
   * An unsent progress dummy is replaced, not followed, so a busy or slow
   * target holds at most one. Returns whether a dummy was queued.
   */
  pushProgressDummy(currentIndex: bigint, dispatchTimeNs: bigint): boolean {
    if (!this.needsProgress(currentIndex)) return false;
    // The replaced dummy never joins the chain: the new one takes its place (and its prevLsn).
    const replaced = this.#normal.dropLastIfDummy();
    if (replaced !== null) this.#normalPrevLsn = replaced.prevLsn;
    this.counters.dummiesQueued += 1;
    this.pushNormal(dummyPart(currentIndex, dispatchTimeNs), currentIndex);
    return true;
  }

  /**
   * One entry of the recovery stream for `term`; `part` is this target's part
   * of it, or null when the entry does not touch the target. Returns false
   * when the read is stale (the caller may stop feeding it). Does not send:
   * the caller calls flush() after the whole response.
   */
  recoveryEntry(term: number, lsn: bigint, part: PartContent | null): boolean {
    const recovery = this.#recovery;
    if (term !== this.#term || this.#state !== "RF" || recovery === null || recovery.chunkToLsn === null) {
      this.counters.staleEventsDropped += 1;
      return false;
    }
    if (lsn !== recovery.nextLsn || lsn > recovery.chunkToLsn) {
      // The LogStore promises consecutive entries within the range; anything else is a broken read.
      this.#retryRecovery();
      return false;
    }
    recovery.nextLsn = lsn + 1n;
    if (part !== null && part.lsn > this.#lastAck) {
      assert(part.lsn === lsn, "recovery part LSN differs from its entry");
      this.#pushCatchUp(part);
      if (lsn > this.#lastQueuedLsn) this.#lastQueuedLsn = lsn;
    } else if (part === null && lsn === recovery.toLsn && lsn > this.#lastAck) {
      // The missed range ends on entries that do not touch this target: close it
      // with a dummy so the shard's applied LSN reaches the end of the range.
      this.counters.dummiesQueued += 1;
      this.#pushCatchUp(dummyPart(lsn, 0n));
      if (lsn > this.#lastQueuedLsn) this.#lastQueuedLsn = lsn;
    }
    return true; // the caller flushes once per response
  }

  /** The recovery read for `term` ended normally. */
  recoveryDone(term: number): void {
    const recovery = this.#recovery;
    if (term !== this.#term || this.#state !== "RF" || recovery === null || recovery.chunkToLsn === null) {
      this.counters.staleEventsDropped += 1;
      return;
    }
    if (recovery.nextLsn <= recovery.chunkToLsn) {
      this.#retryRecovery(); // ended early: read the rest again
      return;
    }
    recovery.chunkToLsn = null;
    if (recovery.nextLsn > recovery.toLsn) this.#fetchingCompleted();
    this.#pump();
  }

  /** The recovery read for `term` failed; read the rest again after a backoff. */
  recoveryFailed(term: number): void {
    const recovery = this.#recovery;
    if (term !== this.#term || this.#state !== "RF" || recovery === null || recovery.chunkToLsn === null) {
      this.counters.staleEventsDropped += 1;
      return;
    }
    this.#retryRecovery();
  }

  #isCurrentStream(streamTerm: number): boolean {
    const current = this.#state !== "S" && streamTerm === this.#streamTerm;
    if (!current) this.counters.staleEventsDropped += 1;
    return current;
  }

  /** Recovery time: the part follows whatever the catch-up chain read last. */
  #pushCatchUp(part: PartContent): void {
    this.#catchUp.push({ ...part, prevLsn: this.#catchUpPrevLsn });
    this.#catchUpPrevLsn = part.lsn;
    if (part.lsn > this.#lastQueuedLsn) this.#lastQueuedLsn = part.lsn;
  }

  /** After connect or rewind: the next part follows `appliedLsn`; re-read what it lacks. */
  #restartChainAt(appliedLsn: bigint, currentIndex: bigint | null): void {
    this.#lastSentLsn = appliedLsn;
    this.#lastQueuedLsn = appliedLsn;
    if (currentIndex !== null && appliedLsn < currentIndex) {
      this.#state = "RF";
      this.#recovery = { nextLsn: appliedLsn + 1n, toLsn: currentIndex, chunkToLsn: null };
      this.#catchUpPrevLsn = appliedLsn;
      // The catch-up chain always ends at the range's end (a closing dummy if need be): main-stream parts follow it.
      this.#normalPrevLsn = currentIndex;
    } else {
      this.#state = "N";
      this.#recovery = null;
      this.#normalPrevLsn = appliedLsn;
    }
    this.#pump();
  }

  /**
   * The normal queue is full (a slow shard): drop it and extend recovery to
   * currentIndex, so memory stays bounded and the main stream never waits.
   */
  #overflow(currentIndex: bigint): void {
    this.counters.overflows += 1;
    this.#normal.clear();
    if (this.#recovery === null) {
      assert(this.#state === "N", `target ${this.target}: no recovery range in state ${this.#state}`);
      assert(this.#catchUp.length === 0, "catch-up queue not empty in state N");
      // In N nothing is queued for catch-up; what was sent (or acknowledged) is where the re-read starts.
      const covered = this.#lastSentLsn > this.#lastAck ? this.#lastSentLsn : this.#lastAck;
      this.#recovery = { nextLsn: covered + 1n, toLsn: currentIndex, chunkToLsn: null };
      this.#catchUpPrevLsn = covered;
    } else {
      this.#recovery.toLsn = currentIndex;
    }
    this.#state = "RF";
    this.#lastQueuedLsn = currentIndex;
    this.#normalPrevLsn = currentIndex;
    this.#pump();
  }

  #retryRecovery(): void {
    const recovery = this.#recovery;
    assert(recovery !== null && recovery.chunkToLsn !== null, "retry without a recovery read");
    recovery.chunkToLsn = null;
    // The shard acknowledged past where the range starts (a gap report older than an ack started it): every part read
    // so far lies below nextLsn and is acknowledged, so the re-read starts after the ack. Re-reading entries the shard
    // holds would be harmless, but the log may be trimmed below them: a read of them fails forever.
    if (this.#catchUp.length === 0 && recovery.nextLsn <= this.#lastAck) {
      recovery.nextLsn = this.#lastAck + 1n;
      this.#catchUpPrevLsn = this.#lastAck;
    }
    if (recovery.nextLsn > recovery.toLsn) {
      // Every entry of the range already arrived; only the read's end was lost. Without
      // this the target would stay in RF with nothing left to read, its normal queue unsent.
      this.#fetchingCompleted();
      this.#pump();
      return;
    }
    this.#requestChunk(true);
  }

  /** The whole missed range is in the catch-up queue (or already sent): FC, or N when nothing is left. */
  #fetchingCompleted(): void {
    this.#state = "FC";
    if (this.#catchUp.length === 0) this.#enterNormal();
  }

  /** Asks for the next chunk when none is in flight and the catch-up queue has room for it. */
  #requestChunk(retry: boolean): void {
    const recovery = this.#recovery;
    if (this.#state !== "RF" || recovery === null || recovery.chunkToLsn !== null) return;
    if (recovery.nextLsn > recovery.toLsn) return;
    const chunkEntries = BigInt(this.limits.recoveryReadEntriesMax);
    const roomy =
      this.#catchUp.length + this.limits.recoveryReadEntriesMax <= this.limits.queueEntriesMax &&
      this.#catchUp.bytes * 2 <= this.limits.queueBytesMax;
    if (!roomy) return;
    const last = recovery.nextLsn + chunkEntries - 1n;
    recovery.chunkToLsn = last < recovery.toLsn ? last : recovery.toLsn;
    this.counters.recoveryReads += 1;
    this.outbox.push({
      kind: "recoveryRead",
      target: this.target,
      term: this.#term,
      fromLsn: recovery.nextLsn,
      toLsn: recovery.chunkToLsn,
      retry,
    });
  }

  #enterNormal(): void {
    assert(this.#catchUp.length === 0, "entering N with catch-up parts left");
    this.#state = "N";
    this.#recovery = null;
  }

  /** The paper's front(): catch-up first while recovering, normal otherwise. */
  #frontQueue(): PartQueue | null {
    if ((this.#state === "RF" || this.#state === "FC") && this.#catchUp.length > 0) return this.#catchUp;
    if (this.#state === "FC") this.#enterNormal();
    if (this.#state === "N" && this.#normal.length > 0) return this.#normal;
    return null;
  }

  /** sendNext: with no write in flight and room in the window, send what has accumulated. */
  #pump(): void {
    if (this.#state === "S" || this.#state === "A" || this.#writeInFlight || this.#window.isFull()) {
      this.#requestChunk(false);
      return;
    }
    const parts: Part[] = [];
    const positions: SentPart[] = [];
    let bytes = 0;
    while (parts.length < this.limits.batchPartsMax) {
      const queue = this.#frontQueue();
      const next = queue?.front();
      if (queue === null || next === undefined) break;
      if (parts.length > 0 && bytes + next.bytes > this.limits.batchBytesMax) break;
      queue.shift();
      if (next.lsn <= this.#lastSentLsn) assert(false, `target ${this.target}: part ${next.lsn} does not follow ${this.#lastSentLsn}`);
      // prevLsn as the part was queued, not the last part sent: if a part went missing in between, the shard says Gap.
      const prevLsn = next.prevLsn;
      parts.push({
        lsn: next.lsn,
        prevLsn,
        mutations: next.mutations,
        commitTimeNs: next.commitTimeNs,
        dispatchTimeNs: next.dispatchTimeNs,
      });
      positions.push({ lsn: next.lsn, prevLsn });
      this.#lastSentLsn = next.lsn;
      bytes += next.bytes;
    }
    if (parts.length > 0) {
      this.#window.add({ lastLsn: this.#lastSentLsn, bytes, parts: positions });
      this.#writeInFlight = true;
      this.counters.partsSent += parts.length;
      this.counters.batchesSent += 1;
      this.outbox.push({ kind: "send", target: this.target, streamTerm: this.#streamTerm, parts, bytes });
    }
    this.#requestChunk(false);
  }

  #enterAhead(): void {
    this.counters.aheadHolds += 1;
    this.#state = "A";
    this.#recovery = null;
    this.#lastSentLsn = this.#lastAck;
    this.#lastQueuedLsn = this.#lastAck;
  }

  #clearQueues(): void {
    this.#normal.clear();
    this.#catchUp.clear();
    this.#window.clear();
    this.#recovery = null;
  }

  #suspend(): void {
    this.counters.suspends += 1;
    this.#clearQueues();
    this.#state = "S";
    this.#streamTerm = 0;
    this.#writeInFlight = false;
  }
}

function dummyPart(lsn: bigint, dispatchTimeNs: bigint): PartContent {
  return { lsn, mutations: [], commitTimeNs: 0n, dispatchTimeNs, bytes: estimatePartBytes([]) };
}
