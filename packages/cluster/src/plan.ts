import path from "node:path";
import { assert, freePorts, LOOPBACK_HOST, SHARD_COUNT_MAX } from "@logplayer/common";

/**
 * The one definition of a LogPlayer cluster's topology: which processes run,
 * with which flags, on which ports. `pnpm start`, the tests, the benchmark and
 * the docker-compose check all read it from here, so they cannot disagree.
 */

export type ServiceName = "logstore" | "logplayer" | "shard";

export const SERVICE_NAMES: readonly ServiceName[] = ["logstore", "logplayer", "shard"];

export interface ProcessSpec {
  /** Unique within the cluster: "logstore", "shard-0", "logplayer-0", ... */
  name: string;
  service: ServiceName;
  /** Flags after `main.js`, in a fixed order (the compose check compares them). */
  args: string[];
  /** Extra environment on top of the launcher's own. */
  env: Record<string, string>;
  /** Where clients and peers reach the process's gRPC server. */
  grpcAddress: string;
  grpcPort: number;
  /** Prometheus /metrics port, or -1 when metrics are off. */
  metricsPort: number;
  /** The process's own state directory; undefined for the stateless LogPlayer. */
  dataDir: string | undefined;
}

export interface ServicePorts {
  grpc: number;
  /** -1 = metrics off. */
  metrics: number;
}

/** Every port of a cluster, decided before any process starts. */
export interface PortTable {
  /** The LogStore, or its replica 1 when replicated. */
  logstore: ServicePorts;
  /** Replicas 2..N of a replicated LogStore (absent or empty: one replica). */
  logstorePeers?: ServicePorts[];
  /** Indexed by shard id. */
  shards: ServicePorts[];
  /** Indexed by LogPlayer number. */
  logPlayers: ServicePorts[];
}

export interface ClusterOptions {
  /** Root of all state: `<dataDir>/<name>/` per stateful process. */
  dataDir: string;
  /** Default 3. Fixed when the cluster's data is first created. */
  shardCount?: number;
  /** Default 1. */
  logPlayers?: number;
  /** LogStore replicas: 1 (no Raft) or an odd number up to LOGSTORE_REPLICAS_MAX. Default 1. */
  logStoreReplicas?: number;
  /** Cluster id given to a replicated LogStore on first start (every replica needs the same). */
  clusterId?: string;
  /** "default" = the well-known ports (logstore 7100, logplayer 7200+i, shard 7300+i). */
  ports?: "default" | PortTable;
  /** Passed to every service's --log-level. Default "info". */
  logLevel?: string;
  /** Appended after the planned flags, per service. */
  extraArgs?: Partial<Record<ServiceName, string[]>>;
  /** Address a process binds (default 127.0.0.1). Compose uses 0.0.0.0. */
  listenHost?: string;
  /** Host name others use to reach process `name` (default: listenHost). */
  connectHost?: (name: string) => string;
  /** Where every process finds ca.crt and its certificate (default `<dataDir>/tls`); see clusterCertificates. */
  tlsDir?: string;
  /** Plain text, no authentication (`--insecure` on every process): for comparisons only, never the default. */
  insecure?: boolean;
  /** Every process on its own host (Kubernetes pods): processes may share port numbers. Default false (one host). */
  separateHosts?: boolean;
}

export const SHARD_COUNT_DEFAULT = 3;
export const LOG_PLAYERS_DEFAULT = 1;
export const LOG_PLAYERS_MAX = 16;
export const LOGSTORE_REPLICAS_DEFAULT = 1;
export const LOGSTORE_REPLICAS_MAX = 7;
export const CLUSTER_ID_DEFAULT = "logplayer-local";
/** What `pnpm start` and docker-compose run: a 3-replica Raft LogStore (library callers default to 1). */
export const LOCAL_LOGSTORE_REPLICAS = 3;
export const LOG_LEVEL_DEFAULT = "info";
export { LOOPBACK_HOST };

// Well-known ports: gRPC 7xxx, metrics 9xxx, the same last digits per service.
const LOGSTORE_PORT_DEFAULT = 7100;
const LOGPLAYER_PORT_DEFAULT = 7200;
const SHARD_PORT_DEFAULT = 7300;
const METRICS_PORT_OFFSET = 2000;

/** "logstore" for a single replica, "logstore-<id>" (id from 1) for a replicated one. */
export function logStoreName(replicaId: number, replicas: number): string {
  return replicas === 1 ? "logstore" : `logstore-${replicaId}`;
}

export function logPlayerName(index: number): string {
  return `logplayer-${index}`;
}

export function shardName(shardId: number): string {
  return `shard-${shardId}`;
}

