import {
  certificateHosts,
  clusterCertificates,
  clusterPlan,
  defaultPortTable,
  LOCAL_LOGSTORE_REPLICAS,
  type PortTable,
  type ProcessSpec,
  SHARD_COUNT_DEFAULT,
} from "./plan";

/** Container data root in deploy/kubernetes: each stateful pod's volume is mounted here, its TLS secret at /data/tls. */
export const KUBERNETES_DATA_DIR = "/data";

/** The headless Services that give each LogStore replica and each shard a stable DNS name. */
export const KUBERNETES_LOGSTORE_SERVICE = "logstore";
export const KUBERNETES_SHARD_SERVICE = "shard";
export const KUBERNETES_LOGPLAYER_SERVICE = "logplayer";

/**
 * A plan process's DNS name inside the namespace: LogStore replica N is pod
 * `logstore-<N-1>` of the `logstore` StatefulSet (ordinals start at 0, replica
 * ids at 1), shard K is pod `shard-K`, the LogPlayer sits behind its Service.
 */
export function kubernetesHost(name: string): string {
  const replica = /^logstore-(\d+)$/.exec(name);
  if (replica !== null) return `${KUBERNETES_LOGSTORE_SERVICE}-${Number(replica[1]) - 1}.${KUBERNETES_LOGSTORE_SERVICE}`;
  const shard = /^shard-(\d+)$/.exec(name);
  if (shard !== null) return `${KUBERNETES_SHARD_SERVICE}-${shard[1]}.${KUBERNETES_SHARD_SERVICE}`;
  if (/^logplayer-\d+$/.test(name)) return KUBERNETES_LOGPLAYER_SERVICE;
  throw new Error(`no Kubernetes name for plan process "${name}"`);
}

/**
 * One port pair per kind of process: every pod has its own address, so the
 * pods of one StatefulSet share a pod template and its probes' ports. The
 * numbers are the first of the local cluster's well-known ones.
 */
function kubernetesPortTable(): PortTable {
  const local = defaultPortTable(SHARD_COUNT_DEFAULT, 1, LOCAL_LOGSTORE_REPLICAS);
  return {
    logstore: local.logstore,
    logstorePeers: Array.from({ length: LOCAL_LOGSTORE_REPLICAS - 1 }, () => local.logstore),
    shards: Array.from({ length: SHARD_COUNT_DEFAULT }, () => local.shards[0]!),
    logPlayers: [local.logPlayers[0]!],
  };
}

/**
 * The local cluster's plan as deploy/kubernetes runs it: the same processes with
 * the same flags, listening on 0.0.0.0, reaching each other by their pods' DNS
 * names, one port pair per kind of process. tests/deploy/kubernetes.process.test.ts
 * checks every pod's command against it.
 */
export function planForKubernetes(): ProcessSpec[] {
  return clusterPlan({
    logStoreReplicas: LOCAL_LOGSTORE_REPLICAS,
    dataDir: KUBERNETES_DATA_DIR,
    ports: kubernetesPortTable(),
    separateHosts: true,
    listenHost: "0.0.0.0",
    connectHost: kubernetesHost,
  });
}

/** `logplayer-tls init` arguments that make the certificates the Kubernetes secret must hold. */
export function kubernetesTlsInitArgs(outDir: string): string[] {
  const plan = planForKubernetes();
  return [
    "init",
    "--dir",
    outDir,
    "--names",
    clusterCertificates(plan)
      .map((c) => `${c.role}/${c.name}`)
      .join(","),
    "--hosts",
    certificateHosts(plan).join(","),
  ];
}
