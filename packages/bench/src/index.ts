export { runBenchmark } from "./bench";
export type { BenchConfig, BenchHooks, BenchMeasures, BenchOutcome, BenchPhase, ShardStats } from "./bench";
export { OpenLoopScheduler, slotOffsetNs, slotsDueAt, slotTimeNs, validateSchedule, RATE_MAX } from "./schedule";
export type { OpenLoopSchedule } from "./schedule";
export { runOpenLoop } from "./open-loop";
export type { CommitFn, OpenLoopOptions, OpenLoopProgress, OpenLoopResult } from "./open-loop";
export {
  createDelayHistogram,
  decodeDelayHistogram,
  formatSummaryTable,
  mergeHistograms,
  recordDelayUs,
  summarizeUs,
} from "./delay-histograms";
export type { DelaySummary, Histogram, SummaryRow } from "./delay-histograms";
export { Workload, createRandom, benchKey, KEYS_PER_TXN_MAX } from "./workload";
export type { BenchTxn, WorkloadConfig } from "./workload";
export { defaultOutPath, formatReport, machineInfo } from "./report";
export type { BenchReport, MachineInfo } from "./report";