export function defaultPortTable(shardCount: number, logPlayers: number, logStoreReplicas = LOGSTORE_REPLICAS_DEFAULT): PortTable {
  validateCounts(shardCount, logPlayers);
  validateReplicas(logStoreReplicas);
  // Above 99 shards the shard range would run into other services' ports.
  assert(shardCount <= 99, `default ports support at most 99 shards, got ${shardCount}; use ports "auto"`);
  const ports = (grpc: number): ServicePorts => ({ grpc, metrics: grpc + METRICS_PORT_OFFSET });
  return {
    logstore: ports(LOGSTORE_PORT_DEFAULT),
    ...(logStoreReplicas > 1 ? { logstorePeers: range(logStoreReplicas - 1).map((i) => ports(LOGSTORE_PORT_DEFAULT + 1 + i)) } : {}),
    shards: range(shardCount).map((i) => ports(SHARD_PORT_DEFAULT + i)),
    logPlayers: range(logPlayers).map((i) => ports(LOGPLAYER_PORT_DEFAULT + i)),
  };
}

/**
 * Free loopback ports for every process, found by binding port 0. All sockets
 * stay open until every port is picked, so no port is handed out twice; the
 * ports are free again (and the services bind them) right after.
 */
export async function autoPortTable(
  shardCount: number,
  logPlayers: number,
  host = LOOPBACK_HOST,
  logStoreReplicas = LOGSTORE_REPLICAS_DEFAULT,
): Promise<PortTable> {
  validateCounts(shardCount, logPlayers);
  validateReplicas(logStoreReplicas);
  const processCount = logStoreReplicas + shardCount + logPlayers;
  const ports = await freePorts(processCount * 2, host);
  const take = (): ServicePorts => ({ grpc: ports.shift()!, metrics: ports.shift()! });
  const table: PortTable = {
    logstore: take(),
    ...(logStoreReplicas > 1 ? { logstorePeers: range(logStoreReplicas - 1).map(take) } : {}),
    shards: range(shardCount).map(take),
    logPlayers: range(logPlayers).map(take),
  };
  assert(ports.length === 0, "every free port is assigned");
  return table;
}

/**
 * The processes of a cluster, in start order: logstore, shards by id, then
 * LogPlayers. Pure: the same options give the same plan.
 */
export function clusterPlan(options: ClusterOptions): ProcessSpec[] {
  const shardCount = options.shardCount ?? SHARD_COUNT_DEFAULT;
  const logPlayers = options.logPlayers ?? LOG_PLAYERS_DEFAULT;
  const logStoreReplicas = options.logStoreReplicas ?? LOGSTORE_REPLICAS_DEFAULT;
  validateCounts(shardCount, logPlayers);
  validateReplicas(logStoreReplicas);
  const ports =
    options.ports === undefined || options.ports === "default" ? defaultPortTable(shardCount, logPlayers, logStoreReplicas) : options.ports;
  assert(
    (ports.logstorePeers?.length ?? 0) === logStoreReplicas - 1,
    `port table has ${1 + (ports.logstorePeers?.length ?? 0)} LogStore replica(s), expected ${logStoreReplicas}`,
  );
  validatePortTable(ports, shardCount, logPlayers, options.separateHosts === true);
  const listenHost = options.listenHost ?? LOOPBACK_HOST;
  const connectHost = options.connectHost ?? (() => listenHost);
  const context: PlanContext = {
    dataDir: options.dataDir,
    logLevel: options.logLevel ?? LOG_LEVEL_DEFAULT,
    shardCount,
    listenHost,
    connectHost,
    clusterId: options.clusterId ?? CLUSTER_ID_DEFAULT,
    extraArgs: options.extraArgs ?? {},
    securityArgs: options.insecure === true ? ["--insecure"] : ["--tls-dir", options.tlsDir ?? path.join(options.dataDir, TLS_DIR_NAME)],
  };
  const shards = ports.shards.map((p, shardId) => shardSpec(context, shardId, p));
  const logstores = logStoreSpecs(
    context,
    [ports.logstore, ...(ports.logstorePeers ?? [])],
    shards.map((s) => s.grpcAddress),
  );
  const players = ports.logPlayers.map((p, index) =>
    logPlayerSpec(
      context,
      index,
      p,
      logstores.map((l) => l.grpcAddress),
      shards.map((s) => s.grpcAddress),
    ),
  );
  const plan = [...logstores, ...shards, ...players];
  assert(new Set(plan.map((p) => p.name)).size === plan.length, "process names are unique");
  return plan;
}

