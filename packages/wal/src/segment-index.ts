import { assert } from "@logplayer/base";

const INITIAL_CAPACITY = 256;
/** Record offsets are u32: segments are capped well below 4 GiB. */
export const SEGMENT_OFFSET_MAX = 0xffff_ffff;

/**
 * Where each record of one segment starts: offsets[i] is the byte offset of
 * the record for LSN firstLsn + i. Four bytes per entry (a growable
 * Uint32Array), so even millions of entries cost a few MiB.
 */
export class SegmentIndex {
  #offsets = new Uint32Array(INITIAL_CAPACITY);
  #count = 0;

  constructor(
    readonly fileName: string,
    readonly firstLsn: bigint,
  ) {
    assert(firstLsn >= 1n, `segment first LSN must be >= 1, got ${firstLsn}`);
  }

  get recordCount(): number {
    return this.#count;
  }

  /** LSN of the last record, or firstLsn - 1 when the segment is empty. */
  get lastLsn(): bigint {
    return this.firstLsn + BigInt(this.#count) - 1n;
  }

  push(offset: number): void {
    assert(offset >= 0 && offset <= SEGMENT_OFFSET_MAX, `record offset ${offset} out of range`);
    const previous = this.#count === 0 ? -1 : this.#offsets[this.#count - 1]!;
    assert(offset > previous, `record offsets must increase: ${offset} after ${previous}`);
    if (this.#count === this.#offsets.length) {
      const grown = new Uint32Array(this.#offsets.length * 2);
      grown.set(this.#offsets);
      this.#offsets = grown;
    }
    this.#offsets[this.#count++] = offset;
  }

  /** Byte offset of the record for `lsn`, which must be in this segment. */
  offsetOf(lsn: bigint): number {
    const index = Number(lsn - this.firstLsn);
    assert(index >= 0 && index < this.#count, `LSN ${lsn} not in segment ${this.fileName}`);
    return this.#offsets[index]!;
  }

  contains(lsn: bigint): boolean {
    return lsn >= this.firstLsn && lsn <= this.lastLsn;
  }

  /** Keeps records up to and including `lsn` (firstLsn - 1 empties the segment). */
  truncateAfter(lsn: bigint): void {
    assert(lsn >= this.firstLsn - 1n && lsn <= this.lastLsn, `cannot truncate ${this.fileName} after ${lsn}`);
    this.#count = Number(lsn - this.firstLsn + 1n);
  }
}
