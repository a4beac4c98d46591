import path from "node:path";
import fs from "node:fs";
import { Metadata, type ServiceError } from "@grpc/grpc-js";
import { checkHealth, HealthServingStatus, LogPlayerClient } from "@logplayer/client";
import {
  autoPortTable,
  clusterPlan,
  type ClusterToolSecurity,
  makeClusterCertificates,
  ManagedProcess,
  type ExitInfo,
  type ProcessSpec,
  type ServiceName,
} from "@logplayer/cluster";
import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import { assert } from "@logplayer/common";
import { LogStoreClient, type StatusResponse } from "@logplayer/proto";
import { linkName, raftLinks, raftReplicas, routePeersThroughIngress, type RaftLink } from "./raft-links";
import { socketOwnerSupported } from "./socket-owner";
import { SourceRouter } from "./source-router";
import { TcpProxy } from "./tcp-proxy";

/**
 * A cluster of real processes built from the launcher's plan, with a TCP
 * proxy on every link the chaos run may cut: from each LogPlayer to every
 * process it dials (shards, LogStore replicas), from the workload's client
 * to the LogStore, and between LogStore replicas in both directions (Raft).
 * LogPlayer links are found from the plan itself (an argument naming another
 * process's address); Raft links from the replicas' `--peers` (raft-links.ts).
 */
export interface ChaosClusterOptions {
  dataDir: string;
  shardCount: number;
  logPlayers: number;
  /** LogStore replicas: 1 (no Raft) or an odd number (default 1). */
  logStoreReplicas?: number;
  logLevel: string;
  /**
   * Services whose outgoing links go through proxies (default: the LogPlayers
   * and the LogStore replicas). With "logstore", every Raft link between
   * replicas is its own proxy (Linux only: senders are told apart via /proc).
   */
  proxiedServices?: readonly ServiceName[];
  /** Extra environment for every process of a service (e.g. a shard test mutation). */
  serviceEnv?: Partial<Record<ServiceName, Record<string, string>>>;
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Root holding services/<svc>/dist/main.js (default: this repository); lets a run use mutant builds. */
  repoRoot?: string;
}

export const CLIENT_LINK_PREFIX = "client";
/** Names the never-cut link of connections to a replica's ingress from a process that is not a replica. */
export const UNIDENTIFIED_LINK_PREFIX = "other";
export const DEFAULT_PROXIED_SERVICES: readonly ServiceName[] = ["logplayer", "logstore"];
const HEALTH_TIMEOUT_MS = 500;
const START_ATTEMPTS_MAX = 3;
const LEADER_ROLE = "leader";

/** What startOnce builds besides the plan: every proxy and router, for the cluster to own. */
interface Links {
  proxies: Map<string, TcpProxy>;
  clientProxies: TcpProxy[];
  raftLinks: RaftLink[];
  routers: SourceRouter[];
  /** Proxies that are never faulted (closed with the cluster). */
  uncut: TcpProxy[];
}

export class ChaosCluster {
  readonly plan: readonly ProcessSpec[];
  readonly dataDir: string;
  readonly #processes: Map<string, ManagedProcess>;
  /** Links between LogStore replicas, each also a proxy in `proxies` (empty without Raft proxying). */
  readonly raftLinks: readonly RaftLink[];
  readonly #proxies: Map<string, TcpProxy>;
  readonly #clientProxies: readonly TcpProxy[];
  readonly #routers: readonly SourceRouter[];
  readonly #uncut: readonly TcpProxy[];
  readonly #paused = new Set<string>();
  #stopping: Promise<void> | undefined;

