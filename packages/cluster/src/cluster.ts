import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { checkHealth, HealthServingStatus, LogPlayerClient } from "@logplayer/client";
import { assert, listenHost } from "@logplayer/common";
import { type DataDirLock, lockDataDir } from "@logplayer/data-dir-lock";
import {
  autoPortTable,
  type ClusterOptions,
  clusterPlan,
  LOG_PLAYERS_DEFAULT,
  type PortTable,
  type ProcessSpec,
  SHARD_COUNT_DEFAULT,
  certificateHosts,
  CLIENT_CERTIFICATE,
  clusterCertificates,
  LPCTL_CERTIFICATE,
  TLS_DIR_NAME,
} from "./plan";
import { describeExit, type ExitInfo, ManagedProcess, type ReadyInfo } from "./process";
import {
  certificateFileStem,
  ensureCertificates,
  INSECURE,
  loadTransportSecurity,
  TRUST_DOMAIN_DEFAULT,
  tlsFilesInDir,
  type TransportSecurity,
} from "@logplayer/tls";

/** Certificates made by the launcher stay valid this long (a restart keeps existing ones; see the README on rotation). */
export const LOCAL_CERTIFICATE_VALIDITY_DAYS = 825;

export interface LocalClusterOptions extends Omit<ClusterOptions, "ports" | "listenHost" | "connectHost" | "tlsDir"> {
  /** "auto" = free loopback ports picked up front (for tests and the benchmark). Default "default". */
  ports?: "default" | "auto" | PortTable;
  /** Bound on each process's start-up. */
  readyTimeoutMs?: number;
  /** Bound on each process's graceful stop before SIGKILL. */
  stopTimeoutMs?: number;
  /** Repository root holding services/<svc>/dist/main.js (default: found from this package). */
  repoRoot?: string;
}

export interface ClusterEndpoints {
  /** The LogStore (replica 1 when replicated). */
  logstore: string;
  /** Every LogStore replica. */
  logstores: string[];
  /** Indexed by shard id. */
  shards: string[];
  logPlayers: string[];
}

export type ConnectOptions = Parameters<typeof LogPlayerClient.connect>[0];

/**
 * A whole cluster as local child processes, started in dependency order
 * (LogStore, shards, LogPlayers) and stopped in reverse. The plan comes from
 * clusterPlan(), so ports and flags are the same as everywhere else.
 */
export class LocalCluster {
  readonly plan: readonly ProcessSpec[];
  readonly dataDir: string;
  readonly logDir: string;
  readonly endpoints: ClusterEndpoints;
  /** `<dataDir>/tls`, where the launcher made the certificates (unused when insecure). */
  readonly tlsDir: string;
  /** What clients of this cluster use: the launcher's client certificate, or plain text for an insecure cluster. */
  readonly clientSecurity: TransportSecurity;
  /** lpctl's admin certificate (or plain text): the launcher's own health probes use it. */
  readonly adminSecurity: TransportSecurity;
  readonly #processes: Map<string, ManagedProcess>;
  /** Held from prepare() to the end of stop(): one launcher per data directory. */
  readonly #dirLock: DataDirLock;
  #stopping: Promise<void> | undefined;

