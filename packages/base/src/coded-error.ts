/**
 * Operating errors that code without a transport can raise: the codec on bytes
 * it cannot decode, the shard map on a map it cannot use. They carry a kind,
 * not a gRPC status; the service kit (`LpError.from` in @logplayer/common)
 * maps each kind to its status, so a core never learns what gRPC is.
 *
 * Branded rather than relying on instanceof, which breaks across module
 * copies and jest realms.
 */
const CODED_ERROR_BRAND = Symbol.for("logplayer.CodedError");

/**
 * - `invalid-input`: the caller sent something malformed (bytes that do not
 *   decode, a value out of its field's range); the service kit answers
 *   INVALID_ARGUMENT.
 * - `limit-exceeded`: well formed, but larger than a configured limit allows
 *   (a transaction over entry_bytes_max); RESOURCE_EXHAUSTED.
 * - `failed-precondition`: the input is well formed but the system is not in a
 *   state to use it (a shard map this build does not know); FAILED_PRECONDITION.
 * - `unavailable`: try again later or elsewhere (the WAL is closing); UNAVAILABLE.
 * - `out-of-range`: a position outside what exists (an LSN below the trim point); OUT_OF_RANGE.
 * - `data-loss`: stored data no longer verifies (a record's checksum); DATA_LOSS.
 * - `io-failure`: the disk failed under us and the component refuses further work; INTERNAL.
 */
export type CodedErrorKind =
  | "invalid-input"
  | "limit-exceeded"
  | "failed-precondition"
  | "unavailable"
  | "out-of-range"
  | "data-loss"
  | "io-failure";

export class CodedError extends Error {
  override readonly name: string = "CodedError";
  readonly [CODED_ERROR_BRAND] = true;

  constructor(
    readonly kind: CodedErrorKind,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
  }

  static is(value: unknown): value is CodedError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[CODED_ERROR_BRAND] === true;
  }
}

/** Input that cannot be used as given: the codec throws it on malformed bytes. */
export class InvalidInputError extends CodedError {
  override readonly name = "InvalidInputError";

  constructor(message: string, options: { cause?: unknown } = {}) {
    super("invalid-input", message, options);
  }
}

/** Well-formed input over one of the configured limits. */
export class LimitExceededError extends CodedError {
  override readonly name = "LimitExceededError";

  constructor(message: string, options: { cause?: unknown } = {}) {
    super("limit-exceeded", message, options);
  }
}

/** Well-formed input the system cannot act on in its present state or configuration. */
export class FailedPreconditionError extends CodedError {
  override readonly name = "FailedPreconditionError";

  constructor(message: string, options: { cause?: unknown } = {}) {
    super("failed-precondition", message, options);
  }
}

/** The errors of I/O-free storage cores (the WAL): kinds without a class of their own. */
export const unavailableNow = (message: string): CodedError => new CodedError("unavailable", message);
export const outOfRange = (message: string): CodedError => new CodedError("out-of-range", message);
export const dataLoss = (message: string): CodedError => new CodedError("data-loss", message);
export const ioFailure = (message: string, cause: unknown): CodedError => new CodedError("io-failure", message, { cause });

/** Factories for call sites that throw the value: `throw invalidInput(...)`. */
export const invalidInput = (message: string): InvalidInputError => new InvalidInputError(message);
export const limitExceeded = (message: string): LimitExceededError => new LimitExceededError(message);
export const preconditionFailed = (message: string): FailedPreconditionError => new FailedPreconditionError(message);
