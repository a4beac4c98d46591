import { status as Status } from "@grpc/grpc-js";
import { ERROR_REASON_METADATA_KEY, ErrorReason, LEADER_METADATA_KEY, LpError, isServiceError } from "@logplayer/common";

const CLIENT_ERROR_BRAND = Symbol.for("logplayer.ClientError");

/**
 * Base of every error the client throws. Branded (see `ClientError.is`) so
 * checks work across module copies and jest realms, where instanceof may not.
 * `code` is the gRPC status the call ended with (or the one a client-side
 * check chose); `cause` holds the original grpc-js error when there is one.
 */
export class ClientError extends Error {
  override readonly name: string = "ClientError";
  readonly [CLIENT_ERROR_BRAND] = true;
  readonly code: Status;

  constructor(code: Status, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  /** The status code's name, e.g. "UNAVAILABLE", for one-line error reports. */
  get codeName(): string {
    return Status[this.code] ?? `CODE_${this.code}`;
  }

  static is(value: unknown): value is ClientError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[CLIENT_ERROR_BRAND] === true;
  }
}

function isNamed(value: unknown, name: string): boolean {
  return ClientError.is(value) && value.name === name;
}

/** Thrown for INVALID_ARGUMENT: a malformed key or transaction, found by the client before sending or by the server. */
export class InvalidArgumentError extends ClientError {
  override readonly name = "InvalidArgumentError";
  static override is(value: unknown): value is InvalidArgumentError {
    return isNamed(value, "InvalidArgumentError");
  }
}

/** Thrown for RESOURCE_EXHAUSTED: a size limit was exceeded, or the server's queue is full (back off and retry). */
export class LimitExceededError extends ClientError {
  override readonly name = "LimitExceededError";
  static override is(value: unknown): value is LimitExceededError {
    return isNamed(value, "LimitExceededError");
  }
}

/**
 * Thrown when a LogStore replica refused a call because it is not the leader
 * (UNAVAILABLE or FAILED_PRECONDITION carrying "lp-leader" metadata). The
 * request was refused, not executed, so it is safe to send it to `leaderAddress`.
 */
export class NotLeaderError extends ClientError {
  override readonly name = "NotLeaderError";
  readonly leaderAddress: string;

  constructor(code: Status, message: string, leaderAddress: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.leaderAddress = leaderAddress;
  }

  static override is(value: unknown): value is NotLeaderError {
    return isNamed(value, "NotLeaderError");
  }
}

/** Thrown for UNAVAILABLE: the server is down, restarting or shutting down. Reads were already retried until their deadline. */
export class UnavailableError extends ClientError {
  override readonly name = "UnavailableError";
  static override is(value: unknown): value is UnavailableError {
    return isNamed(value, "UnavailableError");
  }
}

/**
 * Thrown for DEADLINE_EXCEEDED: the call's deadline passed. For a commit the
 * outcome is unknown (it may have been appended); for a read with minLsn the
 * shard may not have applied that LSN yet.
 */
export class DeadlineExceededError extends ClientError {
  override readonly name = "DeadlineExceededError";
  static override is(value: unknown): value is DeadlineExceededError {
    return isNamed(value, "DeadlineExceededError");
  }
}

/** Thrown for FAILED_PRECONDITION: the cluster does not match (shard count, cluster id, protocol version). */
export class FailedPreconditionError extends ClientError {
  override readonly name = "FailedPreconditionError";
  static override is(value: unknown): value is FailedPreconditionError {
    return isNamed(value, "FailedPreconditionError");
  }
}

/** The identity of one idempotent append: who sent it, in which session, with which seq. */
export interface AppendIdentity {
  readonly clientId: string;
  readonly clientSeq: bigint;
  /** The session from RegisterClient (0: none, or not known where the error was made). */
  readonly sessionLsn: bigint;
}

/**
 * Thrown for FAILED_PRECONDITION with reason SESSION_EXPIRED: the LogStore no
 * longer holds this client's session (other clients pushed it out of its
 * dedupe table, or it sat unused too long), so it refused an append it could
 * not deduplicate rather than risk writing it twice. Nothing was appended by
 * the refused attempt, but when commit() throws it an earlier attempt of the
 * same commit may have landed: **the outcome of that commit is unknown.**
 * Find out with `client.lookupAppend(err.append)` (`lpctl lookup`), or read
 * the transaction's keys. `append` says which append it was (empty client id
 * when the error did not come from a commit).
 */
export class SessionExpiredError extends ClientError {
  override readonly name = "SessionExpiredError";
  readonly append: AppendIdentity;

  constructor(code: Status, message: string, options: { cause?: unknown; append?: AppendIdentity } = {}) {
    super(code, message, options);
    this.append = options.append ?? { clientId: "", clientSeq: 0n, sessionLsn: 0n };
  }

  static override is(value: unknown): value is SessionExpiredError {
    return isNamed(value, "SessionExpiredError");
  }
}

/** Thrown for NOT_FOUND: the server has no such thing (e.g. an unknown method or resource). A missing key is NOT an error: `get` returns found = false. */
export class NotFoundError extends ClientError {
  override readonly name = "NotFoundError";
  static override is(value: unknown): value is NotFoundError {
    return isNamed(value, "NotFoundError");
  }
}

/** Thrown for OUT_OF_RANGE: an LSN outside what the server holds. */
export class OutOfRangeError extends ClientError {
  override readonly name = "OutOfRangeError";
  static override is(value: unknown): value is OutOfRangeError {
    return isNamed(value, "OutOfRangeError");
  }
}

