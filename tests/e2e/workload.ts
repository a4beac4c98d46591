// An APPEND workload whose result can be checked from the data alone: every
// transaction appends its own unique token to a few keys, so a key's final value
// must list the tokens of the committed transactions that touched it, in LSN
// order, each exactly once.
import { type LogPlayerClient, mutation } from "@logplayer/client";
import { seededRandom } from "@logplayer/common";

export interface CommittedTxn {
  token: string;
  keys: string[];
  lsn: bigint;
}

export interface WorkloadResult {
  acked: CommittedTxn[];
  /** Commits that failed or timed out: each may be applied at most once. */
  unknown: { token: string; keys: string[] }[];
}

export interface WorkloadOptions {
  keys: string[];
  keysPerTxn: number;
  concurrency: number;
  /** Stop after this many transactions have been attempted. */
  txnsMax: number;
  tokenPrefix?: string;
  /** Called after each acknowledged commit (to trigger faults at a point). */
  onAck?: (ackedCount: number) => void;
  commitTimeoutMs?: number;
  seed?: number;
}

export async function runAppendWorkload(client: LogPlayerClient, options: WorkloadOptions): Promise<WorkloadResult> {
  const random = seededRandom(options.seed ?? 1);
  const result: WorkloadResult = { acked: [], unknown: [] };
  let next = 0;
  const prefix = options.tokenPrefix ?? "t";
  const worker = async (): Promise<void> => {
    while (next < options.txnsMax) {
      const index = next++;
      const token = `${prefix}${index};`;
      const chosen = new Set<string>();
      while (chosen.size < Math.min(options.keysPerTxn, options.keys.length)) {
        chosen.add(options.keys[Math.floor(random() * options.keys.length)]!);
      }
      const keys = [...chosen];
      try {
        const { lsn } = await client.commit(
          keys.map((key) => mutation.append(key, token)),
          { timeoutMs: options.commitTimeoutMs ?? 3000 },
        );
        result.acked.push({ token, keys, lsn });
        options.onAck?.(result.acked.length);
      } catch {
        result.unknown.push({ token, keys });
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  return result;
}

export interface Violation {
  key: string;
  problem: string;
}

/**
 * Reads every key with min LSN = the highest acknowledged LSN (read-your-writes
 * makes the read wait for delivery) and checks exactly-once, in-order delivery.
 */
export async function checkAppendWorkload(
  client: LogPlayerClient,
  keys: string[],
  result: WorkloadResult,
  readTimeoutMs = 30_000,
): Promise<{ violations: Violation[]; tokensChecked: number }> {
  const maxLsn = result.acked.reduce((max, t) => (t.lsn > max ? t.lsn : max), 0n);
  const lsnByToken = new Map(result.acked.map((t) => [t.token, t.lsn]));
  const unknownTokens = new Set(result.unknown.map((t) => t.token));
  const violations: Violation[] = [];
  let tokensChecked = 0;
  for (const key of keys) {
    const read = await client.get(key, { minLsn: maxLsn, timeoutMs: readTimeoutMs });
    const tokens = read.found
      ? read.value
          .toString("utf8")
          .split(";")
          .filter((s) => s !== "")
          .map((s) => `${s};`)
      : [];
    const seen = new Set<string>();
    let lastLsn = 0n;
    for (const token of tokens) {
      tokensChecked++;
      if (seen.has(token)) violations.push({ key, problem: `token ${token} applied twice` });
      seen.add(token);
      const lsn = lsnByToken.get(token);
      if (lsn === undefined) {
        if (!unknownTokens.has(token)) violations.push({ key, problem: `token ${token} was never committed` });
        continue;
      }
      if (lsn <= lastLsn) violations.push({ key, problem: `token ${token} (lsn ${lsn}) out of order after lsn ${lastLsn}` });
      lastLsn = lsn;
    }
    for (const txn of result.acked) {
      if (txn.keys.includes(key) && !seen.has(txn.token)) {
        violations.push({ key, problem: `acknowledged token ${txn.token} (lsn ${txn.lsn}) missing` });
      }
    }
  }
  return { violations, tokensChecked };
}

export function keyNames(count: number, prefix = "k"): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}
