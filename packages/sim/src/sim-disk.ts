import { assert } from "@logplayer/common";

/**
 * A disk that loses unsynced writes on a crash. Writes are queued in order;
 * sync(id) makes every write up to `id` durable by applying it to the
 * durable state; crash() forgets the rest. Generic over the state (a log, a
 * database) and the write type, so any core can be given a faulty disk.
 */
export class SimDisk<State, Write> {
  private durable: State;
  private readonly pending: { readonly id: number; readonly write: Write }[] = [];
  private nextId = 1;

  constructor(
    initial: State,
    private readonly applyWrite: (state: State, write: Write) => State,
    private readonly pendingWritesMax: number,
  ) {
    assert(pendingWritesMax > 0, "sim disk: pendingWritesMax must be positive");
    this.durable = initial;
  }

  /** Queues a write; returns its id for sync(). */
  write(write: Write): number {
    assert(this.pending.length < this.pendingWritesMax, `sim disk: more than ${this.pendingWritesMax} unsynced writes`);
    const id = this.nextId++;
    this.pending.push({ id, write });
    return id;
  }

  /** Makes writes up to and including `id` durable, in order. */
  sync(id: number): void {
    while (this.pending.length > 0 && (this.pending[0]?.id ?? Infinity) <= id) {
      const head = this.pending.shift();
      assert(head !== undefined, "sim disk: pending write vanished");
      this.durable = this.applyWrite(this.durable, head.write);
    }
  }

  /**
   * A write that is durable when it returns (its own file, fsynced at once);
   * it does not make the queued writes durable.
   */
  writeSynced(update: (state: State) => State): void {
    this.durable = update(this.durable);
  }

  /** Power loss: unsynced writes are gone. Returns what survives. */
  crash(): State {
    this.pending.length = 0;
    return this.durable;
  }

  durableState(): State {
    return this.durable;
  }
}
