// The console: a live web page of a cluster, for the local launcher (pnpm start) and tests.
export { CONSOLE_DEFAULTS, startConsole } from "./console-server";
export type { ConsoleOptions, ConsoleTargets, RunningConsole } from "./console-server";
export { ClusterViewBuilder } from "./cluster-view";
export type { ClusterView, DelayHistogram, PollResult, ReplicaRow, ShardRow, TargetRow } from "./cluster-view";
export { histogramBuckets, parsePrometheusText } from "./prometheus-text";
export type { Sample } from "./prometheus-text";
