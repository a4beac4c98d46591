import { AssertionError, assert, invalidArgument, LpError, monotonicNs, resourceExhausted } from "@logplayer/common";
import { PROTOCOL_VERSION, type DeliverRequest, type DeliverResponse, type PartBatch } from "@logplayer/proto";
import { checkCommitFence, validateBatch } from "./batch-validation";
import type { DeliverCall, ShardContext } from "./context";
import { tracePartsCommitted, tracePartsReceived } from "./hop-trace-points";
import { checkHello } from "./identity";
import { checkLogReachesShard } from "./trimmed-log";

/**
 * Serves one Deliver stream. The first request must be a hello (checked
 * against the shard's identity); every later one is a batch, validated in
 * full and then applied in one SQLite transaction, answered by an Ack or a
 * Gap. Batches from all open streams run one at a time: each data event is
 * handled synchronously, SQLite included, before the next is taken.
 */
export function serveDeliver(ctx: ShardContext, call: DeliverCall): void {
  if (ctx.streams.size >= ctx.limits.deliveryStreamsMax) {
    call.emit(
      "error",
      resourceExhausted(`too many delivery streams (delivery_streams_max ${ctx.limits.deliveryStreamsMax})`).toServiceError(),
    );
    return;
  }
  const caller = ctx.callerOf(call);
  const releaseSlot = ctx.deliverySlots.tryAcquire(caller);
  if (releaseSlot === null) {
    const max = ctx.deliverySlots.perCallerMax;
    call.emit(
      "error",
      resourceExhausted(`${caller} already has ${max} delivery streams open (delivery_streams_per_caller_max ${max})`).toServiceError(),
    );
    return;
  }
  let helloAccepted = false;
  let finished = false;
  let playerId = "";
  /** The commit LSN announced last on this stream (hello, then each batch); batches must not go below it. */
  let commitLsnFloor = 0n;
  const finish = (error?: LpError, replying = true): void => {
    if (finished) return;
    finished = true;
    releaseSlot();
    ctx.streams.delete(call);
    ctx.metrics.deliveryStreams.set(ctx.streams.size);
    if (!replying) return;
    if (error === undefined) call.end();
    else call.emit("error", error.toServiceError());
  };
  ctx.streams.set(call, (error) => finish(error));
  ctx.metrics.deliveryStreams.set(ctx.streams.size);

  call.on("data", (request: DeliverRequest) => {
    // Receive time for the delay measures: as the batch arrives.
    const receivedNs = monotonicNs();
    if (finished) return;
    try {
      if (helloAccepted) {
        const batch = batchOf(request);
        call.write(applyBatch(ctx, batch, commitLsnFloor, receivedNs));
        commitLsnFloor = batch.commitLsn;
      } else {
        const accepted = acceptHello(ctx, request);
        helloAccepted = true;
        playerId = accepted.playerId;
        commitLsnFloor = accepted.commitLsn;
        const appliedLsn = ctx.store.appliedLsn;
        const fields = { playerId, appliedLsn: appliedLsn.toString(), commitLsn: accepted.commitLsn.toString() };
        ctx.logger.info(fields, "delivery stream opened");
        call.write(accepted.reply);
      }
    } catch (err: unknown) {
      if (err instanceof AssertionError) throw err;
      const error = LpError.from(err);
      ctx.logger.warn({ playerId, code: error.code, err: error.message }, "delivery stream refused");
      finish(error);
    }
  });
  call.on("end", () => finish());
  call.on("cancelled", () => finish(undefined, false));
}

function acceptHello(ctx: ShardContext, request: DeliverRequest): { reply: DeliverResponse; playerId: string; commitLsn: bigint } {
  if (request.body?.$case !== "hello") {
    throw invalidArgument("the first Deliver request must be a hello");
  }
  const hello = request.body.value;
  const result = checkHello(ctx.store.identity, hello, PROTOCOL_VERSION);
  if (!result.ok) throw result.error;
  checkLogReaches(ctx, hello.logFirstLsn);
  const reply: DeliverResponse = {
    body: { $case: "hello", value: { shardId: ctx.store.identity.shardId, appliedLsn: ctx.store.appliedLsn } },
  };
  return { reply, playerId: hello.playerId, commitLsn: hello.commitLsn };
}

