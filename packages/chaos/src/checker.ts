import { assert } from "@logplayer/common";

/**
 * Checks an APPEND workload's outcome from the data: every transaction
 * appended its own token ("t<n>;") to each key it touched, so a key's value
 * is the list of transactions applied to it, in the order they were applied.
 * Pure: the run collects the inputs, this judges them.
 */

/** One transaction the workload sent. `lsn` is undefined when the commit's outcome is unknown. */
export interface TxnRecord {
  token: string;
  keys: readonly string[];
  lsn: bigint | undefined;
}

/** A read with minLsn made during the run, and what it returned. */
export interface RywRead {
  key: string;
  minLsn: bigint;
  appliedLsn: bigint;
  value: string;
}

/** One log entry as the LogStore holds it: the APPEND mutations it carries. */
export interface LoggedTxn {
  lsn: bigint;
  appends: readonly { key: string; value: string }[];
}

export type ViolationKind =
  | "duplicate-acked"
  | "duplicate-unacked"
  | "missing-acked"
  | "out-of-order"
  | "never-sent"
  | "wrong-key"
  | "malformed"
  | "partial"
  | "ack-not-in-log"
  | "logged-twice"
  | "data-differs-from-log"
  | "ryw-stale"
  | "ryw-not-prefix"
  | "ryw-inconsistent"
  | "ryw-error"
  | "process-crashed"
  | "restart-failed"
  | "no-catch-up"
  | "injector-error";

export interface Violation {
  kind: ViolationKind;
  key?: string;
  detail: string;
}

/** What the log says each key should hold, and where each token was logged. */
export interface LogView {
  expected: ReadonlyMap<string, readonly string[]>;
  lsnByToken: ReadonlyMap<string, bigint>;
}

export interface CheckCounts {
  keys: number;
  tokens: number;
  rywReads: number;
  logEntries: number;
}

const TOKEN = /^t\d+$/;
export const TOKEN_SEPARATOR = ";";

export function tokenFor(index: number): string {
  assert(Number.isInteger(index) && index >= 0, "token index is a non-negative integer");
  return `t${index}`;
}

/** The tokens of a value in order; pieces that are not tokens are returned as `malformed`. */
export function parseTokens(value: string): { tokens: string[]; malformed: string[] } {
  const tokens: string[] = [];
  const malformed: string[] = [];
  if (value === "") return { tokens, malformed };
  const pieces = value.split(TOKEN_SEPARATOR);
  // A well-formed value ends with the separator, leaving one empty last piece.
  if (pieces[pieces.length - 1] === "") pieces.pop();
  else malformed.push(`unterminated ${JSON.stringify(pieces[pieces.length - 1])}`);
  for (const piece of pieces) (TOKEN.test(piece) ? tokens : malformed).push(piece);
  return { tokens, malformed };
}

/**
 * The final state against what was sent: each acknowledged transaction's
 * token exactly once in every key it touched, in LSN order; an unacknowledged
 * one at most once per key, and in all of its keys or none (the final read
 * must be at the log's commit LSN for that); nothing that was never sent.
 * `finalValues` must hold every key of the workload ("" when absent).
 */
export function checkFinalData(
  txns: readonly TxnRecord[],
  finalValues: ReadonlyMap<string, string>,
): { violations: Violation[]; counts: CheckCounts } {
  const byToken = indexTxns(txns);
  const violations: Violation[] = [];
  const tokenSets = new Map<string, Set<string>>();
  let tokensChecked = 0;
  for (const [key, value] of finalValues) {
    const { tokens, malformed } = parseTokens(value);
    for (const piece of malformed) violations.push({ kind: "malformed", key, detail: `not a token: ${JSON.stringify(piece)}` });
    tokensChecked += tokens.length;
    violations.push(...checkKeyTokens(key, tokens, byToken));
    tokenSets.set(key, new Set(tokens));
  }
  for (const txn of txns) {
    const seenIn = txn.keys.filter((key) => tokenSets.get(key)?.has(txn.token) === true);
    for (const key of txn.keys) {
      if (!finalValues.has(key)) continue;
      if (txn.lsn !== undefined && !seenIn.includes(key)) {
        violations.push({ kind: "missing-acked", key, detail: `acknowledged ${txn.token} (lsn ${txn.lsn}) is missing` });
      }
    }
    if (txn.lsn === undefined && seenIn.length > 0 && seenIn.length < txn.keys.length) {
      const absent = txn.keys.filter((k) => !seenIn.includes(k));
      violations.push({
        kind: "partial",
        detail: `unacknowledged ${txn.token} applied to ${seenIn.join(",")} but not to ${absent.join(",")}`,
      });
    }
  }
  return { violations, counts: { keys: finalValues.size, tokens: tokensChecked, rywReads: 0, logEntries: 0 } };
}

