import { assert } from "@logplayer/base";
import type { Mutation } from "@logplayer/proto";

/** One target's part of one log entry as the dispatcher or a recovery read builds it, before it joins a chain. */
export interface PartContent {
  readonly lsn: bigint;
  readonly mutations: Mutation[];
  readonly commitTimeNs: bigint;
  readonly dispatchTimeNs: bigint;
  /** Estimated encoded size, for the byte limits. */
  readonly bytes: number;
}

/**
 * One target's part of one log entry, waiting to be sent. prevLsn is fixed
 * when the part is queued — at dispatch for the main stream, as it is read
 * for recovery — to the part queued before it on the same chain, never at
 * send time: a part lost inside the queues then shows up as a Gap at the
 * shard instead of being papered over. A part with no mutations is a dummy:
 * it only advances the shard's applied LSN.
 */
export interface QueuedPart {
  readonly lsn: bigint;
  readonly prevLsn: bigint;
  readonly mutations: Mutation[];
  readonly commitTimeNs: bigint;
  readonly dispatchTimeNs: bigint;
  /** Estimated encoded size, for the byte limits. */
  readonly bytes: number;
}

// Per-part and per-mutation framing overhead in the estimate (tags, lengths, varints).
const PART_OVERHEAD_BYTES = 32;
const MUTATION_OVERHEAD_BYTES = 16;

/** A cheap, deterministic size estimate; exact encoding would cost a second serialisation. */
export function estimatePartBytes(mutations: readonly Mutation[]): number {
  let bytes = PART_OVERHEAD_BYTES;
  for (const m of mutations) bytes += MUTATION_OVERHEAD_BYTES + m.key.length * 3 + m.value.length;
  return bytes;
}

// Compact the backing array once this many slots at its head are dead.
const COMPACT_HEAD_MIN = 1024;

/** FIFO of parts in strictly ascending LSN order, with a running byte count. */
export class PartQueue {
  /** Slots before #head are spent (undefined, so the GC can take their mutations now). */
  #items: (QueuedPart | undefined)[] = [];
  #head = 0;
  #bytes = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  get bytes(): number {
    return this.#bytes;
  }

  front(): QueuedPart | undefined {
    return this.#items[this.#head];
  }

  lastLsn(): bigint | undefined {
    return this.length === 0 ? undefined : this.#items[this.#items.length - 1]?.lsn;
  }

  push(part: QueuedPart): void {
    const last = this.lastLsn();
    if (last !== undefined && part.lsn <= last) assert(false, `part queue: LSN ${part.lsn} pushed after ${last}`);
    this.#items.push(part);
    this.#bytes += part.bytes;
  }

  shift(): QueuedPart {
    const part = this.#items[this.#head];
    assert(part !== undefined, "part queue: shift from an empty queue");
    this.#items[this.#head] = undefined;
    this.#head += 1;
    this.#bytes -= part.bytes;
    if (this.#head === this.#items.length) {
      this.clear();
    } else if (this.#head >= COMPACT_HEAD_MIN && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return part;
  }

  /** Removes the last part when it is a dummy (no mutations) and returns it; a newer dummy supersedes it. */
  dropLastIfDummy(): QueuedPart | null {
    if (this.length === 0) return null;
    const last = this.#items[this.#items.length - 1];
    assert(last !== undefined, "part queue: live slot is empty");
    if (last.mutations.length > 0) return null;
    this.#items.pop();
    this.#bytes -= last.bytes;
    if (this.length === 0) this.clear();
    return last;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.#bytes = 0;
  }
}
