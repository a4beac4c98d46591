export { decideApply, planBatch } from "./apply-decision";
export type { ApplyDecision, PartPosition, BatchPlan } from "./apply-decision";
export { applyMutation, applyPartMutations, decodeInt64, encodeInt64 } from "./mutation-apply";
export type { PartApplyOutcome, PartWrite } from "./mutation-apply";
export { DEFAULT_DELIVERY_LIMITS, validateDeliveryLimits } from "./delivery-limits";
export type { DeliveryLimits } from "./delivery-limits";
export { DeliveryWindow } from "./delivery-window";
export type { SentBatch, SentPart } from "./delivery-window";
export { PartQueue, estimatePartBytes } from "./part-queue";
export type { PartContent, QueuedPart } from "./part-queue";
export { TargetQueue } from "./target-queue";
export type { AheadOfLog, TargetState, DeliveryCommand, GapReport, TargetCounters } from "./target-queue";
export { Dispatcher, splitByShard } from "./dispatcher";
export { AHEAD_CHECKS_TO_CONFIRM, DEFAULT_LEADER_MOVE_INTERVAL_MS, LogPlayer } from "./log-player";
export type { LogPlayerConfig, PlayerCommand, ReplicaChoiceConfig } from "./log-player";
export {
  judgeTrimReport,
  NO_RAFT_FLOOR,
  NO_RETENTION,
  RAFT_CATCH_UP_ENTRIES_DEFAULT,
  raftTrimFloor,
  restorableLsn,
  trimBound,
  TrimPointGatherer,
  trimThroughLsn,
} from "./trim-rule";
export type { RaftView, RetentionPolicy, SegmentSummary, TrimReport, TrimReportVerdict } from "./trim-rule";
