import { FailedPreconditionError, InvalidInputError, LimitExceededError } from "@logplayer/base";
import { ERROR_REASON_METADATA_KEY, ErrorReason, LpError, Status } from "./errors";
import { validateShardMap } from "./shard-map";

describe("LpError.from", () => {
  it("maps base's coded errors to their statuses, keeping the message and the cause", () => {
    const invalid = new InvalidInputError("wire: premature end of input");
    const mapped = LpError.from(invalid);
    expect(mapped.code).toBe(Status.INVALID_ARGUMENT);
    expect(mapped.message).toBe("wire: premature end of input");
    expect(mapped.cause).toBe(invalid);
    expect(LpError.from(new FailedPreconditionError("unknown hash")).code).toBe(Status.FAILED_PRECONDITION);
    expect(LpError.from(new LimitExceededError("over entry_bytes_max")).code).toBe(Status.RESOURCE_EXHAUSTED);
  });

  it("carries a machine-readable reason through gRPC metadata and back", () => {
    const refused = new LpError(Status.FAILED_PRECONDITION, "session gone", { reason: ErrorReason.sessionExpired });
    const wire = refused.toServiceError();
    expect(wire.metadata?.get(ERROR_REASON_METADATA_KEY)).toEqual(["SESSION_EXPIRED"]);
    const received = LpError.from(Object.assign(new Error("9 FAILED_PRECONDITION: session gone"), wire));
    expect(received.reason).toBe("SESSION_EXPIRED");
    expect(received.code).toBe(Status.FAILED_PRECONDITION);
    expect(LpError.from(new Error("plain")).reason).toBe("");
  });

  it("still makes anything else INTERNAL", () => {
    expect(LpError.from(new Error("plain")).code).toBe(Status.INTERNAL);
    expect(LpError.from("a string").code).toBe(Status.INTERNAL);
  });
});

describe("the service kit's validateShardMap", () => {
  it("throws an LpError with FAILED_PRECONDITION, as services and the client expect", () => {
    let thrown: unknown;
    try {
      validateShardMap({ shardCount: 0, hash: "fnv1a32" });
    } catch (err) {
      thrown = err;
    }
    expect(LpError.is(thrown)).toBe(true);
    expect((thrown as LpError).code).toBe(Status.FAILED_PRECONDITION);
    expect((thrown as LpError).message).toMatch(/shard count 0/);
  });
});
