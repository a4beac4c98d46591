import { DEFAULT_TRANSACTION_LIMITS, invalidArgument, validateKey } from "@logplayer/common";
import type { Mutation } from "@logplayer/proto";
import { toClientError } from "./errors";
import { mutation } from "./mutations";

/*
 * lpctl's transaction syntax, one argument per mutation:
 *
 *   put:KEY=VALUE   append:KEY=VALUE   add:KEY=N   delete:KEY
 *
 * The operation name ends at the FIRST ':' (names never contain one), so keys
 * may contain ':'. For put/append/add the key ends at the FIRST '=', so a
 * value may contain '=' but a key cannot (use `lpctl put` for such keys).
 * delete takes everything after "delete:" as the key. VALUE may be empty.
 * With `hex`, VALUE is hex-encoded bytes.
 */

export interface TxnArgOptions {
  /** VALUE is hex ("00ff...") instead of UTF-8 text. */
  hex?: boolean;
}

const INTEGER = /^[+-]?\d+$/;
const HEX = /^(?:[0-9a-fA-F]{2})*$/;

function fail(index: number, arg: string, problem: string): never {
  throw toClientError(invalidArgument(`txn argument ${index + 1} (${JSON.stringify(arg)}): ${problem}`));
}

/** Parses a value given on the command line: UTF-8 text, or hex bytes with `hex`. */
export function parseValueArg(text: string, hex: boolean): Buffer {
  if (!hex) return Buffer.from(text, "utf8");
  if (!HEX.test(text)) throw toClientError(invalidArgument(`value ${JSON.stringify(text)} is not hex (an even number of 0-9a-f digits)`));
  return Buffer.from(text, "hex");
}

/** Parses ADD's amount: a signed decimal integer that fits in 64 bits. */
export function parseDeltaArg(text: string): bigint {
  if (!INTEGER.test(text)) throw toClientError(invalidArgument(`amount ${JSON.stringify(text)} is not a decimal integer`));
  const delta = BigInt(text);
  if (delta < -(2n ** 63n) || delta > 2n ** 63n - 1n) throw toClientError(invalidArgument(`amount ${text} does not fit in 64 bits`));
  return delta;
}

function splitKeyValue(index: number, arg: string, op: string, rest: string): { key: string; value: string } {
  const equals = rest.indexOf("=");
  if (equals < 0) fail(index, arg, `expected ${op}:KEY=${op === "add" ? "N" : "VALUE"}`);
  return { key: rest.slice(0, equals), value: rest.slice(equals + 1) };
}

/** Parses one `op:...` argument; `index` (0-based) only labels errors. */
export function parseTxnOp(arg: string, index = 0, options: TxnArgOptions = {}): Mutation {
  const colon = arg.indexOf(":");
  if (colon < 0) fail(index, arg, "expected put:KEY=VALUE, append:KEY=VALUE, add:KEY=N or delete:KEY");
  const op = arg.slice(0, colon);
  const rest = arg.slice(colon + 1);
  const parsed = ((): Mutation => {
    try {
      switch (op) {
        case "put":
        case "append": {
          const { key, value } = splitKeyValue(index, arg, op, rest);
          const bytes = parseValueArg(value, options.hex === true);
          return op === "put" ? mutation.put(key, bytes) : mutation.append(key, bytes);
        }
        case "add": {
          const { key, value } = splitKeyValue(index, arg, op, rest);
          return mutation.add(key, parseDeltaArg(value));
        }
        case "delete":
          return mutation.delete(rest);
        default:
          return fail(index, arg, `unknown operation "${op}" (known: put, append, add, delete)`);
      }
    } catch (err: unknown) {
      const error = toClientError(err);
      if (error.message.startsWith("txn argument")) throw error;
      return fail(index, arg, error.message);
    }
  })();
  const problem = validateKey(parsed.key, DEFAULT_TRANSACTION_LIMITS);
  if (problem) fail(index, arg, problem.message);
  return parsed;
}

/** Parses every argument of `lpctl txn` into one transaction's mutations. */
export function parseTxnOps(args: readonly string[], options: TxnArgOptions = {}): Mutation[] {
  if (args.length === 0) throw toClientError(invalidArgument("txn needs at least one operation"));
  return args.map((arg, index) => parseTxnOp(arg, index, options));
}
