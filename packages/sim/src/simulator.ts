import { assert } from "@logplayer/common";
import { EventQueue } from "./event-queue";
import { Prng } from "./prng";

export interface SimulatorConfig {
  readonly seed: number;
  /** Pending events; a runaway scenario fails loudly instead of eating memory. */
  readonly eventsMax: number;
  /** Trace lines kept for the failure report. */
  readonly traceLinesMax: number;
}

export const DEFAULT_SIMULATOR_CONFIG: Omit<SimulatorConfig, "seed"> = { eventsMax: 100_000, traceLinesMax: 40 };

/**
 * The deterministic driver: a simulated clock (milliseconds, starting at 0)
 * and a queue of scheduled events. One step runs the earliest event; nothing
 * else moves time. All randomness comes from `prng`, seeded from the config.
 */
export class Simulator {
  readonly prng: Prng;
  private readonly queue: EventQueue;
  private clockMs = 0;
  private sequence = 0;
  private steps = 0;
  private readonly traceLines: string[] = [];
  private traceNext = 0;

  constructor(private readonly config: SimulatorConfig) {
    assert(config.traceLinesMax > 0, "simulator: traceLinesMax must be positive");
    this.prng = new Prng(config.seed);
    this.queue = new EventQueue(config.eventsMax);
  }

  get nowMs(): number {
    return this.clockMs;
  }

  get stepCount(): number {
    return this.steps;
  }

  get pendingEvents(): number {
    return this.queue.size;
  }

  /** Runs `run` after `delayMs` simulated milliseconds (0 = after the events already due now). */
  schedule(delayMs: number, run: () => void): void {
    assert(Number.isFinite(delayMs) && delayMs >= 0, `simulator: bad delay ${delayMs}`);
    this.queue.push({ timeMs: this.clockMs + delayMs, sequence: this.sequence++, run });
  }

  /** Runs the earliest event. Returns false when nothing is scheduled. */
  step(): boolean {
    const event = this.queue.pop();
    if (event === undefined) return false;
    assert(event.timeMs >= this.clockMs, "simulator: time went back");
    this.clockMs = event.timeMs;
    this.steps++;
    event.run();
    return true;
  }

  /** Records a line for the failure report (a ring: only the last traceLinesMax are kept). */
  trace(line: string): void {
    const text = `[step ${this.steps} t=${this.clockMs}ms] ${line}`;
    if (this.traceLines.length < this.config.traceLinesMax) this.traceLines.push(text);
    else this.traceLines[this.traceNext] = text;
    this.traceNext = (this.traceNext + 1) % this.config.traceLinesMax;
  }

  traceTail(): string[] {
    if (this.traceLines.length < this.config.traceLinesMax) return [...this.traceLines];
    return [...this.traceLines.slice(this.traceNext), ...this.traceLines.slice(0, this.traceNext)];
  }
}
