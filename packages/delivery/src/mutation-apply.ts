import { assert, unreachable } from "@logplayer/base";
import { MutationKind, type Mutation } from "@logplayer/proto";

/**
 * What each mutation kind does to one key's value, as a pure function. The
 * shard's SQLite adapter reads the current value, calls this, and writes the
 * result back inside the applying transaction. `undefined` means "absent".
 *
 * APPEND and ADD are deliberately not idempotent: applying one twice changes
 * the data, so a double delivery shows up in end-to-end tests.
 */
export function applyMutation(current: Uint8Array | undefined, mutation: Mutation): Uint8Array | undefined {
  switch (mutation.kind) {
    case MutationKind.MUTATION_KIND_PUT:
      return mutation.value;
    case MutationKind.MUTATION_KIND_DELETE:
      return undefined;
    case MutationKind.MUTATION_KIND_APPEND:
      return concatBytes(current, mutation.value);
    case MutationKind.MUTATION_KIND_ADD:
      return encodeInt64(BigInt.asIntN(64, decodeInt64(current) + mutation.delta));
    case MutationKind.MUTATION_KIND_UNSPECIFIED:
    case MutationKind.UNRECOGNIZED:
      // Validation refuses these before anything is applied.
      assert(false, `cannot apply mutation of kind ${mutation.kind} to key ${JSON.stringify(mutation.key)}`);
      break;
    default:
      unreachable(mutation.kind, "mutation kind");
  }
  return undefined;
}

/** One key's new value after a part: `undefined` deletes it. */
export type PartWrite = readonly [key: string, value: Uint8Array | undefined];

/**
 * What applying one part's mutations does, decided before anything is
 * written: every write (each key's final value, in first-touch order), or
 * the part rejected as a whole with the reason. Every shard that applies the
 * same part to the same state reaches the same outcome, so a rejection is an
 * outcome of the committed log, never a refusal to apply it.
 */
export type PartApplyOutcome =
  | { readonly kind: "applied"; readonly writes: readonly PartWrite[] }
  | { readonly kind: "rejected"; readonly reason: string };

/**
 * Applies a part's mutations in order over `readCurrent` (the shard's stored
 * values) and checks every resulting value against `valueBytesMax`: an
 * APPEND (or an ADD's decimal text) that would make a value longer rejects
 * the whole part. PUT values were already bounded when the entry was
 * accepted; they are checked again so the rule holds for any input. Pure,
 * given a pure `readCurrent`.
 */
export function applyPartMutations(
  mutations: readonly Mutation[],
  readCurrent: (key: string) => Uint8Array | undefined,
  valueBytesMax: number,
): PartApplyOutcome {
  assert(Number.isSafeInteger(valueBytesMax) && valueBytesMax >= 0, `valueBytesMax ${valueBytesMax} is not a byte count`);
  const values = new Map<string, Uint8Array | undefined>();
  for (let i = 0; i < mutations.length; i++) {
    const mutation = mutations[i]!;
    const current = values.has(mutation.key) ? values.get(mutation.key) : readCurrent(mutation.key);
    const next = applyMutation(current, mutation);
    if (next !== undefined && next.length > valueBytesMax) {
      const kindName = MutationKind[mutation.kind] ?? String(mutation.kind);
      return {
        kind: "rejected",
        reason:
          `VALUE_TOO_LARGE: mutation ${i} (${kindName}) would make key ${JSON.stringify(mutation.key)} ` +
          `${next.length} bytes, more than value_bytes_max ${valueBytesMax}`,
      };
    }
    values.set(mutation.key, next);
  }
  return { kind: "applied", writes: [...values] };
}

function concatBytes(current: Uint8Array | undefined, suffix: Uint8Array): Uint8Array {
  if (current === undefined || current.length === 0) return suffix;
  if (suffix.length === 0) return current;
  const joined = new Uint8Array(current.length + suffix.length);
  joined.set(current, 0);
  joined.set(suffix, current.length);
  return joined;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// Optional minus, then 1 to 19 digits: anything longer cannot be an int64.
const INT64_DECIMAL = /^-?[0-9]{1,19}$/;
const decoder = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

/**
 * Reads a value as a signed 64-bit ASCII decimal integer. Absent, empty,
 * malformed ("+1", " 1", "1.0", non-ASCII) or out-of-range values count as 0,
 * as the proto's ADD contract says.
 */
export function decodeInt64(value: Uint8Array | undefined): bigint {
  if (value === undefined || value.length === 0 || value.length > 20) return 0n;
  const text = decoder.decode(value);
  if (!INT64_DECIMAL.test(text)) return 0n;
  const parsed = BigInt(text);
  if (parsed < INT64_MIN || parsed > INT64_MAX) return 0n;
  return parsed;
}

export function encodeInt64(value: bigint): Uint8Array {
  assert(value >= INT64_MIN && value <= INT64_MAX, `value ${value} is not a signed 64-bit integer`);
  return encoder.encode(value.toString(10));
}
