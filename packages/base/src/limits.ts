import { InvalidInputError, LimitExceededError, type CodedError } from "./coded-error";

/** Size limits on what a transaction may hold. Each is a flag on the LogStore. */
export interface TransactionLimits {
  /** Encoded size of one log entry. */
  entryBytesMax: number;
  mutationsMax: number;
  keyBytesMax: number;
  valueBytesMax: number;
}

export const DEFAULT_TRANSACTION_LIMITS: TransactionLimits = {
  entryBytesMax: 1024 * 1024,
  mutationsMax: 1000,
  keyBytesMax: 512,
  valueBytesMax: 256 * 1024,
};

/** Room for a message's framing around the largest entry or value it carries. */
export const MESSAGE_FRAMING_BYTES = 64 * 1024;

/**
 * The cluster's gRPC message size cap, derived from its transaction limits:
 * the largest entry (an append, a Read batch of one entry, a Deliver batch of
 * one part) or the largest value with its key (a Get or Scan answer; APPEND
 * can grow a value up to value_bytes_max however small the entries), plus
 * framing. Every service's message limit is at least this, so whatever the
 * LogStore accepts can be delivered and read back.
 */
export function grpcMessageBytesMax(limits: TransactionLimits): number {
  return Math.max(limits.entryBytesMax, limits.valueBytesMax + limits.keyBytesMax) + MESSAGE_FRAMING_BYTES;
}

/**
 * The range each limit may take, as the LogStore's flags allow; a recorded
 * set outside them is refused. Names are the flags' and cluster.json's.
 */
export const TRANSACTION_LIMIT_RANGES: Readonly<Record<keyof TransactionLimits, { flag: string; min: number; max: number }>> = {
  entryBytesMax: { flag: "--entry-bytes-max", min: 1024, max: 64 * 1024 * 1024 },
  mutationsMax: { flag: "--mutations-max", min: 1, max: 1_000_000 },
  keyBytesMax: { flag: "--key-bytes-max", min: 1, max: 64 * 1024 },
  valueBytesMax: { flag: "--value-bytes-max", min: 0, max: 64 * 1024 * 1024 },
};
const LIMIT_NAMES = Object.keys(TRANSACTION_LIMIT_RANGES) as (keyof TransactionLimits)[];

/**
 * Reads a recorded set of limits (cluster.json, a shard's meta, Status):
 * every field an integer in its range. Null when anything is off. Pure.
 */
export function parseTransactionLimits(value: unknown): TransactionLimits | null {
  if (typeof value !== "object" || value === null) return null;
  const record = value as Record<string, unknown>;
  const limits: Partial<Record<keyof TransactionLimits, number>> = {};
  for (const name of LIMIT_NAMES) {
    const field = record[name];
    const { min, max } = TRANSACTION_LIMIT_RANGES[name];
    if (typeof field !== "number" || !Number.isInteger(field) || field < min || field > max) return null;
    limits[name] = field;
  }
  return limits as TransactionLimits;
}

export function describeTransactionLimits(limits: TransactionLimits): string {
  return LIMIT_NAMES.map((name) => `${TRANSACTION_LIMIT_RANGES[name].flag.slice(2)} ${limits[name]}`).join(", ");
}

/**
 * The limits given on a command line that differ from the recorded ones, as
 * one sentence naming each flag and both values; null when all agree. Pure.
 */
export function transactionLimitsMismatch(recorded: TransactionLimits, given: GivenTransactionLimits): string | null {
  const differences = LIMIT_NAMES.filter((name) => given[name] !== undefined && given[name] !== recorded[name]).map(
    (name) => `${TRANSACTION_LIMIT_RANGES[name].flag} ${given[name]} (recorded: ${recorded[name]})`,
  );
  return differences.length === 0 ? null : differences.join(", ");
}

/** Limits given on a command line: each one absent (undefined) or a value. */
export type GivenTransactionLimits = { readonly [K in keyof TransactionLimits]?: number | undefined };

/** The limits to record on a cluster's first start: those given, today's defaults for the rest. Pure. */
export function withDefaultLimits(given: GivenTransactionLimits): TransactionLimits {
  const limits = { ...DEFAULT_TRANSACTION_LIMITS };
  for (const name of LIMIT_NAMES) limits[name] = given[name] ?? limits[name];
  return limits;
}

