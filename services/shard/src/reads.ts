import type { Deadline, ServerUnaryCall } from "@grpc/grpc-js";
import { invalidArgument, LpError, shardForKey, Status, validateKey } from "@logplayer/common";
import {
  PartOutcome,
  type GetOutcomeRequest,
  type GetOutcomeResponse,
  type GetRequest,
  type GetResponse,
  type ScanRequest,
  type ScanResponse,
} from "@logplayer/proto";
import type { ShardContext } from "./context";

/**
 * Get: one key, once applied_lsn >= min_lsn (read-your-writes). A key that
 * routes to another shard is refused naming the right shard.
 */
export async function readKey(ctx: ShardContext, call: ServerUnaryCall<GetRequest, GetResponse>): Promise<GetResponse> {
  const { key, minLsn } = call.request;
  const problem = validateKey(key, ctx.limits.transaction);
  if (problem) throw problem;
  checkKeyRoutesHere(ctx, key);
  await waitForApplied(ctx, call, minLsn);
  const value = ctx.store.get(key);
  return { found: value !== undefined, value: value ?? Buffer.alloc(0), appliedLsn: ctx.store.appliedLsn };
}

/** Scan: keys with a prefix in UTF-8 byte order, paged, once applied_lsn >= min_lsn. */
export async function scanKeys(ctx: ShardContext, call: ServerUnaryCall<ScanRequest, ScanResponse>): Promise<ScanResponse> {
  const { prefix, startAfter, limit, minLsn } = call.request;
  for (const [name, value] of [
    ["prefix", prefix],
    ["start_after", startAfter],
  ] as const) {
    const problem = value === "" ? null : validateKey(value, ctx.limits.transaction);
    if (problem) throw invalidArgument(`${name}: ${problem.message}`);
  }
  const itemsMax = limit === 0 ? ctx.limits.scanItemsMax : Math.min(limit, ctx.limits.scanItemsMax);
  await waitForApplied(ctx, call, minLsn);
  const result = ctx.store.scan(prefix, startAfter, itemsMax, ctx.limits.scanBytesMax);
  return { items: result.items, appliedLsn: ctx.store.appliedLsn, more: result.more };
}

/**
 * GetOutcome: what became of one LSN on this shard, once applied_lsn >= lsn
 * (waiting like a read with min_lsn = lsn). LSN 0 is not an entry.
 */
export async function readOutcome(
  ctx: ShardContext,
  call: ServerUnaryCall<GetOutcomeRequest, GetOutcomeResponse>,
): Promise<GetOutcomeResponse> {
  const { lsn } = call.request;
  if (lsn === 0n) throw invalidArgument("lsn must be at least 1");
  await waitForApplied(ctx, call, lsn);
  const outcome = ctx.store.outcome(lsn);
  const appliedLsn = ctx.store.appliedLsn;
  switch (outcome.kind) {
    case "applied":
      return { outcome: PartOutcome.PART_OUTCOME_APPLIED, reason: "", appliedLsn };
    case "rejected":
      return { outcome: PartOutcome.PART_OUTCOME_REJECTED, reason: outcome.reason, appliedLsn };
    case "unknown":
      return { outcome: PartOutcome.PART_OUTCOME_UNKNOWN, reason: "", appliedLsn };
    case "pending":
      // waitForApplied returned, so the applied LSN reached lsn; it never moves back.
      throw new LpError(Status.INTERNAL, `outcome of LSN ${lsn} pending at applied LSN ${appliedLsn}`);
  }
}

function checkKeyRoutesHere(ctx: ShardContext, key: string): void {
  const { shardId, shardMap } = ctx.store.identity;
  // Before the map is known nothing has been applied, so there is nothing to misroute.
  if (shardMap === null) return;
  const owner = shardForKey(key, shardMap);
  if (owner !== shardId) {
    throw invalidArgument(`key ${JSON.stringify(key)} belongs to shard ${owner}, not shard ${shardId}`);
  }
}

/**
 * Resolves once the applied LSN reaches `minLsn`. Fails with
 * DEADLINE_EXCEEDED (naming both LSNs) when the wait runs out, with
 * RESOURCE_EXHAUSTED when too many reads already wait, and with CANCELLED
 * when the caller goes away. No polling: the delivery path wakes waiters.
 */
function waitForApplied(ctx: ShardContext, call: ServerUnaryCall<unknown, unknown>, minLsn: bigint): Promise<void> {
  if (ctx.store.appliedLsn >= minLsn) return Promise.resolve();
  const waitMs = readWaitMs(call.getDeadline(), ctx.limits.readWaitMsMax, Date.now());
  const caller = ctx.callerOf(call);
  const releaseSlot = ctx.readWaiterSlots.tryAcquire(caller);
  if (releaseSlot === null) {
    const max = ctx.readWaiterSlots.perCallerMax;
    return Promise.reject(
      new LpError(Status.RESOURCE_EXHAUSTED, `${caller} already has ${max} reads waiting for min_lsn (read_waiters_per_caller_max ${max})`),
    );
  }
  return new Promise<void>((resolve, reject) => {
    let cancelWait = (): void => {};
    let settled = false;
    const settle = (error?: LpError): void => {
      if (settled) return;
      settled = true;
      releaseSlot();
      clearTimeout(timer);
      cancelWait();
      call.removeListener("cancelled", onCancelled);
      ctx.pendingReads.delete(settle);
      ctx.metrics.waitingReads.set(ctx.waiters.size);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onCancelled = (): void => settle(new LpError(Status.CANCELLED, "read cancelled by the caller"));
    const timer = setTimeout(() => {
      settle(
        new LpError(Status.DEADLINE_EXCEEDED, `applied_lsn ${ctx.store.appliedLsn} did not reach min_lsn ${minLsn} within ${waitMs} ms`),
      );
    }, waitMs);
    try {
      cancelWait = ctx.waiters.wait(minLsn, () => settle());
    } catch (err: unknown) {
      releaseSlot();
      clearTimeout(timer);
      reject(LpError.from(err));
      return;
    }
    // The waiter may have fired at once if the LSN was applied meanwhile.
    if (settled) return;
    call.on("cancelled", onCancelled);
    ctx.pendingReads.add(settle);
    ctx.metrics.waitingReads.set(ctx.waiters.size);
  });
}

/**
 * How long a read may wait: until the call deadline (less a small margin, so
 * our DEADLINE_EXCEEDED with its LSNs reaches the caller before its own
 * timer fires) or `readWaitMsMax`, whichever comes first. Pure.
 */
export function readWaitMs(deadline: Deadline, readWaitMsMax: number, nowMs: number): number {
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(deadlineMs)) return readWaitMsMax;
  const remainingMs = deadlineMs - nowMs;
  if (remainingMs <= 0) return 0;
  const marginMs = Math.min(50, remainingMs / 10);
  return Math.max(0, Math.min(readWaitMsMax, Math.floor(remainingMs - marginMs)));
}
