/**
 * Assertions catch programmer errors: a broken invariant means the process
 * can no longer trust its own state, so it throws (and services crash) rather
 * than carry on. Operating errors (bad input, a dead peer) are values: the
 * coded errors in coded-error.ts here, LpError in the service kit.
 */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

/** For exhaustive switches: the compiler proves this is never reached. */
export function unreachable(value: never, context = "value"): never {
  throw new AssertionError(`unreachable ${context}: ${String(value)}`);
}

/** The value, asserted present: for lookups the caller's invariants guarantee. */
export function must<T>(value: T | null | undefined, message: string): T {
  if (value === null || value === undefined) throw new AssertionError(message);
  return value;
}
