// The LogPlayer's point of the benchmark's sampled hop trace (@logplayer/common hop-trace.ts).
// Off (the default) it is one boolean read per Read response.
import { hopTrace, isTracedCommitTime, monotonicNs } from "@logplayer/common";
import type { LogEntry } from "@logplayer/proto";

/** Entries just read from the main Read stream. */
export function traceEntriesReceived(entries: readonly LogEntry[]): void {
  if (!hopTrace.enabled) return;
  const atNs = monotonicNs();
  for (const entry of entries) if (isTracedCommitTime(entry.commitTimeNs)) hopTrace.record("player-received", entry.lsn, atNs);
}
