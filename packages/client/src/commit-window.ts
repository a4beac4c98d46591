import { assert, Status } from "@logplayer/common";
import { DeadlineExceededError, LimitExceededError } from "./errors";

interface Waiter {
  readonly grant: (seq: bigint) => void;
  readonly timer: NodeJS.Timeout;
}

/** A client_seq held by one commit across its retries, and how to give it back. */
export interface SeqLease {
  readonly seq: bigint;
  readonly release: () => void;
}

/**
 * Hands out client_seqs and bounds their SPAN: a new seq is granted only
 * while it is less than `inflightMax` above the oldest seq not yet released.
 * The LogStore's per-client dedupe window refuses a seq that far behind the
 * newest it has seen (it could not tell a late first attempt from a retry of
 * an entry it has forgotten), so a slow commit that keeps retrying must hold
 * back newer ones; bounding only the number in flight does not (one stuck seq
 * plus a stream of fast ones drifts out of the window). Callers beyond the
 * bound wait in FIFO order, up to `queuedMax`, until their deadline.
 */
export class CommitWindow {
  #nextSeq: bigint;
  /** Lowest seq handed out and not yet released (= #nextSeq when none is out). */
  #oldestHeld: bigint;
  /** Released seqs above #oldestHeld; at most inflightMax of them. */
  readonly #releasedAbove = new Set<bigint>();
  readonly #waiters: Waiter[] = [];

  constructor(
    readonly inflightMax: number,
    readonly queuedMax: number,
    firstSeq = 1n,
  ) {
    assert(inflightMax >= 1 && queuedMax >= 0, "commit window: bad bounds");
    this.#nextSeq = firstSeq;
    this.#oldestHeld = firstSeq;
  }

  /** Seqs handed out and not yet released. */
  get inflight(): number {
    return Number(this.#nextSeq - this.#oldestHeld) - this.#releasedAbove.size;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  /** Distance from the oldest held seq to the next one: what the bound limits. */
  get span(): number {
    return Number(this.#nextSeq - this.#oldestHeld);
  }

  /** Resolves with the next seq once the span allows it. */
  acquire(deadlineMs: number): Promise<SeqLease> {
    if (this.#waiters.length === 0 && this.#hasRoom()) return Promise.resolve(this.#lease(this.#takeSeq()));
    if (this.#waiters.length >= this.queuedMax) {
      return Promise.reject(
        new LimitExceededError(
          Status.RESOURCE_EXHAUSTED,
          `commit: ${this.inflight} commits in flight over a span of ${this.span} seqs and ${this.#waiters.length} queued (commitsInflightMax ${this.inflightMax}, commitsQueuedMax ${this.queuedMax})`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: (seq) => {
          clearTimeout(waiter.timer);
          resolve(this.#lease(seq));
        },
        timer: setTimeout(
          () => {
            const index = this.#waiters.indexOf(waiter);
            if (index >= 0) this.#waiters.splice(index, 1);
            reject(
              new DeadlineExceededError(
                Status.DEADLINE_EXCEEDED,
                `commit: deadline passed while waiting for a seq within ${this.inflightMax} of the oldest commit in flight`,
              ),
            );
          },
          Math.max(0, deadlineMs - Date.now()),
        ),
      };
      this.#waiters.push(waiter);
    });
  }

  #hasRoom(): boolean {
    return this.#nextSeq - this.#oldestHeld < BigInt(this.inflightMax);
  }

  #takeSeq(): bigint {
    const seq = this.#nextSeq;
    this.#nextSeq += 1n;
    return seq;
  }

  #lease(seq: bigint): SeqLease {
    let released = false;
    return {
      seq,
      release: () => {
        assert(!released, "commit seq released twice");
        released = true;
        this.#release(seq);
      },
    };
  }

  #release(seq: bigint): void {
    assert(seq >= this.#oldestHeld && seq < this.#nextSeq, `released seq ${seq} was not held`);
    this.#releasedAbove.add(seq);
    while (this.#releasedAbove.delete(this.#oldestHeld)) this.#oldestHeld += 1n;
    while (this.#waiters.length > 0 && this.#hasRoom()) this.#waiters.shift()!.grant(this.#takeSeq());
  }
}
