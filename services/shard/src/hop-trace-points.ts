// The shard's points of the benchmark's sampled hop trace (@logplayer/common hop-trace.ts).
// Off (the default) each is one boolean read per batch.
import { hopTrace, isTracedCommitTime } from "@logplayer/common";
import type { Part } from "@logplayer/proto";

/** Parts just read off the Deliver stream; the LogPlayer's dispatch time rides in each part. */
export function tracePartsReceived(parts: readonly Part[], receivedNs: bigint): void {
  if (!hopTrace.enabled) return;
  for (const part of parts) {
    if (!isTracedCommitTime(part.commitTimeNs)) continue;
    if (part.dispatchTimeNs !== 0n) hopTrace.record("dispatched", part.lsn, part.dispatchTimeNs);
    hopTrace.record("shard-received", part.lsn, receivedNs);
  }
}

/** Parts whose SQLite transaction just committed. */
export function tracePartsCommitted(parts: readonly Part[], committedNs: bigint): void {
  if (!hopTrace.enabled) return;
  for (const part of parts) if (isTracedCommitTime(part.commitTimeNs)) hopTrace.record("sqlite-commit", part.lsn, committedNs);
}
