import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { CodedError, type CodedErrorKind } from "@logplayer/base";

export { Status };

const LP_ERROR_BRAND = Symbol.for("logplayer.LpError");

/** The gRPC status each kind of @logplayer/base's coded errors becomes at a service boundary. */
const STATUS_OF_KIND: Readonly<Record<CodedErrorKind, Status>> = {
  "invalid-input": Status.INVALID_ARGUMENT,
  "limit-exceeded": Status.RESOURCE_EXHAUSTED,
  "failed-precondition": Status.FAILED_PRECONDITION,
  unavailable: Status.UNAVAILABLE,
  "out-of-range": Status.OUT_OF_RANGE,
  "data-loss": Status.DATA_LOSS,
  "io-failure": Status.INTERNAL,
};

/** Metadata key naming the leader's address when a replica is not the leader. */
export const LEADER_METADATA_KEY = "lp-leader";

/**
 * Metadata key carrying an error's machine-readable reason, for a status code
 * that covers several cases a caller must tell apart (as google.rpc.ErrorInfo's
 * `reason`). On an AppendStream the same value travels in `AppendAnswer.error_reason`.
 */
export const ERROR_REASON_METADATA_KEY = "lp-error-reason";

/**
 * The reasons in use. SESSION_EXPIRED (with FAILED_PRECONDITION): an
 * idempotent append whose client session the LogStore no longer holds (evicted
 * or expired), refused because it cannot tell whether the append is already in
 * the log; the outcome of that commit is unknown (LookupAppend tells).
 */
export const ErrorReason = { sessionExpired: "SESSION_EXPIRED" } as const;
export type ErrorReason = (typeof ErrorReason)[keyof typeof ErrorReason];

/**
 * The one error type that crosses a service boundary: a gRPC status code, a
 * message for people, and optional details. Branded rather than relying on
 * instanceof, which breaks across module copies and jest realms.
 */
export class LpError extends Error {
  override readonly name = "LpError";
  readonly [LP_ERROR_BRAND] = true;
  readonly code: Status;
  readonly leaderAddress: string | undefined;
  /** A machine-readable reason (ERROR_REASON_METADATA_KEY), or "" when the code says it all. */
  readonly reason: string;

  constructor(code: Status, message: string, options: { cause?: unknown; leaderAddress?: string; reason?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.leaderAddress = options.leaderAddress;
    this.reason = options.reason ?? "";
  }

  static is(value: unknown): value is LpError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[LP_ERROR_BRAND] === true;
  }

  /**
   * Normalise anything thrown or received from grpc-js into an LpError. A
   * coded error from code without a transport (the codec, the shard map) keeps
   * its meaning: its kind picks the status.
   */
  static from(value: unknown): LpError {
    if (LpError.is(value)) return value;
    if (CodedError.is(value)) return new LpError(STATUS_OF_KIND[value.kind], value.message, { cause: value });
    if (isServiceError(value)) {
      const leader = value.metadata?.get(LEADER_METADATA_KEY)[0];
      const reason = value.metadata?.get(ERROR_REASON_METADATA_KEY)[0];
      return new LpError(value.code, value.details || value.message, {
        cause: value,
        ...(typeof leader === "string" && leader !== "" ? { leaderAddress: leader } : {}),
        ...(typeof reason === "string" && reason !== "" ? { reason } : {}),
      });
    }
    if (value instanceof Error) return new LpError(Status.INTERNAL, value.message, { cause: value });
    return new LpError(Status.INTERNAL, String(value));
  }

  /** The shape grpc-js servers send back to callers. */
  toServiceError(): Partial<ServiceError> {
    const metadata = new Metadata();
    if (this.leaderAddress !== undefined) metadata.set(LEADER_METADATA_KEY, this.leaderAddress);
    if (this.reason !== "") metadata.set(ERROR_REASON_METADATA_KEY, this.reason);
    return { code: this.code, details: this.message, metadata };
  }
}

export function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === "number" && "details" in value;
}

export const invalidArgument = (message: string): LpError => new LpError(Status.INVALID_ARGUMENT, message);
export const resourceExhausted = (message: string): LpError => new LpError(Status.RESOURCE_EXHAUSTED, message);
export const failedPrecondition = (message: string): LpError => new LpError(Status.FAILED_PRECONDITION, message);
export const unavailable = (message: string, leaderAddress?: string): LpError =>
  new LpError(Status.UNAVAILABLE, message, leaderAddress === undefined ? {} : { leaderAddress });