interface PlanContext {
  dataDir: string;
  logLevel: string;
  shardCount: number;
  listenHost: string;
  connectHost: (name: string) => string;
  /** Given to every LogStore and every shard: the one source of the cluster's identity. */
  clusterId: string;
  extraArgs: Partial<Record<ServiceName, string[]>>;
  /** `--tls-dir <dir>` or `--insecure`, the same for every process. */
  securityArgs: string[];
}

/**
 * One replica: today's single LogStore. Several: a Raft group, each replica
 * told every peer's address (the same list everywhere) and the cluster id.
 */
function logStoreSpecs(context: PlanContext, replicaPorts: ServicePorts[], shardAddresses: string[]): ProcessSpec[] {
  const replicas = replicaPorts.length;
  const address = (index: number): string => `${context.connectHost(logStoreName(index + 1, replicas))}:${replicaPorts[index]!.grpc}`;
  const peers = replicaPorts.map((_, index) => `${index + 1}=${address(index)}`).join(",");
  return replicaPorts.map((ports, index) => {
    const name = logStoreName(index + 1, replicas);
    const dataDir = path.join(context.dataDir, name);
    const grpcAddress = address(index);
    const replication = replicas === 1 ? [] : ["--replica-id", String(index + 1), "--peers", peers];
    const args = [
      "--data-dir",
      dataDir,
      "--listen",
      `${context.listenHost}:${ports.grpc}`,
      "--metrics-port",
      String(ports.metrics),
      "--shard-count",
      String(context.shardCount),
      "--advertise",
      grpcAddress,
      // Reported in Status, so that a client learns the shards from any replica (connect({ seeds })).
      "--shard-addresses",
      shardAddresses.join(","),
      ...replication,
      "--cluster-id",
      context.clusterId,
      "--log-level",
      context.logLevel,
      ...context.securityArgs,
      ...(context.extraArgs.logstore ?? []),
    ];
    return { name, service: "logstore", args, env: {}, grpcAddress, grpcPort: ports.grpc, metricsPort: ports.metrics, dataDir };
  });
}

function shardSpec(context: PlanContext, shardId: number, ports: ServicePorts): ProcessSpec {
  const name = shardName(shardId);
  const dataDir = path.join(context.dataDir, name);
  const args = [
    "--shard-id",
    String(shardId),
    "--data-dir",
    dataDir,
    "--listen",
    `${context.listenHost}:${ports.grpc}`,
    "--metrics-port",
    String(ports.metrics),
    "--shard-count",
    String(context.shardCount),
    // The shard is configured with its cluster, never told it by the first LogPlayer that connects.
    "--cluster-id",
    context.clusterId,
    "--log-level",
    context.logLevel,
    ...context.securityArgs,
    ...(context.extraArgs.shard ?? []),
  ];
  const grpcAddress = `${context.connectHost(name)}:${ports.grpc}`;
  return { name, service: "shard", args, env: {}, grpcAddress, grpcPort: ports.grpc, metricsPort: ports.metrics, dataDir };
}

function logPlayerSpec(
  context: PlanContext,
  index: number,
  ports: ServicePorts,
  logstoreAddresses: string[],
  shardAddresses: string[],
): ProcessSpec {
  const name = logPlayerName(index);
  assert(shardAddresses.length === context.shardCount, "the LogPlayer is given every shard");
  const args = [
    "--logstore",
    logstoreAddresses.join(","),
    // In shard-id order: position i is shard i.
    "--shards",
    shardAddresses.join(","),
    "--player-id",
    name,
    "--listen",
    `${context.listenHost}:${ports.grpc}`,
    "--metrics-port",
    String(ports.metrics),
    "--log-level",
    context.logLevel,
    ...context.securityArgs,
    ...(context.extraArgs.logplayer ?? []),
  ];
  const grpcAddress = `${context.connectHost(name)}:${ports.grpc}`;
  return {
    name,
    service: "logplayer",
    args,
    env: {},
    grpcAddress,
    grpcPort: ports.grpc,
    metricsPort: ports.metrics,
    dataDir: undefined,
  };
}

/** The certificates directory under the data root: `<dataDir>/tls`. */
export const TLS_DIR_NAME = "tls";
/** The certificate the LogPlayers share (`--tls-name` default) and the ones `pnpm start` makes for users. */
export const LOGPLAYER_CERTIFICATE = { role: "logplayer", name: "main" } as const;
export const CLIENT_CERTIFICATE = { role: "client", name: "default" } as const;
export const LPCTL_CERTIFICATE = { role: "admin", name: "lpctl" } as const;

export interface ClusterCertificate {
  readonly role: "logstore-replica" | "shard" | "logplayer" | "client" | "admin";
  readonly name: string;
}

/**
 * The certificates a cluster needs: one per LogStore replica and shard (named
 * by its id, which peers check), one the LogPlayers share, a client one for
 * applications and the benchmark, and lpctl's admin one. Pure, from the plan.
 */