function indexTxns(txns: readonly TxnRecord[]): Map<string, TxnRecord> {
  const byToken = new Map<string, TxnRecord>();
  for (const txn of txns) {
    assert(!byToken.has(txn.token), `token ${txn.token} was sent once`);
    byToken.set(txn.token, txn);
  }
  return byToken;
}

/** One key's token list: no duplicates, only tokens sent to this key, acknowledged ones in LSN order. */
function checkKeyTokens(key: string, tokens: readonly string[], byToken: ReadonlyMap<string, TxnRecord>): Violation[] {
  const violations: Violation[] = [];
  const seen = new Set<string>();
  let previous: { token: string; lsn: bigint } | undefined;
  for (const token of tokens) {
    const txn = byToken.get(token);
    if (seen.has(token)) {
      const kind = txn?.lsn === undefined ? "duplicate-unacked" : "duplicate-acked";
      violations.push({ kind, key, detail: `${token} applied more than once` });
      continue;
    }
    seen.add(token);
    if (txn === undefined) {
      violations.push({ kind: "never-sent", key, detail: `${token} was never sent` });
      continue;
    }
    if (!txn.keys.includes(key)) {
      violations.push({ kind: "wrong-key", key, detail: `${token} was sent to ${txn.keys.join(",")} only` });
      continue;
    }
    if (txn.lsn === undefined) continue;
    if (previous !== undefined && txn.lsn <= previous.lsn) {
      violations.push({
        kind: "out-of-order",
        key,
        detail: `${token} (lsn ${txn.lsn}) applied after ${previous.token} (lsn ${previous.lsn})`,
      });
      continue;
    }
    previous = { token, lsn: txn.lsn };
  }
  return violations;
}

/**
 * The final state against the log itself, the strongest check: each key's
 * value is exactly its tokens in log order (invariant 1), every acknowledged
 * transaction sits in the log at the LSN it was acknowledged with (durability),
 * and no token was logged twice (the client never resends a commit).
 */
export function checkAgainstLog(
  txns: readonly TxnRecord[],
  finalValues: ReadonlyMap<string, string>,
  log: readonly LoggedTxn[],
): { violations: Violation[]; view: LogView } {
  const violations: Violation[] = [];
  const byToken = indexTxns(txns);
  const loggedAt = new Map<string, bigint>();
  const expected = expectedFromLog(log, byToken, loggedAt, violations);
  for (const txn of txns) {
    if (txn.lsn === undefined) continue;
    const at = loggedAt.get(txn.token);
    if (at !== txn.lsn) {
      violations.push({
        kind: "ack-not-in-log",
        detail: `${txn.token} acknowledged at lsn ${txn.lsn}, ${at === undefined ? "absent from the log" : `logged at ${at}`}`,
      });
    }
  }
  for (const [key, value] of finalValues) {
    const actual = parseTokens(value).tokens;
    const wanted = expected.get(key) ?? [];
    const firstDifference = firstDifferenceAt(actual, wanted);
    if (firstDifference !== undefined) {
      violations.push({
        kind: "data-differs-from-log",
        key,
        detail:
          `${actual.length} tokens, log has ${wanted.length}; first difference at #${firstDifference}: ` +
          `${actual[firstDifference] ?? "(end)"} where the log has ${wanted[firstDifference] ?? "(end)"}`,
      });
    }
  }
  return { violations, view: { expected, lsnByToken: loggedAt } };
}

