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
  COMPOSE_TLS_INIT_SERVICE,
  composeTlsInitCommand,
  clusterCertificates,
  certificateHosts,
  TLS_DIR_NAME,
  CLIENT_CERTIFICATE,
  LPCTL_CERTIFICATE,
  LOGPLAYER_CERTIFICATE,
} from "./plan";
export type { ClusterCertificate, ClusterOptions, PortTable, ProcessSpec, ServiceName, ServicePorts } from "./plan";
export { ManagedProcess, findReadyLine, findRepoRoot, serviceScript, describeExit } from "./process";
export type { ExitInfo, ManagedProcessOptions, ReadyInfo } from "./process";
export { LocalCluster, makeClusterCertificates, LOCAL_CERTIFICATE_VALIDITY_DAYS } from "./cluster";
export type { ClusterToolSecurity, ClusterEndpoints, ConnectOptions, LocalClusterOptions } from "./cluster";
export {
  KUBERNETES_DATA_DIR,
  KUBERNETES_LOGPLAYER_SERVICE,
  KUBERNETES_LOGSTORE_SERVICE,
  KUBERNETES_SHARD_SERVICE,
  kubernetesHost,
  kubernetesTlsInitArgs,
  planForKubernetes,
} from "./kubernetes-plan";
export { CONSOLE_PORT_DEFAULT, localConsoleTargets, startLocalConsole } from "./console";
