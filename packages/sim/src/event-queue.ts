import { assert } from "@logplayer/common";

export interface SimEvent {
  readonly timeMs: number;
  /** Tie-breaker: events at the same time run in scheduling order, deterministically. */
  readonly sequence: number;
  readonly run: () => void;
}

/** A binary min-heap of events ordered by (timeMs, sequence). */
export class EventQueue {
  private readonly heap: SimEvent[] = [];

  constructor(private readonly eventsMax: number) {
    assert(eventsMax > 0, "event queue: eventsMax must be positive");
  }

  get size(): number {
    return this.heap.length;
  }

  push(event: SimEvent): void {
    assert(this.heap.length < this.eventsMax, `event queue: more than ${this.eventsMax} events pending`);
    this.heap.push(event);
    let child = this.heap.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!before(this.at(child), this.at(parent))) break;
      this.swap(child, parent);
      child = parent;
    }
  }

  pop(): SimEvent | undefined {
    const top = this.heap[0];
    const last = this.heap.pop();
    if (top === undefined || last === undefined || this.heap.length === 0) return top;
    this.heap[0] = last;
    let parent = 0;
    for (;;) {
      const left = parent * 2 + 1;
      const right = left + 1;
      let smallest = parent;
      if (left < this.heap.length && before(this.at(left), this.at(smallest))) smallest = left;
      if (right < this.heap.length && before(this.at(right), this.at(smallest))) smallest = right;
      if (smallest === parent) break;
      this.swap(parent, smallest);
      parent = smallest;
    }
    return top;
  }

  private at(position: number): SimEvent {
    const event = this.heap[position];
    assert(event !== undefined, "event queue: heap hole");
    return event;
  }

  private swap(a: number, b: number): void {
    const first = this.at(a);
    this.heap[a] = this.at(b);
    this.heap[b] = first;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.sequence < b.sequence);
}
