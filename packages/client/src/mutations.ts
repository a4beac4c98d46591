import { MutationKind, type Mutation } from "@logplayer/proto";
import { invalidArgument } from "@logplayer/common";
import { toClientError } from "./errors";

/** What `commit` takes: the wire Mutation itself, built most easily with `mutation.*`. */
export type MutationInput = Mutation;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function toBuffer(value: string | Uint8Array): Buffer {
  if (typeof value === "string") return Buffer.from(value, "utf8");
  // Copy so a caller reusing its array cannot change a queued mutation.
  return Buffer.from(value);
}

/** ADD's delta is a signed 64-bit integer on the wire; a number must be a safe integer. */
function toDelta(delta: bigint | number): bigint {
  if (typeof delta === "number" && !Number.isSafeInteger(delta)) {
    throw toClientError(invalidArgument(`add: delta ${delta} is not a safe integer (pass a bigint)`));
  }
  const value = BigInt(delta);
  if (value < INT64_MIN || value > INT64_MAX) {
    throw toClientError(invalidArgument(`add: delta ${value} does not fit in a signed 64-bit integer`));
  }
  return value;
}

/**
 * Builders for the four mutation kinds. They only shape the message; keys are
 * checked by `commit` (so one place owns the limits), deltas here because a
 * bad number cannot even be represented on the wire.
 */
export const mutation = {
  /** Set `key` to `value` (a string is sent as UTF-8). */
  put(key: string, value: string | Uint8Array): Mutation {
    return { kind: MutationKind.MUTATION_KIND_PUT, key, value: toBuffer(value), delta: 0n };
  },
  /** Remove `key`; a no-op when it is absent. */
  delete(key: string): Mutation {
    return { kind: MutationKind.MUTATION_KIND_DELETE, key, value: Buffer.alloc(0), delta: 0n };
  },
  /** Append `value`'s bytes to the key's current value (empty when absent). Not idempotent on purpose. */
  append(key: string, value: string | Uint8Array): Mutation {
    return { kind: MutationKind.MUTATION_KIND_APPEND, key, value: toBuffer(value), delta: 0n };
  },
  /** Add `delta` to the key's value read as a signed 64-bit decimal integer (absent counts as 0; wraps at 64 bits). */
  add(key: string, delta: bigint | number): Mutation {
    return { kind: MutationKind.MUTATION_KIND_ADD, key, value: Buffer.alloc(0), delta: toDelta(delta) };
  },
} as const;
