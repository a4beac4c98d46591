import { assert } from "@logplayer/base";

/**
 * The term of every LSN in the log, stored as runs: terms change only at
 * elections, so a handful of (first LSN, term) pairs describe millions of
 * entries. Raft asks for the term at an index on every append it checks.
 * Pure, in memory.
 */
export class TermRuns {
  readonly #firstLsns: bigint[] = [];
  readonly #terms: bigint[] = [];

  /** Term of the newest run; 0 when nothing is recorded. */
  get lastTerm(): bigint {
    return this.#terms[this.#terms.length - 1] ?? 0n;
  }

  /** Records that `lsn` (the next LSN after all recorded ones) has `term`. */
  record(lsn: bigint, term: bigint): void {
    assert(term >= 1n, `term must be >= 1, got ${term}`);
    assert(term >= this.lastTerm, `term went back from ${this.lastTerm} to ${term} at LSN ${lsn}`);
    const lastStart = this.#firstLsns[this.#firstLsns.length - 1];
    assert(lastStart === undefined || lsn > lastStart, `term run at LSN ${lsn} is not after ${lastStart}`);
    if (term === this.lastTerm) return;
    this.#firstLsns.push(lsn);
    this.#terms.push(term);
  }

  /** Term of `lsn`, assuming it is in the log; 0 before the first run. */
  termAt(lsn: bigint): bigint {
    let low = 0;
    let high = this.#firstLsns.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.#firstLsns[middle]! <= lsn) {
        found = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return found < 0 ? 0n : this.#terms[found]!;
  }

  /** Forgets the runs that end before `lsn` (compacted away); termAt(lsn) and later are kept. */
  dropBefore(lsn: bigint): void {
    let keepFrom = 0;
    while (keepFrom + 1 < this.#firstLsns.length && this.#firstLsns[keepFrom + 1]! <= lsn) keepFrom++;
    this.#firstLsns.splice(0, keepFrom);
    this.#terms.splice(0, keepFrom);
  }

  clear(): void {
    this.#firstLsns.length = 0;
    this.#terms.length = 0;
  }

  /** Forgets terms of LSNs after `lsn`. */
  truncateAfter(lsn: bigint): void {
    while (this.#firstLsns.length > 0 && this.#firstLsns[this.#firstLsns.length - 1]! > lsn) {
      this.#firstLsns.pop();
      this.#terms.pop();
    }
  }
}
