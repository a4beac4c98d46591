import { LpError, Status } from "@logplayer/common";
import { RaftError } from "@logplayer/raft";

/** The gRPC meaning of the Raft core's errors: the core has none of its own. */
export function raftErrorToLpError(error: RaftError): LpError {
  switch (error.code) {
    case "invalid-config":
      return new LpError(Status.INVALID_ARGUMENT, error.message, { cause: error });
    case "compacted":
    case "config-change-pending":
    case "invalid-config-change":
    case "learner-not-caught-up":
      return new LpError(Status.FAILED_PRECONDITION, error.message, { cause: error });
    case "leader-term-not-committed":
      // A new leader commits its no-op within a round trip: retrying is the answer.
      return new LpError(Status.UNAVAILABLE, error.message, { cause: error });
  }
}

/** Maps a RaftError to its LpError; anything else is returned as it is. */
export function fromRaftError(error: unknown): unknown {
  return RaftError.is(error) ? raftErrorToLpError(error) : error;
}
