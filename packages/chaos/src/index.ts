// The chaos test's public surface. Explicit names only (no export *).
export {
  runChaos,
  CATCH_UP_TIMEOUT_MS_DEFAULT,
  LOGSTORE_REPLICAS_DEFAULT,
  UNSAFE_SHARD_MUTATIONS,
  UNSAFE_SHARD_MUTATION_ENV,
} from "./chaos-run";
export type { ChaosOptions, ChaosReport, UnsafeShardMutation } from "./chaos-run";
export { ChaosCluster, CLIENT_LINK_PREFIX, UNIDENTIFIED_LINK_PREFIX, DEFAULT_PROXIED_SERVICES } from "./chaos-cluster";
export type { ChaosClusterOptions } from "./chaos-cluster";
export { TcpProxy, PROXY_CONNECTIONS_MAX_DEFAULT, PROXY_BUFFER_BYTES_MAX_DEFAULT } from "./tcp-proxy";
export type { TcpProxyOptions, TcpProxyStats } from "./tcp-proxy";
export { SourceRouter } from "./source-router";
export type { SourceRouterOptions, SourceRouterStats } from "./source-router";
export { socketOwner, socketOwnerSupported, connectingSocketInode } from "./socket-owner";
export { linkName, raftLinks, raftLinksOf, raftReplicas, rewritePeerList, routePeersThroughIngress } from "./raft-links";
export type { RaftLink, RaftReplica } from "./raft-links";
export {
  FaultSchedule,
  DEFAULT_FAULT_SCHEDULE,
  validateFaultSchedule,
  LINK_TARGET,
  RAFT_LINK_TARGET,
  REPLICA_SERVICE,
} from "./fault-schedule";
export type { FaultDecision, FaultKind, FaultScheduleConfig, FaultTargets, ProcessTarget } from "./fault-schedule";
export { FaultInjector, DEFAULT_FAULT_INJECTOR } from "./fault-injector";
export type { FaultCounts, FaultInjectorConfig } from "./fault-injector";
export { checkFinalData, checkAgainstLog, checkRywReads, parseTokens, tokenFor, TOKEN_SEPARATOR } from "./checker";
export type { CheckCounts, LoggedTxn, LogView, RywRead, TxnRecord, Violation, ViolationKind } from "./checker";
export { AppendWorkload, DEFAULT_WORKLOAD, chooseTxnKeys, workloadKeys } from "./workload";
export type { WorkloadConfig, WorkloadStats } from "./workload";
export { formatReport, formatDuration, parseDuration, replayCommand } from "./report";