export function clusterCertificates(plan: readonly ProcessSpec[]): ClusterCertificate[] {
  const replicas = plan.filter((spec) => spec.service === "logstore");
  const shards = plan.filter((spec) => spec.service === "shard");
  return [
    ...replicas.map((_, index): ClusterCertificate => ({ role: "logstore-replica", name: String(index + 1) })),
    ...shards.map((_, shardId): ClusterCertificate => ({ role: "shard", name: String(shardId) })),
    LOGPLAYER_CERTIFICATE,
    CLIENT_CERTIFICATE,
    LPCTL_CERTIFICATE,
  ];
}

/** Host names every certificate is valid for: loopback, and each process's connect host (compose: its service name). */
export function certificateHosts(plan: readonly ProcessSpec[]): string[] {
  const hosts = new Set(["localhost", "127.0.0.1", "::1"]);
  for (const spec of plan) hosts.add(spec.grpcAddress.slice(0, spec.grpcAddress.lastIndexOf(":")));
  return [...hosts];
}

/** Container data root used by planForCompose. */
export const COMPOSE_DATA_DIR = "/data";

/**
 * The same plan as docker-compose runs it: default ports, every process
 * listening on 0.0.0.0 in its own container, reached by its service name
 * (`logstore`, `shard-0`, `logplayer-0`), with state under /data/<name>.
 */
export function planForCompose(
  options: Pick<ClusterOptions, "shardCount" | "logPlayers" | "logStoreReplicas" | "logLevel" | "extraArgs"> = {},
): ProcessSpec[] {
  return clusterPlan({
    logStoreReplicas: LOCAL_LOGSTORE_REPLICAS,
    ...options,
    dataDir: COMPOSE_DATA_DIR,
    ports: "default",
    listenHost: "0.0.0.0",
    connectHost: (name) => name,
  });
}

/** The compose file's one-shot certificate service: makes the CA and clusterCertificates() into the shared volume. */
export const COMPOSE_TLS_INIT_SERVICE = "tls-init";

export function composeTlsInitCommand(plan: readonly ProcessSpec[] = planForCompose()): string[] {
  const names = clusterCertificates(plan).map((c) => `${c.role}/${c.name}`);
  return [
    "packages/tls/dist/main.js",
    "init",
    "--dir",
    path.posix.join(COMPOSE_DATA_DIR, TLS_DIR_NAME),
    "--names",
    names.join(","),
    "--hosts",
    certificateHosts(plan).join(","),
  ];
}

function validateCounts(shardCount: number, logPlayers: number): void {
  assert(
    Number.isInteger(shardCount) && shardCount >= 1 && shardCount <= SHARD_COUNT_MAX,
    `shard count must be an integer in [1, ${SHARD_COUNT_MAX}], got ${shardCount}`,
  );
  assert(
    Number.isInteger(logPlayers) && logPlayers >= 1 && logPlayers <= LOG_PLAYERS_MAX,
    `LogPlayer count must be an integer in [1, ${LOG_PLAYERS_MAX}], got ${logPlayers}`,
  );
}

function validateReplicas(replicas: number): void {
  assert(
    Number.isInteger(replicas) && replicas >= 1 && replicas <= LOGSTORE_REPLICAS_MAX && replicas % 2 === 1,
    `LogStore replicas must be an odd integer in [1, ${LOGSTORE_REPLICAS_MAX}], got ${replicas}`,
  );
}

function validatePortTable(ports: PortTable, shardCount: number, logPlayers: number, separateHosts: boolean): void {
  assert(ports.shards.length === shardCount, `port table has ${ports.shards.length} shards, expected ${shardCount}`);
  assert(ports.logPlayers.length === logPlayers, `port table has ${ports.logPlayers.length} LogPlayers, expected ${logPlayers}`);
  const all = [ports.logstore, ...(ports.logstorePeers ?? []), ...ports.shards, ...ports.logPlayers];
  const used = new Set<number>();
  for (const { grpc, metrics } of all) {
    // Port 0 would make the address unknowable before start, so peers could not be told it.
    assert(Number.isInteger(grpc) && grpc >= 1 && grpc <= 65535, `gRPC port ${grpc} out of range`);
    assert(Number.isInteger(metrics) && metrics >= -1 && metrics <= 65535, `metrics port ${metrics} out of range`);
    for (const port of [grpc, metrics]) {
      if (port <= 0 || separateHosts) continue;
      assert(!used.has(port), `port ${port} is assigned twice`);
      used.add(port);
    }
  }
}

function range(count: number): number[] {
  return Array.from({ length: count }, (_, i) => i);
}
