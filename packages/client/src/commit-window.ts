import { assert, Status } from "@logplayer/common";
import { DeadlineExceededError, LimitExceededError } from "./errors";

interface Waiter {
  readonly grant: () => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Bounds the commits one client has in flight. A commit takes its
 * client_seq only once it holds a slot, so the seqs in flight always lie
 * within `inflightMax` of each other: below the LogStore's per-client dedupe
 * window, which refuses a seq that far behind the newest (it could not tell a
 * late first attempt from a retry of an entry it has forgotten). Callers beyond
 * the bound wait in FIFO order, up to `queuedMax`, until their deadline.
 */
export class CommitWindow {
  #inflight = 0;
  readonly #waiters: Waiter[] = [];

  constructor(
    readonly inflightMax: number,
    readonly queuedMax: number,
  ) {
    assert(inflightMax >= 1 && queuedMax >= 0, "commit window: bad bounds");
  }

  get inflight(): number {
    return this.#inflight;
  }

  get queued(): number {
    return this.#waiters.length;
  }

  /** Resolves with a release function once a slot is held. */
  acquire(deadlineMs: number): Promise<() => void> {
    if (this.#inflight < this.inflightMax) {
      this.#inflight += 1;
      return Promise.resolve(this.#releaser());
    }
    if (this.#waiters.length >= this.queuedMax) {
      return Promise.reject(
        new LimitExceededError(
          Status.RESOURCE_EXHAUSTED,
          `commit: ${this.#inflight} commits in flight and ${this.#waiters.length} queued (commitsInflightMax ${this.inflightMax}, commitsQueuedMax ${this.queuedMax})`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(waiter.timer);
          resolve(this.#releaser());
        },
        timer: setTimeout(() => {
          const index = this.#waiters.indexOf(waiter);
          if (index >= 0) this.#waiters.splice(index, 1);
          reject(new DeadlineExceededError(Status.DEADLINE_EXCEEDED, `commit: deadline passed while waiting for one of ${this.inflightMax} commit slots`));
        }, Math.max(0, deadlineMs - Date.now())),
      };
      this.#waiters.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      assert(!released, "commit slot released twice");
      released = true;
      const next = this.#waiters.shift();
      if (next === undefined) this.#inflight -= 1;
      else next.grant(); // the slot passes straight to the next waiter
    };
  }
}