export function sameTransactionLimits(a: TransactionLimits, b: TransactionLimits): boolean {
  return LIMIT_NAMES.every((name) => a[name] === b[name]);
}

/**
 * The mutation kinds by their wire numbers and names (proto's MutationKind,
 * which base cannot import: proto depends on base). common's limits.test.ts
 * checks that the two agree.
 */
export const MUTATION_KIND_NAMES: Readonly<Record<number, string>> = {
  1: "MUTATION_KIND_PUT",
  2: "MUTATION_KIND_DELETE",
  3: "MUTATION_KIND_APPEND",
  4: "MUTATION_KIND_ADD",
};
const KIND_PUT = 1;
const KIND_APPEND = 3;
const KIND_ADD = 4;

/** The fields of proto's Mutation that validation reads; a proto Mutation is one. */
export interface MutationFields {
  readonly kind: number;
  readonly key: string;
  readonly value: Uint8Array;
  readonly delta: bigint;
}

/** The fields of proto's Transaction that validation reads. */
export interface TransactionFields {
  readonly mutations: readonly MutationFields[];
}

// C0 controls and DEL: keys are printed by lpctl and logs, so keep them printable.
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/**
 * UTF-8 length of `text` from its UTF-16 code units, without encoding it: a
 * lone surrogate counts as U+FFFD's three bytes, as Node's Buffer.byteLength
 * and TextEncoder do.
 */
export function utf8ByteLength(text: string): number {
  let bytes = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** Returns the problem with a key, or null when it is valid. Pure. */
export function validateKey(key: string, limits: TransactionLimits): InvalidInputError | null {
  if (key.length === 0) return new InvalidInputError("invalid key: empty");
  if (CONTROL_CHAR.test(key)) return new InvalidInputError(`invalid key ${JSON.stringify(key)}: contains a control character`);
  if (key.includes("\ufffd")) return new InvalidInputError("invalid key: not valid UTF-8");
  const bytes = utf8ByteLength(key);
  if (bytes > limits.keyBytesMax) {
    return new InvalidInputError(`invalid key: ${bytes} bytes, more than key_bytes_max ${limits.keyBytesMax}`);
  }
  return null;
}

function validateMutation(m: MutationFields, index: number, limits: TransactionLimits): CodedError | null {
  const where = `mutation ${index}`;
  const kindName = MUTATION_KIND_NAMES[m.kind];
  if (kindName === undefined) return new InvalidInputError(`${where}: unknown mutation kind ${m.kind}`);
  const keyProblem = validateKey(m.key, limits);
  if (keyProblem) return new InvalidInputError(`${where}: ${keyProblem.message}`);
  if (m.value.length > limits.valueBytesMax) {
    return new LimitExceededError(`${where}: value of ${m.value.length} bytes exceeds value_bytes_max ${limits.valueBytesMax}`);
  }
  const takesValue = m.kind === KIND_PUT || m.kind === KIND_APPEND;
  if (!takesValue && m.value.length > 0) return new InvalidInputError(`${where}: ${kindName} takes no value`);
  if (m.kind !== KIND_ADD && m.delta !== 0n) return new InvalidInputError(`${where}: only ADD takes a delta`);
  return null;
}

/**
 * Checks a transaction against the limits. Returns the first problem
 * (InvalidInputError or LimitExceededError), or null. `encodedBytes` is the
 * size of the log entry it would become. Pure.
 */
export function validateTransaction(
  txn: TransactionFields | undefined,
  encodedBytes: number,
  limits: TransactionLimits,
): CodedError | null {
  if (!txn || txn.mutations.length === 0) return new InvalidInputError("empty transaction: at least one mutation is required");
  if (txn.mutations.length > limits.mutationsMax) {
    return new LimitExceededError(`transaction has ${txn.mutations.length} mutations, more than mutations_max ${limits.mutationsMax}`);
  }
  if (encodedBytes > limits.entryBytesMax) {
    return new LimitExceededError(`transaction is ${encodedBytes} bytes, more than entry_bytes_max ${limits.entryBytesMax}`);
  }
  for (let i = 0; i < txn.mutations.length; i++) {
    const problem = validateMutation(txn.mutations[i]!, i, limits);
    if (problem) return problem;
  }
  return null;
}
