import http from "node:http";
import { type ChannelCredentials, Metadata } from "@grpc/grpc-js";
import { LogStoreClient, ShardClient, type ShardStatusResponse, type StatusResponse } from "@logplayer/proto";
import { channelCredentialsFor, type TransportSecurity } from "@logplayer/tls";
import { type ClusterView, ClusterViewBuilder, type PollResult } from "./cluster-view";
import { CONSOLE_PAGE } from "./page";
import { parsePrometheusText, type Sample } from "./prometheus-text";

/** Where the console finds the cluster; asked again on every poll (ports may change across restarts). */
export interface ConsoleTargets {
  readonly logstores: readonly { name: string; address: string }[];
  /** `metricsUrl`: the shard's /metrics (its delay histograms), when it serves one. */
  readonly shards: readonly { shardId: number; name: string; address: string; metricsUrl?: string | undefined }[];
  readonly players: readonly { name: string; metricsUrl: string }[];
}

export interface ConsoleOptions {
  readonly host: string;
  /** 0 = any free port. */
  readonly port: number;
  readonly targets: () => ConsoleTargets;
  /** An admin or reader certificate (Status on the LogStore and the shards), or INSECURE. */
  readonly security: TransportSecurity;
  /** How often the cluster is polled and the page pushed a new state. */
  readonly intervalMs: number;
  /** Deadline of each Status call and /metrics fetch. */
  readonly callTimeoutMs: number;
  /** Polls the delay histograms cover. */
  readonly delayWindowPolls: number;
  /** Page viewers at once (each holds one SSE connection). */
  readonly viewersMax: number;
}

export const CONSOLE_DEFAULTS = { intervalMs: 1000, callTimeoutMs: 800, delayWindowPolls: 10, viewersMax: 32 } as const;

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  /** The last state pushed (null before the first poll ends). */
  readonly latest: ClusterView | null;
  close(): Promise<void>;
}

/**
 * Serves the console page (`/`), its state as JSON (`/api/state`) and a
 * server-sent event stream of states (`/events`), polling the cluster every
 * intervalMs with one poll in flight at most.
 */
export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const credentials = channelCredentialsFor(options.security);
  const clients = new ClientCache(credentials);
  const builder = new ClusterViewBuilder(options.delayWindowPolls);
  const viewers = new Set<http.ServerResponse>();
  let latest: ClusterView | null = null;
  let latestJson = "null";
  const server = http.createServer((req, res) => {
    if (req.method !== "GET") {
      res.writeHead(405).end();
    } else if (req.url === "/" || req.url === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(CONSOLE_PAGE);
    } else if (req.url === "/api/state") {
      res.writeHead(200, { "content-type": "application/json" }).end(latestJson);
    } else if (req.url === "/events") {
      if (viewers.size >= options.viewersMax) {
        res.writeHead(503, { "content-type": "text/plain" }).end(`too many viewers (${options.viewersMax})\n`);
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write(`retry: ${options.intervalMs}\n\n`);
      if (latest !== null) res.write(`data: ${latestJson}\n\n`);
      viewers.add(res);
      req.on("close", () => viewers.delete(res));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try / or /events\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  let polling = false;
  let closed = false;
  const tick = async (): Promise<void> => {
    if (polling || closed) return;
    polling = true;
    try {
      const poll = await pollCluster(options.targets(), clients, options.callTimeoutMs);
      if (closed) return;
      latest = builder.build(poll, options.intervalMs);
      latestJson = JSON.stringify(latest);
      for (const viewer of viewers) viewer.write(`data: ${latestJson}\n\n`);
    } finally {
      polling = false;
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs);
  void tick();
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  return {
    url: `http://${host}:${port}/`,
    port,
    get latest() {
      return latest;
    },
    close: async () => {
      closed = true;
      clearInterval(timer);
      for (const viewer of viewers) viewer.end();
      viewers.clear();
      clients.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One gRPC client per address, kept across polls (a channel reconnects by itself). */
class ClientCache {
  readonly #logstores = new Map<string, LogStoreClient>();
  readonly #shards = new Map<string, ShardClient>();

  constructor(private readonly credentials: ChannelCredentials) {}

  logstore(address: string): LogStoreClient {
    let client = this.#logstores.get(address);
    if (client === undefined) {
      client = new LogStoreClient(address, this.credentials);
      this.#logstores.set(address, client);
    }
    return client;
  }

  shard(address: string): ShardClient {
    let client = this.#shards.get(address);
    if (client === undefined) {
      client = new ShardClient(address, this.credentials);
      this.#shards.set(address, client);
    }
    return client;
  }

  close(): void {
    for (const client of [...this.#logstores.values(), ...this.#shards.values()]) client.close();
  }
}

async function pollCluster(targets: ConsoleTargets, clients: ClientCache, timeoutMs: number): Promise<PollResult> {
  const [logstores, shards, players] = await Promise.all([
    Promise.all(
      targets.logstores.map(async (l) => {
        const answer = await settle(
          unary<StatusResponse>((deadline, cb) => clients.logstore(l.address).status({}, new Metadata(), { deadline }, cb), timeoutMs),
        );
        return { ...l, ...answer };
      }),
    ),
    Promise.all(
      targets.shards.map(async (s) => {
        const [answer, metrics] = await Promise.all([
          settle(
            unary<ShardStatusResponse>((deadline, cb) => clients.shard(s.address).status({}, new Metadata(), { deadline }, cb), timeoutMs),
          ),
          s.metricsUrl === undefined ? Promise.resolve({ metrics: [] as Sample[] }) : fetchMetrics(s.metricsUrl, timeoutMs),
        ]);
        return { shardId: s.shardId, name: s.name, address: s.address, ...answer, metrics: metrics.metrics };
      }),
    ),
    Promise.all(targets.players.map(async (p) => ({ name: p.name, ...(await fetchMetrics(p.metricsUrl, timeoutMs)) }))),
  ]);
  return { atMs: Date.now(), logstores, shards, players };
}

function unary<T>(call: (deadline: Date, callback: (error: Error | null, response: T) => void) => void, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    call(new Date(Date.now() + timeoutMs), (error, response) => (error === null ? resolve(response) : reject(error)));
  });
}

async function settle<T>(promise: Promise<T>): Promise<{ status?: T; error?: string }> {
  try {
    return { status: await promise };
  } catch (err: unknown) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

async function fetchMetrics(url: string, timeoutMs: number): Promise<{ metrics: Sample[]; error?: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return { metrics: [], error: `${url}: HTTP ${response.status}` };
    return { metrics: parsePrometheusText(await response.text()) };
  } catch (err: unknown) {
    return { metrics: [], error: `${url}: ${err instanceof Error ? err.message : String(err)}` };
  }
}
