/**
 * Assertions catch programmer errors: a broken invariant means the process
 * can no longer trust its own state, so it throws (and services crash) rather
 * than carry on. Operating errors (bad input, a dead peer) are LpError values.
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
