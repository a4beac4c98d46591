export {
  clusterPlan,
  planForCompose,
  defaultPortTable,
  autoPortTable,
  logPlayerName,
  shardName,
  SERVICE_NAMES,
  SHARD_COUNT_DEFAULT,
  LOG_PLAYERS_DEFAULT,
  LOG_PLAYERS_MAX,
  LOG_LEVEL_DEFAULT,
  LOOPBACK_HOST,
  COMPOSE_DATA_DIR,
} from "./plan";
export type { ClusterOptions, PortTable, ProcessSpec, ServiceName, ServicePorts } from "./plan";
export { ManagedProcess, findReadyLine, findRepoRoot, serviceScript, describeExit } from "./process";
export type { ExitInfo, ManagedProcessOptions, ReadyInfo } from "./process";
export { LocalCluster } from "./cluster";
export type { ClusterEndpoints, ConnectOptions, LocalClusterOptions } from "./cluster";