  /** The launcher-made certificates the run's clients and probes use. */
  readonly security: ClusterToolSecurity;
  private constructor(dataDir: string, plan: ProcessSpec[], links: Links, options: ChaosClusterOptions, security: ClusterToolSecurity) {
    this.dataDir = dataDir;
    this.security = security;
    this.plan = plan;
    this.#proxies = links.proxies;
    this.#clientProxies = links.clientProxies;
    this.raftLinks = links.raftLinks;
    this.#routers = links.routers;
    this.#uncut = links.uncut;
    const logDir = path.join(dataDir, "logs");
    this.#processes = new Map(
      plan.map((spec) => [
        spec.name,
        new ManagedProcess(spec, {
          logDir,
          readyProbe: (spec: ProcessSpec) => isServing(spec, security.admin),
          ...(options.repoRoot === undefined ? {} : { repoRoot: options.repoRoot }),
          ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
          ...(options.stopTimeoutMs === undefined ? {} : { stopTimeoutMs: options.stopTimeoutMs }),
        }),
      ]),
    );
  }

  /**
   * Plans the cluster on free ports, puts proxies on its links, and starts
   * every process in plan order. Free ports are free only until someone else
   * binds them, so a start that loses a port race is retried on new ports.
   */
  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await ChaosCluster.#startOnce(options);
      } catch (err: unknown) {
        const portTaken = err instanceof Error && err.message.includes("EADDRINUSE");
        if (!portTaken || attempt >= START_ATTEMPTS_MAX) throw err;
        fs.rmSync(path.resolve(options.dataDir), { recursive: true, force: true });
      }
    }
  }

  static async #startOnce(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const dataDir = path.resolve(options.dataDir);
    fs.mkdirSync(path.join(dataDir, "logs"), { recursive: true });
    const logStoreReplicas = options.logStoreReplicas ?? 1;
    const ports = await autoPortTable(options.shardCount, options.logPlayers, undefined, logStoreReplicas);
    const basePlan = clusterPlan({
      dataDir,
      shardCount: options.shardCount,
      logPlayers: options.logPlayers,
      logStoreReplicas,
      ports,
      logLevel: options.logLevel,
    }).map((spec) => ({ ...spec, env: { ...spec.env, ...options.serviceEnv?.[spec.service] } }));
    const links: Links = { proxies: new Map(), clientProxies: [], raftLinks: [], routers: [], uncut: [] };
    // Filled in once the cluster exists: the routers ask it which pid is which replica.
    let cluster: ChaosCluster | undefined;
    try {
      const proxied = new Set(options.proxiedServices ?? DEFAULT_PROXIED_SERVICES);
      const ingressById =
        proxied.has("logstore") && socketOwnerSupported()
          ? await startRaftIngress(basePlan, links, () => (cluster === undefined ? new Map() : cluster.#runningPids("logstore")))
          : new Map<number, string>();
      const plan: ProcessSpec[] = [];
      for (const spec of basePlan) {
        if (spec.service === "logstore") plan.push(ingressById.size > 0 ? routePeersThroughIngress(spec, ingressById) : spec);
        else plan.push(proxied.has(spec.service) ? await routeThroughProxies(spec, basePlan, links.proxies) : spec);
      }
      for (const spec of basePlan.filter((s) => s.service === "logstore")) {
        const proxy = await TcpProxy.start({ name: `${CLIENT_LINK_PREFIX}→${spec.name}`, target: spec.grpcAddress });
        links.proxies.set(proxy.name, proxy);
        links.clientProxies.push(proxy);
      }
      // The launcher's certificates, made once under <dataDir>/tls: the chaos run is a TLS cluster like any other.
      cluster = new ChaosCluster(dataDir, plan, links, options, await makeClusterCertificates(basePlan, dataDir));
      await cluster.#startAll();
      return cluster;
    } catch (err: unknown) {
      await closeLinks(links.routers, [...links.proxies.values(), ...links.uncut]);
      throw err;
    }
  }

  async #startAll(): Promise<void> {
    const services = [...new Set(this.plan.map((s) => s.service))];
    try {
      for (const service of services) {
        await Promise.all(this.processes.filter((p) => p.spec.service === service).map((p) => p.start()));
      }
    } catch (err: unknown) {
      await this.stop();
      throw err;
    }
  }

  get processes(): ManagedProcess[] {
    return [...this.#processes.values()];
  }

  process(name: string): ManagedProcess {
    const found = this.#processes.get(name);
    assert(found !== undefined, `no process named ${name}`);
    return found;
  }

  get proxies(): TcpProxy[] {
    return [...this.#proxies.values()];
  }

  proxy(name: string): TcpProxy {
    const found = this.#proxies.get(name);
    assert(found !== undefined, `no link named ${name}`);
    return found;
  }

  addresses(service: ServiceName): string[] {
    return this.plan.filter((s) => s.service === service).map((s) => s.grpcAddress);
  }

  /**
   * Connections the replicas opened to each other: `routed` went through the
   * sender's own link; `unidentified` (sender not found in /proc, e.g. it
   * exited meanwhile) through an uncut fallback. Zero both without Raft links.
   */
  get raftConnections(): { routed: number; unidentified: number } {
    return {
      routed: this.#routers.reduce((sum, r) => sum + r.stats.routed, 0),
      unidentified: this.#routers.reduce((sum, r) => sum + r.stats.unidentified, 0),
    };
  }

  /**
   * The replica that says it is the leader, asked directly (not through any
   * proxy); with two claimants (a deposed leader that has not heard yet) the
   * one with the higher term. Undefined when none answers as leader in time.
   */
  async logStoreLeader(timeoutMs: number): Promise<string | undefined> {
    const running = this.plan.filter((s) => s.service === "logstore" && this.process(s.name).running && !this.#paused.has(s.name));
    const statuses = await Promise.all(
      running.map(async (spec) => ({ name: spec.name, status: await logStoreStatus(spec.grpcAddress, timeoutMs, this.security.admin) })),
    );
    const leaders = statuses.filter((s) => s.status?.role.toLowerCase() === LEADER_ROLE);
    leaders.sort((a, b) => (a.status!.term === b.status!.term ? 0 : a.status!.term > b.status!.term ? -1 : 1));
    return leaders[0]?.name;
  }

  #runningPids(service: ServiceName): Map<number, string> {
    const pids = new Map<number, string>();
    for (const p of this.processes) {
      if (p.spec.service === service && p.pid !== undefined) pids.set(p.pid, p.name);
    }
    return pids;
  }

  /** A client that reaches the LogStore through the cuttable client links, and the shards directly. */
  connectWorkloadClient(timeoutMs: number): Promise<LogPlayerClient> {
    return LogPlayerClient.connect({
      logstore: this.#clientProxies.map((p) => p.address),
      shards: this.addresses("shard"),
      timeoutMs,
      security: this.security.client,
    });
  }

  /** A client that bypasses every proxy, for the final checks. */
  connectDirectClient(timeoutMs: number): Promise<LogPlayerClient> {
    return LogPlayerClient.connect({
      logstore: this.addresses("logstore"),
      shards: this.addresses("shard"),
      timeoutMs,
      security: this.security.client,
    });
  }

  kill(name: string): void {
    this.#paused.delete(name);
    this.process(name).kill("SIGKILL");
  }

  /** Starts a killed (or running) process again on the same ports and data. */
  async restart(name: string): Promise<void> {
    assert(this.#stopping === undefined, "no restarts while the cluster stops");
    this.resume(name);
    await this.process(name).restart();
  }

  /** SIGSTOP: the process keeps its sockets but does nothing (a zombie). */
  pause(name: string): boolean {
    const pid = this.process(name).pid;
    if (pid === undefined) return false;
    process.kill(pid, "SIGSTOP");
    this.#paused.add(name);
    return true;
  }

  resume(name: string): void {
    if (!this.#paused.delete(name)) return;
    const pid = this.process(name).pid;
    if (pid !== undefined) process.kill(pid, "SIGCONT");
  }

  get paused(): ReadonlySet<string> {
    return this.#paused;
  }

  /** Calls `listener` when a process exits without being killed or stopped by us. */
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

  /** Stops processes in reverse start order, then closes the proxies. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const name of [...this.#paused]) this.resume(name);
      const services = [...new Set(this.plan.map((s) => s.service))].reverse();
      for (const service of services) {
        await Promise.all(this.processes.filter((p) => p.spec.service === service).map((p) => p.stop()));
      }
      await closeLinks(this.#routers, [...this.#proxies.values(), ...this.#uncut]);
    })();
    return this.#stopping;
  }
}

/**
 * A copy of `spec` whose arguments naming other processes' addresses name a
 * proxy instead, one proxy per (this process, peer) pair. Lists ("a,b,c") are
 * rewritten item by item; an argument is only touched when every item is a
 * peer's address, so ports, paths and ids are left alone.
 */
async function routeThroughProxies(spec: ProcessSpec, plan: readonly ProcessSpec[], proxies: Map<string, TcpProxy>): Promise<ProcessSpec> {
  const peerByAddress = new Map(plan.filter((s) => s.name !== spec.name).map((s) => [s.grpcAddress, s]));
  const args: string[] = [];
  for (const arg of spec.args) {
    const items = arg.split(",");
    if (!items.every((item) => peerByAddress.has(item))) {
      args.push(arg);
      continue;
    }
    const rewritten: string[] = [];
    for (const item of items) {
      const peer = peerByAddress.get(item)!;
      const name = `${spec.name}→${peer.name}`;
      let proxy = proxies.get(name);
      if (proxy === undefined) {
        proxy = await TcpProxy.start({ name, target: peer.grpcAddress });
        proxies.set(name, proxy);
      }
      rewritten.push(proxy.address);
    }
    args.push(rewritten.join(","));
  }
  assert(args.length === spec.args.length, "rewriting keeps every argument");
  return { ...spec, args };
}

/**
 * One ingress (SourceRouter) per replica, which every replica's --peers will
 * name, and behind it one proxy per sending replica ("logstore-1→logstore-2"),
 * plus an uncut fallback for anyone else. Returns the ingress address by
 * replica id; empty for a LogStore without replicas.
 */
async function startRaftIngress(
  plan: readonly ProcessSpec[],
  links: Links,
  sources: () => ReadonlyMap<number, string>,
): Promise<Map<number, string>> {
  const replicas = raftReplicas(plan);
  const ingressById = new Map<number, string>();
  for (const to of replicas) {
    const routes = new Map<string, TcpProxy>();
    for (const from of replicas.filter((r) => r.name !== to.name)) {
      const proxy = await TcpProxy.start({ name: linkName(from.name, to.name), target: to.address, listen: false });
      links.proxies.set(proxy.name, proxy);
      routes.set(from.name, proxy);
    }
    const fallback = await TcpProxy.start({ name: linkName(UNIDENTIFIED_LINK_PREFIX, to.name), target: to.address, listen: false });
    links.uncut.push(fallback);
    const router = await SourceRouter.start({ name: linkName("", to.name), sources, routes, fallback });
    links.routers.push(router);
    ingressById.set(to.replicaId, router.address);
  }
  links.raftLinks.push(...raftLinks(replicas));
  return ingressById;
}

/** Routers first (no new connections), then every proxy. */
async function closeLinks(routers: readonly SourceRouter[], proxies: readonly TcpProxy[]): Promise<void> {
  await Promise.all(routers.map((r) => r.close()));
  await Promise.all(proxies.map((p) => p.close()));
}

/** A LogStore replica's own status, or undefined when it does not answer in time. */
function logStoreStatus(address: string, timeoutMs: number, security: TransportSecurity): Promise<StatusResponse | undefined> {
  const client = new LogStoreClient(address, channelCredentialsFor(security));
  return new Promise<StatusResponse | undefined>((resolve) => {
    client.status({}, new Metadata(), { deadline: Date.now() + timeoutMs }, (err: ServiceError | null, response?: StatusResponse) => {
      resolve(err === null ? response : undefined);
    });
  }).finally(() => client.close());
}

async function isServing(spec: ProcessSpec, security: TransportSecurity): Promise<boolean> {
  const health = await checkHealth(spec.grpcAddress, { timeoutMs: HEALTH_TIMEOUT_MS, security });
  return health.status === HealthServingStatus.SERVING;
}