  private constructor(
    plan: ProcessSpec[],
    dataDir: string,
    dirLock: DataDirLock,
    options: LocalClusterOptions,
    security: { client: TransportSecurity; admin: TransportSecurity },
  ) {
    this.plan = plan;
    this.dataDir = dataDir;
    this.tlsDir = path.join(dataDir, TLS_DIR_NAME);
    this.clientSecurity = security.client;
    this.adminSecurity = security.admin;
    const probeSecurity = security.admin;
    this.#dirLock = dirLock;
    this.logDir = path.join(dataDir, "logs");
    this.#processes = new Map(
      plan.map((spec) => [
        spec.name,
        new ManagedProcess(spec, {
          logDir: this.logDir,
          readyProbe: (spec: ProcessSpec) => isServing(spec, probeSecurity),
          ...(options.repoRoot === undefined ? {} : { repoRoot: options.repoRoot }),
          ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
          ...(options.stopTimeoutMs === undefined ? {} : { stopTimeoutMs: options.stopTimeoutMs }),
        }),
      ]),
    );
    this.endpoints = {
      logstore: plan.find((s) => s.service === "logstore")!.grpcAddress,
      logstores: plan.filter((s) => s.service === "logstore").map((s) => s.grpcAddress),
      shards: plan.filter((s) => s.service === "shard").map((s) => s.grpcAddress),
      logPlayers: plan.filter((s) => s.service === "logplayer").map((s) => s.grpcAddress),
    };
  }

  /**
   * Plans the cluster (picking ports when "auto") without starting anything.
   * Takes the data directory's lock first: a second launcher on a directory
   * in use is refused with the holder's pid (DataDirInUseError).
   */
  static async prepare(options: LocalClusterOptions): Promise<LocalCluster> {
    const dataDir = path.resolve(options.dataDir);
    const dirLock = lockDataDir(dataDir, "local cluster launcher");
    try {
      return await LocalCluster.#plan(options, dataDir, dirLock);
    } catch (err: unknown) {
      dirLock.release();
      throw err;
    }
  }

  static async #plan(options: LocalClusterOptions, dataDir: string, dirLock: DataDirLock): Promise<LocalCluster> {
    const shardCount = options.shardCount ?? SHARD_COUNT_DEFAULT;
    const logPlayers = options.logPlayers ?? LOG_PLAYERS_DEFAULT;
    const ports =
      options.ports === "auto" ? await autoPortTable(shardCount, logPlayers, undefined, options.logStoreReplicas) : options.ports;
    const { readyTimeoutMs: _r, stopTimeoutMs: _s, repoRoot: _root, ...planOptions } = options;
    const plan = clusterPlan({ ...planOptions, dataDir, shardCount, logPlayers, ports: ports ?? "default" });
    fs.mkdirSync(path.join(dataDir, "logs"), { recursive: true });
    const security = options.insecure === true ? { client: INSECURE, admin: INSECURE } : await makeClusterCertificates(plan, dataDir);
    return new LocalCluster(plan, dataDir, dirLock, options, security);
  }

  /** Starts every process, each waited for; on any failure stops what started and throws. */
  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    const cluster = await LocalCluster.prepare(options);
    await cluster.startAll();
    return cluster;
  }

  /**
   * Starts the planned processes in order: LogStore, then shards together,
   * then LogPlayers together. Refuses up front when a planned port is taken
   * (the health probe would otherwise find another cluster's process serving
   * there), and fails naming every process that died while the rest started.
   */
  async startAll(): Promise<void> {
    const missing = this.processes.filter((p) => !fs.existsSync(p.scriptPath)).map((p) => p.scriptPath);
    if (missing.length > 0) {
      throw new Error(`not built: ${[...new Set(missing)].join(", ")} (run pnpm build)`);
    }
    const taken = await takenPorts(this.plan);
    if (taken.length > 0) {
      throw new Error(`cannot start: ${taken.join("; ")} already in use (another cluster running? --ports auto picks free ports)`);
    }
    const diedWhileStarting: string[] = [];
    const unsubscribe = this.onUnexpectedExit((name, exit) => diedWhileStarting.push(`${name} exited (${describeExit(exit)})`));
    try {
      for (const group of this.#startGroups()) {
        if (this.#stopping !== undefined) throw new Error("cluster stopped while starting");
        await startGroup(group);
        if (diedWhileStarting.length > 0) throw new Error(`cluster start failed: ${diedWhileStarting.join("; ")}`);
      }
    } catch (err: unknown) {
      await this.stop();
      throw err;
    } finally {
      unsubscribe();
    }
  }

  #startGroups(): ManagedProcess[][] {
    const byService = (service: ProcessSpec["service"]): ManagedProcess[] => this.processes.filter((p) => p.spec.service === service);
    return [byService("logstore"), byService("shard"), byService("logplayer")];
  }

  /** Every process, in plan (start) order. */
  get processes(): ManagedProcess[] {
    return [...this.#processes.values()];
  }

  process(name: string): ManagedProcess {
    const found = this.#processes.get(name);
    if (found === undefined) {
      throw new Error(`no process "${name}" in this cluster (have: ${[...this.#processes.keys()].join(", ")})`);
    }
    return found;
  }

  /** Signals one process (SIGKILL by default) without waiting; restart() waits for it to be gone. */
  kill(name: string, signal: NodeJS.Signals = "SIGKILL"): void {
    this.process(name).kill(signal);
  }

  /** Stops (or waits out a kill of) one process and starts it again on the same ports and data. */
  restart(name: string): Promise<ReadyInfo> {
    assert(this.#stopping === undefined, "cannot restart a process of a stopping cluster");
    return this.process(name).restart();
  }

  /** Stops every process, LogPlayers first, LogStore last, then frees the data directory. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const group of this.#startGroups().reverse()) {
        await Promise.all(group.map((p) => p.stop()));
      }
      this.#dirLock.release();
    })();
    return this.#stopping;
  }

  /**
   * Calls `listener` whenever a process exits without being asked to (not by
   * stop, kill or restart, and not while the cluster stops). Returns an unsubscribe function.
   */
  onUnexpectedExit(listener: (name: string, exit: ExitInfo) => void): () => void {
    const unsubscribes = this.processes.map((p) =>
      p.onExit((exit) => {
        if (!exit.expected && this.#stopping === undefined) listener(p.name, exit);
      }),
    );
    return () => {
      for (const unsubscribe of unsubscribes) unsubscribe();
    };
  }

  /** A client for this cluster's LogStore and shards. */
  connectClient(options: Partial<ConnectOptions> = {}): Promise<LogPlayerClient> {
    return LogPlayerClient.connect({
      security: this.clientSecurity,
      ...options,
      logstore: this.endpoints.logstores,
      shards: this.endpoints.shards,
    } as ConnectOptions);
  }
}

const HEALTH_TIMEOUT_MS = 500;

/** SERVING on the gRPC health service is the services' other ready signal (see ManagedProcess). */
async function isServing(spec: ProcessSpec, security: TransportSecurity): Promise<boolean> {
  const health = await checkHealth(spec.grpcAddress, { timeoutMs: HEALTH_TIMEOUT_MS, security });
  return health.status === HealthServingStatus.SERVING;
}

/** "port P (name gRPC)" for every planned fixed port something already listens on. */
async function takenPorts(plan: readonly ProcessSpec[]): Promise<string[]> {
  const checks = plan.flatMap((spec) => {
    const host = listenHost(spec.grpcAddress);
    const ports: [number, string][] = [
      [spec.grpcPort, "gRPC"],
      [spec.metricsPort, "metrics"],
    ];
    return ports
      .filter(([port]) => port > 0)
      .map(async ([port, what]) => ((await isPortFree(host, port)) ? null : `port ${port} (${spec.name} ${what})`));
  });
  return (await Promise.all(checks)).filter((taken): taken is string => taken !== null);
}

function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.once("error", () => resolve(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

async function startGroup(group: ManagedProcess[]): Promise<void> {
  const results = await Promise.allSettled(group.map((p) => p.start()));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length > 0) {
    const reasons = failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason)));
    throw new Error(`cluster start failed:\n${reasons.join("\n")}`);
  }
}

