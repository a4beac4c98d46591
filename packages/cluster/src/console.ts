import { CONSOLE_DEFAULTS, type ConsoleTargets, type RunningConsole, startConsole } from "@logplayer/console";
import type { LocalCluster } from "./cluster";

/** The console's well-known port with `--ports default`; `--ports auto` takes any free one. */
export const CONSOLE_PORT_DEFAULT = 9900;

/** Where the console finds each process of a local cluster, read afresh on every poll (a restart may move a metrics port). */
export function localConsoleTargets(cluster: LocalCluster): ConsoleTargets {
  const metricsUrl = (p: LocalCluster["processes"][number]): string | undefined => {
    const port = p.ready?.metricsPort ?? p.spec.metricsPort;
    return port > 0 ? `http://${hostOf(p.spec.grpcAddress)}:${port}/metrics` : undefined;
  };
  const processes = cluster.processes;
  return {
    logstores: processes.filter((p) => p.spec.service === "logstore").map((p) => ({ name: p.name, address: p.spec.grpcAddress })),
    shards: processes
      .filter((p) => p.spec.service === "shard")
      .map((p) => ({
        shardId: Number(/(\d+)$/.exec(p.name)?.[1] ?? -1),
        name: p.name,
        address: p.spec.grpcAddress,
        metricsUrl: metricsUrl(p),
      }))
      .sort((a, b) => a.shardId - b.shardId),
    players: processes
      .filter((p) => p.spec.service === "logplayer")
      .flatMap((p) => {
        const url = metricsUrl(p);
        return url === undefined ? [] : [{ name: p.name, metricsUrl: url }];
      }),
  };
}

/** Serves the console of a local cluster on 127.0.0.1:`port` (0: any free port), calling with the admin certificate. */
export function startLocalConsole(cluster: LocalCluster, port: number): Promise<RunningConsole> {
  return startConsole({
    ...CONSOLE_DEFAULTS,
    host: "127.0.0.1",
    port,
    targets: () => localConsoleTargets(cluster),
    security: cluster.adminSecurity,
  });
}

function hostOf(address: string): string {
  const colon = address.lastIndexOf(":");
  return colon < 0 ? address : address.slice(0, colon);
}
