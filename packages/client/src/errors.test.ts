import { Metadata, status as Status, type ServiceError } from "@grpc/grpc-js";
import { ErrorReason, LpError, invalidArgument, unavailable } from "@logplayer/common";
import {
  AbortedError,
  CancelledError,
  ClientError,
  DeadlineExceededError,
  FailedPreconditionError,
  InternalError,
  InvalidArgumentError,
  LimitExceededError,
  NotFoundError,
  NotLeaderError,
  OutOfRangeError,
  PermissionDeniedError,
  SessionExpiredError,
  UnavailableError,
  UnimplementedError,
  toClientError,
} from "./errors";

function serviceError(code: Status, details: string, leader?: string): ServiceError {
  const metadata = new Metadata();
  if (leader !== undefined) metadata.set("lp-leader", leader);
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

// Every gRPC status code and the class it must become: a new code or a changed mapping fails here.
const EXPECTED: [Status, string][] = [
  [Status.OK, "InternalError"],
  [Status.CANCELLED, "CancelledError"],
  [Status.UNKNOWN, "InternalError"],
  [Status.INVALID_ARGUMENT, "InvalidArgumentError"],
  [Status.DEADLINE_EXCEEDED, "DeadlineExceededError"],
  [Status.NOT_FOUND, "NotFoundError"],
  [Status.ALREADY_EXISTS, "AbortedError"],
  [Status.PERMISSION_DENIED, "PermissionDeniedError"],
  [Status.RESOURCE_EXHAUSTED, "LimitExceededError"],
  [Status.FAILED_PRECONDITION, "FailedPreconditionError"],
  [Status.ABORTED, "AbortedError"],
  [Status.OUT_OF_RANGE, "OutOfRangeError"],
  [Status.UNIMPLEMENTED, "UnimplementedError"],
  [Status.INTERNAL, "InternalError"],
  [Status.UNAVAILABLE, "UnavailableError"],
  [Status.DATA_LOSS, "InternalError"],
  [Status.UNAUTHENTICATED, "PermissionDeniedError"],
];

describe("toClientError", () => {
  it("covers every gRPC status code", () => {
    const codes = Object.values(Status).filter((v): v is number => typeof v === "number");
    expect(EXPECTED.map(([code]) => code).sort((a, b) => a - b)).toEqual(codes.sort((a, b) => a - b));
  });

  it.each(EXPECTED)("maps status %i to %s, keeping code, details and cause", (code, name) => {
    const original = serviceError(code, "the details");
    const error = toClientError(original, "shard 1 at h:1");
    expect(error.name).toBe(name);
    expect(error.code).toBe(code);
    expect(error.message).toBe("shard 1 at h:1: the details");
    expect(error.cause).toBe(original);
    expect(ClientError.is(error)).toBe(true);
    expect(error).toBeInstanceOf(ClientError);
  });

  it("each class's is() recognises only its own kind", () => {
    const classes = [
      [InvalidArgumentError, Status.INVALID_ARGUMENT],
      [LimitExceededError, Status.RESOURCE_EXHAUSTED],
      [UnavailableError, Status.UNAVAILABLE],
      [DeadlineExceededError, Status.DEADLINE_EXCEEDED],
      [FailedPreconditionError, Status.FAILED_PRECONDITION],
      [NotFoundError, Status.NOT_FOUND],
      [OutOfRangeError, Status.OUT_OF_RANGE],
      [CancelledError, Status.CANCELLED],
      [AbortedError, Status.ABORTED],
      [UnimplementedError, Status.UNIMPLEMENTED],
      [PermissionDeniedError, Status.PERMISSION_DENIED],
      [InternalError, Status.INTERNAL],
    ] as const;
    for (const [ErrorClass, code] of classes) {
      const error = toClientError(serviceError(code, "x"));
      expect(ErrorClass.is(error)).toBe(true);
      for (const [Other, otherCode] of classes) if (otherCode !== code) expect(Other.is(error)).toBe(false);
    }
    expect(ClientError.is(new Error("plain"))).toBe(false);
    expect(InvalidArgumentError.is({ name: "InvalidArgumentError" })).toBe(false);
  });

  it("turns UNAVAILABLE with lp-leader metadata into NotLeaderError carrying the leader", () => {
    const error = toClientError(serviceError(Status.UNAVAILABLE, "not the leader", "10.0.0.2:7100"));
    expect(NotLeaderError.is(error)).toBe(true);
    expect(UnavailableError.is(error)).toBe(false);
    expect((error as NotLeaderError).leaderAddress).toBe("10.0.0.2:7100");
    expect(error.code).toBe(Status.UNAVAILABLE);
  });

  it("names the leader in a NotLeaderError's message, once", () => {
    expect(toClientError(serviceError(Status.UNAVAILABLE, "not the leader", "h:7100")).message).toBe(
      "not the leader (the leader is h:7100)",
    );
    expect(toClientError(serviceError(Status.UNAVAILABLE, "not the leader; the leader is h:7100", "h:7100")).message).toBe(
      "not the leader; the leader is h:7100",
    );
  });

  it("treats FAILED_PRECONDITION with a leader as NotLeaderError too, but not other codes", () => {
    expect(NotLeaderError.is(toClientError(serviceError(Status.FAILED_PRECONDITION, "follower", "h:1")))).toBe(true);
    expect(InternalError.is(toClientError(serviceError(Status.INTERNAL, "boom", "h:1")))).toBe(true);
    expect(UnavailableError.is(toClientError(serviceError(Status.UNAVAILABLE, "down", "")))).toBe(true);
  });

  it("maps LpError from client-side checks by code and keeps its leader", () => {
    expect(InvalidArgumentError.is(toClientError(invalidArgument("bad key")))).toBe(true);
    const notLeader = toClientError(unavailable("follower", "h:7"));
    expect(NotLeaderError.is(notLeader) && notLeader.leaderAddress).toBe("h:7");
    expect(toClientError(new LpError(Status.OUT_OF_RANGE, "trimmed")).name).toBe("OutOfRangeError");
  });

  it("returns a ClientError unchanged and wraps anything else as InternalError", () => {
    const error = new UnavailableError(Status.UNAVAILABLE, "down");
    expect(toClientError(error, "ignored")).toBe(error);
    const wrapped = toClientError(new TypeError("oops"));
    expect(InternalError.is(wrapped)).toBe(true);
    expect(wrapped.message).toBe("oops");
    expect(toClientError("a string").message).toBe("a string");
  });

  it("names the code for one-line reports", () => {
    expect(toClientError(serviceError(Status.RESOURCE_EXHAUSTED, "full")).codeName).toBe("RESOURCE_EXHAUSTED");
  });
});

describe("SESSION_EXPIRED", () => {
  it("FAILED_PRECONDITION with reason SESSION_EXPIRED becomes SessionExpiredError, from metadata, an LpError or a stream answer", () => {
    const withReason = serviceError(Status.FAILED_PRECONDITION, "no live session");
    withReason.metadata.set("lp-error-reason", "SESSION_EXPIRED");
    const fromWire = toClientError(withReason, "LogStore at x");
    expect(SessionExpiredError.is(fromWire)).toBe(true);
    expect(fromWire.code).toBe(Status.FAILED_PRECONDITION);
    expect(fromWire.message).toBe("LogStore at x: no live session");
    const fromLpError = toClientError(new LpError(Status.FAILED_PRECONDITION, "gone", { reason: ErrorReason.sessionExpired }));
    expect(SessionExpiredError.is(fromLpError)).toBe(true);
    // Without the reason it stays a plain FailedPreconditionError (wrong cluster, seq older than the window).
    expect(FailedPreconditionError.is(toClientError(serviceError(Status.FAILED_PRECONDITION, "other")))).toBe(true);
    expect(SessionExpiredError.is(toClientError(serviceError(Status.FAILED_PRECONDITION, "other")))).toBe(false);
  });
});