/** What a cluster's own tools use to call it: a client certificate and an admin one. */
export interface ClusterToolSecurity {
  readonly client: TransportSecurity;
  readonly admin: TransportSecurity;
}

/**
 * Makes what is missing under `<dataDir>/tls`: the local CA on the first start,
 * then every certificate of clusterCertificates(plan). Existing files are kept,
 * so a restart changes nobody's identity.
 */
export async function makeClusterCertificates(plan: readonly ProcessSpec[], dataDir: string): Promise<ClusterToolSecurity> {
  const dir = path.join(dataDir, TLS_DIR_NAME);
  const hosts = certificateHosts(plan);
  const ipAddresses = hosts.filter((host) => net.isIP(host) !== 0);
  const dnsNames = hosts.filter((host) => net.isIP(host) === 0);
  await ensureCertificates(dir, {
    trustDomain: TRUST_DOMAIN_DEFAULT,
    validityDays: LOCAL_CERTIFICATE_VALIDITY_DAYS,
    certificates: clusterCertificates(plan).map((identity) => ({
      fileStem: certificateFileStem(identity),
      identity,
      dnsNames,
      ipAddresses,
      validityDays: LOCAL_CERTIFICATE_VALIDITY_DAYS,
    })),
  });
  return {
    client: loadTransportSecurity(tlsFilesInDir(dir, CLIENT_CERTIFICATE), TRUST_DOMAIN_DEFAULT, CLIENT_CERTIFICATE),
    admin: loadTransportSecurity(tlsFilesInDir(dir, LPCTL_CERTIFICATE), TRUST_DOMAIN_DEFAULT, LPCTL_CERTIFICATE),
  };
}
