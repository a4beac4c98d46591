import { assert } from "@logplayer/base";

/**
 * The shard's side of the delivery protocol, as pure functions: given the
 * shard's applied LSN and a delivered part's (lsn, prevLsn), decide whether
 * to skip it, apply it, or refuse it as a gap. The SQLite adapter runs this
 * inside the same transaction that applies the mutations and stores the new
 * applied LSN, so the decision and its effect are atomic.
 */

/** What a shard does with one delivered part. */
export type ApplyDecision = "duplicate" | "apply" | "gap";

/** The two LSNs of a part that the decision looks at. */
export interface PartPosition {
  readonly lsn: bigint;
  /** LSN of the previous part (real or dummy) the sender holds for this shard; 0 for none. */
  readonly prevLsn: bigint;
}

/**
 * Decision table (appliedLsn = a):
 *
 *   lsn <= a              duplicate: already applied, do nothing.
 *   prevLsn <= a < lsn    apply: mutations (none for a dummy), then a = lsn.
 *   prevLsn > a           gap: a part the shard has not seen may lie in
 *                         (a, prevLsn]; apply nothing, the sender rewinds.
 *
 * The apply row accepts prevLsn strictly below a, not only prevLsn == a.
 * prevLsn certifies that the log holds no part for this shard in
 * (prevLsn, lsn); when a lies in [prevLsn, lsn), everything up to a was
 * applied and nothing between a and lsn exists, so nothing is skipped. This
 * lets two LogPlayers whose dummy parts sit at different LSNs interleave on
 * one shard without forcing each other into endless rewinds.
 */
export function decideApply(appliedLsn: bigint, part: PartPosition): ApplyDecision {
  assert(appliedLsn >= 0n, `applied LSN ${appliedLsn} is negative`);
  assert(part.prevLsn >= 0n, `part ${part.lsn}: prev LSN ${part.prevLsn} is negative`);
  assert(part.lsn > part.prevLsn, `part ${part.lsn}: LSN is not above its prev LSN ${part.prevLsn}`);
  if (part.lsn <= appliedLsn) return "duplicate";
  if (part.prevLsn <= appliedLsn) return "apply";
  return "gap";
}

/** The outcome of running decideApply over a batch, in order. */
export interface BatchPlan<P extends PartPosition> {
  /** Parts to apply, in the order given; each follows on from the previous. */
  readonly apply: P[];
  /** The applied LSN once every part in `apply` is applied. */
  readonly appliedLsnAfter: bigint;
  /** Parts skipped as already applied (before the gap, if any). */
  readonly duplicates: number;
  /** The first part that did not follow on; nothing from it on is applied. */
  readonly gap?: { readonly lsn: bigint; readonly prevLsn: bigint };
}

/**
 * Plans a batch: walks the parts in order, advancing the applied LSN past
 * each applied part, and stops at the first gap. Parts must be in strictly
 * ascending LSN order (the server validates this before planning).
 */
export function planBatch<P extends PartPosition>(appliedLsn: bigint, parts: readonly P[]): BatchPlan<P> {
  const apply: P[] = [];
  let appliedLsnAfter = appliedLsn;
  let duplicates = 0;
  let previousLsn = 0n;
  for (const part of parts) {
    assert(part.lsn > previousLsn, `batch not in ascending LSN order: ${part.lsn} after ${previousLsn}`);
    previousLsn = part.lsn;
    const decision = decideApply(appliedLsnAfter, part);
    if (decision === "duplicate") {
      duplicates += 1;
    } else if (decision === "apply") {
      apply.push(part);
      appliedLsnAfter = part.lsn;
    } else {
      return { apply, appliedLsnAfter, duplicates, gap: { lsn: part.lsn, prevLsn: part.prevLsn } };
    }
  }
  assert(apply.length + duplicates === parts.length, "batch plan lost a part");
  return { apply, appliedLsnAfter, duplicates };
}