/** Refuses the stream when the log was trimmed past this shard; Status and the log say why until a hello passes. */
function checkLogReaches(ctx: ShardContext, logFirstLsn: bigint): void {
  const newest = ctx.backups.newest;
  const newestBackup = newest === null ? null : { file: newest.databaseFile, appliedLsn: newest.manifest.appliedLsn };
  const refusal = checkLogReachesShard(ctx.store.identity.shardId, ctx.store.appliedLsn, logFirstLsn, ctx.backups.backupDir, newestBackup);
  if (refusal === null) {
    ctx.logUnreachable = null;
    return;
  }
  if (ctx.logUnreachable !== refusal.message) ctx.logger.error({ reason: refusal.message }, "the log no longer reaches this shard");
  ctx.logUnreachable = refusal.message;
  throw refusal;
}

function batchOf(request: DeliverRequest): PartBatch {
  if (request.body?.$case === "hello") throw invalidArgument("a second hello on one Deliver stream");
  if (request.body?.$case !== "batch") throw invalidArgument("a Deliver request with no body");
  return request.body.value;
}

function applyBatch(ctx: ShardContext, batch: PartBatch, commitLsnFloor: bigint, receivedNs: bigint): DeliverResponse {
  const identity = ctx.store.identity;
  assert(identity.shardMap !== null, "a hello was accepted but the shard map is unknown");
  const problem =
    validateBatch(batch.parts, identity.shardId, identity.shardMap, {
      batchPartsMax: ctx.limits.batchPartsMax,
      transaction: ctx.limits.transaction,
    }) ?? checkCommitFence(batch.parts, batch.commitLsn, commitLsnFloor);
  if (problem) {
    ctx.metrics.batchesRefused.inc();
    throw problem;
  }
  for (const part of batch.parts) ctx.stats.recordReceived(part, receivedNs);
  tracePartsReceived(batch.parts, receivedNs);
  const endTimer = ctx.metrics.batchApplySeconds.startTimer();
  const plan = ctx.store.applyBatch(batch.parts);
  const committedNs = monotonicNs();
  endTimer();
  for (const part of plan.apply) ctx.stats.recordCommitted(part, committedNs);
  tracePartsCommitted(plan.apply, committedNs);
  recordPlan(ctx, plan.apply.length, plan.duplicates, plan.gap !== undefined);
  if (plan.rejectedLsns.length > 0) {
    ctx.metrics.partsRejected.inc(plan.rejectedLsns.length);
    ctx.logger.warn({ lsns: plan.rejectedLsns.map(String) }, "parts rejected at apply time (their outcome is readable with GetOutcome)");
  }
  if (plan.apply.length > 0) ctx.waiters.advance(plan.appliedLsnAfter);
  if (plan.gap !== undefined) {
    ctx.logger.debug(
      { appliedLsn: plan.appliedLsnAfter.toString(), lsn: plan.gap.lsn.toString(), prevLsn: plan.gap.prevLsn.toString() },
      "gap",
    );
    return { body: { $case: "gap", value: { appliedLsn: plan.appliedLsnAfter, lsn: plan.gap.lsn, prevLsn: plan.gap.prevLsn } } };
  }
  return { body: { $case: "ack", value: { appliedLsn: plan.appliedLsnAfter } } };
}

function recordPlan(ctx: ShardContext, applied: number, duplicates: number, gap: boolean): void {
  ctx.counts.partsApplied += BigInt(applied);
  ctx.counts.partsDuplicate += BigInt(duplicates);
  ctx.metrics.partsApplied.inc(applied);
  ctx.metrics.partsDuplicate.inc(duplicates);
  if (gap) {
    ctx.counts.gaps += 1n;
    ctx.metrics.gaps.inc();
  }
  ctx.metrics.appliedLsn.set(Number(ctx.store.appliedLsn));
}
