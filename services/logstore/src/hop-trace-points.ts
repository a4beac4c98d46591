// The LogStore's points of the benchmark's sampled hop trace (@logplayer/common hop-trace.ts).
// Off (the default) each is one boolean read.
import { hopTrace, isTracedCommitTime, PendingLsnTrace } from "@logplayer/common";

const waitingDurable = new PendingLsnTrace(hopTrace, "leader-durable");
const waitingCommit = new PendingLsnTrace(hopTrace, "committed");

export const logStoreTrace = {
  /** An append arrived (any replica; the leader is the one that later proposes it). */
  received(commitTimeNs: bigint): void {
    if (hopTrace.enabled && isTracedCommitTime(commitTimeNs)) hopTrace.record("leader-received", commitTimeNs);
  },
  /** The leader put a traced entry in its log: wait for its local durability and its commit. */
  proposed(lsn: bigint, commitTimeNs: bigint): void {
    if (!hopTrace.enabled || !isTracedCommitTime(commitTimeNs)) return;
    waitingDurable.add(lsn);
    waitingCommit.add(lsn);
  },
  durable(durableLsn: bigint): void {
    if (hopTrace.enabled) waitingDurable.reached(durableLsn);
  },
  applied(appliedLsn: bigint): void {
    if (hopTrace.enabled) waitingCommit.reached(appliedLsn);
  },
};
