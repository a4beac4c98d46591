import { LpError, Status } from "@logplayer/common";
import { compacted, invalidConfig } from "@logplayer/raft";
import { fromRaftError, raftErrorToLpError } from "./raft-errors";

describe("the Raft core's errors on the LogStore's wire", () => {
  test("a refused configuration is INVALID_ARGUMENT, a compacted read FAILED_PRECONDITION, both with the core's message", () => {
    expect(raftErrorToLpError(invalidConfig("raft: id must be a positive integer, got 0"))).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      message: "raft: id must be a positive integer, got 0",
    });
    expect(raftErrorToLpError(compacted("raft storage: index 3 is compacted")).code).toBe(Status.FAILED_PRECONDITION);
  });

  test("anything else passes through unchanged", () => {
    const other = new Error("disk on fire");
    expect(fromRaftError(other)).toBe(other);
    expect(LpError.is(fromRaftError(invalidConfig("x")))).toBe(true);
  });
});
