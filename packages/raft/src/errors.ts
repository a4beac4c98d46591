/**
 * The Raft core's operating errors, after etcd's raft (ErrCompacted and
 * friends): named values a caller can handle, with no transport meaning. The
 * adapter decides what each means on its wire (the LogStore maps them to gRPC
 * codes). Broken invariants are not errors of this kind: they fail an assert.
 */
export type RaftErrorCode =
  /** A configuration broke a rule of validateRaftConfig. */
  | "invalid-config"
  /** Entries were asked for below the first index the storage still holds. */
  | "compacted"
  /** A config change was refused: a previous one is not committed yet. */
  | "config-change-pending"
  /** A config change was refused: the leader has not committed an entry of its own term yet (retry shortly). */
  | "leader-term-not-committed"
  /** A config change was refused: it does not apply to the current membership (or breaks a limit). */
  | "invalid-config-change"
  /** A promotion was refused: the learner's log is behind the leader's commit index. */
  | "learner-not-caught-up";

/** Marks a RaftError across module copies and jest realms, where instanceof is unreliable. */
const RAFT_ERROR_BRAND = Symbol.for("@logplayer/raft.RaftError");

export class RaftError extends Error {
  readonly code: RaftErrorCode;
  readonly [RAFT_ERROR_BRAND] = true;

  constructor(code: RaftErrorCode, message: string) {
    super(message);
    this.name = "RaftError";
    this.code = code;
  }

  static is(value: unknown): value is RaftError {
    return typeof value === "object" && value !== null && (value as Record<symbol, unknown>)[RAFT_ERROR_BRAND] === true;
  }
}

/** Thrown by validateRaftConfig (and so by the RaftNode constructor) for a configuration it refuses. */
export function invalidConfig(message: string): RaftError {
  return new RaftError("invalid-config", message);
}

/** Thrown by Storage.entries for an index below firstIndex (etcd's ErrCompacted). */
export function compacted(message: string): RaftError {
  return new RaftError("compacted", message);
}

/** Why RaftNode.proposeConfigChange refused a change (its ProposeResult carries the error). */
export type ConfigChangeRefusal = "config-change-pending" | "leader-term-not-committed" | "invalid-config-change" | "learner-not-caught-up";

export function configChangeRefused(code: ConfigChangeRefusal, message: string): RaftError {
  return new RaftError(code, message);
}
