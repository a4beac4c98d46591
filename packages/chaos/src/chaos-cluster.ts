import path from "node:path";
import fs from "node:fs";
import { checkHealth, HealthServingStatus, LogPlayerClient } from "@logplayer/client";
import {
  autoPortTable,
  clusterPlan,
  ManagedProcess,
  type ExitInfo,
  type ProcessSpec,
  type ServiceName,
} from "@logplayer/cluster";
import { assert } from "@logplayer/common";
import { TcpProxy } from "./tcp-proxy";

/**
 * A cluster of real processes built from the launcher's plan, with a TCP
 * proxy on every link the chaos run may cut: from each LogPlayer to every
 * process it dials (shards, LogStore replicas), and from the workload's
 * client to the LogStore. Links are found from the plan itself (an argument
 * naming another process's address), so new processes in the plan, such as
 * LogStore replicas, become kill targets and proxied links without changes here.
 */
export interface ChaosClusterOptions {
  dataDir: string;
  shardCount: number;
  logPlayers: number;
  logLevel: string;
  /** Services whose outgoing links go through proxies (default: the LogPlayers). */
  proxiedServices?: readonly ServiceName[];
  readyTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** Root holding services/<svc>/dist/main.js (default: this repository); lets a run use mutant builds. */
  repoRoot?: string;
}

export const CLIENT_LINK_PREFIX = "client";
const HEALTH_TIMEOUT_MS = 500;
const START_ATTEMPTS_MAX = 3;

export class ChaosCluster {
  readonly plan: readonly ProcessSpec[];
  readonly dataDir: string;
  readonly #processes: Map<string, ManagedProcess>;
  readonly #proxies: Map<string, TcpProxy>;
  readonly #clientProxies: readonly TcpProxy[];
  readonly #paused = new Set<string>();
  #stopping: Promise<void> | undefined;

  private constructor(dataDir: string, plan: ProcessSpec[], proxies: Map<string, TcpProxy>, clientProxies: TcpProxy[], options: ChaosClusterOptions) {
    this.dataDir = dataDir;
    this.plan = plan;
    this.#proxies = proxies;
    this.#clientProxies = clientProxies;
    const logDir = path.join(dataDir, "logs");
    this.#processes = new Map(plan.map((spec) => [spec.name, new ManagedProcess(spec, {
      logDir,
      readyProbe: isServing,
      ...(options.repoRoot === undefined ? {} : { repoRoot: options.repoRoot }),
      ...(options.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: options.readyTimeoutMs }),
      ...(options.stopTimeoutMs === undefined ? {} : { stopTimeoutMs: options.stopTimeoutMs }),
    })]));
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
    const ports = await autoPortTable(options.shardCount, options.logPlayers);
    const basePlan = clusterPlan({ dataDir, shardCount: options.shardCount, logPlayers: options.logPlayers, ports, logLevel: options.logLevel });
    const proxies = new Map<string, TcpProxy>();
    try {
      const proxied = new Set(options.proxiedServices ?? ["logplayer"]);
      const plan: ProcessSpec[] = [];
      for (const spec of basePlan) plan.push(proxied.has(spec.service) ? await routeThroughProxies(spec, basePlan, proxies) : spec);
      const clientProxies: TcpProxy[] = [];
      for (const spec of basePlan.filter((s) => s.service === "logstore")) {
        const proxy = await TcpProxy.start({ name: `${CLIENT_LINK_PREFIX}→${spec.name}`, target: spec.grpcAddress });
        proxies.set(proxy.name, proxy);
        clientProxies.push(proxy);
      }
      const cluster = new ChaosCluster(dataDir, plan, proxies, clientProxies, options);
      await cluster.#startAll();
      return cluster;
    } catch (err: unknown) {
      await Promise.all([...proxies.values()].map((p) => p.close()));
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

  /** A client that reaches the LogStore through the cuttable client links, and the shards directly. */
  connectWorkloadClient(timeoutMs: number): Promise<LogPlayerClient> {
    return LogPlayerClient.connect({ logstore: this.#clientProxies.map((p) => p.address), shards: this.addresses("shard"), timeoutMs });
  }

  /** A client that bypasses every proxy, for the final checks. */
  connectDirectClient(timeoutMs: number): Promise<LogPlayerClient> {
    return LogPlayerClient.connect({ logstore: this.addresses("logstore"), shards: this.addresses("shard"), timeoutMs });
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
    const unsubscribes = this.processes.map((p) => p.onExit((exit) => {
      if (!exit.expected && this.#stopping === undefined) listener(p.name, exit);
    }));
    return () => unsubscribes.forEach((unsubscribe) => unsubscribe());
  }

  /** Stops processes in reverse start order, then closes the proxies. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const name of [...this.#paused]) this.resume(name);
      const services = [...new Set(this.plan.map((s) => s.service))].reverse();
      for (const service of services) {
        await Promise.all(this.processes.filter((p) => p.spec.service === service).map((p) => p.stop()));
      }
      await Promise.all(this.proxies.map((p) => p.close()));
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

async function isServing(spec: ProcessSpec): Promise<boolean> {
  const health = await checkHealth(spec.grpcAddress, { timeoutMs: HEALTH_TIMEOUT_MS });
  return health.status === HealthServingStatus.SERVING;
}
