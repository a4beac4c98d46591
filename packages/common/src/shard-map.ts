import { validateShardMap as validateShardMapOrThrowCoded, type ShardMapConfig } from "@logplayer/base";
import { LpError } from "./errors";

/**
 * As @logplayer/base's validateShardMap, but throws the service boundary's
 * LpError (FAILED_PRECONDITION), as services and the client always have.
 */
export function validateShardMap(map: ShardMapConfig): void {
  try {
    validateShardMapOrThrowCoded(map);
  } catch (err) {
    throw LpError.from(err);
  }
}
