export { startShard } from "./start-shard";
export type { ShardOptions, RunningShard } from "./start-shard";
export type { ShardLimits } from "./context";
export { ShardStore, DATABASE_FILE_NAME, prefixUpperBound } from "./store";
export type { KeyValueItem, ScanResult } from "./store";
export { checkHello, reconcileConfiguredIdentity } from "./identity";
export type { ShardIdentity } from "./identity";
export { validateBatch } from "./batch-validation";
