export { decideApply, planBatch } from "./apply-decision";
export type { ApplyDecision, PartPosition, BatchPlan } from "./apply-decision";
export { applyMutation, decodeInt64, encodeInt64 } from "./mutation-apply";