function expectedFromLog(
  log: readonly LoggedTxn[],
  byToken: ReadonlyMap<string, TxnRecord>,
  loggedAt: Map<string, bigint>,
  violations: Violation[],
): Map<string, string[]> {
  const expected = new Map<string, string[]>();
  let previousLsn = 0n;
  for (const entry of log) {
    assert(entry.lsn > previousLsn, `log entries ascend (lsn ${entry.lsn} after ${previousLsn})`);
    previousLsn = entry.lsn;
    for (const append of entry.appends) {
      for (const token of parseTokens(append.value).tokens) {
        const earlier = loggedAt.get(token);
        if (earlier !== undefined && earlier !== entry.lsn) {
          violations.push({ kind: "logged-twice", detail: `${token} logged at lsn ${earlier} and ${entry.lsn}` });
        }
        loggedAt.set(token, earlier ?? entry.lsn);
        if (!byToken.has(token))
          violations.push({ kind: "never-sent", key: append.key, detail: `${token} in the log at lsn ${entry.lsn} was never sent` });
        const list = expected.get(append.key) ?? [];
        list.push(token);
        expected.set(append.key, list);
      }
    }
  }
  return expected;
}

function firstDifferenceAt(actual: readonly string[], wanted: readonly string[]): number | undefined {
  const length = Math.max(actual.length, wanted.length);
  for (let i = 0; i < length; i++) if (actual[i] !== wanted[i]) return i;
  return undefined;
}

/**
 * Reads made during the run with minLsn = an acknowledged LSN: each must hold
 * every acknowledged transaction of its key up to minLsn (read-your-writes
 * never returns older state), and must be a prefix of the key's final value
 * (a read never sees state that is later undone or reordered). With the log,
 * it must be exactly the key's state at the shard's applied LSN.
 */
export function checkRywReads(
  reads: readonly RywRead[],
  txns: readonly TxnRecord[],
  finalValues: ReadonlyMap<string, string>,
  logView?: LogView,
): Violation[] {
  const violations: Violation[] = [];
  const ackedByKey = new Map<string, TxnRecord[]>();
  for (const txn of txns) {
    if (txn.lsn === undefined) continue;
    for (const key of txn.keys) {
      const list = ackedByKey.get(key) ?? [];
      list.push(txn);
      ackedByKey.set(key, list);
    }
  }
  for (const read of reads) {
    const tokens = parseTokens(read.value).tokens;
    const present = new Set(tokens);
    const where = `read of ${read.key} with minLsn ${read.minLsn} (applied ${read.appliedLsn})`;
    if (read.appliedLsn < read.minLsn) violations.push({ kind: "ryw-stale", key: read.key, detail: `${where}: applied LSN below minLsn` });
    const stale = (ackedByKey.get(read.key) ?? []).filter((t) => t.lsn! <= read.minLsn && !present.has(t.token));
    if (stale.length > 0) {
      violations.push({
        kind: "ryw-stale",
        key: read.key,
        detail: `${where} lacks ${stale.map((t) => `${t.token} (lsn ${t.lsn})`).join(", ")}`,
      });
    }
    const final = parseTokens(finalValues.get(read.key) ?? "").tokens;
    if (firstDifferenceAt(tokens, final.slice(0, tokens.length)) !== undefined) {
      violations.push({
        kind: "ryw-not-prefix",
        key: read.key,
        detail: `${where} returned ${tokens.length} tokens that are not a prefix of the final value`,
      });
    }
    if (logView !== undefined) {
      const atApplied = (logView.expected.get(read.key) ?? []).filter((t) => (logView.lsnByToken.get(t) ?? 0n) <= read.appliedLsn);
      if (firstDifferenceAt(tokens, atApplied) !== undefined) {
        violations.push({
          kind: "ryw-inconsistent",
          key: read.key,
          detail: `${where} returned ${tokens.length} tokens; the log up to the applied LSN has ${atApplied.length}`,
        });
      }
    }
  }
  return violations;
}
