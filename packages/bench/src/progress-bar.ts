import type { BenchPhase } from "./bench";
import type { OpenLoopProgress } from "./open-loop";

const BAR_WIDTH = 24;
// TTY: redraw in place five times a second; otherwise one line per second.
const REFRESH_TTY_MS = 200;
const REFRESH_PIPE_MS = 1_000;

/** One progress line. Pure. */
export function formatProgress(phase: BenchPhase, live: OpenLoopProgress | undefined): string {
  if (live === undefined) return `${phase}...`;
  const done = live.sent + live.skipped;
  const fraction = live.slotsTotal === 0 ? 1 : Math.min(1, done / live.slotsTotal);
  const filled = Math.round(fraction * BAR_WIDTH);
  const bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
  return (
    `${phase.padEnd(9)} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}%  ` +
    `sent ${done}/${live.slotsTotal} acked ${live.acked} in-flight ${live.inflight} skipped ${live.skipped} failed ${live.failed}`
  );
}

/** Draws the progress on stderr (stdout keeps the report clean for pipes). */
export class ProgressBar {
  readonly #tty = process.stderr.isTTY === true;
  #phase: BenchPhase = "starting";
  #live: OpenLoopProgress | undefined;
  #timer: NodeJS.Timeout | undefined;

  start(): void {
    this.#timer = setInterval(() => this.#draw(), this.#tty ? REFRESH_TTY_MS : REFRESH_PIPE_MS);
    this.#draw();
  }

  update(phase: BenchPhase, live?: OpenLoopProgress): void {
    if (phase === this.#phase) {
      this.#live = live;
      return;
    }
    // Leave the finished phase's final numbers on screen, then start the next line.
    if (this.#tty) {
      this.#draw();
      process.stderr.write("\n");
    }
    this.#phase = phase;
    this.#live = live;
    this.#draw();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#draw();
    if (this.#tty) process.stderr.write("\n");
  }

  #draw(): void {
    const text = formatProgress(this.#phase, this.#live);
    process.stderr.write(this.#tty ? `\r\x1b[2K${text}` : `${text}\n`);
  }
}
