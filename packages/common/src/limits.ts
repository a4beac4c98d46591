// The limits themselves live in @logplayer/base; their validation stays here because it
// answers with the service boundary's LpError and reads proto's MutationKind.
import type { TransactionLimits } from "@logplayer/base";
import { MutationKind, type Mutation, type Transaction } from "@logplayer/proto";
import { invalidArgument, resourceExhausted, type LpError } from "./errors";

const KNOWN_KINDS = new Set<number>([
  MutationKind.MUTATION_KIND_PUT,
  MutationKind.MUTATION_KIND_DELETE,
  MutationKind.MUTATION_KIND_APPEND,
  MutationKind.MUTATION_KIND_ADD,
]);

// C0 controls and DEL: keys are printed by lpctl and logs, so keep them printable.
const CONTROL_CHAR = /[\u0000-\u001f\u007f]/;

/** Returns the problem with a key, or null when it is valid. Pure. */
export function validateKey(key: string, limits: TransactionLimits): LpError | null {
  if (key.length === 0) return invalidArgument("invalid key: empty");
  if (CONTROL_CHAR.test(key)) return invalidArgument(`invalid key ${JSON.stringify(key)}: contains a control character`);
  if (key.includes("\ufffd")) return invalidArgument("invalid key: not valid UTF-8");
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > limits.keyBytesMax) {
    return invalidArgument(`invalid key: ${bytes} bytes, more than key_bytes_max ${limits.keyBytesMax}`);
  }
  return null;
}

function validateMutation(m: Mutation, index: number, limits: TransactionLimits): LpError | null {
  const where = `mutation ${index}`;
  if (!KNOWN_KINDS.has(m.kind)) return invalidArgument(`${where}: unknown mutation kind ${m.kind}`);
  const keyProblem = validateKey(m.key, limits);
  if (keyProblem) return invalidArgument(`${where}: ${keyProblem.message}`);
  if (m.value.length > limits.valueBytesMax) {
    return resourceExhausted(`${where}: value of ${m.value.length} bytes exceeds value_bytes_max ${limits.valueBytesMax}`);
  }
  const takesValue = m.kind === MutationKind.MUTATION_KIND_PUT || m.kind === MutationKind.MUTATION_KIND_APPEND;
  if (!takesValue && m.value.length > 0) return invalidArgument(`${where}: ${MutationKind[m.kind]} takes no value`);
  if (m.kind !== MutationKind.MUTATION_KIND_ADD && m.delta !== 0n) {
    return invalidArgument(`${where}: only ADD takes a delta`);
  }
  return null;
}

/**
 * Checks a transaction against the limits. Returns the first problem, or
 * null. `encodedBytes` is the size of the log entry it would become. Pure.
 */
export function validateTransaction(
  txn: Transaction | undefined,
  encodedBytes: number,
  limits: TransactionLimits,
): LpError | null {
  if (!txn || txn.mutations.length === 0) return invalidArgument("empty transaction: at least one mutation is required");
  if (txn.mutations.length > limits.mutationsMax) {
    return resourceExhausted(`transaction has ${txn.mutations.length} mutations, more than mutations_max ${limits.mutationsMax}`);
  }
  if (encodedBytes > limits.entryBytesMax) {
    return resourceExhausted(`transaction is ${encodedBytes} bytes, more than entry_bytes_max ${limits.entryBytesMax}`);
  }
  for (let i = 0; i < txn.mutations.length; i++) {
    const problem = validateMutation(txn.mutations[i]!, i, limits);
    if (problem) return problem;
  }
  return null;
}
