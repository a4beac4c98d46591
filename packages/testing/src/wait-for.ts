export interface WaitForOptions {
  /** Give up (and throw) after this long. */
  readonly timeoutMs?: number;
  /** Pause between two checks. */
  readonly intervalMs?: number;
}

export const WAIT_FOR_TIMEOUT_MS = 20_000;
export const WAIT_FOR_INTERVAL_MS = 20;

/**
 * Checks `check` until it holds, pausing `intervalMs` between checks, and
 * throws after `timeoutMs` with `description` in the message. For tests
 * that wait on a state no event announces (a process's liveness, a metric,
 * another process's applied LSN); never a fixed sleep in disguise, since it
 * returns as soon as the condition holds.
 */
export async function waitFor(description: string, check: () => boolean | Promise<boolean>, options: WaitForOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? WAIT_FOR_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? WAIT_FOR_INTERVAL_MS;
  if (!(timeoutMs > 0 && intervalMs > 0))
    throw new RangeError(`waitFor needs a positive timeout and interval, got ${timeoutMs} and ${intervalMs}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