/** Thrown for CANCELLED: the call was cancelled (usually because the client was closed). */
export class CancelledError extends ClientError {
  override readonly name = "CancelledError";
  static override is(value: unknown): value is CancelledError {
    return isNamed(value, "CancelledError");
  }
}

/** Thrown for ABORTED and ALREADY_EXISTS: the server gave up on a conflicting request. */
export class AbortedError extends ClientError {
  override readonly name = "AbortedError";
  static override is(value: unknown): value is AbortedError {
    return isNamed(value, "AbortedError");
  }
}

/** Thrown for UNIMPLEMENTED: the server does not offer this method (version skew, or a wrong address). */
export class UnimplementedError extends ClientError {
  override readonly name = "UnimplementedError";
  static override is(value: unknown): value is UnimplementedError {
    return isNamed(value, "UnimplementedError");
  }
}

/** Thrown for PERMISSION_DENIED and UNAUTHENTICATED: the caller has no certificate, or its role may not make the call. */
export class PermissionDeniedError extends ClientError {
  override readonly name = "PermissionDeniedError";
  static override is(value: unknown): value is PermissionDeniedError {
    return isNamed(value, "PermissionDeniedError");
  }
}

/** Thrown for INTERNAL, UNKNOWN and DATA_LOSS, and for anything thrown that is not a gRPC error: a bug somewhere. */
export class InternalError extends ClientError {
  override readonly name = "InternalError";
  static override is(value: unknown): value is InternalError {
    return isNamed(value, "InternalError");
  }
}

type ErrorConstructor = new (code: Status, message: string, options: { cause?: unknown }) => ClientError;

/** Every status code, mapped on purpose. OK never arrives as an error; if it does, it is a bug (InternalError). */
const ERROR_CLASS_BY_CODE: Record<Status, ErrorConstructor> = {
  [Status.OK]: InternalError,
  [Status.CANCELLED]: CancelledError,
  [Status.UNKNOWN]: InternalError,
  [Status.INVALID_ARGUMENT]: InvalidArgumentError,
  [Status.DEADLINE_EXCEEDED]: DeadlineExceededError,
  [Status.NOT_FOUND]: NotFoundError,
  [Status.ALREADY_EXISTS]: AbortedError,
  [Status.PERMISSION_DENIED]: PermissionDeniedError,
  [Status.RESOURCE_EXHAUSTED]: LimitExceededError,
  [Status.FAILED_PRECONDITION]: FailedPreconditionError,
  [Status.ABORTED]: AbortedError,
  [Status.OUT_OF_RANGE]: OutOfRangeError,
  [Status.UNIMPLEMENTED]: UnimplementedError,
  [Status.INTERNAL]: InternalError,
  [Status.UNAVAILABLE]: UnavailableError,
  [Status.DATA_LOSS]: InternalError,
  [Status.UNAUTHENTICATED]: PermissionDeniedError,
};

/**
 * Builds the typed error for a status code; a leader address turns a refusal
 * into NotLeaderError, the reason SESSION_EXPIRED into SessionExpiredError.
 */
export function clientErrorFor(
  code: Status,
  message: string,
  options: { cause?: unknown; leaderAddress?: string; reason?: string } = {},
): ClientError {
  if (code === Status.FAILED_PRECONDITION && options.reason === ErrorReason.sessionExpired) {
    return new SessionExpiredError(code, message, { cause: options.cause });
  }
  const leaderRefusal = code === Status.UNAVAILABLE || code === Status.FAILED_PRECONDITION;
  if (leaderRefusal && options.leaderAddress !== undefined && options.leaderAddress !== "") {
    // An older LogStore's message does not name the leader: the error's message always does.
    const named = message.includes(options.leaderAddress) ? message : `${message} (the leader is ${options.leaderAddress})`;
    return new NotLeaderError(code, named, options.leaderAddress, { cause: options.cause });
  }
  const ErrorClass = ERROR_CLASS_BY_CODE[code] ?? InternalError;
  return new ErrorClass(code, message, { cause: options.cause });
}

function metadataString(value: { metadata?: { get(key: string): unknown[] } }, key: string): string | undefined {
  const text = value.metadata?.get(key)[0];
  return typeof text === "string" && text !== "" ? text : undefined;
}

/**
 * Normalises anything thrown (a grpc-js ServiceError, an LpError from a
 * client-side check, a ClientError, anything else) into a typed ClientError.
 * `context` (e.g. "shard 2 at host:port") prefixes the message so a one-line
 * report says where the error came from.
 */
export function toClientError(value: unknown, context?: string): ClientError {
  if (ClientError.is(value)) return value;
  const prefix = context === undefined ? "" : `${context}: `;
  if (LpError.is(value)) {
    const leaderAddress = value.leaderAddress;
    return clientErrorFor(value.code, prefix + value.message, {
      cause: value,
      reason: value.reason,
      ...(leaderAddress ? { leaderAddress } : {}),
    });
  }
  if (isServiceError(value)) {
    const leaderAddress = metadataString(value, LEADER_METADATA_KEY);
    const reason = metadataString(value, ERROR_REASON_METADATA_KEY);
    const message = prefix + (value.details || value.message);
    return clientErrorFor(value.code, message, {
      cause: value,
      ...(leaderAddress ? { leaderAddress } : {}),
      ...(reason ? { reason } : {}),
    });
  }
  if (value instanceof Error) return new InternalError(Status.INTERNAL, prefix + value.message, { cause: value });
  return new InternalError(Status.INTERNAL, prefix + String(value));
}
