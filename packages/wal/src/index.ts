// The write-ahead log as a library: the LogStore's log, and the simulator's.
export {
  Wal,
  DEFAULT_WAL_LIMITS,
  SEGMENT_BYTES_MIN,
  SEGMENT_BYTES_LIMIT,
  DISK_FULL_RETRY_MS_FIRST,
  DISK_FULL_RETRY_MS_LAST,
} from "./wal";
export type { WalLimits, WalStats, WalOpenReport, WalObserver, WalOpenOptions, WalTimers, WalDamage, WalCompaction } from "./wal";
export type { SegmentFiles, SegmentFile } from "./segment-files";
export { NodeSegmentFiles, syncDirectory } from "./node-segment-files";
export { SimDisk } from "./sim-segment-files";
export type { SimDiskOptions, SimDiskScheduler } from "./sim-segment-files";
export { WalCorruptionError, recoverWal, scanSegment, scanSegmentUntilDamage, segmentFileName, parseSegmentFileName } from "./wal-recovery";
export type { DamagedSegmentScan, SegmentInput, SegmentScan, TornTail, WalRecovery } from "./wal-recovery";
export { encodeRecord, encodeRecordHeader, decodeRecord, encodeEntryPayload, RECORD_HEADER_BYTES } from "./wal-record";
export type { RecordResult, RecordProblem } from "./wal-record";
